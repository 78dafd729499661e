"""The bytes of a copy set and of a mailing's records enclosure: pages of sealed IMR packets, of
the releasable records' copies and rendered pages, in the order given.

Owns: `CopySetWriter`, which `packet.mailings.copies.write_copies` (the one copy-set
implementation: what goes in, slip sheets, the cover, the audit) fills page by page, and which
writes the file the way every output of the pdf room is written: sanitised, each stream measured
against `[limits] max_stream_bytes`, identical objects shared; `SealedPacket` and the one check for
the privileged mark on a page's text; `EnclosureWriter`, the pypdf side of
`packet.mailings.enclosures` (the enclosure's pages among the records' copies, and the mailing with
the enclosure, each enclosed page labelled with the text the mailings room gives, by
`packet.pdf.stamp.label_pages`).
Must not: decide which pages a recipient may have, draw a page, or read a source document (a copy
set is made from the sealed packets only).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pypdf import PdfWriter
from pypdf.errors import PdfReadError
from pypdf.generic import ArrayObject, ByteStringObject

from packet.model.models import PRIVILEGED_MARK
from packet.pdf.errors import AssemblyError
from packet.pdf.sanitize import drop_unreachable, sanitize
from packet.pdf.stamp import label_pages
from packet.pdfread import PdfReader


def carries_privileged_mark(text: str) -> bool:
    """Does a page's text carry the privileged mark (its words, however the text was broken)."""
    return "NOT FOR RELEASE TO ENROLLEE" in re.sub(r"\s+", " ", text).upper() or PRIVILEGED_MARK in text


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

    def carries_privileged_mark(self, number: int) -> bool:
        """Page `number` (1-based) carries the privileged mark."""
        return carries_privileged_mark(self.text(number))


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


class EnclosureWriter:
    """The records enclosure of one mailing, assembled in the writer that holds the records' copies
    (`packet.pdf.assemble.record_copies_writer`), or in a new one when nothing is copied: the copies'
    pages stay where they are, rendered slip sheets go between them in the order added, and `finish`
    puts the laid-out letter in front and writes that writer as the mailing. The copies' objects are
    never cloned (a clone of 5,000 copied pages held about 40 MB more at the render worker's peak),
    so an enclosure is written once."""

    def __init__(self, copies: PdfWriter | None = None):
        """`copies`: the records' copies, every page of which the enclosure must place (`add_copied`)."""
        self._writer = copies if copies is not None else PdfWriter()
        self._copies = len(self._writer.pages) if copies is not None else 0
        self._copied = 0  # copies placed so far (they are placed in their order)
        self._placed = 0  # pages placed so far, copies and slip sheets
        self._written = False
        _pages_only(self._writer)

    @property
    def copies_pages(self) -> int:
        """How many pages the records' copies have (0 without copies)."""
        return self._copies

    @property
    def pages(self) -> int:
        return len(self._writer.pages)

    @property
    def complete(self) -> bool:
        """Every page of the copies has been placed."""
        return self._copied == self._copies

    def add_rendered(self, data: bytes) -> None:
        """Every page of a PDF the service rendered (a slip sheet), after the pages placed so far."""
        for page in PdfReader(io.BytesIO(data)).pages:
            self._writer.insert_page(page, self._placed)
            self._placed += 1

    def add_copied(self, index: int) -> None:
        """Page `index` (0-based) of the records' copies, the next one in their order, without its
        links (they could point at pages that are not in this mailing)."""
        if index != self._copied or self._copied >= self._copies:
            raise AssemblyError(f"the enclosure took copied page {index + 1} where page {self._copied + 1} "
                                f"of {self._copies} comes next", reason="enclosure_order")
        page = self._writer.pages[self._placed]
        if "/Annots" in page:
            del page["/Annots"]
        self._copied += 1
        self._placed += 1

    def finish(self, head: bytes, label: Callable[[int, int], str], *, identity: bytes, out: BinaryIO) -> None:
        """Write the mailing into `out`: `head`'s pages (its form fields too), then the enclosure's, each
        of those with `label(its page number, the total)` at its top right
        (`packet.pdf.stamp.label_pages`); `head`'s metadata. `identity` (what determines the file)
        makes its /ID."""
        if self._written:
            raise AssemblyError("an enclosure is written into one mailing only", reason="enclosure_reused")
        if not self.complete:
            raise AssemblyError(f"the enclosure placed {self._copied} of the {self._copies} copied pages",
                                reason="enclosure_incomplete")
        self._written = True
        writer = self._writer
        tail = [writer.get_page(index) for index in range(len(writer.pages))]
        head_reader = PdfReader(io.BytesIO(head))
        writer.merge(0, head_reader, import_outline=False)
        first = len(head_reader.pages)
        total = first + len(tail)
        label_pages(writer, tail, [label(first + 1 + index, total) for index in range(len(tail))])
        writer.add_metadata({key: value for key, value in (head_reader.metadata or {}).items()})
        drop_unreachable(writer)  # what the copies' pages no longer use since they were stamped
        _write(writer, identity, out)


def _pages_only(writer: PdfWriter) -> None:
    """Leave the writer's catalog only its pages: no outline, page labels, named destinations or
    forms of the copied documents go into a mailing (their pages alone do)."""
    root = writer._root_object  # noqa: SLF001 - pypdf has no public catalog accessor on a writer
    for key in list(root.keys()):
        if key not in ("/Type", "/Pages"):
            del root[key]


def _write(writer: PdfWriter, identity: bytes, out: BinaryIO) -> None:
    """Into `out` as it is made: a mailing of thousands of copied pages is never held whole in memory."""
    file_id = ByteStringObject(hashlib.sha256(identity).digest()[:16])
    writer._ID = ArrayObject([file_id, file_id])  # noqa: SLF001 - fixed /ID: rebuilds are byte-identical
    writer.compress_identical_objects()
    writer.write(out)
