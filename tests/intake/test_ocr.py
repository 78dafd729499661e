"""OCR engine (packet.intake.ocr): reading fax-like scans, turning and straightening them, the
invisible text layer, time limits, the page cap, the cache, and the evaluation set's targets."""

from __future__ import annotations

import io
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import img2pdf
import pytest
from PIL import Image
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is not an installed package

from bench import ocr_eval  # noqa: E402
from packet.config import Ocr, load_config  # noqa: E402
from packet.errors import ConfigError, OcrError  # noqa: E402
from packet.intake import hocr, ocr, pageimage  # noqa: E402

NAME = "Rosalind Testmember"
MEMBER_ID = "M998877665"
SETTINGS = Ocr()


def born_digital(extra_lines: int = 12) -> bytes:
    page = ocr_eval.Page()
    page.line(60, 740, "Progress Note - Capitol Orthopedics", "Helvetica-Bold", 14)
    page.line(60, 716, f"Patient: {NAME}   Member ID: {MEMBER_ID}   DOB: 04/09/1961")
    page.paragraph(60, 690, ocr_eval._sentences(random.Random(4), ocr_eval.NOTE_WORDS, extra_lines * 12), 490)
    return page.finish()[0]


def scan(tmp_path: Path, *, dpi=(204, 196), encoding="g4", skew=0.0, turn=0, name="scan") -> bytes:
    kind = ocr_eval.Kind(name, "clean", "note", dpi, encoding, skew=skew, turn=turn)
    return ocr_eval.scan(born_digital(), kind, random.Random(1), tmp_path, name).read_bytes()


def layer_text(page: ocr.OcrPage, tmp_path: Path) -> str:
    path = tmp_path / "layer.pdf"
    path.write_bytes(page.text_layer)
    return subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True, text=True, check=True).stdout


def first_word_box(pdf: bytes, word: str, tmp_path: Path) -> tuple[float, float]:
    path = tmp_path / "bbox.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-q", "-bbox", str(path), "-"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if f">{word}<" in line:
            x = float(line.split('xMin="')[1].split('"')[0])
            y = float(line.split('yMin="')[1].split('"')[0])
            return x, y
    raise AssertionError(f"{word} not in the text layer")


def test_fax_page_is_read_and_its_text_layer_is_searchable_and_in_place(tmp_path):
    page = ocr.ocr_image(scan(tmp_path), SETTINGS)
    assert page.status == "read" and page.rotation == 0 and page.deskew_degrees == 0.0
    assert NAME in page.text and MEMBER_ID in page.text
    assert page.confidence is not None and page.confidence > 85 and page.words > 100
    assert page.image is None  # nothing corrected: the original page is shown
    assert page.page_size == pytest.approx((612, 792), abs=1)  # 1728 px / 204 dpi, 2156 px / 196 dpi
    found = layer_text(page, tmp_path)
    assert NAME in found and MEMBER_ID in found
    layer = PdfReader(io.BytesIO(page.text_layer)).pages[0]
    content = layer.get_contents().get_data()
    assert b"3 Tr" in content and b" Do" not in content  # invisible text only, no image
    # The word sits where the born-digital original printed it (within 2 points).
    digital = first_word_box(born_digital(), "Patient:", tmp_path)
    assert first_word_box(page.text_layer, "Patient:", tmp_path) == pytest.approx(digital, abs=2)
    assert ocr.ocr_image(scan(tmp_path), SETTINGS).text_layer == page.text_layer  # deterministic


@pytest.mark.parametrize("turn", [180, 90, 270])
def test_upside_down_and_sideways_pages_are_turned_upright(tmp_path, turn):
    page = ocr.ocr_image(scan(tmp_path, turn=turn, dpi=(300, 300) if turn == 90 else (204, 196)), SETTINGS)
    assert page.status == "read" and page.rotation == turn
    assert NAME in page.text and MEMBER_ID in page.text
    corrected = Image.open(io.BytesIO(page.image))
    assert corrected.width < corrected.height  # portrait again
    assert page.page_size == pytest.approx((612, 792), abs=1)
    digital = first_word_box(born_digital(), "Patient:", tmp_path)
    assert first_word_box(page.text_layer, "Patient:", tmp_path) == pytest.approx(digital, abs=3)


def test_a_page_read_badly_both_ways_up_is_asked_of_orientation_detection(tmp_path, monkeypatch):
    # Here every reading counts as doubtful and neither the profile nor Tesseract's own turned lines
    # tell that the page lies on its side: only orientation detection is left, and it is asked.
    monkeypatch.setattr(ocr, "ROTATION_DOUBT", 101.0)
    monkeypatch.setattr(ocr, "text_lines", lambda image, limit: (0.0, False))
    monkeypatch.setattr(ocr, "page_rotation", lambda lines: 0)
    runs = []
    real = ocr.tesseract.run_list
    monkeypatch.setattr(ocr.tesseract, "run_list", lambda images, options, *a, **k: runs.append(options) or real(
        images, options, *a, **k))
    page = ocr.ocr_image(scan(tmp_path, turn=270), SETTINGS)
    assert [("osd" in options) for options in runs] == [False, False, True, False]  # read, half turn, ask, read
    assert page.status == "read" and NAME in page.text and MEMBER_ID in page.text
    if page.rotation in (90, 270):  # the quarter-turned reading won: the page and its size turn with it
        assert page.page_size == pytest.approx((612, 792), abs=1)


def test_tilted_fax_is_straightened_before_reading(tmp_path):
    # Tesseract alone reads almost nothing of a 204 x 196 fax tilted 3 degrees clockwise.
    page = ocr.ocr_image(scan(tmp_path, skew=3.0), SETTINGS)
    assert abs(abs(page.deskew_degrees) - 3.0) <= 0.3
    assert NAME in page.text and MEMBER_ID in page.text
    assert page.image is not None and Image.open(io.BytesIO(page.image)).mode == "1"  # still a 1-bit fax
    without = ocr.ocr_image(scan(tmp_path, skew=3.0), replace(SETTINGS, deskew=False))
    assert without.deskew_degrees == 0.0 and without.image is None


def test_skew_angle_of_blank_and_straight_pages_is_zero():
    assert pageimage.text_lines(Image.new("L", (1700, 2200), 255), 5.0) == (0.0, False)
    assert pageimage.text_lines(Image.new("1", (1700, 2200), 1), 0.0) == (0.0, False)


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_a_page_on_its_side_is_told_by_its_text_lines(tmp_path, turn):
    # Only a page on its side is asked of orientation detection (as costly as reading the page).
    image = Image.open(io.BytesIO(scan(tmp_path, turn=turn)))
    angle, sideways = pageimage.text_lines(image, 5.0)
    assert sideways == (turn in (90, 270)) and angle == 0.0


def test_image_only_pdf_pages_get_a_layer_of_the_page_size(tmp_path):
    tiff = scan(tmp_path, dpi=(300, 300))
    pdf = tmp_path / "scanned.pdf"
    pdf.write_bytes(img2pdf.convert([tiff, tiff]))
    result = ocr.ocr_pdf(pdf, SETTINGS, pages=[1])
    assert [p.index for p in result.pages] == [1] and result.complete
    page = result.pages[0]
    mediabox = PdfReader(pdf).pages[1].mediabox
    assert page.page_size == pytest.approx((float(mediabox.width), float(mediabox.height)), abs=0.01)
    assert NAME in page.text and NAME in layer_text(page, tmp_path)
    with pytest.raises(OcrError):
        ocr.ocr_pdf(pdf, SETTINGS, pages=[2])


def test_page_cap_file_limit_and_page_limit_say_why(tmp_path):
    blank = Image.new("1", (1728, 2156), 1)
    buffer = io.BytesIO()
    blank.save(buffer, format="TIFF", compression="group4", save_all=True, append_images=[blank, blank],
               dpi=(204, 196))
    capped = ocr.ocr_image_file(buffer.getvalue(), replace(SETTINGS, max_pages=2))
    assert [p.status for p in capped.pages] == ["read", "read", "skipped"] and not capped.complete
    assert "page cap" in capped.pages[2].reason
    assert capped.pages[0].text == "" and capped.pages[0].confidence is None and capped.pages[0].words == 0
    slow = ocr.ocr_image(scan(tmp_path), replace(SETTINGS, page_timeout_seconds=0.01))
    assert slow.status == "timeout" and "within" in slow.reason and slow.text_layer is None
    out_of_time = ocr.ocr_image_file(buffer.getvalue(), replace(SETTINGS, file_timeout_seconds=0.0))
    assert {p.status for p in out_of_time.pages} == {"skipped"}
    assert "file time limit" in out_of_time.pages[0].reason


def test_broken_images_are_outcomes_not_crashes():
    assert ocr.ocr_image(b"not an image at all", SETTINGS).status == "failed"
    with pytest.raises(OcrError):
        ocr.ocr_image_file(b"\x49\x49\x2a\x00garbage", SETTINGS)


def test_cached_pages_are_never_read_again(tmp_path, monkeypatch):
    data = scan(tmp_path)
    cache = ocr.OcrCache(tmp_path / "cache")
    first = ocr.ocr_image_file(data, SETTINGS, cache=cache)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))  # tesseract cannot run any more
    again = ocr.ocr_image_file(data, SETTINGS, cache=cache)
    assert again == first and again.pages[0].status == "read"
    with pytest.raises(OcrError):  # not read from the cache: it would need tesseract
        ocr.ocr_image_file(data + b"\0", SETTINGS, cache=cache)


def test_cache_key_follows_content_page_engine_and_settings():
    key = ocr.cache_key("a" * 64, 0, SETTINGS)
    assert key == ocr.cache_key("a" * 64, 0, Ocr())
    assert key != ocr.cache_key("b" * 64, 0, SETTINGS)
    assert key != ocr.cache_key("a" * 64, 1, SETTINGS)
    assert key != ocr.cache_key("a" * 64, 0, replace(SETTINGS, deskew=False))
    assert key != ocr.cache_key("a" * 64, 0, replace(SETTINGS, languages="eng"))
    assert key == ocr.cache_key("a" * 64, 0, replace(SETTINGS, page_timeout_seconds=5))  # limits read the same
    assert "tesseract" in ocr.engine_version("eng+spa") and "spa:" in ocr.engine_version("eng+spa")
    with pytest.raises(OcrError):
        ocr.engine_version("xxx")


def test_ocr_settings_are_validated_all_at_once(tmp_path):
    config_file = tmp_path / "imr.toml"
    config_file.write_text('[ocr]\nlanguages = "eng; rm -rf"\npage_timeout_seconds = 0\nmax_pages = 0\n'
                           'pdf_dpi = 5000\nmin_confidence = 140\nrotate = true\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(config_file, check_paths=False, environ={})
    problems = " ".join(raised.value.problems)
    for key in ("languages", "page_timeout_seconds", "max_pages", "pdf_dpi", "min_confidence", "rotate"):
        assert key in problems
    config_file.write_text('[ocr]\nlanguages = "eng"\nmax_pages = 20\n', encoding="utf-8")
    config = load_config(config_file, check_paths=False, environ={})
    assert config.ocr.languages == "eng" and config.ocr.max_pages == 20


def test_word_accuracy_counts_misreads_losses_and_noise():
    assert ocr_eval.word_accuracy("Patient: CHEN, Robert", "patient chen robert")[0] == 1.0
    assert ocr_eval.word_accuracy("a b c d", "a b c")[:2] == (0.75, 1)
    assert ocr_eval.word_accuracy("a b c d", "a b c x")[:2] == (0.75, 1)
    assert ocr_eval.word_accuracy("a b c d", "a b c d e f")[:2] == (0.5, 2)
    assert ocr_eval.word_accuracy("médica", "medica")[0] == 0.0  # accents count
    assert ocr_eval.in_order_accuracy("a b c d", "c d a b") == 0.0


@pytest.mark.slow
def test_evaluation_targets_on_a_few_pages():
    kinds = tuple(k for k in ocr_eval.KINDS if k.name in ("clean-fax-g3", "spanish-fax", "noisy-fax-g3"))
    results = ocr_eval.evaluate(kinds, samples=1, seed=3)
    assert results["groups"]["clean"]["accuracy"] >= ocr_eval.TARGETS["clean"], results["kinds"]
    assert results["groups"]["noisy"]["accuracy"] >= ocr_eval.TARGETS["noisy"], results["kinds"]
    assert all(entry["rotation_ok"] for entry in results["kinds"].values())


HOCR = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><body><div class='ocr_page' title='bbox 0 0 1000 1000'>
<p class='ocr_par'>
 <span class='ocr_line' title="bbox {line}; x_size 30; x_descenders 6{angle}">
  <span class='ocrx_word' title='bbox {first}; x_wconf 91'>Patient:</span>
  <span class='ocrx_word' title='bbox {second}; x_wconf 89'>CHEN, &amp; co</span>
 </span></p></div></body></html>"""


@pytest.mark.parametrize("line, first, second, angle, expected", [
    ("100 100 600 130", "100 100 300 130", "320 100 600 130", "", 0),  # lying line
    ("100 100 600 130", "400 100 600 130", "100 100 380 130", "; textangle 180", 180),
    ("800 100 830 700", "800 100 830 300", "800 320 830 700", "", 270),  # standing, runs down
    ("100 100 130 700", "100 500 130 700", "100 100 130 480", "", 90),  # standing, runs up
])
def test_hocr_lines_words_and_orientation(line, first, second, angle, expected):
    lines = hocr.parse_hocr(HOCR.format(line=line, first=first, second=second, angle=angle).encode())
    assert hocr.page_text(lines) == "Patient: CHEN, & co"
    assert hocr.mean_confidence(lines) == 90.0
    assert hocr.page_rotation(lines) == expected
    layer = hocr.text_layer(lines, (1000, 1000), (500.0, 500.0))
    assert PdfReader(io.BytesIO(layer)).pages[0].extract_text().split() == ["Patient:", "CHEN,", "&", "co"]


CORPUS = Path("/work/shared/corpus")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_corpus_orientation_tags_photos_and_broken_images():
    tagged = ocr.ocr_image_file((CORPUS / "images/pillow-g4_orientation_6.tif").read_bytes(), SETTINGS).pages[0]
    assert tagged.status == "read" and tagged.corrected  # Pillow turned it as its tag says: show that page
    assert tagged.page_size == pytest.approx((442.5, 66.0))
    photo = ocr.ocr_image((CORPUS / "images/pillow-hopper_orientation_6.jpg").read_bytes(), SETTINGS)
    assert photo.status == "read" and photo.corrected and photo.deskew_degrees == 0.0
    no_text = ocr.ocr_image((CORPUS / "images/pillow-exif-dpi-zerodivision.jpg").read_bytes(), SETTINGS)
    assert no_text.deskew_degrees == 0.0 and no_text.words == 0 and no_text.confidence is None
    for broken in ("pillow-truncated_image.png", "pillow-truncated_jpeg.jpg"):
        assert ocr.ocr_image((CORPUS / "broken" / broken).read_bytes(), SETTINGS).status == "failed"


def test_the_engine_version_follows_the_language_data_files(tmp_path, monkeypatch):
    """Other language data (another TESSDATA_PREFIX, or a model file updated in place) is another
    engine: the page cache and the conversion cache keys change, also within a running process."""
    listing = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=True).stdout
    tessdata = Path(listing.split('"')[1])
    before, key = ocr.engine_version("eng"), ocr.conversion_key(Ocr(languages="eng"))
    page_key = ocr.cache_key("a" * 64, 0, Ocr(languages="eng"))
    for name in ("eng", "osd"):
        (tmp_path / f"{name}.traineddata").symlink_to(tessdata / f"{name}.traineddata")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert ocr.engine_version("eng") == before, "the same files in another folder are the same engine"
    model = tmp_path / "eng.traineddata"
    model.unlink()
    model.write_bytes((tessdata / "eng.traineddata").read_bytes() + b"\0")
    assert ocr.engine_version("eng") != before
    assert ocr.conversion_key(Ocr(languages="eng")) != key
    assert ocr.cache_key("a" * 64, 0, Ocr(languages="eng")) != page_key
    assert ocr.conversion_key(None) == "off" == ocr.conversion_key(Ocr(enabled=False))


def test_a_batch_times_each_page_and_kills_the_one_over_its_allowance(tmp_path):
    """One Tesseract process reads a list of pages; the "Page n" lines time each page, and the page
    over its own allowance is the one killed (the reader reads the others again in a new run)."""
    from packet.intake import tesseract

    page = tmp_path / "page.tif"
    Image.open(io.BytesIO(scan(tmp_path))).save(page, format="TIFF", dpi=(204, 204))
    blank = tmp_path / "blank.tif"
    Image.new("1", (1728, 2200), 1).save(blank, format="TIFF", dpi=(204, 204))
    far = 10_000.0
    run = tesseract.run_list([blank, page, blank], ["-l", "eng", "--psm", "3", "hocr"], tmp_path, "kill",
                             allowances=[far, 0.001, far], deadline=time.monotonic() + far)
    assert run.killed_page == 1 and not run.out_of_time and not run.complete and run.output == b""
    done = tesseract.run_list([blank, blank], ["-l", "eng", "--psm", "3", "hocr"], tmp_path, "whole",
                              allowances=[far, far], deadline=time.monotonic() + far)
    assert done.complete and done.finished == 2 and len(done.seconds) == 2
    assert len(hocr.parse_hocr_pages(done.output)) == 2
    osd = tesseract.run_list([page, blank, page], ["--psm", "0", "-l", "osd"], tmp_path, "osd",
                             allowances=[far] * 3, deadline=time.monotonic() + far)
    assert osd.returncode != 0 and osd.finished == 1, "Tesseract stops a list at a page it cannot orient"
    assert tesseract.orientation_output(osd.output) == [0]


def test_batches_shrink_towards_the_end_but_not_below_four_pages_while_both_processes_have_work():
    def batches(queued, jobs=2):
        sizes = []
        while queued:
            sizes.append(ocr.batch_size(queued, jobs))
            queued -= sizes[-1]
        return sizes

    assert batches(1) == [1] and batches(2) == [1, 1]  # a 2-page file: both processes read
    assert batches(10) == [4, 3, 2, 1]  # was 3, 2, 2, 1, 1, 1: seven model loads for ten pages
    assert max(batches(200)) == ocr.MAX_BATCH and sum(batches(200)) == 200
    assert batches(40)[:4] == [10, 8, 6, 4] and min(batches(40)[:6]) == ocr.MIN_BATCH
    assert batches(7, jobs=1) == [4, 3]
