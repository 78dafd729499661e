"""The sanitiser (packet.pdf.sanitize): no output carries active content or an oversized stream,
whatever the source hides and however deep; `find_active_content` sees what it removes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re

import pytest
from pdfkit import (HOSTILE, active_pdf, build_context, hostile_pdf, inflating_pdf, pdf_document, pdftotext_pages,
                    qpdf_check)
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from packet.model.models import CORRESPONDENCE, MEDICAL_RECORDS
from packet.pipeline.numbering import write_numbered_packet
from packet.pdf.errors import AssemblyError
from packet.pdf.inspect import find_active_content, pdf_summary
from packet.pdf.sanitize import sanitize

MiB = 1024 * 1024


def test_active_content_is_removed(config, tmp_path):
    source = active_pdf(tmp_path / "active.pdf")
    raw = source.read_bytes()
    assert b"/JavaScript" in raw and b"/EmbeddedFiles" in raw and b"/OpenAction" in raw
    doc = pdf_document(source, title="Letter with scripts", category=CORRESPONDENCE, date=dt.date(2026, 9, 1))
    out = tmp_path / "p.pdf"
    write_numbered_packet([doc], build_context(config), out, first_bates=1)
    data = out.read_bytes()
    for needle in (b"/JavaScript", b"/JS", b"/OpenAction", b"/Launch", b"/EmbeddedFile", b"/FileAttachment",
                   b"secret payload"):
        assert needle not in data, needle
    assert not re.search(rb"/AA[\s<]", data)  # (font subset names like /AAAAAA+DejaVuSans are fine)
    assert pdf_summary(out)["active_content"] == []
    qpdf_check(out)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_each_kind_of_active_content_is_found_in_the_source_and_gone_from_the_packet(config, tmp_path, kind):
    source = hostile_pdf(tmp_path / f"{kind}.pdf", kind, text=f"Clinic note {kind} body text")
    word = HOSTILE[kind][1]
    found = find_active_content(PdfReader(source))
    assert any(word in finding for finding in found), found  # the detector sees it in the source
    doc = pdf_document(source, title="Clinic note", category=MEDICAL_RECORDS, date=None)
    out = tmp_path / "packet.pdf"
    page_list = write_numbered_packet([doc], build_context(config, draft=True), out, first_bates=1)
    assert find_active_content(PdfReader(out)) == []
    data = out.read_bytes()
    for needle in (b"/JS ", b"/JS(", b"/Launch", b"/SubmitForm", b"/ImportData", b"/GoToR", b"/GoToE",
                   b"/RichMedia", b"/EmbeddedFile", b"/XFA", b"/OpenAction", b"calc.exe", b"payload bytes",
                   b"javascript:", b"file://"):
        assert needle not in data, needle
    assert f"Clinic note {kind} body text" in pdftotext_pages(out)[page_list.entries[0].packet_first - 1]
    qpdf_check(out)


def test_every_kind_at_once_in_a_sealed_style_build_leaves_nothing(config, tmp_path):
    """All the kinds in one file, built as a sealed submission's packet is (not a draft)."""
    path = tmp_path / "all.pdf"
    writer = PdfWriter(clone_from=hostile_pdf(tmp_path / "first.pdf", "next_chain"))
    for kind, (add, _) in HOSTILE.items():
        if kind != "next_chain":
            add(writer)
    writer.write(path)
    assert len({word for _, word in HOSTILE.values() if any(word in f for f in find_active_content(PdfReader(path)))}) \
        == len({word for _, word in HOSTILE.values()})
    doc = pdf_document(path, title="Everything", category=MEDICAL_RECORDS, date=None)
    out = tmp_path / "packet.pdf"
    write_numbered_packet([doc], build_context(config), out, first_bates=1)
    assert find_active_content(PdfReader(out)) == []


def test_the_walk_has_no_depth_limit_direct_or_indirect(tmp_path):
    """A /Next chain of 2,000 indirect actions and one of 300 nested dictionaries, each ending in
    JavaScript, hung on the catalog and on a page; sanitize on the writer leaves none."""
    writer = PdfWriter(clone_from=hostile_pdf(tmp_path / "deep.pdf", "next_chain"))
    tail = writer._add_object(DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                                                NameObject("/JS"): TextStringObject("app.alert('deep')")}))
    for _ in range(2000):
        tail = writer._add_object(DictionaryObject({NameObject("/S"): NameObject("/GoTo"),
                                                    NameObject("/D"): TextStringObject("top"), NameObject("/Next"): tail}))
    writer._root_object[NameObject("/Outlines")] = writer._add_object(DictionaryObject({NameObject("/A"): tail}))
    nested = DictionaryObject({NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("x.exe")})
    for _ in range(300):
        nested = DictionaryObject({NameObject("/S"): NameObject("/Named"), NameObject("/N"): NameObject("/NextPage"),
                                   NameObject("/Next"): nested})
    writer.pages[0][NameObject("/PieceInfo")] = DictionaryObject({NameObject("/Deep"): nested})
    before = io.BytesIO()
    writer.write(before)
    assert {"JavaScript", "Launch"} <= {f.split()[0] for f in find_active_content(PdfReader(before))}
    sanitize(writer)
    after = io.BytesIO()
    writer.write(after)
    assert find_active_content(PdfReader(after)) == []


def test_a_stream_that_inflates_past_the_bound_stops_the_packet(config, tmp_path):
    source = inflating_pdf(tmp_path / "bomb.pdf", 3 * MiB)
    assert source.stat().st_size < 40_000
    doc = pdf_document(source, title="Scan", category=MEDICAL_RECORDS, date=None)
    small = dataclasses.replace(config, limits=dataclasses.replace(config.limits, max_stream_bytes=2 * MiB))
    out = tmp_path / "packet.pdf"
    with pytest.raises(AssemblyError) as caught:
        write_numbered_packet([doc], build_context(small), out, first_bates=1)
    assert caught.value.reason == "stream_limit" and "max_stream_bytes" in str(caught.value)
    assert f"document {doc.short} " in str(caught.value)  # the clerk learns which file, by its id (no name)
    assert not out.exists()
    # Under the bound (the default, 512 MiB) the same document is taken as it is.
    write_numbered_packet([doc], build_context(config), out, first_bates=1)
    assert pdf_summary(out)["pages"] > 1
