"""The small letter markup that templates render to, and its parser.

Owns: escaping member data on its way into the markup (`escape_markup`, jinja's `finalize`) and
parsing the markup into blocks of runs (`parse_markup`). One block per paragraph:
  `# Heading`, `## Subheading`, `- bullet`, plain lines (joined into a paragraph until a blank
  line), `| line` (kept as separate lines: addresses), `**bold**` inside a line (printed 12-point
  bold: H&S 1368.02(b)), `::pagebreak`, `::space`, and form lines `::field id | label | value`,
  `::check id | label | yes`, `::signature id | label`. A member called `A*B | C` cannot start a
  bold run or a new field.
Must not: lay anything out, or know what a letter says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MARKUP_SPECIALS = "\\*|"


def escape_markup(value: Any) -> str:
    """Make a value safe to put inside the letter markup (jinja `finalize`)."""
    if value is None:
        return ""
    text = str(value)
    text = re.sub(r"[\r\n\t]+", " ", text)
    out = []
    for char in text:
        if char in MARKUP_SPECIALS:
            out.append("\\" + char)
        else:
            out.append(char)
    text = "".join(out)
    if text[:1] in ("#", "-", ":"):
        text = "\\" + text
    return text


@dataclass(frozen=True)
class Run:
    text: str
    bold: bool = False


@dataclass(frozen=True)
class Block:
    kind: str  # h1 | h2 | p | bullet | field | check | signature | pagebreak | space
    runs: tuple[Run, ...] = ()
    args: tuple[str, ...] = ()  # field / check / signature: id, label, value (unescaped)

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_inline(text: str) -> tuple[Run, ...]:
    """Split a line on unescaped `**` into plain and bold runs, removing escapes."""
    runs: list[Run] = []
    buf: list[str] = []
    bold = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            buf.append(text[i + 1])
            i += 2
            continue
        if text.startswith("**", i):
            if buf:
                runs.append(Run("".join(buf), bold))
                buf = []
            bold = not bold
            i += 2
            continue
        buf.append(char)
        i += 1
    if buf:
        runs.append(Run("".join(buf), bold))
    return tuple(runs)


def _split_args(text: str) -> list[str]:
    parts, buf, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            buf.append(text[i:i + 2])
            i += 2
            continue
        if text[i] == "|":
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(text[i])
        i += 1
    parts.append("".join(buf).strip())
    return parts


def parse_markup(text: str) -> tuple[Block, ...]:
    blocks: list[Block] = []
    para: list[str] = []
    para_kind = "p"

    def flush() -> None:
        nonlocal para, para_kind
        if para and para_kind == "lines":
            runs: list[Run] = []
            for index, line in enumerate(para):
                if index:
                    runs.append(Run("\n"))
                runs.extend(parse_inline(line))
            blocks.append(Block("p", tuple(runs)))
        elif para:
            blocks.append(Block(para_kind, parse_inline(" ".join(para))))
        para, para_kind = [], "p"

    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        if stripped.startswith("::"):
            flush()
            head, _, rest = stripped[2:].partition(" ")
            args = tuple(_unescape(a) for a in _split_args(rest)) if rest.strip() else ()
            if head in ("pagebreak", "space"):
                blocks.append(Block(head))
            elif head in ("field", "check", "signature"):
                blocks.append(Block(head, parse_inline(args[1]) if len(args) > 1 else (), args))
            else:
                raise ValueError(f"unknown markup command ::{head}")
            continue
        if stripped.startswith("## "):
            flush()
            blocks.append(Block("h2", parse_inline(stripped[3:])))
            continue
        if stripped.startswith("# "):
            flush()
            blocks.append(Block("h1", parse_inline(stripped[2:])))
            continue
        if stripped.startswith("- "):
            flush()
            para, para_kind = [stripped[2:]], "bullet"
            continue
        if stripped == "|" or stripped.startswith("| "):
            # A block of short lines kept as separate lines (addresses, reference lines).
            if para_kind != "lines":
                flush()
                para_kind = "lines"
            para.append(stripped[2:])
            continue
        if para_kind == "lines":
            flush()
        para.append(stripped)
    flush()
    return tuple(blocks)
