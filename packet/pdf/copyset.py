"""The bytes of a copy set: pages of sealed IMR packets and rendered pages, in the order given.

Owns: `CopySetWriter`, which `packet.mailings.copies.write_copies` (the one copy-set
implementation: what goes in, slip sheets, the cover, the audit) fills page by page, and which
writes the file the way every output of the pdf room is written: sanitised, each stream measured
against `[limits] max_stream_bytes`, identical objects shared.
Must not: decide which pages a recipient may have, draw a page, or read a source document (a copy
set is made from the sealed packets only).
"""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from packet.pdf.errors import AssemblyError
from packet.pdf.sanitize import sanitize


class SealedPacket:
    """An imr-org-packet.pdf opened for copying: its page count and each page's text."""

    def __init__(self, path: Path):
        try:
            self._reader = PdfReader(str(path))
            self.pages = len(self._reader.pages)
        except (OSError, PdfReadError) as exc:
            raise AssemblyError(f"{path.name} cannot be read ({type(exc).__name__})", reason="open") from exc

    def text(self, number: int) -> str:
        """The text of page `number` (1-based); "" when pypdf cannot extract it."""
        try:
            return self._reader.pages[number - 1].extract_text() or ""
        except Exception:  # noqa: BLE001 - pypdf raises assorted errors on odd pages
            return ""


class CopySetWriter:
    def __init__(self, *, max_stream_bytes: int):
        self._writer = PdfWriter()
        self._max_stream_bytes = max_stream_bytes

    @property
    def pages(self) -> int:
        return len(self._writer.pages)

    def add_rendered(self, data: bytes) -> int:
        """Every page of a PDF the service rendered (a cover, a slip sheet); returns its page count."""
        pages = PdfReader(io.BytesIO(data)).pages
        for page in pages:
            self._writer.add_page(page)
        return len(pages)

    def add_blank(self, width: float, height: float) -> None:
        self._writer.add_blank_page(width, height)

    def add_packet_page(self, packet: SealedPacket, number: int) -> None:
        """Page `number` (1-based) of a sealed packet, without its links (they could point at
        pages that are not in this set)."""
        added = self._writer.add_page(packet._reader.pages[number - 1])
        if "/Annots" in added:
            del added["/Annots"]

    def finish(self, *, title: str) -> bytes:
        writer = self._writer
        writer.add_metadata({"/Title": title, "/Producer": "imr-packet", "/Creator": "imr-packet"})
        sanitize(writer, max_stream_bytes=self._max_stream_bytes)
        writer.compress_identical_objects()
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()
