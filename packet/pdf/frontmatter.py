"""Pages of the IMR-organization packet that the service draws itself (reportlab only).

Owns: the cover sheet, the index (and how many pages it takes, `estimate_front_pages`), the
category dividers, and the stamps of every output page (Bates label, privileged mark, DRAFT watermark) as PDF content
operators (`stamp_operators`), plus the stamp geometry (how tall the margin strips are, how large
the label is on a page of a given size) that `packet.pdf.stamp` uses to shrink page content out of
the way. (Copy sets' slip sheets are drawn by `packet.mailings.copies`.)
Must not: read, merge or modify existing PDFs (that is `packet.pdf.builder` and `packet.pdf.stamp`), decide categories or privilege, or compute deadlines. Every output is drawn with
`invariant=1` so the same inputs give the same bytes; stamp operators are plain text built from
the inputs alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import (BaseDocTemplate, Flowable, Frame, KeepTogether, PageBreak, PageTemplate, Paragraph,
                                Spacer, Table, TableStyle)

from packet.model.context import BuildContext
from packet.model.models import CATEGORY_DESCRIPTIONS, CATEGORY_ORDER, CATEGORY_TITLES, NEEDS_REVIEW, PRIVILEGED_MARK
from packet.model.pagelist import PageList, PlacedDocument

# --- fonts -------------------------------------------------------------------------------------
# Cover, index, dividers and slips carry people's names and document titles, which may hold any
# character: DejaVu Sans (Makefile: fonts-dejavu-core) covers far more than the standard 14 fonts.
# Stamps are ASCII (case ids are validated) and use Helvetica, which needs no embedding.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
STAMP_FONT = "Helvetica"
STAMP_FONT_BOLD = "Helvetica-Bold"


def _register_fonts() -> tuple[str, str]:
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        if "ImrSans" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("ImrSans", str(regular)))
            pdfmetrics.registerFont(TTFont("ImrSans-Bold", str(bold)))
        return "ImrSans", "ImrSans-Bold"
    return "Helvetica", "Helvetica-Bold"


BODY_FONT, BODY_FONT_BOLD = _register_fonts()

# --- stamp geometry ----------------------------------------------------------------------------
LETTER_SHORT, LETTER_LONG = 612.0, 792.0
BATES_SIZE = 9.0  # points, on a page that prints at its own size
MARK_SIZE = 8.0  # the privileged mark, before shrinking to fit a narrow page
MIN_MARK_SIZE = 4.0
STRIP_FACTOR = 2.2  # strip height / font size: room above and below the text
FIT_THRESHOLD = 0.75  # pages that print at less than this fraction of their size get bigger stamps
RED = colors.Color(0.78, 0.0, 0.0)


@dataclass(frozen=True)
class StampGeometry:
    """Where the stamps of one page go, in the page's displayed (upright) coordinates."""

    unit: float  # 1.0 for ordinary pages; larger for huge pages so a fit-to-letter print stays legible
    bates_size: float  # font size of the Bates label
    mark_size: float  # font size of the privileged mark (0 when the page is not privileged)
    bottom: float  # height of the bottom strip kept free of page content
    top: float  # height of the top strip kept free of page content

    def content_box(self, width: float, height: float) -> tuple[float, float, float, float]:
        """The rectangle (x0, y0, x1, y1) the page's original content is shrunk into."""
        scale = self.scale(height)
        dx = (width - width * scale) / 2
        return (dx, self.bottom, dx + width * scale, self.bottom + height * scale)

    def scale(self, height: float) -> float:
        free = height - self.bottom - self.top
        return 1.0 if free >= height else max(free / height, 0.05)


def stamp_unit(width: float, height: float, user_unit: float = 1.0) -> float:
    """How much larger than on a letter page the stamps are drawn, so that a page printed
    fit-to-letter still shows a label of about BATES_SIZE points. Pages that print near their
    own size (letter, A4, legal, landscape, small pages) get unit 1: the same physical size.
    `user_unit` is the page's /UserUnit (its user-space unit in points); the result is in user units."""
    user_unit = user_unit if user_unit > 0 else 1.0
    short, long_ = sorted((max(width * user_unit, 1.0), max(height * user_unit, 1.0)))
    fit = min(LETTER_SHORT / short, LETTER_LONG / long_)
    return (1.0 if fit >= FIT_THRESHOLD else 1.0 / fit) / user_unit


def stamp_geometry(width: float, height: float, *, bates: str | None, privileged: bool,
                   user_unit: float = 1.0) -> StampGeometry:
    unit = stamp_unit(width, height, user_unit)
    margin = 12 * unit
    bates_size = 0.0
    if bates:
        bates_size = BATES_SIZE * unit
        natural = pdfmetrics.stringWidth(bates, STAMP_FONT, bates_size)
        if natural > width - 2 * margin:  # a very narrow page: shrink the label to fit its width
            bates_size = max(bates_size * (width - 2 * margin) / natural, 2.0)
    mark_size = 0.0
    if privileged:
        mark_size = MARK_SIZE * unit
        natural = pdfmetrics.stringWidth(PRIVILEGED_MARK, STAMP_FONT_BOLD, mark_size)
        if natural > width - 2 * margin:
            mark_size = max(mark_size * (width - 2 * margin) / natural, min(MIN_MARK_SIZE * unit, mark_size))
    return StampGeometry(unit=unit, bates_size=bates_size, mark_size=mark_size,
                         bottom=bates_size * STRIP_FACTOR, top=mark_size * STRIP_FACTOR)


@dataclass(frozen=True)
class StampSpec:
    """What the overlay draws on one output page (size in points, upright)."""

    width: float
    height: float
    bates: str | None = None  # the Bates label (or a slip sheet's Bates range)
    privileged: bool = False
    draft: bool = False
    user_unit: float = 1.0  # the target page's /UserUnit

    @functools.cached_property
    def geometry(self) -> StampGeometry:  # computed once per page: assembly and the operators both need it
        return stamp_geometry(self.width, self.height, bates=self.bates, privileged=self.privileged,
                              user_unit=self.user_unit)

    @property
    def empty(self) -> bool:
        return not (self.bates or self.privileged or self.draft)


# The stamps are written as PDF content operators directly (no reportlab canvas, no overlay file
# to parse back): a 1,000-page packet needs 1,000 small streams, and drawing them through a
# canvas and re-reading its pages cost more than all the rest of the stamping. `packet.pdf.stamp`
# puts each page's operators in a form XObject whose resources name these fonts and graphics state.
STAMP_FONT_RESOURCE = "/ImrF1"  # STAMP_FONT (Helvetica, WinAnsiEncoding, not embedded)
STAMP_FONT_BOLD_RESOURCE = "/ImrF2"  # STAMP_FONT_BOLD
WATERMARK_ALPHA_RESOURCE = "/ImrGS1"  # stroke alpha of the DRAFT watermark
WATERMARK_ALPHA = 0.25
WATERMARK_XOBJECT = "/ImrDraft"  # the DRAFT watermark of a page size, drawn by the stamp form


def _n(value: float) -> str:
    """A number as PDF content wants it: short, no exponent, no negative zero."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _pdf_string(text: str) -> str:
    """A literal string in WinAnsiEncoding (the stamp fonts' encoding), ASCII-only with escapes."""
    out = []
    for byte in text.encode("cp1252", "replace"):
        if byte in b"()\\":
            out.append("\\" + chr(byte))
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return "(" + "".join(out) + ")"


def _text_op(font: str, size: float, x: float, y: float, text: str) -> str:
    return f"BT {font} {_n(size)} Tf {_n(x)} {_n(y)} Td {_pdf_string(text)} Tj ET\n"


def stamp_operators(spec: StampSpec) -> bytes:
    """The content operators of one page's stamps, in the page's upright coordinates.

    Draws what the page gets, in this order: the DRAFT watermark (by invoking WATERMARK_XOBJECT,
    see `watermark_operators`) and the small "DRAFT" text, the Bates label on a white box at the
    bottom right, the privileged mark centred at the top in red. Text uses only the two stamp
    fonts, so its text is readable by pdftotext and by `packet.pdf.inspect.pdf_summary`.
    """
    geo = spec.geometry
    width, height = spec.width, spec.height
    ops: list[str] = []
    if spec.draft:
        ops.append(f"q {WATERMARK_XOBJECT} Do Q\n")
        ops.append("0.35 0.35 0.35 rg\n")
        if spec.bates:
            ops.append(_text_op(STAMP_FONT_BOLD_RESOURCE, geo.bates_size, 12 * geo.unit, geo.bottom * 0.32, "DRAFT"))
        else:
            ops.append(_text_op(STAMP_FONT_BOLD_RESOURCE, BATES_SIZE * geo.unit, 12 * geo.unit,
                                height - 20 * geo.unit, "DRAFT"))
        ops.append("0 0 0 rg\n")
    if spec.bates:
        # Bottom right, inside the bottom strip that packet.pdf.stamp keeps free of content.
        margin = 12 * geo.unit
        text_width = pdfmetrics.stringWidth(spec.bates, STAMP_FONT, geo.bates_size)
        x = max(width - margin - text_width, 1.0)
        y = geo.bottom * 0.32
        ops.append(f"1 1 1 rg {_n(x - 2 * geo.unit)} {_n(y - geo.bates_size * 0.3)} "
                   f"{_n(text_width + 4 * geo.unit)} {_n(geo.bates_size * 1.3)} re f\n")
        ops.append("0 0 0 rg\n")
        ops.append(_text_op(STAMP_FONT_RESOURCE, geo.bates_size, x, y, spec.bates))
    if spec.privileged:
        mark_width = pdfmetrics.stringWidth(PRIVILEGED_MARK, STAMP_FONT_BOLD, geo.mark_size)
        ops.append(f"{_n(RED.red)} {_n(RED.green)} {_n(RED.blue)} rg\n")
        ops.append(_text_op(STAMP_FONT_BOLD_RESOURCE, geo.mark_size, width / 2 - mark_width / 2,
                            height - geo.top * 0.68, PRIVILEGED_MARK))
        ops.append("0 0 0 rg\n")
    return "".join(ops).encode("ascii")


# "Page x of y" on a mailing's enclosed pages: 9 pt, its right end half an inch from the page's right
# edge and its baseline 0.3 inch below the top, in the strip the copies keep free of content.
CORNER_LABEL_SIZE = 9.0


def corner_label_operators(text: str, left: float, bottom: float, width: float, height: float) -> bytes:
    """The content operators of a label at the top right of a page whose media box is (left,
    bottom, width, height), in the stamp font (STAMP_FONT_RESOURCE), black."""
    text_width = pdfmetrics.stringWidth(text, STAMP_FONT, CORNER_LABEL_SIZE)
    x = left + width - 0.5 * inch - text_width
    y = bottom + height - 0.3 * inch
    return ("0 g\n" + _text_op(STAMP_FONT_RESOURCE, CORNER_LABEL_SIZE, x, y, text)).encode("ascii")


def stamp_font_encodes(text: str) -> bool:
    """Whether the stamp fonts (WinAnsiEncoding) can print every character of `text`."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def watermark_operators(width: float, height: float) -> bytes:
    """The diagonal DRAFT watermark of a page of this size, as stroked outlines (no text), drawn
    with the graphics state WATERMARK_ALPHA_RESOURCE (stroke alpha WATERMARK_ALPHA)."""
    diagonal = math.hypot(width, height)
    size = 0.6 * diagonal / (len(_DRAFT_LETTERS) * _DRAFT_ADVANCE)  # letter height
    angle = math.atan2(height, width)
    cos, sin = math.cos(angle), math.sin(angle)
    shift_x = -size * (len(_DRAFT_LETTERS) * _DRAFT_ADVANCE - 0.3) / 2
    ops = [f"q {WATERMARK_ALPHA_RESOURCE} gs 0.55 0.55 0.55 RG {_n(size * 0.16)} w 1 J 1 j\n",
           f"1 0 0 1 {_n(width / 2)} {_n(height / 2)} cm {_n(cos)} {_n(sin)} {_n(-sin)} {_n(cos)} 0 0 cm "
           f"1 0 0 1 {_n(shift_x)} {_n(-size / 2)} cm\n"]
    for index, strokes in enumerate(_DRAFT_LETTERS):
        left = index * _DRAFT_ADVANCE
        for stroke in strokes:
            (x, y), rest = stroke[0], stroke[1:]
            ops.append(f"{_n((left + x) * size)} {_n(y * size)} m\n")
            for point in rest:
                if point[0] == "c":
                    (x1, y1), (x2, y2), (x3, y3) = point[1:]
                    ops.append(f"{_n((left + x1) * size)} {_n(y1 * size)} {_n((left + x2) * size)} {_n(y2 * size)} "
                               f"{_n((left + x3) * size)} {_n(y3 * size)} c\n")
                else:
                    ops.append(f"{_n((left + point[0]) * size)} {_n(point[1] * size)} l\n")
    ops.append("S Q\n")
    return "".join(ops).encode("ascii")


# Stroke outlines of the letters D R A F T in a 0.8 x 1 cell. The diagonal watermark is drawn as
# vector strokes, not text, so text extraction (pdftotext, verify) is not interleaved with it; a
# small text "DRAFT" in a margin says the same to text tools.
_DRAFT_LETTERS = (
    (((0, 0), (0, 1), (0.4, 1), ("c", (0.85, 1), (0.85, 0), (0.4, 0)), (0, 0)),),
    (((0, 0), (0, 1), (0.45, 1), ("c", (0.85, 1), (0.85, 0.5), (0.45, 0.5)), (0, 0.5)),
     ((0.4, 0.5), (0.8, 0))),
    (((0, 0), (0.4, 1), (0.8, 0)), ((0.16, 0.4), (0.64, 0.4))),
    (((0.75, 1), (0, 1), (0, 0)), ((0, 0.52), (0.6, 0.52))),
    (((0, 1), (0.8, 1)), ((0.4, 1), (0.4, 0))),
)
_DRAFT_ADVANCE = 1.1  # letter advance, in cell heights


# --- text helpers ------------------------------------------------------------------------------
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def format_date(value: dt.date | None) -> str:
    if value is None:
        return "undated"
    return f"{_MONTHS[value.month - 1][:3]} {value.day}, {value.year}"


def format_datetime(value: dt.datetime, tz) -> str:
    """'Monday, November 30, 2026, 4:10 PM PST' in the plan's time zone (locale-independent)."""
    local = value.astimezone(tz)
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return (f"{days[local.weekday()]}, {_MONTHS[local.month - 1]} {local.day}, {local.year}, "
            f"{hour}:{local.minute:02d} {half} {local.tzname()}")


def submission_title(ctx: BuildContext) -> str:
    if ctx.kind == "response":
        title = f"Response submission {ctx.submission}: information requested by the IMR organization"
    elif ctx.kind == "supplement" or ctx.submission > 1:
        title = f"Supplemental submission {ctx.submission}"
    else:
        title = "Initial submission"
    if ctx.draft:
        title += " - DRAFT, not for submission"
    return title


def _label(value: str) -> str:
    return value.replace("_", " ").capitalize()


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=BODY_FONT, fontSize=10, leading=13)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=10),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10.5),
        "cellbold": ParagraphStyle("cellbold", parent=base, fontName=BODY_FONT_BOLD, fontSize=8.5, leading=10.5),
        "mark": ParagraphStyle("mark", parent=base, fontName=BODY_FONT_BOLD, fontSize=7.5, leading=9,
                               textColor=RED),
        "title": ParagraphStyle("title", parent=base, fontName=BODY_FONT_BOLD, fontSize=16, leading=20,
                                spaceAfter=4),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=11, leading=14, spaceAfter=10),
        "h2": ParagraphStyle("h2", parent=base, fontName=BODY_FONT_BOLD, fontSize=12, leading=15,
                             spaceBefore=8, spaceAfter=6),
        "divider_title": ParagraphStyle("dt", parent=base, fontName=BODY_FONT_BOLD, fontSize=22, leading=28,
                                        alignment=TA_CENTER, spaceAfter=18),
        "divider_body": ParagraphStyle("db", parent=base, fontSize=12, leading=17, spaceAfter=14),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text, quote=False).replace("\n", "<br/>"), style)


# --- cover, index and dividers ----------------------------------------------------------------
class _Part(Flowable):
    """An invisible marker: the pages from here on belong to `part` (for footers and counting)."""

    def __init__(self, state: dict, part: str):
        super().__init__()
        self._state, self._part = state, part

    def wrap(self, available_width, available_height):
        return (0, 0)

    def drawOn(self, canvas, x, y, _sW=0):  # noqa: N802 - reportlab's name
        self._state["part"] = self._part

    def draw(self):
        pass


@dataclass(frozen=True)
class FrontMatter:
    front_pages: int  # cover + index
    divider_pages: int  # one per section, after the index


# The page the front matter is laid out on (render_front_matter and estimate_front_pages).
PAGE_MARGIN = 0.75 * inch
FRAME_PADDING = 6  # reportlab's default Frame padding on each side
LAYOUT_FUZZ = 1e-6  # reportlab's tolerance when fitting a flowable into a frame (rl_config._FUZZ)


def estimate_front_pages(ctx: BuildContext, page_list: PageList) -> int:
    """How many pages the cover and the index will take (`FrontMatter.front_pages`), found by
    laying the index out without drawing it: wrapping its paragraphs and splitting its table the
    way the page frame does (about a third of the cost of a rendering).

    An estimate: `render_front_matter` counts the pages it really made, and packet.pdf.assemble
    renders again whenever the two differ, so this decides how often the front matter is
    rendered, never what it shows."""
    width = letter[0] - 2 * PAGE_MARGIN - 2 * FRAME_PADDING
    height = letter[1] - 2 * PAGE_MARGIN - 2 * FRAME_PADDING
    pending = list(_index_story(ctx, page_list, _styles()))
    pages, room, at_top, space_after = 1, height, True, 0.0
    # Each step places a flowable, splits one or starts a page: bounded by the table's rows. The
    # bound only guards against a layout this does not foresee (it is an estimate).
    steps = 10 * (len(page_list.entries) + len(page_list.sections) + len(pending) + 10)
    while pending and steps > 0:
        steps -= 1
        flowable = pending.pop(0)
        space = 0.0 if at_top else max(flowable.getSpaceBefore() - space_after, 0.0)
        available = room - space
        if available > 0:
            _, needed = flowable.wrap(width, available)
            if needed <= available + LAYOUT_FUZZ:
                space_after = flowable.getSpaceAfter()
                room, at_top = available - needed - space_after, False
                continue
            parts = flowable.split(width, available)
            if len(parts) > 1:  # the first part fits here, the rest goes on
                pending[:0] = parts
                continue
        if at_top:  # too tall for an empty page: reportlab will decide; any guess will do
            break
        pages, room, at_top, space_after = pages + 1, height, True, 0.0
        pending.insert(0, flowable)
    return 1 + pages  # the cover, then the index


def render_front_matter(ctx: BuildContext, page_list: PageList, out_path: Path) -> FrontMatter:
    """Cover sheet, index and the divider pages, in that order, in ONE PDF (so each font is
    embedded once). The index lists Bates ranges and packet pages from `page_list`, numbered for
    an expected count of cover and index pages (`estimate_front_pages`); packet.pdf.assemble renders
    again if the returned `front_pages` differs from it."""
    styles = _styles()
    state = {"part": "cover"}
    counts = {"cover": 0, "index": 0, "divider": 0}
    story: list = [_Part(state, "cover")]
    story += _cover_story(ctx, page_list, styles)
    story += [PageBreak(), _Part(state, "index")]
    story += _index_story(ctx, page_list, styles)
    for section in page_list.sections:
        story += [PageBreak(), _Part(state, "divider")]
        story += _divider_story(section, styles)

    def on_page_end(c: canvas.Canvas, doc) -> None:
        part = state["part"]
        counts[part] += 1
        c.saveState()
        c.setFont(BODY_FONT, 7.5)
        c.setFillColor(colors.Color(0.3, 0.3, 0.3))
        label = {"cover": "Cover sheet", "index": f"Index, page {counts['index']}", "divider": "Divider"}[part]
        c.drawString(0.75 * inch, 0.45 * inch, f"{_case_reference(ctx)} - {submission_title(ctx)}")
        c.drawRightString(letter[0] - 0.75 * inch, 0.45 * inch, label)
        c.restoreState()

    doc = BaseDocTemplate(str(out_path), pagesize=letter, leftMargin=PAGE_MARGIN, rightMargin=PAGE_MARGIN,
                          topMargin=PAGE_MARGIN, bottomMargin=PAGE_MARGIN, invariant=1,
                          title=f"IMR packet {ctx.facts.case_id}", author=ctx.config.plan.name,
                          creator="imr-packet", producer="imr-packet", subject="")
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body", leftPadding=FRAME_PADDING,
                  rightPadding=FRAME_PADDING, topPadding=FRAME_PADDING, bottomPadding=FRAME_PADDING)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPageEnd=on_page_end)])
    doc.build(story)
    if counts["cover"] != 1 or counts["divider"] != len(page_list.sections):
        raise RuntimeError(f"front matter layout: {counts}")  # a layout bug, not an input problem
    return FrontMatter(front_pages=counts["cover"] + counts["index"], divider_pages=counts["divider"])


def _case_reference(ctx: BuildContext) -> str:
    """The plan's reference (the folder id), with DMHC's IMR number when case.toml gives it."""
    number = ctx.facts.dmhc_case_number
    return f"{ctx.facts.case_id} (DMHC {number})" if number else ctx.facts.case_id


def _cover_story(ctx: BuildContext, page_list: PageList, styles) -> list:
    facts, plan, deadline = ctx.facts, ctx.config.plan, ctx.deadline
    tz = ctx.config.calendar.tz
    member = facts.member
    entries = page_list.entries
    doc_pages = sum(e.document.pages for e in entries)
    rows = [
        ("Health plan", plan.name),
        ("Submitted to", ctx.config.imr_organization.name),
        ("IMR case", facts.case_id),
        ("Submission", submission_title(ctx)),
        ("Member", member.name),
        ("Member ID", member.member_id or ""),
        ("Date of birth", format_date(member.date_of_birth) if member.date_of_birth else ""),
        ("Disputed service", facts.disputed_service),
        ("Review type", _label(facts.review_type)),
        ("Dispute type", _label(facts.dispute_type)),
        ("DMHC notice received", format_datetime(facts.dmhc_notice_received, tz)),
    ]
    if facts.grievance_number:
        rows.insert(8, ("Grievance number", facts.grievance_number))
    if facts.dmhc_case_number:  # issue 15 item 8: DMHC's own number, the folder id is the plan's reference
        rows[2:3] = [("IMR case number (DMHC)", facts.dmhc_case_number), ("Plan reference", facts.case_id)]
    request = next((r for r in facts.info_requests if ctx.kind == "response" and ctx.request_id
                    and r.id == ctx.request_id), None)
    if request is not None:
        rows += [("Answers the request", f"{request.id}: {request.what}"),
                 ("Request received", format_datetime(request.received, tz))]
    if deadline.clock_start != facts.dmhc_notice_received:
        rows.append(("Clock started", format_datetime(deadline.clock_start, tz)))
    rows += [
        ("Due to the IMR organization", format_datetime(deadline.due, tz)),
        ("Rule", f"{deadline.rule} (calendar: {deadline.calendar})"),
        ("Documents", f"{len(entries)} documents, {doc_pages} pages"),
    ]
    if entries:
        rows.append(("Bates numbers", f"{entries[0].bates_first_label} to {entries[-1].bates_last_label}"))
    table = Table([[_p(k, styles["cellbold"]), _p(v, styles["cell"])] for k, v in rows],
                  colWidths=[1.9 * inch, 5.1 * inch])
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.Color(0.75, 0.75, 0.75)),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    certification = (
        f"I certify that this submission contains the documents {plan.name} is required to provide "
        "under Health and Safety Code section 1374.30(n) for this Independent Medical Review, as "
        "listed in the index that follows; that each copy is a true and complete copy of the "
        "document in the plan's possession; and that each document marked PRIVILEGED is asserted to "
        "be legally privileged or proprietary and is not to be released to the enrollee.")
    signature = Table([
        [_p("Name", styles["small"]), "", _p("Title", styles["small"]), ""],
        [_p("Signature", styles["small"]), "", _p("Date", styles["small"]), ""],
    ], colWidths=[0.8 * inch, 2.7 * inch, 0.6 * inch, 2.9 * inch], rowHeights=[0.45 * inch, 0.45 * inch])
    signature.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                                   ("LINEBELOW", (1, 0), (1, -1), 0.75, colors.black),
                                   ("LINEBELOW", (3, 0), (3, -1), 0.75, colors.black)]))
    return [
        _p("Independent Medical Review - Records Submission", styles["title"]),
        _p(f"{plan.name} to the Independent Medical Review organization (Department of Managed Health "
           "Care, H&S 1374.30)", styles["subtitle"]),
        table,
        Spacer(1, 14),
        KeepTogether([_p("Certification", styles["h2"]), _p(certification, styles["body"]), signature]),
    ]


def marks_for(document) -> list[str]:
    """Index marks of a document: PRIVILEGED (legally privileged) and/or WITHHELD (by law)."""
    marks = []
    if document.is_privileged:
        marks.append("PRIVILEGED")
    if bool(document.withheld.value):
        marks.append("WITHHELD")
    return marks


def _index_story(ctx: BuildContext, page_list: PageList, styles) -> list:
    header = ["No.", "Title", "Date", "Pages", "Bates range", "Packet pages", "Marks"]
    widths = [0.35 * inch, 1.8 * inch, 0.95 * inch, 0.5 * inch, BATES_COLUMN, 0.62 * inch, 0.85 * inch]
    rows: list[list] = [[_p(h, styles["cellbold"]) for h in header]]
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.88, 0.88, 0.88)),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.Color(0.7, 0.7, 0.7)),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    number = 0
    for section in page_list.sections:
        row = len(rows)
        title = f"{CATEGORY_TITLES.get(section.category, section.category)}"
        if section.category in CATEGORY_ORDER:
            title = f"Category {CATEGORY_ORDER.index(section.category) + 1}: {title}"
        rows.append([_p(f"{title} (divider: packet page {section.divider_page})", styles["cellbold"]),
                     "", "", "", "", "", ""])
        commands += [("SPAN", (0, row), (-1, row)),
                     ("BACKGROUND", (0, row), (-1, row), colors.Color(0.95, 0.95, 0.95))]
        if not section.documents:
            rows.append(["", _p("No documents in this category for this submission", styles["cell"]),
                         "", "", "", "", ""])
            commands.append(("SPAN", (1, len(rows) - 1), (-1, len(rows) - 1)))
        for placed in section.documents:
            number += 1
            rows.append(_index_row(number, placed, styles))
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle(commands))
    total = sum(e.document.pages for e in page_list.entries)
    return [_p("Index of documents", styles["title"]),
            _p(f"{_case_reference(ctx)} - {submission_title(ctx)}: {len(page_list.entries)} documents, "
               f"{total} document pages. PRIVILEGED: legally privileged or proprietary, not for release to "
               "the enrollee. WITHHELD: withheld from the enrollee by law.", styles["small"]),
            Spacer(1, 6), table]


BATES_COLUMN = 1.9 * inch


def _bates_style(placed: PlacedDocument, styles) -> ParagraphStyle:
    """The Bates cell's style: smaller type when a long configured prefix would break a label."""
    style = styles["cell"]
    longest = max(pdfmetrics.stringWidth(label, style.fontName, style.fontSize)
                  for label in (placed.bates_first_label, placed.bates_last_label))
    room = BATES_COLUMN - 8
    if longest <= room:
        return style
    size = max(style.fontSize * room / longest, 4.5)
    return ParagraphStyle("bates", parent=style, fontSize=size, leading=size * 1.25)


def _index_row(number: int, placed: PlacedDocument, styles) -> list:
    document = placed.document
    if placed.bates_first == placed.bates_last:
        bates = placed.bates_first_label
    else:
        bates = f"{placed.bates_first_label} -\n{placed.bates_last_label}"
    if placed.packet_first == placed.packet_last:
        packet_pages = str(placed.packet_first)
    else:
        packet_pages = f"{placed.packet_first}-{placed.packet_last}"
    return [
        _p(str(number), styles["cell"]),
        _p(str(document.title.value), styles["cell"]),
        _p(format_date(document.date.value), styles["cell"]),
        _p(str(document.pages), styles["cell"]),
        _p(bates, _bates_style(placed, styles)),
        _p(packet_pages, styles["cell"]),
        _p("\n".join(marks_for(document)), styles["mark"]),
    ]


# --- dividers ----------------------------------------------------------------------------------
NEEDS_REVIEW_DESCRIPTION = (
    "Documents that have not yet been assigned to one of the three statutory categories. This "
    "section appears only in drafts: every document needs a category before the submission is sealed.")
EMPTY_CATEGORY = "No documents in this category for this submission"


def _divider_story(section, styles) -> list:
    title = CATEGORY_TITLES.get(section.category, section.category)
    if section.category in CATEGORY_ORDER:
        heading = f"Category {CATEGORY_ORDER.index(section.category) + 1} of {len(CATEGORY_ORDER)}"
    else:
        heading = "Not yet classified"
    if section.category == NEEDS_REVIEW:
        description = NEEDS_REVIEW_DESCRIPTION
    else:
        description = CATEGORY_DESCRIPTIONS.get(section.category, "")
    flow = [Spacer(1, 1.5 * inch), _p(heading, styles["subtitle"]), _p(title, styles["divider_title"]),
            _p(description, styles["divider_body"])]
    if section.documents:
        first, last = section.documents[0], section.documents[-1]
        pages = sum(p.document.pages for p in section.documents)
        flow.append(_p(f"{len(section.documents)} document(s), {pages} page(s): Bates "
                       f"{first.bates_first_label} to {last.bates_last_label}", styles["body"]))
    else:
        flow.append(_p(EMPTY_CATEGORY, styles["divider_body"]))
    return flow
