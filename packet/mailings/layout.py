"""The mailings of one submission: member packet, provider packet, annotated list, letter DOCX.

Owns: `render_mailings`, which puts the parts of each mailing together from the templates, the
annotated list and the taglines, and writes MAILING_FILES.
Decision recorded here: the provider packet is in English (the provider's office language); the
member packet, the annotated list and notice-letter.docx follow the member's `language`.
Must not: read case folders, decide categories or privilege, or put a withheld or privileged
document's title, author or text into any output (the list shows a neutral description instead).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

from reportlab.platypus import Spacer

from packet.fsutil import atomic_writer, claim_once, ensure_dir
from packet.intake.convert.limits import pypdf_bounds
from packet.model.deadlines import info_request_deadline
from packet.mailings.annotated import ListRow, annotated_csv, list_rows, list_table
from packet.mailings.docx import build_docx
from packet.mailings.enclosures import ENCLOSED_CATEGORY, Enclosure, append_enclosure, records_enclosure, releasable
from packet.mailings.language import block_texts, check_no_english, label_texts, postal_addresses
from packet.mailings.markup import escape_markup, parse_markup
from packet.mailings.pages import (BODY_SIZE, Letterhead, Part, PdfOptions, Rule, blocks_to_flowables, build_pdf, fonts,
                                   styles)
from packet.mailings.taglines import nondiscrimination_blocks, tagline_flowables, tagline_texts
from packet.mailings.templates import (Templates, base_variables, long_date, long_datetime, recipient_lines,
                                      representative_authorized)

# What render_mailings writes, in this order.
MAILING_FILES = ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf", "annotated-list.csv",
                 "notice-letter.docx")
# Written with the member packet when the case names a representative (the letter's "cc").
REPRESENTATIVE_PACKET = "representative-packet.pdf"


def warm_up() -> None:
    """Load the fonts every mailing uses (a render worker calls this before its first job).

    The taglines' fonts are not loaded: each is a small subset of the characters a configuration's
    taglines use (taglines.script_font), loaded by the first job in a few milliseconds.
    """
    fonts()


def submission_variables(page_list, ctx, rows: tuple[ListRow, ...], language: str,
                         names: dict[str, str] | None = None) -> dict[str, Any]:
    facts = ctx.facts
    local = ctx.generated_at
    variables = base_variables(ctx.config, facts, language=language, today=local.date(), names=names)
    total_pages = sum(row.pages for row in rows)
    medical = [placed for placed in page_list.entries if placed.category == ENCLOSED_CATEGORY]
    variables["submission"] = {
        "number": ctx.submission, "kind": ctx.kind, "supplemental": ctx.kind == "supplement" or ctx.submission > 1,
        "sent_date": long_date(local, language), "sent_at": local,
        "documents": len(rows), "pages": total_pages,
        "available": sum(1 for r in rows if r.copy_available),
        "withheld": sum(1 for r in rows if not r.copy_available),
        "due": ctx.deadline.due, "due_text": long_datetime(ctx.deadline.due, language),
        "draft": ctx.draft,
        "first_bates": rows[0].bates_first if rows else "", "last_bates": rows[-1].bates_last if rows else "",
    }
    # H&S 1374.30(n)(1)(B): the medical records go with the member's (or provider's) mailing.
    variables["records"] = {
        "to": facts.records_to, "count": len(medical),
        "copied": sum(1 for placed in medical if releasable(placed)),
        "withheld": sum(1 for placed in medical if not releasable(placed)),
    }
    variables["list_for"] = "member"
    variables["request"] = answered_request(ctx, language)
    return variables


def answered_request(ctx, language: str) -> dict[str, Any] | None:
    """The information request a `response` submission answers (issue 15 item 1): the one named by
    the context's `request_id` when the pipeline sets it, else the case's only request."""
    if ctx.kind != "response":
        return None
    requests = ctx.facts.info_requests
    wanted = getattr(ctx, "request_id", None)
    chosen = [r for r in requests if wanted and r.id == wanted] or (list(requests) if len(requests) == 1 else [])
    if not chosen:
        return None
    request = chosen[0]
    deadline = info_request_deadline(request, ctx.facts, ctx.config)
    return {"id": request.id, "what": request.what, "received": long_date(request.received, language),
            "due_text": long_datetime(deadline.due, language)}


def with_enclosed(rows: tuple[ListRow, ...], page_list) -> tuple[ListRow, ...]:
    """The rows of the list that goes with the records' copies: "Copy enclosed" where it is."""
    return tuple(dataclasses.replace(row, enclosed=True)
                 if placed.category == ENCLOSED_CATEGORY and row.copy_available and releasable(placed) else row
                 for row, placed in zip(rows, page_list.entries))


def render_mailings(page_list, ctx, out_dir: Path, only: Iterable[str] | None = None, *,
                    shared: Path | None = None, then: Sequence[str] = ()) -> list[Path]:
    """Write member-packet.pdf, provider-packet.pdf, annotated-list.pdf/.csv and notice-letter.docx
    (MAILING_FILES), or only those named in `only`; return the paths written. Each file depends on
    the inputs alone, so files written by different processes are the files one call writes.

    `then` (with `shared`, a folder two calls share): mailings written after `only`, in the order
    given, each one only if this call claims it in `shared` first (`packet.fsutil.claim_once`);
    the call stops at the first it cannot claim. The render worker takes them from the front and
    the build's process, once its packet is written, from the back: each mailing is written once,
    by whichever process is free first, and neither waits for the other while work is left.

    With the member packet comes REPRESENTATIVE_PACKET when the case names a representative with
    an address: the letter copies ("cc") them, so they are mailed the same letter, list and form
    (and the records' copies when they are an authorized representative and the records go to
    the member)."""
    wanted = set(MAILING_FILES if only is None else only)
    named = wanted | set(then)
    if named - set(MAILING_FILES):
        raise ValueError(f"not a mailing: {sorted(named - set(MAILING_FILES))}")
    if (then and shared is None) or wanted & set(then) or len(set(then)) != len(then):
        raise ValueError("mailings after `only` need a shared folder, and each is named once")
    names = _claimed([name for name in MAILING_FILES if name in wanted], shared, then)
    first = next(names, None)
    if first is None:
        return []  # nothing left to write here: no templates read, no fonts loaded
    # Copies of the records carry the clerks' pages: pypdf decodes them up to the same bound as
    # the conversion did (in the render worker too: pypdf's own default caps are lower).
    with pypdf_bounds(ctx.config.limits.max_inflated_bytes):
        return _render_mailings(page_list, ctx, out_dir, itertools.chain([first], names))


def _claimed(own: list[str], shared: Path | None, then: Sequence[str]) -> Iterator[str]:
    """`own`, then each of `then` as long as it is claimed here first (claimed one at a time, just
    before it is written, so the other process can still take the next)."""
    yield from own
    for name in then:
        if not claim_once(shared, name):
            return
        yield name


def _render_mailings(page_list, ctx, out_dir: Path, names: Iterator[str]) -> list[Path]:
    out_dir = ensure_dir(Path(out_dir))
    config, facts = ctx.config, ctx.facts
    templates = Templates(config)
    member_lang = facts.language if facts.language in ("en", "es") else "en"
    created = ctx.generated_at

    # Member packet: letter, annotated list, copy-request form, copies of the medical records.
    labels = templates.labels(member_lang)
    rows = list_rows(page_list, labels)
    if facts.records_to == "member":
        rows = with_enclosed(rows, page_list)
    variables = submission_variables(page_list, ctx, rows, member_lang, templates.names(member_lang))
    letter_blocks = templates.blocks(member_lang, "member-letter.md.j2", variables)
    list_intro = templates.blocks(member_lang, "annotated-list.md.j2", variables)
    request_blocks = templates.blocks(member_lang, "copy-request.md.j2", variables)
    nondiscrimination = nondiscrimination_blocks(templates, config, member_lang, variables)
    st = styles(BODY_SIZE)
    if member_lang == "es":  # issue 15 item 9: no English template text in a Spanish mailing
        check_no_english(block_texts(letter_blocks + list_intro + request_blocks + nondiscrimination)
                         + list(templates.plan_address(member_lang)) + label_texts(labels),
                         templates.folder, "member mailing", postal_addresses(config, facts))
    member_head = Letterhead(config.plan.name, templates.plan_address(member_lang), recipient_lines(facts.member))

    def letter_part(blocks, lang, head):
        def make():
            flow = blocks_to_flowables(blocks, st)
            flow += [Spacer(1, 8), Rule()]
            flow += blocks_to_flowables(nondiscrimination_for(lang), styles(BODY_SIZE - 1))
            flow += tagline_flowables(templates, config, lang)
            return flow
        return Part(make, "letter", head)

    def nondiscrimination_for(lang):
        if lang == member_lang:
            return nondiscrimination
        return nondiscrimination_blocks(templates, config, lang, variables)

    def list_part(intro, rows_, labels_, lang):
        return Part(lambda: blocks_to_flowables(intro, st) + [list_table(rows_, labels_, lang)], "list")

    def form_part(blocks, prefix):
        return Part(lambda: blocks_to_flowables(blocks, st, field_prefix=prefix,
                                                date_label=templates.label(member_lang, "date")), "form")

    def member_parts(head) -> list[Part]:
        return [letter_part(letter_blocks, member_lang, head), list_part(list_intro, rows, labels, member_lang),
                form_part(request_blocks, "copy_request.")]

    def packet(parts: list[Part], title: str, enclosure: Enclosure | None, intro_key: str, out: BinaryIO,
               labels_=labels) -> None:
        options = PdfOptions(case_id=facts.case_id, page_label=labels_["page_of"],
                             blank_label=labels_["blank_page"], draft=ctx.draft, title=title,
                             author=config.plan.name, extra_pages=enclosure.pages if enclosure else 0)
        if enclosure is None:
            out.write(build_pdf(parts, options))
            return
        parts = parts + [records_part(labels_, intro_key, st)]
        append_enclosure(build_pdf(parts, options), enclosure, page_label=labels_["page_of"], out=out)

    @contextlib.contextmanager
    def member_enclosure() -> Iterator[Enclosure | None]:
        """The member's records enclosure, made for each mailing that carries it (an enclosure is
        written into one mailing: the representative's is made again, the same pages)."""
        if facts.records_to != "member":
            yield None
            return
        with records_enclosure(page_list, ctx, labels, recipient="member", language=member_lang) as enclosure:
            if member_lang == "es" and enclosure is not None:  # the slip sheets too
                check_no_english(enclosure.slip_texts, templates.folder, "records enclosure",
                                 postal_addresses(config, facts))
            yield enclosure

    def member_pdf(out: BinaryIO) -> None:
        with member_enclosure() as enclosure:
            packet(member_parts(member_head), labels["titles"]["member_packet"], enclosure, "intro_member", out)

    def representative_pdf(out: BinaryIO) -> None:
        rep_head = Letterhead(config.plan.name, templates.plan_address(member_lang),
                              recipient_lines(facts.representative))
        authorized = representative_authorized(facts, created.date())
        with member_enclosure() if authorized else contextlib.nullcontext() as enclosure:
            packet(member_parts(rep_head), labels["titles"]["member_packet"], enclosure, "intro_representative", out)

    def provider_pdf(out: BinaryIO) -> None:
        _provider_pdf(page_list, ctx, templates, letter_part, list_part, packet, out)

    def list_pdf(out: BinaryIO) -> None:
        list_options = PdfOptions(case_id=facts.case_id, page_label=labels["page_of"],
                                  blank_label=labels["blank_page"], draft=ctx.draft,
                                  title=labels["titles"]["annotated_list"], author=config.plan.name)
        out.write(build_pdf([list_part(list_intro, rows, labels, member_lang)], list_options))

    def docx(out: BinaryIO) -> None:
        out.write(build_docx(letter_blocks + nondiscrimination, letterhead=member_head,
                             taglines=tagline_texts(templates, config), created=created,
                             title=labels["titles"]["member_letter"], language=member_lang,
                             taglines_heading=labels["taglines_heading"], draft=ctx.draft))

    # Each maker writes its file into an atomic writer as it makes it (a mailing with thousands of
    # copied pages is never held whole in memory).
    makers = {"member-packet.pdf": member_pdf, "provider-packet.pdf": provider_pdf,
              "annotated-list.pdf": list_pdf, "annotated-list.csv": lambda out: out.write(annotated_csv(rows)),
              "notice-letter.docx": docx}
    written = []
    for name in names:
        written.append(_write_with(out_dir / name, makers[name]))
        if name == "member-packet.pdf" and facts.representative is not None and facts.representative.address:
            written.append(_write_with(out_dir / REPRESENTATIVE_PACKET, representative_pdf))
    return written


def _write_with(path: Path, make: Callable[[BinaryIO], object]) -> Path:
    with atomic_writer(path) as out:
        make(out)
    return path


def records_part(labels: dict[str, Any], intro_key: str, st) -> Part:
    """The page in front of the enclosed copies of the medical records."""
    records = labels["records"]
    blocks = parse_markup("# " + escape_markup(records["heading"]) + "\n\n" + escape_markup(records[intro_key]))
    return Part(lambda: blocks_to_flowables(blocks, st), "records")


def _provider_pdf(page_list, ctx, templates: Templates, letter_part, list_part, packet, out: BinaryIO) -> None:
    """Provider packet: cover letter, the same list, and the records' copies when the member chose
    `records_to = "provider"` (English; see the module docstring)."""
    config, facts = ctx.config, ctx.facts
    provider_lang = "en"
    p_labels = templates.labels(provider_lang)
    p_rows = list_rows(page_list, p_labels)
    if facts.records_to == "provider":
        p_rows = with_enclosed(p_rows, page_list)
    p_vars = submission_variables(page_list, ctx, p_rows, provider_lang)
    p_vars["list_for"] = "provider"
    provider_blocks = templates.blocks(provider_lang, "provider-letter.md.j2", p_vars)
    p_intro = templates.blocks(provider_lang, "annotated-list.md.j2", p_vars)
    provider_recipient = recipient_lines(facts.provider) or (p_labels["provider_unknown"],)
    provider_head = Letterhead(config.plan.name, templates.plan_address(provider_lang), provider_recipient)
    with (records_enclosure(page_list, ctx, p_labels, recipient="provider", language=provider_lang)
          if facts.records_to == "provider" else contextlib.nullcontext()) as enclosure:
        packet([letter_part(provider_blocks, provider_lang, provider_head),
                list_part(p_intro, p_rows, p_labels, provider_lang)],
               p_labels["titles"]["provider_packet"], enclosure, "intro_provider", out, p_labels)
