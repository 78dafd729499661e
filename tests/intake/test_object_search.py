"""A PDF whose cross-reference table points wrong: pypdf reads it only by searching the whole file
for each object. The conversion worker, under its time limit, has qpdf rewrite the table; the
assembly in the service's process then reads the rewrite and never searches (a damaged 2 MB file
of `make fuzz` took 45 s of the service's own CPU before)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
import threading
import types
from pathlib import Path

import pytest
from pypdf import PdfReader, _reader

from helpers import make_config, make_pdf, write_case
from packet.intake.convert import pdf as convert_pdf_module
from packet.intake.convert import worker
from packet.intake.convert.batch import check_and_hash, convert
from packet.intake.convert.job import make_job
from packet.intake.convert.pdf import object_searches
from packet.model.models import Converted, SourceFile
from packet.pipeline.build import build_case

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
PAGES = [f"Progress note {n}\nMember: Jane Q. Public\nDate: 10/0{n}/2026\nLumbar pain, follow-up." for n in range(1, 6)]


def shifted_pdf(path: Path) -> Path:
    """A readable PDF whose cross-reference entries each point 2 bytes past their object (the table
    itself is where the trailer says), as a careless editor leaves them."""
    make_pdf(path, PAGES)
    data = path.read_bytes()
    table = data.rindex(b"\nxref\n") + 1
    head, tail = data[:table], data[table:].split(b"\n")
    for index, line in enumerate(tail):
        if re.fullmatch(rb"\d{10} \d{5} n ?", line.rstrip(b"\r")):
            tail[index] = b"%010d" % (int(line[:10]) + 2) + line[10:]
    path.write_bytes(head + b"\n".join(tail))
    return path


def catalog_hunt_pdf(path: Path, size: int = 2000, padding: int = 200_000) -> Path:
    """A PDF whose trailer names no catalog and claims `size` objects, and whose catalog does not
    say it is one: pypdf then reads every object number up to /Size looking for it, and each number
    the file lacks is a search of the whole file (a `make fuzz` mutant searched 10,000 times)."""
    make_pdf(path, PAGES[:1])
    data = path.read_bytes().replace(b"/Type /Catalog", b"/Type /Catalxg")
    head, trailer = data.rsplit(b"trailer", 1)
    trailer = re.sub(rb"/Size \d+", b"/Size %d" % size, re.sub(rb"/Root \d+ 0 R", b"", trailer))
    path.write_bytes(head + b"trailer" + trailer + b"%" + b"x" * padding + b"\n")
    return path


def count_whole_file_searches(monkeypatch) -> list[int]:
    """pypdf's module calls `re.search` only to search the file for an object: count those calls."""
    calls = [0]

    class Counting(types.ModuleType):
        def __getattr__(self, name):
            return getattr(re, name)

        def search(self, *args, **kwargs):
            calls[0] += 1
            return re.search(*args, **kwargs)

    monkeypatch.setattr(_reader, "re", Counting("re"))
    return calls


def _run_job(path: Path, config, tmp_path: Path) -> dict:
    source = _source(path)
    fields = dataclasses.asdict(make_job(source, check_and_hash(source, config.limits.max_file_bytes), config))
    fields["work_dir"] = str(tmp_path / "work")
    return worker.run_job(fields)  # the conversion job, in this process


def _source(path: Path) -> SourceFile:
    st = path.stat()
    return SourceFile(relpath=path.name, path=path.resolve(), size=st.st_size, mtime_ns=st.st_mtime_ns)


def test_pypdf_searches_the_shifted_file_and_not_the_original(tmp_path):
    with object_searches() as searches:
        assert len(PdfReader(make_pdf(tmp_path / "plain.pdf", PAGES)).pages) == 5
    assert searches.count == 0
    with object_searches() as searches:
        assert len(PdfReader(shifted_pdf(tmp_path / "shifted.pdf"), strict=False).pages) == 5
    assert searches.count > 5  # one search per object: catalog, page tree, pages, ...


def test_a_shifted_file_is_taken_as_qpdfs_rewrite_with_its_pages_and_text(tmp_path):
    config = make_config(tmp_path)
    plain = convert(_source(make_pdf(tmp_path / "plain.pdf", PAGES)), config)
    shifted = convert(_source(shifted_pdf(tmp_path / "shifted.pdf")), config)

    assert isinstance(plain, Converted) and plain.pdf_path.name == "plain.pdf", "a sound file is used as it is"
    assert isinstance(shifted, Converted) and shifted.pdf_path.name != "shifted.pdf"
    assert shifted.pages == 5 and shifted.page_texts == plain.page_texts
    with object_searches() as searches:
        assert len(PdfReader(shifted.pdf_path).pages) == 5
    assert searches.count == 0


def test_the_case_build_in_the_service_process_never_searches_the_file(tmp_path):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    shifted = shifted_pdf(case_dir / "medical-records" / "notes.pdf")
    original = shifted.read_bytes()

    with object_searches() as searches:  # conversion runs in worker processes; the rest here
        build_case(case_dir, config, now=NOW)

    assert searches.count == 0
    manifest = json.loads((config.paths.outbox / case_dir.name / "draft" / "manifest.json").read_text())
    assert [(d["source"], d["pages"]) for d in manifest["documents"]] == [("medical-records/notes.pdf", 5)]
    assert shifted.read_bytes() == original, "the clerk's file is never altered"


def test_a_file_qpdf_cannot_make_whole_is_refused_as_damaged(tmp_path, monkeypatch):
    config = make_config(tmp_path)
    path = shifted_pdf(tmp_path / "shifted.pdf")
    monkeypatch.setattr(convert_pdf_module, "_repair_with_qpdf", lambda *args: None)

    outcome = _run_job(path, config, tmp_path)

    assert outcome["status"] == "refused" and outcome["reason"] == "corrupt" and not outcome["transient"]


def test_reading_stops_at_the_first_search_and_the_file_gets_its_answer_at_once(tmp_path, monkeypatch):
    config = make_config(tmp_path)
    path = catalog_hunt_pdf(tmp_path / "hunt.pdf")
    searches = count_whole_file_searches(monkeypatch)
    with contextlib.suppress(Exception):
        len(PdfReader(path, strict=False).pages)  # what pypdf alone does with it
    assert searches[0] > 1900

    searches[0] = 0
    outcome = _run_job(path, config, tmp_path)

    # One search, not thousands until the job's time limit (a timeout would be retried, and cost the
    # limit again): qpdf cannot find a catalog either, so the file is damaged, for good.
    assert searches[0] == 1
    assert outcome["status"] == "refused" and outcome["reason"] == "corrupt" and not outcome["transient"]


def test_a_shifted_file_is_read_up_to_its_first_search_only(tmp_path, monkeypatch):
    config = make_config(tmp_path)
    path = shifted_pdf(tmp_path / "shifted.pdf")
    searches = count_whole_file_searches(monkeypatch)

    outcome = _run_job(path, config, tmp_path)

    assert searches[0] == 1  # the original's first object; qpdf's rewrite needs none
    assert outcome["status"] == "ok" and outcome["pages"] == 5


def test_only_the_reading_thread_is_stopped(tmp_path):
    """The hook is pypdf's, for the whole process: another thread's reading is counted, never stopped."""
    path = catalog_hunt_pdf(tmp_path / "hunt.pdf", size=50, padding=1000)
    outcome = []

    def read_elsewhere():
        try:
            len(PdfReader(path, strict=False).pages)
        except BaseException as exc:  # noqa: BLE001 - what escapes is the finding
            outcome.append(type(exc).__name__)

    with object_searches(stop=True) as searches:
        thread = threading.Thread(target=read_elsewhere)
        thread.start()
        thread.join()
        assert searches.count > 40
        with pytest.raises(convert_pdf_module.ObjectSearch):
            len(PdfReader(path, strict=False).pages)
    assert outcome == ["PdfReadError"]  # pypdf's own answer: no catalog
