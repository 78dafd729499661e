"""Tesseract's hOCR read into lines and words, and the invisible text layer drawn from them.

Owns: parsing hOCR (lines in reading order, word boxes, word confidences, the `textangle` of turned
lines), turning boxes with the page, the page's plain text, and the one-page PDF of invisible
(render mode 3) text that `packet.intake.ocr` returns as a page's text layer.
Must not: run Tesseract or read files (packet.intake.ocr does), or log document text.
"""

from __future__ import annotations

import io
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, replace

LAYER_FONT = "Helvetica"  # one of the PDF standard 14: nothing embedded; the text is invisible anyway
_HOCR_LINES = {"ocr_line", "ocr_header", "ocr_caption", "ocr_textfloat"}
_TITLE_FIELD = re.compile(r"(\w+) ([^;]+)")


@dataclass(frozen=True)
class Word:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels, y down
    confidence: float


@dataclass(frozen=True)
class Line:
    box: tuple[float, float, float, float]
    words: tuple[Word, ...]
    angle: int = 0  # hOCR textangle: 90 = the text runs upwards
    descenders: float = 0.0
    size: float = 0.0  # hOCR x_size: the height of the line's letters, pixels
    paragraph: int = 0

    def turned(self, rotation: int, width: int, height: int) -> Line:
        """The same line on the page turned `rotation` degrees clockwise."""
        return replace(self, box=_turn_box(self.box, rotation, width, height), angle=(self.angle - rotation) % 360,
                       words=tuple(replace(w, box=_turn_box(w.box, rotation, width, height)) for w in self.words))


def _turn_box(box: tuple[float, float, float, float], rotation: int, width: int, height: int):
    x0, y0, x1, y1 = box
    if rotation == 90:
        corners = [(height - y0, x0), (height - y1, x1)]
    elif rotation == 180:
        corners = [(width - x0, height - y0), (width - x1, height - y1)]
    else:  # 270
        corners = [(y0, width - x0), (y1, width - x1)]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return (min(xs), min(ys), max(xs), max(ys))


def _title(element: ET.Element) -> dict[str, str]:
    return {key: value.strip() for key, value in _TITLE_FIELD.findall(element.get("title", ""))}


def _box(fields: dict[str, str]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in fields["bbox"].split()[:4])
    return (x0, y0, x1, y1)


def parse_hocr(data: bytes) -> list[Line]:
    """The lines of a Tesseract hOCR page, in reading order, with their words and confidences."""
    return _page_lines(ET.fromstring(data))


def parse_hocr_pages(data: bytes) -> list[list[Line]]:
    """The lines of each page of a multi-page hOCR document (Tesseract reading a list of images),
    one entry per `ocr_page`, in order."""
    root = ET.fromstring(data)
    return [_page_lines(element) for element in root.iter() if "ocr_page" in element.get("class", "").split()]


def _page_lines(root: ET.Element) -> list[Line]:
    lines: list[Line] = []
    paragraph = 0
    for element in root.iter():
        classes = set(element.get("class", "").split())
        if "ocr_par" in classes:
            paragraph += 1
        if not classes & _HOCR_LINES:
            continue
        fields = _title(element)
        words = []
        for span in element.iter():
            if "ocrx_word" not in span.get("class", "").split():
                continue
            text = "".join(span.itertext()).strip()
            if not text:
                continue
            word_fields = _title(span)
            words.append(Word(text, _box(word_fields), float(word_fields.get("x_wconf", "0"))))
        if words:
            box = _box(fields)
            angle = int(float(fields.get("textangle", "0"))) % 360 if "textangle" in fields else _run_angle(box, words)
            lines.append(Line(box, tuple(words), angle=angle,
                              descenders=float(fields.get("x_descenders", "0")),
                              size=float(fields.get("x_size", "0")), paragraph=paragraph))
    return lines


def _run_angle(box: tuple[float, float, float, float], words: list[Word]) -> int:
    """The textangle of a line hOCR gives none for: a line standing upright on the page (Tesseract's
    automatic layout reads a page turned a quarter clockwise as columns running downwards) is 270
    when its words run down the page, 90 when they run up; a lying line is 0."""
    x0, y0, x1, y1 = box
    if len(words) < 2 or (y1 - y0) < 2 * (x1 - x0):
        return 0
    first, last = words[0].box, words[-1].box
    return 270 if (last[1] + last[3]) > (first[1] + first[3]) else 90


def page_rotation(lines: list[Line]) -> int:
    """Clockwise turn that makes most words upright (textangle 90: turn 90 clockwise)."""
    votes = Counter()
    for line in lines:
        votes[line.angle] += len(line.words)
    if not votes:
        return 0
    angle, _ = votes.most_common(1)[0]
    return angle if angle in (90, 180, 270) else 0


def page_text(lines: list[Line]) -> str:
    out: list[str] = []
    previous = None
    for line in lines:
        if previous is not None and line.paragraph != previous:
            out.append("")
        out.append(" ".join(word.text for word in line.words))
        previous = line.paragraph
    return "\n".join(out).strip()


def _layer_text(text: str) -> str:
    """What the standard font can carry: compatibility forms folded (ligatures), others as '?'."""
    folded = unicodedata.normalize("NFKC", text)
    return folded.encode("cp1252", errors="replace").decode("cp1252")


def text_layer(lines: list[Line], image_size: tuple[int, int], page_size: tuple[float, float]) -> bytes:
    """A one-page PDF of `page_size` points holding only invisible text (render mode 3), each word
    stretched over its box, to be laid over the page image (searchable and selectable)."""
    # reportlab (with its shaping engine) is imported by the first page that needs a layer: a
    # conversion worker that meets only born-digital files starts without it (about 0.025 s of CPU
    # and 5 MB in each worker a build or a command-line run starts).
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    sheet = canvas.Canvas(out, pagesize=page_size, invariant=1, pageCompression=1)
    scale_x, scale_y = page_size[0] / image_size[0], page_size[1] / image_size[1]
    for line in lines:
        x0, y0, x1, y1 = line.box
        letters = (line.size or (y1 - y0)) * scale_y
        font_size = max(1.0, letters * 0.8)
        upright = line.angle == 0
        baseline_px = y1 - (line.descenders if upright else 0.0)
        for word in line.words:
            text = _layer_text(word.text)
            wx0, wy0, wx1, wy1 = word.box
            width = max(0.5, (wx1 - wx0) * scale_x)
            natural = stringWidth(text, LAYER_FONT, font_size) or 1.0
            glyphs = sheet.beginText()
            glyphs.setTextRenderMode(3)
            glyphs.setFont(LAYER_FONT, font_size)
            glyphs.setHorizScale(100.0 * width / natural)
            glyphs.setTextOrigin(wx0 * scale_x, page_size[1] - (baseline_px if upright else wy1) * scale_y)
            glyphs.textOut(text)
            sheet.drawText(glyphs)
    sheet.showPage()
    sheet.save()
    return out.getvalue()


def mean_confidence(lines: list[Line]) -> float | None:
    confidences = [word.confidence for line in lines for word in line.words]
    return sum(confidences) / len(confidences) if confidences else None
