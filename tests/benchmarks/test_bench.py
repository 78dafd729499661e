"""The benchmark's case generator makes what it says (no timing here: timings live in `make bench`)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is not an installed package

from bench import cases, fresh, ocrbench, soak  # noqa: E402
from bench.__main__ import ocr_ratios, ratio_entry, table  # noqa: E402
from packet.model.case import load_case  # noqa: E402


@pytest.mark.parametrize("total, count", [(1000, 60), (5000, 200), (7, 7), (61, 3)])
def test_page_split_adds_up(total, count):
    sizes = cases.page_split(total, count, random.Random(3))
    assert len(sizes) == count and sum(sizes) == total and min(sizes) >= 1


def test_page_split_refuses_fewer_pages_than_documents():
    with pytest.raises(ValueError):
        cases.page_split(3, 4, random.Random(1))


def test_pdf_case_has_the_stated_pages_and_documents(tmp_path):
    case = cases.generate_pdf_case(tmp_path, cases.CaseSpec("BENCH-T", pages=45, documents=8, scanned_share=0.25))
    assert case.pages == 45 and len(case.files) == 8
    on_disk = sorted(p.relative_to(case.case_dir).as_posix() for p in case.case_dir.rglob("*.pdf"))
    assert on_disk == sorted(f.relpath for f in case.files)
    for generated in case.files:
        reader = PdfReader(case.case_dir / generated.relpath)
        assert len(reader.pages) == generated.pages, generated.relpath
        text = reader.pages[0].extract_text()
        if generated.kind == "pdf-scanned":
            assert text.strip() == ""
        else:
            assert cases.MEMBER_ID in text
    assert sum(f.kind == "pdf-scanned" for f in case.files) == 2
    assert {f.relpath.split("/")[0] for f in case.files} == {"medical-records", "correspondence", "plan-statements"}
    load_case(case.case_dir)  # a valid case.toml


def test_generation_is_deterministic(tmp_path):
    spec = cases.CaseSpec("BENCH-D", pages=30, documents=5)
    first = cases.generate_pdf_case(tmp_path / "a", spec)
    second = cases.generate_pdf_case(tmp_path / "b", spec)
    assert first.files == second.files
    assert all((first.case_dir / f.relpath).read_bytes() == (second.case_dir / f.relpath).read_bytes()
               for f in first.files)


def test_added_document_is_one_page(tmp_path):
    case = cases.generate_pdf_case(tmp_path, cases.CaseSpec("BENCH-I", pages=10, documents=2))
    grown = cases.add_one_page_document(case, 1)
    assert grown.pages == 11 and len(grown.files) == 3
    assert len(PdfReader(grown.case_dir / grown.files[-1].relpath).pages) == 1


def test_mixed_case_has_multipage_g4_faxes_and_docx(tmp_path):
    case = cases.generate_mixed_case(tmp_path, "BENCH-M", tiffs=2, tiff_pages=3, docx=1, docx_pages=2)
    assert case.pages == 2 * 3 + 2
    for generated in case.files:
        path = case.case_dir / generated.relpath
        if generated.kind == "tiff":
            with Image.open(path) as image:
                assert image.n_frames == 3 and image.info["compression"] == "group4"
        else:
            from docx import Document

            text = "\n".join(p.text for p in Document(path).paragraphs)
            assert text.count("Letter of medical necessity - page") == 2
    load_case(case.case_dir)


def test_ratio_entry_and_table_report_goals():
    assert ratio_entry("cli", 3.0, 2.0) == {"ratio": 1.5, "ratio_of": "imr-packet build in a fresh process / C chain",
                                            "goal": 1.5, "met": True}
    assert ratio_entry("cold", 3.0, 2.0)["goal"] == 1.0 and ratio_entry("cold", 3.0, 2.0)["met"] is False
    assert ratio_entry("verify", 4.2, 2.0)["goal"] == 2.0 and ratio_entry("verify", 4.2, 2.0)["met"] is False
    assert ratio_entry("incremental", 2.0, 1.0)["met"] is False
    assert ratio_entry("cold", None, 1.0)["met"] is None
    assert ratio_entry("large_time", 6.0, 1.0, goal_value=5.5)["goal"] == 5.5
    results = {"measurements": {"incremental": {"python": {"median_s": 0.5}, "qpdf_merge": {"median_s": 1.0},
                                                **ratio_entry("incremental", 0.5, 1.0)}}}
    text = table(results)
    assert "incremental" in text and "0.5" in text and "yes" in text


def test_soak_cases_are_mixed_realistic_and_within_their_page_range(tmp_path):
    rng = random.Random(17)
    generated = [soak.generate(tmp_path, i, rng, 40) for i in range(1, 7)]
    kinds = {f.kind for case in generated for f in case.files}
    assert {"pdf-text", "tiff", "docx"} <= kinds
    for case in generated:
        assert 5 <= case.pages <= 40, case.pages
        assert any("Grievance resolution" in f.relpath for f in case.files)
        on_disk = sorted(p.relative_to(case.case_dir).as_posix() for p in case.case_dir.rglob("*")
                         if p.is_file() and p.name != "case.toml")
        assert on_disk == sorted(f.relpath for f in case.files)
        load_case(case.case_dir)


def test_soak_percentiles():
    assert soak._percentiles([]) == {"count": 0, "p50_s": None, "p95_s": None, "max_s": None}
    figures = soak._percentiles([float(n) for n in range(1, 21)])
    assert figures == {"count": 20, "p50_s": 10.5, "p95_s": 19.0, "max_s": 20.0}


@pytest.mark.slow
def test_fresh_process_build_seal_and_verify_rebuild(tmp_path):
    case = cases.generate_pdf_case(tmp_path / "inbox", cases.CaseSpec("BENCH-F", pages=12, documents=3))
    run = fresh.build(case.case_dir, tmp_path / "fresh")
    assert run.returncode == 0, run.stderr_tail
    assert (tmp_path / "fresh" / "outbox" / "BENCH-F" / "draft" / "manifest.json").is_file()
    submission = fresh.seal(case.case_dir, tmp_path / "sealed")
    assert all(path.is_file() for path in case.paths)  # sealed from a copy: the C chain still has its files
    assert fresh.verify_rebuild(submission, tmp_path / "sealed").returncode == 0
    (submission / "annotated-list.csv").write_bytes(b"tampered")
    assert fresh.verify_rebuild(submission, tmp_path / "sealed").returncode != 0


FORKS_AND_STARTS = """
import os, subprocess, sys, time
if os.fork() == 0:  # a child that never runs a program of its own: its parent's pages
    time.sleep(30)
    os._exit(0)
started = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # the same program, started
print("ready", flush=True)
time.sleep(30)
"""


def test_the_tree_counts_every_started_program_and_a_forked_copy_of_its_parent_once(tmp_path):
    """The 5,000-page row and the soak sum the RSS of a process tree. A child between its fork and its
    exec has its parent's address space (pdftotext, caught in that moment, read as large as the
    conversion worker that starts it): counted, it would add the parent twice. A started program,
    even the same interpreter, has its own and is counted."""
    from bench import measure

    proc = subprocess.Popen([sys.executable, "-c", FORKS_AND_STARTS], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        table = measure._process_table()
        children = [pid for pid, p in table.items() if p.parent == proc.pid]
        assert len(children) == 2
        counted = measure.tree_pids(table, proc.pid)
        forked = [pid for pid in children if table[pid].image == table[proc.pid].image]
        started = [pid for pid in children if pid not in forked]
        assert len(forked) == 1 and len(started) == 1
        assert sorted(counted) == sorted([proc.pid, *started])
        assert set(soak.roles_rss_kb(proc.pid)) == {"watcher", Path(sys.executable).name}
    finally:
        subprocess.run(["pkill", "-P", str(proc.pid)], check=False)
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.mark.slow
def test_a_tiny_soak_drafts_seals_and_reports_no_error(tmp_path):
    entry = soak.run_soak(soak.SoakSettings(minutes=0.3, cases=2, max_pages=8), tmp_path / "soak")
    assert entry["errors"] == 0, entry["error_list"]
    assert entry["cases_dropped"] == 2 and entry["draft_latency"]["count"] == 2
    assert entry["seal_latency"]["count"] == 1 and entry["supplement_latency"]["count"] == 1
    assert entry["rss_mb"]["peak"] > 0 and entry["end"]["open_fds"] > 0
    by_role = entry["rss_mb"]["by_role"]  # which process holds the memory, at the low and at the end
    assert by_role["watcher"]["final"] > 0 and by_role["render worker"]["final"] > 0
    assert sum(r["final"] for r in by_role.values()) == pytest.approx(entry["rss_mb"]["final"], abs=0.5)


FAKE_OCRMYPDF = """#!/bin/sh
echo "$@" >> "$OCRMYPDF_LOG"
case "$5" in *bad*) exit 6;; *hang*) sleep 60;; esac
cp "$5" "$6"
"""


def test_ocr_rows_reference_is_ocrmypdf_with_two_jobs_one_file_after_another(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ocrmypdf").write_text(FAKE_OCRMYPDF)
    (bin_dir / "ocrmypdf").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("OCRMYPDF_LOG", str(tmp_path / "log"))
    files = [tmp_path / name for name in ("fax-001.tif", "fax-bad.tif", "fax-003.tif")]
    for path in files:
        path.write_bytes(b"II*\0")
    assert ocrbench.ocrmypdf_available()
    run = ocrbench.ocrmypdf_reference(files, tmp_path / "out")
    assert run.failures == 1  # counted, so that the row does not take a failed reference as fast
    lines = (tmp_path / "log").read_text().splitlines()
    assert [line.split()[:4] for line in lines] == [["--jobs", "2", "-l", "eng+spa"]] * 3
    assert [line.split()[4] for line in lines] == [str(path) for path in files]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ocrmypdf-0.pdf", "ocrmypdf-2.pdf"]
    hung = ocrbench.ocrmypdf_reference([tmp_path / "fax-hang.tif"], tmp_path / "out2", timeout=0.5)
    assert hung.failures == 1 and hung.seconds < 30  # killed with what it started, and counted


def test_ocr_goal_is_against_ocrmypdf_and_unmeasured_without_it():
    engine, tesseracts = {"median_s": 90.0}, {"median_s": 80.0}
    measured = ocr_ratios({"engine": engine, "two_tesseracts": tesseracts, "ocrmypdf": {"median_s": 100.0},
                           "ocrmypdf_failures": 0})
    assert measured["ratio"] == 0.9 and measured["met"] is True and "ocrmypdf" in measured["ratio_of"]
    assert measured["tesseract_ratio"] == 1.125  # the stricter comparison, reported without a goal
    slower = ocr_ratios({"engine": engine, "two_tesseracts": tesseracts, "ocrmypdf": {"median_s": 80.0}})
    assert slower["met"] is False
    missing = ocr_ratios({"engine": engine, "two_tesseracts": tesseracts,
                          "ocrmypdf": {"skipped": "ocrmypdf is not installed"}})
    assert missing["ratio"] is None and missing["met"] is None and "not installed" in missing["not_measured"]
    failed = ocr_ratios({"engine": engine, "two_tesseracts": tesseracts, "ocrmypdf": {"median_s": 10.0},
                         "ocrmypdf_failures": 2})
    assert failed["met"] is None and "failed on 2" in failed["not_measured"]


def test_ocr_row_takes_turns_over_the_whole_case_in_even_parts():
    files = [Path(f"fax-{n:03d}.tif") for n in range(20)]
    parts = ocrbench.split_in_turns(files, 5)
    assert [len(part) for part in parts] == [4, 4, 4, 4, 4]
    assert sorted(f for part in parts for f in part) == files  # every file once
    assert parts[0][:2] == [files[0], files[5]]  # each part a mix of the case, not a run of files
    assert [len(part) for part in ocrbench.split_in_turns(files[:6], 5)] == [2, 2, 2]
    assert ocrbench.split_in_turns(files[:7], 5) == [files[:7]]  # no even split: one part
