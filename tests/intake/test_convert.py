"""Conversion of every accepted input to PDF + page texts, every refusal reason, and the cache.

Inputs are built in code: PDFs with reportlab/pypdf, DOCX with python-docx, RTF and ODT by hand, DOC
with LibreOffice, TIFF/JPEG/PNG with Pillow, text in several encodings, OLE compound files with a
small writer below.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest
from docx import Document as DocxDocument
from PIL import Image
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas

from helpers import make_pdf, worker_trims
from packet.intake import cache
from packet.intake.convert import batch, image, office, pdf as pdf_module, text as text_module
from packet.intake.convert.batch import convert, convert_many
from packet.intake.convert.pdf import page_texts, pdftotext_pages, sensible_title
from packet.intake.convert.sniff import CFB_MAGIC, sniff
from packet.errors import RefusedFile
from packet.fsutil import sha256_file
from packet.model.models import Converted, SourceFile

SECRET = "Zebulon Quartermaine"  # stands for document text / a member name that must never leak


def source(path: Path, relpath: str | None = None) -> SourceFile:
    path = Path(path)
    st = path.stat()
    return SourceFile(relpath=relpath or path.name, path=path.resolve(), size=st.st_size, mtime_ns=st.st_mtime_ns)


def with_limits(config, **changes):
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, **changes))


def refused(path: Path, config) -> RefusedFile:
    with pytest.raises(RefusedFile) as info:
        convert(source(path), config)
    error = info.value
    assert error.message and error.what_to_do
    assert path.name not in error.message and SECRET not in error.message and SECRET not in error.what_to_do
    return error


def page_inches(pdf_path: Path) -> list[tuple[float, float]]:
    reader = PdfReader(pdf_path)
    return [(round(float(p.mediabox.width) / 72, 2), round(float(p.mediabox.height) / 72, 2)) for p in reader.pages]


# --- builders ---------------------------------------------------------------------------------


def make_docx(path: Path, paragraphs: list[str], *, title: str | None = None) -> Path:
    document = DocxDocument()
    for text in paragraphs:
        document.add_paragraph(text)
    if title:
        document.core_properties.title = title
    document.save(str(path))
    return path


def make_odt(path: Path, text: str) -> Path:
    content = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               f'<office:body><office:text><text:p>{text}</text:p></office:text></office:body>'
               '</office:document-content>')
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>'
                '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
                'manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                '</manifest:manifest>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


def make_cfb(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE compound file (version 3, 512-byte sectors) holding the given streams."""
    sector = 512
    end, free, fat_sector = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    names = list(streams)
    datas = [streams[name].ljust(max(4096, -(-len(streams[name]) // sector) * sector), b"\x00") for name in names]
    fat = [fat_sector, end]  # sector 0: the FAT, sector 1: the directory
    starts = []
    for data in datas:
        count = len(data) // sector
        first = len(fat)
        starts.append(first)
        fat.extend(list(range(first + 1, first + count)) + [end])
    assert len(fat) <= sector // 4
    fat += [free] * (sector // 4 - len(fat))

    def entry(name: str, kind: int, start: int, size: int, child: int = free, right: int = free) -> bytes:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        return (encoded.ljust(64, b"\x00") + struct.pack("<HBB", len(encoded), kind, 1)
                + struct.pack("<III", free, right, child) + b"\x00" * 16 + b"\x00" * 4 + b"\x00" * 16
                + struct.pack("<IQ", start, size))

    entries = [entry("Root Entry", 5, end, 0, child=1)]
    for index, name in enumerate(names):
        right = index + 2 if index + 1 < len(names) else free
        entries.append(entry(name, 2, starts[index], len(streams[name]), right=right))
    directory = b"".join(entries).ljust(sector, b"\x00")
    assert len(directory) == sector
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\x00" * 6
              + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    assert len(header) == sector
    return header + struct.pack(f"<{sector // 4}I", *fat) + directory + b"".join(datas)


def word97_stream(*, encrypted: bool) -> bytes:
    fib = struct.pack("<HHHH", 0xA5EC, 0x00C1, 0, 0) + b"\x00\x00" + struct.pack("<H", 0x0100 if encrypted else 0)
    return fib.ljust(4096, b"\x00")


def make_tiff_g4(path: Path, pages: int, size_px: tuple[int, int], dpi: tuple[float, float]) -> Path:
    frames = []
    for number in range(pages):
        frame = Image.new("1", size_px, 1)
        for x in range(50, size_px[0] - 50):
            frame.putpixel((x, 100 + number * 20), 0)
        frames.append(frame)
    frames[0].save(path, format="TIFF", compression="group4", save_all=True, append_images=frames[1:], dpi=dpi)
    return path


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


# --- every accepted input ---------------------------------------------------------------------


def test_text_pdf_is_used_as_is_with_its_text_and_title(config, tmp_path):
    pdf = tmp_path / "report.pdf"
    c = canvas.Canvas(str(pdf), invariant=1)
    c.setTitle("Utilization Review Determination")
    for text in ("First page: lumbar MRI findings", "Second page: plan of care"):
        c.drawString(72, 700, text)
        c.showPage()
    c.save()

    result = convert(source(pdf), config)

    assert result.source_kind == "pdf"
    assert result.pdf_path == pdf.resolve(), "a usable PDF is not copied"
    assert result.pages == 2
    assert "lumbar MRI" in result.page_texts[0] and "plan of care" in result.page_texts[1]
    assert result.sha256 == sha256_file(pdf)
    assert result.title == "Utilization Review Determination"


def test_sensible_title_drops_file_names_and_placeholders():
    assert sensible_title("Microsoft Word - Appeal letter.docx") is None
    assert sensible_title("Microsoft Word - Appeal letter") == "Appeal letter"
    assert sensible_title("untitled") is None
    assert sensible_title("C:\\scans\\img001") is None
    assert sensible_title("  ") is None
    assert sensible_title(None) is None
    assert sensible_title("Notice  of\x00Action") == "Notice of Action"


def test_office_documents_convert_through_libreoffice_two_at_a_time(config, tmp_path):
    docx = make_docx(tmp_path / "letter.docx", ["Dear member,", "Your grievance was received."],
                     title="Grievance acknowledgment")
    rtf = tmp_path / "note.rtf"
    rtf.write_text(r"{\rtf1\ansi\deff0{\fonttbl{\f0 Times New Roman;}}\f0\fs24 Physician note: "
                   r"knee pain for six weeks.\par Second line.\par}")
    odt = make_odt(tmp_path / "summary.odt", "Discharge summary for the disputed service")
    results = convert_many([source(docx), source(rtf), source(odt)], config)

    kinds = [r.source_kind for r in results]
    assert kinds == ["docx", "rtf", "odt"], results
    expected = ["grievance was received", "knee pain for six weeks", "Discharge summary"]
    for result, phrase, original in zip(results, expected, (docx, rtf, odt)):
        assert isinstance(result, Converted)
        assert result.pages == 1
        assert phrase in " ".join(result.page_texts[0].split())
        assert result.pdf_path != original and result.pdf_path.is_relative_to(config.cache_dir)
        assert len(PdfReader(result.pdf_path).pages) == 1
        assert stat.S_IMODE(result.pdf_path.stat().st_mode) == 0o640
    assert results[0].title == "Grievance acknowledgment"
    # Scratch copies (LibreOffice profiles, input copies) are removed afterwards.
    assert not any((config.work_dir / "convert").iterdir())


def test_legacy_doc_converts(config, tmp_path):
    soffice = office.soffice_command()
    docx = make_docx(tmp_path / "made.docx", ["Legacy Word format: prior authorization request"])
    outdir = tmp_path / "out"
    profile = tmp_path / "profile"
    import subprocess

    subprocess.run([soffice, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
                    "--convert-to", "doc", "--outdir", str(outdir), str(docx)],
                   check=True, capture_output=True, timeout=180)
    doc = outdir / "made.doc"
    assert doc.read_bytes().startswith(CFB_MAGIC)

    result = convert(source(doc), config)

    assert result.source_kind == "doc"
    assert "prior authorization request" in " ".join(result.page_texts[0].split())


def test_multipage_fax_tiff_keeps_its_physical_size(config, tmp_path):
    # A standard-resolution fax: 1728 pixels across at 204 dpi, 98 lines per inch.
    tiff = make_tiff_g4(tmp_path / "fax.tif", 3, (1728, 1078), (204, 98))

    result = convert(source(tiff), config)

    assert result.source_kind == "tiff"
    assert result.pages == 3
    assert result.page_texts == ("", "", "")
    assert not result.has_text
    for width, height in page_inches(result.pdf_path):
        assert width == pytest.approx(1728 / 204, abs=0.02)
        assert height == pytest.approx(1078 / 98, abs=0.02)


def test_jpeg_and_png_become_one_page_each_at_their_size(config, tmp_path):
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (900, 600), (200, 180, 160)).save(jpeg, format="JPEG", dpi=(300, 300))
    png_no_dpi = tmp_path / "scan.png"
    Image.new("L", (3400, 4400), 255).save(png_no_dpi, format="PNG")  # 17 x 22 in at 200 dpi
    png_alpha = tmp_path / "alpha.png"
    Image.new("RGBA", (400, 200), (10, 20, 30, 128)).save(png_alpha, format="PNG", dpi=(100, 100))

    jpeg_result, no_dpi_result, alpha_result = convert_many(
        [source(jpeg), source(png_no_dpi), source(png_alpha)], config)

    assert jpeg_result.source_kind == "jpeg" and jpeg_result.pages == 1
    assert page_inches(jpeg_result.pdf_path) == [(3.0, 2.0)]
    # No resolution given: 200 dpi, fitted within letter paper.
    assert no_dpi_result.source_kind == "png"
    assert page_inches(no_dpi_result.pdf_path) == [(8.5, 11.0)]
    assert alpha_result.source_kind == "png" and page_inches(alpha_result.pdf_path) == [(4.0, 2.0)]


def test_page_size_rules():
    assert image.page_size_points(2550, 3300, (300.0, 300.0)) == pytest.approx((612.0, 792.0))
    assert image.page_size_points(1000, 500, None) == pytest.approx((360.0, 180.0))  # 200 dpi
    width, height = image.page_size_points(4000, 2864, None)  # too big for letter: fitted
    assert width == pytest.approx(11 * 72) and height <= 8.5 * 72


def test_latin1_text_is_decoded_and_rendered_readably(config, tmp_path):
    body = ("Résumé of the café visit: the patient reported naïve symptoms; señor García "
            "was seen on Tuesday.\r\n") * 3 + "Last line é à ü ç\r\n"
    txt = tmp_path / "note.txt"
    txt.write_bytes(body.encode("latin-1"))

    result = convert(source(txt), config)

    assert result.source_kind == "txt"
    assert result.pages == 1
    text = result.page_texts[0]
    assert "señor García" in text and "Last line é à ü ç" in text
    assert "\r" not in text
    extracted = PdfReader(result.pdf_path).pages[0].extract_text()
    assert "Garc" in extracted
    box = PdfReader(result.pdf_path).pages[0].mediabox
    assert (float(box.width), float(box.height)) == (612.0, 792.0)


def test_utf16_text_and_long_text_wrap_onto_several_pages(config, tmp_path):
    lines = [f"Line {number:03d}: progress note for the disputed lumbar fusion, continued. " * 2
             for number in range(150)]
    txt = tmp_path / "long.txt"
    txt.write_bytes("\n".join(lines).encode("utf-16"))

    result = convert(source(txt), config)

    assert result.pages >= 3
    assert result.pages == len(PdfReader(result.pdf_path).pages)
    joined = "\n".join(result.page_texts)
    assert "Line 000" in result.page_texts[0] and "Line 149" in result.page_texts[-1]
    assert joined.count("Line ") == 150 * 2
    assert max(len(line) for line in joined.splitlines()) <= 90


def test_wrap_and_decode_helpers():
    pages = text_module.wrap_text("a\fb\n" + "word " * 40, columns=20, lines_per_page=3, max_pages=10)
    assert pages[0] == ["a"]
    assert pages[1][0] == "b"
    assert all(len(line) <= 20 for page in pages for line in page)
    with pytest.raises(RefusedFile) as info:
        text_module.wrap_text("x\n" * 100, columns=20, lines_per_page=10, max_pages=3)
    assert info.value.reason == "too_many_pages"
    assert text_module.decode_text("\ufeffBOM text".encode("utf-8")) == "BOM text"
    assert text_module.normalise_text("a\r\nb\rc\x00d\x07\te") == "a\nb\ncd      e"


# --- type by content, not by name -------------------------------------------------------------


def test_type_is_told_by_content_not_name(config, tmp_path):
    jpeg_named_pdf = tmp_path / "scan.pdf"
    Image.new("RGB", (200, 100), (255, 255, 255)).save(jpeg_named_pdf, format="JPEG", dpi=(100, 100))
    pdf_named_txt = make_pdf(tmp_path / "letter.txt", ["A PDF that was given a .txt name"])

    jpeg_result, pdf_result = convert_many([source(jpeg_named_pdf), source(pdf_named_txt)], config)

    assert jpeg_result.source_kind == "jpeg" and page_inches(jpeg_result.pdf_path) == [(2.0, 1.0)]
    assert pdf_result.source_kind == "pdf" and "given a .txt name" in pdf_result.page_texts[0]


def test_sniff(tmp_path):
    def sniffed(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return sniff(path)

    assert sniffed("a.bin", b"%PDF-1.7\n") == "pdf"
    assert sniffed("a.pdf", b"junk before %PDF-1.4\n") == "pdf"
    assert sniffed("a.dat", b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniffed("a.dat", b"\xff\xd8\xff\xe0....") == "jpeg"
    assert sniffed("a.dat", b"II*\x00....") == "tiff"
    assert sniffed("a.doc", b"{\\rtf1 hello}") == "rtf"
    assert sniffed("a.txt", b"plain words") == "txt"
    assert sniffed("a.doc", make_cfb({"WordDocument": word97_stream(encrypted=False)})) == "doc"
    for name, data, reason in (
            ("a.bin", b"\x00\x01\x02 random", "unsupported"),
            ("a.gif", b"GIF89a....", "unsupported"),
            ("a.png", b"not a png at all", "corrupt"),
            ("a.xls", make_cfb({"Workbook": b"x" * 10}), "unsupported"),
            ("a.docx", make_cfb({"EncryptionInfo": b"\x04\x00\x04\x00", "EncryptedPackage": b"\x00" * 5000}),
             "encrypted"),
            ("a.doc", make_cfb({"WordDocument": word97_stream(encrypted=True)}), "encrypted"),
            ("a.doc", make_cfb({"WordDocument": word97_stream(encrypted=False), "_VBA_PROJECT": b"x"}), "macros")):
        with pytest.raises(RefusedFile) as info:
            sniffed(name, data)
        assert info.value.reason == reason, name


# --- every refusal reason ---------------------------------------------------------------------


def test_password_protected_pdf_is_refused_as_encrypted(config, tmp_path):
    plain = make_pdf(tmp_path / "plain.pdf", [SECRET])
    writer = PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password="open-sesame", owner_password="owner-secret", algorithm="AES-256")
    locked = tmp_path / "locked.pdf"
    with open(locked, "wb") as handle:
        writer.write(handle)

    error = refused(locked, config)

    assert error.reason == "encrypted"
    assert error.what_to_do == "ask the sender for an unlocked copy (no password) and drop that in"
    assert not error.transient


def test_pdf_with_only_an_owner_password_is_accepted_as_a_decrypted_copy(config, tmp_path):
    plain = make_pdf(tmp_path / "plain.pdf", ["Restricted printing only"])
    writer = PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-128")
    restricted = tmp_path / "restricted.pdf"
    with open(restricted, "wb") as handle:
        writer.write(handle)

    result = convert(source(restricted), config)

    assert result.pdf_path != restricted.resolve() and result.pdf_path.is_relative_to(config.cache_dir)
    copy = PdfReader(result.pdf_path)
    assert not copy.is_encrypted
    assert "Restricted printing only" in result.page_texts[0]
    assert result.sha256 == sha256_file(restricted), "the hash is of the original bytes"


def test_password_protected_word_files_are_refused_as_encrypted(config, tmp_path):
    docx = tmp_path / "locked.docx"
    docx.write_bytes(make_cfb({"EncryptionInfo": b"\x04\x00\x04\x00" + b"\x00" * 100,
                               "EncryptedPackage": b"\x00" * 5000}))
    doc = tmp_path / "locked.doc"
    doc.write_bytes(make_cfb({"WordDocument": word97_stream(encrypted=True)}))
    results = convert_many([source(docx), source(doc)], config)
    assert [r.reason for r in results] == ["encrypted", "encrypted"]


def test_damaged_files_are_refused_as_corrupt(config, tmp_path):
    bad_pdf = tmp_path / "bad.pdf"
    bad_pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 20)
    good = make_pdf(tmp_path / "good.pdf", ["x"])
    cut_pdf = tmp_path / "cut.pdf"
    cut_pdf.write_bytes(good.read_bytes()[:300])
    docx = make_docx(tmp_path / "whole.docx", [SECRET])
    cut_docx = tmp_path / "cut.docx"
    cut_docx.write_bytes(docx.read_bytes()[:2000])
    png = tmp_path / "whole.png"
    Image.effect_noise((300, 300), 60).save(png, format="PNG")
    cut_png = tmp_path / "cut.png"
    cut_png.write_bytes(png.read_bytes()[:4000])

    results = convert_many([source(p) for p in (bad_pdf, cut_pdf, cut_docx, cut_png)], config)

    for result in results:
        assert isinstance(result, RefusedFile) and result.reason == "corrupt", result
        assert result.what_to_do == "the file is damaged or incomplete; ask for a new copy or re-scan it"
        assert not result.transient


def test_empty_files_are_refused(config, tmp_path):
    zero = tmp_path / "zero.pdf"
    zero.write_bytes(b"")
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n\t \n")
    assert refused(zero, config).reason == "empty"
    assert refused(blank, config).reason == "empty"


def test_unsupported_files_are_refused(config, tmp_path):
    gif = tmp_path / "picture.gif"
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    xlsx = tmp_path / "sheet.xlsx"
    with zipfile.ZipFile(xlsx, "w") as archive:
        archive.writestr("[Content_Types].xml", '<Types><Override ContentType="application/'
                         'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>')
        archive.writestr("xl/workbook.xml", "<workbook/>")
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    xxe = make_docx(tmp_path / "xxe.docx", ["hello"])
    with zipfile.ZipFile(xxe, "a") as archive:
        archive.writestr("word/extra.xml", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                         '"file:///etc/passwd">]><x>&e;</x>')

    for path in (gif, xlsx, binary, xxe):
        error = refused(path, config)
        assert error.reason == "unsupported", path.name


def test_too_large_is_refused_before_reading(config, tmp_path, monkeypatch):
    pdf = make_pdf(tmp_path / "big.pdf", ["page"] * 3)
    small = with_limits(config, max_file_bytes=100)
    monkeypatch.setattr(batch, "run_jobs", _no_worker)
    error = refused(pdf, small)
    assert error.reason == "too_large"
    assert "MB" in error.message


def test_too_many_pages_is_refused_and_depends_on_the_limit(config, tmp_path):
    pdf = make_pdf(tmp_path / "long.pdf", ["page one", "page two", "page three"])
    txt = tmp_path / "long.txt"
    txt.write_text("line\n" * 500)
    tiff = make_tiff_g4(tmp_path / "long.tif", 3, (400, 400), (200, 200))
    strict = with_limits(config, max_pages=2)

    results = convert_many([source(pdf), source(txt), source(tiff)], strict)
    assert [r.reason for r in results] == ["too_many_pages"] * 3
    assert "2 pages" in results[0].message

    # Not a permanent refusal: with the normal limit the same file is taken.
    assert convert(source(pdf), config).pages == 3
    # And once converted, a tighter limit is applied to the cached result too.
    assert refused(pdf, strict).reason == "too_many_pages"


def test_macro_bearing_word_files_are_refused(config, tmp_path):
    docm = make_docx(tmp_path / "macro.docm", ["has macros"])
    with_vba = make_docx(tmp_path / "hidden.docx", ["looks innocent"])
    with zipfile.ZipFile(with_vba, "a") as archive:
        archive.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 fake vba")
    results = convert_many([source(docm), source(with_vba)], config)
    assert [r.reason for r in results] == ["macros", "macros"]
    assert "macros" in results[0].message and "without macros" in results[0].what_to_do


def test_conversion_failure_is_refused(config, tmp_path, monkeypatch):
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    write_executable(fake_bin / "soffice", "#!/bin/sh\nexit 1\n")
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    docx = make_docx(tmp_path / "letter.docx", ["cannot be converted today"])

    error = refused(docx, config)

    assert error.reason == "conversion_failed"
    assert "LibreOffice" in error.message


def test_a_hanging_conversion_times_out_is_killed_and_does_not_stop_the_others(config, tmp_path, monkeypatch):
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    pid_file = tmp_path / "soffice.pid"
    write_executable(fake_bin / "soffice", f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    quick = with_limits(config, conversion_timeout_seconds=1.0, pdf_open_timeout_seconds=4.0, workers=2)
    hanging = make_docx(tmp_path / "hangs.docx", ["never finishes"])
    fine = make_pdf(tmp_path / "fine.pdf", ["converted while the other hangs"])

    hung, done = convert_many([source(hanging), source(fine)], quick)

    assert isinstance(done, Converted) and "while the other hangs" in done.page_texts[0]
    # Final, never retried as if the machine were busy; the message names the limit.
    assert isinstance(hung, RefusedFile) and hung.reason == "timeout" and not hung.transient
    assert "5-second time limit" in hung.message  # conversion (1 s) + reading the PDF (4 s)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _process_alive(pid):
        assert time.monotonic() < deadline, "the hanging LibreOffice was not killed"
        time.sleep(0.05)
    # A timeout is not cached either (it depends on the configured limit).
    assert not (cache.entry_dir(config.cache_dir, sha256_file(hanging)) / cache.REFUSED).exists()


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


# --- the cache --------------------------------------------------------------------------------


def _no_worker(*args, **kwargs):
    raise AssertionError("a worker was started: the file was read again")


def test_unchanged_files_are_answered_from_the_cache(config, tmp_path, monkeypatch):
    pdf = make_pdf(tmp_path / "a.pdf", ["cached text"])
    txt = tmp_path / "b.txt"
    txt.write_text("cached plain text")
    first = convert_many([source(pdf), source(txt)], config)
    folder = cache.entry_dir(config.cache_dir, first[1].sha256)
    for name in (cache.RESULT, cache.TEXTS, cache.CONVERTED_PDF):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o640
    assert folder.parent.parent == config.cache_dir and folder.name == first[1].sha256

    monkeypatch.setattr(batch, "run_jobs", _no_worker)
    import pypdf

    monkeypatch.setattr(pypdf, "PdfReader", _no_worker)
    second = convert_many([source(pdf), source(txt)], config)
    assert second == first

    # The same bytes under another name and folder: still a hit, pointing at the new original.
    copy = tmp_path / "elsewhere" / "renamed.pdf"
    copy.parent.mkdir()
    copy.write_bytes(pdf.read_bytes())
    again = convert(source(copy), config)
    assert again.pdf_path == copy.resolve() and again.page_texts == first[0].page_texts


def test_permanent_refusals_are_cached(config, tmp_path, monkeypatch):
    docm = make_docx(tmp_path / "macro.docm", ["x"])
    assert refused(docm, config).reason == "macros"
    record = cache.entry_dir(config.cache_dir, sha256_file(docm)) / cache.REFUSED
    assert json.loads(record.read_text())["reason"] == "macros"
    assert stat.S_IMODE(record.stat().st_mode) == 0o640
    monkeypatch.setattr(batch, "run_jobs", _no_worker)
    assert refused(docm, config).reason == "macros"


def test_a_damaged_cache_entry_is_converted_again(config, tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", ["rebuilt after damage"])
    first = convert(source(pdf), config)
    texts = cache.entry_dir(config.cache_dir, first.sha256) / cache.TEXTS
    texts.write_text("{not json")
    assert cache.load(config.cache_dir, first.sha256, pdf) is None
    assert convert(source(pdf), config) == first


@pytest.mark.parametrize("left", ["empty", "torn", "other pages", "no result"])
def test_what_a_crash_leaves_of_an_unsynced_cache_entry_is_converted_again(config, tmp_path, left):
    """texts.json and result.json are written without syncing them to disk: an empty, torn or stale
    texts.json (even valid JSON with the right page count) or a lost result.json is a miss."""
    pdf = make_pdf(tmp_path / "a.pdf", ["first page text", "second page text"])
    first = convert(source(pdf), config)
    entry = cache.entry_dir(config.cache_dir, first.sha256)
    texts = entry / cache.TEXTS
    damage = {"empty": b"", "torn": texts.read_bytes()[:7],
              "other pages": json.dumps(["another text", "another page"]).encode(), "no result": None}[left]
    if damage is None:
        (entry / cache.RESULT).unlink()
    else:
        texts.write_bytes(damage)
    assert cache.load(config.cache_dir, first.sha256, pdf) is None
    again = convert(source(pdf), config)
    assert again == first and "second page text" in again.page_texts[1]


def test_only_a_converted_pdf_is_synced_to_disk_in_the_cache(tmp_path, monkeypatch):
    from packet import fsutil

    synced: list[str] = []
    real_fsync = fsutil.os.fsync
    monkeypatch.setattr(fsutil.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    folder = cache.store_converted(tmp_path, "a" * 64, kind="pdf", page_texts=["one"], title=None)
    assert synced == []
    assert cache.load(tmp_path, "a" * 64, tmp_path / "original.pdf").page_texts == ("one",)
    folder = cache.store_converted(tmp_path, "b" * 64, kind="docx", page_texts=["two"], title=None,
                                   pdf_bytes=b"%PDF-1.4 converted")
    assert len(synced) == 2 and Path(synced[1]) == folder  # the PDF's bytes, then its folder
    assert Path(synced[0]).parent == folder and Path(synced[0]).name.startswith(".tmp-")


def test_results_keep_input_order_and_duplicates_convert_once(config, tmp_path):
    one = make_pdf(tmp_path / "one.pdf", ["one"])
    two = tmp_path / "two.pdf"
    two.write_bytes(one.read_bytes())
    zero = tmp_path / "zero.pdf"
    zero.write_bytes(b"")
    three = make_pdf(tmp_path / "three.pdf", ["three", "three b"])
    results = convert_many([source(one), source(zero), source(two), source(three)], config)
    assert [r.pages if isinstance(r, Converted) else r.reason for r in results] == [1, "empty", 1, 2]
    assert results[0].pdf_path == one.resolve() and results[2].pdf_path == two.resolve()


def test_convert_raises_the_refusal_and_never_logs_names(config, tmp_path):
    from packet import log as service_log

    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        locked = tmp_path / f"{SECRET}.docx"
        locked.write_bytes(make_cfb({"EncryptedPackage": b"\x00" * 5000}))
        with pytest.raises(RefusedFile):
            convert(source(locked), config)
        convert(source(make_pdf(tmp_path / f"{SECRET} 2.pdf", [SECRET])), config)
    finally:
        service_log.set_stream(None)
    assert "convert." in stream.getvalue()
    assert SECRET not in stream.getvalue()


def test_bytes_that_differ_from_the_hashed_ones_are_never_cached(config, tmp_path, monkeypatch):
    pdf = make_pdf(tmp_path / "moving.pdf", ["still being copied"])
    wrong = "0" * 64
    monkeypatch.setattr(batch, "check_and_hash", lambda source, limit: wrong)

    result = convert_many([source(pdf)], config)[0]

    assert isinstance(result, RefusedFile) and result.transient and result.reason == "corrupt"
    assert not cache.entry_dir(config.cache_dir, wrong).exists()


def test_a_text_file_quoting_a_pdf_header_stays_text(config, tmp_path):
    txt = tmp_path / "it-note.txt"
    txt.write_text("Ticket: the scanner writes files starting with %PDF-1.4 but this is a note.\n")
    result = convert(source(txt), config)
    assert result.source_kind == "txt" and "%PDF-1.4" in result.page_texts[0]


# --- text extraction: pdftotext first, pypdf as the fallback ----------------------------------


def _fake_pdftotext(tmp_path: Path, monkeypatch, script: str) -> None:
    """A `pdftotext` first on PATH (the worker processes inherit it)."""
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir(exist_ok=True)
    write_executable(fake_bin / "pdftotext", "#!/bin/sh\n" + script)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")


def test_pdftotext_gives_one_text_per_page_and_blank_pages_stay_blank(tmp_path):
    pdf = make_pdf(tmp_path / "three.pdf", ["Page one: lumbar MRI\nsecond line", "", "Page three: plan of care"])

    texts = pdftotext_pages(pdf, 3, timeout=60)

    assert texts is not None and len(texts) == 3
    assert texts[0] == "Page one: lumbar MRI\nsecond line"
    assert texts[1] == ""
    assert texts[2] == "Page three: plan of care"
    assert pdftotext_pages(pdf, 4, timeout=60) is None, "a different page count is not trusted"


def test_the_worker_takes_page_texts_from_pdftotext(config, tmp_path, monkeypatch):
    _fake_pdftotext(tmp_path, monkeypatch, "printf 'FROM-PDFTOTEXT one\\fFROM-PDFTOTEXT two\\f'\n")
    pdf = make_pdf(tmp_path / "two.pdf", ["typed first page", "typed second page"])

    result = convert(source(pdf), config)

    assert result.page_texts == ("FROM-PDFTOTEXT one", "FROM-PDFTOTEXT two")


@pytest.mark.parametrize("script", ["exit 1\n",  # fails
                                    "printf 'only one page\\f'\n",  # wrong page count
                                    "printf '\\377\\376 not utf-8\\f\\f'\n",  # undecodable output
                                    "exec sleep 600\n"])  # hangs past its share of the time limit
def test_pypdf_reads_the_text_when_pdftotext_fails(config, tmp_path, monkeypatch, script):
    _fake_pdftotext(tmp_path, monkeypatch, script)
    quick = with_limits(config, pdf_open_timeout_seconds=4.0)  # pdftotext gets half of it
    pdf = make_pdf(tmp_path / "two.pdf", ["typed first page", "typed second page"])

    result = convert(source(pdf), quick)

    assert result.pages == 2
    assert "typed first page" in result.page_texts[0] and "typed second page" in result.page_texts[1]
    reader = PdfReader(pdf)
    assert list(result.page_texts) == [page.extract_text() for page in reader.pages]


def test_pypdf_reads_the_text_when_pdftotext_is_missing(tmp_path, monkeypatch):
    pdf = make_pdf(tmp_path / "two.pdf", ["typed first page", "typed second page"])
    reader = PdfReader(pdf)
    assert page_texts(pdf, reader, 2, 30.0)[0] == "typed first page"  # pdftotext's

    monkeypatch.setattr(pdf_module.shutil, "which", lambda name: None)

    assert pdftotext_pages(pdf, 2, timeout=30) is None
    assert page_texts(pdf, reader, 2, 30.0) == [page.extract_text() for page in reader.pages]


def test_old_cache_entries_are_not_read_as_pdftotext_text(config, tmp_path):
    pdf = make_pdf(tmp_path / "one.pdf", ["fresh text"])
    sha = sha256_file(pdf)
    folder = cache.store_converted(config.cache_dir, sha, kind="pdf", page_texts=["stale pypdf text"], title=None)
    meta = json.loads((folder / cache.RESULT).read_text())
    meta["version"] = cache.CACHE_VERSION - 1
    (folder / cache.RESULT).write_text(json.dumps(meta))

    assert cache.load(config.cache_dir, sha, pdf) is None
    assert convert(source(pdf), config).page_texts == ("fresh text",)


def test_pdftotext_keeps_a_hyphen_at_a_line_end(tmp_path):
    # pdftotext's default reading-order mode would give "attorneyclient", hiding the privilege phrase.
    pdf = make_pdf(tmp_path / "memo.pdf", ["This memo is protected by the attorney-\nclient privilege."])

    texts = pdftotext_pages(pdf, 1, timeout=60)

    assert texts == ["This memo is protected by the attorney-\nclient privilege."]


# --- how many workers a batch starts ---------------------------------------------------------------


def _counting_worker_starts(monkeypatch) -> list[str]:
    """The roles of the pool workers started from now on (the pool's own class, counted)."""
    from packet.workers import pool

    started: list[str] = []

    class Counted(pool.Worker):
        def __init__(self, role):
            started.append(role)
            super().__init__(role)

    monkeypatch.setattr(pool, "Worker", Counted)
    return started


def test_a_few_small_files_share_one_worker(config, tmp_path, monkeypatch):
    """A second worker is a fresh interpreter, dearer than a few small text PDFs together: three of
    them are converted by the one idle worker a service keeps (started and warmed first here, so
    the machine's load cannot make a file seem slow)."""
    two = with_limits(config, workers=2)
    batch.prestart(two)
    started = _counting_worker_starts(monkeypatch)
    files = [make_pdf(tmp_path / f"letter{n}.pdf", [f"Letter {n}"]) for n in range(3)]
    results = convert_many([source(path) for path in files], two)
    assert [r.page_texts[0].strip() for r in results] == ["Letter 0", "Letter 1", "Letter 2"]
    assert started == []


def test_files_worth_a_second_worker_get_one_at_once(config, tmp_path, monkeypatch):
    """Files waiting that hold EXTRA_WORKER_BYTES or more (lowered here to a byte) bring a second
    worker at once, as a large case's do."""
    monkeypatch.setattr(batch, "EXTRA_WORKER_BYTES", 1)
    started = _counting_worker_starts(monkeypatch)
    two = with_limits(config, workers=2)
    files = [make_pdf(tmp_path / f"letter{n}.pdf", [f"Letter {n}"]) for n in range(3)]
    assert all(isinstance(r, Converted) for r in convert_many([source(path) for path in files], two))
    assert started == ["convert", "convert"]


def test_a_file_that_keeps_its_worker_busy_brings_a_second_for_the_others(config, tmp_path, monkeypatch):
    """A small file can be slow (LibreOffice, a hostile PDF): once one has been with its worker for
    EXTRA_WORKER_AFTER seconds, a second worker takes the small files waiting behind it."""
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    write_executable(fake_bin / "soffice", "#!/bin/sh\nexec sleep 600\n")
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    started = _counting_worker_starts(monkeypatch)
    quick = with_limits(config, conversion_timeout_seconds=3.0, pdf_open_timeout_seconds=3.0, workers=2)
    slow = make_docx(tmp_path / "slow.docx", ["never finishes"])
    fine = [make_pdf(tmp_path / f"fine{n}.pdf", [f"converted beside the slow one {n}"]) for n in range(2)]
    order: list[int] = []
    results = batch.convert_many([source(slow), *map(source, fine)], quick,
                                 on_result=lambda index, result: order.append(index))
    assert results[0].reason == "timeout"
    assert all(isinstance(r, Converted) for r in results[1:])
    assert started == ["convert", "convert"]
    assert order[-1] == 0  # the small files were done before the slow one's limit ran out


def test_a_conversion_worker_hands_memory_back_only_when_a_job_left_it_large(config, tmp_path, monkeypatch):
    """An OCR'd scan or a large file leaves the worker above its idle size: it then returns the freed
    memory once it has answered (packet.workers.pool.return_free_memory); after a small file it
    does not (a collection would delay the next file by a few milliseconds)."""
    asked = worker_trims(monkeypatch)
    pdf = tmp_path / "note.pdf"
    c = canvas.Canvas(str(pdf), invariant=1)
    c.drawString(72, 700, "Progress note")
    c.save()
    assert convert(source(pdf), config).pages == 1
    assert (batch.JOB, batch.WORKER_TRIM_ABOVE_MIB) in asked
    assert 45 < batch.WORKER_TRIM_ABOVE_MIB < batch.WORKER_KEEP_RSS_MIB
