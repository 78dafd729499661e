"""How the classifier reads text: one normalised form of a page, its title lines, name words.

Owns: flattening (line breaks and runs of spaces become one space), dash look-alikes, words broken
by a hyphen at a line end, splitting a page into lines (and the lines around a place in it), which
lines count as title lines, and where a character of the raw text lands in the flattened one. Must not: decide anything, read files, or log.
"""

from __future__ import annotations

import re

HEADING_LINES = 20  # a "title line" is one of the first 20 non-empty lines of page 1 ...
HEADING_MAX_WORDS = 12  # ... with at most 12 words, not a sentence (see is_title_line)

def _plain_quotes(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')


def flat(text: str) -> str:
    """Line breaks and runs of spaces become one space; typographic quotes become plain ones."""
    text = _plain_quotes(text)
    # str.split() breaks at exactly the characters re's \s matches (both are Py_UNICODE_ISSPACE;
    # tests/test_classify_speed.py checks every code point), so this is re.sub(r"\s+", " ", text).strip().
    return " ".join(text.split())


# Every dash and hyphen look-alike reads as "-", and a soft hyphen as nothing, so that a rule written
# "attorney[- ]client" also holds for "Attorney\u2011client" (a non-breaking hyphen) or an en dash.
DASHES = str.maketrans({**{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"},
                         "\u00ad": None})
# A letter, "-", the line end, a letter. Written "-(?<=[^\W\d_]-)..." rather than "(?<=[^\W\d_])-...": the
# same matches (the look-behind still sees the letter before the dash), but a pattern that starts with a
# literal lets the engine jump from dash to dash instead of trying every position.
LINE_END_HYPHEN = re.compile(r"-(?<=[^\W\d_]-)[ \t]*\r?\n\s*(?=[^\W\d_])")
_ANY_DASH = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d\u00ad]")


def dashes(text: str) -> str:
    """`text.translate(DASHES)`, skipped (it is slow) when the text holds none of them."""
    if text.isascii():  # none of them is ASCII (a check far faster than the search)
        return text
    return text.translate(DASHES) if _ANY_DASH.search(text) else text


def rule_text(text: str) -> str:
    """A page as the rules read it: dashes normalised (DASHES), and a word broken by a hyphen at a
    line end read both ways, since only a reader knows which was meant: kept ("attorney-\nclient"
    -> "attorney-client") and dropped ("psycho-\ntherapy" -> "psychotherapy"). A privilege or
    withholding rule must not miss a phrase because the text wrapped."""
    text = dashes(text)
    kept = LINE_END_HYPHEN.sub("-", text)
    if kept == text:
        return flat(text)
    return flat(kept) + "\n\n" + flat(LINE_END_HYPHEN.sub("", text))


def text_lines(text: str) -> list[str]:
    """The non-empty lines of a text, each flattened (the quotes made plain once for all of them:
    none of them breaks a line)."""
    return [line for line in (" ".join(raw.split()) for raw in _plain_quotes(text).splitlines()) if line]


def page_lines(raw: str) -> list[str]:
    """A page's non-empty lines, flattened, dashes normalised, with a word broken by a hyphen at a
    line end read both ways (kept and joined), as the rules read running text (rule_text)."""
    text = dashes(raw)
    out: dict[str, None] = {}
    for variant in dict.fromkeys((text, LINE_END_HYPHEN.sub("-", text), LINE_END_HYPHEN.sub("", text))):
        out.update(dict.fromkeys(text_lines(variant)))
    return list(out)


def lines_around(text: str, position: int, around: int = 3, reach: int = 400) -> str:
    """The lines within `around` of the one at `position` (at most `reach` characters either side)."""
    low = max(0, position - reach)
    before = text[low:position].split("\n")
    after = text[position:position + reach].split("\n")
    return "\n".join(before[-(around + 1):]) + "\n".join(after[:around + 1])


def is_title_line(line: str) -> bool:
    """Short, and not a sentence or a fragment of one: "NOTICE OF ACTION", "Re: Grievance resolution"."""
    return (len(line.split()) <= HEADING_MAX_WORDS and not line.endswith((".", ",", ";"))
            and not line[:1].islower())


def name_words(text: str) -> str:
    """File and folder names: underscores, dashes and dots count as spaces."""
    return flat(re.sub(r"[_.\-]+", " ", text))


def flat_offsets(raw: str, indexes: list[int]) -> list[int]:
    """Where each character raw[i] (not a space; `indexes` strictly ascending) stands in flat(raw).

    flat keeps every other character in order and turns each run of spaces into one space, none at
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


def raw_offset(raw: str, flat_text: str, index: int) -> int:
    """Where flat_text[index] (not a space; flat_text is flat(raw)) stands in raw: after as many
    characters that are not spaces as stand before it in flat_text (flat keeps those in order)."""
    before = index - flat_text.count(" ", 0, index)
    found = re.match(rf"(?:\s*\S){{{before}}}\s*", raw)
    return found.end() if found else len(raw)  # (flat_text not flat(raw): the end, where nothing is read)
