"""A rule's regular expressions, compiled once, and a sound pre-check that skips pages they cannot match.

Owns: `compiled` (a rule's patterns as one alternation), `requirements` / `possible` (the literal
strings every match must hold, tested with fast substring checks), `compiled_subset`, and
`start_finder` / `finditer` (an expression tried only where one of its literal starts stands). The
pre-checks only ever skip what the expressions could not match, so decisions are exactly the
expressions' (tests/classify/test_classify_speed.py checks it). Must not: decide anything, read
files, or log.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
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


# --- where a match can begin: a sound pre-scan for label expressions --------------------------------
# A case-insensitive expression with many alternatives ("patient name", "pt name", "member name" ...)
# is tried at every position of a page by `re`, which is slow. Every match begins with one of a few
# short literal strings (its "starts", read off the parsed expression), so a case-sensitive search
# for those strings over the folded text (`folded`: same length, every character a case-insensitive
# match takes for an ASCII letter IS that letter) finds every position where a match can begin,
# and the expression is tried only there (`finditer`). Zero-width conditions are dropped from the
# starts (a looser pre-scan), except word boundaries, which the folded text keeps (folding keeps a
# word character a word character: tests/classify/test_classify_speed.py checks every code point).
START_MIN_CHARS = 2  # a start of one character (after a word boundary: one is enough) finds too much
_START_MAX_CHARS = 6
_START_MAX_HEADS = 64
# More than DENSE_AFTER starts, one every DENSE_CHARS characters or closer: the page is scanned by `re` alone.
DENSE_AFTER = 64
DENSE_CHARS = 16


@dataclass(frozen=True, slots=True)
class _Head:
    fragment: str  # the start so far, as a case-sensitive expression over folded text
    chars: int  # characters in it (word boundaries are none)
    open: bool  # whether the match's next characters may still lengthen it


def _close(heads: list[_Head]) -> list[_Head]:
    return [_Head(head.fragment, head.chars, False) for head in heads]


def _extend(heads: list[_Head], items: list) -> list[_Head] | None:
    """The heads after the parsed sequence `items`; None when there are too many to be useful."""
    for op, av in items:
        name = str(op)
        done = [head for head in heads if not head.open]
        going = [head for head in heads if head.open]
        if not going:
            return heads
        if name == "AT":
            if str(av) in ("AT_BOUNDARY", "AT_NON_BOUNDARY"):
                mark = r"\b" if str(av) == "AT_BOUNDARY" else r"\B"
                going = [_Head(h.fragment + mark, h.chars, True) for h in going]
            # other anchors (^, $, \A) are zero width and dropped: a looser pre-scan
        elif name in ("ASSERT", "ASSERT_NOT"):
            pass  # a look-around: zero width, dropped
        elif name == "LITERAL" or (name == "IN" and av and all(str(o) == "LITERAL" for o, _ in av)):
            codes = [av] if name == "LITERAL" else [code for _, code in av]
            if any(code >= 128 for code in codes):
                going = _close(going)  # a case-insensitive match of a non-ASCII letter: not folded to one
            else:
                chars = sorted({chr(code).lower() for code in codes})
                going = [_Head(h.fragment + re.escape(ch), h.chars + 1, h.chars + 1 < _START_MAX_CHARS)
                         for h in going for ch in chars]
        elif name == "SUBPATTERN":
            going = _extend(going, list(av[-1]))
        elif name == "BRANCH":
            branches = [_extend(list(going), list(branch)) for branch in av[1]]
            if any(branch is None for branch in branches):
                return None
            going = [head for branch in branches for head in branch]
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, item = av
            once = _extend(list(going), list(item))
            if once is None:
                return None
            if not (low == high == 1):
                once = once if high == 1 else _close(once)
            going = (going + once) if low == 0 else once
        else:
            going = _close(going)
        if going is None:
            return None
        heads = _pruned(done + going)
        if len(heads) > _START_MAX_HEADS:
            return None
    return heads


def _pruned(heads: list[_Head]) -> list[_Head]:
    """Without duplicates, and without the heads that lengthen a closed one (it finds them all)."""
    closed = {head.fragment for head in heads if not head.open}
    kept: dict[str, _Head] = {}
    for head in heads:
        if any(head.fragment != other and head.fragment.startswith(other) for other in closed):
            continue  # fragments split into tokens one way only ("\\b", an escaped character, a character)
        if head.fragment not in kept or not head.open:
            kept[head.fragment] = head  # a closed head outweighs an open one with the same fragment
    return list(kept.values())


@functools.lru_cache(maxsize=256)
def start_finder(pattern: str, flags: int) -> re.Pattern[str] | None:
    """A case-sensitive expression that matches folded text at every position where `pattern`
    (compiled with `flags`) can begin a match, or None when its starts are too short or too many."""
    try:
        parsed = list(sre_parse.parse(pattern, flags))
        heads = _extend([_Head("", 0, True)], parsed)
    except Exception:  # noqa: BLE001 - cannot tell: no pre-scan
        return None
    # One character is enough after a word boundary (a fragment begins with "\b" only when the match does).
    if not heads or any(head.chars < (1 if head.fragment.startswith(r"\b") else START_MIN_CHARS) for head in heads):
        return None
    return re.compile("|".join(sorted({head.fragment for head in heads})), flags & re.ASCII)


def finditer(pattern: re.Pattern[str], text: str, folded_text: str) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text)`, the expression tried only where `start_finder` says a match can begin.
    `folded_text` is `folded(text)`. The same matches: finditer tries every position from the end of
    the last match on and yields the first that matches; no position skipped here can match."""
    finder = start_finder(pattern.pattern, pattern.flags) if pattern.flags & re.IGNORECASE else None
    if finder is None or len(folded_text) != len(text):
        yield from pattern.finditer(text)
        return
    search, match = finder.search, pattern.match
    position = tried = 0
    while True:
        candidate = search(folded_text, position)
        if candidate is None:
            return
        tried += 1
        if tried > DENSE_AFTER and tried * DENSE_CHARS > candidate.start():
            # Starts nearly everywhere (a page of "pt pt pt ..."): `re` alone scans faster than this
            # loop tries them, and from here finds what it would have found.
            yield from pattern.finditer(text, position)
            return
        found = match(text, candidate.start())
        if found is None:
            position = candidate.start() + 1
            continue
        yield found
        position = found.end()  # never empty: every start holds a character


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
