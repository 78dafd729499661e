"""The IMR notice mailing for a grievance disposition (H&S 1374.30; 28 CCR 1300.70.4; domain.md s. 4).

Owns: which parts the notice holds and in what order (letter, application instructions, the
application with consent to obtain medical records, the authorization for release of medical
records in 14-point type, the declaration of relationship, the physician certification for
experimental denials only, and an address sheet for DMHC), the values the forms are pre-filled
with, and where the mailing is written (`outbox/<CASE-ID>/notice/<timestamp>/`).
Must not: word the letter or the forms (the templates in `templates/<lang>/notice-*.md.j2` do),
or read any document of the case: the notice needs only case.toml.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from packet.pdfread import PdfReader
from packet.records import audit
from packet.records.layout import PRINT_DIR
from packet.model.case import CaseFacts, Person, check_case_id, load_case
from packet.config import Config
from packet.fsutil import atomic_write_bytes, ensure_dir, sha256_bytes
from packet.log import log
from packet.mailings.docx import build_docx
from packet.mailings.envelope import dmhc_envelope, mailroom_sheet
from packet.mailings.language import block_texts, check_no_english, postal_addresses
from packet.mailings.pages import BODY_SIZE, Letterhead, Part, PdfOptions, Rule, blocks_to_flowables, build_pdf, styles
from packet.mailings.taglines import nondiscrimination_blocks, tagline_flowables, tagline_texts
from packet.mailings.templates import Templates, base_variables, long_date, recipient_lines, representative_kind

AUTHORIZATION_SIZE = 14  # Civ. 56.11(a): an authorization is typed in no smaller than 14-point type
AUTHORIZATION_MONTHS = 12  # a specific expiration date: one year from the notice, editable on the form
APPLICATION_MONTHS = 6  # H&S 1374.30(d)(2): apply within six months

NOTICE_PDF = "imr-notice.pdf"
NOTICE_DOCX = "imr-notice-letter.docx"
NOTICE_REPRESENTATIVE_PDF = "imr-notice-representative.pdf"
DMHC_ENVELOPE_PDF = "dmhc-envelope-10.pdf"  # experimental/investigational denials only (28 CCR 1300.70.4)
MAILROOM_SHEET_PDF = "mailroom-sheet.pdf"

def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (the last day of the month when that day does not exist)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)  # unreachable: day 28 exists in every month


def notice_variables(config: Config, facts: CaseFacts, today: dt.date, language: str,
                     names: dict[str, str] | None = None) -> dict[str, Any]:
    variables = base_variables(config, facts, language=language, today=today, names=names)
    rep = facts.representative
    kind = representative_kind(rep.relationship) if rep else ""
    variables["notice"] = {
        "apply_by": long_date(add_months(today, APPLICATION_MONTHS), language),
        "expiration_date": long_date(add_months(today, AUTHORIZATION_MONTHS), language),
        "rep_kind": kind,
        "rep_other": (rep.relationship or "") if rep and kind == "other" else "",
    }
    return variables


def part_names(facts: CaseFacts) -> tuple[str, ...]:
    names = ["letter", "instructions", "application", "authorization", "declaration"]
    if facts.dispute_type == "experimental":  # H&S 1370.4: only for experimental denials
        names.append("physician")
    names.append("dmhc-address")
    return tuple(names)


def render_notice(config: Config, facts: CaseFacts, *, today: dt.date, created: dt.datetime,
                  draft: bool = False, to: Person | None = None) -> tuple[bytes, bytes]:
    """The notice mailing as PDF bytes, and its letter as DOCX bytes.

    `to`: the person in the envelope window (default the member); the representative the letter
    copies ("cc") is mailed the same notice with their own address in the window.
    """
    templates = Templates(config)
    language = facts.language if facts.language in ("en", "es") else "en"
    labels = templates.labels(language)
    variables = notice_variables(config, facts, today, language, templates.names(language))
    st = styles(BODY_SIZE)
    date_label = templates.label(language, "date")
    seen: set[str] = set()

    letter_blocks = templates.blocks(language, "notice-letter.md.j2", variables)
    nondiscrimination = nondiscrimination_blocks(templates, config, language, variables)
    member_head = Letterhead(config.plan.name, templates.plan_address(language), recipient_lines(to or facts.member))
    dmhc_head = Letterhead("", recipient_lines(facts.member), tuple(config.dmhc.address))

    def letter() -> list:
        flow = blocks_to_flowables(letter_blocks, st)
        flow += [Rule()]
        flow += blocks_to_flowables(nondiscrimination, styles(BODY_SIZE - 1))
        flow += tagline_flowables(templates, config, language)
        return flow

    def form(name: str, template: str, size: int = BODY_SIZE):
        blocks = templates.blocks(language, template, variables)

        def make() -> list:
            seen.difference_update({n for n in seen if n.startswith(name + ".")})  # second layout pass
            return blocks_to_flowables(blocks, styles(size), field_prefix=name + ".", date_label=date_label,
                                       seen=seen)
        return make

    makers = {
        "letter": Part(letter, "letter", member_head),
        "instructions": Part(form("instructions", "notice-instructions.md.j2"), "instructions"),
        "application": Part(form("application", "notice-application.md.j2"), "application"),
        "authorization": Part(form("authorization", "notice-authorization.md.j2", AUTHORIZATION_SIZE),
                              "authorization", footer_size=AUTHORIZATION_SIZE),
        "declaration": Part(form("declaration", "notice-declaration.md.j2"), "declaration"),
        "physician": Part(form("physician", "notice-physician.md.j2"), "physician"),
        "dmhc-address": Part(form("dmhc", "notice-dmhc-address.md.j2"), "dmhc-address", dmhc_head),
    }
    parts = [makers[name] for name in part_names(facts)]
    if language == "es":  # issue 15 item 9: no English template text in a Spanish mailing
        forms = {"instructions": "notice-instructions.md.j2", "application": "notice-application.md.j2",
                 "authorization": "notice-authorization.md.j2", "declaration": "notice-declaration.md.j2",
                 "physician": "notice-physician.md.j2", "dmhc-address": "notice-dmhc-address.md.j2"}
        blocks = letter_blocks + nondiscrimination
        for name in part_names(facts):
            if name in forms:
                blocks += templates.blocks(language, forms[name], variables)
        check_no_english(block_texts(blocks) + list(member_head.return_address), templates.folder, "IMR notice",
                         postal_addresses(config, facts))
    options = PdfOptions(case_id=facts.case_id, page_label=labels["page_of"], blank_label=labels["blank_page"],
                         draft=draft, title=labels["titles"]["notice"], author=config.plan.name)
    pdf = build_pdf(parts, options)
    docx = build_docx(letter_blocks + nondiscrimination, letterhead=member_head,
                      taglines=tagline_texts(templates, config), created=created,
                      title=labels["titles"]["notice"], language=language,
                      taglines_heading=labels["taglines_heading"])
    return pdf, docx


def write_notice(config: Config, case_id: str, *, now: dt.datetime | None = None) -> Path:
    """Write the IMR notice mailing of a case into outbox/<CASE-ID>/notice/<timestamp>/; return the PDF."""
    check_case_id(case_id)
    facts = load_case(config.paths.inbox / case_id)
    tz = config.calendar.tz
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    pdf, docx = render_notice(config, facts, today=now.date(), created=now)
    folder = ensure_dir(config.paths.outbox / case_id / "notice" / now.strftime("%Y%m%dT%H%M%S"))
    pdf_path = atomic_write_bytes(folder / NOTICE_PDF, pdf)
    atomic_write_bytes(folder / NOTICE_DOCX, docx)
    parts = part_names(facts)
    audit.record(config, "notice", case=case_id, actor=audit.current_user(),
                 output=f"notice/{folder.name}/{NOTICE_PDF}", sha256=sha256_bytes(pdf),
                 parts=list(parts), language=facts.language)
    queue_for_print(config, case_id, pdf, f"notice-{count_pages(pdf)}p", now)
    rep = facts.representative
    rep_pages = None
    if rep is not None and rep.address:  # the letter copies them ("cc"): they are mailed it too
        rep_pdf, _ = render_notice(config, facts, today=now.date(), created=now, to=rep)
        atomic_write_bytes(folder / NOTICE_REPRESENTATIVE_PDF, rep_pdf)
        audit.record(config, "notice", case=case_id, actor=audit.current_user(), recipient="representative",
                     output=f"notice/{folder.name}/{NOTICE_REPRESENTATIVE_PDF}", sha256=sha256_bytes(rep_pdf),
                     parts=list(parts), language=facts.language)
        rep_pages = count_pages(rep_pdf)
        queue_for_print(config, case_id, rep_pdf, f"notice-representative-{rep_pages}p", now)
    elif rep is not None:  # the letter copies them, but their copy cannot be mailed: say so, loudly
        audit.record(config, "notice_not_mailed", case=case_id, actor=audit.current_user(),
                     recipient="representative", reason="the representative has no address in case.toml")
        log("notice_representative_unaddressed", case=case_id, level="warning")
    if facts.dispute_type == "experimental":
        _write_envelope(config, facts, folder, now, notice_pages=count_pages(pdf), representative_pages=rep_pages)
    log("notice_written", case=case_id, parts=len(parts))
    return pdf_path


def _write_envelope(config: Config, facts: CaseFacts, folder: Path, now: dt.datetime, *, notice_pages: int,
                    representative_pages: int | None = None) -> None:
    """The #10 envelope addressed to DMHC and the mailroom sheet that says what goes where, both
    queued for printing beside the notice."""
    templates = Templates(config)
    language = facts.language if facts.language in ("en", "es") else "en"
    envelope = dmhc_envelope(config, facts, templates.labels(language))
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    envelope_print = f"{stamp}-{facts.case_id}-dmhc-envelope-10.pdf"
    notice_print = f"{stamp}-{facts.case_id}-notice-{notice_pages}p.pdf"
    files = {"notice": notice_print, "envelope": envelope_print}
    if representative_pages is not None:
        files["representative_notice"] = f"{stamp}-{facts.case_id}-notice-representative-{representative_pages}p.pdf"
    sheet = mailroom_sheet(config, facts, templates.labels("en"), notice_pages=notice_pages, files=files)
    atomic_write_bytes(folder / DMHC_ENVELOPE_PDF, envelope)
    atomic_write_bytes(folder / MAILROOM_SHEET_PDF, sheet)
    audit.record(config, "notice_envelope", case=facts.case_id, actor=audit.current_user(),
                 output=f"notice/{folder.name}/{DMHC_ENVELOPE_PDF}", sha256=sha256_bytes(envelope))
    queue_for_print(config, facts.case_id, envelope, "dmhc-envelope-10", now)
    queue_for_print(config, facts.case_id, sheet, "mailroom-sheet", now)


def count_pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def queue_for_print(config: Config, case_id: str, pdf: bytes, what: str, now: dt.datetime) -> Path:
    """Put a mailing into outbox/_print/ (the mailroom's one print folder), named like the seal's."""
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{case_id}-{what}.pdf"
    target = atomic_write_bytes(ensure_dir(config.paths.outbox / PRINT_DIR) / name, pdf)
    audit.record(config, "print_queued", case=case_id, file=name)
    return target
