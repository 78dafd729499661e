"""Adversarial end-to-end tests: privileged and withheld documents never reach a member or provider.

Every privileged or withheld document built here carries its own unique marker string: in its page
text, its file name, its PDF metadata (/Title, /Subject, /Keywords, /Author), its outline, a form
field value and an annotation; one of them is a scanned memo (an image-only page) whose content can
only be recognised by the hashes of its image XObjects and page content streams. The cases go
through the real pipeline (build_case -> seal_case -> write_copies / write_notice, a supplement, and
the CLI), and then EVERY member or provider output (the mailings of each submission and draft, the
copy sets, the IMR notice, everything in outbox/_print/) is searched through every channel: raw
bytes, streams decompressed by qpdf, text extracted by pypdf and pdftotext, metadata, outlines,
form fields, annotations, the XML parts of a DOCX, and image / page-content fingerprints. Positive
controls (the markers ARE in imr-org-packet.pdf, a releasable document's marker and image DO reach
the copy set, each detector finds a marker hidden in its channel alone) keep these tests able to fail.

Decision: the case board (outbox/index.html, outbox/_board/*.html) and manifest.json are internal,
auditor- and staff-facing; they may name privileged documents, so they are not searched here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_config, make_pdf, write_case
from pdfkit import flate_stream, raw_pdf
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from packet import log as service_log
from packet.pipeline.build import build_case
from packet.mailings.copies import write_copies
from packet.mailings.notice import write_notice
from packet.pipeline.seal import seal_case
from packet.pipeline.verify import verify_submission

CASE_ID = "IMR-2026-000777"
PST = dt.timezone(dt.timedelta(hours=-8))
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=PST)
LATER = dt.datetime(2026, 11, 30, 10, 0, tzinfo=PST)
LATEST = dt.datetime(2026, 12, 1, 11, 0, tzinfo=PST)
WHO = f"Patient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\nDOB: {MEMBER_DOB:%m/%d/%Y}"


def grievance_response(case_dir: Path) -> Path:
    """The plan's written grievance response, which every packet must hold (the seal waits for it)."""
    return make_pdf(case_dir / "correspondence" / "grievance resolution.pdf",
                    [f"Grievance Resolution Letter\nDate: 10/02/2026\n{WHO}\nWe have upheld our decision to deny "
                     "the requested lumbar fusion. This is our written response to your grievance."])

RECIPIENT_FILES = ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf", "annotated-list.csv",
                   "notice-letter.docx")
FILLER = ("The committee reviewed the chart in detail and discussed the history, the imaging, the conservative "
          "care so far and the options that remain open for this member before reaching its view.")


# ------------------------------------------------------------------------------------------------
# Inputs: documents that carry a marker in every channel a PDF (or DOCX, or image) has
# ------------------------------------------------------------------------------------------------

def noise_image(seed: int, size=(360, 240), label: str = "") -> Image.Image:
    """A unique picture (random noise, so its bytes cannot occur by chance anywhere else)."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3)))
    if label:
        draw = ImageDraw.Draw(image)
        draw.rectangle((8, 8, size[0] - 8, 40), fill="white")
        draw.text((14, 16), label, fill="black")
    return image


def rich_pdf(path: Path, marker: str, pages: list[str], *, image_seed: int | None = None) -> Path:
    """A PDF whose every channel carries `marker`: text, metadata, outline, a form field, an
    annotation; with `image_seed`, a last image-only page (a scanned page, no text at all)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.setTitle(f"Title {marker}")
    c.setSubject(f"Subject {marker}")
    c.setKeywords(f"Keywords {marker}")
    c.setAuthor(f"Author {marker}")
    for number, text in enumerate(pages):
        y = letter[1] - 72
        for line in text.splitlines():
            c.drawString(72, y, line)
            y -= 14
        if number == 0:
            c.bookmarkPage(f"p{number}")
            c.addOutlineEntry(f"Outline {marker}", f"p{number}", level=0)
            c.acroForm.textfield(name=f"field_{marker}", value=f"Field {marker}", x=72, y=120, width=300,
                                 height=20, borderWidth=0, forceBorder=False, fontSize=9)
            c.textAnnotation(f"Annotation {marker}", Rect=(400, 700, 500, 760))
        c.showPage()
    if image_seed is not None:
        c.drawImage(ImageReader(noise_image(image_seed)), 72, 300, width=468, height=312)
        c.showPage()
    c.save()
    return path


def privileged_docx(path: Path, marker: str) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = f"Title {marker}"
    document.core_properties.subject = f"Subject {marker}"
    document.core_properties.keywords = f"Keywords {marker}"
    document.core_properties.author = f"Author {marker}"
    document.add_heading("Memorandum from counsel", level=1)
    document.add_paragraph("PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION")
    for line in WHO.splitlines():
        document.add_paragraph(line)
    document.add_paragraph(f"Case reference {marker}. {FILLER}")
    document.add_paragraph("Recommendation: uphold the denial; the litigation exposure is discussed above.")
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def scanned_png(path: Path, seed: int, marker: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise_image(seed, size=(850, 1100), label=f"SCANNED MEMO {marker}").save(path, format="PNG")
    return path


@dataclass
class Withheld:
    """One privileged / withheld input: its route, marker, and the names that must not leak."""

    route: str
    marker: str
    relpath: str
    expect_privileged: bool
    has_text: bool = True
    excluded: bool = False  # excluded by a person: in no output at all, not even the org packet

    @property
    def name_words(self) -> list[str]:
        return [Path(self.relpath).stem]


def _marker(route: str) -> str:
    return "ZQX" + re.sub(r"[^A-Z0-9]", "", route.upper()) + "MARK"


def build_main_case(inbox: Path, case_id: str = CASE_ID) -> tuple[Path, list[Withheld], dict]:
    """A case with every flag route of the initial submission, plus releasable documents."""
    case_dir = write_case(inbox, case_id)
    withheld: list[Withheld] = []
    overrides: dict[str, dict[str, str]] = {}

    # Releasable: the grievance response and an MRI report (with an image page: a positive control).
    grievance_response(case_dir)
    rich_pdf(case_dir / "medical-records" / "mri report zqxreleasemark.pdf", "ZQXRELEASEMARK",
             [f"MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026\n{WHO}\nFindings: disc protrusion at L4-L5. "
              "ZQXRELEASEMARK\nImpression: moderate stenosis."], image_seed=101)

    # 1. privileged/ folder, with a scanned (image-only) page.
    w = Withheld("folder", _marker("folder"), "privileged/zqx-folder-memo.pdf", True)
    rich_pdf(case_dir / w.relpath, w.marker,
             [f"Internal memorandum {w.marker}\n{WHO}\n{FILLER}\n{w.marker}",
              f"Second page {w.marker}\n{WHO}\nRecommendation: uphold the denial. {w.marker}"], image_seed=202)
    overrides[w.relpath] = {"category": "plan_statements"}
    withheld.append(w)

    # 2. privilege by text rule: attorney-client, in a hint folder (the folder says nothing about privilege).
    # (Not correspondence/: correspondence a rule would withhold from the member waits for a person.)
    w = Withheld("attorney", _marker("attorney"), "plan-statements/zqx-attorney-letter.pdf", True)
    rich_pdf(case_dir / w.relpath, w.marker,
             [f"ATTORNEY-CLIENT PRIVILEGED COMMUNICATION\n{WHO}\nRe: {w.marker}\n{FILLER}",
              f"Page two {w.marker}\n{WHO}\nWe advise the plan to uphold the denial."])
    withheld.append(w)

    # 3. privilege by text rule: Evidence Code 1157 peer review, loose in the case folder.
    w = Withheld("peer", _marker("peer"), "zqx-peer-committee-minutes.pdf", True)
    rich_pdf(case_dir / w.relpath, w.marker,
             [f"PEER REVIEW COMMITTEE MINUTES\nProtected under Evidence Code 1157\n{WHO}\n{w.marker}\n{FILLER}"])
    overrides[w.relpath] = {"category": "plan_statements"}
    withheld.append(w)

    # 4. withheld by law: psychotherapy notes.
    w = Withheld("psychotherapy", _marker("psychotherapy"), "medical-records/zqx-psych-session.pdf", False)
    rich_pdf(case_dir / w.relpath, w.marker,
             [f"PSYCHOTHERAPY NOTES\nSession 11/02/2026\n{WHO}\n{w.marker}\n{FILLER}"])
    withheld.append(w)

    # 5. overrides.toml privileged = "...": the text itself is innocuous.
    w = Withheld("ovpriv", _marker("ovpriv"), "medical-records/zqx-ovpriv-summary.pdf", True)
    rich_pdf(case_dir / w.relpath, w.marker, [f"CASE SUMMARY\nDate: 09/01/2026\n{WHO}\n{w.marker}\n{FILLER}"])
    overrides[w.relpath] = {"privileged": "prepared for counsel (decided by a person)"}
    withheld.append(w)

    # 6. overrides.toml withhold_from_member = "...".
    w = Withheld("ovwithhold", _marker("ovwithhold"), "medical-records/zqx-ovwithhold-note.pdf", False)
    rich_pdf(case_dir / w.relpath, w.marker, [f"PROGRESS NOTE\nDate: 09/03/2026\n{WHO}\n{w.marker}\n{FILLER}"])
    overrides[w.relpath] = {"withhold_from_member": "provider found release harmful (H&S 123115(b))"}
    withheld.append(w)

    # 7. a privileged DOCX (converted by LibreOffice).
    w = Withheld("docx", _marker("docx"), "privileged/zqx-docx-counsel.docx", True)
    privileged_docx(case_dir / w.relpath, w.marker)
    overrides[w.relpath] = {"category": "plan_statements"}
    withheld.append(w)

    # 8. a scanned privileged memo: an image file, no text at all.
    w = Withheld("scan", _marker("scan"), "privileged/zqx-scan-memo.png", True, has_text=False)
    scanned_png(case_dir / w.relpath, 303, w.marker)
    overrides[w.relpath] = {"category": "plan_statements"}
    withheld.append(w)

    # 9. a file name that is itself revealing.
    revealing = f"privileged/Counsel memo re litigation risk {_marker('revealing')}.pdf"
    w = Withheld("revealing", _marker("revealing"), revealing, True)
    rich_pdf(case_dir / w.relpath, w.marker, [f"Memo\n{WHO}\n{FILLER}\n{w.marker}"])
    overrides[w.relpath] = {"category": "plan_statements"}
    withheld.append(w)

    # 10. the attorney-client phrase only on page 12 of a long record (flags read every page).
    w = Withheld("latepage", _marker("latepage"), "medical-records/zqx-latepage-chart.pdf", True)
    chart = [f"CLINIC CHART page {n}\nVisit date: 07/{n:02d}/2026\n{WHO}\nStable. {w.marker}" for n in range(1, 12)]
    rich_pdf(case_dir / w.relpath, w.marker, chart + [f"Forwarded note\n{WHO}\nATTORNEY-CLIENT PRIVILEGED "
                                                      f"COMMUNICATION\n{w.marker}\n{FILLER}"])
    withheld.append(w)

    # 11. the psychotherapy phrase broken across two lines.
    w = Withheld("linebreak", _marker("linebreak"), "medical-records/zqx-linebreak-note.pdf", False)
    rich_pdf(case_dir / w.relpath, w.marker, [f"Behavioral health\nPsychotherapy\nnotes of session 4\n{WHO}\n"
                                              f"{w.marker}\n{FILLER}"])
    withheld.append(w)

    # 12. privileged/ nested inside a hint folder, with a capitalised name.
    w = Withheld("nested", _marker("nested"), "medical-records/Privileged/zqx-nested-review.pdf", True)
    rich_pdf(case_dir / w.relpath, w.marker, [f"UTILIZATION REVIEW\nDate: 09/12/2026\n{WHO}\n{w.marker}\n{FILLER}"])
    withheld.append(w)

    # 13. privileged by override AND given a title by override: the title must not reach the member.
    w = Withheld("titled", _marker("titled"), "correspondence/zqx-titled-email.pdf", True)
    rich_pdf(case_dir / w.relpath, w.marker, [f"Email\nDate: 09/20/2026\n{WHO}\n{w.marker}\n{FILLER}"])
    overrides[w.relpath] = {"privileged": "legal advice", "title": f"Email to counsel {w.marker}"}
    withheld.append(w)

    # 14. excluded by a person (e.g. another patient's record): in no output at all.
    w = Withheld("excluded", _marker("excluded"), "medical-records/zqx-excluded-otherpatient.pdf", False,
                 excluded=True)
    rich_pdf(case_dir / w.relpath, w.marker, [f"LAB RESULTS\nDate: 09/22/2026\n{WHO}\n{w.marker}\n{FILLER}"])
    overrides[w.relpath] = {"exclude": "not this member's record", "title": f"Labs {w.marker}"}
    withheld.append(w)

    # 15. a privileged file that cannot be used (corrupt): refused, and its revealing name goes nowhere.
    w = Withheld("refused", _marker("refused"), f"privileged/Settlement strategy {_marker('refused')}.pdf", True,
                 excluded=True)
    (case_dir / w.relpath).write_bytes(b"%PDF-1.4\n" + f"({w.marker}) broken".encode() + b"\n%%EOF\n")
    withheld.append(w)

    # 16. a psychiatric record whose last page carries the provider's stamp (H&S 123115(b)), no title,
    #     no rule phrase: the instruction itself withholds it.
    w = Withheld("harmstamp", _marker("harmstamp"), "medical-records/zqx-harmstamp-psych.pdf", False)
    rich_pdf(case_dir / w.relpath, w.marker, [f"PSYCHIATRIC EVALUATION\nDate: 09/05/2026\n{WHO}\n{w.marker}\n{FILLER}",
                                              f"Mental status exam\n{WHO}\n{FILLER}\nDO NOT RELEASE TO PATIENT"])
    withheld.append(w)

    write_overrides(case_dir, overrides)
    return case_dir, withheld, overrides


def write_overrides(case_dir: Path, overrides: dict[str, dict[str, str]]) -> None:
    lines = []
    for relpath, values in overrides.items():
        lines.append(f"[{json.dumps(relpath)}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines.append("")
    (case_dir / "overrides.toml").write_text("\n".join(lines))


def add_supplement(case_dir: Path, overrides: dict) -> list[Withheld]:
    """Files for submission 02: a new record and a privileged memo (with an image page)."""
    make_pdf(case_dir / "medical-records" / "pt note.pdf",
             [f"PHYSICAL THERAPY NOTE\nVisit date: 11/28/2026\n{WHO}\nRange of motion limited."])
    w = Withheld("supplement", _marker("supplement"), "privileged/zqx-supplement-memo.pdf", True)
    rich_pdf(case_dir / w.relpath, w.marker,
             [f"Supplemental legal memorandum {w.marker}\n{WHO}\n{FILLER}"], image_seed=404)
    overrides = dict(overrides)
    overrides[w.relpath] = {"category": "plan_statements"}
    write_overrides(case_dir, overrides)
    return [w]


# ------------------------------------------------------------------------------------------------
# Detectors: everything a file says, through every channel
# ------------------------------------------------------------------------------------------------

def _pdf_strings(obj, out: list[str], seen: set[int]) -> None:
    """Every string inside a PDF object tree (metadata, outline, fields, annotations, ...)."""
    from pypdf.generic import (ArrayObject, ByteStringObject, DictionaryObject, IndirectObject, StreamObject,
                               TextStringObject)

    if isinstance(obj, IndirectObject):
        key = (obj.idnum, obj.generation)
        if key in seen:
            return
        seen.add(key)
        try:
            obj = obj.get_object()
        except Exception:
            return
    if isinstance(obj, (TextStringObject, str)):
        out.append(str(obj))
    elif isinstance(obj, ByteStringObject):
        out.append(bytes(obj).decode("latin-1"))
        out.append(bytes(obj).decode("utf-16-be", errors="ignore"))
    elif isinstance(obj, DictionaryObject):  # also StreamObject
        for key, value in obj.items():
            if key == "/Parent":
                continue
            _pdf_strings(value, out, seen)
        if isinstance(obj, StreamObject):
            try:
                out.append(obj.get_data().decode("latin-1"))
            except Exception:
                pass
    elif isinstance(obj, ArrayObject):
        for value in obj:
            _pdf_strings(value, out, seen)


def _outline_titles(items, out: list[str]) -> None:
    for item in items:
        if isinstance(item, list):
            _outline_titles(item, out)
        else:
            out.append(str(item.get("/Title", "")))


def qpdf_expanded(path: Path) -> bytes:
    """The PDF with every stream decompressed and no object streams (qpdf --qdf)."""
    result = subprocess.run(["qpdf", "--qdf", "--object-streams=disable", "--stream-data=uncompress",
                             "--decode-level=all", "--preserve-unreferenced", str(path), "-"],
                            capture_output=True, timeout=120)
    assert result.returncode in (0, 3), f"qpdf could not read {path.name}: {result.stderr[:300]!r}"
    return result.stdout


def _all_object_strings(reader: PdfReader) -> list[str]:
    """Every string and decoded stream of every object in the file's cross-reference tables, used
    by a page or not (an orphan object is still in the bytes a mailroom prints from)."""
    strings: list[str] = []
    seen: set = set()
    for generation, table in reader.xref.items():
        for idnum in table:
            try:
                obj = reader.get_object(idnum)
            except Exception:
                continue
            if obj is not None and getattr(obj, "indirect_reference", None) is not None:
                _pdf_strings(obj.indirect_reference, strings, seen)
            elif obj is not None:
                _pdf_strings(obj, strings, seen)
    for idnum in getattr(reader, "xref_objStm", {}) or {}:
        try:
            _pdf_strings(reader.get_object(idnum), strings, seen)
        except Exception:
            continue
    return strings


def pdf_haystack(path: Path) -> str:
    """Everything a PDF says: raw bytes, decompressed streams, text (pypdf and pdftotext), metadata,
    outline, form fields, annotations and every string in every object."""
    parts = [path.read_bytes().decode("latin-1")]
    expanded = qpdf_expanded(path)
    parts.append(expanded.decode("latin-1"))
    parts.append(expanded.decode("utf-16-be", errors="ignore"))
    reader = PdfReader(str(path))
    parts.append(json.dumps({str(k): str(v) for k, v in (reader.metadata or {}).items()}))
    if reader.xmp_metadata is not None:
        parts.append(reader.xmp_metadata.stream.get_data().decode("utf-8", errors="replace"))
    titles: list[str] = []
    _outline_titles(reader.outline, titles)
    parts += titles
    for name, value in (reader.get_fields() or {}).items():
        parts += [str(name), str(value.get("/V", "")), str(value.get("/TU", ""))]
    strings: list[str] = []
    seen: set = set()
    _pdf_strings(reader.trailer, strings, seen)
    for number in range(len(reader.pages)):
        page = reader.pages[number]
        _pdf_strings(page.indirect_reference, strings, seen)
        try:
            parts.append(page.extract_text() or "")
        except Exception as exc:  # a detector that silently reads nothing would hide a leak
            raise AssertionError(f"pypdf cannot read the text of {path.name} page {number + 1}: {exc}") from exc
        for annot in page.get("/Annots", []) or []:
            annot = annot.get_object()
            parts += [str(annot.get("/Contents", "")), str(annot.get("/T", ""))]
    parts += strings
    parts += _all_object_strings(reader)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, timeout=120)
    assert text.returncode == 0, f"pdftotext could not read {path.name}"
    parts.append(text.stdout.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def docx_haystack(path: Path) -> str:
    parts = [path.read_bytes().decode("latin-1")]
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            data = archive.read(info)
            parts.append(info.filename)
            parts.append(data.decode("utf-8", errors="replace"))
    import docx

    document = docx.Document(str(path))
    props = document.core_properties
    parts += [str(props.title), str(props.subject), str(props.keywords), str(props.author),
              str(props.comments), str(props.category)]
    parts += [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts += [cell.text for cell in row.cells]
    return "\n".join(parts)


_HAYSTACKS: dict[tuple[str, str], str] = {}


def haystack(path: Path) -> str:
    """Everything a recipient file says, in upper case with whitespace squeezed. Read once per
    content: the same bytes (a printed copy of a mailing, the next needle) are not read again."""
    key = (path.suffix.lower(), hashlib.sha256(path.read_bytes()).hexdigest())
    if key not in _HAYSTACKS:
        if len(_HAYSTACKS) >= 64:
            _HAYSTACKS.clear()
        _HAYSTACKS[key] = _haystack(path)
    return _HAYSTACKS[key]


def _haystack(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = pdf_haystack(path)
    elif suffix == ".docx":
        text = docx_haystack(path)
    else:
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace") + "\n" + data.decode("latin-1")
    return squeeze(text)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).upper()


def _stream_fingerprints(obj, out: set[str], seen: set, *, min_bytes: int) -> None:
    """Hashes (raw and decoded) of every image and form XObject reachable from a resources dict."""
    try:
        xobjects = obj.get_object().get("/XObject") if obj is not None else None
        xobjects = xobjects.get_object() if xobjects is not None else None
    except Exception:
        return
    for name in xobjects or {}:
        if name == "/ImrStamp":
            continue  # the service's own stamp (Bates label, privileged mark): on every page
        ref = xobjects.raw_get(name)
        stream = xobjects[name].get_object()
        key = (ref.idnum, ref.generation) if hasattr(ref, "idnum") else id(stream)
        if key in seen:
            continue
        seen.add(key)
        _add_stream(stream, out, min_bytes=min_bytes)
        if stream.get("/Subtype") == "/Form":
            _stream_fingerprints(stream.get("/Resources"), out, seen, min_bytes=min_bytes)


def _add_stream(stream, out: set[str], *, min_bytes: int) -> None:
    raw = getattr(stream, "_data", b"") or b""
    try:
        decoded = stream.get_data()
    except Exception:
        decoded = b""
    kind = "image" if stream.get("/Subtype") == "/Image" else "content"
    for data in (raw, decoded.strip() if kind == "content" else decoded):
        if len(data) >= min_bytes:
            out.add(f"{kind}:" + hashlib.sha256(data).hexdigest())


def page_fingerprints(path: Path, pages: list[int] | None = None, *, min_bytes: int = 200) -> set[str]:
    """Content fingerprints of the given 1-based pages (all when None): their own content stream,
    every image and form XObject they draw (nested too), raw and decoded."""
    reader = PdfReader(str(path))
    out: set[str] = set()
    numbers = pages if pages is not None else list(range(1, len(reader.pages) + 1))
    for number in numbers:
        page = reader.pages[number - 1]
        _stream_fingerprints(page.get("/Resources"), out, set(), min_bytes=min_bytes)
        try:
            content = page.get_contents()
            data = content.get_data().strip() if content is not None else b""
        except Exception:
            data = b""
        if len(data) >= min_bytes:
            out.add("content:" + hashlib.sha256(data).hexdigest())
    return out


def file_fingerprints(path: Path, *, min_bytes: int = 200) -> set[str]:
    """Fingerprints of EVERY stream object in a PDF (drawn or orphaned), raw and decoded."""
    reader = PdfReader(str(path))
    out: set[str] = set()
    out |= page_fingerprints(path, min_bytes=min_bytes)
    for idnum in range(1, reader.trailer["/Size"]):
        try:
            obj = reader.get_object(idnum)
        except Exception:
            continue
        if obj is not None and hasattr(obj, "get_data"):
            _add_stream(obj, out, min_bytes=min_bytes)
            raw = getattr(obj, "_data", b"") or b""
            if len(raw) >= min_bytes and obj.get("/Subtype") != "/Image":
                out.add("image:" + hashlib.sha256(raw).hexdigest())  # an image re-tagged as anything
    # Images compared by their decoded pixels too, whatever their encoding in this file.
    for page in reader.pages:
        try:
            for image in page.images:
                out.add("pixels:" + hashlib.sha256(image.image.convert("RGB").tobytes()).hexdigest())
        except Exception:
            continue
    return out


def pixel_fingerprints(path: Path, pages: list[int]) -> set[str]:
    reader = PdfReader(str(path))
    out = set()
    for number in pages:
        for image in reader.pages[number - 1].images:
            out.add("pixels:" + hashlib.sha256(image.image.convert("RGB").tobytes()).hexdigest())
    return out


# ------------------------------------------------------------------------------------------------
# The scenario: one case, two submissions, copies, notice, drafts; run once per module
# ------------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    config: object
    case_dir: Path
    withheld: list[Withheld]
    supplement: list[Withheld]
    submissions: list[Path]
    drafts: list[Path]  # snapshots of outbox/<case>/draft/ before each seal
    copies: list[Path]
    notice: list[Path]
    log_text: str
    source_fingerprints: dict[str, set[str]] = field(default_factory=dict)  # relpath -> fingerprints

    @property
    def all_withheld(self) -> list[Withheld]:
        return self.withheld + self.supplement

    def recipient_outputs(self) -> list[Path]:
        """Every file a member or provider may receive, sealed or draft."""
        outbox = self.config.paths.outbox
        files = [s / name for s in self.submissions for name in RECIPIENT_FILES]
        files += [d / name for d in self.drafts for name in RECIPIENT_FILES]
        files += sorted((outbox / "_print").iterdir())
        files += sorted((outbox / CASE_ID / "copies").iterdir())
        files += sorted(p for p in (outbox / CASE_ID / "notice").rglob("*") if p.is_file())
        return files


def _source_fingerprints(case_dir: Path, relpath: str) -> set[str]:
    path = case_dir / relpath
    if path.suffix.lower() != ".pdf":
        return set()
    try:
        return page_fingerprints(path)
    except Exception:  # a corrupt file (refused by the service) has no pages to compare
        return set()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("leaks")
    config = make_config(root)
    buffer = io.StringIO()
    service_log.set_stream(buffer)
    try:
        case_dir, withheld, overrides = build_main_case(config.paths.inbox)
        fingerprints = {w.relpath: _source_fingerprints(case_dir, w.relpath) for w in withheld}
        fingerprints["release"] = _source_fingerprints(case_dir, "medical-records/mri report zqxreleasemark.pdf")
        snapshots = root / "draft-snapshots"
        drafts = []

        result = build_case(case_dir, config, now=NOW)
        assert result.blocking == (), result.blocking
        drafts.append(_snapshot(result.draft_dir, snapshots / "draft-1"))
        first = seal_case(config, CASE_ID, now=NOW, actor="leak-test")

        supplement = add_supplement(case_dir, overrides)
        fingerprints.update({w.relpath: _source_fingerprints(case_dir, w.relpath) for w in supplement})
        result = build_case(case_dir, config, now=LATER)
        # overrides.toml still names the sealed submission's files: expected, and not a gate item.
        assert result.kind == "supplement", result.kind
        assert all("not in the case folder" in item for item in result.blocking), result.blocking
        drafts.append(_snapshot(result.draft_dir, snapshots / "draft-2"))
        second = seal_case(config, CASE_ID, now=LATER, actor="leak-test")

        copies = [write_copies(config, CASE_ID, "member", now=LATEST),
                  write_copies(config, CASE_ID, "provider", now=LATEST)]
        notice_pdf = write_notice(config, CASE_ID, now=LATEST)
        notice = sorted(p for p in notice_pdf.parent.iterdir() if p.is_file())
    finally:
        service_log.set_stream(None)
    return Scenario(config=config, case_dir=case_dir, withheld=withheld, supplement=supplement,
                    submissions=[first, second], drafts=drafts, copies=copies, notice=notice,
                    log_text=buffer.getvalue(), source_fingerprints=fingerprints)


def _snapshot(draft_dir: Path | None, target: Path) -> Path:
    assert draft_dir is not None and draft_dir.is_dir(), "the build wrote no draft"
    shutil.copytree(draft_dir, target)
    return target


def _manifest(submission: Path) -> dict:
    return json.loads((submission / "manifest.json").read_text())


def _doc(manifest: dict, relpath: str) -> dict:
    found = [d for d in manifest["documents"] if d["source"] == relpath]
    assert len(found) == 1, f"{relpath} is not in the manifest once: {[d['source'] for d in manifest['documents']]}"
    return found[0]


def _needles(w: Withheld) -> list[str]:
    """What must never be found for a withheld document: its marker, and its file name."""
    stem = Path(w.relpath).stem
    return [w.marker, stem.upper(), Path(w.relpath).name.upper()]


# ------------------------------------------------------------------------------------------------
# The detectors themselves: each one finds a marker hidden in its channel alone
# ------------------------------------------------------------------------------------------------

def _only_metadata(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.setSubject("Subject ZQXHIDDENMARK")
    c.drawString(72, 700, "nothing to see")
    c.showPage()
    c.save()


def _only_outline(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.drawString(72, 700, "nothing to see")
    c.bookmarkPage("p0")
    c.addOutlineEntry("ZQXHIDDENMARK", "p0", level=0)
    c.showPage()
    c.save()


def _only_field(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.acroForm.textfield(name="f1", value="ZQXHIDDENMARK", x=72, y=600, width=200, height=20)
    c.showPage()
    c.save()


def _only_annotation(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.textAnnotation("ZQXHIDDENMARK", Rect=(100, 100, 200, 200))
    c.showPage()
    c.save()


def _only_compressed_text(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1, pageCompression=1)
    c.drawString(72, 700, "ZQXHIDDENMARK")
    c.showPage()
    c.save()


def _only_ttf_text(path: Path) -> None:
    """Text drawn with a subset TrueType font: its glyph codes are not the letters."""
    from packet.mailings.pages import fonts

    c = canvas.Canvas(str(path), pagesize=letter, invariant=1, pageCompression=1)
    c.setFont(fonts().regular, 12)
    c.drawString(72, 700, "ZQXHIDDENMARK")
    c.showPage()
    c.save()


def _only_orphan_object(path: Path) -> None:
    """A page that draws nothing, and the marker (compressed) in an object no page uses."""
    import zlib

    data = zlib.compress(b"BT /F1 12 Tf 72 700 Td (ZQXHIDDENMARK) Tj ET")
    path.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                              b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>", flate_stream(data)],
                             version=b"1.4"))


@pytest.mark.parametrize("make", [_only_metadata, _only_outline, _only_field, _only_annotation,
                                  _only_compressed_text, _only_ttf_text, _only_orphan_object])
def test_each_detector_finds_a_marker_hidden_in_its_channel_alone(tmp_path, make):
    path = tmp_path / "hidden.pdf"
    make(path)
    if make in (_only_compressed_text, _only_ttf_text, _only_orphan_object):
        # Not in the raw bytes: only decompression or text extraction can find it.
        assert "ZQXHIDDENMARK" not in path.read_bytes().decode("latin-1")
    assert "ZQXHIDDENMARK" in haystack(path)
    clean = tmp_path / "clean.pdf"
    make_pdf(clean, ["nothing to see"])
    assert "ZQXHIDDENMARK" not in haystack(clean)


def test_docx_detector_reads_core_properties_and_xml(tmp_path):
    import docx

    document = docx.Document()
    document.core_properties.keywords = "ZQXHIDDENMARK"
    document.add_paragraph("nothing to see")
    document.save(str(tmp_path / "a.docx"))
    assert "ZQXHIDDENMARK" in haystack(tmp_path / "a.docx")


def test_image_fingerprints_survive_copying_a_page_into_another_pdf(tmp_path):
    """A scanned page copied into another file is still recognised (page copy keeps the image)."""
    source = rich_pdf(tmp_path / "scan.pdf", "ZQXHIDDENMARK", ["text page"], image_seed=9)
    target = tmp_path / "copied.pdf"
    writer = PdfWriter()
    writer.add_page(PdfReader(str(make_pdf(tmp_path / "other.pdf", ["other"]))).pages[0])
    writer.add_page(PdfReader(str(source)).pages[1])
    with open(target, "wb") as handle:
        writer.write(handle)
    assert page_fingerprints(source, [2]) & file_fingerprints(target)
    assert not page_fingerprints(source, [2]) & file_fingerprints(make_pdf(tmp_path / "x.pdf", ["x"]))


# ------------------------------------------------------------------------------------------------
# The flags: every route ends up privileged / withheld (else everything below would be moot)
# ------------------------------------------------------------------------------------------------

def test_every_route_is_flagged_and_the_org_packet_holds_it_marked(scenario):
    for submission, docs in ((scenario.submissions[0], scenario.withheld),
                             (scenario.submissions[1], scenario.supplement)):
        manifest = _manifest(submission)
        org = squeeze(pdf_haystack(submission / "imr-org-packet.pdf"))
        for w in docs:
            if w.route == "refused":
                assert w.relpath in {r["source"] for r in manifest["rejected"]}, manifest["rejected"]
                assert w.marker not in org
                continue
            doc = _doc(manifest, w.relpath)
            if w.excluded:
                assert doc["excluded"] and doc["packet_pages"] == [], (w.route, doc)
                assert w.marker not in org, w.route
                continue
            assert doc["withheld_from_member"] is True, (w.route, doc)
            assert doc["privileged"] is w.expect_privileged, (w.route, doc)
            if w.has_text:
                # Positive control: the marker IS in the IMR organization's packet.
                assert w.marker in org, w.route
    releasable = _doc(_manifest(scenario.submissions[0]), "medical-records/mri report zqxreleasemark.pdf")
    assert releasable["withheld_from_member"] is False and releasable["privileged"] is False


# ------------------------------------------------------------------------------------------------
# No marker, no file name, in any channel of any member or provider output
# ------------------------------------------------------------------------------------------------

def test_recipient_outputs_are_all_there(scenario):
    outputs = scenario.recipient_outputs()
    names = [p.name for p in outputs]
    assert sum(n == "member-packet.pdf" for n in names) == 4  # 2 submissions + 2 drafts
    assert len(scenario.copies) == 2 and all(p.is_file() for p in scenario.copies)
    prints = list((scenario.config.paths.outbox / "_print").iterdir())
    assert len(prints) >= 6  # member + provider of two submissions, two copy sets
    assert all(p.is_file() for p in outputs)


def test_no_marker_or_file_name_in_any_recipient_output(scenario):
    leaks = []
    for path in scenario.recipient_outputs():
        text = haystack(path)
        for w in scenario.all_withheld:
            for needle in _needles(w):
                if needle in text:
                    leaks.append(f"{path.relative_to(scenario.config.paths.outbox.parent)}: {w.route}: {needle}")
    assert not leaks, "LEAK:\n" + "\n".join(leaks)


def test_positive_control_releasable_document_reaches_the_member(scenario):
    """The same detectors DO find a releasable document's marker, title and image in the copies."""
    member_copies = haystack(scenario.copies[0])
    assert "ZQXRELEASEMARK" in member_copies
    csv_text = (scenario.submissions[0] / "annotated-list.csv").read_text()
    assert "ZQXRELEASEMARK" in csv_text  # its metadata title
    release_images = scenario.source_fingerprints["release"]
    assert release_images, "the releasable document's image was not fingerprinted"
    org = scenario.submissions[0] / "imr-org-packet.pdf"
    doc = _doc(_manifest(scenario.submissions[0]), "medical-records/mri report zqxreleasemark.pdf")
    assert page_fingerprints(org, doc["packet_pages"]) & file_fingerprints(scenario.copies[0])
    assert pixel_fingerprints(org, doc["packet_pages"]) & file_fingerprints(scenario.copies[0])


def test_no_withheld_page_content_or_image_in_any_recipient_pdf(scenario):
    """By content: the image XObjects, form XObjects and content streams of every withheld page
    (in the org packet and in the original source PDF) occur in no member or provider PDF."""
    withheld_prints: dict[str, set[str]] = {}
    for submission in scenario.submissions:
        org = submission / "imr-org-packet.pdf"
        manifest = _manifest(submission)
        for doc in manifest["documents"]:
            if doc["privileged"] or doc["withheld_from_member"]:
                prints = page_fingerprints(org, doc["packet_pages"]) | pixel_fingerprints(org, doc["packet_pages"])
                prints |= scenario.source_fingerprints.get(doc["source"], set())
                withheld_prints[f"{submission.name}:{doc['source']}"] = prints
    # The scanned memo and the image pages really were fingerprinted.
    scan = next(w for w in scenario.withheld if w.route == "scan")
    assert any(p.startswith("image:") for p in withheld_prints[f"submission-01:{scan.relpath}"])
    assert any(p.startswith("pixels:") for p in withheld_prints[f"submission-01:{scan.relpath}"])
    folder = next(w for w in scenario.withheld if w.route == "folder")
    assert any(p.startswith("image:") for p in withheld_prints[f"submission-01:{folder.relpath}"])
    leaks = []
    for path in scenario.recipient_outputs():
        if path.suffix.lower() != ".pdf":
            continue
        found = file_fingerprints(path)
        for name, prints in withheld_prints.items():
            if prints & found:
                leaks.append(f"{path.relative_to(scenario.config.paths.outbox.parent)} holds content of {name}")
    assert not leaks, "LEAK:\n" + "\n".join(leaks)


def test_copy_sets_have_a_slip_sheet_for_every_withheld_document(scenario):
    for path in scenario.copies:
        reader = PdfReader(str(path))
        text = squeeze("\n".join(page.extract_text() or "" for page in reader.pages))
        for w in scenario.all_withheld:
            assert w.marker not in text
        assert "NOT FOR RELEASE TO ENROLLEE" not in text  # no privileged page, by its mark
    # Every withheld document's Bates range appears on a slip sheet of the member's copy set.
    text = squeeze(pdf_haystack(scenario.copies[0]))
    for submission in scenario.submissions:
        for doc in _manifest(submission)["documents"]:
            if doc["withheld_from_member"]:
                assert doc["bates_first"].upper() in text


def _neutral_roles() -> set[str]:
    import tomllib
    labels = tomllib.loads((Path(__file__).resolve().parents[2] / "templates/en/labels.toml").read_text())
    neutral = labels["list"]["neutral"]
    return {value for table in neutral.values() if isinstance(table, dict) for value in table.values()}


def test_annotated_list_lists_withheld_documents_neutrally(scenario):
    import csv

    for submission in scenario.submissions:
        rows = list(csv.DictReader(io.StringIO((submission / "annotated-list.csv").read_text())))
        listed = [d for d in _manifest(submission)["documents"] if not d.get("excluded")]
        assert len(rows) == len(listed)
        for row, doc in zip(rows, listed):
            assert row["bates_first"] == doc["bates_first"]
            if doc["withheld_from_member"]:
                assert row["copy_available"] == "false"
                # The author column gives a role from the neutral wording (labels.toml [list.neutral]),
                # never the document's own author.
                assert not doc.get("author") or doc["author"] not in row["author"], row
                assert row["author"] in ("", *_neutral_roles()), row
                assert doc["title"] and doc["title"] not in row["title"], row


# ------------------------------------------------------------------------------------------------
# verify: passes on clean submissions, fails when a withheld page is slipped into a mailing
# ------------------------------------------------------------------------------------------------

def test_verify_passes_on_every_clean_submission(scenario):
    for submission in scenario.submissions:
        report = verify_submission(submission, scenario.config)
        assert report.ok, report.failures


def test_verify_passes_on_the_drafts(scenario):
    for draft in scenario.drafts:
        report = verify_submission(draft, scenario.config, audit=False)
        assert report.ok, report.failures


def _rehash(tampered: Path, output: str) -> None:
    manifest = json.loads((tampered / "manifest.json").read_text())
    for entry in manifest["outputs"]:
        if entry["file"] == output:
            entry["sha256"] = hashlib.sha256((tampered / output).read_bytes()).hexdigest()
            if output.endswith(".pdf"):
                entry["pages"] = len(PdfReader(str(tampered / output)).pages)
    (tampered / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize("output", ["annotated-list.csv", "notice-letter.docx"])
def test_verify_fails_when_withheld_text_is_pasted_into_a_text_output(scenario, tmp_path, output):
    """The text of a psychotherapy note pasted into the CSV list or the editable letter."""
    import docx

    submission = scenario.submissions[0]
    w = next(w for w in scenario.withheld if w.route == "psychotherapy")
    page = _doc(_manifest(submission), w.relpath)["packet_pages"][0]
    text = PdfReader(str(submission / "imr-org-packet.pdf")).pages[page - 1].extract_text()
    tampered = tmp_path / submission.name
    shutil.copytree(submission, tampered)
    if output.endswith(".csv"):
        with open(tampered / output, "a", encoding="utf-8") as handle:
            handle.write('99,"' + text.replace('"', "'") + '",,,,,,,,,,\r\n')
    else:
        document = docx.Document(str(tampered / output))
        document.add_paragraph(text)
        document.save(str(tampered / output))
    _rehash(tampered, output)
    report = verify_submission(tampered, scenario.config, audit=False,
                               archive_dir=_archive_dir(scenario, submission))
    assert not report.ok
    assert any(output in f and "withheld" in f for f in report.failures), report.failures


def _inject(submission: Path, output: str, page_source, tmp_path: Path) -> Path:
    """A copy of the submission whose `output` got one extra page, its manifest hashes updated so
    that only a content check can tell."""
    tampered = tmp_path / submission.parent.name / submission.name
    shutil.copytree(submission, tampered)
    writer = PdfWriter(clone_from=str(tampered / output))
    writer.add_page(page_source)
    with open(tampered / output, "wb") as handle:
        writer.write(handle)
    _rehash(tampered, output)
    return tampered


def _archive_dir(scenario: Scenario, submission: Path) -> Path:
    return scenario.config.paths.archive / CASE_ID / submission.name


@pytest.mark.parametrize("output", ["member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf"])
@pytest.mark.parametrize("route", ["attorney", "scan", "folder-image", "docx"])
def test_verify_fails_when_a_withheld_org_packet_page_is_injected(scenario, tmp_path, output, route):
    submission = scenario.submissions[0]
    manifest = _manifest(submission)
    relpath = next(w.relpath for w in scenario.withheld if w.route == route.split("-")[0])
    pages = _doc(manifest, relpath)["packet_pages"]
    page_number = pages[-1] if route == "folder-image" else pages[0]
    page = PdfReader(str(submission / "imr-org-packet.pdf")).pages[page_number - 1]
    tampered = _inject(submission, output, page, tmp_path)
    report = verify_submission(tampered, scenario.config, audit=False,
                               archive_dir=_archive_dir(scenario, submission))
    assert not report.ok
    assert any(output in f and "withheld" in f for f in report.failures), report.failures
    # Only the content check fails: the hashes and page counts were made to agree.
    assert all("withheld" in f for f in report.failures), report.failures


def test_verify_fails_when_the_original_withheld_page_is_injected(scenario, tmp_path):
    """The withheld page as the clerk dropped it (no Bates stamp, no privileged mark)."""
    submission = scenario.submissions[0]
    w = next(w for w in scenario.withheld if w.route == "psychotherapy")
    archived = _archive_dir(scenario, submission) / w.relpath
    source = archived if archived.is_file() else scenario.case_dir / w.relpath
    assert source.is_file(), "the original is neither archived nor in the inbox"
    page = PdfReader(str(source)).pages[0]
    tampered = _inject(submission, "member-packet.pdf", page, tmp_path)
    report = verify_submission(tampered, scenario.config, audit=False,
                               archive_dir=_archive_dir(scenario, submission))
    assert not report.ok and any("withheld" in f for f in report.failures), report.failures


def test_verify_fails_when_a_scanned_withheld_image_is_redrawn_on_a_new_page(scenario, tmp_path):
    """The scanned memo's picture (same image bytes) drawn on a fresh page of the member packet."""
    submission = scenario.submissions[0]
    w = next(w for w in scenario.withheld if w.route == "scan")
    page_number = _doc(_manifest(submission), w.relpath)["packet_pages"][0]
    org_page = PdfReader(str(submission / "imr-org-packet.pdf")).pages[page_number - 1]
    image_pages = [image for image in org_page.images]
    assert image_pages, "the scanned memo's org packet page has no image"
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=letter, invariant=1)
    c.drawImage(ImageReader(image_pages[0].image), 36, 36, width=540, height=700)
    c.showPage()
    c.save()
    # Re-encoded by reportlab: the raw bytes differ, the picture is the same.
    page = PdfReader(io.BytesIO(buffer.getvalue())).pages[0]
    tampered = _inject(submission, "member-packet.pdf", page, tmp_path)
    injected = tampered / "member-packet.pdf"
    assert pixel_fingerprints(injected, [len(PdfReader(str(injected)).pages)]) \
        & pixel_fingerprints(submission / "imr-org-packet.pdf", [page_number])
    report = verify_submission(tampered, scenario.config, audit=False,
                               archive_dir=_archive_dir(scenario, submission))
    assert not report.ok and any("withheld" in f for f in report.failures), report.failures


# ------------------------------------------------------------------------------------------------
# The service log
# ------------------------------------------------------------------------------------------------

def _log_needles(scenario: Scenario) -> list[str]:
    needles = [MEMBER_NAME, MEMBER_ID, MEMBER_DOB.isoformat(), f"{MEMBER_DOB:%m/%d/%Y}", "Testmember",
               "ZQXRELEASEMARK", "grievance resolution", "mri report", "pt note"]
    for w in scenario.all_withheld:
        needles += [w.marker, Path(w.relpath).stem, Path(w.relpath).name]
    return needles


def test_service_log_has_no_marker_file_name_or_member_data(scenario):
    lines = [line for line in scenario.log_text.splitlines() if line.strip()]
    assert len(lines) >= 5, "the scenario logged (almost) nothing: is the log captured?"
    for line in lines:
        json.loads(line)  # one JSON object per line
    text = scenario.log_text.lower()
    found = [n for n in _log_needles(scenario) if n.lower() in text]
    assert not found, f"the service log holds {found}"


# ------------------------------------------------------------------------------------------------
# The command line, end to end (draft, seal, copies, notice, verify), on a fresh case
# ------------------------------------------------------------------------------------------------

def test_cli_flow_leaks_nothing(tmp_path, monkeypatch, capsys):
    from packet.cli import main

    (tmp_path / "imr.toml").write_text(
        "[paths]\n" + "".join(f'{k} = "{tmp_path / k}"\n' for k in ("inbox", "outbox", "archive", "state"))
        + "[watch]\nsettle_seconds = 0.2\ndebounce_seconds = 0.2\n")
    monkeypatch.chdir(tmp_path)
    for folder in ("inbox", "outbox", "archive", "state"):  # an installation (only watch/new-case/demo create it)
        (tmp_path / folder).mkdir(exist_ok=True)
    inbox = tmp_path / "inbox"
    case_id = "IMR-2026-000888"
    case_dir = write_case(inbox, case_id)
    grievance_response(case_dir)
    marker = "ZQXCLIMARK"
    relpath = f"privileged/Counsel memo re litigation risk {marker}.pdf"
    rich_pdf(case_dir / relpath, marker, [f"Memo from counsel\n{WHO}\n{FILLER}\n{marker}"], image_seed=505)
    write_overrides(case_dir, {relpath: {"category": "plan_statements"}})
    psych = "medical-records/zqxclipsych.pdf"
    rich_pdf(case_dir / psych, "ZQXCLIPSYCH", [f"PSYCHOTHERAPY NOTES\n{WHO}\nZQXCLIPSYCH\n{FILLER}"])

    config_arg = ["--config", str(tmp_path / "imr.toml")]
    assert main(["build", str(case_dir), *config_arg]) == 0
    draft = tmp_path / "outbox" / case_id / "draft"
    draft_copy = shutil.copytree(draft, tmp_path / "draft-copy")
    (case_dir / "READY").touch()  # the service seals it (watch --once), as a clerk would ask
    first = capsys.readouterr()
    before = first.out + first.err
    assert main(["watch", "--once", *config_arg]) == 0
    service = capsys.readouterr()
    service_out = service.err
    # The service's log (on standard error, issue 14) is JSON objects only, nothing a person printed.
    assert service_out.strip() and all(json.loads(line) for line in service_out.splitlines() if line.strip())
    submission = tmp_path / "outbox" / case_id / "submission-01"
    assert main(["copies", case_id, "--for", "member", *config_arg]) == 0
    assert main(["copies", case_id, "--for", "provider", *config_arg]) == 0
    assert main(["notice", case_id, *config_arg]) == 0
    assert main(["verify", str(submission), *config_arg]) == 0
    last = capsys.readouterr()
    out = before + service.out + service_out + last.out + last.err

    manifest = _manifest(submission)
    assert _doc(manifest, relpath)["privileged"] and _doc(manifest, psych)["withheld_from_member"]
    outbox = tmp_path / "outbox"
    files = [submission / n for n in RECIPIENT_FILES] + [draft_copy / n for n in RECIPIENT_FILES]
    files += sorted((outbox / "_print").iterdir()) + sorted((outbox / case_id / "copies").iterdir())
    files += sorted(p for p in (outbox / case_id / "notice").rglob("*") if p.is_file())
    assert len(files) >= 16
    needles = [marker, "ZQXCLIPSYCH", "COUNSEL MEMO RE LITIGATION RISK"]
    leaks = [f"{p.relative_to(tmp_path)}: {n}" for p in files for n in needles if n in haystack(p)]
    assert not leaks, "LEAK:\n" + "\n".join(leaks)
    org = submission / "imr-org-packet.pdf"
    withheld_prints = set()
    for doc in manifest["documents"]:
        if doc["withheld_from_member"]:
            pages = doc["packet_pages"]
            withheld_prints |= page_fingerprints(org, pages) | pixel_fingerprints(org, pages)
    assert any(p.startswith("image:") for p in withheld_prints)
    for p in files:
        if p.suffix == ".pdf":
            assert not withheld_prints & file_fingerprints(p), f"{p.name} holds a withheld page's content"

    # The service log lines (JSON objects on standard error) name no file, marker or member.
    log_lines = [line for line in out.splitlines() if line.startswith("{")]
    assert log_lines
    log_text = "\n".join(log_lines).lower()
    for needle in (marker, "zqxclipsych", "counsel memo", MEMBER_NAME, MEMBER_ID, MEMBER_DOB.isoformat()):
        assert needle.lower() not in log_text, needle


# ------------------------------------------------------------------------------------------------
# Duplicates: the same bytes dropped both as privileged and as an ordinary record
# ------------------------------------------------------------------------------------------------

def _duplicate_case(inbox: Path, case_id: str, *, by_override: bool) -> tuple[Path, str, list[str]]:
    case_dir = write_case(inbox, case_id)
    grievance_response(case_dir)
    marker = "ZQXDUPLICATEMARK"
    memo = case_dir / "privileged" / "zqx-dup-memo.pdf"
    rich_pdf(memo, marker, [f"Internal memorandum\nDate: 09/09/2026\n{WHO}\n{marker}\n{FILLER}"], image_seed=606)
    # The clerk also filed the very same file among the medical records ("aaa" sorts first).
    (case_dir / "medical-records").mkdir(exist_ok=True)
    shutil.copyfile(memo, case_dir / "medical-records" / "aaa copy.pdf")
    overrides = {"privileged/zqx-dup-memo.pdf": {"category": "plan_statements"}}
    if by_override:
        # Not by folder: a person marked one copy privileged in overrides.toml.
        (case_dir / "plan-statements").mkdir()
        shutil.move(memo, case_dir / "plan-statements" / "zqx-dup-memo.pdf")
        (case_dir / "privileged").rmdir()
        overrides = {"plan-statements/zqx-dup-memo.pdf": {"privileged": "legal advice"}}
    write_overrides(case_dir, overrides)
    return case_dir, marker, ["aaa copy", "zqx-dup-memo"]


@pytest.mark.parametrize("by_override", [False, True], ids=["folder", "override"])
def test_a_privileged_file_filed_twice_stays_privileged(tmp_path, by_override):
    """Identical bytes in privileged/ (or marked privileged by override) and in medical-records/:
    one copy is refused as a duplicate, and the one kept must carry the stricter flags."""
    config = make_config(tmp_path)
    case_dir, marker, _ = _duplicate_case(config.paths.inbox, "IMR-2026-000999", by_override=by_override)
    result = build_case(case_dir, config, now=NOW)
    assert len(result.newly_rejected) == 1 and result.newly_rejected[0].reason == "duplicate"
    kept = [d for d in result.documents if "dup-memo" in d.source or "aaa copy" in d.source]
    assert len(kept) == 1
    assert kept[0].is_privileged and kept[0].is_withheld, (kept[0].source, kept[0].privileged)
    for name in RECIPIENT_FILES:
        assert marker not in haystack(result.draft_dir / name), name


def test_a_sealed_document_flagged_later_is_not_called_a_mere_duplicate(tmp_path):
    """The same bytes went out unflagged in a sealed submission; a clerk now drops a copy into
    privileged/. It cannot be recalled: the refusal must say so (not "nothing to do")."""
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox, "IMR-2026-000998")
    grievance_response(case_dir)
    make_pdf(case_dir / "plan-statements" / "review notes.pdf", [f"Review notes\nDate: 09/09/2026\n{WHO}"])
    build_case(case_dir, config, now=NOW)
    seal_case(config, case_dir.name, override_reason="test", now=NOW)
    (case_dir / "privileged").mkdir()
    shutil.copyfile(config.paths.archive / case_dir.name / "submission-01" / "plan-statements" / "review notes.pdf",
                    case_dir / "privileged" / "review notes.pdf")
    (case_dir / "again").mkdir()
    shutil.copyfile(case_dir / "privileged" / "review notes.pdf", case_dir / "again" / "notes copy.pdf")
    result = build_case(case_dir, config, now=NOW + dt.timedelta(hours=1))
    reasons = {r.source: r.reason for r in result.newly_rejected}
    assert reasons == {"privileged/review notes.pdf": "sealed_without_flag", "again/notes copy.pdf": "duplicate"}
    why = [p.read_text() for p in (case_dir / "_rejected").rglob("*.why.txt") if "review notes" in p.name]
    assert len(why) == 1 and "not marked privileged" in why[0] and "compliance" in why[0]
    assert not result.documents


def test_spanish_member_draft_leaks_nothing(tmp_path):
    """The member's language changes every label of the list: the neutral titles must hold in Spanish."""
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox, "IMR-2026-000555", language="es")
    grievance_response(case_dir)
    rich_pdf(case_dir / "privileged" / "zqx-es-memo.pdf", "ZQXESPRIVMARK",
             [f"Memorando\n{WHO}\nZQXESPRIVMARK\n{FILLER}"])
    rich_pdf(case_dir / "medical-records" / "zqx-es-psych.pdf", "ZQXESPSYCHMARK",
             [f"PSYCHOTHERAPY NOTES\n{WHO}\nZQXESPSYCHMARK\n{FILLER}"])
    write_overrides(case_dir, {"privileged/zqx-es-memo.pdf": {"category": "plan_statements"}})
    result = build_case(case_dir, config, now=NOW)
    manifest = _manifest(result.draft_dir)
    assert all(d["withheld_from_member"] for d in manifest["documents"] if "zqx" in d["source"])
    for name in RECIPIENT_FILES:
        text = haystack(result.draft_dir / name)
        for needle in ("ZQXESPRIVMARK", "ZQXESPSYCHMARK", "ZQX-ES-MEMO", "ZQX-ES-PSYCH"):
            assert needle not in text, (name, needle)


# ------------------------------------------------------------------------------------------------
# Another patient's record
# ------------------------------------------------------------------------------------------------

def _other_patient_case(inbox: Path, case_id: str) -> Path:
    case_dir = write_case(inbox, case_id)
    grievance_response(case_dir)
    make_pdf(case_dir / "medical-records" / "labs.pdf",
             ["LAB RESULTS ZQXOTHERPATIENTMARK\nDate: 09/01/2026\nPatient: Harold B. Otherperson\n"
              "Member ID: M111222333\nDOB: 02/03/1950\nHemoglobin 13.2 g/dL"])
    return case_dir


def test_another_patients_record_blocks_the_seal_and_reaches_no_mailing(tmp_path):
    from packet.errors import GateFailed

    config = make_config(tmp_path)
    case_id = "IMR-2026-000321"
    _other_patient_case(config.paths.inbox, case_id)
    with pytest.raises(GateFailed):
        seal_case(config, case_id, now=NOW)
    assert not (config.paths.outbox / "_print").exists() or not list((config.paths.outbox / "_print").iterdir())
    assert not (config.paths.outbox / case_id / "submission-01").exists()


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
def test_another_patients_scan_under_a_fax_header_blocks_the_seal(tmp_path):
    # Page 2 of the member's faxed records is another patient's record, scanned: its only text is the
    # fax server's header line, which names nobody. OCR reads the picture and the guard names the page.
    from scankit import image_pdf

    from packet.errors import GateFailed

    config = make_config(tmp_path)
    case_id = "IMR-2026-000323"
    case_dir = write_case(config.paths.inbox, case_id)
    grievance_response(case_dir)
    header = "10/01/2026 14:22 FROM: VALLEY CLINIC (559) 555-0100 TO: GOLDEN POPPY P.00{}/003"
    image_pdf(case_dir / "medical-records" / "faxed records.pdf",
              [f"PROGRESS NOTE\nDate: 09/01/2026\n{WHO}\nLow back pain, stable.",
               (header.format(2), ["LABORATORY REPORT", "Patient: OTHERPERSON, HAROLD B", "DOB: 02/03/1950",
                                   "HIV-1/2 antibody: REACTIVE"]),
               f"PROGRESS NOTE (continued)\n{WHO}\nPlan: physical therapy."])
    result = build_case(case_dir, config, now=NOW)
    record = next(d for d in result.documents if d.source == "medical-records/faxed records.pdf")
    assert record.identity.value == "mismatch" and 2 in record.other_person_pages, record.identity
    with pytest.raises(GateFailed):
        seal_case(config, case_id, now=NOW)
    assert not (config.paths.outbox / case_id / "submission-01").exists()


def test_an_override_for_something_else_does_not_release_another_patients_record(tmp_path):
    config = make_config(tmp_path)
    case_id = "IMR-2026-000322"
    _other_patient_case(config.paths.inbox, case_id)
    try:
        submission = seal_case(config, case_id, now=NOW, override_reason="grievance letter was faxed separately")
    except Exception:  # refusing to seal is a correct answer too
        return
    copies = write_copies(config, case_id, "member", now=LATER)
    for path in (submission / "member-packet.pdf", submission / "annotated-list.csv", copies):
        text = haystack(path)
        assert "ZQXOTHERPATIENTMARK" not in text and "OTHERPERSON" not in text, path.name


# ------------------------------------------------------------------------------------------------
# Decisions that change between builds (remembered classifications must not outlive them)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["override-privileged", "override-withhold", "moved-to-privileged"])
def test_a_flag_added_after_the_first_draft_holds_in_the_next_draft_and_the_seal(tmp_path, how):
    config = make_config(tmp_path)
    case_id = "IMR-2026-000444"
    case_dir = write_case(config.paths.inbox, case_id)
    grievance_response(case_dir)
    marker = "ZQXLATEFLAGMARK"
    relpath = "medical-records/zqx-late-summary.pdf"
    rich_pdf(case_dir / relpath, marker, [f"CASE SUMMARY\nDate: 09/01/2026\n{WHO}\n{marker}\n{FILLER}"], image_seed=707)
    first = build_case(case_dir, config, now=NOW)
    assert marker in haystack(first.draft_dir / "annotated-list.csv")  # releasable so far: listed by title

    if how == "moved-to-privileged":
        (case_dir / "medical-records" / "privileged").mkdir()
        relpath_now = "medical-records/privileged/zqx-late-summary.pdf"
        shutil.move(case_dir / relpath, case_dir / relpath_now)
    else:
        relpath_now = relpath
        key = "privileged" if how == "override-privileged" else "withhold_from_member"
        write_overrides(case_dir, {relpath: {key: "decided by a person after the first draft"}})
    second = build_case(case_dir, config, now=NOW)
    doc = next(d for d in second.documents if d.source == relpath_now)
    assert doc.is_withheld
    for name in RECIPIENT_FILES:
        assert marker not in haystack(second.draft_dir / name), name
    submission = seal_case(config, case_id, now=NOW)
    copies = write_copies(config, case_id, "member", now=LATER)
    for path in [submission / name for name in RECIPIENT_FILES] + [copies]:
        assert marker not in haystack(path), path.name
    org = submission / "imr-org-packet.pdf"
    pages = _doc(_manifest(submission), relpath_now)["packet_pages"]
    assert not (page_fingerprints(org, pages) | pixel_fingerprints(org, pages)) & file_fingerprints(copies)


# ------------------------------------------------------------------------------------------------
# Remnants a releasable file carries beyond its visible pages
# ------------------------------------------------------------------------------------------------

def _redacted_by_incremental_update(path: Path, marker: str) -> Path:
    """A record 'redacted' by an incremental update: the old page content is still in the bytes."""
    from pypdf.generic import DecodedStreamObject

    draft = make_pdf(path.with_suffix(".orig.pdf"),
                     [f"LAB RESULTS\nDate: 09/05/2026\n{WHO}\nCopied to: {marker} (another person)\nHemoglobin 13.2"])
    writer = PdfWriter(draft, incremental=True)
    stream = DecodedStreamObject()
    lines = ["LAB RESULTS", "Date: 09/05/2026", *WHO.splitlines(), "Copied to: [redacted]", "Hemoglobin 13.2"]
    text = " ".join(f"({line}) Tj 0 -14 Td" for line in lines)
    stream.set_data(f"BT /F1 12 Tf 72 720 Td {text} ET".encode("latin-1"))
    writer.pages[0][NameObject("/Contents")] = writer._add_object(stream)
    with open(path, "wb") as handle:
        writer.write(handle)
    draft.unlink()
    return path


def _with_attachment_and_script(path: Path, marker: str) -> Path:
    source = make_pdf(path.with_suffix(".orig.pdf"),
                      [f"CONSULTATION NOTE\nDate: 09/06/2026\n{WHO}\nAssessment: chronic low back pain."])
    writer = PdfWriter(clone_from=str(source))
    writer.add_attachment("counsel memo.txt", f"Attached memo {marker}".encode())
    from pypdf.actions import JavaScript

    writer.add_open_action(JavaScript(f"app.alert('{marker}');"))
    writer.add_metadata({"/Subject": "Consultation"})
    with open(path, "wb") as handle:
        writer.write(handle)
    source.unlink()
    return path


def test_remnants_of_a_releasable_file_do_not_ride_into_the_copies(tmp_path):
    config = make_config(tmp_path)
    case_id = "IMR-2026-000666"
    case_dir = write_case(config.paths.inbox, case_id)
    grievance_response(case_dir)
    redacted = _redacted_by_incremental_update(case_dir / "medical-records" / "labs redacted.pdf", "ZQXOLDREVMARK")
    attached = _with_attachment_and_script(case_dir / "medical-records" / "consult.pdf", "ZQXATTACHMARK")
    # Positive controls: the remnants are in the files as dropped, and the visible text is not.
    assert "ZQXOLDREVMARK" in squeeze(qpdf_expanded(redacted).decode("latin-1"))
    assert "ZQXOLDREVMARK" not in (PdfReader(str(redacted)).pages[0].extract_text() or "")
    assert "ZQXATTACHMARK" in haystack(attached)

    submission = seal_case(config, case_id, now=NOW)
    sources = {d["source"] for d in _manifest(submission)["documents"]}
    assert {"medical-records/labs redacted.pdf", "medical-records/consult.pdf"} <= sources, sources
    copies = write_copies(config, case_id, "member", now=LATER)
    assert "[REDACTED]" in haystack(copies)  # the visible, redacted page was copied
    for path in [submission / name for name in RECIPIENT_FILES] + [copies] + \
            sorted((config.paths.outbox / "_print").iterdir()):
        text = haystack(path)
        assert "ZQXOLDREVMARK" not in text and "ZQXATTACHMARK" not in text, path.name


def test_audit_log_holds_no_document_text_titles_or_member_data(scenario):
    """state/audit.jsonl names documents by hash: no marker (text, title), no file name, no member."""
    text = scenario.config.audit_log.read_text(encoding="utf-8")
    assert '"sealed"' in text and '"copies"' in text  # the log was written: the test can fail
    found = [n for n in _log_needles(scenario) if n.lower() in text.lower()]
    assert not found, f"state/audit.jsonl holds {found}"


# ------------------------------------------------------------------------------------------------
# The text rules, as real documents spell them
# ------------------------------------------------------------------------------------------------

PHRASE_VARIANTS = {  # name -> (the phrase as the page has it, expect privileged (else withheld by law))
    "hyphen-at-line-end": ("This memo is protected by the attorney-\nclient privilege and is not to be shared.", True),
    "slash": ("ATTORNEY/CLIENT PRIVILEGED COMMUNICATION", True),
    "en-dash": ("Attorney\u2013Client Privileged", True),
    "evidence-code-sections": ("Protected under California Evidence Code sections 1157 and 1157.5.", True),
    "evidence-code-double-section-sign": ("Protected by Evid. Code \u00a7\u00a7 1156, 1157.", True),
    "evidence-code-no-space": ("Peer review document - Cal. Evid. Code \u00a71157", True),
    "psychotherapy-hyphenated": ("Session record: psycho-\ntherapy notes of Dr. Lee.", False),
    "psychotherapy-across-lines": ("Behavioral health\nPsychotherapy\nnotes, session 4", False),
}
TEXT_VARIANTS = {  # plain-text files keep characters a standard PDF font cannot draw
    "non-breaking-hyphen": ("Attorney\u2011client privileged and confidential.", True),
    "unicode-hyphen": ("ATTORNEY\u2010CLIENT COMMUNICATION", True),
    "soft-hyphen": ("Psycho\u00adtherapy notes, session 2.", False),
}


def test_privilege_and_withholding_phrases_are_recognised_however_they_are_spelled(tmp_path):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox, "IMR-2026-000202")
    grievance_response(case_dir)
    markers = {}
    for number, (name, (phrase, _)) in enumerate({**PHRASE_VARIANTS, **TEXT_VARIANTS}.items()):
        marker = f"ZQXVARIANT{number:02d}MARK"
        markers[name] = marker
        body = f"CLINICAL DOCUMENT\nDate: 09/01/2026\n{WHO}\n{phrase}\nReference {marker}"
        if name in TEXT_VARIANTS:
            path = case_dir / "medical-records" / f"variant {number:02d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
        else:
            make_pdf(case_dir / "medical-records" / f"variant {number:02d}.pdf", [body])
    result = build_case(case_dir, config, now=NOW)
    documents = {d.source: d for d in result.documents}
    missed = []
    for number, (name, (_, privileged)) in enumerate({**PHRASE_VARIANTS, **TEXT_VARIANTS}.items()):
        suffix = "txt" if name in TEXT_VARIANTS else "pdf"
        document = documents[f"medical-records/variant {number:02d}.{suffix}"]
        if not document.is_withheld or document.is_privileged is not privileged:
            missed.append(f"{name}: privileged={document.is_privileged} withheld={document.is_withheld}")
    assert not missed, "not flagged as expected:\n" + "\n".join(missed)
    for name in RECIPIENT_FILES:
        text = haystack(result.draft_dir / name)
        assert not [m for m in markers.values() if m in text], name


def test_another_patients_scan_pasted_into_a_typed_letter_blocks_the_seal(tmp_path):
    # A clinic's typed letter about the member, a whole paragraph of text, with a scanned lab report of
    # another patient pasted under it: the letter's text names the member only; OCR reads the picture.
    import io
    import textwrap

    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas
    from scankit import page_image

    from packet.errors import GateFailed

    config = make_config(tmp_path)
    case_id = "IMR-2026-000324"
    case_dir = write_case(config.paths.inbox, case_id)
    grievance_response(case_dir)
    png = io.BytesIO()
    page_image(["LABORATORY REPORT", "Patient: OTHERPERSON, HAROLD B", "DOB: 02/03/1950",
                "HIV-1/2 antibody: REACTIVE"], dpi=150).save(png, format="PNG")
    path = case_dir / "medical-records" / "clinic letter.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    y = letter[1] - 50
    for line in ["VALLEY CLINIC - Date: 09/01/2026", *WHO.splitlines()] + textwrap.wrap(" ".join(
            ["The patient was seen for follow up of low back pain and the plan was reviewed in detail."] * 14), 110):
        sheet.drawString(40, y, line)
        y -= 11
    sheet.drawImage(ImageReader(io.BytesIO(png.getvalue())), 40, 40, 532, 330)
    sheet.showPage()
    sheet.save()
    result = build_case(case_dir, config, now=NOW)
    record = next(d for d in result.documents if d.source == "medical-records/clinic letter.pdf")
    assert record.identity.value == "mismatch" and record.other_person_pages == (1,), record.identity
    with pytest.raises(GateFailed):
        seal_case(config, case_id, now=NOW)
    assert not (config.paths.outbox / case_id / "submission-01").exists()


def test_a_remembered_picture_costs_its_thumbnail_in_doubles_and_little_more():
    """A long-running service remembers up to leaks._PICTURE_CACHE_MAX decoded pictures: each holds
    a packed array (8 KB), not a tuple of 1,024 Python floats (33 KB; 135 MB for a full memo)."""
    import random
    import tracemalloc

    from PIL import Image

    from packet.pipeline import leaks as leaks_module

    rng = random.Random(3)
    image = Image.frombytes("L", (800, 1000), bytes(rng.randrange(256) for _ in range(800 * 1000)))
    tracemalloc.start()
    try:
        pictures = [leaks_module._picture_of(image) for _ in range(50)]  # noqa: SLF001
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / len(pictures) < 12 * 1024
    assert abs(pictures[0].likeness(pictures[1]) - 1.0) < 1e-9
