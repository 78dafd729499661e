"""The IMR-organization packet (packet.pdf.assemble): structure, outline, labels, marks, bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path

import pytest
from helpers import MEMBER_NAME, make_pdf
from pdfkit import CASE_ID, build_context, build_sample_packet, pdf_document, pdftotext_pages, qpdf_check
from pypdf import PdfReader

from packet.model.models import CORRESPONDENCE, MEDICAL_RECORDS, NEEDS_REVIEW, PLAN_STATEMENTS, PRIVILEGED_MARK
from packet.pipeline.numbering import write_numbered_packet
from packet.pdf.inspect import pdf_summary


def test_packet_structure_outline_and_labels(config, documents, tmp_path):
    ctx = build_context(config)
    out = tmp_path / "out" / "imr-org-packet.pdf"
    page_list = write_numbered_packet(documents, ctx, out, first_bates=1)

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
    texts = pdftotext_pages(out)
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
    qpdf_check(out)
    assert summary["active_content"] == []


def test_privileged_mark_on_exactly_the_privileged_pages(config, documents, tmp_path):
    ctx = build_context(config)
    out = tmp_path / "imr-org-packet.pdf"
    page_list = write_numbered_packet(documents, ctx, out, first_bates=1)
    privileged_pages = {page for placed in page_list.entries if placed.document.is_privileged
                        for page in placed.packet_pages}
    assert len(privileged_pages) == 3
    texts = pdftotext_pages(out)
    marked = {number for number, text in enumerate(texts, 1) if PRIVILEGED_MARK in text}
    assert marked == privileged_pages
    summary = pdf_summary(out)
    assert {n for n, stamps in enumerate(summary["stamps"], 1) if PRIVILEGED_MARK in stamps} == privileged_pages


def test_supplement_continues_bates_numbering(config, documents, tmp_path):
    ctx = build_context(config, submission=2, kind="supplement")
    out = tmp_path / "imr-org-packet.pdf"
    page_list = write_numbered_packet(documents[:2], ctx, out, first_bates=42)
    assert page_list.first_bates == 42 and page_list.next_bates == 45
    summary = pdf_summary(out)
    document_labels = [summary["page_labels"][p - 1] for e in page_list.entries for p in e.packet_pages]
    assert document_labels == [f"{CASE_ID}-{n:06d}" for n in (42, 43, 44)]
    texts = pdftotext_pages(out)
    assert "Supplemental submission 2" in texts[0]
    # Empty categories still get their divider, saying so.
    assert "No documents in this category" in texts[page_list.sections[1].divider_page - 1]


def test_page_label_ranges_cross_a_digit_boundary(config, tmp_path):
    ctx = build_context(config)
    doc = pdf_document(make_pdf(tmp_path / "many.pdf", [f"page {n}" for n in range(4)]), title="Many",
                    category=PLAN_STATEMENTS, date=None)
    out = tmp_path / "p.pdf"
    page_list = write_numbered_packet([doc], ctx, out, first_bates=8)
    labels = pdf_summary(out)["page_labels"]
    entry = page_list.entries[0]
    assert [labels[p - 1] for p in entry.packet_pages] == [f"{CASE_ID}-{n:06d}" for n in (8, 9, 10, 11)]


def test_draft_watermark_and_needs_review_section(config, documents, tmp_path):
    pending = pdf_document(make_pdf(tmp_path / "src" / "unknown.pdf", ["SOMETHING UNCLEAR"]), title="Unclear fax",
                        category=NEEDS_REVIEW, date=None)
    ctx = build_context(config, draft=True)
    out = tmp_path / "draft.pdf"
    page_list = write_numbered_packet([*documents, pending], ctx, out, first_bates=1)
    assert page_list.sections[-1].category == NEEDS_REVIEW
    summary = pdf_summary(out)
    assert all("DRAFT" in stamps for stamps in summary["stamps"])
    texts = pdftotext_pages(out)
    assert all("DRAFT" in text for text in texts)
    assert summary["outline"][-1]["title"] == "Needs review"
    assert "Needs review" in texts[page_list.sections[-1].divider_page - 1]


def test_same_inputs_give_identical_bytes(config, documents, tmp_path):
    ctx = build_context(config)
    first, second = tmp_path / "a" / "p.pdf", tmp_path / "b" / "p.pdf"
    write_numbered_packet(documents, ctx, first, first_bates=1)
    write_numbered_packet(list(reversed(documents)), ctx, second, first_bates=1)
    assert first.read_bytes() == second.read_bytes()
    # The /ID is derived from the submission, not random; a different submission differs.
    third = tmp_path / "c" / "p.pdf"
    write_numbered_packet(documents, dataclasses.replace(ctx, submission=2, kind="supplement"), third, first_bates=1)
    assert PdfReader(third).trailer["/ID"][0] != PdfReader(first).trailer["/ID"][0]
    assert (first.stat().st_mode & 0o777) == 0o640


ODD_CORPUS_FILES = ("qpdf-rotated.pdf", "sf-habibi-rotated.pdf", "pypdf-AutoCad_Diagram.pdf", "qpdf-boxes.pdf",
                    "ocrmypdf-hugemono.pdf", "ocrmypdf-multipage.pdf", "qpdf-fxo-red-rotate.pdf",
                    "qpdf-inherited-rotate.pdf", "pypdf-indirect-rotation.pdf", "sf-with-attachment.pdf",
                    "qpdf-form-filled-by-acrobat.pdf", "pdfjs-xfa_issue14315.pdf", "qpdf-fax-decode-parms.pdf",
                    "pdfjs-vertical.pdf", "qpdf-digitally-signed.pdf")


@pytest.mark.slow
def test_real_world_pdfs_merge_cleanly(config, corpus_dir, tmp_path):
    documents = []
    for number, name in enumerate(ODD_CORPUS_FILES):
        documents.append(pdf_document(corpus_dir / "pdf" / name, title=name, category=MEDICAL_RECORDS,
                                   date=dt.date(2026, 1, 1) + dt.timedelta(days=number),
                                   privileged=name == "qpdf-boxes.pdf"))
    out = tmp_path / "p.pdf"
    page_list = write_numbered_packet(documents, build_context(config, draft=True), out, first_bates=1)
    qpdf_check(out)
    texts = pdftotext_pages(out)
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


def test_identical_bytes_across_processes(tmp_path):
    import os
    import sys
    here = tmp_path / "here.pdf"
    build_sample_packet(tmp_path, here)
    there = tmp_path / "there.pdf"
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import pdfkit; "
            "pdfkit.build_sample_packet(Path(sys.argv[2]), Path(sys.argv[3]))")
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent.parent), str(tmp_path), str(there)],
                   check=True, env=env, capture_output=True)
    assert here.read_bytes() == there.read_bytes()
