"""OCR in the conversion workers: every page without a text layer is read (TIFF/JPEG/PNG frames,
image-only PDFs, image-only pages of digital PDFs), its text becomes the page's text, the converted
PDF carries an invisible text layer, the confidence is recorded, the limits refuse the file naming
the limit, and a page is never read twice (counted with a PATH shim around tesseract)."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_config, make_pdf
from scankit import counted_tesseract, fax_tiff, grey_jpeg, image_pdf, pdf_text, png_scan

from packet.errors import RefusedFile
from packet.intake import cache
from packet.intake.convert.batch import convert, convert_many
from packet.model.models import SourceFile

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")

LAB = ["LABORATORY REPORT", "Patient: CHEN, ROBERT W", "Member ID: ZX44881200", "HIV-1/2 antibody: REACTIVE"]


def source(path: Path) -> SourceFile:
    info = path.stat()
    return SourceFile(path.name, path, info.st_size, info.st_mtime_ns)


@pytest.fixture
def counted(tmp_path, monkeypatch):
    """tesseract counting the pages it reads; fresh conversion workers see it."""
    with counted_tesseract(tmp_path, monkeypatch) as runs:
        yield runs


@pytest.mark.parametrize("make", ["tiff", "jpeg", "png"])
def test_an_image_scan_is_read_and_its_pdf_is_searchable(tmp_path, make):
    config = make_config(tmp_path)
    path = tmp_path / f"scan.{make}"
    {"tiff": lambda: fax_tiff(path, [LAB]), "jpeg": lambda: grey_jpeg(path, LAB),
     "png": lambda: png_scan(path, LAB)}[make]()
    before = path.read_bytes()
    converted = convert(source(path), config)
    assert path.read_bytes() == before, "the clerk's file is only read"
    assert "CHEN, ROBERT" in converted.page_texts[0] and "REACTIVE" in converted.page_texts[0]
    assert len(converted.page_confidence) == 1 and 0.7 < converted.page_confidence[0] <= 1.0
    assert converted.pdf_path != path and converted.pdf_path.is_file()
    searchable = pdf_text(converted.pdf_path)
    assert "CHEN" in searchable and "REACTIVE" in searchable


def test_every_frame_of_a_multipage_fax_is_read(tmp_path):
    config = make_config(tmp_path)
    path = fax_tiff(tmp_path / "fax.tif", [["FAX COVER SHEET", "Pages: 2"], LAB])
    converted = convert(source(path), config)
    assert converted.pages == 2
    assert "COVER" in converted.page_texts[0] and "REACTIVE" in converted.page_texts[1]
    assert all(value is not None for value in converted.page_confidence)
    pages = pdf_text(converted.pdf_path).split("\f")
    assert "COVER" in pages[0] and "CHEN" in pages[1]


def test_image_only_pages_of_a_digital_pdf_are_read_and_digital_pages_kept(tmp_path):
    config = make_config(tmp_path)
    path = image_pdf(tmp_path / "mixed.pdf", ["LAB SUMMARY typed page\nResults follow.", LAB, "Typed last page"])
    converted = convert(source(path), config)
    assert converted.page_texts[0].startswith("LAB SUMMARY typed page")
    assert "CHEN, ROBERT" in converted.page_texts[1]
    assert converted.page_texts[2] == "Typed last page"
    assert converted.page_confidence[0] is None and converted.page_confidence[2] is None
    assert 0.7 < converted.page_confidence[1] <= 1.0
    pages = pdf_text(converted.pdf_path).split("\f")
    assert "LAB SUMMARY" in pages[0] and "REACTIVE" in pages[1] and "Typed last page" in pages[2]
    assert pages[0].count("LAB SUMMARY") == 1, "a digital page gets no second text layer"


FAX_HEADER = "10/01/2026 14:22 FROM: VALLEY CLINIC (559) 555-0100 TO: GOLDEN POPPY P.002/003"


def test_a_scan_under_a_fax_header_line_is_read_too(tmp_path):
    # The page has text (the fax server's line), so it is not "without a text layer"; the record
    # beneath it is a picture, and only OCR says whose it is.
    config = make_config(tmp_path)
    path = image_pdf(tmp_path / "fax.pdf", ["Typed cover page\nTo: Golden Poppy Health Plan\nPages: 3",
                                            (FAX_HEADER, LAB), "Typed last page"])
    converted = convert(source(path), config)
    second = converted.page_texts[1]
    assert second.startswith("10/01/2026 14:22 FROM: VALLEY CLINIC"), "the page keeps its own text first"
    assert "CHEN, ROBERT" in second and "REACTIVE" in second
    assert converted.page_confidence[0] is None and converted.page_confidence[2] is None
    assert 0.7 < converted.page_confidence[1] <= 1.0
    assert "REACTIVE" in pdf_text(converted.pdf_path).split("\f")[1]


NOTICE = ("CONFIDENTIALITY NOTICE: This facsimile contains protected health information that is "
          "privileged and confidential under state and federal law. It is intended only for the use of "
          "the recipient named above. If you have received this fax in error, notify the sender at once "
          "by telephone and destroy the pages. Any review, disclosure, copying or distribution of its "
          "contents by anyone other than the intended recipient is strictly prohibited.")


def _page_with_picture(path: Path, picture, text: str, *, top: bool = False) -> Path:
    """One letter page: the picture over the whole page, `text` wrapped over it (at its foot, or top)."""
    import textwrap

    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    png = io.BytesIO()
    picture.save(png, format="PNG")
    sheet = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    sheet.drawImage(ImageReader(io.BytesIO(png.getvalue())), 0, 0, *letter)
    sheet.setFont("Helvetica", 7)
    y = letter[1] - 40 if top else 60
    for line in textwrap.wrap(text, 130):
        sheet.drawString(18, y, line)
        y -= 9
    sheet.showPage()
    sheet.save()
    return path


def test_a_whole_page_scan_under_a_confidentiality_notice_is_read(tmp_path):
    # Some fax servers print their notice on every page: several hundred letters, over a scan that
    # names another patient.
    from scankit import page_image

    path = _page_with_picture(tmp_path / "fax.pdf", page_image(LAB, dpi=200), NOTICE)
    converted = convert(source(path), make_config(tmp_path))
    assert converted.page_texts[0].startswith("CONFIDENTIALITY NOTICE")
    assert "CHEN, ROBERT" in converted.page_texts[0] and converted.page_confidence[0] is not None


def test_a_typed_letter_over_a_full_page_background_is_not_read(tmp_path):
    # Letterhead printed as one picture behind a whole letter: the letter's own text says what it is.
    from PIL import Image

    letter_text = " ".join([NOTICE] * 3)  # about 1,200 letters
    path = _page_with_picture(tmp_path / "letter.pdf", Image.new("L", (1700, 2200), 250), letter_text, top=True)
    converted = convert(source(path), make_config(tmp_path))
    assert converted.page_confidence == () and converted.pdf_path == path


def test_pictures_are_found_through_forms_and_damaged_resources_are_passed_over():
    # A form that draws itself (a loop), an image size written as a real number, a page whose
    # /XObject is not a dictionary: looked at without a crash or an endless walk.
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, NumberObject, StreamObject

    from packet.intake.convert.pdf import pictured_pages
    from packet.pdfread import PdfReader

    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    form = StreamObject()
    form[NameObject("/Subtype")] = NameObject("/Form")
    form_ref = writer._add_object(form)
    image = StreamObject()
    image.update({NameObject("/Subtype"): NameObject("/Image"), NameObject("/Width"): FloatObject(2550.0),
                  NameObject("/Height"): NumberObject(3300)})
    resources = DictionaryObject({NameObject("/XObject"): DictionaryObject({NameObject("/F"): form_ref})})
    form[NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"): DictionaryObject({
        NameObject("/Self"): form_ref, NameObject("/I"): writer._add_object(image)})})
    page[NameObject("/Resources")] = resources
    broken = writer.add_blank_page(612, 792)
    broken[NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"): ArrayObject([NumberObject(1)])})
    buffer = io.BytesIO()
    writer.write(buffer)
    assert pictured_pages(PdfReader(io.BytesIO(buffer.getvalue())), ["Fax header", "Fax header"]) == [0]


def _page_drawing(xobjects: list[str]) -> bytes:
    """One blank page whose resources name these XObjects, in order: "image" (a page-sized scan),
    "form" (an empty form), or "nest" (forms three deep, each drawing the next 50 times, the image
    at the bottom: 50 ** 3 visits for a walk without a bound)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)

    def stream(**entries):
        made = DecodedStreamObject()
        made.set_data(b"")
        made.update({NameObject(f"/{key}"): value for key, value in entries.items()})
        return writer._add_object(made)

    image = stream(Subtype=NameObject("/Image"), Width=NumberObject(2550), Height=NumberObject(3300))
    nest = image
    for _ in range(3):
        nest = stream(Subtype=NameObject("/Form"), Resources=DictionaryObject({NameObject("/XObject"): DictionaryObject(
            {NameObject(f"/X{n}"): nest for n in range(50)})}))
    made = {"image": image, "nest": nest}
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"): DictionaryObject(
        {NameObject(f"/P{n}"): made.get(kind) or stream(Subtype=NameObject("/Form"))
         for n, kind in enumerate(xobjects)})})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_the_walk_through_a_pages_pictures_is_bounded():
    from packet.intake.convert.pdf import _XOBJECTS_LOOKED_AT, pictured_pages
    from packet.pdfread import PdfReader

    def found(xobjects):
        return pictured_pages(PdfReader(io.BytesIO(_page_drawing(xobjects))), ["Fax header"]) == [0]

    assert found(["nest"]), "an image three forms down is found"
    assert found(["form"] * 10 + ["image"])
    # Past the bound nothing more is looked at, on the page or in its forms.
    assert not found(["form"] * _XOBJECTS_LOOKED_AT + ["image"])


def _typed_page_with_scan(path: Path, text: str, scan, box: tuple[float, float, float, float], *,
                          in_form: bool = False) -> Path:
    """A typed letter page (`text` wrapped from the top) with `scan` drawn into `box` (x, y, width,
    height in points), directly or inside a form XObject."""
    import textwrap

    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    png = io.BytesIO()
    scan.save(png, format="PNG")
    sheet = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    sheet.setFont("Helvetica", 9)
    y = letter[1] - 50
    for line in textwrap.wrap(text, 110):
        sheet.drawString(40, y, line)
        y -= 11
    if in_form:
        sheet.beginForm("pasted")
        sheet.drawImage(ImageReader(io.BytesIO(png.getvalue())), *box)
        sheet.endForm()
        sheet.doForm("pasted")
    else:
        sheet.drawImage(ImageReader(io.BytesIO(png.getvalue())), *box)
    sheet.showPage()
    sheet.save()
    return path


LETTER = "Patient: Maria Garcia-Lopez. " + " ".join(
    ["The patient was seen for follow up of low back pain and the plan was reviewed in detail."] * 14)


@pytest.mark.parametrize("in_form", [False, True], ids=["on the page", "in a form"])
def test_a_scan_pasted_into_part_of_a_typed_page_is_read(tmp_path, in_form):
    # A clinic's typed letter (1,000 letters and more) with another patient's lab report pasted under
    # its text: the letter's text says nothing of whose the picture is.
    from scankit import page_image

    path = _typed_page_with_scan(tmp_path / "letter.pdf", LETTER, page_image(LAB, dpi=150), (40, 40, 532, 330),
                                 in_form=in_form)
    converted = convert(source(path), make_config(tmp_path))
    assert converted.page_texts[0].startswith("Patient: Maria Garcia-Lopez"), "the page keeps its own text first"
    assert "CHEN, ROBERT" in converted.page_texts[0] and "REACTIVE" in converted.page_texts[0]
    assert converted.page_confidence == (None,), "a typed page's own text decides as born-digital text"
    assert "REACTIVE" in pdf_text(converted.pdf_path)


def test_a_typed_page_with_a_small_or_whole_page_picture_is_not_read(tmp_path):
    # A photo of a few hundred thousand pixels beside the text, and a letterhead behind the whole page.
    from scankit import page_image

    for name, scan, box in (("photo.pdf", page_image(["PHOTO"], dpi=60), (40, 40, 532, 330)),
                            ("letterhead.pdf", page_image(LAB, dpi=200), (0, 0, 612, 792)),
                            ("thumbnail.pdf", page_image(LAB, dpi=200), (500, 40, 72, 60))):
        path = _typed_page_with_scan(tmp_path / name, LETTER, scan, box)
        converted = convert(source(path), make_config(tmp_path))
        assert converted.page_confidence == () and converted.pdf_path == path, name


def test_the_walk_through_a_pages_drawing_is_bounded(tmp_path, monkeypatch):
    # A page that draws thousands of strokes before its pasted scan: the walk stops at its budget of
    # operations (the page is then not one), and finds the scan within a larger one.
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas
    from scankit import page_image

    from packet.intake.convert import pdf as convert_pdf
    from packet.pdfread import PdfReader

    png = io.BytesIO()
    page_image(LAB, dpi=200).save(png, format="PNG")
    path = tmp_path / "strokes.pdf"
    sheet = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    for index in range(3_000):
        sheet.line(10, 10 + index % 700, 20, 10 + index % 700)
    sheet.drawImage(ImageReader(io.BytesIO(png.getvalue())), 40, 40, 532, 330)
    sheet.showPage()
    sheet.save()
    page = PdfReader(str(path)).pages[0]
    assert convert_pdf._part_picture(page) is True
    monkeypatch.setattr(convert_pdf, "_OPERATIONS_LOOKED_AT", 1_000)
    assert convert_pdf._part_picture(page) is False


def test_a_small_picture_beside_a_little_text_is_not_read(tmp_path):
    # A letterhead logo or a signature: far fewer pixels than a page.
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas
    from scankit import page_image

    logo = io.BytesIO()
    page_image(["VALLEY CLINIC"], dpi=30).save(logo, format="PNG")  # 255 x 330 pixels
    path = tmp_path / "signed.pdf"
    sheet = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    sheet.drawImage(ImageReader(io.BytesIO(logo.getvalue())), 72, 600, 120, 150)
    sheet.drawString(72, 560, "Signed: Dr. Alan Spineworth")
    sheet.showPage()
    sheet.save()
    converted = convert(source(path), config := make_config(tmp_path))
    assert converted.page_texts == ("Signed: Dr. Alan Spineworth",) and converted.page_confidence == ()
    assert converted.pdf_path == path and config.ocr.enabled


@pytest.mark.skipif(shutil.which("soffice") is None and shutil.which("libreoffice") is None,
                    reason="LibreOffice is not installed")
def test_a_scan_pasted_into_a_word_file_is_read(tmp_path):
    import docx
    from docx.shared import Inches
    from scankit import page_image

    picture = tmp_path / "pasted.png"
    page_image(LAB, dpi=150).save(picture, format="PNG")
    document = docx.Document()
    document.add_paragraph("Records attached below.")
    document.add_picture(str(picture), width=Inches(6.5))
    path = tmp_path / "attached records.docx"
    document.save(str(path))
    converted = convert(source(path), make_config(tmp_path))
    text = "\n".join(converted.page_texts)
    assert "Records attached below." in text and "CHEN, ROBERT" in text and "REACTIVE" in text


def test_an_image_only_pdf_is_read(tmp_path):
    config = make_config(tmp_path)
    path = image_pdf(tmp_path / "scanned.pdf", [LAB])
    converted = convert(source(path), config)
    assert "ZX44881200" in converted.page_texts[0].replace(" ", "")
    assert "CHEN" in pdf_text(converted.pdf_path)


def test_born_digital_and_blank_pages_stay_as_they_are(tmp_path):
    config = make_config(tmp_path)
    path = make_pdf(tmp_path / "typed.pdf", ["Typed page one", "", "Typed page three"])
    converted = convert(source(path), config)
    assert converted.pdf_path == path, "a born-digital PDF is used as is (a blank page reads no words)"
    assert converted.page_confidence == ()


def test_ocr_disabled_leaves_scans_unread(tmp_path):
    config = make_config(tmp_path)
    config = dataclasses.replace(config, ocr=dataclasses.replace(config.ocr, enabled=False))
    path = fax_tiff(tmp_path / "fax.tif", [LAB])
    converted = convert(source(path), config)
    assert converted.page_texts == ("",) and converted.page_confidence == ()


def test_the_page_cap_refuses_the_file_naming_the_limit(tmp_path):
    config = make_config(tmp_path)
    config = dataclasses.replace(config, ocr=dataclasses.replace(config.ocr, max_pages=1))
    path = fax_tiff(tmp_path / "fax.tif", [["FAX COVER SHEET"], LAB])
    with pytest.raises(RefusedFile) as refused:
        convert(source(path), config)
    assert refused.value.reason == "too_large" and "limit of 1 pages" in refused.value.message


def test_the_page_time_limit_refuses_the_file_naming_the_limit(tmp_path):
    config = make_config(tmp_path)
    config = dataclasses.replace(config, ocr=dataclasses.replace(config.ocr, page_timeout_seconds=0.001))
    path = fax_tiff(tmp_path / "fax.tif", [LAB])
    with pytest.raises(RefusedFile) as refused:
        convert(source(path), config)
    assert refused.value.reason == "timeout" and "limit" in refused.value.message
    assert "CHEN" not in refused.value.message


def test_a_page_is_never_read_twice(tmp_path, counted):
    config = make_config(tmp_path)
    path = fax_tiff(tmp_path / "fax.tif", [["FAX COVER SHEET"], LAB])
    first = convert(source(path), config)
    assert counted() >= 2, "both pages were read by tesseract"
    runs = counted()
    first_pdf = first.pdf_path.read_bytes()
    again = convert(source(path), config)  # the conversion cache answers
    assert counted() == runs and again.page_texts == first.page_texts
    # Even with the conversion cache gone, the OCR page cache (content hash + engine) answers.
    shutil.rmtree(cache.entry_dir(config.cache_dir, first.sha256))
    third = convert(source(path), config)
    assert counted() == runs
    assert third.page_texts == first.page_texts and third.page_confidence == first.page_confidence
    assert third.pdf_path.read_bytes() == first_pdf, "the same text layer, byte for byte"


def test_reading_pages_progress_is_reported(tmp_path):
    config = make_config(tmp_path)
    path = fax_tiff(tmp_path / "fax.tif", [["FAX COVER SHEET"], LAB, ["Page three", "End of fax"]])
    heard: list[tuple[int, int]] = []
    results = convert_many([source(path)], config, on_pages=lambda done, total: heard.append((done, total)))
    assert not isinstance(results[0], RefusedFile)
    assert heard and heard[-1] == (3, 3)
    assert all(done <= total for done, total in heard)


def test_one_confidence_scale_for_ocr_and_the_classifier(tmp_path):
    """page_confidence is the engine's mean word confidence / 100; the classifier's threshold is
    [ocr] min_confidence on that scale, so a page the engine calls confident the classifier trusts."""
    from packet.classify.identity import OCR_CONFIDENT
    from packet.config import Ocr
    from packet.intake.ocr import ocr_image_file

    assert OCR_CONFIDENT == Ocr().min_confidence / 100.0
    config = make_config(tmp_path)
    path = fax_tiff(tmp_path / "fax.tif", [LAB])
    engine = ocr_image_file(path.read_bytes(), config.ocr)
    converted = convert(source(path), config)
    assert converted.page_confidence[0] == pytest.approx(engine.pages[0].confidence / 100.0, abs=0.001)


def test_a_job_gets_ocr_time_only_once_it_reads_pages(tmp_path, monkeypatch):
    """The job's deadline is its usual limit until it starts OCR; then OCR's own limits apply, and a
    job that outlasts even those is refused naming the limit it hit."""
    config = make_config(tmp_path)
    config = dataclasses.replace(config, limits=dataclasses.replace(
        config.limits, conversion_timeout_seconds=1.0, pdf_open_timeout_seconds=1.0))
    path = fax_tiff(tmp_path / "fax.tif", [["FAX COVER SHEET"], LAB, ["Page three"], ["Page four"]])
    converted = convert(source(path), config)  # four pages take longer than the 1-second job limit
    assert converted.pages == 4 and "REACTIVE" in converted.page_texts[1]


def test_an_upside_down_fax_page_is_turned_upright_keeping_its_pixels(tmp_path):
    config = make_config(tmp_path)
    path = tmp_path / "upside down.tif"
    fax_tiff(path, [LAB + ["Ordering physician: Dr. Alvarez", "Collected 09/12/2026 at the clinic"]])
    from PIL import Image

    with Image.open(path) as frame:
        frame.rotate(180).save(path, format="TIFF", compression="group4", dpi=(200, 200))
    converted = convert(source(path), config)
    assert "REACTIVE" in converted.page_texts[0]
    text = pdf_text(converted.pdf_path)
    assert "CHEN" in text and "REACTIVE" in text
    assert converted.pdf_path.stat().st_size < 3 * path.stat().st_size + 60_000, "no re-rendered page"


LEAN_WORKER = """
import sys
from packet.intake.convert import worker
from packet.intake.hocr import Line, Word, text_layer
worker.warm()
before = sorted(name for name in sys.modules if name.startswith(("reportlab.pdfgen", "uharfbuzz")))
line = Line((10, 10, 400, 40), (Word("ZX44881200", (10, 10, 400, 40), 95.0),), size=30.0)
layer = text_layer([line], (850, 1100), (612.0, 792.0))
print(before, layer.startswith(b"%PDF"), "reportlab.pdfgen.canvas" in sys.modules)
"""


def test_a_conversion_worker_starts_without_the_text_layers_pdf_library_and_loads_it_for_a_scan():
    # Every build and command-line run starts conversion workers, and most meet only born-digital
    # files: reportlab and its shaping engine (about 0.025 s and 5 MB) wait for the first scanned page.
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))}
    ran = subprocess.run([sys.executable, "-c", LEAN_WORKER], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["[]", "True", "True"]


def test_a_worker_killed_while_reading_a_scan_leaves_its_page_images_nowhere_but_the_state_folder(tmp_path, monkeypatch):
    """OCR's page images and Tesseract's files are the scan's pages: they stay in the job's folder
    inside the private state folder, which the service removes, never in the shared temporary
    folder, where a killed worker (kill -9, the out-of-memory killer) would leave them for good."""
    import signal
    import stat
    import threading
    import time

    from packet.workers import pool

    system_tmp = tmp_path / "system-tmp"  # the workers' temporary folder for this test
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    markers = tmp_path / "reading-in"
    markers.mkdir()
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "tesseract"
    # Answers the engine's questions (--version, --list-langs) for real; reading a page hangs, after
    # saying where it was asked to work and which worker asked.
    shim.write_text(f'#!/bin/sh\ncase "$1" in --*) exec "{shutil.which("tesseract")}" "$@" ;; esac\n'
                    f'echo "$PWD $PPID" > "{markers}/$$.tmp" && mv "{markers}/$$.tmp" "{markers}/$$"\n'
                    'exec sleep 600\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{shim_dir}{os.pathsep}{os.environ['PATH']}")
    config = make_config(tmp_path / "service")
    # A TIFF (its frames read in memory) and an image-only PDF (its pages rendered by pdftoppm first),
    # side by side; a job is tried again after its worker died, and each try is killed too.
    scans = [fax_tiff(tmp_path / "fax.tif", [LAB]), image_pdf(tmp_path / "scan.pdf", [LAB])]
    pool.shutdown("convert")
    try:
        results: list = []
        thread = threading.Thread(target=lambda: results.extend(convert_many([source(s) for s in scans], config)))
        thread.start()
        folders, seen = [], set()
        deadline = time.monotonic() + 120
        while thread.is_alive():
            assert time.monotonic() < deadline, "the conversions never ended"
            for marker in sorted(markers.iterdir()):
                if marker.suffix == ".tmp" or marker.name in seen:
                    continue
                seen.add(marker.name)
                folder, worker_pid = marker.read_text().split()
                folders.append(Path(folder))
                assert Path(folder).is_relative_to(config.work_dir), folder
                assert any(Path(folder).iterdir()), "the page images are there while it reads"
                os.killpg(os.getpgid(int(worker_pid)), signal.SIGKILL)  # the worker and its Tesseract
            time.sleep(0.05)
        assert len(folders) >= 2, "Tesseract was asked for each scan"
        assert all(isinstance(result, RefusedFile) for result in results)  # stopped twice: refused, saying so
        assert not any(folder.exists() for folder in folders)
        assert list(system_tmp.iterdir()) == []
    finally:
        pool.shutdown("convert")
