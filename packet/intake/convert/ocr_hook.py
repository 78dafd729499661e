"""Where the converters meet OCR: the text of a page that exists only as an image.

Owns: the two calls every converter makes for a page without a text layer (an image frame, or a
page of a PDF whose text is blank). Today both answer "" (no OCR): the OCR engine
(packet.intake.ocr) plugs in here, and nowhere else. Runs in the conversion worker, under its
memory and time limits. Must not: log, or keep page images after the call.
"""

from __future__ import annotations

from pathlib import Path


def image_text(frame) -> str:
    """The text of one decoded image frame (a Pillow image), or "" when it cannot be read."""
    return ""


def pdf_page_text(pdf_path: Path, index: int) -> str:
    """The text of page `index` (from 0) of the PDF at `pdf_path`, a page without a text layer."""
    return ""
