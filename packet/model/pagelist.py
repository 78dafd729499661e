"""The one numbered page list that feeds everything a submission contains.

Owns: the order of documents in a packet (category order, then document date, then title, then
source), Bates numbers, and where every document lands in imr-org-packet.pdf. The packet, index,
mailings, annotated list, copy sets and manifest all read this list, so they cannot disagree.
Must not: read or write PDFs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from packet.config import Bates
from packet.model.models import CATEGORY_ORDER, NEEDS_REVIEW, Document


@dataclass(frozen=True)
class PlacedDocument:
    document: Document
    category: str  # the effective category (the document's decision value)
    bates_first: int
    bates_last: int
    bates_first_label: str
    bates_last_label: str
    packet_first: int  # 1-based page numbers in imr-org-packet.pdf
    packet_last: int

    @property
    def packet_pages(self) -> list[int]:
        return list(range(self.packet_first, self.packet_last + 1))

    @property
    def bates_range(self) -> str:
        if self.bates_first == self.bates_last:
            return self.bates_first_label
        return f"{self.bates_first_label} - {self.bates_last_label}"


@dataclass(frozen=True)
class Section:
    category: str
    divider_page: int  # 1-based page of the divider in imr-org-packet.pdf
    documents: tuple[PlacedDocument, ...]


@dataclass(frozen=True)
class PageList:
    case_id: str
    submission: int
    kind: str  # initial | supplement | draft
    front_pages: int  # cover + index pages before the first divider
    sections: tuple[Section, ...]
    total_pages: int
    first_bates: int
    next_bates: int  # the first number the next submission uses

    @property
    def entries(self) -> tuple[PlacedDocument, ...]:
        return tuple(p for s in self.sections for p in s.documents)


def sort_key(document: Document) -> tuple:
    date = document.date.value
    return (date is None, date or dt.date.min, str(document.title.value).lower(), document.source)


def ordered_sections(documents: list[Document]) -> list[tuple[str, list[Document]]]:
    """Documents grouped in statutory category order; needs_review last (drafts only)."""
    included = [d for d in documents if d.excluded is None]
    groups = []
    for category in CATEGORY_ORDER:
        groups.append((category, sorted((d for d in included if d.category.value == category), key=sort_key)))
    pending = sorted((d for d in included if d.category.value == NEEDS_REVIEW), key=sort_key)
    if pending:
        groups.append((NEEDS_REVIEW, pending))
    return groups


def number_pages(documents: list[Document], *, case_id: str, submission: int, kind: str,
                 first_bates: int, front_pages: int, bates: Bates) -> PageList:
    """Place every included document after the front matter, one divider page per section."""
    page = front_pages
    number = first_bates
    sections = []
    for category, docs in ordered_sections(documents):
        page += 1
        divider = page
        placed = []
        for document in docs:
            first_page, last_page = page + 1, page + document.pages
            first_no, last_no = number, number + document.pages - 1
            placed.append(PlacedDocument(
                document=document, category=category, bates_first=first_no, bates_last=last_no,
                bates_first_label=bates.label(case_id, first_no), bates_last_label=bates.label(case_id, last_no),
                packet_first=first_page, packet_last=last_page))
            page = last_page
            number = last_no + 1
        sections.append(Section(category=category, divider_page=divider, documents=tuple(placed)))
    return PageList(case_id=case_id, submission=submission, kind=kind, front_pages=front_pages,
                    sections=tuple(sections), total_pages=page, first_bates=first_bates, next_bates=number)
