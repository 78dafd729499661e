"""Everything decided about one document: category, privileged / withheld flags, identity, title, date.

Owns: applying the rule tables (packet/defaults/rules.toml plus imr.toml [rules]) to a converted
document, and the heuristics for identity, title, date and author. Every value is a `Decision` that
names the rule and the evidence (folder, file name, the phrase found on page N), so the manifest,
`_STATUS.txt` and the annotated list can explain it to a clerk or an auditor.

Decision rules used (the `rule` field):
- category: "override", "folder", "rule:<id>"; for needs_review "conflict", "too-weak", "no-match",
  "scanned" (no text layer and the file name does not tell).
- privileged: "override", "folder", "rule:<id>", "default" (not privileged).
- withheld: "override", "privileged", "rule:<id>", "default".
- identity: "identity-check" (confirmed / mismatch / not_found), "no-case-facts".
- title: "override", "metadata", "heading", "file-name".  date: "override", "labelled-date",
  "letter-date", "first-date", "file-name-date", "none".
`Document.tags` holds facts recognised by tagged rules; "grievance_response" marks the plan's written
grievance response (see `is_grievance_response`).

Must not: read or write files, touch pypdf or any renderer, or log. Evidence about identity never
repeats the member's (or another person's) identifiers: it says "member id found on page 1" or
"a different date of birth on page 3", never the value.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from packet.model.case import CaseFacts
from packet.config import Config, Rule
from packet.intake.folder import HINT_FOLDERS, PRIVILEGED_FOLDER
from packet.model.models import (
    CORRESPONDENCE,
    IDENTITY_CONFIRMED,
    IDENTITY_MISMATCH,
    IDENTITY_NOT_FOUND,
    MEDICAL_RECORDS,
    NEEDS_REVIEW,
    Converted,
    Decision,
    Document,
    Override,
    SourceFile,
)

GRIEVANCE_RESPONSE_TAG = "grievance_response"

HEADING_LINES = 20  # a "title line" is one of the first 20 non-empty lines of page 1 ...
HEADING_MAX_WORDS = 12  # ... with at most 12 words, not a sentence (see _is_title_line)
POSITION_FACTOR = 2  # a match in the file name or a title line counts double
EVIDENCE_PHRASE_MAX = 50  # longer matches are described by the rule's label, not quoted
CATEGORY_PAGES = 10  # category rules read the first 10 pages; flags and identity read every page
EARLIEST_PLAUSIBLE_DATE = dt.date(1950, 1, 1)

_FOLDER_FOR_CATEGORY = {category: folder for folder, category in HINT_FOLDERS.items()}


# ------------------------------------------------------------------------------------------ text

def _flat(text: str) -> str:
    """Line breaks and runs of spaces become one space; typographic quotes become plain ones."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    # str.split() breaks at exactly the characters re's \s matches (both are Py_UNICODE_ISSPACE;
    # tests/test_classify_speed.py checks every code point), so this is re.sub(r"\s+", " ", text).strip().
    return " ".join(text.split())


# Every dash and hyphen look-alike reads as "-", and a soft hyphen as nothing, so that a rule written
# "attorney[- ]client" also holds for "Attorney\u2011client" (a non-breaking hyphen) or an en dash.
_DASHES = str.maketrans({**{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"},
                         "\u00ad": None})
# A letter, "-", the line end, a letter. Written "-(?<=[^\W\d_]-)..." rather than "(?<=[^\W\d_])-...": the
# same matches (the look-behind still sees the letter before the dash), but a pattern that starts with a
# literal lets the engine jump from dash to dash instead of trying every position.
_LINE_END_HYPHEN = re.compile(r"-(?<=[^\W\d_]-)[ \t]*\r?\n\s*(?=[^\W\d_])")


def _rule_text(text: str) -> str:
    """A page as the rules read it: dashes normalised (_DASHES), and a word broken by a hyphen at a
    line end read both ways, since only a reader knows which was meant: kept ("attorney-\nclient"
    -> "attorney-client") and dropped ("psycho-\ntherapy" -> "psychotherapy"). A privilege or
    withholding rule must not miss a phrase because the text wrapped."""
    text = text.translate(_DASHES)
    kept = _LINE_END_HYPHEN.sub("-", text)
    if kept == text:
        return _flat(text)
    return _flat(kept) + "\n\n" + _flat(_LINE_END_HYPHEN.sub("", text))


def _lines(text: str) -> list[str]:
    return [line for line in (_flat(raw) for raw in text.splitlines()) if line]


def _is_title_line(line: str) -> bool:
    """Short, and not a sentence or a fragment of one: "NOTICE OF ACTION", "Re: Grievance resolution"."""
    return (len(line.split()) <= HEADING_MAX_WORDS and not line.endswith((".", ",", ";"))
            and not line[:1].islower())


def _name_words(text: str) -> str:
    """File and folder names: underscores, dashes and dots count as spaces."""
    return _flat(re.sub(r"[_.\-]+", " ", text))


@dataclass(frozen=True)
class _Prepared:
    """The parts of a document the rules look at."""

    folder_name: str  # the folders of the relative path, as words
    file_name: str  # the file name without extension, as words
    pages: tuple[str, ...]  # flattened text per page
    title_lines: tuple[str, ...]  # short lines near the top of page 1, flattened
    has_text: bool
    folded: tuple[str, ...] = ()  # the pages as _folded text, for the pre-check in _match_rule


def _prepare(source: SourceFile, converted: Converted) -> _Prepared:
    rel = PurePosixPath(source.relpath)
    # Hint folders and privileged/ are decisions of their own, not words for the rules.
    skip = {".", "", PRIVILEGED_FOLDER, *HINT_FOLDERS}
    folders = " / ".join(_name_words(part) for part in rel.parent.parts if part.lower() not in skip)
    pages = tuple(_rule_text(text) for text in converted.page_texts)
    folded = tuple(_folded(page) for page in pages)
    first = converted.page_texts[0] if converted.page_texts else ""
    title_lines = tuple(line for line in _lines(first.translate(_DASHES))[:HEADING_LINES] if _is_title_line(line))
    return _Prepared(folder_name=folders, file_name=_name_words(rel.stem), pages=pages,
                     title_lines=title_lines, has_text=converted.has_text,
                     folded=folded)


# ------------------------------------------------------------------------------------------ rules

@dataclass(frozen=True)
class RuleMatch:
    """Where one rule matched a document, and what that match is worth."""

    rule: Rule
    score: int  # the rule's weight, doubled for a file-name or title-line match
    evidence: str  # e.g. 'phrase "notice of action" in the title lines of page 1'


def _shown(match: re.Match[str], rule: Rule) -> str:
    phrase = _flat(match.group(0))
    if len(phrase) > EVIDENCE_PHRASE_MAX:
        return rule.label or rule.id
    return f'"{phrase}"'


@functools.lru_cache(maxsize=1024)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """A rule's patterns as one alternation (one pass over the text instead of one per pattern)."""
    try:
        return (re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE),)
    except re.error:  # e.g. a pattern with a global inline flag: keep them apart
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


# --- a sound pre-check: skip a page that cannot match a rule --------------------------------------
# Most rules look for words ("progress note", "notice of action"). Before running a rule's regular
# expression over a page, substring tests (fast, in C) check that the page holds, for at least one of
# the rule's patterns, every literal string that each match of that pattern must contain (one string
# of each of its `_Requirement` sets: "(harmful|detrimental) to (the )?patient" needs "harmful" or
# "detrimental", AND "patient"). The tests only ever skip pages the expression could not match, so
# the decisions are exactly those of the expressions alone; and where only some of a rule's patterns
# pass them, only those are searched (see `_compiled_subset`).
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
NEEDLE_MIN_CHARS = 3

_Requirement = tuple[tuple[str, ...], ...]  # one pattern: every match holds a string of each tuple


def _folded(text: str) -> str:
    """Lower-case text in which every character that a case-insensitive `re` match takes for an
    ASCII letter IS that letter (the dotted and dotless i, the long s and the Kelvin sign are
    the only non-ASCII ones), one character for one."""
    return text.translate(_FOLD).lower()


def _required_sets(items: list, min_chars: int = NEEDLE_MIN_CHARS) -> list[frozenset[str]]:
    """Sets of lower-case ASCII strings (each at least `min_chars` long) such that every match of
    this parsed sequence contains one string of EACH set."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            candidates.append(frozenset({"".join(run).lower()}))
            run.clear()

    for op, av in items:
        name = str(op)
        if name == "LITERAL" and av < 128:
            run.append(chr(av))
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero width: the characters on either side are still next to each other
        elif name == "SUBPATTERN":
            end_run()
            candidates.extend(_required_sets(list(av[-1]), min_chars))  # the group's text is part of the match
        elif name == "BRANCH":
            end_run()
            alternatives = [_required_literals(list(branch), min_chars) for branch in av[1]]
            if alternatives and all(alternatives):
                candidates.append(frozenset().union(*alternatives))  # one alternative's text is in the match
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            end_run()
            low, _, item = av
            if low >= 1:  # at least one repetition is part of the match
                candidates.extend(_required_sets(list(item), min_chars))
        else:
            end_run()
    end_run()
    return [c for c in candidates if min(len(text) for text in c) >= min_chars]


def _required_literals(items: list, min_chars: int = NEEDLE_MIN_CHARS) -> frozenset[str] | None:
    """The most telling one of `_required_sets` (longest shortest string, then fewest strings)."""
    usable = _required_sets(items, min_chars)
    if not usable:
        return None
    return max(usable, key=lambda c: (min(len(text) for text in c), -len(c)))


@functools.lru_cache(maxsize=1024)
def _requirements(patterns: tuple[str, ...]) -> tuple[_Requirement | None, ...] | None:
    """For each of `patterns`, the sets of strings each of its matches holds (folded text), the most
    telling set first, or None for a pattern without one (it may match any page); None for all when
    a pattern cannot be read (every page is then searched). Strings shorter than NEEDLE_MIN_CHARS
    are used only for a pattern that has no longer ones ("\\bH\\s?&\\s?P\\b" needs an "&")."""
    try:
        from re import _parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons
        import sre_parse  # type: ignore[no-redef]
    found: list[_Requirement | None] = []
    for pattern in patterns:
        try:
            parsed = list(sre_parse.parse(pattern, re.IGNORECASE))
            sets = _required_sets(parsed) or _required_sets(parsed, 1)
        except Exception:  # noqa: BLE001 - anything unexpected: no pre-check for this rule
            return None
        ordered = sorted(set(sets), key=lambda c: (-min(len(text) for text in c), len(c), sorted(c)))
        found.append(tuple(tuple(sorted(c)) for c in ordered) or None)
    return tuple(found)


def _possible(requirements: tuple[_Requirement | None, ...], folded: str) -> tuple[int, ...]:
    """The indexes of the patterns that may match this `folded` text: those that have, for each of
    their sets, one of its strings (and those without sets). Every other one cannot match it."""
    contains = folded.__contains__
    return tuple(index for index, sets in enumerate(requirements)
                 if sets is None or all(any(map(contains, needles)) for needles in sets))


@functools.lru_cache(maxsize=4096)
def _compiled_subset(patterns: tuple[str, ...], keep: tuple[int, ...]) -> tuple[re.Pattern[str], ...]:
    """`_compiled(patterns)` for a text on which only the patterns at `keep` can match.

    Searching without the others finds the same first match: an alternation matches at the first
    position where one of its alternatives does, with the first such alternative, and the others
    never do; searched apart, the first pattern that matches is the first of `keep` that does. Only
    a back-reference (or a (?(1)...) condition) would see the groups renumbered: a rule that has one
    is always searched whole."""
    if not keep:
        return ()  # nothing can match
    full = _compiled(patterns)
    if len(full) > 1:  # searched apart
        return tuple(full[index] for index in keep)
    if _refers_to_groups(patterns):
        return full
    try:
        return (re.compile("|".join(f"(?:{patterns[index]})" for index in keep), re.IGNORECASE),)
    except re.error:  # pragma: no cover - the whole alternation compiled, so its parts do
        return full


@functools.lru_cache(maxsize=1024)
def _refers_to_groups(patterns: tuple[str, ...]) -> bool:
    """Whether a pattern holds a back-reference or a group condition (or cannot be read)."""
    try:
        from re import _parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons
        import sre_parse  # type: ignore[no-redef]

    def walk(items) -> bool:
        for op, av in items:
            if str(op) in ("GROUPREF", "GROUPREF_EXISTS", "GROUPREF_IGNORE", "GROUPREF_LOC_IGNORE",
                           "GROUPREF_UNI_IGNORE"):
                return True
            for part in av if isinstance(av, (tuple, list)) else ():
                if isinstance(part, sre_parse.SubPattern) and walk(part):
                    return True
                if isinstance(part, (tuple, list)) and any(isinstance(x, sre_parse.SubPattern) and walk(x)
                                                           for x in part):
                    return True
        return False

    try:
        return any(walk(sre_parse.parse(pattern, re.IGNORECASE)) for pattern in patterns)
    except Exception:  # noqa: BLE001 - cannot tell: treat as referring
        return True


def _match_rule(rule: Rule, doc: _Prepared, max_pages: int | None = None) -> RuleMatch | None:
    """The best place a rule matches: file name or title line (counted double), else the body."""
    patterns = _compiled(rule.patterns)
    if rule.where in ("name", "any"):
        for part, what in ((doc.file_name, "file name"), (doc.folder_name, "folder name")):
            for pattern in patterns:
                found = pattern.search(part) if part else None
                if found:
                    return RuleMatch(rule, rule.weight * POSITION_FACTOR,
                                     f"{what} contains {_shown(found, rule)}")
    if rule.where in ("text", "any") and doc.has_text:
        for line in doc.title_lines:
            for pattern in patterns:
                found = pattern.search(line)
                if found:
                    shown = _shown(found, rule)
                    what = "phrase " + shown if shown.startswith('"') else shown
                    return RuleMatch(rule, rule.weight * POSITION_FACTOR, f"{what} in the title lines of page 1")
        requirements = _requirements(rule.patterns)
        everything = tuple(range(len(rule.patterns)))
        for number, page in enumerate(doc.pages[:max_pages], 1):
            searched = patterns
            if requirements is not None:
                keep = _possible(requirements, doc.folded[number - 1])
                if not keep:
                    continue  # no match is possible on this page
                if keep != everything:
                    searched = _compiled_subset(rule.patterns, keep)
            for pattern in searched:
                found = pattern.search(page)
                if found:
                    shown = _shown(found, rule)
                    what = "phrase " + shown if shown.startswith('"') else shown
                    return RuleMatch(rule, rule.weight, f"{what} on page {number}")
    return None


def _category_matches(config: Config, doc: _Prepared) -> dict[str, list[RuleMatch]]:
    out: dict[str, list[RuleMatch]] = {}
    for rule in config.rules.of_kind("category"):
        found = _match_rule(rule, doc, CATEGORY_PAGES)
        if found is not None:
            out.setdefault(rule.category or "", []).append(found)
    for matches in out.values():
        matches.sort(key=lambda m: -m.score)  # stable: rule-table order among equals
    return out


def _summary(category: str, matches: list[RuleMatch], limit: int = 2) -> str:
    shown = ", ".join(f"{m.rule.id}: {m.evidence}" for m in matches[:limit])
    more = f", +{len(matches) - limit} more" if len(matches) > limit else ""
    return f"{category} {sum(m.score for m in matches)} ({shown}{more})"


def _category_by_rules(config: Config, doc: _Prepared,
                       matches: dict[str, list[RuleMatch]]) -> Decision:
    scanned = not doc.has_text
    prefix = "scanned document (no text layer), judged by its file name: " if scanned else ""
    ranked = sorted(matches.items(), key=lambda item: -sum(m.score for m in item[1]))
    if not ranked:
        if scanned:
            return Decision(NEEDS_REVIEW, "scanned",
                            "scanned document (no text layer) and its file name does not tell the category")
        return Decision(NEEDS_REVIEW, "no-match", "no classification rule matched the file name or the text")
    top_category, top_matches = ranked[0]
    top = sum(m.score for m in top_matches)
    second = sum(m.score for m in ranked[1][1]) if len(ranked) > 1 else 0
    minimum, margin = config.rules.min_score, config.rules.margin
    if top >= minimum and top - second >= margin:
        best = top_matches[0]
        also = "; ".join(f"{m.rule.id} ({m.evidence})" for m in top_matches[1:3])
        evidence = prefix + best.evidence + (f"; also {also}" if also else "")
        evidence += f"; score {top}" + (f", next {ranked[1][0]} {second}" if len(ranked) > 1 else "")
        return Decision(top_category, f"rule:{best.rule.id}", evidence)
    sides = " vs ".join(_summary(category, found) for category, found in ranked[:2])
    if top >= minimum:  # strong enough, but the runner-up is too close: never guess
        return Decision(NEEDS_REVIEW, "scanned" if scanned else "conflict",
                        f"{prefix}conflicting evidence (the top category must lead by {margin}): {sides}")
    return Decision(NEEDS_REVIEW, "scanned" if scanned else "too-weak",
                    f"{prefix}evidence too weak (a category needs {minimum}): {sides}")


def _category(source: SourceFile, override: Override | None, config: Config, doc: _Prepared,
              matches: dict[str, list[RuleMatch]]) -> Decision:
    # spec.md: "Overrides beat every rule and are recorded as such".
    if override is not None and override.category:
        return Decision(override.category, "override", "category set by a person in overrides.toml")
    if source.hint_category:
        folder = _FOLDER_FOR_CATEGORY.get(source.hint_category, source.hint_category)
        return Decision(source.hint_category, "folder", f"folder {folder}/")
    return _category_by_rules(config, doc, matches)


def _tags(matches: dict[str, list[RuleMatch]]) -> tuple[str, ...]:
    """A tag counts only when its rule is the strongest of its category for this document."""
    tags: list[str] = []
    for found in matches.values():
        best = max(m.score for m in found)
        for m in found:
            if m.rule.tag and m.score == best and m.rule.tag not in tags:
                tags.append(m.rule.tag)
    return tuple(sorted(tags))


def _flag_matches(kind: str, config: Config, doc: _Prepared) -> list[RuleMatch]:
    return [m for m in (_match_rule(rule, doc) for rule in config.rules.of_kind(kind)) if m is not None]


def _flag_text(found: RuleMatch) -> str:
    return f"{found.rule.label}: {found.evidence}"


def _privileged(source: SourceFile, override: Override | None, config: Config, doc: _Prepared) -> Decision:
    found = _flag_matches("privileged", config, doc)
    also = f"; also {_flag_text(found[0])}" if found else ""
    if override is not None and override.privileged:
        return Decision(True, "override", override.privileged)
    if source.in_privileged_folder:
        return Decision(True, "folder", f"folder {PRIVILEGED_FOLDER}/{also}")
    if found:
        return Decision(True, f"rule:{found[0].rule.id}", _flag_text(found[0]))
    return Decision(False, "default", "no privilege rule matched")


def _withheld(override: Override | None, privileged: Decision, config: Config, doc: _Prepared) -> Decision:
    found = _flag_matches("withhold", config, doc)
    if override is not None and override.withhold_from_member:
        return Decision(True, "override", override.withhold_from_member)
    if privileged.value:
        # Legally privileged documents go to the IMR organization only (H&S 1374.30(n)).
        also = f"; also {_flag_text(found[0])}" if found else ""
        return Decision(True, "privileged", f"privileged: {privileged.evidence or privileged.rule}{also}")
    if found:
        return Decision(True, f"rule:{found[0].rule.id}", _flag_text(found[0]))
    return Decision(False, "default", "no withholding rule matched")


# ------------------------------------------------------------------------------------------ dates

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
_DOB_LABEL_AHEAD = re.compile(r"\b(?:DOB|D\.O\.B\b\.?|date of birth|birth\s*date|birthdate)\b\s*[:#]?\s*", re.I)
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


def _after_dob_label(text: str, start: int) -> bool:
    return bool(_DOB_LABEL.search(text[max(0, start - 30):start]))


PageDates = Callable[[int], list[tuple[dt.date, int, int]]]


def _page_dates(converted: Converted, pivot: int) -> PageDates:
    """`find_dates` of each page's text (0-based index), found once and shared by `_date` and `_identity`."""
    texts = converted.page_texts
    return functools.cache(lambda index: find_dates(texts[index], pivot))


# ------------------------------------------------------------------------------------------ identity

_NAME_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "md", "phd"}
_MEMBER_ID_LABEL = re.compile(
    r"\b(?:member|enrollee)\s*(?:id(?:entification)?\b|number\b|no\.|no\b|#)\s*(?:#|no\.?|number)?\s*[:#]?\s*"
    r"([A-Z0-9*][A-Z0-9*\-]{3,})", re.I)


def _name_patterns(name: str) -> list[re.Pattern[str]]:
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


def _flat_offsets(raw: str, indexes: list[int]) -> list[int]:
    """Where each character raw[i] (not a space; `indexes` strictly ascending) stands in _flat(raw).

    _flat keeps every other character in order and turns each run of spaces into one space, none at
    the ends: so the text before raw[i] becomes its own words joined by single spaces, plus one space
    when words come before and a run of spaces right before raw[i] ("x" stands in for raw[i])."""
    out: list[int] = []
    last, last_flat = -1, -1
    for index in indexes:
        if last < 0:
            position = len(" ".join((raw[:index] + "x").split())) - 1
        else:  # from the previous one on (raw[last] is not a space either)
            position = last_flat + len(" ".join(("x" + raw[last + 1:index] + "x").split())) - 1
        out.append(position)
        last, last_flat = index, position
    return out


def _identity(facts: CaseFacts | None, converted: Converted, pivot: int,
              page_dates: PageDates | None = None) -> Decision:
    if facts is None:
        return Decision(IDENTITY_NOT_FOUND, "no-case-facts", "case.toml is missing or invalid: identity not checked")
    if not converted.has_text:
        return Decision(IDENTITY_NOT_FOUND, "identity-check", "no text to check (scanned document)")
    if page_dates is None:
        page_dates = _page_dates(converted, pivot)
    member = facts.member
    name_patterns = _name_patterns(member.name)
    member_id_pattern = (re.compile(rf"(?<![A-Za-z0-9]){re.escape(member.member_id)}(?![A-Za-z0-9])", re.I)
                         if member.member_id else None)
    found: dict[str, int] = {}
    foreign: dict[str, list[int]] = {}
    for number, raw in enumerate(converted.page_texts, 1):
        page = _flat(raw)
        if not page:
            continue
        if "member name" not in found and any(p.search(page) for p in name_patterns):
            found["member name"] = number
        if member.member_id and member_id_pattern is not None:  # (the one goes with the other)
            if "member id" not in found and member_id_pattern.search(page):
                found["member id"] = number
            for m in _MEMBER_ID_LABEL.finditer(page):
                if _id_differs(m.group(1), member.member_id):
                    foreign.setdefault("member id", []).append(number)
                    break
        if member.date_of_birth:
            # The dates of the page's own text, shared with _date. _flat changes only spaces (a run
            # becomes one, none at the ends) and typographic quotes, which no date pattern tells apart:
            # \s+ takes a whole run, and a quote, a space and the end of the text are all neither a
            # digit, a word character nor one of -/. for the look-arounds and \b. So these are the
            # dates of `page`, in the same order; only their offsets move, and `_flat_offsets` gives
            # them in `page` (tests/test_classify_speed.py compares the two ways).
            dates = page_dates(number - 1)
            if "date of birth" not in found and any(d == member.date_of_birth for d, _, _ in dates):
                found["date of birth"] = number
            if not dates:
                continue  # no label can be followed by a date
            starts: list[int] | None = None
            for label in _DOB_LABEL_AHEAD.finditer(page):
                if starts is None:
                    starts = _flat_offsets(raw, [start for _, start, _ in dates])
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


# ------------------------------------------------------------------------------------------ title

_JUNK_TITLE = re.compile(
    r"^(microsoft\s+(word|excel|powerpoint|office)\b|untitled|document\s*\d*$|doc\d*$|new document|"
    r"(scan|img|image|dsc|fax)[\s_\-]*\d*$|print$|pdf$|title$|none$|unknown$)|"
    r"\.(docx?|pdf|rtf|odt|tiff?|jpe?g|png|txt)\s*$|template", re.I)
_ORG_WORDS = re.compile(
    r"\b(health|healthcare|clinic|hospital|medical (center|group|associates|clinic)|center|centre|"
    r"orthopa?edics?|imaging|radiology|associates|group|plan|inc|llc|laboratory|laboratories|labs|"
    r"physicians|medicine|institute|practice|rehabilitation|department|unit|services)\b", re.I)
_NOT_TITLE = re.compile(
    r"@|www\.|https?:|\bp\.?\s?o\.?\s+box\b|\bsuite\b|\b(street|st\.|avenue|ave\.?|blvd|road|rd\.|lane|drive|way)\b|"
    r",?\s+(CA|California)(\s+\d{5}(-\d{4})?)?$|^\d+\s+\w+|,\s*[A-Z]{2}\s+\d{5}|\(?\d{3}\)?[\s.\-]\d{3}[\-.]\d{4}|\bpage\s+\d+\s+of\s+\d+\b|^dear\b", re.I)
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to",
                "with", "w/o", "vs", "vs.", "de", "del", "la", "las", "los", "el", "y", "en", "para", "por"}
_ACRONYMS = {"MRI", "CT", "PT", "OT", "UM", "UR", "IMR", "DMHC", "ED", "ER", "EKG", "ECG", "CBC", "CMP",
             "MCG", "MD", "DO", "NP", "PA", "RN", "H&P", "PET", "II", "III", "IV", "LOMN", "NOA", "P2P",
             "HIV", "ICU", "OR", "ENT", "EMG", "NCS", "DME", "PCP", "HMO", "PPO", "IPA", "UCLA", "USC"}


def _title_case(line: str) -> str:
    """"NOTICE OF ACTION" -> "Notice of Action"; acronyms such as MRI stay as they are."""
    words = []
    for index, word in enumerate(line.split()):
        core = word.strip(".,:;()")
        if any(ch.isdigit() for ch in word) or core.upper() in _ACRONYMS:
            words.append(word)
        elif index and word.lower() in _SMALL_WORDS:
            words.append(word.lower())
        else:
            words.append("/".join("-".join(part[:1].upper() + part[1:].lower() for part in piece.split("-"))
                                  for piece in word.split("/")))
    return " ".join(words)


def _is_upper(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 6 and sum(ch.isupper() for ch in letters) >= 0.85 * len(letters)


def _sensible_metadata_title(title: str | None) -> str | None:
    if not title:
        return None
    title = _flat(title)
    if len(title) < 3 or len(title) > 150 or sum(ch.isalpha() for ch in title) < 3 or _JUNK_TITLE.search(title):
        return None
    return title


def _file_name_title(source: SourceFile) -> str:
    stem = PurePosixPath(source.relpath).stem
    stem = stem.replace("_", " ")
    stem = re.sub(r"(?<!\d)-|-(?!\d)", " ", stem)  # keep dashes inside dates and numbers
    return _flat(stem) or source.relpath


_BANNER = re.compile(
    r"^(strictly )?(privileged|confidential|attorney[- ]client (privileged|privilege|communications?)|"
    r"attorney work[- ]product|(privileged|confidential) (and|&) (confidential|privileged)|"
    r"do not (copy|distribute|release|forward))$", re.I)


def _is_banner(line: str) -> bool:
    """A confidentiality stamp ("PRIVILEGED & CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION") says how
    to treat a document, not what it is: it is never its title."""
    parts = [p.strip(" .:*") for p in re.split(r"\s+[-\u2013\u2014|/]\s+", line)]
    return all(_BANNER.match(p) for p in parts if p) and any(parts)


def _heading_title(converted: Converted, config: Config, facts: CaseFacts | None) -> str | None:
    first = converted.page_texts[0] if converted.page_texts else ""
    lines = _lines(first)[:HEADING_LINES]
    avoid = {config.plan.name.lower(), *(line.lower() for line in config.plan.address)}
    member_bits = []
    if facts is not None:
        # People's names are not titles: the member's, and the representative's or provider's
        # (a letter from the member's daughter starts with her name, not with what it is).
        people = [facts.member] + [p for p in (facts.representative, facts.provider) if p is not None]
        member_bits = [pattern for person in people for pattern in _name_patterns(person.name)]
        if facts.member.member_id:
            member_bits.append(re.compile(re.escape(facts.member.member_id), re.I))

    def usable(line: str) -> bool:
        words = line.split()
        return (3 <= len(line) <= 90 and len(words) <= HEADING_MAX_WORDS and sum(ch.isalpha() for ch in line) >= 3
                and not line.endswith((",", ";")) and line.lower() not in avoid and not _NOT_TITLE.search(line)
                and not any(p.search(line) for p in member_bits) and not _date_only(line))

    title_rules = [rule for rule in config.rules.of_kind("category") if rule.where in ("text", "any")]

    def names_a_kind(text: str) -> bool:
        return any(p.search(text) for rule in title_rules for p in _compiled(rule.patterns))

    # 1. a short line that names a kind of document ("PROGRESS NOTE", "Re: Letter of Medical Necessity")
    # A heading may follow a letterhead on the same line ("Valley Imaging - RADIOLOGY REPORT"), or
    # carry a qualifier after a colon ("X-RAY REPORT: RIGHT KNEE"): each dash-separated part is tried.
    for line in lines:
        if not _is_title_line(line):
            continue
        subject = re.match(r"^(re|subject|regarding)\s*:\s*(.+)$", line, re.I)
        text = subject.group(2) if subject else line
        text = re.split(r",|;", text)[0].strip()
        for part in (p.strip() for p in re.split(r"\s+[-\u2013\u2014|]\s+", text)):
            if _is_banner(part):
                continue
            head = part.split(":", 1)[0].strip()
            if subject or ":" not in part:
                kind_named = names_a_kind(part)
            else:  # "HEADING: qualifier" only when the heading is in capitals and names a kind
                kind_named = _is_upper(head) and names_a_kind(head)
            if usable(part) and kind_named:
                return _title_case(part) if _is_upper(part) else part
    candidates = [line for line in lines
                  if ":" not in line and _is_title_line(line) and usable(line) and not _is_banner(line)]
    # 2. an all-capitals heading that is not a letterhead; 3. the first line, if heading-like
    for line in candidates:
        if _is_upper(line) and not _ORG_WORDS.search(line):
            return _title_case(line)
    if lines and candidates and candidates[0] == lines[0] and not _ORG_WORDS.search(lines[0]):
        return _title_case(lines[0]) if _is_upper(lines[0]) else lines[0]
    return None


def _title(source: SourceFile, converted: Converted, override: Override | None, config: Config,
           facts: CaseFacts | None) -> Decision:
    if override is not None and override.title:
        return Decision(override.title, "override", "title set by a person in overrides.toml")
    metadata = _sensible_metadata_title(converted.title)
    if metadata:
        return Decision(metadata, "metadata", "document properties")
    heading = _heading_title(converted, config, facts)
    if heading:
        return Decision(heading, "heading", "heading near the top of page 1")
    return Decision(_file_name_title(source), "file-name", "file name")


# ------------------------------------------------------------------------------------------ date

def _date_only(line: str) -> bool:
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
            if _date_only(raw.strip()):
                letter_lines.append((offset, offset + len(raw)))
        offset += len(raw)
    return letter_lines


def _date(source: SourceFile, converted: Converted, override: Override | None, facts: CaseFacts | None,
          received_at: dt.datetime, page_dates: PageDates | None = None) -> Decision:
    if override is not None and override.date:
        return Decision(override.date, "override", "date set by a person in overrides.toml")
    dob = facts.member.date_of_birth if facts is not None else None
    latest = received_at.date() + dt.timedelta(days=1)
    pivot = received_at.year
    if page_dates is None:
        page_dates = _page_dates(converted, pivot)

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
                shown = _flat(label.group(1))
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


# ------------------------------------------------------------------------------------------ author

_FROM = re.compile(r"^\s*from\s*:\s*(.+)$", re.I | re.M)


def _author(converted: Converted, title: str) -> str | None:
    first = converted.page_texts[0] if converted.page_texts else ""
    found = _FROM.search(first)
    if found:
        value = re.split(r"\s{2,}|\b(?:fax|phone|tel|date|to|pages?|re|subject)\s*[:#]", found.group(1), flags=re.I)[0]
        value = value.strip(" ,;:-")
        if 2 <= len(value) <= 80 and sum(ch.isalpha() for ch in value) >= 2:
            return value
    lines = _lines(first)
    if lines:
        head = re.split(r"\s+[-|\u2013\u2014]\s+", lines[0])[0]  # "Valley Imaging - RADIOLOGY REPORT"
        if (len(head.split()) <= 8 and ":" not in head and head.lower() != title.lower()
                and _ORG_WORDS.search(head) and not _NOT_TITLE.search(head)):
            return _title_case(head) if _is_upper(head) else head
    return None


# ------------------------------------------------------------------------------------------ public

def describe(source: SourceFile, converted: Converted, facts: CaseFacts | None, override: Override | None,
             config: Config, received_at: dt.datetime) -> Document:
    """Every decision about one accepted document, each with its rule and evidence."""
    doc = _prepare(source, converted)
    page_dates = _page_dates(converted, received_at.year)  # the same pivot year for the date and identity
    matches = _category_matches(config, doc)
    category = _category(source, override, config, doc, matches)
    privileged = _privileged(source, override, config, doc)
    withheld = _withheld(override, privileged, config, doc)
    title = _title(source, converted, override, config, facts)
    return Document(
        source=source.relpath,
        sha256=converted.sha256,
        received_at=received_at,
        title=title,
        date=_date(source, converted, override, facts, received_at, page_dates),
        category=category,
        privileged=privileged,
        withheld=withheld,
        identity=(Decision("confirmed", "override", override.identity_confirmed)
                  if override is not None and override.identity_confirmed
                  else _identity(facts, converted, received_at.year, page_dates)),
        pages=converted.pages,
        pdf_path=converted.pdf_path,
        source_kind=converted.source_kind,
        excluded=override.exclude if override is not None else None,
        author=_author(converted, str(title.value)),
        tags=_tags(matches),
    )


_RESPONSE_TITLE = re.compile(r"\b(grievance (response|resolution|decision)|appeal (decision|resolution)|"
                             r"resolution letter)\b", re.I)


def is_grievance_response(document: Document) -> bool:
    """The plan's written response to the grievance (H&S 1374.30(n)(2): it must be in the packet).

    True for a document in the packet as correspondence when either a rule tagged
    "grievance_response" was its strongest correspondence rule (built-in: `grievance-resolution`),
    or a person gave it a title in overrides.toml that says so (e.g. "Grievance resolution letter"),
    which is how a clerk vouches for a scanned or oddly worded response.
    """
    if document.excluded is not None or document.category.value != CORRESPONDENCE:
        return False
    if GRIEVANCE_RESPONSE_TAG in document.tags:
        return True
    return document.title.rule == "override" and bool(_RESPONSE_TITLE.search(str(document.title.value)))


def needs_attention(document: Document) -> list[str]:
    """Plain-language items a person must look at for this document (empty: nothing to do).

    Each item is one sentence about this document; callers name the document (its source) beside it.
    Excluded documents need nothing.
    """
    if document.excluded is not None:
        return []
    items: list[str] = []
    if document.category.value == NEEDS_REVIEW:
        items.append(f"Its category could not be decided ({document.category.evidence}). Move the file into "
                     "medical-records/, correspondence/ or plan-statements/, or set its category in overrides.toml.")
    if document.identity.value == IDENTITY_MISMATCH:
        items.append(f"It may hold another person's record ({document.identity.evidence}). Check it; remove "
                     "the page or exclude the file in overrides.toml before sealing.")
    elif document.identity.value == IDENTITY_NOT_FOUND and document.category.value == MEDICAL_RECORDS:
        items.append("The member's name, member id or date of birth was not found in it "
                     f"({document.identity.evidence}). Check that it is the member's record.")
    if document.privileged.value and document.privileged.rule.startswith("rule:"):
        items.append(f"The rules flagged it as privileged ({document.privileged.evidence}). Confirm this: "
                     "it will be marked and not sent to the member or provider.")
    elif document.withheld.value and document.withheld.rule.startswith("rule:"):
        items.append(f"The rules withheld it from the member ({document.withheld.evidence}). Confirm this: "
                     "the member and provider will not get a copy.")
    if document.date.value is None:
        items.append("No document date was found. Add date = YYYY-MM-DD for it in overrides.toml if it has one.")
    return items
