"""Fillable form fields for the mailings: AcroForm text fields, check boxes and signature lines.

Owns: how a form line of the letter markup (`::field`, `::check`, `::signature`) becomes a fillable
PDF field (reportlab `canvas.acroForm`) with its label, pre-filled with what the plan knows.
Must not: decide what a form asks or says (that is the template's), or draw anything but fields.

AcroForm fields use the standard PDF fonts, so their values are kept to Latin-1 (accents stay;
other characters are transliterated). Signatures are never fields: a person signs on the line,
which stands apart from all other language (Civ. 56.11).
"""

from __future__ import annotations

import unicodedata
from html import escape as html_escape

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, Paragraph

FIELD_FONT = "Helvetica"
TRANSLITERATE = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                 "\u2026": "...", "\u2022": "*"}


def text_xml(text: str) -> str:
    """`text` escaped for reportlab's Paragraph markup (&, <, > and both quotes)."""
    return html_escape(text)


def latin1(value: str) -> str:
    """AcroForm field values use the standard PDF fonts: keep Latin-1, transliterate the rest."""
    out = []
    for char in value:
        if ord(char) < 256:
            out.append(char)
            continue
        replacement = TRANSLITERATE.get(char)
        if replacement is None:
            decomposed = unicodedata.normalize("NFKD", char)
            replacement = "".join(c for c in decomposed if ord(c) < 256) or "?"
        out.append(replacement)
    return "".join(out)


class _FieldBase(Flowable):
    """A labelled AcroForm field; field names are made unique per document by the caller."""

    def __init__(self, name: str, label: str, st):
        super().__init__()
        self.name = name
        self.label_para = Paragraph(text_xml(label), ParagraphStyle("fl", parent=st.body, spaceAfter=0))
        self.st = st


class TextField(_FieldBase):
    def __init__(self, name: str, label: str, value: str, st, *, lines: int = 1):
        super().__init__(name, label, st)
        self.value = latin1(value or "")
        self.lines = lines
        self.box_height = st.base * 1.75 if lines == 1 else st.base * 1.35 * lines + st.base * 0.6

    def wrap(self, avail_width, avail_height):
        self.width = avail_width
        _, self.label_height = self.label_para.wrap(avail_width, avail_height)
        self.height = self.label_height + 2 + self.box_height + self.st.base * 0.45
        return self.width, self.height

    def draw(self):
        pad = self.st.base * 0.45
        self.label_para.drawOn(self.canv, 0, self.box_height + 2 + pad)
        self.canv.acroForm.textfield(
            name=self.name, value=self.value, x=0, y=pad, width=self.width, height=self.box_height,
            relative=True, fontName=FIELD_FONT, fontSize=self.st.base, borderWidth=0.8,
            borderColor=colors.black, fillColor=colors.white, textColor=colors.black,
            forceBorder=True, tooltip=self.label_para.text[:120],
            fieldFlags="multiline" if self.lines > 1 else "")


class CheckField(_FieldBase):
    def __init__(self, name: str, label: str, checked: bool, st):
        super().__init__(name, label, st)
        self.checked = checked
        self.size = st.base * 1.1

    def wrap(self, avail_width, avail_height):
        self.width = avail_width
        indent = self.size + self.st.base * 0.6
        _, h = self.label_para.wrap(avail_width - indent, avail_height)
        self.label_height = h
        self.height = max(h, self.size) + self.st.base * 0.45
        return self.width, self.height

    def draw(self):
        pad = self.st.base * 0.45
        indent = self.size + self.st.base * 0.6
        top = self.height
        self.label_para.drawOn(self.canv, indent, top - self.label_height)
        self.canv.acroForm.checkbox(
            name=self.name, checked=self.checked, x=0, y=top - self.size - 1, size=self.size, relative=True,
            buttonStyle="check", borderWidth=0.8, borderColor=colors.black, fillColor=colors.white,
            textColor=colors.black, forceBorder=True)
        del pad


class SignatureLine(_FieldBase):
    """A signature line set apart from all other language (Civ. 56.11), with a date field beside it."""

    def __init__(self, name: str, label: str, date_label: str, st):
        super().__init__(name, label, st)
        self.date_label = Paragraph(text_xml(date_label), ParagraphStyle("dl", parent=st.body, spaceAfter=0))

    def wrap(self, avail_width, avail_height):
        self.width = avail_width
        self.sig_width = avail_width * 0.62
        _, lh = self.label_para.wrap(self.sig_width, avail_height)
        _, dh = self.date_label.wrap(avail_width - self.sig_width - 18, avail_height)
        self.label_height = max(lh, dh)
        self.height = self.st.base * 2.8 + self.label_height + self.st.base * 0.8
        return self.width, self.height

    def draw(self):
        c = self.canv
        bottom = self.st.base * 0.8
        line_y = bottom + self.label_height + 3
        c.saveState()
        c.setStrokeColor(colors.black)
        c.setLineWidth(1)
        c.line(0, line_y, self.sig_width, line_y)
        c.line(self.sig_width + 18, line_y, self.width, line_y)
        c.restoreState()
        self.label_para.drawOn(c, 0, bottom)
        self.date_label.drawOn(c, self.sig_width + 18, bottom)
        c.acroForm.textfield(name=self.name + "_date", value="", x=self.sig_width + 18, y=line_y + 1,
                             width=self.width - self.sig_width - 18, height=self.st.base * 1.6,
                             relative=True, fontName=FIELD_FONT, fontSize=self.st.base, borderWidth=0,
                             fillColor=colors.white, textColor=colors.black)
