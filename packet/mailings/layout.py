"""The mailings of one submission: member packet, provider packet, annotated list, letter DOCX.

Owns: `render_mailings`, which puts the parts of each mailing together from the templates, the
annotated list and the taglines, and writes MAILING_FILES.
Decision recorded here: the provider packet is in English (the provider's office language); the
member packet, the annotated list and notice-letter.docx follow the member's `language`.
Must not: read case folders, decide categories or privilege, or put a withheld or privileged
document's title, author or text into any output (the list shows a neutral description instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from reportlab.platypus import Spacer

from packet.fsutil import atomic_write_bytes, ensure_dir
from packet.mailings.annotated import ListRow, annotated_csv, list_rows, list_table
from packet.mailings.docx import build_docx
from packet.mailings.pages import (BODY_SIZE, Letterhead, Part, PdfOptions, Rule, blocks_to_flowables, build_pdf, fonts,
                                   styles)
from packet.mailings.taglines import (SCRIPT_FONTS, nondiscrimination_blocks, script_font, tagline_flowables,
                                       tagline_texts)
from packet.mailings.templates import Templates, base_variables, long_date, long_datetime, recipient_lines

# What render_mailings writes, in this order.
MAILING_FILES = ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf", "annotated-list.csv",
                 "notice-letter.docx")


def warm_up() -> None:
    """Load the fonts every mailing uses (a render worker calls this before its first job).

    Shaped scripts' fonts are not loaded: they are registered afresh per build on purpose
    (taglines.script_font).
    """
    fonts()
    for script, spec in SCRIPT_FONTS.items():
        if not spec.shaped:
            script_font(script)


def submission_variables(page_list, ctx, rows: tuple[ListRow, ...], language: str) -> dict[str, Any]:
    facts = ctx.facts
    local = ctx.generated_at
    variables = base_variables(ctx.config, facts, language=language, today=local.date())
    total_pages = sum(row.pages for row in rows)
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
    return variables


def render_mailings(page_list, ctx, out_dir: Path, only: Iterable[str] | None = None) -> list[Path]:
    """Write member-packet.pdf, provider-packet.pdf, annotated-list.pdf/.csv and notice-letter.docx
    (MAILING_FILES), or only those named in `only`; return the paths written. Each file depends on
    the inputs alone, so files written by different processes are the files one call writes."""
    wanted = set(MAILING_FILES if only is None else only)
    if wanted - set(MAILING_FILES):
        raise ValueError(f"not a mailing: {sorted(wanted - set(MAILING_FILES))}")
    out_dir = ensure_dir(Path(out_dir))
    config, facts = ctx.config, ctx.facts
    templates = Templates(config)
    member_lang = facts.language if facts.language in ("en", "es") else "en"
    created = ctx.generated_at

    # Member packet: letter, annotated list, copy-request form.
    labels = templates.labels(member_lang)
    rows = list_rows(page_list, labels)
    variables = submission_variables(page_list, ctx, rows, member_lang)
    letter_blocks = templates.blocks(member_lang, "member-letter.md.j2", variables)
    list_intro = templates.blocks(member_lang, "annotated-list.md.j2", variables)
    request_blocks = templates.blocks(member_lang, "copy-request.md.j2", variables)
    nondiscrimination = nondiscrimination_blocks(templates, config, member_lang, variables)
    st = styles(BODY_SIZE)
    member_head = Letterhead(config.plan.name, tuple(config.plan.address), recipient_lines(facts.member))

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

    def member_pdf() -> bytes:
        options = PdfOptions(case_id=facts.case_id, page_label=labels["page_of"], blank_label=labels["blank_page"],
                             draft=ctx.draft, title=labels["titles"]["member_packet"], author=config.plan.name)
        return build_pdf([letter_part(letter_blocks, member_lang, member_head),
                          list_part(list_intro, rows, labels, member_lang),
                          form_part(request_blocks, "copy_request.")], options)

    def provider_pdf() -> bytes:
        return _provider_pdf(page_list, ctx, templates, letter_part, list_part)

    def list_pdf() -> bytes:
        list_options = PdfOptions(case_id=facts.case_id, page_label=labels["page_of"],
                                  blank_label=labels["blank_page"], draft=ctx.draft,
                                  title=labels["titles"]["annotated_list"], author=config.plan.name)
        return build_pdf([list_part(list_intro, rows, labels, member_lang)], list_options)

    def docx() -> bytes:
        return build_docx(letter_blocks + nondiscrimination, letterhead=member_head,
                          taglines=tagline_texts(templates, config), created=created,
                          title=labels["titles"]["member_letter"], language=member_lang,
                          taglines_heading=labels["taglines_heading"], draft=ctx.draft)

    makers = {"member-packet.pdf": member_pdf, "provider-packet.pdf": provider_pdf,
              "annotated-list.pdf": list_pdf, "annotated-list.csv": lambda: annotated_csv(rows),
              "notice-letter.docx": docx}
    return [atomic_write_bytes(out_dir / name, makers[name]()) for name in MAILING_FILES if name in wanted]


def _provider_pdf(page_list, ctx, templates: Templates, letter_part, list_part) -> bytes:
    """Provider packet: cover letter and the same list (English; see the module docstring)."""
    config, facts = ctx.config, ctx.facts
    provider_lang = "en"
    p_labels = templates.labels(provider_lang)
    p_rows = list_rows(page_list, p_labels)
    p_vars = submission_variables(page_list, ctx, p_rows, provider_lang)
    provider_blocks = templates.blocks(provider_lang, "provider-letter.md.j2", p_vars)
    p_intro = templates.blocks(provider_lang, "annotated-list.md.j2", p_vars)
    provider_recipient = recipient_lines(facts.provider) or (p_labels["provider_unknown"],)
    provider_head = Letterhead(config.plan.name, tuple(config.plan.address), provider_recipient)
    p_options = PdfOptions(case_id=facts.case_id, page_label=p_labels["page_of"],
                           blank_label=p_labels["blank_page"], draft=ctx.draft,
                           title=p_labels["titles"]["provider_packet"], author=config.plan.name)
    return build_pdf([letter_part(provider_blocks, provider_lang, provider_head),
                      list_part(p_intro, p_rows, p_labels, provider_lang)], p_options)
