"""pypdf's own decoding caps (75 MB each by default) follow `[limits] max_inflated_bytes`: a file
within our bound is taken even where pypdf alone would stop, and a file pypdf stops all the same
(a stream no check of ours saw coming) is refused naming our limit: never "damaged", never retried.
Every file is generated here (a stream of spaces or grey pixels compresses about 1000:1)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader

from helpers import make_pdf, write_case
from pdfkit import flate_stream, raw_pdf
from packet.config import load_config
from packet.intake.convert import pdf as convert_pdf_module
from packet.intake.convert import worker
from packet.intake.convert.batch import check_and_hash
from packet.intake.convert.job import make_job
from packet.intake.convert.limits import pypdf_bounds, pypdf_size_cap
from packet.model.models import SourceFile
from packet.pipeline import leaks
from packet.pipeline.build import build_case
from packet.pipeline.verify import verify_submission

MIB = 1024 * 1024
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
TEXT = b"BT /F1 12 Tf 72 720 Td (Laboratory results for the member) Tj ET\n"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"

pytestmark = pytest.mark.slow  # each builds a case whose file unpacks to about 100 MB


@functools.lru_cache(maxsize=4)
def _deflated(byte: bytes, size: int) -> bytes:
    squeezer = zlib.compressobj(9)
    piece = byte * (4 * MIB)
    out = [squeezer.compress(piece[:min(len(piece), size - done)]) for done in range(0, size, len(piece))]
    return b"".join(out) + squeezer.flush()


@functools.lru_cache(maxsize=2)
def _deflated_halves(size: int) -> bytes:
    squeezer = zlib.compressobj(9)
    piece = 4 * MIB
    out = [squeezer.compress((b"\x00" if done < size // 2 else b"\xff") * min(piece, size - done))
           for done in range(0, size, piece)]
    return b"".join(out) + squeezer.flush()


def large_content_pdf(path: Path, size: int = 100 * MIB) -> Path:
    """One page whose content is two streams: a line of text, then `size` bytes of spaces (a valid
    content stream). A reader joins them: pypdf decodes the large one whole."""
    path.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                           b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [4 0 R 5 0 R] "
                           b"/Resources << /Font << /F1 6 0 R >> >> >>",
                           flate_stream(zlib.compress(TEXT)), flate_stream(_deflated(b" ", size)), FONT]))
    assert path.stat().st_size < 200_000
    return path


def large_image_pdf(path: Path, side: int = 10_000) -> Path:
    """One page of text drawing a grey image of side x side pixels (10,000: 100 MB unpacked),
    black above and white below (a picture the leak detector compares, not a blank)."""
    image = flate_stream(_deflated_halves(side * side), b"/Type /XObject /Subtype /Image /Width %d /Height %d "
                                                      b"/ColorSpace /DeviceGray /BitsPerComponent 8 " % (side, side))
    draw = zlib.compress(TEXT + b"q 200 0 0 200 72 400 cm /Im0 Do Q")
    path.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                           b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
                           b"/Resources << /Font << /F1 6 0 R >> /XObject << /Im0 4 0 R >> >> >>",
                           image, flate_stream(draw), FONT]))
    assert path.stat().st_size < 512_000
    return path


def config_with(tmp_path: Path, limits: str = ""):
    """A configuration read from an imr.toml, as an administrator writes one."""
    toml = tmp_path / "imr.toml"
    folders = "\n".join(f'{key} = "{tmp_path / key}"' for key in ("inbox", "outbox", "archive", "state"))
    toml.write_text(f"[paths]\n{folders}\n\n[limits]\n{limits}\n")
    return load_config(toml, environ={})


def _case(config) -> Path:
    case_dir = write_case(config.paths.inbox)
    make_pdf(case_dir / "denial letter.pdf", ["Notice of Action\nDate: 10/02/2026\nWe denied the request."])
    return case_dir


def _in_draft(config, case_dir: Path) -> set[str]:
    manifest = json.loads((config.paths.outbox / case_dir.name / "draft" / "manifest.json").read_text())
    return {document["source"] for document in manifest["documents"]}


def _note(case_dir: Path, name: str) -> str:
    rejected = case_dir / "_rejected" / name
    assert rejected.is_file(), f"{name} was not refused"
    return Path(str(rejected) + ".why.txt").read_text()


def test_a_file_within_our_bound_is_taken_where_pypdf_alone_would_stop(tmp_path):
    config = config_with(tmp_path)  # the default bound, 256 MiB
    case_dir = _case(config)
    large_content_pdf(case_dir / "labs.pdf")
    large_image_pdf(case_dir / "scan.pdf")

    build_case(case_dir, config, now=NOW)

    assert not (case_dir / "_rejected").exists(), "a file within the configured bound is neither damaged nor too large"
    assert {"labs.pdf", "scan.pdf"} <= _in_draft(config, case_dir)
    # The packet carries both pages whole, and `verify` reads them back without stopping short.
    draft = config.paths.outbox / case_dir.name / "draft"
    assert len(PdfReader(draft / "imr-org-packet.pdf").pages) > 2
    report = verify_submission(draft, config, audit=False)
    assert not [failure for failure in report.failures if "cannot be read" in failure or "Error" in failure]


def test_with_a_lower_bound_in_imr_toml_the_same_files_are_refused_naming_it(tmp_path):
    config = config_with(tmp_path, "max_inflated_bytes = 52428800")  # 50 MiB
    case_dir = _case(config)
    large_content_pdf(case_dir / "labs.pdf")
    large_image_pdf(case_dir / "scan.pdf")

    build_case(case_dir, config, now=NOW)

    for name in ("labs.pdf", "scan.pdf"):
        note = _note(case_dir, name)
        assert "50 MB" in note and "damaged" not in note
    assert _in_draft(config, case_dir) == {"denial letter.pdf"}


def test_a_bound_lowered_after_a_file_was_taken_refuses_it_naming_the_bound(tmp_path):
    # The file was converted (and cached) under the default bound; the administrator then lowers
    # it. The conversion is not run again, so no check of ours reads the file before pypdf does
    # in the assembly: pypdf, held to the new bound, stops, and the file is refused naming it.
    config = config_with(tmp_path)
    case_dir = _case(config)
    large_content_pdf(case_dir / "labs.pdf")
    build_case(case_dir, config, now=NOW)
    assert "labs.pdf" in _in_draft(config, case_dir)

    lowered = config_with(tmp_path, "max_inflated_bytes = 52428800")
    build_case(case_dir, lowered, now=NOW + dt.timedelta(minutes=5))

    note = _note(case_dir, "labs.pdf")
    assert "50 MB" in note and "unpacks" in note and "damaged" not in note
    assert (case_dir / "_rejected" / "labs.pdf").read_bytes() == large_content_pdf(tmp_path / "again.pdf").read_bytes()
    assert _in_draft(lowered, case_dir) == {"denial letter.pdf"}


def _run_in_process(path: Path, config) -> dict:
    st = path.stat()
    source = SourceFile(relpath=path.name, path=path.resolve(), size=st.st_size, mtime_ns=st.st_mtime_ns)
    job = make_job(source, check_and_hash(source, config.limits.max_file_bytes), config)
    fields = dataclasses.asdict(job)
    fields["work_dir"] = str(path.parent / "work")
    return worker.run_job(fields)


def test_when_our_checks_miss_a_stream_pypdf_stops_at_our_bound_and_the_refusal_names_it(tmp_path, monkeypatch):
    # The conversion job, in this process, with every check of ours switched off and poppler
    # unable to read the page: pypdf reads it, held to our bound.
    config = config_with(tmp_path, "max_inflated_bytes = 52428800")
    monkeypatch.setattr(convert_pdf_module, "check_pdf_streams", lambda *args: set())
    monkeypatch.setattr(convert_pdf_module, "check_objects", lambda *args: None)
    monkeypatch.setattr(convert_pdf_module, "check_pages", lambda *args: None)
    monkeypatch.setattr(convert_pdf_module, "pdftotext_pages", lambda *args, **kwargs: None)
    labs = large_content_pdf(tmp_path / "labs.pdf", 60 * MIB)

    outcome = _run_in_process(labs, config)

    assert outcome["status"] == "refused" and outcome["reason"] == "too_large", outcome
    assert "50 MB" in outcome["message"] and not outcome["transient"]
    assert "labs" not in outcome["message"]


def test_only_pypdfs_size_caps_count_as_our_limit(tmp_path):
    # A cycle or a structure past pypdf's own counts is not a size: it stays what it was.
    from pypdf.errors import LimitReachedError

    assert not pypdf_size_cap(LimitReachedError("Detected cycle in /Pages hierarchy when retrieving page."))
    assert not pypdf_size_cap(LimitReachedError("Recovery limit reached while decompressing. 3 bytes remaining."))
    assert not pypdf_size_cap(ValueError("Limit reached while decompressing."))
    wrapped = RuntimeError("page 1 could not be stamped")
    wrapped.__cause__ = LimitReachedError("Limit reached while decompressing. 12 bytes remaining.")
    assert pypdf_size_cap(wrapped)
    # Each cap set to our bound stops pypdf with a message the check knows (pypdf is pinned).
    reader = PdfReader(large_content_pdf(tmp_path / "labs.pdf", 3 * MIB))
    with pypdf_bounds(2 * MIB), pytest.raises(LimitReachedError) as info:
        reader.pages[0].get_contents().get_data()
    assert pypdf_size_cap(info.value)
    with pypdf_bounds(4 * MIB):
        assert len(reader.pages[0].get_contents().get_data()) > 3 * MIB


def test_the_leak_detector_sees_a_large_image_within_the_bound(tmp_path):
    # `verify` compares the pictures of withheld pages with every recipient page: an image pypdf
    # refused to decode (100 MB, past its own 75 MB) was silently left out of that comparison.
    page = PdfReader(large_image_pdf(tmp_path / "scan.pdf")).pages[0]
    leaks._PICTURE_CACHE.clear()
    with pypdf_bounds(256 * MIB):
        assert leaks._page_pictures(page), "the 100 MB image was not decoded for the comparison"
    leaks._PICTURE_CACHE.clear()
