"""Print-ready PDF pages for mailings (reportlab platypus).

Owns: letter-size pages with a #10 window-envelope address block on a part's first page, "page x
of y" on every page, each part starting on an odd page (duplex), the DRAFT watermark, the body
fonts and paragraph styles, and markup blocks turned into flowables (including fillable fields).
Output bytes depend on the inputs alone.
Must not: choose what a mailing contains, or read templates or case folders.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Iterable

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (BaseDocTemplate, Flowable, Frame, KeepInFrame, KeepTogether, NextPageTemplate,
                                PageBreak, PageTemplate, Paragraph, Spacer, Table, TableStyle)
from reportlab.platypus.doctemplate import DocIf

from packet.mailings.forms import CheckField, SignatureLine, TextField, text_xml
from packet.mailings.markup import Block, Run

# ----------------------------------------------------------------------------------------------
# PDF layout (reportlab)
# ----------------------------------------------------------------------------------------------


PAGE_WIDTH, PAGE_HEIGHT = letter
MARGIN = 0.75 * inch  # office printers need at least 0.25in; we keep 0.75in (>= 0.5in)
BOTTOM_MARGIN = 0.9 * inch  # room for the footer
# Standard #10 window envelope: window 4.5in x 1.125in, 0.875in from the left edge; with a
# tri-fold letter the address block sits 2in below the top of the page.
WINDOW_LEFT = 0.875 * inch
WINDOW_TOP = 2.0 * inch
WINDOW_WIDTH = 4.5 * inch
WINDOW_HEIGHT = 1.125 * inch
RETURN_TOP = 0.55 * inch
FIRST_BODY_TOP = 3.45 * inch  # body text on page 1 starts below the window area

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
BODY_SIZE = 11
BOLD_SIZE = 12  # H&S 1368.02(b): the numbers and website in 12-point bold


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str


@lru_cache(maxsize=1)
def fonts() -> Fonts:
    """DejaVu Sans when installed (accents, Vietnamese, Cyrillic, Armenian), else Helvetica."""
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        pdfmetrics.registerFont(TTFont("PacketSans", str(regular)))
        pdfmetrics.registerFont(TTFont("PacketSans-Bold", str(bold)))
        pdfmetrics.registerFontFamily("PacketSans", normal="PacketSans", bold="PacketSans-Bold",
                                      italic="PacketSans", boldItalic="PacketSans-Bold")
        return Fonts("PacketSans", "PacketSans-Bold")
    return Fonts("Helvetica", "Helvetica-Bold")


@dataclass(frozen=True)
class Styles:
    base: int
    body: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    bullet: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    address: ParagraphStyle


@lru_cache(maxsize=4)
def styles(base: int = BODY_SIZE) -> Styles:
    f = fonts()
    lead = base * 1.32
    body = ParagraphStyle("body", fontName=f.regular, fontSize=base, leading=lead, spaceAfter=base * 0.6,
                          alignment=TA_LEFT)
    return Styles(
        base=base,
        body=body,
        h1=ParagraphStyle("h1", parent=body, fontName=f.bold, fontSize=base + 4, leading=(base + 4) * 1.25,
                          spaceBefore=base * 0.4, spaceAfter=base * 0.7, keepWithNext=1),
        h2=ParagraphStyle("h2", parent=body, fontName=f.bold, fontSize=base + 1, leading=(base + 1) * 1.3,
                          spaceBefore=base * 0.6, spaceAfter=base * 0.35, keepWithNext=1),
        bullet=ParagraphStyle("bullet", parent=body, leftIndent=base * 1.4, bulletIndent=base * 0.4,
                              spaceAfter=base * 0.3),
        small=ParagraphStyle("small", parent=body, fontSize=base - 2, leading=(base - 2) * 1.3,
                             spaceAfter=(base - 2) * 0.5),
        # The annotated list's body: at least 10 point (issue 15: the list is read by the member).
        cell=ParagraphStyle("cell", parent=body, fontSize=10, leading=12.4, spaceAfter=0),
        cell_bold=ParagraphStyle("cellb", parent=body, fontName=f.bold, fontSize=10, leading=12.4, spaceAfter=0),
        address=ParagraphStyle("address", parent=body, fontSize=11, leading=13, spaceAfter=0),
    )


def para_xml(runs: Iterable[Run], base: int) -> str:
    """Platypus Paragraph markup for runs, XML-escaped; bold runs in 12-point (or base) bold."""
    f = fonts()
    out = []
    for run in runs:
        text = text_xml(run.text).replace("\n", "<br/>")
        if run.bold:
            out.append(f'<font name="{f.bold}" size="{max(BOLD_SIZE, base)}">{text}</font>')
        else:
            out.append(text)
    return "".join(out)


class Rule(Flowable):
    def __init__(self, width_fraction: float = 1.0):
        super().__init__()
        self.fraction = width_fraction

    def wrap(self, avail_width, avail_height):
        self.width = avail_width * self.fraction
        self.height = 8
        return self.width, self.height

    def draw(self):
        self.canv.setLineWidth(0.6)
        self.canv.line(0, 4, self.width, 4)


@dataclass(frozen=True)
class Letterhead:
    """Page 1 of a mailing: plan return address above the #10 window, the recipient in the window."""

    plan_name: str
    return_address: tuple[str, ...]
    recipient: tuple[str, ...]  # name, then address lines


@dataclass(frozen=True)
class Part:
    """One part of a mailing; each part starts on an odd page (duplex printing).

    `make` returns fresh flowables for one layout (flowables keep layout state: never reuse them).
    """

    make: Callable[[], list]
    name: str = ""
    letterhead: Letterhead | None = None  # this part's first page is laid out for a window envelope
    footer_size: float = 9  # the authorization's pages use 14 (Civ. 56.11: nothing under 14-point)


@dataclass(frozen=True)
class PdfOptions:
    case_id: str
    page_label: str  # e.g. "Page {page} of {total}"
    blank_label: str  # "This page intentionally left blank."
    draft: bool = False
    title: str = ""
    author: str = ""
    subject: str = ""
    # Pages appended after this layout (the enclosed copies of the records): counted in "page x
    # of y", and the layout ends on an even page so that they start on a front page.
    extra_pages: int = 0


def blocks_to_flowables(blocks: Iterable[Block], st: Styles, *, field_prefix: str = "",
                        date_label: str = "Date", seen: set[str] | None = None) -> list:
    seen = set() if seen is None else seen
    out: list = []

    def unique(name: str) -> str:
        candidate = re.sub(r"[^A-Za-z0-9_.]", "_", f"{field_prefix}{name}") or "field"
        base, n = candidate, 2
        while candidate in seen:
            candidate = f"{base}_{n}"
            n += 1
        seen.add(candidate)
        return candidate

    pending_half: list = []

    def flush_half() -> None:
        if pending_half:
            cells = pending_half + [Spacer(1, 1)] * (2 - len(pending_half))
            row = Table([cells], colWidths=["50%", "50%"])
            row.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0),
                                     ("RIGHTPADDING", (0, 0), (0, -1), 8), ("RIGHTPADDING", (1, 0), (1, -1), 0),
                                     ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
                                     ("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))
            out.append(row)
            pending_half.clear()

    for block in blocks:
        if block.kind == "field" and block.args and block.args[0].endswith(":half"):
            name, label, value = (list(block.args) + ["", "", ""])[:3]
            pending_half.append(TextField(unique(name.partition(":")[0]), label, value, st))
            if len(pending_half) == 2:
                flush_half()
            continue
        flush_half()
        if block.kind == "signature" and out and not isinstance(out[-1], (PageBreak, Spacer)):
            # Keep the signature with the text just above it (never a signature alone on a page).
            name, label = (list(block.args) + ["", ""])[:2]
            previous = out.pop()
            content = list(previous._content) if isinstance(previous, KeepTogether) else [previous]
            out.append(KeepTogether(content + [SignatureLine(unique(name), label, date_label, st)]))
            continue
        if block.kind == "h1":
            out.append(Paragraph(para_xml(block.runs, st.base), st.h1))
        elif block.kind == "h2":
            out.append(Paragraph(para_xml(block.runs, st.base), st.h2))
        elif block.kind == "p":
            # Whole paragraphs only: a statute's wording (1368.02(b)) must not be cut by a page footer.
            out.append(KeepTogether([Paragraph(para_xml(block.runs, st.base), st.body)]))
        elif block.kind == "bullet":
            out.append(Paragraph(para_xml(block.runs, st.base), st.bullet, bulletText="\u2022"))
        elif block.kind == "pagebreak":
            out.append(PageBreak())
        elif block.kind == "space":
            out.append(Spacer(1, st.base))
        elif block.kind == "field":
            name, label, value = (list(block.args) + ["", "", ""])[:3]
            name, _, option = name.partition(":")
            out.append(TextField(unique(name), label, value, st, lines=4 if option == "tall" else 1))
        elif block.kind == "check":
            name, label, value = (list(block.args) + ["", "", ""])[:3]
            checked = value.strip().lower() in ("yes", "true", "x", "1", "sí", "si")
            out.append(CheckField(unique(name), label, checked, st))
        elif block.kind == "signature":
            name, label = (list(block.args) + ["", ""])[:2]
            out.append(SignatureLine(unique(name), label, date_label, st))
    flush_half()
    return out


def _draw_letterhead(canv, head: Letterhead) -> None:
    f = fonts()
    st = styles(BODY_SIZE)
    # Plan name at the right, return address at the left (shows in a double-window envelope).
    canv.saveState()
    canv.setFont(f.bold, 13)
    canv.drawRightString(PAGE_WIDTH - MARGIN, PAGE_HEIGHT - RETURN_TOP - 12, head.plan_name)
    canv.restoreState()
    ret_style = ParagraphStyle("ret", parent=st.address, fontSize=9, leading=10.5)
    ret = [Paragraph(text_xml(line), ret_style) for line in head.return_address]
    frame = Frame(WINDOW_LEFT, PAGE_HEIGHT - RETURN_TOP - 1.0 * inch, 3.4 * inch, 1.0 * inch,
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, showBoundary=0)
    frame.addFromList([KeepInFrame(3.4 * inch, 1.0 * inch, ret, mode="shrink")], canv)
    # Recipient: inside the 4.5 x 1.125in window with a small inset so no line touches its edge.
    inset = 0.08 * inch
    lines = [Paragraph(text_xml(line), st.address) for line in head.recipient]
    width, height = WINDOW_WIDTH - 2 * inset, WINDOW_HEIGHT - 2 * inset
    frame = Frame(WINDOW_LEFT + inset, PAGE_HEIGHT - WINDOW_TOP - WINDOW_HEIGHT + inset, width, height,
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, showBoundary=0)
    frame.addFromList([KeepInFrame(width, height, lines, mode="shrink", vAlign="TOP")], canv)


def _decorate(canv, doc, options: PdfOptions, footer_size: float = 9) -> None:
    """Everything on a page that does not need the page count: case id and DRAFT watermark.

    The "page x of y" label is drawn later, by `_PageCountCanvas.save`, in the same font and size
    (`footer_size`, remembered on the canvas for this page) at the same place.
    """
    f = fonts()
    canv.footer_size = footer_size
    canv.saveState()
    canv.setFont(f.regular, footer_size)
    canv.setFillColor(colors.black)
    canv.drawString(MARGIN, 0.5 * inch, options.case_id)
    canv.restoreState()
    if options.draft:
        canv.saveState()
        canv.setFont(f.bold, 110)
        canv.setFillColor(colors.Color(0.6, 0.6, 0.6, alpha=0.35))
        canv.translate(PAGE_WIDTH / 2, PAGE_HEIGHT / 2)
        canv.rotate(45)
        canv.drawCentredString(0, -40, "DRAFT")
        canv.restoreState()


def _draw_page_label(canv, label: str, page: int, total: int, footer_size: float) -> None:
    """The page label ("Page x of y"), centred at the foot of the page.

    It is not laid out in a frame: a total with more digits than the page number never moves
    anything else on the page.
    """
    canv.saveState()
    canv.setFont(fonts().regular, footer_size)
    canv.setFillColor(colors.black)
    canv.drawCentredString(PAGE_WIDTH / 2, 0.5 * inch, label.format(page=page, total=total or "?"))
    canv.restoreState()


class _PageCountCanvas(Canvas):
    """A canvas that holds every finished page until the document ends, so that each page's
    "page x of y" can be drawn with the final total in a single layout pass.

    `showPage` keeps the page's state (its content stream, annotations, page number, footer size)
    instead of writing it; `save` draws the label on each kept page and writes the pages in order.
    The document's page counter still advances on every kept page, so a form field's /P entry
    refers to the page the field is on.
    """

    def __init__(self, *args, page_label: str = "", extra_pages: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.footer_size: float = 9
        self._kept_pages: list[dict[str, Any]] = []
        self._page_label = page_label
        self._extra_pages = extra_pages

    def showPage(self):
        self._kept_pages.append({k: v for k, v in self.__dict__.items() if k != "_kept_pages"})
        self._doc.pageCounter += 1
        self._startPage()

    def save(self):
        kept = self._kept_pages
        total = len(kept) + self._extra_pages
        self._doc.pageCounter -= len(kept)
        for state in kept:
            self.__dict__.update(state)
            _draw_page_label(self, self._page_label, self._pageNumber, total, self.footer_size)
            super().showPage()
        self._kept_pages = []
        super().save()


class _IfOnOddPage(DocIf):
    """`DocIf("doc.page % 2 == 1", then)` without the expression: reportlab evaluates a DocIf's
    condition with its safe evaluator, which calls inspect.stack() (every frame's source file and
    lines) each time; 6% of a small case's seal in a test process went there."""

    def __init__(self, then: list):
        super().__init__("doc.page % 2 == 1", then)

    def funcWrap(self, avail_width, avail_height):
        return self._doctemplateAttr("page") % 2 == 1


class _BlankPage(Flowable):
    """The text of a page left blank so the next part starts on an odd (front) page."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def wrap(self, avail_width, avail_height):
        self.width, self.height = avail_width, avail_height * 0.5
        return self.width, self.height

    def draw(self):
        self.canv.setFont(fonts().regular, 10)
        self.canv.drawCentredString(self.width / 2, 0, self.text)


def build_pdf(parts: list[Part], options: PdfOptions) -> bytes:
    """Lay out the parts in one pass; every page says "page x of y". Deterministic bytes.

    Each part starts on an odd page: when the previous part ends on an odd page, a page saying it
    is intentionally blank is inserted. A part with a letterhead gets the window-envelope layout on
    its first page. The page count is known only when the layout ends: `_PageCountCanvas` holds
    the pages and draws their page labels then (nothing on a page depends on the total).
    """
    buffer = io.BytesIO()
    doc = BaseDocTemplate(buffer, pagesize=letter, leftMargin=MARGIN, rightMargin=MARGIN,
                          topMargin=MARGIN, bottomMargin=BOTTOM_MARGIN, invariant=1,
                          title=options.title, author=options.author, subject=options.subject,
                          creator="imr-packet", producer="imr-packet", lang="",
                          initialFontName=fonts().regular)
    body_width = PAGE_WIDTH - 2 * MARGIN

    def full_frame():
        return Frame(MARGIN, BOTTOM_MARGIN, body_width, PAGE_HEIGHT - MARGIN - BOTTOM_MARGIN,
                     leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)

    def first_frame():
        return Frame(MARGIN, BOTTOM_MARGIN, body_width, PAGE_HEIGHT - FIRST_BODY_TOP - BOTTOM_MARGIN,
                     leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)

    def on_later(canv, d):
        _decorate(canv, d, options)

    def on_large(canv, d):
        _decorate(canv, d, options, footer_size=14)

    def on_head(head):
        def draw(canv, d):
            _draw_letterhead(canv, head)
            _decorate(canv, d, options)
        return draw

    later = PageTemplate("later", [full_frame()], onPage=on_later)
    large = PageTemplate("large", [full_frame()], onPage=on_large)
    heads = [PageTemplate(f"head{i}", [first_frame()], onPage=on_head(part.letterhead))
             for i, part in enumerate(parts) if part.letterhead is not None]
    if parts and parts[0].letterhead is not None:
        doc.addPageTemplates([heads[0], later, large] + heads[1:])
    else:
        doc.addPageTemplates([later, large] + heads)
    story: list = []
    for index, part in enumerate(parts):
        body_template = "large" if part.footer_size > 9 else "later"
        template = f"head{index}" if part.letterhead is not None else body_template
        if index:
            # Previous part ended on an odd page: add a blank back page first (duplex).
            story.append(_IfOnOddPage([PageBreak(), _BlankPage(options.blank_label)]))
            story.append(NextPageTemplate(template))
            story.append(PageBreak())
        story.append(NextPageTemplate(body_template))
        story.extend(part.make())
        story.append(NextPageTemplate("later"))
    if options.extra_pages:
        story.append(_IfOnOddPage([PageBreak(), _BlankPage(options.blank_label)]))
    doc.build(story, canvasmaker=partial(_PageCountCanvas, page_label=options.page_label,
                                         extra_pages=options.extra_pages))
    return buffer.getvalue()
