"""Stamping (packet.pdf.stamp): the Bates label inside the page and outside the content, at a
readable size on any page, and form fields flattened with their values."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
from pdfkit import CASE_ID, build_context, label_box, pdf_document, pdftotext_pages, qpdf_check
from PIL import Image
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4, landscape, legal, letter
from reportlab.pdfgen import canvas

from packet.model.models import CORRESPONDENCE, MEDICAL_RECORDS
from packet.pipeline.numbering import write_numbered_packet
from packet.pdf.frontmatter import stamp_geometry


@pytest.mark.parametrize("pagesize,rotate", [(letter, 0), (landscape(letter), 0), (A4, 0), (legal, 0),
                                             (letter, 90), (letter, 270), (A4, 180), ((200, 260), 0)])
def test_bates_label_is_inside_the_page_and_outside_the_content(config, tmp_path, pagesize, rotate):
    # A page whose content runs to the very bottom edge: the label must not cover it.
    path = tmp_path / "edge.pdf"
    c = canvas.Canvas(str(path), pagesize=pagesize, invariant=1)
    c.setFillGray(0.2)
    c.rect(0, 0, pagesize[0], pagesize[1], stroke=0, fill=1)
    if rotate:
        c.setPageRotation(rotate)
    c.showPage()
    c.save()
    doc = pdf_document(path, title="Full-bleed scan", category=MEDICAL_RECORDS, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_numbered_packet([doc], build_context(config), out, first_bates=1)
    page = page_list.entries[0].packet_first
    label = page_list.entries[0].bates_first_label
    bbox = tmp_path / "bbox.html"
    subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(out), str(bbox)], check=True)
    x0, y0, x1, y1, width, height = label_box(bbox, label)
    source = PdfReader(path).pages[0]  # reportlab writes a rotated page's MediaBox turned already
    media = (float(source.mediabox.width), float(source.mediabox.height))
    displayed = (media[1], media[0]) if source.rotation % 180 else media
    assert (width, height) == pytest.approx(displayed, abs=0.5)
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    # pdftotext measures from the top; the shrunk original content occupies content_box (measured
    # from the bottom), and the whole label lies below that box, in the strip kept free.
    geo = stamp_geometry(width, height, bates=label, privileged=False)
    content = geo.content_box(width, height)
    label_bottom, label_top = height - y1, height - y0
    assert 0 <= label_bottom < label_top <= content[1] + 0.5, (label_bottom, label_top, content)
    assert 0.9 < geo.scale(height) < 1  # "shrink slightly"
    # And a person looking at it sees the label in a white strip under the dark content.
    png = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", str(page), "-l", str(page), str(out), str(png)], check=True)
    image = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    w, h = image.size
    strip = [image.getpixel((x, h - 2)) for x in range(w)]
    assert max(strip) > 200  # the bottom strip is light (no content there)
    assert image.getpixel((w // 2, h // 2)) < 100  # the content is still there, dark


def test_huge_pages_get_a_label_that_survives_fit_to_letter(config, tmp_path):
    path = tmp_path / "huge.pdf"
    c = canvas.Canvas(str(path), pagesize=(8400, 8400), invariant=1)
    c.drawString(100, 8000, "HUGE PAGE")
    c.showPage()
    c.save()
    geo = stamp_geometry(8400, 8400, bates=f"{CASE_ID}-000001", privileged=True)
    # Printed fit-to-letter (scale 612/8400) the label is about 9 points tall again.
    assert geo.bates_size * 612 / 8400 == pytest.approx(9, abs=0.5)
    assert stamp_geometry(612, 792, bates="X", privileged=False).bates_size == 9
    assert stamp_geometry(595, 842, bates="X", privileged=False).bates_size == 9  # A4: same physical size
    assert stamp_geometry(612, 1008, bates="X", privileged=False).bates_size == 9  # legal
    doc = pdf_document(path, title="Huge", category=MEDICAL_RECORDS, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_numbered_packet([doc], build_context(config), out, first_bates=1)
    page = page_list.entries[0].packet_first
    png = tmp_path / "huge"
    subprocess.run(["pdftoppm", "-r", "6", "-png", "-f", str(page), "-l", str(page), str(out), str(png)], check=True)
    bbox = tmp_path / "bbox.html"
    subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(out), str(bbox)], check=True)
    x0, y0, x1, y1, width, height = label_box(bbox, f"{CASE_ID}-000001")
    assert (y1 - y0) * 612 / width > 7  # glyph box height at fit-to-letter scale, in points


def test_form_fields_are_flattened_with_their_values(config, tmp_path):
    path = tmp_path / "form.pdf"
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.drawString(72, 720, "REQUEST FORM")
    c.acroForm.textfield(name="diagnosis", value="Lumbar stenosis", x=72, y=650, width=250, height=20)
    c.acroForm.checkbox(name="urgent", checked=True, x=72, y=600, size=14)
    c.showPage()
    c.save()
    assert b"/AcroForm" in path.read_bytes()
    doc = pdf_document(path, title="Request form", category=CORRESPONDENCE, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_numbered_packet([doc, dataclasses.replace(doc, source="copy.pdf")], build_context(config), out,
                                 first_bates=1)
    data = out.read_bytes()
    assert b"/AcroForm" not in data and b"/Widget" not in data
    texts = pdftotext_pages(out)
    for placed in page_list.entries:
        assert "Lumbar stenosis" in texts[placed.packet_first - 1]
    qpdf_check(out)




def _words(path, page: int) -> list[tuple[str, float, float, float, float]]:
    """(word, xMin, yMin, xMax, yMax) of one page from pdftotext -bbox (top-left origin)."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(path), "-"],
                          check=True, capture_output=True, text=True).stdout
    import re

    return [(w, float(a), float(b), float(c), float(d)) for a, b, c, d, w in
            re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html)]


def test_a_corner_label_lands_at_the_top_right_whatever_the_page_leaves_behind(tmp_path):
    """label_pages (a mailing's "page x of y" on its enclosed pages) parses no content: a page whose
    content leaves the coordinates scaled and moved (no Q), and two pages that share one resources
    dictionary, still get their own label where it belongs, and the shared dictionary is unchanged."""
    import io

    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    from packet.pdf.stamp import label_pages

    writer = PdfWriter()
    fonts = writer._add_object(DictionaryObject({NameObject("/F1"): writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Courier")}))}))
    shared = writer._add_object(DictionaryObject({NameObject("/Font"): fonts}))
    for number in (1, 2):
        page = writer.add_blank_page(612, 792)
        stream = DecodedStreamObject()
        stream.set_data(f"0.5 0 0 0.5 200 100 cm BT /F1 12 Tf 72 700 Td (body{number}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = shared
    label_pages(writer, [writer.pages[0], writer.pages[1]], ["Página 1 de 2", "Página 2 de 2"])
    assert list(shared.get_object()["/Font"].get_object()) == ["/F1"]
    out = tmp_path / "labelled.pdf"
    buffer = io.BytesIO()
    writer.write(buffer)
    out.write_bytes(buffer.getvalue())
    qpdf_check(out)
    for number in (1, 2):
        words = _words(out, number)
        label = [w for w in words if w[0] == f"{number}" and w[2] < 40]
        assert [w[0] for w in words if w[2] < 40] == ["Página", str(number), "de", "2"], words
        x_max, y_min = label[0][3], label[0][2]
        assert 612 - 0.5 * 72 - 30 < x_max <= 612 - 0.5 * 72 + 0.5 and 0.1 * 72 < y_min < 0.3 * 72, label
        assert any(w[0] == f"body{number}" for w in words)


def test_a_corner_label_on_a_rendered_page_keeps_the_pages_own_text(tmp_path):
    """A page reportlab drew (a slip sheet: its own fonts in its resources) keeps its text, and the
    label joins it."""
    import io

    from pypdf import PdfReader, PdfWriter

    from packet.pdf.stamp import label_pages

    source = tmp_path / "stamped.pdf"
    c = canvas.Canvas(str(source), pagesize=letter, invariant=1)
    c.drawString(72, 700, "Record text")
    c.showPage()
    c.save()
    writer = PdfWriter()
    added = writer.add_page(PdfReader(str(source)).pages[0])
    label_pages(writer, [added], ["Page 3 of 9"])
    buffer = io.BytesIO()
    writer.write(buffer)
    text = PdfReader(io.BytesIO(buffer.getvalue())).pages[0].extract_text()
    assert "Record text" in text and "Page 3 of 9" in text
