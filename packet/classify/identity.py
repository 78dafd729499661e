"""Whose record is this: the member's identifiers found in a document, or another person's.

Owns: `decide_identity` (confirmed / not_found / mismatch, naming the pages) and `name_patterns`
(the ways a person's name is written). Must not: read files or log. Evidence never repeats the
member's (or another person's) identifiers: it says "member id found on page 1" or "a different
date of birth on page 3", never the value.
"""

from __future__ import annotations

import datetime as dt
import re

from packet.classify.dates import DOB_LABEL_AHEAD, PageDates, dates_by_page
from packet.classify.text import flat, flat_offsets
from packet.model.case import CaseFacts
from packet.model.models import IDENTITY_CONFIRMED, IDENTITY_MISMATCH, IDENTITY_NOT_FOUND, Converted, Decision

_NAME_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "md", "phd"}
_MEMBER_ID_LABEL = re.compile(
    r"\b(?:member|enrollee)\s*(?:id(?:entification)?\b|number\b|no\.|no\b|#)\s*(?:#|no\.?|number)?\s*[:#]?\s*"
    r"([A-Z0-9*][A-Z0-9*\-]{3,})", re.I)


def name_patterns(name: str) -> list[re.Pattern[str]]:
    tokens = [t.strip(".,") for t in name.replace(",", " ").split()]
    tokens = [t for t in tokens if t and t.lower().strip(".") not in _NAME_SUFFIXES]
    if len(tokens) < 2:
        return []
    first, last = re.escape(tokens[0]), re.escape(tokens[-1])
    return [re.compile(rf"\b{first}(?:\s+[A-Za-z][\w'\-]*\.?){{0,2}}\s+{last}\b", re.I),
            re.compile(rf"\b{last}\s*,\s*{first}\b", re.I)]


def _alnum(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9*]", "", text).upper()


def _id_differs(value: str, member_id: str) -> bool | None:
    """True when the labelled id is clearly another one; None when it cannot be told."""
    value, member_id = _alnum(value), _alnum(member_id)
    if not any(ch.isdigit() for ch in value):
        return None
    masked = re.fullmatch(r"[X*]+(\d{3,})", value)
    if masked:  # e.g. XXXXX7665: compare the digits shown
        return not member_id.endswith(masked.group(1))
    # A dependent suffix (M998877665-01) or a truncated print is the same member.
    return not (value.startswith(member_id) or member_id.startswith(value))


def _same_birth_date(found: dt.date, dob: dt.date) -> bool:
    """Equal, or equal with day and month swapped (09/04/1961 written day-first)."""
    return found == dob or (found.year == dob.year and found.month == dob.day and found.day == dob.month)


def _pages_text(pages: list[int]) -> str:
    return f"page {pages[0]}" if len(pages) == 1 else "pages " + ", ".join(str(p) for p in pages)



def decide_identity(facts: CaseFacts | None, converted: Converted, pivot: int,
              page_dates: PageDates | None = None) -> Decision:
    if facts is None:
        return Decision(IDENTITY_NOT_FOUND, "no-case-facts", "case.toml is missing or invalid: identity not checked")
    if not converted.has_text:
        return Decision(IDENTITY_NOT_FOUND, "identity-check", "no text to check (scanned document)")
    if page_dates is None:
        page_dates = dates_by_page(converted, pivot)
    member = facts.member
    member_names = name_patterns(member.name)
    member_id_pattern = (re.compile(rf"(?<![A-Za-z0-9]){re.escape(member.member_id)}(?![A-Za-z0-9])", re.I)
                         if member.member_id else None)
    found: dict[str, int] = {}
    foreign: dict[str, list[int]] = {}
    for number, raw in enumerate(converted.page_texts, 1):
        page = flat(raw)
        if not page:
            continue
        if "member name" not in found and any(p.search(page) for p in member_names):
            found["member name"] = number
        if member.member_id and member_id_pattern is not None:  # (the one goes with the other)
            if "member id" not in found and member_id_pattern.search(page):
                found["member id"] = number
            for m in _MEMBER_ID_LABEL.finditer(page):
                if _id_differs(m.group(1), member.member_id):
                    foreign.setdefault("member id", []).append(number)
                    break
        if member.date_of_birth:
            # The dates of the page's own text, shared with decide_date. flat changes only spaces (a run
            # becomes one, none at the ends) and typographic quotes, which no date pattern tells apart:
            # \s+ takes a whole run, and a quote, a space and the end of the text are all neither a
            # digit, a word character nor one of -/. for the look-arounds and \b. So these are the
            # dates of `page`, in the same order; only their offsets move, and `flat_offsets` gives
            # them in `page` (tests/test_classify_speed.py compares the two ways).
            dates = page_dates(number - 1)
            if "date of birth" not in found and any(d == member.date_of_birth for d, _, _ in dates):
                found["date of birth"] = number
            if not dates:
                continue  # no label can be followed by a date
            starts: list[int] | None = None
            for label in DOB_LABEL_AHEAD.finditer(page):
                if starts is None:
                    starts = flat_offsets(raw, [start for _, start, _ in dates])
                labelled = next((d for (d, _, _), start in zip(dates, starts)
                                 if label.end() <= start <= label.end() + 3), None)
                if labelled is not None and not _same_birth_date(labelled, member.date_of_birth):
                    foreign.setdefault("date of birth", []).append(number)
                    break
    if foreign:
        # A mismatch wins: one foreign page in a fax must stop the release gate.
        evidence = "; ".join(f"a different {what} on {_pages_text(sorted(set(pages)))}"
                             for what, pages in foreign.items())
        return Decision(IDENTITY_MISMATCH, "identity-check", evidence)
    if found:
        evidence = ", ".join(f"{what} found on page {page}" for what, page in found.items())
        return Decision(IDENTITY_CONFIRMED, "identity-check", evidence)
    return Decision(IDENTITY_NOT_FOUND, "identity-check",
                    "the member's name, member id and date of birth were not found in the text")
