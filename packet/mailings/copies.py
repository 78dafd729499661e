"""Copy sets on request (H&S 1374.30(n)(1)(B), 1374.31(b)): what the member or provider may have.

Owns: `write_copies`, which reads every sealed submission of a case (`submission-NN/manifest.json`),
takes each releasable document's pages from that submission's imr-org-packet.pdf (they already
carry their Bates numbers), and puts a Bates-numbered slip sheet ("Withheld: reason") in place of
every privileged or withheld document; a cover page lists the set. Output:
`outbox/<CASE-ID>/copies/copies-<recipient>-<timestamp>.pdf` (and a copy queued in
`outbox/_print/`), audit event `copies`.
Must not: copy any page of a privileged or withheld document, nor print such a document's title,
author or text (a slip sheet gives only its Bates range, category and the kind of reason). As a
second line of defence, a page that carries the privileged mark is never copied, whatever the
manifest says.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError
from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph

from packet.records import audit
from packet.records.layout import MANIFEST, ORG_PACKET, read_manifest
from packet.model.case import check_case_id, load_case
from packet.config import Config
from packet.errors import ExitCode, PacketError, UsageError
from packet.fsutil import atomic_write_bytes, ensure_dir, sha256_bytes
from packet.log import log
from packet.mailings.layout import (BODY_SIZE, Letterhead, ListRow, Part, PdfOptions, Templates, blocks_to_flowables,
                       build_pdf, escape_markup, fonts, list_table, long_date, member_safe_row, parse_markup,
                       recipient_lines, styles)
from packet.model.models import PRIVILEGED_MARK
from packet.mailings.notice import queue_for_print

RECIPIENTS = ("member", "provider")
SUBMISSION_RE = re.compile(r"^submission-(\d+)$")


class CopiesUnavailable(PacketError):
    """No sealed submission to copy from, or a submission that cannot be read safely."""

    exit_code = ExitCode.bad_input
    reason = "copies_unavailable"


@dataclass(frozen=True)
class CopyItem:
    """One document of a copy set: its pages are copied, or a slip sheet stands in for it."""

    submission: int
    row: ListRow
    packet_pages: tuple[int, ...]

    @property
    def withheld(self) -> bool:
        return not self.row.copy_available


def sealed_submissions(config: Config, case_id: str) -> list[tuple[int, Path]]:
    """(number, folder) of every sealed submission of the case, in order."""
    case_out = config.paths.outbox / case_id
    found = []
    if case_out.is_dir():
        for child in case_out.iterdir():
            match = SUBMISSION_RE.match(child.name)
            if match and (child / MANIFEST).is_file() and (child / ORG_PACKET).is_file():
                found.append((int(match.group(1)), child))
    return sorted(found)


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _items(manifest: dict, number: int, labels: dict[str, Any]) -> list[CopyItem]:
    items = []
    # Only what was sent to the IMR organization: a document a person excluded (often another
    # patient's record) is in the manifest for the auditor, but in no packet and on no list.
    sent = [doc for doc in manifest.get("documents", []) if not doc.get("excluded") and doc.get("packet_pages")]
    for index, doc in enumerate(sent, 1):
        privileged = bool(doc.get("privileged"))
        withheld = bool(doc.get("withheld_from_member"))
        pages = tuple(int(p) for p in doc.get("packet_pages", []))
        row = member_safe_row(
            number=index, title=str(doc.get("title") or ""), title_rule="", author=doc.get("author"),
            date=_date(doc.get("date")), category=str(doc.get("category", "")), pages=int(doc.get("pages", 0)),
            bates_first=str(doc.get("bates_first", "")), bates_last=str(doc.get("bates_last", "")),
            privileged=privileged, withheld=withheld, labels=labels)
        items.append(CopyItem(submission=number, row=row, packet_pages=pages))
    return items


def _slip_sheet(item: CopyItem, labels: dict[str, Any], case_id: str, language: str) -> bytes:
    """One page standing in for a withheld document: Bates range, category, reason. Never its title."""
    f = fonts()
    width, height = letter
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=letter, invariant=1)
    copies = labels["copies"]
    heading = Paragraph(escape_xml(f"{copies['slip_title']}: {_short_reason(item, labels)}"),
                        ParagraphStyle("slip_heading", fontName=f.bold, fontSize=26, leading=32))
    _, heading_height = heading.wrap(width - 144, height)
    heading.drawOn(c, 72, height - 90 - heading_height)
    y = height - 130 - heading_height
    rows = ((copies["slip_range"], item.row.bates_range),
            (copies["slip_category"], labels["categories"].get(item.row.category, item.row.category)),
            (copies["slip_reason"], item.row.withheld_reason or ""))
    style = ParagraphStyle("slip", fontName=f.regular, fontSize=13, leading=17)
    for label, value in rows:
        para = Paragraph(f"<b>{escape_xml(label)}:</b> {escape_xml(value)}", style)
        _, h = para.wrap(width - 144, height)
        para.drawOn(c, 72, y - h)
        y -= h + 12
    note = Paragraph(escape_xml(copies["slip_note"]), ParagraphStyle("note", parent=style, fontSize=11, leading=14))
    _, h = note.wrap(width - 144, height)
    note.drawOn(c, 72, y - h - 12)
    # The Bates range where the packet prints Bates numbers: bottom right, in the margin.
    c.setFont(f.regular, 9)
    c.setFillColor(colors.black)
    c.drawRightString(width - 36, 22, item.row.bates_range)
    c.drawString(36, 22, case_id)
    c.showPage()
    c.save()
    return buffer.getvalue()


def _short_reason(item: CopyItem, labels: dict[str, Any]) -> str:
    """The kind of reason only ("legally privileged" / "withheld by law"), never the rule's evidence."""
    return labels["copies"]["slip_privileged" if item.row.privileged else "slip_by_law"]


def escape_xml(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(text, {"'": "&#39;", '"': "&quot;"})


def write_copies(config: Config, case_id: str, recipient: str, *, now: dt.datetime | None = None) -> Path:
    """Write the copy set for `recipient` ("member" | "provider"); return its path."""
    if recipient not in RECIPIENTS:
        raise UsageError(f"copies are for the member or the provider, not {recipient!r}")
    check_case_id(case_id)
    submissions = sealed_submissions(config, case_id)
    if not submissions:
        raise CopiesUnavailable(f"case {case_id} has no sealed submission yet: copies are made from what was "
                                "sent to the IMR organization, so seal the case first (imr-packet seal)",
                                reason="no_submission")
    tz = config.calendar.tz
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    language = "en"
    try:
        facts = load_case(config.paths.inbox / case_id)
    except PacketError:
        facts = None  # the case folder may be gone after sealing: English, and no address block
    if recipient == "member" and facts is not None:
        language = facts.language
    templates = Templates(config)
    labels = templates.labels(language if language in ("en", "es") else "en")

    plan: list[tuple[int, Path, list[CopyItem]]] = []
    for number, folder in submissions:
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError) as exc:
            raise CopiesUnavailable(f"{folder.name}/{MANIFEST} cannot be read ({type(exc).__name__})") from exc
        plan.append((number, folder, _items(manifest, number, labels)))

    writer = PdfWriter()
    all_rows = [item.row for _, _, items in plan for item in items]
    cover = _cover(templates, config, case_id, recipient, language, labels, now, plan, facts)
    cover_pages = PdfReader(io.BytesIO(cover)).pages
    for page in cover_pages:
        writer.add_page(page)
    if len(cover_pages) % 2:
        writer.add_blank_page(*letter)  # the documents start on a front page (duplex)
    copied_pages = 0
    withheld_count = 0
    for number, folder, items in plan:
        withheld_pages = {p for item in items if item.withheld for p in item.packet_pages}
        try:
            reader = PdfReader(str(folder / ORG_PACKET))
            total = len(reader.pages)
        except (OSError, PdfReadError) as exc:
            raise CopiesUnavailable(f"{folder.name}/{ORG_PACKET} cannot be read ({type(exc).__name__})") from exc
        for item in items:
            if item.withheld:
                withheld_count += 1
                for page in PdfReader(io.BytesIO(_slip_sheet(item, labels, case_id, language))).pages:
                    writer.add_page(page)
                continue
            for packet_page in item.packet_pages:
                if packet_page in withheld_pages or not 1 <= packet_page <= total:
                    raise CopiesUnavailable(
                        f"{folder.name}/{MANIFEST}: page {packet_page} of {ORG_PACKET} is listed for a releasable "
                        "document but is missing or belongs to a withheld one; nothing was copied",
                        reason="manifest_inconsistent")
                page = reader.pages[packet_page - 1]
                if _carries_privileged_mark(page):
                    raise CopiesUnavailable(
                        f"{folder.name}: page {packet_page} of {ORG_PACKET} carries the privileged mark but the "
                        "manifest lists it as releasable; nothing was copied", reason="manifest_inconsistent")
                added = writer.add_page(page)
                if "/Annots" in added:
                    del added["/Annots"]  # links could point at pages that are not in this set
                copied_pages += 1
    writer.add_metadata({"/Title": labels["titles"]["copies"], "/Producer": "imr-packet",
                         "/Creator": "imr-packet"})
    writer.compress_identical_objects()
    buffer = io.BytesIO()
    writer.write(buffer)
    data = buffer.getvalue()
    folder = ensure_dir(config.paths.outbox / case_id / "copies")
    path = atomic_write_bytes(folder / f"copies-{recipient}-{now.strftime('%Y%m%dT%H%M%S')}.pdf", data)
    audit.record(config, "copies", case=case_id, actor=audit.current_user(), recipient=recipient,
                 submissions=[n for n, _ in submissions], documents=len(all_rows) - withheld_count,
                 withheld=withheld_count, pages=copied_pages, output=f"copies/{path.name}",
                 sha256=sha256_bytes(data))
    queue_for_print(config, case_id, data, f"copies-{recipient}-{len(writer.pages)}p", now)
    log("copies_written", case=case_id, recipient=recipient, pages=copied_pages, withheld=withheld_count)
    return path


def _carries_privileged_mark(page) -> bool:
    try:
        text = page.extract_text() or ""
    except Exception:  # pypdf raises assorted errors on odd pages; the manifest check still holds
        return False
    return "NOT FOR RELEASE TO ENROLLEE" in re.sub(r"\s+", " ", text).upper() or PRIVILEGED_MARK in text


def _cover(templates: Templates, config: Config, case_id: str, recipient: str, language: str,
           labels: dict[str, Any], now: dt.datetime, plan, facts=None) -> bytes:
    copies = labels["copies"]
    st = styles(BODY_SIZE)
    # The mailroom mails this set: its first page carries the recipient's address in the #10
    # window, as the member and provider packets do; the provider also needs the patient's name.
    letterhead = None
    patient = []
    if facts is not None:
        person = facts.member if recipient == "member" else facts.provider
        lines = recipient_lines(person) or ((labels["provider_unknown"],) if recipient == "provider" else ())
        if lines:
            letterhead = Letterhead(config.plan.name, tuple(config.plan.address), tuple(lines))
        if recipient == "provider":
            patient = ["| " + escape_markup(f"{copies.get('patient', 'Patient')}: {facts.member.name}")]
    intro = parse_markup("\n".join([
        "# " + escape_markup(copies["cover_heading"]),
        "",
        "| " + escape_markup(f"{case_id}"),
        *patient,
        "| " + escape_markup(copies["for_member"] if recipient == "member" else copies["for_provider"]),
        "| " + escape_markup(long_date(now, language)),
        "",
        escape_markup(copies["cover_intro"]),
    ]))

    def make() -> list:
        flow = blocks_to_flowables(intro, st)
        for number, _, items in plan:
            flow += blocks_to_flowables(parse_markup("## " + escape_markup(f"{copies['submission']} {number}")), st)
            flow.append(list_table(tuple(item.row for item in items), labels, language))
        return flow

    options = PdfOptions(case_id=case_id, page_label=labels["page_of"], blank_label=labels["blank_page"],
                         title=labels["titles"]["copies"], author=config.plan.name)
    return build_pdf([Part(make, "cover", letterhead=letterhead)], options)
