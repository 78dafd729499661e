"""Plain-text files: decoded whatever their encoding, laid out on letter pages, rendered with reportlab.

Owns: decoding (BOM, UTF-8, else charset-normalizer), normalising line ends and control characters,
wrapping into pages of a monospace font, and the byte-identical rendering of those pages.
Must not: read anything but the file it is given.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import unicodedata
from pathlib import Path

from packet.intake.convert.refusals import refusal, too_many_pages

# Letter paper, one-inch margins, a monospace font.
TEXT_FONT_SIZE = 10.0
TEXT_LEADING = 12.0
TEXT_MARGIN = 72.0
TEXT_FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
                   "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
                   "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
                   "/usr/local/share/fonts/DejaVuSansMono.ttf")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\u0080-\u009f]")


def decode_text(data: bytes) -> str:
    """The text of a plain-text file, whatever its encoding (BOM, UTF-8, else charset-normalizer)."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                          (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise refusal("unsupported", "the file is named as plain text but does not contain readable text",
                      "open it in the program that made it, save it as a PDF and drop that in")
    best = matches[0]
    # Western European text fits several 8-bit code pages equally well; a US plan's files are far
    # more often Windows-1252 (or Latin-1) than Central European, so prefer it when it fits as well.
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.01 \
                and match.coherence >= best.coherence - 0.05:
            return str(match)
    if best.coherence < 0.1:  # no language evidence at all (short text): take the common code page
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("cp1252")
    return str(best)


def normalise_text(text: str) -> str:
    """Line endings to \\n, tabs to spaces, control characters removed (form feeds kept: new page)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _CONTROL.sub("", text)
    return "\n".join(line.expandtabs(8) for line in text.split("\n"))


def _char_columns(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def wrap_text(text: str, columns: int, lines_per_page: int, max_pages: int) -> list[list[str]]:
    """Lay text out in pages of lines: long lines wrap at a space where possible; \\f starts a page."""
    pages: list[list[str]] = [[]]
    for block_number, block in enumerate(text.split("\f")):
        if block_number and pages[-1]:
            pages.append([])
        lines = block.split("\n")
        if block.endswith("\n"):
            lines.pop()
        for line in lines:
            for piece in _wrap_line(line.rstrip(), columns):
                if len(pages[-1]) >= lines_per_page:
                    if len(pages) >= max_pages:
                        raise too_many_pages(None, max_pages)
                    pages.append([])
                pages[-1].append(piece)
    while len(pages) > 1 and not any(line.strip() for line in pages[-1]):
        pages.pop()
    return pages


def _wrap_line(line: str, columns: int) -> list[str]:
    pieces = []
    while True:
        width, cut = 0, len(line)
        for position, ch in enumerate(line):
            width += _char_columns(ch)
            if width > columns:
                cut = position
                break
        if cut >= len(line):
            pieces.append(line)
            return pieces
        space = line.rfind(" ", 0, cut + 1)
        if space > cut // 2:
            pieces.append(line[:space].rstrip())
            line = line[space + 1:]
        else:
            pieces.append(line[:cut])
            line = line[cut:]


def _text_font() -> tuple[str, float]:
    """A monospace font with wide Unicode coverage (DejaVu Sans Mono), else the built-in Courier."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for candidate in TEXT_FONT_FILES:
        if os.path.isfile(candidate):
            try:
                if "IMRTextMono" not in pdfmetrics.getRegisteredFontNames():
                    pdfmetrics.registerFont(TTFont("IMRTextMono", candidate))
                return "IMRTextMono", pdfmetrics.stringWidth("M", "IMRTextMono", TEXT_FONT_SIZE)
            except Exception:  # noqa: BLE001 - a broken font file: fall back to Courier
                continue
    return "Courier", pdfmetrics.stringWidth("M", "Courier", TEXT_FONT_SIZE)


def render_text_pdf(pages: list[list[str]]) -> bytes:
    """Letter pages, one-inch margins, monospace; byte-identical for the same text."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    font, _ = _text_font()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=letter, invariant=1, pageCompression=1)
    pdf.setTitle("")
    for lines in pages:
        y = letter[1] - TEXT_MARGIN - TEXT_FONT_SIZE
        text = pdf.beginText(TEXT_MARGIN, y)
        text.setFont(font, TEXT_FONT_SIZE, TEXT_LEADING)
        for line in lines:
            text.textLine(line if font != "Courier" else line.encode("latin-1", "replace").decode("latin-1"))
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def convert_text(path: Path, max_pages: int) -> tuple[list[str], None, bytes]:
    from reportlab.lib.pagesizes import letter

    text = normalise_text(decode_text(path.read_bytes()))
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        raise refusal("empty", "the text file holds only blank space")
    _, char_width = _text_font()
    columns = max(20, int((letter[0] - 2 * TEXT_MARGIN) // char_width))
    lines_per_page = max(10, int((letter[1] - 2 * TEXT_MARGIN) // TEXT_LEADING))
    pages = wrap_text(text, columns, lines_per_page, max_pages)
    return ["\n".join(lines) for lines in pages], None, render_text_pdf(pages)
