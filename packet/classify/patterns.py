"""A rule's regular expressions, compiled once, and a sound pre-check that skips pages they cannot match.

Owns: `compiled` (a rule's patterns as one alternation), `requirements` / `possible` (the literal
strings every match must hold, tested with fast substring checks), `compiled_subset`. The pre-check
only ever skips a page the expressions could not match, so decisions are exactly the expressions'
(tests/classify/test_classify_speed.py checks it). Must not: decide anything, read files, or log.
"""

from __future__ import annotations

import functools
import re
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


def possible(requirements: tuple[Requirement | None, ...], folded: str) -> tuple[int, ...]:
    """The indexes of the patterns that may match this `folded` text: those that have, for each of
    their sets, one of its strings (and those without sets). Every other one cannot match it."""
    contains = folded.__contains__
    return tuple(index for index, sets in enumerate(requirements)
                 if sets is None or all(any(map(contains, needles)) for needles in sets))


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
