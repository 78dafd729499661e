"""Hard limits on reading untrusted files: every bomb is generated here (small files), refused with a
reason naming the limit, for good (never "try again later"), and never inflated in the service's
own process (its peak memory does not move)."""

from __future__ import annotations

import dataclasses
import functools
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from docx import Document as DocxDocument

from helpers import make_pdf
from pdfkit import flate_stream, raw_pdf
from packet.config import load_config
from packet.errors import ConfigError, RefusedFile
from packet.intake.convert.batch import convert, convert_many
from packet.intake.convert.limits import inflated_size
from packet.model.models import Converted, SourceFile
from packet.workers.pool import status_mib

MIB = 1024 * 1024


def source(path: Path) -> SourceFile:
    st = path.stat()
    return SourceFile(relpath=path.name, path=path.resolve(), size=st.st_size, mtime_ns=st.st_mtime_ns)


def with_limits(config, **changes):
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, **changes))


def refused_for_good(path: Path, config) -> RefusedFile:
    """The refusal of `path`, checked to be final and to leave this process's memory alone."""
    peak_before = status_mib("VmHWM")
    with pytest.raises(RefusedFile) as info:
        convert(source(path), config)
    peak_after = status_mib("VmHWM")
    error = info.value
    assert not error.transient, "a limit hit is final, never retried as if the machine were busy"
    assert error.what_to_do and path.name not in error.message
    assert peak_after - peak_before < 64, "the bomb was opened in the service's own process"
    return error


@functools.lru_cache(maxsize=4)
def _deflate_zeros(size: int, piece: int = 64 * MIB) -> bytes:
    """zlib data of `size` NUL bytes, at level 9. One `piece` is compressed and its deflate blocks
    repeated: a fresh compressor ended with a full flush makes blocks that stand alone and end on a
    byte, so copies of them in a row inflate to the pieces in a row (compressing a GiB of zeros
    itself costs seconds of CPU). The Adler-32 of n zeros is (n mod 65521) << 16 | 1."""
    whole, rest = divmod(size, piece)
    block = b""
    if whole:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = compressor.compress(bytes(piece)) + compressor.flush(zlib.Z_FULL_FLUSH)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = compressor.compress(bytes(rest)) + compressor.flush()  # the final block
    return b"\x78\xda" + block * whole + last + struct.pack(">I", (size % 65521) << 16 | 1)


def test_a_page_naming_one_large_stream_many_times_is_refused(config, tmp_path):
    content = _deflate_zeros(70 * MIB)  # 70 MB of NUL bytes: a valid (empty) content stream, ~70 KB
    refs = b" ".join(b"4 0 R" for _ in range(60))
    pdf = tmp_path / "repeated.pdf"
    pdf.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                          b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                          b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [" + refs + b"] >>",
                          flate_stream(content)]))
    assert pdf.stat().st_size < 200_000

    error = refused_for_good(pdf, config)

    assert error.reason == "too_large"
    assert "content of one page" in error.message and "256 MB" in error.message


def test_a_stream_that_inflates_past_the_bound_is_refused_wherever_it_is(config, tmp_path):
    bomb = _deflate_zeros(1024 * MIB)  # 1 GiB from ~1 MB: an image the page draws
    pdf = tmp_path / "inflates.pdf"
    pdf.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                          b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                          b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
                          b"/Resources << /XObject << /Im0 4 0 R >> >> >>",
                          flate_stream(bomb, b"/Type /XObject /Subtype /Image /Width 100 /Height 100 "
                                        b"/ColorSpace /DeviceGray /BitsPerComponent 8 "),
                          flate_stream(zlib.compress(b"q 100 0 0 100 0 0 cm /Im0 Do Q"))]))

    error = refused_for_good(pdf, config)

    assert error.reason == "too_large" and "unpacks to more than 256 MB" in error.message
    # The bound is the configured one: raised past the stream's size, the same file is taken.
    taken = convert(source(pdf), with_limits(config, max_inflated_bytes=2048 * MIB, worker_memory_mib=4096))
    assert isinstance(taken, Converted) and taken.pages == 1


def test_the_made_bombs_are_valid_zlib_data_of_that_many_zeros():
    for size, piece in ((64 * MIB, 64 * MIB), (70 * MIB, 64 * MIB), (5 * MIB + 3, 2 * MIB), (10, 64 * MIB)):
        inflater = zlib.decompressobj()
        total, data = 0, _deflate_zeros(size, piece)
        for start in range(0, len(data), 4096):
            out = inflater.decompress(data[start:start + 4096])
            assert out.count(0) == len(out)
            total += len(out)
        total += len(inflater.flush())
        assert inflater.eof and not inflater.unused_data and total == size  # zlib checked the Adler-32


def test_counting_an_inflation_stops_just_past_the_bound():
    data = _deflate_zeros(64 * MIB)
    assert inflated_size(data, 0, len(data), 10 * MIB) <= 11 * MIB
    assert inflated_size(data, 0, len(data), 100 * MIB) == 64 * MIB
    assert inflated_size(b"not zlib at all" * 100, 0, 1500, MIB) == 0
    # Bytes after the end of the zlib data (the line end before "endstream") end the count.
    assert inflated_size(data + b"\r\n", 0, len(data) + 2, 100 * MIB) == 64 * MIB


def _png(width: int, height: int, idat: bytes, *, bit_depth: int = 8, colour: int = 0) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_an_image_past_the_pixel_limit_is_refused_from_its_header(config, tmp_path):
    giant = tmp_path / "giant.png"  # 1.16 gigapixels declared; the pixels are never decoded
    giant.write_bytes(_png(34_100, 34_100, zlib.compress(b"\x00" * 34_101)))
    error = refused_for_good(giant, config)
    assert error.reason == "too_large" and "million pixels" in error.message and "300 million" in error.message


def test_the_pixel_limit_is_the_configured_value_not_twice_it(config, tmp_path):
    tight = with_limits(config, max_image_pixels=1_000_000)
    rows = b"".join(b"\x00" + b"\xff" * 1000 for _ in range(1000))
    at_limit = tmp_path / "at.png"
    at_limit.write_bytes(_png(1000, 1000, zlib.compress(rows)))
    over = tmp_path / "over.png"  # 1.1 megapixels: Pillow alone would refuse only past 2 megapixels
    over.write_bytes(_png(1100, 1000, zlib.compress(b"".join(b"\x00" + b"\xff" * 1100 for _ in range(1000)))))

    assert isinstance(convert(source(at_limit), tight), Converted)
    error = refused_for_good(over, tight)
    assert error.reason == "too_large" and "limit of 1 million pixels" in error.message


def test_a_file_that_needs_more_memory_than_the_limit_is_refused_naming_it(config, tmp_path):
    # 30,000 x 30,000 one-bit pixels: a 0.1 MB file that Pillow decodes to 900 MB (a byte per pixel).
    width = height = 30_000
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (width // 8)
    idat = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000)) + compressor.flush()
    scan = tmp_path / "scan.png"
    scan.write_bytes(_png(width, height, idat, bit_depth=1))
    small = with_limits(config, worker_memory_mib=512, max_image_pixels=2_000_000_000)

    error = refused_for_good(scan, small)

    assert error.reason == "too_large" and "512 MB of memory" in error.message


def _docx_with(tmp_path: Path, name: str, extra: dict[str, int] | None = None, parts: int = 0) -> Path:
    """A real DOCX plus `extra` parts of NUL bytes (name -> size) and `parts` tiny parts."""
    document = DocxDocument()
    document.add_paragraph("an ordinary letter")
    path = tmp_path / name
    document.save(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, size in (extra or {}).items():
            with archive.open(member, "w", force_zip64=True) as handle:
                for done in range(0, size, 64 * MIB):
                    handle.write(bytes(min(64 * MIB, size - done)))
        for number in range(parts):
            archive.writestr(f"word/media/part{number}.bin", b"x")
    return path


def _soffice_that_records_it_ran(tmp_path: Path, monkeypatch) -> Path:
    marker = tmp_path / "soffice-ran"
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    script = fake_bin / "soffice"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    return marker


def test_an_office_file_that_unpacks_past_the_limit_never_reaches_libreoffice(config, tmp_path, monkeypatch):
    marker = _soffice_that_records_it_ran(tmp_path, monkeypatch)
    bomb = _docx_with(tmp_path, "letter.docx", {"word/media/filler.bin": 600 * MIB})
    assert bomb.stat().st_size < 2 * MIB

    error = refused_for_good(bomb, config)

    assert error.reason == "too_large" and "unpacks to" in error.message and "512 MB limit" in error.message
    assert not marker.exists()


def test_an_office_file_with_too_many_parts_never_reaches_libreoffice(config, tmp_path, monkeypatch):
    marker = _soffice_that_records_it_ran(tmp_path, monkeypatch)
    crowded = _docx_with(tmp_path, "crowded.docx", parts=60)

    error = refused_for_good(crowded, with_limits(config, max_office_parts=50))

    assert error.reason == "too_large" and "more than the limit of 50 parts" in error.message
    assert not marker.exists()


def test_an_understated_part_size_is_caught_by_counting_while_unpacking(config, tmp_path, monkeypatch):
    marker = _soffice_that_records_it_ran(tmp_path, monkeypatch)
    liar = _docx_with(tmp_path, "liar.docx", {"word/media/filler.bin": 3 * MIB})
    data = bytearray(liar.read_bytes())
    name = b"word/media/filler.bin"
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        position = data.find(signature)
        while position != -1:
            name_at = position + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name and struct.unpack_from("<I", data, position + size_at)[0] != 0xFFFFFFFF:
                struct.pack_into("<I", data, position + size_at, 10)
            position = data.find(signature, position + 4)
    liar.write_bytes(bytes(data))

    error = refused_for_good(liar, with_limits(config, max_office_unpacked_bytes=1 * MIB))

    assert error.reason in ("too_large", "corrupt")
    assert not marker.exists()


@pytest.mark.parametrize("line, key", [("worker_memory_mib = nan", "worker_memory_mib"),
                                       ("worker_memory_mib = 16", "worker_memory_mib"),
                                       ("max_image_pixels = 1.5e20", "max_image_pixels"),
                                       ("max_inflated_bytes = 0", "max_inflated_bytes"),
                                       ("max_office_unpacked_bytes = 2.5", "max_office_unpacked_bytes"),
                                       ("max_office_parts = -3", "max_office_parts"),
                                       ("office_memory_mib = \"lots\"", "office_memory_mib")])
def test_limits_are_validated_with_their_key_named(tmp_path, line, key):
    bad = tmp_path / "imr.toml"
    bad.write_text(f"[limits]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad, flags={k: str(tmp_path / k) for k in ("inbox", "outbox", "archive", "state")}, environ={})
    assert any(f"[limits] {key}" in problem for problem in caught.value.problems)


def test_ordinary_files_are_untouched_by_the_limits(config, tmp_path):
    pdf = make_pdf(tmp_path / "letter.pdf", ["Notice of Action", "page two"])
    docx = _docx_with(tmp_path, "memo.docx", {"word/media/photo.bin": 2 * MIB})
    results = convert_many([source(pdf), source(docx)], config)
    assert isinstance(results[0], Converted) and results[0].pages == 2
    assert isinstance(results[1], Converted) and results[1].pages == 1


def test_a_pdf_drawing_an_image_that_unpacks_past_the_bound_is_refused(config, tmp_path):
    def pdf_with_image(path: Path, width: int, height: int, *, in_form: bool) -> Path:
        image = flate_stream(zlib.compress(bytes(64)), b"/Type /XObject /Subtype /Image /Width %d /Height %d "
                                                 b"/ColorSpace /DeviceGray /BitsPerComponent 8 " % (width, height))
        draw = zlib.compress(b"q 100 0 0 100 0 0 cm /X0 Do Q")
        form = flate_stream(zlib.compress(b"/Im0 Do"), b"/Type /XObject /Subtype /Form /BBox [0 0 1 1] "
                                                  b"/Resources << /XObject << /Im0 4 0 R >> >> ")
        named = b"6 0 R" if in_form else b"4 0 R"
        path.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
                               b"/Resources << /XObject << /X0 " + named + b" >> >> >>",
                               image, flate_stream(draw), form]))
        return path

    for in_form in (False, True):  # drawn by the page, or inside a form the page draws
        giant = pdf_with_image(tmp_path / f"giant-{in_form}.pdf", 20_000, 20_000, in_form=in_form)
        error = refused_for_good(giant, config)
        assert error.reason == "too_large" and "image that unpacks to 381.5 MB" in error.message
    ordinary = pdf_with_image(tmp_path / "ordinary.pdf", 8, 8, in_form=True)
    assert isinstance(convert(source(ordinary), config), Converted)


def test_a_bomb_in_a_case_folder_is_rejected_with_a_note_naming_the_limit_and_never_merged(config, tmp_path):
    import datetime as dt

    from helpers import write_case
    from packet.pipeline.build import build_case

    case_dir = write_case(config.paths.inbox)
    make_pdf(case_dir / "denial letter.pdf", ["Notice of Action\nDate: 10/02/2026\nWe denied the request."])
    bomb = _deflate_zeros(1024 * MIB)
    (case_dir / "labs.pdf").write_bytes(raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>", flate_stream(bomb)]))
    original = (case_dir / "labs.pdf").read_bytes()

    build_case(case_dir, config, now=dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8))))

    rejected = case_dir / "_rejected" / "labs.pdf"
    assert rejected.read_bytes() == original, "the clerk's file is moved as it is, never altered"
    note = Path(str(rejected) + ".why.txt").read_text()
    assert "256 MB" in note and "unpacks" in note
    draft = config.paths.outbox / case_dir.name / "draft"
    for output in draft.glob("*.pdf"):
        assert len(output.read_bytes()) < 5 * MIB and bomb[:4096] not in output.read_bytes()


@pytest.mark.parametrize("encoding", ["ASCIIHexDecode", "ASCII85Decode"])
def test_a_text_encoded_inflation_bomb_is_refused_too(config, tmp_path, encoding):
    import base64

    bomb = _deflate_zeros(1024 * MIB)
    encoded = bomb.hex().encode() + b">" if encoding == "ASCIIHexDecode" else base64.a85encode(bomb) + b"~>"
    stream = (b"<< /Length %d /Filter [/%s /FlateDecode] >>\nstream\n" % (len(encoded), encoding.encode())
              + encoded + b"\nendstream")
    pdf = tmp_path / "encoded.pdf"
    pdf.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                          b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>", stream]))
    error = refused_for_good(pdf, config)
    assert error.reason == "too_large" and "unpacks to more than 256 MB" in error.message


def test_a_file_that_kills_its_worker_is_tried_once_more_then_refused_for_good(config, tmp_path, monkeypatch):
    import io

    from packet import log as service_log

    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    script = fake_bin / "pdftotext"  # stands for a parser that brings its worker down (a crash, the OOM killer)
    script.write_text("#!/bin/sh\nkill -9 $PPID\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    pdf = make_pdf(tmp_path / "kills.pdf", ["a page"])
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        error = refused_for_good(pdf, config)
    finally:
        service_log.set_stream(None)
    assert error.reason == "conversion_failed" and "stopped the converter twice" in error.message
    assert stream.getvalue().count('"convert.worker_died"') == 2


def _pdf_with_links(path: Path, per_page: list[int]) -> Path:
    """A PDF whose pages carry the given numbers of link annotations (reportlab draws them)."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    for page, links in enumerate(per_page, start=1):
        c.drawString(72, 720, f"Progress note page {page}: Rosalind Q. Testmember")
        for n in range(links):
            x, y = 36 + (n % 50) * 10, 36 + (n // 50) % 60 * 10
            c.linkURL("https://example.org/", (x, y, x + 8, y + 8), relative=0)
        c.showPage()
    c.save()
    return path


def test_a_page_with_more_annotations_than_the_bound_is_refused_naming_the_page(config, tmp_path):
    from packet.intake.convert.limits import MAX_ANNOTATIONS_PER_PAGE

    ok = _pdf_with_links(tmp_path / "ok.pdf", [3, MAX_ANNOTATIONS_PER_PAGE])
    converted = convert(source(ok), config)
    assert isinstance(converted, Converted) and converted.pages == 2
    many = _pdf_with_links(tmp_path / "many.pdf", [3, 2, MAX_ANNOTATIONS_PER_PAGE + 1])
    error = refused_for_good(many, config)
    assert error.reason == "too_many_annotations"
    assert f"page 3 carries {MAX_ANNOTATIONS_PER_PAGE + 1:,} links" in error.message
    assert "print it to PDF again" in error.what_to_do


def test_a_file_with_more_annotations_in_all_than_the_bound_is_refused(config, tmp_path):
    from packet.intake.convert.limits import MAX_ANNOTATIONS, MAX_ANNOTATIONS_PER_PAGE

    pages = MAX_ANNOTATIONS // MAX_ANNOTATIONS_PER_PAGE
    at_bound = _pdf_with_links(tmp_path / "at-bound.pdf", [MAX_ANNOTATIONS_PER_PAGE] * pages)
    assert isinstance(convert(source(at_bound), config), Converted)
    past = _pdf_with_links(tmp_path / "past.pdf", [MAX_ANNOTATIONS_PER_PAGE] * pages + [1])
    error = refused_for_good(past, config)
    assert error.reason == "too_many_annotations" and f"more than {MAX_ANNOTATIONS:,} links" in error.message


def test_a_word_file_whose_pdf_carries_too_many_links_is_refused(config, tmp_path, monkeypatch):
    """A document's hyperlinks become link annotations in LibreOffice's PDF: the same bound holds.
    (LibreOffice is stood in for by a script that writes a PDF with 1,001 links on a page.)"""
    from packet.intake.convert.limits import MAX_ANNOTATIONS_PER_PAGE

    made = _pdf_with_links(tmp_path / "made.pdf", [MAX_ANNOTATIONS_PER_PAGE + 1])
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    script = fake_bin / "soffice"
    script.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = "--outdir" ] && out="$2"; shift; done\n'
                      f'mkdir -p "$out" && cp {made} "$out/document.pdf"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    letter = tmp_path / "letter.docx"
    document = DocxDocument()
    document.add_paragraph("Letter of medical necessity")
    document.save(letter)

    error = refused_for_good(letter, config)

    assert error.reason == "too_many_annotations" and "page 1 carries 1,001 links" in error.message
