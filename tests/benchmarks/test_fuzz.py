"""A seeded sample of `make fuzz` (bench/fuzz.py): mutated PDFs and images through whole case
builds; no crash, no hang, every file taken or refused, memory of the process tree bounded."""

import json

import pytest


@pytest.mark.slow
def test_a_seeded_sample_of_mutants_is_each_taken_or_refused(tmp_path):
    from bench import fuzz

    out = tmp_path / "fuzz.json"
    # A 10-second parsing limit (the service's is 60): a mutant that makes a parser spin is refused
    # with the timeout reason sooner, and counted like any other refusal. Scanned PDF pages are read
    # at 150 dpi (the service's 300): the same parsing of the same mutants, a quarter of the pixels for
    # Tesseract (about 9 of the run's 45 CPU-seconds).
    assert fuzz.main(["--count", "100", "--batch", "50", "--seed", "2026", "--memory-mib", "3072",
                      "--open-timeout", "10", "--ocr-dpi", "150", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["mutants"] == 100 and summary["taken"] + summary["refused"] + summary["retrying"] == 100
    assert summary["crashes"] == summary["hangs"] == summary["unaccounted"] == 0
