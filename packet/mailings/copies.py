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

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import letter

from packet.records import audit
from packet.records.layout import MANIFEST, ORG_PACKET, read_manifest
from packet.model.case import check_case_id, load_case
from packet.config import Config
from packet.errors import ExitCode, PacketError, UsageError
from packet.fsutil import atomic_write_bytes, ensure_dir, sha256_bytes
from packet.log import log
from packet.mailings.annotated import ListRow, list_table, member_safe_row
from packet.mailings.enclosures import slip_sheet, slip_words
from packet.mailings.language import check_no_english, label_texts, postal_addresses
from packet.mailings.markup import escape_markup, parse_markup
from packet.mailings.pages import BODY_SIZE, Letterhead, Part, PdfOptions, blocks_to_flowables, build_pdf, styles
from packet.mailings.templates import Templates, long_date, recipient_lines
from packet.mailings.notice import queue_for_print
from packet.pdf.copyset import CopySetWriter, SealedPacket
from packet.pdf.errors import AssemblyError

RECIPIENTS = ("member", "provider")
SUBMISSION_RE = re.compile(r"^submission-(\d+)\Z")


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
            privileged=privileged, withheld=withheld, labels=labels,
            category_rule=str(doc.get("category_reason") or ""),
            flag_rule=str(doc.get("privilege_reason" if privileged else "withheld_reason") or ""))
        items.append(CopyItem(submission=number, row=row, packet_pages=pages))
    return items


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
    language = language if language in ("en", "es") else "en"
    labels = templates.labels(language)

    plan: list[tuple[int, Path, list[CopyItem]]] = []
    for number, folder in submissions:
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError) as exc:
            raise CopiesUnavailable(f"{folder.name}/{MANIFEST} cannot be read ({type(exc).__name__})") from exc
        plan.append((number, folder, _items(manifest, number, labels)))

    if language == "es":  # issue 15 item 9: the cover, the list and every slip sheet in Spanish
        slips = [text for _, _, items in plan for item in items if item.withheld
                 for text in slip_words(item.row, labels, language)]
        check_no_english(label_texts(labels) + slips, templates.folder, "copy set",
                         postal_addresses(config, facts) if facts is not None else ())
    writer = CopySetWriter(max_stream_bytes=config.limits.max_stream_bytes)
    all_rows = [item.row for _, _, items in plan for item in items]
    cover = _cover(templates, config, case_id, recipient, language, labels, now, plan, facts)
    if writer.add_rendered(cover) % 2:
        writer.add_blank(*letter)  # the documents start on a front page (duplex)
    copied_pages = 0
    withheld_count = 0
    for number, folder, items in plan:
        withheld_pages = {p for item in items if item.withheld for p in item.packet_pages}
        try:
            packet = SealedPacket(folder / ORG_PACKET)
        except AssemblyError as exc:
            raise CopiesUnavailable(f"{folder.name}/{exc.message}") from exc
        for item in items:
            if item.withheld:
                withheld_count += 1
                writer.add_rendered(slip_sheet(item.row, labels, case_id, language=language))
                continue
            for packet_page in item.packet_pages:
                if packet_page in withheld_pages or not 1 <= packet_page <= packet.pages:
                    raise CopiesUnavailable(
                        f"{folder.name}/{MANIFEST}: page {packet_page} of {ORG_PACKET} is listed for a releasable "
                        "document but is missing or belongs to a withheld one; nothing was copied",
                        reason="manifest_inconsistent")
                if packet.carries_privileged_mark(packet_page):
                    raise CopiesUnavailable(
                        f"{folder.name}: page {packet_page} of {ORG_PACKET} carries the privileged mark but the "
                        "manifest lists it as releasable; nothing was copied", reason="manifest_inconsistent")
                writer.add_packet_page(packet, packet_page)
                copied_pages += 1
    data = writer.finish(title=labels["titles"]["copies"])
    folder = ensure_dir(config.paths.outbox / case_id / "copies")
    path = atomic_write_bytes(folder / f"copies-{recipient}-{now.strftime('%Y%m%dT%H%M%S')}.pdf", data)
    audit.record(config, "copies", case=case_id, actor=audit.current_user(), recipient=recipient,
                 submissions=[n for n, _ in submissions], documents=len(all_rows) - withheld_count,
                 withheld=withheld_count, pages=copied_pages, output=f"copies/{path.name}",
                 sha256=sha256_bytes(data))
    queue_for_print(config, case_id, data, f"copies-{recipient}-{writer.pages}p", now)
    log("copies_written", case=case_id, recipient=recipient, pages=copied_pages, withheld=withheld_count)
    return path


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
            letterhead = Letterhead(config.plan.name, templates.plan_address(language), tuple(lines))
        if recipient == "provider":
            patient = ["| " + escape_markup(f"{copies.get('patient', 'Patient')}: {facts.member.name}")]
    intro = parse_markup("\n".join([
        "# " + escape_markup(copies["cover_heading" if recipient == "member" else "cover_heading_provider"]),
        "",
        "| " + escape_markup(f"{case_id}" + (f" (DMHC {facts.dmhc_case_number})"
                                             if facts is not None and facts.dmhc_case_number else "")),
        *patient,
        "| " + escape_markup(copies["for_member"] if recipient == "member" else copies["for_provider"]),
        "| " + escape_markup(long_date(now, language)),
        "",
        escape_markup(copies["cover_intro" if recipient == "member" else "cover_intro_provider"]),
    ]))

    def make() -> list:
        flow = blocks_to_flowables(intro, st)
        for number, _, items in plan:
            flow += blocks_to_flowables(parse_markup("## " + escape_markup(f"{copies['submission']} {number}")), st)
            # Each copy the recipient may have is in this set: never "copy available on request".
            rows = tuple(dataclasses.replace(item.row, enclosed=True) if not item.withheld else item.row
                         for item in items)
            flow.append(list_table(rows, labels, language))
        return flow

    options = PdfOptions(case_id=case_id, page_label=labels["page_of"], blank_label=labels["blank_page"],
                         title=labels["titles"]["copies"], author=config.plan.name)
    return build_pdf([Part(make, "cover", letterhead=letterhead)], options)
