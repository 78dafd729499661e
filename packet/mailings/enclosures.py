"""Concurrent copies of the medical records in the member's (or provider's) mailing.

H&S 1374.30(n)(1)(B): copies of the medical records sent to the IMR organization go concurrently
to the member, or to the member's provider when the member so authorizes (case.toml `records_to`).

Owns: the enclosure of one mailing: every document of the category `medical_records` in page-list
order, releasable ones as their Bates-stamped, sanitised pages (made by `packet.pdf.assemble`'s
copy-set writer from a page list that holds only releasable records), and a slip sheet in the
recipient's language for each record withheld by law, privileged or not yet classified; the slip
sheet (`slip_sheet`, shared with the copy sets on request); and appending the enclosure to the
laid-out letter with "page x of y" on the enclosed pages (the text; `packet.pdf.stamp` draws it).
Must not: read a page of a withheld, privileged or unclassified document, or print its title,
author or text (a slip sheet gives only the Bates range, category and the kind of reason). The
copied pages come only from releasable documents' own files (never from the IMR packet, where
privileged pages carry their mark), and their count must match the page list; `verify` then
checks every member and provider output against the withheld pages' text and images. (Reading
every copied page's text again for the privileged mark cost about 40 ms a page on every draft.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph

from packet.errors import PacketError, TemplateError
from packet.mailings.annotated import ListRow, list_rows
from packet.mailings.pages import fonts, text_xml
from packet.mailings.templates import short_date
from packet.model.models import NEEDS_REVIEW
from packet.model.pagelist import PageList, PlacedDocument
from packet.pdf.assemble import record_copies_writer
from packet.pdf.builder import identity_of
from packet.pdf.copyset import EnclosureWriter
from packet.pdf.frontmatter import stamp_font_encodes

ENCLOSED_CATEGORY = "medical_records"  # H&S 1374.30(n)(1): the records, not the correspondence


class EnclosureError(PacketError):
    """The enclosure would not match the page list (a page of a withheld document, a missing page)."""

    reason = "enclosure_inconsistent"


@dataclass(frozen=True)
class Enclosure:
    """The copies of the medical records for one mailing: its pages and what is in them."""

    pages: int
    copied: tuple[str, ...]  # Bates ranges of the records enclosed
    withheld: tuple[str, ...]  # Bates ranges replaced by a slip sheet
    slip_texts: tuple[str, ...] = ()  # every text printed on the slip sheets (the language check reads them)
    identity: bytes = b""  # a digest of what determines the pages (the mailing's /ID is made from it)
    # The pages themselves, among the records' copies: written once, as one mailing (`append_enclosure`).
    writer: EnclosureWriter | None = dataclasses.field(default=None, compare=False, repr=False)


def releasable(placed: PlacedDocument) -> bool:
    """May the member (or provider) have a copy: not privileged, not withheld, classified."""
    document = placed.document
    return not document.is_withheld and document.category.value != NEEDS_REVIEW


def slip_texts(row: ListRow, labels: dict[str, Any], language: str = "en") -> tuple[str, tuple[tuple[str, str], ...], str]:
    """What a slip sheet says, in the labels' language: its heading, its (label, value) lines and
    its note. The document is described as the list describes it (for a withheld or privileged
    one: the neutral kind, the author's role, the date), never by its own title or author."""
    copies, words = labels["copies"], labels["list"]
    short_reason = copies["slip_privileged" if row.privileged else "slip_by_law"]
    lines = [(copies.get("slip_document", words["columns"]["document"]), row.title)]
    if row.author:
        lines.append((words["source"], row.author))
    lines += [(words["date"], short_date(row.date, language) if row.date else words["no_date"]),
              (copies["slip_range"], row.bates_range),
              (copies["slip_category"], labels["categories"].get(row.category, row.category)),
              (copies["slip_reason"], row.withheld_reason or "")]
    return f"{copies['slip_title']}: {short_reason}", tuple(lines), copies["slip_note"]


def slip_words(row: ListRow, labels: dict[str, Any], language: str = "en") -> list[str]:
    """Every text a slip sheet prints, one string each (for the language check)."""
    heading, lines, note = slip_texts(row, labels, language)
    return [heading, *(text for line in lines for text in line), note]


def slip_sheet(row: ListRow, labels: dict[str, Any], case_id: str, *, draft: bool = False,
               language: str = "en") -> bytes:
    """One page standing in for a withheld document (`slip_texts`), in the recipient's language."""
    f = fonts()
    width, height = letter
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=letter, invariant=1)
    heading_text, lines, note_text = slip_texts(row, labels, language)
    heading = Paragraph(text_xml(heading_text),
                        ParagraphStyle("slip_heading", fontName=f.bold, fontSize=26, leading=32))
    _, heading_height = heading.wrap(width - 144, height)
    heading.drawOn(c, 72, height - 90 - heading_height)
    y = height - 130 - heading_height
    style = ParagraphStyle("slip", fontName=f.regular, fontSize=13, leading=17)
    for label, value in lines:
        para = Paragraph(f"<b>{text_xml(label)}:</b> {text_xml(value)}", style)
        _, h = para.wrap(width - 144, height)
        para.drawOn(c, 72, y - h)
        y -= h + 12
    note = Paragraph(text_xml(note_text), ParagraphStyle("note", parent=style, fontSize=11, leading=14))
    _, h = note.wrap(width - 144, height)
    note.drawOn(c, 72, y - h - 12)
    # The Bates range where the packet prints Bates numbers: bottom right, in the margin.
    c.setFont(f.regular, 9)
    c.setFillColor(colors.black)
    c.drawRightString(width - 36, 22, row.bates_range)
    c.drawString(36, 22, case_id)
    if draft:  # like every other page of a draft mailing
        c.saveState()
        c.setFont(f.bold, 110)
        c.setFillColor(colors.Color(0.6, 0.6, 0.6, alpha=0.35))
        c.translate(width / 2, height / 2)
        c.rotate(45)
        c.drawCentredString(0, -40, "DRAFT")
        c.restoreState()
    c.showPage()
    c.save()
    return buffer.getvalue()


@contextlib.contextmanager
def records_enclosure(page_list: PageList, ctx, labels: dict[str, Any], *, recipient: str,
                      language: str = "en") -> Iterator[Enclosure | None]:
    """The medical records of this submission for `recipient`, or None when it has none; slip
    sheets in `language` (the language of `labels`). A context manager: the copies' objects are
    freed when the block ends, and the enclosure goes into one mailing (`append_enclosure`)."""
    rows = list_rows(page_list, labels)
    medical = [(placed, row) for placed, row in zip(page_list.entries, rows) if placed.category == ENCLOSED_CATEGORY]
    if not medical:
        yield None
        return
    copyable = [placed for placed, _ in medical if releasable(placed)]
    with contextlib.ExitStack() as stack:
        copies = None
        if copyable:
            wanted = {id(placed) for placed in copyable}
            sections = tuple(dataclasses.replace(section, documents=tuple(p for p in section.documents
                                                                           if id(p) in wanted))
                             for section in page_list.sections)
            only_copyable = dataclasses.replace(page_list, sections=tuple(s for s in sections if s.documents))
            # The copies' pages in a writer of their own: the mailing is assembled and written in it.
            copies = stack.enter_context(record_copies_writer(only_copyable, ctx, recipient=recipient))
        writer = EnclosureWriter(copies)
        expected = sum(placed.document.pages for placed in copyable)
        if writer.copies_pages != expected:
            raise EnclosureError(f"the records enclosure has {writer.copies_pages} pages, expected {expected}")
        offset = 0
        copied, withheld, texts = [], [], []
        for placed, row in medical:
            if not releasable(placed):
                assert not row.copy_available or placed.document.category.value == NEEDS_REVIEW
                slip_row = _withheld_row(row, placed, labels)
                texts += slip_words(slip_row, labels, language)
                writer.add_rendered(slip_sheet(slip_row, labels, page_list.case_id, draft=ctx.draft,
                                               language=language))
                withheld.append(row.bates_range)
                continue
            for index in range(offset, offset + placed.document.pages):
                writer.add_copied(index)
            offset += placed.document.pages
            copied.append(row.bates_range)
        identity = hashlib.sha256("\0".join([identity_of(ctx, page_list, f"records-{recipient}"), language, *texts])
                                  .encode("utf-8")).digest()
        yield Enclosure(pages=writer.pages, copied=tuple(copied), withheld=tuple(withheld),
                        slip_texts=tuple(texts), identity=identity, writer=writer)


def _withheld_row(row: ListRow, placed: PlacedDocument, labels: dict[str, Any]) -> ListRow:
    if row.withheld_reason:
        return row
    # Not yet classified (drafts only: the release gate refuses to seal it): never copied either,
    # and described as "a document" until a person has looked at it (it may turn out privileged).
    kind = labels["list"].get("neutral", {}).get("category_types", {}).get(NEEDS_REVIEW) or labels["list"]["untitled"]
    return dataclasses.replace(row, title=kind, author="", withheld_from_member=True,
                               withheld_reason=labels["list"]["reason_unreviewed"])


def append_enclosure(mailing: bytes, enclosure: Enclosure, *, page_label: str, out: BinaryIO) -> None:
    """Write into `out` the laid-out mailing followed by the enclosure, "page x of y" drawn on each
    enclosed page.

    The mailing was laid out knowing the enclosure's page count (its labels already count them)
    and ends on an even page, so the enclosure starts on a front page. The label goes at the top
    right, in the strip the copies keep free of content (the foot holds the Bates number), in the
    font of the Bates numbers, whose encoding (WinAnsi) holds English and Spanish.
    """
    if not stamp_font_encodes(page_label.format(page=0, total=0)):
        raise TemplateError(f"template labels.toml: page_of {page_label!r} has letters the page labels of the "
                            "enclosed records cannot print (Latin letters only)")
    enclosure.writer.finish(mailing, lambda number, total: page_label.format(page=number, total=total),
                            identity=mailing + enclosure.identity, out=out)
