"""How the packet is assembled fast, without changing what it shows: the front-matter page count
found by layout, the paused cyclic collector, the freed object graph, shared stamp resources and
page content streams. (No timings: these check the design decisions, and that they are sound.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc

import pytest
from helpers import make_pdf
from pypdf import PdfReader
from pdfkit import build_context, pdf_document
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject

from packet.model.models import CORRESPONDENCE, MEDICAL_RECORDS, PLAN_STATEMENTS
from packet.model.pagelist import number_pages
from packet.pipeline import numbering as assemble
from packet.pipeline.numbering import write_numbered_packet
from packet.pdf.errors import AssemblyError
from packet.pdf.frontmatter import estimate_front_pages, render_front_matter
from packet.pdf.inspect import pdf_summary
from packet.pdf.sanitize import sanitize


@pytest.mark.parametrize("count", [1, 12, 45, 130])
def test_the_estimated_front_pages_are_the_pages_the_rendering_makes(config, tmp_path, count):
    pdf = make_pdf(tmp_path / "one.pdf", ["ONE PAGE"])
    categories = (MEDICAL_RECORDS, CORRESPONDENCE, PLAN_STATEMENTS)
    base = pdf_document(pdf, title="x", category=MEDICAL_RECORDS, date=dt.date(2026, 1, 2))
    documents = [dataclasses.replace(
        base, source=f"d{n}.pdf", sha256=f"{n:064x}", pages=1 + n % 40,
        title=dataclasses.replace(base.title, value=("Progress note with a rather long title " * (n % 3))[:90] or "x"),
        category=dataclasses.replace(base.category, value=categories[n % 3]),
        privileged=dataclasses.replace(base.privileged, value=n % 7 == 0)) for n in range(count)]
    ctx = build_context(config)

    def numbered(front_pages):
        return number_pages(documents, case_id=ctx.facts.case_id, submission=1, kind=ctx.kind, first_bates=1,
                            front_pages=front_pages, bates=config.bates)

    estimate = estimate_front_pages(ctx, numbered(0))
    rendered = render_front_matter(ctx, numbered(estimate), tmp_path / "front.pdf").front_pages
    assert estimate == rendered
    if count == 130:
        assert rendered > 3  # the index ran over several pages


def test_a_wrong_starting_count_changes_nothing_but_the_work(config, documents, tmp_path, monkeypatch):
    ctx = build_context(config)
    assemble.forget_front_page_counts()
    right = tmp_path / "right.pdf"
    write_numbered_packet(documents, ctx, right, first_bates=1)
    for wrong in (2, 6):
        assemble.forget_front_page_counts()
        monkeypatch.setattr(assemble, "estimate_front_pages", lambda *a, wrong=wrong, **k: wrong)
        out = tmp_path / f"wrong-{wrong}.pdf"
        write_numbered_packet(documents, ctx, out, first_bates=1)
        assert out.read_bytes() == right.read_bytes()


def test_the_collector_is_restored_after_an_assembly_and_after_a_failure(config, documents, tmp_path):
    ctx = build_context(config)
    assert gc.isenabled()
    write_numbered_packet(documents, ctx, tmp_path / "a.pdf", first_bates=1)
    assert gc.isenabled()
    changed = dataclasses.replace(documents[0], pages=documents[0].pages + 1)  # the file "changed"
    with pytest.raises(AssemblyError) as caught:
        write_numbered_packet([changed], ctx, tmp_path / "b.pdf", first_bates=1)
    assert caught.value.reason == "page_count"
    assert gc.isenabled()
    gc.disable()  # someone else paused it: an assembly leaves it paused
    try:
        write_numbered_packet(documents, ctx, tmp_path / "c.pdf", first_bates=1)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_assembly_leaves_no_cycles_for_the_collector(config, tmp_path):
    many = [make_pdf(tmp_path / f"doc{n}.pdf", [f"RECORD {n} page {p}" for p in range(12)]) for n in range(3)]
    documents = [pdf_document(path, title=f"Record {n}", category=MEDICAL_RECORDS, date=dt.date(2026, 3, n + 1))
                 for n, path in enumerate(many)]
    ctx = build_context(config)
    write_numbered_packet(documents, ctx, tmp_path / "warm.pdf", first_bates=1)
    gc.collect()
    gc.disable()
    try:
        write_numbered_packet(documents, ctx, tmp_path / "p.pdf", first_bates=1)
        left = gc.collect()  # objects only the cyclic collector could free
    finally:
        gc.enable()
    # Left to the collector, the writer and the readers are some 6,700 objects here (36 pages,
    # 4 documents); freed by the assembly, what remains is the front matter's reportlab objects.
    assert left < 2500, left


def test_stamps_share_their_resources_and_pages_share_their_content_streams(config, documents, tmp_path):
    for draft in (False, True):
        out = tmp_path / f"p-{draft}.pdf"
        write_numbered_packet(documents, build_context(config, draft=draft), out, first_bates=1)
        reader = PdfReader(out)
        stamp_resources, contents = set(), set()
        for page in reader.pages:
            xobjects = page["/Resources"]["/XObject"]
            if "/ImrStamp" in xobjects:  # (service pages of a final packet carry no stamp)
                stamp_resources.add(xobjects.raw_get("/ImrStamp").get_object().raw_get("/Resources").idnum)
            contents.add(page.raw_get("/Contents").idnum)
        assert len(stamp_resources) == 1  # letter pages only: one size
        # All letter pages: service pages (not shrunk), document pages (shrunk out of the bottom
        # strip) and privileged pages (out of both strips) make at most three streams for 12 pages.
        assert len(contents) <= 3 < len(reader.pages)
        summary = pdf_summary(out)
        assert all(("DRAFT" in stamps) == draft for stamps in summary["stamps"])
        assert summary["active_content"] == []


def test_the_sanitiser_reaches_every_nested_direct_object():
    def name(text):
        return NameObject(text)

    script = DictionaryObject({name("/S"): name("/JavaScript"), name("/JS"): TextStringObject("app.alert(1)")})
    launch = DictionaryObject({name("/S"): name("/Launch"), name("/F"): TextStringObject("calc.exe")})
    colour = ArrayObject([name("/Indexed"), name("/DeviceRGB\x00255"), NumberObject(0)])
    root = DictionaryObject({
        name("/Kids"): ArrayObject([ArrayObject([DictionaryObject({name("/A"): script})]), colour]),
        name("/Inner"): DictionaryObject({name("/AA"): DictionaryObject({name("/O"): launch}),
                                          name("/Next"): ArrayObject([launch])}),
    })
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer._root_object[name("/PieceInfo")] = root
    sanitize(writer)
    assert dict(script) == {"/S": "/Named", "/N": "/Nothing"}
    assert "/AA" not in root["/Inner"]
    assert dict(launch) == {"/S": "/Named", "/N": "/Nothing"}  # reached through the array too
    assert list(colour) == ["/Indexed", "/DeviceRGB", 255, 0]


def _linked_pdf(tmp_path):
    """Two pages, the first with a link to the second and a URI link: what pypdf's merge reads
    through the source pages it keeps beside the copies."""
    from pypdf.annotations import Link

    path = make_pdf(tmp_path / "linked-src.pdf", ["CONSULT NOTE page one", "CONSULT NOTE page two"])
    writer = PdfWriter(clone_from=PdfReader(path))
    writer.add_annotation(0, Link(rect=(50, 50, 200, 80), target_page_index=1))
    writer.add_annotation(0, Link(rect=(50, 90, 200, 120), url="https://example.org/records"))
    out = tmp_path / "linked.pdf"
    with open(out, "wb") as handle:
        writer.write(handle)
    return out


def test_a_merged_documents_parsed_objects_are_let_go_and_the_packet_is_the_same(config, documents, tmp_path,
                                                                                  monkeypatch):
    """Once its pages are in the writer, a document's reader keeps no parsed object and no page of the
    writer keeps its source page; the packet (full, with a removed page, a document in object streams,
    links) and the records' copies come out byte for byte as when everything is kept."""
    import subprocess

    from packet.pdf.assemble import write_record_copies
    from packet.pdf.builder import Builder

    packed = tmp_path / "packed.pdf"
    subprocess.run(["qpdf", "--object-streams=generate", str(documents[0].pdf_path), str(packed)], check=True)
    assert b"/ObjStm" in packed.read_bytes()
    three = make_pdf(tmp_path / "three.pdf", ["LAB RESULT page one", "OTHER PATIENT page", "LAB RESULT page three"])
    extra = [pdf_document(packed, title="MRI report (object streams)", category=MEDICAL_RECORDS,
                          date=dt.date(2026, 8, 15)),
             pdf_document(_linked_pdf(tmp_path), title="Consult note", category=MEDICAL_RECORDS,
                          date=dt.date(2026, 8, 16)),
             dataclasses.replace(pdf_document(three, title="Lab results", category=MEDICAL_RECORDS,
                                              date=dt.date(2026, 8, 17)), pages=2, removed_pages=(2,))]
    everything = documents + extra
    ctx = build_context(config)

    checked = []
    forget = Builder._forget_source

    def checking(self, reader, first, merged):
        forget(self, reader, first, merged)
        assert reader.resolved_objects == {} and reader.flattened_pages is None
        assert not any(hasattr(self.writer.get_page(i), "original_page") for i in range(first, first + merged))
        checked.append(merged)

    def outputs(name):
        packet = tmp_path / f"{name}.pdf"
        page_list = write_numbered_packet(everything, ctx, packet, first_bates=1)
        copies = tmp_path / f"{name}-copies.pdf"
        copyable = dataclasses.replace(page_list, sections=tuple(
            dataclasses.replace(s, documents=tuple(p for p in s.documents
                                                   if not (p.document.is_withheld or p.document.is_privileged)))
            for s in page_list.sections))
        write_record_copies(copyable, ctx, copies, recipient="member")
        return packet.read_bytes(), copies.read_bytes()

    monkeypatch.setattr(Builder, "_forget_source", checking)
    lean = outputs("lean")
    assert 2 in checked and len(checked) >= 2 * len(extra)  # the packet's documents and the copies'
    monkeypatch.setattr(Builder, "_forget_source", lambda self, reader, first, merged: None)
    kept = outputs("kept")
    assert lean == kept
    assert "OTHER PATIENT" not in "".join(page.extract_text() for page in PdfReader(tmp_path / "lean.pdf").pages)
