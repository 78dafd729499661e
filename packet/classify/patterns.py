"""A rule's regular expressions, compiled once, and a sound pre-check that skips pages they cannot match.

Owns: `compiled` (a rule's patterns as one alternation), `requirements` / `possible` (the literal
strings every match must hold, tested with fast substring checks), `compiled_subset`. The pre-check
only ever skips a page the expressions could not match, so decisions are exactly the expressions'
(tests/classify/test_classify_speed.py checks it). Must not: decide anything, read files, or log.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from re import _parser as sre_parse  # the parser `re` itself uses (Python 3.11+)


@functools.lru_cache(maxsize=1024)
def compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """A rule's patterns as one alternation (one pass over the text instead of one per pattern)."""
    try:
        return (re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE),)
    except re.error:  # e.g. a pattern with a global inline flag: keep them apart
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


# --- a sound pre-check: skip a page that cannot match a rule --------------------------------------
# Most rules look for words ("progress note", "notice of action"). Before running a rule's regular
# expression over a page, substring tests (fast, in C) check that the page holds, for at least one of
# the rule's patterns, every literal string that each match of that pattern must contain (one string
# of each of its `Requirement` sets: "(harmful|detrimental) to (the )?patient" needs "harmful" or
# "detrimental", AND "patient"). The tests only ever skip pages the expression could not match, so
# the decisions are exactly those of the expressions alone; and where only some of a rule's patterns
# pass them, only those are searched (see `compiled_subset`).
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_ANY_FOLD = re.compile("[\u0130\u0131\u017f\u212a]")
NEEDLE_MIN_CHARS = 3

Requirement = tuple[tuple[str, ...], ...]  # one pattern: every match holds a string of each tuple


def folded(text: str) -> str:
    """Lower-case text in which every character that a case-insensitive `re` match takes for an
    ASCII letter IS that letter (the dotted and dotless i, the long s and the Kelvin sign are
    the only non-ASCII ones), one character for one."""
    if text.isascii():  # the four are not ASCII (a check far faster than the search)
        return text.lower()
    return (text.translate(_FOLD) if _ANY_FOLD.search(text) else text).lower()


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
def requirements(patterns: tuple[str, ...]) -> tuple[Requirement | None, ...] | None:
    """For each of `patterns`, the sets of strings each of its matches holds (folded text), the most
    telling set first, or None for a pattern without one (it may match any page); None for all when
    a pattern cannot be read (every page is then searched). Strings shorter than NEEDLE_MIN_CHARS
    are used only for a pattern that has no longer ones ("\\bH\\s?&\\s?P\\b" needs an "&")."""
    found: list[Requirement | None] = []
    for pattern in patterns:
        try:
            parsed = list(sre_parse.parse(pattern, re.IGNORECASE))
            sets = _required_sets(parsed) or _required_sets(parsed, 1)
        except Exception:  # noqa: BLE001 - anything unexpected: no pre-check for this rule
            return None
        ordered = sorted(set(sets), key=lambda c: (-min(len(text) for text in c), len(c), sorted(c)))
        found.append(tuple(tuple(sorted(c)) for c in ordered) or None)
    return tuple(found)


# Most strings are absent from most pages, and finding that out means reading the whole page once per
# string. A page's distinct words are far shorter than the page (a page repeats its words), and every
# occurrence of a string holds each of its runs of letters and digits inside one word of the page: so a
# string whose longest run is in no word is absent, known by reading the words only; a string that is
# one run is present exactly when it is in a word; any other string is then looked for in the page.
_WORD = re.compile(r"[a-z0-9]+")
_RUN = re.compile(r"[a-z0-9]+")
WORD_SEPARATOR = "\x00"  # not a letter or digit: no string found in the words spans two of them


@dataclass(frozen=True, slots=True)
class Searchable:
    """A folded text (see `folded`) and its distinct words, as `possible` reads them."""

    text: str
    words: str  # the distinct runs of [a-z0-9] of `text`, joined by WORD_SEPARATOR


def searchable(folded_text: str) -> Searchable:
    return Searchable(folded_text, WORD_SEPARATOR.join(set(_WORD.findall(folded_text))))


def joined(texts: tuple[Searchable, ...]) -> Searchable:
    """Several texts as one (a document's pages): a pattern impossible on it is impossible on each."""
    words = set().union(*(text.words.split(WORD_SEPARATOR) for text in texts))
    return Searchable(WORD_SEPARATOR.join(text.text for text in texts), WORD_SEPARATOR.join(words))


def _longest_run(needle: str) -> str:
    """The needle's longest run of letters and digits ("" when it has none)."""
    return max(_RUN.findall(needle), key=len, default="")


@functools.lru_cache(maxsize=1024)
def _checks(requirements: tuple[Requirement | None, ...]) -> tuple:
    """Each pattern's sets as (the strings that are one word, (longest run, string) of the others)."""
    out = []
    for sets in requirements:
        if sets is None:
            out.append(None)
            continue
        out.append(tuple((tuple(n for n in needles if _longest_run(n) == n),
                          tuple((_longest_run(n), n) for n in needles if _longest_run(n) != n))
                         for needles in sets))
    return tuple(out)


def possible(requirements: tuple[Requirement | None, ...], folded: str | Searchable) -> tuple[int, ...]:
    """The indexes of the patterns that may match this `folded` text (a `Searchable`, or the folded
    string itself): those that have, for each of their sets, one of its strings (and those without
    sets). Every other one cannot match it."""
    if isinstance(folded, Searchable):
        in_words, in_text = folded.words.__contains__, folded.text.__contains__
    else:
        in_words = in_text = folded.__contains__
    found = []
    for index, sets in enumerate(_checks(requirements)):
        for words, others in sets or ():
            if not (any(map(in_words, words)) or any(in_words(run) and in_text(whole) for run, whole in others)):
                break  # no string of this set is in the text
        else:
            found.append(index)
    return tuple(found)


@functools.lru_cache(maxsize=4096)
def compiled_subset(patterns: tuple[str, ...], keep: tuple[int, ...]) -> tuple[re.Pattern[str], ...]:
    """`compiled(patterns)` for a text on which only the patterns at `keep` can match.

    Searching without the others finds the same first match: an alternation matches at the first
    position where one of its alternatives does, with the first such alternative, and the others
    never do; searched apart, the first pattern that matches is the first of `keep` that does. Only
    a back-reference (or a (?(1)...) condition) would see the groups renumbered: a rule that has one
    is always searched whole."""
    if not keep:
        return ()  # nothing can match
    full = compiled(patterns)
    if len(full) > 1:  # searched apart
        return tuple(full[index] for index in keep)
    if refers_to_groups(patterns):
        return full
    try:
        return (re.compile("|".join(f"(?:{patterns[index]})" for index in keep), re.IGNORECASE),)
    except re.error:  # pragma: no cover - the whole alternation compiled, so its parts do
        return full


@functools.lru_cache(maxsize=1024)
def refers_to_groups(patterns: tuple[str, ...]) -> bool:
    """Whether a pattern holds a back-reference or a group condition (or cannot be read)."""

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
