"""Dates in document text and the document-date decision.

Owns: `find_dates` (English and Spanish formats), a birth date field's other shapes (`birth_dates`:
day first, a form's boxes), the date labels ("Date of service:", "DOB:"),
and `decide_date` (override, labelled date, the letter's date line, first date, file-name date).
Must not: read files or log. The member's birth date is never a document date.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from pathlib import PurePosixPath

from packet.classify.fields import FORMAT_HINT
from packet.classify.text import flat
from packet.model.case import CaseFacts
from packet.model.models import Converted, Decision, Override, SourceFile

EARLIEST_PLAUSIBLE_DATE = dt.date(1950, 1, 1)

_MONTH = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_MONTH_ES = r"(enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre)"
_MONTHS_ES = {"enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8,
              "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12}
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
# Each pattern that starts with a number starts with its first digit, so that the regular expression
# engine jumps from digit to digit instead of trying every position; what comes before the number
# is checked by a look-behind placed after that digit, which sees the same character:
# "(?<![\d/.\-])(\d{4})" is written "(\d\d{3})(?<![\d/.\-]\d{4})", "(?<![\d/.\-])(\d{1,2})" is
# "(\d(?<![\d/.\-]\d)\d?)", and "\b(\d{1,2})" (a digit is a word character) is "(\d(?<!\w\d)\d?)".
# The same matches, the same groups (tests/test_classify_speed.py compares them with the plain forms).
_DATE_PATTERNS = (
    ("ymd", re.compile(r"(\d\d{3})(?<![\d/.\-]\d{4})([\-/.])(\d{1,2})\2(\d{1,2})(?!\d|[\-/.]\d)")),
    ("mdy", re.compile(r"(\d(?<![\d/.\-]\d)\d?)([\-/.])(\d{1,2})\2(\d{4}|\d{2})(?!\d|[\-/.]\d)")),
    ("month-day-year", re.compile(rf"\b{_MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)),
    ("day-mon-year", re.compile(rf"(\d(?<!\w\d)\d?)-{_MONTH}\.?-(\d{{4}}|\d{{2}})\b", re.I)),
    ("day-month-year", re.compile(rf"(\d(?<!\w\d)\d?)(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+(\d{{4}})\b", re.I)),
    # Spanish (a threshold language): "5 de octubre de 2026", "1o de marzo del 2026"
    ("day-de-month-es", re.compile(rf"(\d(?<!\w\d)\d?)(?:o|º)?\s+de\s+{_MONTH_ES}\s+(?:de|del)\s+(\d{{4}})\b", re.I)),
)
# Sound pre-checks: every date holds a digit; every "April 9, 1961" holds its day's last digit, maybe
# "st".."th" and a comma, spaces, and a four-digit year (the same flags as its pattern), which a
# search that starts with a digit finds quickly (the month-name pattern itself has to try every word).
_ANY_DIGIT = re.compile(r"\d")
_MONTH_DAY_YEAR_NEEDS = re.compile(r"\d(?:st|nd|rd|th)?,?\s+\d{4}", re.I)
_COMPACT_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)")
_DOB_LABEL = re.compile(r"\b(DOB|D\.O\.B\.?|date of birth|birth\s*date|birthdate|born)\W{0,6}$", re.I)
DOB_LABEL_AHEAD = re.compile(rf"\b(?:D[O0][B8]|D\.O\.B\b\.?|date [o0]f birth|birth\s*date|birthdate)\b{FORMAT_HINT}\s*[:#]?\s*",
                             re.I)
_DATE_LABEL = re.compile(
    r"\b(dates? of service|DOS|service date|date of visit|visit date|encounter date|"
    r"exam(?:ination)? date|date of exam(?:ination)?|study date|"
    r"date of (?:the )?(?:report|procedure|surgery|admission|discharge|decision|letter|notice|review|"
    r"determination|request)|report date|procedure date|letter date|decision date|collection date|"
    r"collected|date|dated)\b\s*[:#]?\s*", re.I)


def _year(text: str, pivot: int) -> int:
    if len(text) == 4:
        return int(text)
    year = 2000 + int(text)
    return year if year <= pivot + 1 else year - 100


def _month(name: str) -> int:
    return _MONTHS[name[:3].lower()]


def find_dates(text: str, pivot_year: int = 2026) -> list[tuple[dt.date, int, int]]:
    """Every valid date written in `text`, as (date, start, end), in reading order.

    Formats: 04/09/1961, 4/9/61, 1961-04-09, April 9, 1961, Apr. 9 1961, 9 April 1961,
    09-Apr-1961, 9 de abril de 1961. Impossible dates (2026-02-30) are skipped. Two-digit years above `pivot_year`+1
    are read as 19xx.
    """
    found: list[tuple[dt.date, int, int]] = []
    if not _ANY_DIGIT.search(text):
        return found
    for kind, pattern in _DATE_PATTERNS:
        if kind == "month-day-year" and not _MONTH_DAY_YEAR_NEEDS.search(text):
            continue
        for m in pattern.finditer(text):
            try:
                if kind == "ymd":
                    value = dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
                elif kind == "mdy":
                    value = dt.date(_year(m.group(4), pivot_year), int(m.group(1)), int(m.group(3)))
                elif kind == "month-day-year":
                    value = dt.date(int(m.group(3)), _month(m.group(1)), int(m.group(2)))
                elif kind == "day-de-month-es":
                    value = dt.date(int(m.group(3)), _MONTHS_ES[m.group(2).lower()], int(m.group(1)))
                else:
                    value = dt.date(_year(m.group(3), pivot_year), _month(m.group(2)), int(m.group(1)))
            except ValueError:
                continue
            found.append((value, m.start(), m.end()))
    found.sort(key=lambda item: (item[1], -item[2]))
    out: list[tuple[dt.date, int, int]] = []
    for item in found:
        if out and item[1] < out[-1][2]:
            continue  # overlaps an earlier, longer reading
        out.append(item)
    return out


# A birth date field's value in the shapes `find_dates` does not read: day first ("25/12/1950", as
# Spanish records and other countries write it; only when the first number cannot be a month) and a
# form's boxes without separators ("02 02 1950", "02021950": month, day, year).
_DAY_FIRST = re.compile(r"[ \t]*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?!\d)")
_BOXES = re.compile(r"[ \t]*(\d{2})[ ]?(\d{2})[ ]?(\d{4})(?!\d)")


def birth_dates(value: str, pivot_year: int = 2026) -> list[tuple[dt.date, int, int]]:
    """`find_dates` of a birth date field's value, else its day-first or boxed date (see above)."""
    found = find_dates(value, pivot_year)
    if found:
        return found
    for pattern, day, month in ((_DAY_FIRST, 1, 2), (_BOXES, 2, 1)):
        m = pattern.match(value)
        if m and (pattern is _BOXES or int(m.group(1)) > 12):
            try:
                return [(dt.date(_year(m.group(3), pivot_year), int(m.group(month)), int(m.group(day))),
                         m.start(1), m.end())]
            except ValueError:
                continue
    return []


def _after_dob_label(text: str, start: int) -> bool:
    return bool(_DOB_LABEL.search(text[max(0, start - 30):start]))


PageDates = Callable[[int], list[tuple[dt.date, int, int]]]


def dates_by_page(converted: Converted, pivot: int) -> PageDates:
    """`find_dates` of each page's text (0-based index), found once and shared by `decide_date` and `decide_identity`."""
    texts = converted.page_texts
    return functools.cache(lambda index: find_dates(texts[index], pivot))


# ------------------------------------------------------------------------------------------ date

def date_only(line: str) -> bool:
    dates = find_dates(line)
    if len(dates) != 1:
        return False
    _, start, end = dates[0]
    rest = (line[:start] + line[end:]).strip(" ,.:-")
    return not rest


def _letter_lines(text: str) -> list[tuple[int, int]]:
    """Where a date stands alone on one of the first 12 non-empty lines (the letter's date), as offsets."""
    letter_lines: list[tuple[int, int]] = []
    offset = 0
    seen = 0
    for raw in text.splitlines(keepends=True):
        if raw.strip():
            seen += 1
            if seen > 12:
                break
            if date_only(raw.strip()):
                letter_lines.append((offset, offset + len(raw)))
        offset += len(raw)
    return letter_lines


def decide_date(source: SourceFile, converted: Converted, override: Override | None, facts: CaseFacts | None,
          received_at: dt.datetime, page_dates: PageDates | None = None) -> Decision:
    if override is not None and override.date:
        return Decision(override.date, "override", "date set by a person in overrides.toml")
    dob = facts.member.date_of_birth if facts is not None else None
    latest = received_at.date() + dt.timedelta(days=1)
    pivot = received_at.year
    if page_dates is None:
        page_dates = dates_by_page(converted, pivot)

    def plausible(value: dt.date, text: str, start: int) -> bool:
        # A document cannot be dated after it reached the plan; the member's birth date is not one.
        return (EARLIEST_PLAUSIBLE_DATE <= value <= latest and value != dob
                and not _after_dob_label(text, start))

    first_date: tuple[dt.date, int] | None = None
    for number, text in enumerate(converted.page_texts, 1):
        # The labels and the letter's date line matter only for a plausible date: found when one is.
        labels: list[re.Match[str]] | None = None
        letter_lines: list[tuple[int, int]] | None = None
        candidates: list[tuple[int, dt.date, str, str]] = []
        for value, start, end in page_dates(number - 1):
            if not plausible(value, text, start):
                continue
            if labels is None:
                labels = list(_DATE_LABEL.finditer(text))
            label = next((m for m in labels if m.end() <= start <= m.end() + 3), None)
            if label is not None:
                shown = flat(label.group(1))
                candidates.append((start, value, "labelled-date", f'label "{shown}" on page {number}'))
                continue
            if letter_lines is None:  # a date standing alone on a line near the top: the letter's date
                letter_lines = _letter_lines(text) if number == 1 else []
            if any(a <= start < b for a, b in letter_lines):
                candidates.append((start, value, "letter-date", "date line at the top of page 1"))
            elif first_date is None:
                first_date = (value, number)
        if candidates:
            _, value, rule, evidence = min(candidates, key=lambda c: c[0])
            return Decision(value, rule, evidence)
    if first_date is not None:
        return Decision(first_date[0], "first-date", f"first date in the text, on page {first_date[1]}")
    name = PurePosixPath(source.relpath).name
    name_dates = [(d, s, e) for d, s, e in find_dates(name.replace("_", " "), pivot)]
    name_dates += [(d, m.start(), m.end()) for m in _COMPACT_DATE.finditer(name)
                   for d in _compact(m)]
    for value, start, _ in sorted(name_dates, key=lambda item: item[1]):
        if EARLIEST_PLAUSIBLE_DATE <= value <= latest and value != dob:
            return Decision(value, "file-name-date", "date in the file name")
    return Decision(None, "none", "no date found in the text or the file name")


def _compact(m: re.Match[str]) -> list[dt.date]:
    try:
        return [dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))]
    except ValueError:
        return []
