"""A Spanish mailing carries no English: the check that fails the build when it would.

Owns: the English phrases of the English templates (every sentence or phrase of three words or
more in `templates/en/*.md.j2` and `en/labels.toml`, template code and variables left out; a
phrase of five words or more is found by any five of its words in a row, so a copied half
sentence is found too), and `check_no_english`, which raises TemplateError naming the first
English phrase found in the texts of a Spanish mailing. Postal addresses are left out of the
check (DMHC's "Help Center" must stay as the post office knows it). Texts are checked as laid out, before the PDF is drawn: the blocks
of every letter and form, the list's labels, the return address.
Must not: translate anything (Spanish wording comes from templates/es and the [names] table of
es/labels.toml, which compliance staff edit), or check the member's own data (names, addresses)
or the documents' titles and authors.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from packet.errors import TemplateError

MIN_WORDS = 3
MIN_LETTERS = 8
SHINGLE = 5  # a longer phrase is matched by any five of its words in a row: a copied part of it
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_JINJA_TAG = re.compile(r"\{%.*?%\}", re.S)
_JINJA_VALUE = re.compile(r"\{\{.*?\}\}|\{[a-z_]+\}", re.S)
_BREAKS = re.compile(r"[\x00\n.;:!?()\"\u201c\u201d|*]+")
_MARKUP_HEAD = re.compile(r"^\s*(?:#+|-|::\w+\s+[\w.:]+)\s*", re.M)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def words(text: str) -> tuple[str, ...]:
    return tuple(match.group(0).lower() for match in _WORD.finditer(text.replace("\\", "")))


def _fragments(text: str) -> set[tuple[str, ...]]:
    text = _JINJA_COMMENT.sub("\x00", text)
    text = _JINJA_TAG.sub("\x00", text)
    text = _JINJA_VALUE.sub("\x00", text)
    text = _MARKUP_HEAD.sub("\x00", text)
    out = set()
    for piece in _BREAKS.split(text):
        phrase = words(piece)
        if len(phrase) >= MIN_WORDS and sum(len(word) for word in phrase) >= MIN_LETTERS:
            out.add(phrase)
    return out


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _language_text(folder: Path, language: str) -> str:
    parts = [path.read_text(encoding="utf-8") for path in sorted((folder / language).glob("*.md.j2"))]
    labels = folder / language / "labels.toml"
    if labels.is_file():
        with open(labels, "rb") as handle:
            parts.extend(_strings(tomllib.load(handle)))
    return "\n".join(parts)


@lru_cache(maxsize=8)
def english_phrases(folder: str) -> tuple[frozenset[tuple[str, ...]], frozenset[tuple[str, ...]]]:
    """The English templates' short phrases (matched whole) and the five-word runs of the longer
    ones. Left out: the names es/labels.toml lists as staying English (`english_names`, e.g. the
    agency's own name in brackets), and runs with a number that the Spanish templates print too
    (an address such as the Office for Civil Rights'). An English sentence copied into a Spanish
    template is still found: it is prose, not a name or an address."""
    short, runs = set(), set()
    for phrase in _fragments(_language_text(Path(folder), "en")):
        if len(phrase) < SHINGLE:
            short.add(phrase)
        else:
            runs.update(phrase[i:i + SHINGLE] for i in range(len(phrase) - SHINGLE + 1))
    spanish = words(_language_text(Path(folder), "es"))
    shared = {spanish[i:i + size] for size in {len(p) for p in short} | {SHINGLE}
              for i in range(len(spanish) - size + 1)}
    kept_names = [words(name) for name in _english_names(Path(folder))]

    def kept(phrase: tuple[str, ...]) -> bool:
        if phrase in shared and any(any(c.isdigit() for c in word) for word in phrase):
            return False
        text = " " + " ".join(phrase) + " "
        return not any(" " + " ".join(name) + " " in text or " ".join(phrase) in " ".join(name)
                       for name in kept_names)
    return frozenset(filter(kept, short)), frozenset(filter(kept, runs))


def _english_names(folder: Path) -> list[str]:
    labels = folder / "es" / "labels.toml"
    if not labels.is_file():
        return []
    with open(labels, "rb") as handle:
        return [str(name) for name in tomllib.load(handle).get("english_names", [])]


def english_found(texts: Iterable[str], folder: Path, allowed: Iterable[str] = ()) -> list[str]:
    """The English phrases found in `texts`, once each. `allowed` strings (postal addresses, which
    must stay as the post office knows them) are taken out of the texts first."""
    short, runs = english_phrases(str(folder))
    allowed_words = [words(text) for text in allowed if words(text)]
    found = set()
    for text in texts:
        tokens = list(words(text))
        for allowed_run in allowed_words:
            tokens = _without(tokens, allowed_run)
        for size in {len(phrase) for phrase in short} | {SHINGLE}:
            for i in range(len(tokens) - size + 1):
                window = tuple(tokens[i:i + size])
                if window in short or window in runs:
                    found.add(" ".join(window))
    return sorted(found)


def _without(tokens: list[str], run: tuple[str, ...]) -> list[str]:
    out, i, size = [], 0, len(run)
    while i < len(tokens):
        if tuple(tokens[i:i + size]) == run:
            out.append("\x00")  # a break: no phrase spans an allowed string
            i += size
        else:
            out.append(tokens[i])
            i += 1
    return out


def check_no_english(texts: Iterable[str], folder: Path, what: str, allowed: Iterable[str] = ()) -> None:
    """Fail the build when a Spanish mailing carries a phrase of the English templates."""
    found = english_found(texts, folder, allowed)
    if found:
        raise TemplateError(f"the Spanish {what} carries English template text: {found[0]!r}"
                            + (f" and {len(found) - 1} more" if len(found) > 1 else "")
                            + " (translate it in templates/es; a configured name goes in es/labels.toml [names],"
                            " a relationship in [relationships])", reason="english_in_spanish")


def label_texts(labels: dict[str, Any]) -> list[str]:
    """Every short text of a labels.toml a mailing may print (table heads, slip-sheet words, the
    neutral descriptions), but the names the Spanish labels list as staying English."""
    return list(_strings({key: value for key, value in labels.items() if key != "english_names"}))


def block_texts(blocks) -> list[str]:
    """What a member reads in markup blocks: each block's text and its form labels and values."""
    out = []
    for block in blocks:
        out.append(block.text)
        out.extend(block.args[1:3])
    return out


def postal_addresses(config, facts) -> list[str]:
    """What stays as written in any language: the addresses the post office reads, the plan's and
    the people's names, and the case's own facts as the clerk wrote them."""
    people = [person for person in (facts.member, facts.provider, facts.representative) if person is not None]
    return [*config.dmhc.address, *config.imr_organization.address, config.plan.name,
            *(person.name for person in people), *(line for person in people for line in person.mailing_address),
            facts.disputed_service]
