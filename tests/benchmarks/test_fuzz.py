"""A seeded sample of `make fuzz` (bench/fuzz.py): mutated PDFs and images through whole case
builds; no crash, no hang, every file taken or refused, memory of the process tree bounded."""

import json

import pytest


@pytest.mark.slow
def test_a_seeded_sample_of_mutants_is_each_taken_or_refused(tmp_path):
    from bench import fuzz

    out = tmp_path / "fuzz.json"
    assert fuzz.main(["--count", "100", "--batch", "50", "--seed", "2026", "--memory-mib", "3072",
                      "--json", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["mutants"] == 100 and summary["taken"] + summary["refused"] + summary["retrying"] == 100
    assert summary["crashes"] == summary["hangs"] == summary["unaccounted"] == 0
