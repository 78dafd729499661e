"""Right-to-left text (Arabic, Persian) laid out for reportlab, which has no bidi algorithm.

Owns: `RtlParagraph`, a flowable that breaks a right-to-left text into lines in logical order
(so the first words are on the first line), shapes each line into Arabic presentation forms
(arabic-reshaper: initial, medial, final and isolated letter forms, lam-alef ligatures), puts it
in visual order with the Unicode bidi algorithm (python-bidi's reference implementation, which
mirrors brackets), and sets it right-aligned. Numbers and Latin words keep their left-to-right
order: each left-to-right run (a phone number, "(TTY: 711)") is enclosed in left-to-right marks
first, else the algorithm would print 1-800-555-0100 as 0100-555-800-1 after an Arabic word, or
turn the closing bracket of "(TTY: 711)" around (the reference implementation predates the bracket
pairs of UBA 6.3). `rtl_drawable` says whether a font draws
every glyph a text needs (else the caller prints its fallback line).
Must not: choose fonts or texts.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape

import arabic_reshaper
from bidi.algorithm import get_display
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph

LRM = "\u200e"
# Invisible controls: they steer the algorithm and the reshaper, then are dropped (no glyph).
CONTROLS = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# A left-to-right run: a number with separators ("1-800-555-0100", "711"), Latin words, and a
# bracket that opens on one ("(TTY: 711)"); it ends on a letter, a digit or a closing bracket.
LTR_RUN = re.compile(r"\(?[0-9A-Za-z][0-9A-Za-z().:,\-\u00a0 ]*[0-9A-Za-z)]|\(?[0-9A-Za-z]\)?")


def mark_numbers(text: str) -> str:
    """Enclose each left-to-right run in left-to-right marks, so it keeps its written order.

    A closing bracket belongs to the run only when the run opened it: in "(رقم: 711)" the
    bracket closes a right-to-left phrase and stays outside.
    """
    def mark(match: re.Match) -> str:
        run, rest = match.group(0), ""
        while run.endswith(")") and run.count(")") > run.count("("):
            run, rest = run[:-1], ")" + rest
        return LRM + run + LRM + rest
    return LTR_RUN.sub(mark, text)


@lru_cache(maxsize=256)
def visual_line(logical: str) -> str:
    """One line of right-to-left text as it is drawn left to right: shaped, reordered, mirrored."""
    shaped = arabic_reshaper.reshape(mark_numbers(logical))
    return CONTROLS.sub("", get_display(shaped, base_dir="R"))


def rtl_drawable(text: str, font_name: str) -> bool:
    """Does the font hold every glyph the shaped text needs?"""
    glyphs = pdfmetrics.getFont(font_name).face.charToGlyph
    return all(ord(char) in glyphs or char == " " for char in visual_line(text))


class RtlParagraph(Flowable):
    """A right-to-left paragraph: lines broken in logical order, each drawn in visual order."""

    def __init__(self, text: str, style: ParagraphStyle):
        super().__init__()
        self.text = " ".join(text.split())
        self.style = ParagraphStyle(f"{style.name}-rtl", parent=style, alignment=TA_RIGHT)
        self._para: Paragraph | None = None

    def lines(self, width: float) -> list[str]:
        font, size = self.style.fontName, self.style.fontSize
        lines: list[str] = []
        current: list[str] = []
        for word in self.text.split(" "):
            trial = " ".join(current + [word])
            if current and stringWidth(visual_line(trial), font, size) > width:
                lines.append(" ".join(current))
                current = [word]
            else:
                current.append(word)
        if current:
            lines.append(" ".join(current))
        return lines

    def wrap(self, avail_width, avail_height):
        visual = [escape(visual_line(line), quote=False) for line in self.lines(avail_width)]
        self._para = Paragraph("<br/>".join(visual), self.style)
        self.width, self.height = self._para.wrap(avail_width, avail_height)
        return self.width, self.height

    def getSpaceAfter(self):
        return self.style.spaceAfter

    def getSpaceBefore(self):
        return self.style.spaceBefore

    def draw(self):
        self._para.drawOn(self.canv, 0, 0)
