"""verify's page texts (packet.pipeline.pagetext): pdftotext in bounded subprocesses, all files or
none, so that withheld and recipient pages are always read by one extractor."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import make_pdf

from packet.pipeline import pagetext
from packet.pipeline.pagetext import PageTexts


def _fake_pdftotext(folder: Path, body: str) -> Path:
    """A `pdftotext` on PATH that runs `body` (a shell script) instead of poppler."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "pdftotext"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return folder


def test_texts_of_every_page_of_every_file(tmp_path):
    a = make_pdf(tmp_path / "a.pdf", ["first page alpha", "second page beta", ""])
    b = make_pdf(tmp_path / "b.pdf", ["only page gamma"])
    started = PageTexts([a, b], timeout=60, memory_mib=2048)
    found = started.texts({a: 3, b: 1})
    assert found is not None
    assert [t.strip() for t in found[a]] == ["first page alpha", "second page beta", ""]
    assert [t.strip() for t in found[b]] == ["only page gamma"]


def test_one_file_it_cannot_read_means_no_texts_at_all(tmp_path):
    good = make_pdf(tmp_path / "good.pdf", ["readable"])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    assert PageTexts([good, bad], timeout=60, memory_mib=2048).texts({good: 1, bad: 1}) is None
    # Another page count than the PDF's (pypdf's) is not trusted either.
    assert PageTexts([good], timeout=60, memory_mib=2048).texts({good: 2}) is None
    # A file that was not started is not read.
    assert PageTexts([good], timeout=60, memory_mib=2048).texts({good: 1, bad: 1}) is None


def test_without_pdftotext_there_are_no_texts(tmp_path, monkeypatch):
    good = make_pdf(tmp_path / "good.pdf", ["readable"])
    monkeypatch.setattr(pagetext.shutil, "which", lambda name: None)
    assert PageTexts([good], timeout=60, memory_mib=2048).texts({good: 1}) is None


def test_pdftotext_runs_under_the_memory_limit(tmp_path, monkeypatch):
    good = make_pdf(tmp_path / "good.pdf", ["readable"])
    fake = _fake_pdftotext(tmp_path / "bin", 'ulimit -v; printf "\\f"')
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    found = PageTexts([good], timeout=60, memory_mib=321).texts({good: 1})
    assert found is not None and found[good] == [str(321 * 1024)]


def test_pdftotext_past_its_time_is_killed_with_its_group(tmp_path, monkeypatch):
    good = make_pdf(tmp_path / "good.pdf", ["readable"])
    marker = tmp_path / "child.pid"
    fake = _fake_pdftotext(tmp_path / "bin", f'sleep 60 & echo $! > "{marker}"; wait')
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    began = time.monotonic()
    started = PageTexts([good], timeout=1.0, memory_mib=2048)
    assert started.texts({good: 1}) is None
    assert time.monotonic() - began < 20
    child = int(marker.read_text())
    for _ in range(50):  # the kill is delivered; the orphan is reaped by init
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the program pdftotext started still runs")


def test_close_stops_what_still_runs(tmp_path, monkeypatch):
    good = make_pdf(tmp_path / "good.pdf", ["readable"])
    fake = _fake_pdftotext(tmp_path / "bin", "sleep 60")
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    started = PageTexts([good], timeout=60, memory_mib=2048)
    process = started.runs[good].process
    started.close()
    assert process.poll() is not None
