"""The IMR-organization packet and copy sets: structure, stamps, labels, active content, bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_pdf
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import Link
from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, TextStringObject
from reportlab.lib.pagesizes import A4, landscape, legal, letter

from packet.pdf.assemble import copy_set_items, pdf_summary, write_copy_set, write_org_packet
from packet.model.case import CaseFacts, Person
from packet.model.context import BuildContext
from packet.model.models import (CORRESPONDENCE, MEDICAL_RECORDS, NEEDS_REVIEW, PLAN_STATEMENTS, PRIVILEGED_MARK,
                           Deadline, Decision, Document)
from packet.pdf.frontmatter import stamp_geometry

CASE_ID = "IMR-2026-000417"
PST = dt.timezone(dt.timedelta(hours=-8))


def _context(config, *, draft: bool = False, submission: int = 1, kind: str = "initial") -> BuildContext:
    facts = CaseFacts(
        case_id=CASE_ID, review_type="standard", dispute_type="medical_necessity",
        dmhc_notice_received=dt.datetime(2026, 11, 25, 16, 10, tzinfo=PST),
        disputed_service="Lumbar spinal fusion L4-L5", language="en",
        member=Person(name=MEMBER_NAME, address=("1200 Poppy Lane", "Sacramento, CA 95814"),
                      member_id=MEMBER_ID, date_of_birth=MEMBER_DOB),
        provider=Person(name="Dr. Alan Spineworth", address=("55 J Street", "Sacramento, CA 95814")),
        grievance_number="G-2026-0456")
    deadline = Deadline(review_type="standard", clock_start=facts.dmhc_notice_received,
                        due=dt.datetime(2026, 12, 2, 16, 10, tzinfo=PST),
                        rule="3 business days after the plan received DMHC's notice",
                        calendar="test calendar (America/Los_Angeles)")
    return BuildContext(config=config, facts=facts, deadline=deadline, submission=submission,
                        kind="draft" if draft else kind,
                        generated_at=dt.datetime(2026, 11, 30, 10, 2, 11, tzinfo=PST), draft=draft)


def _document(path: Path, *, title: str, category: str, date: dt.date | None, privileged: bool = False,
              withheld: bool = False, excluded: str | None = None) -> Document:
    data = path.read_bytes()
    pages = len(PdfReader(path).pages)
    return Document(
        source=path.name, sha256=hashlib.sha256(data).hexdigest(),
        received_at=dt.datetime(2026, 11, 26, 9, 0, tzinfo=PST),
        title=Decision(title, "test"), date=Decision(date, "test"), category=Decision(category, "test"),
        privileged=Decision(privileged, "override" if privileged else "default",
                            "attorney-client communication" if privileged else ""),
        withheld=Decision(withheld, "override" if withheld else "default"),
        identity=Decision("confirmed", "test"), pages=pages, pdf_path=path, excluded=excluded)


@pytest.fixture
def documents(tmp_path) -> list[Document]:
    return make_documents(tmp_path)


def make_documents(tmp_path: Path) -> list[Document]:
    src = tmp_path / "src"
    return [
        _document(make_pdf(src / "mri.pdf", ["MRI REPORT page one", "MRI REPORT page two"]),
                  title="MRI lumbar spine report", category=MEDICAL_RECORDS, date=dt.date(2026, 8, 14)),
        _document(make_pdf(src / "pt.pdf", ["PHYSICAL THERAPY NOTE"]), title="Physical therapy note",
                  category=MEDICAL_RECORDS, date=dt.date(2026, 6, 1)),
        _document(make_pdf(src / "denial.pdf", ["DENIAL LETTER"]), title="Notice of action (denial)",
                  category=CORRESPONDENCE, date=dt.date(2026, 9, 2)),
        _document(make_pdf(src / "counsel.pdf", ["COUNSEL MEMO one", "COUNSEL MEMO two", "COUNSEL MEMO three"]),
                  title="Memo from plan counsel", category=CORRESPONDENCE, date=dt.date(2026, 9, 10),
                  privileged=True),
        _document(make_pdf(src / "psych.pdf", ["PSYCHOTHERAPY NOTES"]), title="Psychotherapy notes",
                  category=MEDICAL_RECORDS, date=dt.date(2026, 7, 1), withheld=True),
        _document(make_pdf(src / "dup.pdf", ["EXCLUDED DUPLICATE"]), title="Duplicate", category=MEDICAL_RECORDS,
                  date=dt.date(2026, 7, 2), excluded="duplicate of mri.pdf"),
    ]


def _pdftotext_pages(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True).stdout
    pages = out.decode("utf-8").split("\f")
    return pages[:-1] if pages and pages[-1].strip() == "" else pages


def _qpdf_check(path: Path) -> None:
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packet_structure_outline_and_labels(config, documents, tmp_path):
    ctx = _context(config)
    out = tmp_path / "out" / "imr-org-packet.pdf"
    page_list = write_org_packet(documents, ctx, out, first_bates=1)

    summary = pdf_summary(out)
    assert summary["pages"] == page_list.total_pages
    front = page_list.front_pages
    assert front >= 2  # cover + at least one index page
    # Three statutory sections; plan statements is empty; the excluded document is absent.
    assert [s.category for s in page_list.sections] == [MEDICAL_RECORDS, CORRESPONDENCE, PLAN_STATEMENTS]
    titles = [p.document.title.value for p in page_list.entries]
    assert titles == ["Physical therapy note", "Psychotherapy notes", "MRI lumbar spine report",
                      "Notice of action (denial)", "Memo from plan counsel"]
    assert page_list.sections[2].documents == ()
    # Page labels: front matter and dividers labelled as such; document pages carry their Bates number.
    labels = summary["page_labels"]
    assert labels[0] == "Cover" and labels[1] == "Index-1"
    for number, section in enumerate(page_list.sections, 1):
        assert labels[section.divider_page - 1] == f"Divider-{number}"
    expected = {}
    for placed in page_list.entries:
        for offset, page in enumerate(placed.packet_pages):
            expected[page] = f"{CASE_ID}-{placed.bates_first + offset:06d}"
    assert [f"{CASE_ID}-{n:06d}" for n in range(1, 9)] == [expected[p] for p in sorted(expected)]
    for page, label in expected.items():
        assert labels[page - 1] == label
        assert summary["stamps"][page - 1] == [label] or summary["stamps"][page - 1] == [label, PRIVILEGED_MARK]
    for page in range(1, summary["pages"] + 1):
        if page not in expected:
            assert summary["stamps"][page - 1] == [], page  # no Bates on cover, index, dividers
    # Bookmarks: cover, index, category -> document, each pointing at the right page.
    outline = summary["outline"]
    assert [item["title"] for item in outline[:2]] == ["Cover sheet", "Index of documents"]
    sections = outline[2:]
    assert [s["page"] for s in sections] == [s.divider_page for s in page_list.sections]
    for node, section in zip(sections, page_list.sections, strict=True):
        assert [c["page"] for c in node["children"]] == [p.packet_first for p in section.documents]
    assert sections[1]["children"][1]["title"] == "Memo from plan counsel [PRIVILEGED]"

    # Poppler reads it; every page holds what the page list says.
    texts = _pdftotext_pages(out)
    assert len(texts) == summary["pages"]
    assert "Independent Medical Review" in texts[0] and MEMBER_NAME in texts[0]
    assert "Initial submission" in texts[0] and "3 business days" in texts[0]
    index_text = "\n".join(texts[1:front])
    for placed in page_list.entries:
        assert placed.bates_first_label in index_text
    assert "PRIVILEGED" in index_text and "WITHHELD" in index_text
    plan_divider = texts[page_list.sections[2].divider_page - 1]
    assert "No documents in this category for this submission" in plan_divider
    assert "1374.30(n)(3)" in plan_divider
    for placed in page_list.entries:
        first_page_text = texts[placed.packet_first - 1]
        assert placed.bates_first_label in first_page_text
    assert "EXCLUDED DUPLICATE" not in "".join(texts)
    _qpdf_check(out)
    assert summary["active_content"] == []


def test_privileged_mark_on_exactly_the_privileged_pages(config, documents, tmp_path):
    ctx = _context(config)
    out = tmp_path / "imr-org-packet.pdf"
    page_list = write_org_packet(documents, ctx, out, first_bates=1)
    privileged_pages = {page for placed in page_list.entries if placed.document.is_privileged
                        for page in placed.packet_pages}
    assert len(privileged_pages) == 3
    texts = _pdftotext_pages(out)
    marked = {number for number, text in enumerate(texts, 1) if PRIVILEGED_MARK in text}
    assert marked == privileged_pages
    summary = pdf_summary(out)
    assert {n for n, stamps in enumerate(summary["stamps"], 1) if PRIVILEGED_MARK in stamps} == privileged_pages


def test_supplement_continues_bates_numbering(config, documents, tmp_path):
    ctx = _context(config, submission=2, kind="supplement")
    out = tmp_path / "imr-org-packet.pdf"
    page_list = write_org_packet(documents[:2], ctx, out, first_bates=42)
    assert page_list.first_bates == 42 and page_list.next_bates == 45
    summary = pdf_summary(out)
    document_labels = [summary["page_labels"][p - 1] for e in page_list.entries for p in e.packet_pages]
    assert document_labels == [f"{CASE_ID}-{n:06d}" for n in (42, 43, 44)]
    texts = _pdftotext_pages(out)
    assert "Supplemental submission 2" in texts[0]
    # Empty categories still get their divider, saying so.
    assert "No documents in this category" in texts[page_list.sections[1].divider_page - 1]


def test_page_label_ranges_cross_a_digit_boundary(config, tmp_path):
    ctx = _context(config)
    doc = _document(make_pdf(tmp_path / "many.pdf", [f"page {n}" for n in range(4)]), title="Many",
                    category=PLAN_STATEMENTS, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_org_packet([doc], ctx, out, first_bates=8)
    labels = pdf_summary(out)["page_labels"]
    entry = page_list.entries[0]
    assert [labels[p - 1] for p in entry.packet_pages] == [f"{CASE_ID}-{n:06d}" for n in (8, 9, 10, 11)]


def test_draft_watermark_and_needs_review_section(config, documents, tmp_path):
    pending = _document(make_pdf(tmp_path / "src" / "unknown.pdf", ["SOMETHING UNCLEAR"]), title="Unclear fax",
                        category=NEEDS_REVIEW, date=None)
    ctx = _context(config, draft=True)
    out = tmp_path / "draft.pdf"
    page_list = write_org_packet([*documents, pending], ctx, out, first_bates=1)
    assert page_list.sections[-1].category == NEEDS_REVIEW
    summary = pdf_summary(out)
    assert all("DRAFT" in stamps for stamps in summary["stamps"])
    texts = _pdftotext_pages(out)
    assert all("DRAFT" in text for text in texts)
    assert summary["outline"][-1]["title"] == "Needs review"
    assert "Needs review" in texts[page_list.sections[-1].divider_page - 1]


def test_same_inputs_give_identical_bytes(config, documents, tmp_path):
    ctx = _context(config)
    first, second = tmp_path / "a" / "p.pdf", tmp_path / "b" / "p.pdf"
    write_org_packet(documents, ctx, first, first_bates=1)
    write_org_packet(list(reversed(documents)), ctx, second, first_bates=1)
    assert first.read_bytes() == second.read_bytes()
    # The /ID is derived from the submission, not random; a different submission differs.
    third = tmp_path / "c" / "p.pdf"
    write_org_packet(documents, dataclasses.replace(ctx, submission=2, kind="supplement"), third, first_bates=1)
    assert PdfReader(third).trailer["/ID"][0] != PdfReader(first).trailer["/ID"][0]
    assert (first.stat().st_mode & 0o777) == 0o640


def _active_pdf(path: Path) -> Path:
    """A PDF with document JavaScript, an OpenAction, page AA, a JS link and an embedded file."""
    make_pdf(path.with_suffix(".base.pdf"), ["ACTIVE CONTENT PAGE"])
    writer = PdfWriter(clone_from=path.with_suffix(".base.pdf"))
    writer.add_attachment("payload.txt", b"secret payload bytes")
    names = writer._root_object["/Names"].get_object()
    document_js = writer._add_object(DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                                                       NameObject("/JS"): TextStringObject("app.alert('hi');")}))
    names[NameObject("/JavaScript")] = DictionaryObject(
        {NameObject("/Names"): ArrayObject([TextStringObject("init"), document_js])})
    js_action = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                                  NameObject("/JS"): TextStringObject("app.alert('open');")})
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(js_action)
    page = writer.pages[0]
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): writer._add_object(DictionaryObject({
        NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("calc.exe")}))})
    link = Link(rect=(72, 600, 200, 620), url="https://example.org/")
    writer.add_annotation(0, link)
    annot = writer.pages[0]["/Annots"][0].get_object()
    annot[NameObject("/A")] = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                                                NameObject("/JS"): TextStringObject("app.launchURL('x');")})
    attach = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/FileAttachment"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (10, 10, 30, 30)]),
        NameObject("/Contents"): TextStringObject("attached")})
    writer.pages[0]["/Annots"].append(writer._add_object(attach))
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def test_active_content_is_removed(config, tmp_path):
    source = _active_pdf(tmp_path / "active.pdf")
    raw = source.read_bytes()
    assert b"/JavaScript" in raw and b"/EmbeddedFiles" in raw and b"/OpenAction" in raw
    doc = _document(source, title="Letter with scripts", category=CORRESPONDENCE, date=dt.date(2026, 9, 1))
    out = tmp_path / "p.pdf"
    write_org_packet([doc], _context(config), out, first_bates=1)
    data = out.read_bytes()
    for needle in (b"/JavaScript", b"/JS", b"/OpenAction", b"/Launch", b"/EmbeddedFile", b"/FileAttachment",
                   b"secret payload"):
        assert needle not in data, needle
    assert not re.search(rb"/AA[\s<]", data)  # (font subset names like /AAAAAA+DejaVuSans are fine)
    assert pdf_summary(out)["active_content"] == []
    _qpdf_check(out)


def test_copy_set_replaces_withheld_documents_with_slip_sheets(config, documents, tmp_path):
    ctx = _context(config)
    page_list = write_org_packet(documents, ctx, tmp_path / "p.pdf", first_bates=1)
    out = tmp_path / "copies-member.pdf"
    items = write_copy_set(page_list, ctx, out, recipient="member")
    assert items == copy_set_items(page_list)
    withheld = [i for i in items if i.withheld]
    assert {i.placed.document.title.value for i in withheld} == {"Memo from plan counsel", "Psychotherapy notes"}
    texts = _pdftotext_pages(out)
    joined = "\n".join(texts)
    assert "COUNSEL MEMO" not in joined and "PSYCHOTHERAPY NOTES" not in joined
    assert "Memo from plan counsel" not in joined and "Psychotherapy notes" not in joined
    assert PRIVILEGED_MARK not in joined
    expected_pages = sum(1 if i.withheld else i.placed.document.pages for i in items)
    summary = pdf_summary(out)
    assert summary["pages"] == len(texts) == expected_pages
    page = 0
    for item in items:
        if item.withheld:
            assert "Withheld: " in texts[page] and item.placed.bates_range in texts[page]
            assert summary["stamps"][page] == [item.placed.bates_range]
            page += 1
        else:
            for offset in range(item.placed.document.pages):
                label = f"{CASE_ID}-{item.placed.bates_first + offset:06d}"
                assert summary["page_labels"][page] == label and summary["stamps"][page] == [label]
                page += 1
    _qpdf_check(out)


def _label_box(page_png_text_bbox: Path, label: str) -> tuple[float, float, float, float, float, float]:
    """(xMin, yMin, xMax, yMax, page width, page height) of `label` from pdftotext -bbox (top-left origin)."""
    html = page_png_text_bbox.read_text()
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', html)
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html)
    for x0, y0, x1, y1, word in words:
        if word == label:
            return (float(x0), float(y0), float(x1), float(y1), float(page.group(1)), float(page.group(2)))
    raise AssertionError(f"{label} not found")


@pytest.mark.parametrize("pagesize,rotate", [(letter, 0), (landscape(letter), 0), (A4, 0), (legal, 0),
                                             (letter, 90), (letter, 270), (A4, 180), ((200, 260), 0)])
def test_bates_label_is_inside_the_page_and_outside_the_content(config, tmp_path, pagesize, rotate):
    # A page whose content runs to the very bottom edge: the label must not cover it.
    path = tmp_path / "edge.pdf"
    from reportlab.pdfgen import canvas
    c = canvas.Canvas(str(path), pagesize=pagesize, invariant=1)
    c.setFillGray(0.2)
    c.rect(0, 0, pagesize[0], pagesize[1], stroke=0, fill=1)
    if rotate:
        c.setPageRotation(rotate)
    c.showPage()
    c.save()
    doc = _document(path, title="Full-bleed scan", category=MEDICAL_RECORDS, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_org_packet([doc], _context(config), out, first_bates=1)
    page = page_list.entries[0].packet_first
    label = page_list.entries[0].bates_first_label
    bbox = tmp_path / "bbox.html"
    subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(out), str(bbox)], check=True)
    x0, y0, x1, y1, width, height = _label_box(bbox, label)
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
    from PIL import Image
    image = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    w, h = image.size
    strip = [image.getpixel((x, h - 2)) for x in range(w)]
    assert max(strip) > 200  # the bottom strip is light (no content there)
    assert image.getpixel((w // 2, h // 2)) < 100  # the content is still there, dark


def test_copy_set_never_reads_a_withheld_document(config, documents, tmp_path):
    # The withheld documents' files are gone: a copy set must still build, so it never opened them.
    from packet.model.pagelist import number_pages
    missing = tmp_path / "nowhere.pdf"
    changed = [dataclasses.replace(d, pdf_path=missing) if d.is_withheld else d for d in documents]
    page_list = number_pages(changed, case_id=CASE_ID, submission=1, kind="initial", first_bates=1,
                             front_pages=2, bates=config.bates)
    out = tmp_path / "copies-provider.pdf"
    items = write_copy_set(page_list, _context(config), out, recipient="provider")
    assert sum(item.withheld for item in items) == 2
    assert pdf_summary(out)["pages"] == sum(1 if i.withheld else i.placed.document.pages for i in items)


ODD_CORPUS_FILES = ("qpdf-rotated.pdf", "sf-habibi-rotated.pdf", "pypdf-AutoCad_Diagram.pdf", "qpdf-boxes.pdf",
                    "ocrmypdf-hugemono.pdf", "ocrmypdf-multipage.pdf", "qpdf-fxo-red-rotate.pdf",
                    "qpdf-inherited-rotate.pdf", "pypdf-indirect-rotation.pdf", "sf-with-attachment.pdf",
                    "qpdf-form-filled-by-acrobat.pdf", "pdfjs-xfa_issue14315.pdf", "qpdf-fax-decode-parms.pdf",
                    "pdfjs-vertical.pdf", "qpdf-digitally-signed.pdf")


@pytest.mark.slow
def test_real_world_pdfs_merge_cleanly(config, corpus_dir, tmp_path):
    documents = []
    for number, name in enumerate(ODD_CORPUS_FILES):
        documents.append(_document(corpus_dir / "pdf" / name, title=name, category=MEDICAL_RECORDS,
                                   date=dt.date(2026, 1, 1) + dt.timedelta(days=number),
                                   privileged=name == "qpdf-boxes.pdf"))
    out = tmp_path / "p.pdf"
    page_list = write_org_packet(documents, _context(config, draft=True), out, first_bates=1)
    _qpdf_check(out)
    texts = _pdftotext_pages(out)
    summary = pdf_summary(out)
    assert summary["active_content"] == []
    assert b"/EmbeddedFile" not in out.read_bytes() and b"/XFA" not in out.read_bytes()
    assert len(texts) == summary["pages"] == page_list.total_pages
    for placed in page_list.entries:
        source = PdfReader(placed.document.pdf_path)
        for offset, page in enumerate(placed.packet_pages):
            label = f"{CASE_ID}-{placed.bates_first + offset:06d}"
            assert summary["page_labels"][page - 1] == label
            assert label in summary["stamps"][page - 1] and "DRAFT" in summary["stamps"][page - 1]
            assert (PRIVILEGED_MARK in summary["stamps"][page - 1]) == placed.document.is_privileged
            assert label in texts[page - 1], (placed.document.title.value, offset)
            # The page shows what a viewer showed before: the crop box, turned by /Rotate.
            original = source.pages[offset]
            box = original.cropbox
            width, height = float(box.width), float(box.height)
            if original.rotation % 180:
                width, height = height, width
            assert summary["page_sizes"][page - 1] == pytest.approx([width, height], abs=0.05)


def test_huge_pages_get_a_label_that_survives_fit_to_letter(config, tmp_path):
    from reportlab.pdfgen import canvas
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
    doc = _document(path, title="Huge", category=MEDICAL_RECORDS, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_org_packet([doc], _context(config), out, first_bates=1)
    page = page_list.entries[0].packet_first
    png = tmp_path / "huge"
    subprocess.run(["pdftoppm", "-r", "6", "-png", "-f", str(page), "-l", str(page), str(out), str(png)], check=True)
    bbox = tmp_path / "bbox.html"
    subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(out), str(bbox)], check=True)
    x0, y0, x1, y1, width, height = _label_box(bbox, f"{CASE_ID}-000001")
    assert (y1 - y0) * 612 / width > 7  # glyph box height at fit-to-letter scale, in points


def test_form_fields_are_flattened_with_their_values(config, tmp_path):
    from reportlab.pdfgen import canvas
    path = tmp_path / "form.pdf"
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.drawString(72, 720, "REQUEST FORM")
    c.acroForm.textfield(name="diagnosis", value="Lumbar stenosis", x=72, y=650, width=250, height=20)
    c.acroForm.checkbox(name="urgent", checked=True, x=72, y=600, size=14)
    c.showPage()
    c.save()
    assert b"/AcroForm" in path.read_bytes()
    doc = _document(path, title="Request form", category=CORRESPONDENCE, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_org_packet([doc, dataclasses.replace(doc, source="copy.pdf")], _context(config), out,
                                 first_bates=1)
    data = out.read_bytes()
    assert b"/AcroForm" not in data and b"/Widget" not in data
    texts = _pdftotext_pages(out)
    for placed in page_list.entries:
        assert "Lumbar stenosis" in texts[placed.packet_first - 1]
    _qpdf_check(out)


def build_sample_packet(workdir: Path, out: Path) -> None:
    """Used in-process and in a subprocess by the determinism test below."""
    from helpers import make_config
    config = make_config(workdir / "cfg")
    write_org_packet(make_documents(workdir), _context(config, draft=True), out, first_bates=3)


def test_identical_bytes_across_processes(tmp_path):
    import os
    import sys
    here = tmp_path / "here.pdf"
    build_sample_packet(tmp_path, here)
    there = tmp_path / "there.pdf"
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import test_assemble as t; "
            "t.build_sample_packet(Path(sys.argv[2]), Path(sys.argv[3]))")
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path), str(there)],
                   check=True, env=env, capture_output=True)
    assert here.read_bytes() == there.read_bytes()
