"""Member and provider mailings: templates, the small letter markup, and their PDF and DOCX layout.

Owns: rendering the editable letter templates (`templates/<lang>/*.md.j2`, jinja2 with
StrictUndefined) into a small structured markup, laying that markup out as print-ready PDF pages
(reportlab platypus: letter size, #10 window-envelope address block, "page x of y", each part on an
odd page, DRAFT watermark) and as an editable DOCX (python-docx); the annotated list of documents
(H&S 1374.31(b)) in PDF and CSV; and `render_mailings`, which writes a submission's mailings.
Must not: read case folders, decide categories or privilege, or put a withheld or privileged
document's title, author or text into any output (the list shows a neutral description instead).

The markup (what a template renders to), one block per paragraph:
  `# Heading`, `## Subheading`, `- bullet`, plain lines (joined into a paragraph until a blank
  line), `**bold**` inside a line (printed 12-point bold: H&S 1368.02(b)), `::pagebreak`,
  `::space`, and form lines `::field id | label | value`, `::check id | label | yes`,
  `::signature id | label`. Member data is escaped on the way in (jinja `finalize`), so a member
  called `A*B | C` cannot start a bold run or a new field.

Decisions recorded here:
- Privileged documents are listed with a neutral description ("Document withheld: legally
  privileged"), their category, date, pages and Bates range, never their title or author: a
  title can reveal privileged content. Documents withheld by law are listed the same way unless a
  person set their title by override (then that title is shown: a person chose it for release).
- The provider packet is in English (the provider's office language); the member packet, the
  annotated list and notice-letter.docx follow the member's `language`.
- Taglines print in their own script when a TrueType font for it is installed (SCRIPT_FONTS:
  CJK, Devanagari, Gurmukhi, Thai, Khmer; embedded as subsets, never reportlab's unembedded CID
  fonts). Indic, Thai and Khmer are shaped by reportlab with uharfbuzz. Arabic and Persian fall
  back to the language's English name and the plan's number: they need right-to-left bidi layout,
  which reportlab does only with `rlbidi` (not on PyPI), and printing them unshaped or in the wrong
  word order would be wrong text. A tagline also falls back when its font is missing or a word
  needs two fonts. The DOCX letter carries every tagline in its own script.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tomllib
import zipfile
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Iterable
from xml.sax.saxutils import escape as xml_escape

import jinja2
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont, freshTTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (BaseDocTemplate, Flowable, Frame, KeepInFrame, KeepTogether,
                                NextPageTemplate, PageBreak, PageTemplate, Paragraph, Spacer, Table,
                                TableStyle)
from reportlab.platypus.doctemplate import DocIf
from reportlab.rl_config import _FUZZ

from packet.config import Config
from packet.errors import TemplateError
from packet.mailings.forms import CheckField, SignatureLine, TextField
from packet.fsutil import atomic_write_bytes, ensure_dir

# ----------------------------------------------------------------------------------------------
# Templates and the markup
# ----------------------------------------------------------------------------------------------

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


class Templates:
    """The template folder of one configuration: jinja environment, labels and taglines."""

    def __init__(self, config: Config):
        self.config = config
        self.folder = Path(config.paths.templates)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.folder)), undefined=jinja2.StrictUndefined,
            finalize=escape_markup, autoescape=False, keep_trailing_newline=True,
            trim_blocks=True, lstrip_blocks=True)
        self.env.filters["longdate"] = long_date
        self.env.filters["shortdate"] = short_date
        self.env.filters["datetime"] = long_datetime

    def render(self, language: str, name: str, variables: dict[str, Any]) -> str:
        template_name = f"{language}/{name}"
        try:
            template = self.env.get_template(template_name)
            return template.render(**variables, lang=language)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} is missing from {self.folder}",
                                reason="template_missing") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {exc.name or template_name} line {exc.lineno}: {exc.message}",
                                reason="template_syntax") from exc
        except jinja2.UndefinedError as exc:
            where = _template_in_traceback(exc) or template_name
            raise TemplateError(f"template {where}: variable {exc.message} (missing variable)",
                                reason="template_variable") from exc

    def blocks(self, language: str, name: str, variables: dict[str, Any]) -> tuple[Block, ...]:
        text = self.render(language, name, variables)
        try:
            return parse_markup(text)
        except ValueError as exc:
            raise TemplateError(f"template {language}/{name}: {exc}", reason="template_markup") from exc

    @lru_cache(maxsize=4)
    def labels(self, language: str) -> dict[str, Any]:
        return self._toml(f"{language}/labels.toml")

    @lru_cache(maxsize=1)
    def taglines(self) -> dict[str, Any]:
        return self._toml("taglines.toml")

    def _toml(self, name: str) -> dict[str, Any]:
        path = self.folder / name
        try:
            with open(path, "rb") as handle:
                return tomllib.load(handle)
        except FileNotFoundError as exc:
            raise TemplateError(f"template {name} is missing from {self.folder}",
                                reason="template_missing") from exc
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"template {name} is not valid TOML: {exc}", reason="template_syntax") from exc

    def label(self, language: str, key: str) -> Any:
        labels = self.labels(language)
        node: Any = labels
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise TemplateError(f"template {language}/labels.toml: label {key!r} is missing",
                                    reason="template_variable")
            node = node[part]
        return node


def _template_in_traceback(exc: BaseException) -> str | None:
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = filename
        tb = tb.tb_next
    if found is None:
        return None
    parts = Path(found).parts
    return "/".join(parts[-2:])


# ----------------------------------------------------------------------------------------------
# Dates in the member's language
# ----------------------------------------------------------------------------------------------

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
}


def long_date(value: dt.date | dt.datetime | None, language: str = "en") -> str:
    if value is None:
        return ""
    month = MONTHS.get(language, MONTHS["en"])[value.month - 1]
    if language == "es":
        return f"{value.day} de {month} de {value.year}"
    return f"{month} {value.day}, {value.year}"


def short_date(value: dt.date | dt.datetime | None, language: str = "en") -> str:
    if value is None:
        return ""
    if language == "es":
        # Not 11/06/2026: in a California mailing beside US-dated records, a day-first numeric date
        # reads as November 6. The month's name is unambiguous in both conventions.
        return f"{value.day} {MONTHS['es'][value.month - 1][:3]} {value.year}"
    return f"{value.month:02d}/{value.day:02d}/{value.year}"


def long_datetime(value: dt.datetime | None, language: str = "en") -> str:
    if value is None:
        return ""
    hour = value.hour % 12 or 12
    ampm = "a.m." if value.hour < 12 else "p.m."
    if language == "es":
        return f"{long_date(value, language)}, {value.hour:02d}:{value.minute:02d}"
    return f"{long_date(value, language)}, {hour}:{value.minute:02d} {ampm}"


# ----------------------------------------------------------------------------------------------
# The annotated list (H&S 1374.31(b))
# ----------------------------------------------------------------------------------------------

CSV_COLUMNS = ("number", "title", "author", "date", "category", "pages", "bates_first", "bates_last",
               "privileged", "withheld_from_member", "withheld_reason", "copy_available")


@dataclass(frozen=True)
class ListRow:
    """One line of the annotated list, already safe for the member to read."""

    number: int
    title: str  # the document's title, or a neutral description when withheld
    author: str
    date: dt.date | None
    category: str
    pages: int
    bates_first: str
    bates_last: str
    privileged: bool
    withheld_from_member: bool  # as in the manifest: privileged documents are withheld too
    withheld_reason: str | None  # member-facing reason ("legally privileged", "withheld by law")

    @property
    def copy_available(self) -> bool:
        return not (self.privileged or self.withheld_from_member)

    @property
    def bates_range(self) -> str:
        return self.bates_first if self.bates_first == self.bates_last else f"{self.bates_first} - {self.bates_last}"


def member_safe_row(*, number: int, title: str, title_rule: str, author: str | None, date: dt.date | None,
                    category: str, pages: int, bates_first: str, bates_last: str, privileged: bool,
                    withheld: bool, labels: dict[str, Any]) -> ListRow:
    """A list row that never carries a privileged or withheld document's title or author."""
    reason = None
    if privileged:
        title = labels["list"]["withheld_privileged_title"]
        author = ""
        reason = labels["list"]["reason_privileged"]
    elif withheld:
        if title_rule != "override":
            title = labels["list"]["withheld_by_law_title"]
        author = ""
        reason = labels["list"]["reason_withheld"]
    return ListRow(number=number, title=title or labels["list"]["untitled"], author=author or "",
                   date=date, category=category, pages=pages, bates_first=bates_first,
                   bates_last=bates_last, privileged=privileged, withheld_from_member=withheld or privileged,
                   withheld_reason=reason)


def list_rows(page_list, labels: dict[str, Any]) -> tuple[ListRow, ...]:
    """The annotated list from the one numbered page list (packet/pagelist.py)."""
    rows = []
    for number, placed in enumerate(page_list.entries, 1):
        doc = placed.document
        date = doc.date.value if isinstance(doc.date.value, dt.date) else None
        rows.append(member_safe_row(
            number=number, title=str(doc.title.value or ""), title_rule=doc.title.rule, author=doc.author,
            date=date, category=placed.category, pages=doc.pages, bates_first=placed.bates_first_label,
            bates_last=placed.bates_last_label, privileged=doc.is_privileged,
            withheld=bool(doc.withheld.value), labels=labels))
    return tuple(rows)


def annotated_csv(rows: Iterable[ListRow]) -> bytes:
    """One row per document, columns named like the manifest's fields (plus number and author)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row.number, row.title, row.author, row.date.isoformat() if row.date else "",
                         row.category, row.pages, row.bates_first, row.bates_last,
                         str(row.privileged).lower(), str(row.withheld_from_member).lower(),
                         row.withheld_reason or "", str(row.copy_available).lower()])
    return buffer.getvalue().encode("utf-8")


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
        cell=ParagraphStyle("cell", parent=body, fontSize=9, leading=11.2, spaceAfter=0),
        cell_bold=ParagraphStyle("cellb", parent=body, fontName=f.bold, fontSize=9, leading=11.2, spaceAfter=0),
        address=ParagraphStyle("address", parent=body, fontSize=11, leading=13, spaceAfter=0),
    )


def para_xml(runs: Iterable[Run], base: int) -> str:
    """Platypus Paragraph markup for runs, XML-escaped; bold runs in 12-point (or base) bold."""
    f = fonts()
    out = []
    for run in runs:
        text = xml_escape(run.text, {"'": "&#39;", '"': "&quot;"}).replace("\n", "<br/>")
        if run.bold:
            out.append(f'<font name="{f.bold}" size="{max(BOLD_SIZE, base)}">{text}</font>')
        else:
            out.append(text)
    return "".join(out)


def text_xml(text: str) -> str:
    return xml_escape(text, {"'": "&#39;", '"': "&quot;"})


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

    def __init__(self, *args, page_label: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.footer_size: float = 9
        self._kept_pages: list[dict[str, Any]] = []
        self._page_label = page_label

    def showPage(self):
        self._kept_pages.append({k: v for k, v in self.__dict__.items() if k != "_kept_pages"})
        self._doc.pageCounter += 1
        self._startPage()

    def save(self):
        kept = self._kept_pages
        total = len(kept)
        self._doc.pageCounter -= total
        for state in kept:
            self.__dict__.update(state)
            _draw_page_label(self, self._page_label, self._pageNumber, total, self.footer_size)
            super().showPage()
        self._kept_pages = []
        super().save()


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
            story.append(DocIf("doc.page % 2 == 1", [PageBreak(), _BlankPage(options.blank_label)]))
            story.append(NextPageTemplate(template))
            story.append(PageBreak())
        story.append(NextPageTemplate(body_template))
        story.extend(part.make())
        story.append(NextPageTemplate("later"))
    doc.build(story, canvasmaker=partial(_PageCountCanvas, page_label=options.page_label))
    return buffer.getvalue()


class _CellParagraph(Paragraph):
    """A paragraph in a table cell that keeps its line breaks for the width it was last wrapped to.

    A platypus Table wraps every cell when it measures its rows, again for each part it is split
    into across pages, and again when it draws the cell; a paragraph's line breaks depend only on
    its text, style and the available width, so wrapping a second time to the same width gives the
    same lines (and `split`, were a cell ever split, reads the lines of the last wrap anyway).
    """

    _wrapped_width: float | None = None

    def wrap(self, availWidth, availHeight):
        if availWidth == self._wrapped_width:
            return self.width, self.height
        size = super().wrap(availWidth, availHeight)
        self._wrapped_width = availWidth if availWidth >= _FUZZ else None
        return size


def list_table(rows: tuple[ListRow, ...], labels: dict[str, Any], language: str) -> Table:
    st = styles(BODY_SIZE)
    heads = labels["list"]["columns"]
    header = [_CellParagraph(text_xml(h), st.cell_bold) for h in
              (heads["number"], heads["document"], heads["category"], heads["pages"], heads["copy"])]
    data = [header]
    for row in rows:
        doc_lines = f"<b>{text_xml(row.title)}</b>"
        details = []
        if row.author:
            details.append(f"{text_xml(labels['list']['source'])}: {text_xml(row.author)}")
        details.append(f"{text_xml(labels['list']['date'])}: "
                       f"{text_xml(short_date(row.date, language) if row.date else labels['list']['no_date'])}")
        doc_lines += "<br/>" + "<br/>".join(details)
        pages_text = (f"{row.pages} {text_xml(labels['list']['pages_word'] if row.pages != 1 else labels['list']['page_word'])}"
                      f"<br/>{text_xml(row.bates_first)}")
        if row.bates_last != row.bates_first:
            pages_text += f"<br/>\u2013 {text_xml(row.bates_last)}"
        copy_text = (text_xml(labels["list"]["copy_available"]) if row.copy_available
                     else f"<b>{text_xml(labels['list']['withheld'])}</b>: {text_xml(row.withheld_reason or '')}")
        category = labels["categories"].get(row.category, row.category)
        data.append([_CellParagraph(str(row.number), st.cell), _CellParagraph(doc_lines, st.cell),
                     _CellParagraph(text_xml(category), st.cell), _CellParagraph(pages_text, st.cell),
                     _CellParagraph(copy_text, st.cell)])
    if not rows:
        data.append([_CellParagraph("", st.cell), _CellParagraph(text_xml(labels["list"]["empty"]), st.cell),
                     _CellParagraph("", st.cell), _CellParagraph("", st.cell), _CellParagraph("", st.cell)])
    widths = [0.35 * inch, 2.3 * inch, 1.2 * inch, 1.9 * inch, 1.25 * inch]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.Color(0.45, 0.45, 0.45)),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.88, 0.88, 0.88)),
        ("LEFTPADDING", (0, 0), (-1, -1), 4), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]))
    return table


# ----------------------------------------------------------------------------------------------
# Taglines and nondiscrimination (every member mailing)
# ----------------------------------------------------------------------------------------------

# Scripts the embedded DejaVu Sans draws without shaping.
PRINTABLE_SCRIPTS = ("latin", "cyrillic", "armenian", "greek")


@dataclass(frozen=True)
class ScriptFont:
    """A TrueType font (embedded as a subset) that draws one script's tagline.

    `shaped` scripts (Indic, Thai, Khmer) need reportlab's HarfBuzz shaping (uharfbuzz) for
    conjuncts, vowel signs before the consonant and stacked marks; CJK needs only the glyphs and
    line breaks between ideographs (`cjk_wrap`). The Debian package is named for the Makefile.
    """

    name: str  # reportlab font name
    path: str
    package: str
    subfont: int = 0
    shaped: bool = False
    cjk_wrap: bool = False
    size: float = BODY_SIZE - 2


_NOTO = "/usr/share/fonts/truetype/noto/"
# TrueType only: reportlab cannot embed CFF-outline OpenType (fonts-noto-cjk), and its CID fonts
# are not embedded at all. Arabic and Persian are absent on purpose: they need the bidi algorithm
# (right-to-left words around left-to-right numbers), which reportlab does only with `rlbidi`, a
# package not published on PyPI; they keep their English fallback line.
SCRIPT_FONTS: dict[str, ScriptFont] = {
    "cjk-zh": ScriptFont("TaglineZh", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei",
                         cjk_wrap=True),
    "cjk-ja": ScriptFont("TaglineJa", "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
                         "fonts-ipafont-gothic", cjk_wrap=True),
    "cjk-ko": ScriptFont("TaglineKo", "/usr/share/fonts/truetype/nanum/NanumGothic.ttf", "fonts-nanum"),
    "devanagari": ScriptFont("TaglineDeva", _NOTO + "NotoSansDevanagari-Regular.ttf", "fonts-noto-core",
                             shaped=True),
    "gurmukhi": ScriptFont("TaglineGuru", _NOTO + "NotoSansGurmukhi-Regular.ttf", "fonts-noto-core",
                           shaped=True),
    # Loma and Khmer OS, not Noto: Noto Sans Thai/Khmer have no ASCII digits or colon, and a word
    # that mixes two fonts ("เรียน:", "711)។") cannot be shaped by reportlab.
    "thai": ScriptFont("TaglineThai", "/usr/share/fonts/truetype/tlwg/Loma.ttf", "fonts-tlwg-loma-ttf",
                       shaped=True),
    "khmer": ScriptFont("TaglineKhmer", "/usr/share/fonts/truetype/khmeros/KhmerOS.ttf", "fonts-khmeros",
                        shaped=True, size=BODY_SIZE - 3),
}


def _shaping_available() -> bool:
    try:
        import uharfbuzz  # noqa: F401  (reportlab shapes with it when importable)
    except ImportError:
        return False
    return True


@lru_cache(maxsize=None)
def _cached_script_font(name: str, path: str, subfont: int) -> TTFont | None:
    try:
        font = TTFont(name, path, subfontIndex=subfont, shapable=False)
    except Exception:  # a damaged or CFF-outline file: print the fallback line instead
        return None
    pdfmetrics.registerFont(font)
    return font


def script_font(script: str) -> TTFont | None:
    """The registered font that draws `script`'s tagline, or None (print the fallback line).

    A shaped script's font is registered afresh on every call: reportlab gives glyphs without a
    Unicode value (conjuncts, positioned marks) private-use codes in the order it first meets
    them and keeps them on the font object, so one font object shared by builds would make a
    document's bytes depend on what the process built before it.
    """
    spec = SCRIPT_FONTS.get(script)
    if spec is None or fonts().regular == "Helvetica" or not Path(spec.path).is_file():
        return None
    if not spec.shaped:
        return _cached_script_font(spec.name, spec.path, spec.subfont)
    if not _shaping_available():
        return None
    try:
        # freshTTFont unregisters the previous object: registerFont alone keeps the first one.
        font = freshTTFont(spec.name, spec.path, subfontIndex=spec.subfont, shapable=True)
    except Exception:
        return None
    pdfmetrics.registerFont(font)
    return font


def script_tagline(text: str, script: str, base: ParagraphStyle) -> Paragraph | None:
    """The tagline in its own script, or None when it cannot be drawn correctly.

    Each space-separated word is set wholly in the script's font or wholly in the body font
    (numbers, "TTY"): reportlab shapes a word with its first font, so a word needing both fonts
    would print a missing glyph; such a tagline is not printed natively.
    """
    spec = SCRIPT_FONTS.get(script)
    font = script_font(script)
    if spec is None or font is None:
        return None
    body = pdfmetrics.getFont(fonts().regular)
    script_chars, body_chars = font.face.charToGlyph, body.face.charToGlyph
    words = []
    for word in text.split(" "):
        if all(ord(c) in script_chars for c in word):
            name = spec.name
        elif all(ord(c) in body_chars for c in word):
            name = fonts().regular
        else:
            return None
        words.append(f'<font name="{name}">{text_xml(word)}</font>' if word else "")
    style = ParagraphStyle(f"tag-{script}", parent=base, fontName=spec.name, fontSize=spec.size,
                           leading=spec.size * (1.7 if spec.shaped else 1.4), shaping=int(spec.shaped),
                           wordWrap="CJK" if spec.cjk_wrap else None)
    return Paragraph(" ".join(words), style)


def tagline_flowables(templates: Templates, config: Config, language: str) -> list:
    st = styles(BODY_SIZE)
    data = templates.taglines()
    out: list = []
    heading = templates.label(language, "taglines_heading")
    out.append(Paragraph(text_xml(heading), st.h2))
    small = ParagraphStyle("tag", parent=st.small, spaceAfter=4)
    for code in config.plan.language_taglines:
        entry = data.get(code)
        if not isinstance(entry, dict) or "text" not in entry:
            raise TemplateError(f"template taglines.toml: no tagline for language {code!r} "
                                "([plan] language_taglines)", reason="template_variable")
        text = _fill_phone(str(entry["text"]), config)
        script = str(entry.get("script", "latin"))
        if script in PRINTABLE_SCRIPTS and fonts().regular != "Helvetica":
            out.append(Paragraph(text_xml(text), small))
            continue
        native = script_tagline(text, script, small)
        if native is not None:
            out.append(native)
        else:
            fallback = _fill_phone(str(entry.get("fallback", "")), config) or (
                f"{entry.get('name', code)}: {config.plan.phone} (TTY {config.plan.tty})")
            out.append(Paragraph(text_xml(fallback), small))
    return out


def tagline_texts(templates: Templates, config: Config) -> list[str]:
    data = templates.taglines()
    out = []
    for code in config.plan.language_taglines:
        entry = data.get(code)
        if not isinstance(entry, dict) or "text" not in entry:
            raise TemplateError(f"template taglines.toml: no tagline for language {code!r}",
                                reason="template_variable")
        out.append(_fill_phone(str(entry["text"]), config))
    return out


def _fill_phone(text: str, config: Config) -> str:
    return text.replace("{phone}", config.plan.phone).replace("{tty}", config.plan.tty)


def nondiscrimination_blocks(templates: Templates, config: Config, language: str,
                             variables: dict[str, Any]) -> tuple[Block, ...]:
    if config.plan.nondiscrimination.strip():
        return parse_markup(escape_markup(config.plan.nondiscrimination))
    return templates.blocks(language, "nondiscrimination.md.j2", variables)


# ----------------------------------------------------------------------------------------------
# DOCX (python-docx), written deterministically
# ----------------------------------------------------------------------------------------------

def build_docx(blocks: tuple[Block, ...], *, letterhead: Letterhead | None, taglines: list[str],
               created: dt.datetime, title: str, language: str, taglines_heading: str = "",
               draft: bool = False) -> bytes:
    from docx import Document as DocxDocument
    from docx.shared import Inches, Pt

    document = DocxDocument()
    section = document.sections[0]
    section.page_width, section.page_height = Inches(8.5), Inches(11)
    section.left_margin = section.right_margin = Inches(0.875)
    section.top_margin = Inches(0.6)
    section.bottom_margin = Inches(0.75)
    if draft:  # the header repeats on every page, like the PDF watermark
        header = section.header.paragraphs[0]
        mark = header.add_run("DRAFT")
        mark.bold = True
        mark.font.size = Pt(20)
    normal = document.styles["Normal"]
    normal.font.name = "Arial"
    normal.font.size = Pt(BODY_SIZE)

    if letterhead is not None:
        p = document.add_paragraph()
        r = p.add_run(letterhead.plan_name)
        r.bold = True
        r.font.size = Pt(13)
        for line in letterhead.return_address:
            p = document.add_paragraph(line)
            p.paragraph_format.space_after = Pt(0)
            p.runs[0].font.size = Pt(9)
        spacer = document.add_paragraph()
        spacer.paragraph_format.space_after = Pt(28)
        for line in letterhead.recipient:
            p = document.add_paragraph(line)
            p.paragraph_format.space_after = Pt(0)
            p.paragraph_format.left_indent = Inches(0.0)
        document.add_paragraph()

    def add_runs(paragraph, runs: tuple[Run, ...]) -> None:
        for run in runs:
            if run.text == "\n":
                paragraph.add_run().add_break()
                continue
            r = paragraph.add_run(run.text)
            if run.bold:
                r.bold = True
                r.font.size = Pt(BOLD_SIZE)

    def add_heading(runs: tuple[Run, ...], size: float) -> None:
        paragraph = document.add_paragraph()
        for run in runs:
            r = paragraph.add_run(run.text)
            r.bold = True
            r.font.size = Pt(size)

    for block in blocks:
        if block.kind in ("h1", "h2"):
            add_heading(block.runs, BODY_SIZE + (4 if block.kind == "h1" else 1))
        elif block.kind == "p":
            add_runs(document.add_paragraph(), block.runs)
        elif block.kind == "bullet":
            add_runs(document.add_paragraph(style="List Bullet"), block.runs)
        elif block.kind == "pagebreak":
            document.add_page_break()
        elif block.kind in ("field", "check", "signature"):
            label = block.args[1] if len(block.args) > 1 else ""
            value = block.args[2] if len(block.args) > 2 and block.kind == "field" else ""
            document.add_paragraph(f"{label}: {value}" if value else f"{label}: ____________________")
    if taglines:
        if taglines_heading:
            p = document.add_paragraph()
            r = p.add_run(taglines_heading)
            r.bold = True
            r.font.size = Pt(BODY_SIZE + 1)
        for text in taglines:
            p = document.add_paragraph(text)
            p.runs[0].font.size = Pt(9)

    props = document.core_properties
    props.author = "imr-packet"
    props.last_modified_by = "imr-packet"
    props.title = title
    props.language = language
    props.revision = 1
    stamp = created.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    props.created = stamp
    props.modified = stamp
    props.last_printed = stamp
    props.comments = ""
    props.keywords = ""
    buffer = io.BytesIO()
    document.save(buffer)
    return deterministic_zip(buffer.getvalue(), created)


def deterministic_zip(data: bytes, when: dt.datetime) -> bytes:
    """Rewrite a zip with fixed entry times and order, so the same inputs give the same bytes."""
    stamp = when.astimezone(dt.timezone.utc)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second // 2 * 2)
    source = zipfile.ZipFile(io.BytesIO(data))
    names = source.namelist()
    # [Content_Types].xml must stay first; keep python-docx's order otherwise (it is deterministic).
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o640 << 16
            info.create_system = 3
            target.writestr(info, source.read(name))
    return out.getvalue()


# ----------------------------------------------------------------------------------------------
# Variables every template sees
# ----------------------------------------------------------------------------------------------

def person_vars(person) -> dict[str, Any] | None:
    if person is None:
        return None
    return {"name": person.name, "address": list(person.address), "member_id": person.member_id,
            "date_of_birth": person.date_of_birth, "fax": person.fax, "relationship": person.relationship}


def base_variables(config: Config, facts, *, language: str, today: dt.date) -> dict[str, Any]:
    plan, dmhc = config.plan, config.dmhc
    return {
        "plan": {"name": plan.name, "phone": plan.phone, "tty": plan.tty, "website": plan.website,
                 "address": list(plan.address)},
        "dmhc": {"phone": dmhc.help_center_phone, "tdd": dmhc.tdd, "website": dmhc.website,
                 "online_filing": dmhc.online_filing, "fax": dmhc.fax, "address": list(dmhc.address)},
        "imr_org": {"name": config.imr_organization.name, "address": list(config.imr_organization.address),
                    "fax": config.imr_organization.fax},
        "member": person_vars(facts.member),
        "provider": person_vars(facts.provider),
        "representative": person_vars(facts.representative),
        "case": {"case_id": facts.case_id, "review_type": facts.review_type, "expedited": facts.expedited,
                 "dispute_type": facts.dispute_type, "experimental": facts.dispute_type == "experimental",
                 "urgent_emergency_claim": facts.dispute_type == "urgent_emergency_claim",
                 "disputed_service": facts.disputed_service, "grievance_number": facts.grievance_number,
                 "dmhc_notice_received": facts.dmhc_notice_received},
        "today": today,
        "letter_date": long_date(today, language),
    }


def recipient_lines(person) -> tuple[str, ...]:
    if person is None:
        return ()
    return (person.name, *person.address)


# ----------------------------------------------------------------------------------------------
# The mailings of one submission
# ----------------------------------------------------------------------------------------------

# What render_mailings writes, in this order.
MAILING_FILES = ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf", "annotated-list.csv",
                 "notice-letter.docx")


def submission_variables(page_list, ctx, rows: tuple[ListRow, ...], language: str) -> dict[str, Any]:
    facts = ctx.facts
    local = ctx.generated_at
    variables = base_variables(ctx.config, facts, language=language, today=local.date())
    total_pages = sum(row.pages for row in rows)
    variables["submission"] = {
        "number": ctx.submission, "kind": ctx.kind, "supplemental": ctx.kind == "supplement" or ctx.submission > 1,
        "sent_date": long_date(local, language), "sent_at": local,
        "documents": len(rows), "pages": total_pages,
        "available": sum(1 for r in rows if r.copy_available),
        "withheld": sum(1 for r in rows if not r.copy_available),
        "due": ctx.deadline.due, "due_text": long_datetime(ctx.deadline.due, language),
        "draft": ctx.draft,
        "first_bates": rows[0].bates_first if rows else "", "last_bates": rows[-1].bates_last if rows else "",
    }
    return variables


def render_mailings(page_list, ctx, out_dir: Path, only: Iterable[str] | None = None) -> list[Path]:
    """Write member-packet.pdf, provider-packet.pdf, annotated-list.pdf/.csv and notice-letter.docx
    (MAILING_FILES), or only those named in `only`; return the paths written. Each file depends on
    the inputs alone, so files written by different processes are the files one call writes."""
    wanted = set(MAILING_FILES if only is None else only)
    if wanted - set(MAILING_FILES):
        raise ValueError(f"not a mailing: {sorted(wanted - set(MAILING_FILES))}")
    out_dir = ensure_dir(Path(out_dir))
    config, facts = ctx.config, ctx.facts
    templates = Templates(config)
    member_lang = facts.language if facts.language in ("en", "es") else "en"
    created = ctx.generated_at

    # Member packet: letter, annotated list, copy-request form.
    labels = templates.labels(member_lang)
    rows = list_rows(page_list, labels)
    variables = submission_variables(page_list, ctx, rows, member_lang)
    letter_blocks = templates.blocks(member_lang, "member-letter.md.j2", variables)
    list_intro = templates.blocks(member_lang, "annotated-list.md.j2", variables)
    request_blocks = templates.blocks(member_lang, "copy-request.md.j2", variables)
    nondiscrimination = nondiscrimination_blocks(templates, config, member_lang, variables)
    st = styles(BODY_SIZE)
    member_head = Letterhead(config.plan.name, tuple(config.plan.address), recipient_lines(facts.member))

    def letter_part(blocks, lang, head):
        def make():
            flow = blocks_to_flowables(blocks, st)
            flow += [Spacer(1, 8), Rule()]
            flow += blocks_to_flowables(nondiscrimination_for(lang), styles(BODY_SIZE - 1))
            flow += tagline_flowables(templates, config, lang)
            return flow
        return Part(make, "letter", head)

    def nondiscrimination_for(lang):
        if lang == member_lang:
            return nondiscrimination
        return nondiscrimination_blocks(templates, config, lang, variables)

    def list_part(intro, rows_, labels_, lang):
        return Part(lambda: blocks_to_flowables(intro, st) + [list_table(rows_, labels_, lang)], "list")

    def form_part(blocks, prefix):
        return Part(lambda: blocks_to_flowables(blocks, st, field_prefix=prefix,
                                                date_label=templates.label(member_lang, "date")), "form")

    def member_pdf() -> bytes:
        options = PdfOptions(case_id=facts.case_id, page_label=labels["page_of"], blank_label=labels["blank_page"],
                             draft=ctx.draft, title=labels["titles"]["member_packet"], author=config.plan.name)
        return build_pdf([letter_part(letter_blocks, member_lang, member_head),
                          list_part(list_intro, rows, labels, member_lang),
                          form_part(request_blocks, "copy_request.")], options)

    def provider_pdf() -> bytes:
        return _provider_pdf(page_list, ctx, templates, letter_part, list_part)

    def list_pdf() -> bytes:
        list_options = PdfOptions(case_id=facts.case_id, page_label=labels["page_of"],
                                  blank_label=labels["blank_page"], draft=ctx.draft,
                                  title=labels["titles"]["annotated_list"], author=config.plan.name)
        return build_pdf([list_part(list_intro, rows, labels, member_lang)], list_options)

    def docx() -> bytes:
        return build_docx(letter_blocks + nondiscrimination, letterhead=member_head,
                          taglines=tagline_texts(templates, config), created=created,
                          title=labels["titles"]["member_letter"], language=member_lang,
                          taglines_heading=labels["taglines_heading"], draft=ctx.draft)

    makers = {"member-packet.pdf": member_pdf, "provider-packet.pdf": provider_pdf,
              "annotated-list.pdf": list_pdf, "annotated-list.csv": lambda: annotated_csv(rows),
              "notice-letter.docx": docx}
    return [atomic_write_bytes(out_dir / name, makers[name]()) for name in MAILING_FILES if name in wanted]


def _provider_pdf(page_list, ctx, templates: Templates, letter_part, list_part) -> bytes:
    """Provider packet: cover letter and the same list (English; see the module docstring)."""
    config, facts = ctx.config, ctx.facts
    provider_lang = "en"
    p_labels = templates.labels(provider_lang)
    p_rows = list_rows(page_list, p_labels)
    p_vars = submission_variables(page_list, ctx, p_rows, provider_lang)
    provider_blocks = templates.blocks(provider_lang, "provider-letter.md.j2", p_vars)
    p_intro = templates.blocks(provider_lang, "annotated-list.md.j2", p_vars)
    provider_recipient = recipient_lines(facts.provider) or (p_labels["provider_unknown"],)
    provider_head = Letterhead(config.plan.name, tuple(config.plan.address), provider_recipient)
    p_options = PdfOptions(case_id=facts.case_id, page_label=p_labels["page_of"],
                           blank_label=p_labels["blank_page"], draft=ctx.draft,
                           title=p_labels["titles"]["provider_packet"], author=config.plan.name)
    return build_pdf([letter_part(provider_blocks, provider_lang, provider_head),
                      list_part(p_intro, p_rows, p_labels, provider_lang)], p_options)
