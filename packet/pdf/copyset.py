"""The bytes of a copy set and of a mailing's records enclosure: pages of sealed IMR packets, of
the releasable records' copies and rendered pages, in the order given.

Owns: `CopySetWriter`, which `packet.mailings.copies.write_copies` (the one copy-set
implementation: what goes in, slip sheets, the cover, the audit) fills page by page, and which
writes the file the way every output of the pdf room is written: sanitised, each stream measured
against `[limits] max_stream_bytes`, identical objects shared; `SealedPacket` and the one check for
the privileged mark on a page's text; `EnclosureWriter` and `append_labelled`, the pypdf side
of `packet.mailings.enclosures` (the enclosure's pages, and the mailing with the enclosure
appended, each enclosed page labelled with the text the mailings room gives, by
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

from pypdf import PdfWriter
from pypdf.errors import PdfReadError
from pypdf.generic import ArrayObject, ByteStringObject

from packet.model.models import PRIVILEGED_MARK
from packet.pdf.errors import AssemblyError
from packet.pdf.sanitize import sanitize
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
    """The records enclosure of one mailing: pages of the releasable records' copies (one PDF, made
    by `packet.pdf.assemble.write_record_copies`, or its pages from `record_copy_pages`) and
    rendered slip sheets, in the order added."""

    def __init__(self, copies: bytes | list | None = None):
        """`copies`: the records' copies as a PDF's bytes, or as the pages of one
        (`packet.pdf.assemble.record_copy_pages`)."""
        self._writer = PdfWriter()
        self._copies = list(PdfReader(io.BytesIO(copies)).pages) if isinstance(copies, bytes) else copies

    @property
    def copies_pages(self) -> int:
        """How many pages the records' copies have (0 without copies)."""
        return len(self._copies) if self._copies is not None else 0

    @property
    def pages(self) -> int:
        return len(self._writer.pages)

    def add_rendered(self, data: bytes) -> None:
        """Every page of a PDF the service rendered (a slip sheet)."""
        self._writer.append(PdfReader(io.BytesIO(data)), import_outline=False)

    def add_copied(self, index: int) -> None:
        """Page `index` (0-based) of the records' copies, without its links (they could point at
        pages that are not in this mailing)."""
        added = self._writer.add_page(self._copies[index])
        if "/Annots" in added:
            del added["/Annots"]

    def enclosed_pages(self) -> list:
        """The enclosure's pages, in order (their objects stay in this writer): `append_labelled`
        copies them on. The enclosure is never written as a file of its own."""
        writer = self._writer
        return [writer.get_page(index) for index in range(len(writer.pages))]


def append_labelled(head: bytes, tail: list, label: Callable[[int, int], str], *, identity: bytes) -> bytes:
    """`head`'s pages, then the pages of `tail` (`EnclosureWriter.enclosed_pages`), each of those
    with `label(its page number, the total)` at its top right (`packet.pdf.stamp.label_pages`);
    `head`'s metadata. `identity` (what determines the file) makes its /ID."""
    head_reader = PdfReader(io.BytesIO(head))
    writer = PdfWriter()
    writer.append(head_reader, import_outline=False)
    first = len(writer.pages)
    total = first + len(tail)
    added = [writer.add_page(page) for page in tail]
    label_pages(writer, added, [label(first + 1 + index, total) for index in range(len(tail))])
    writer.add_metadata({key: value for key, value in (head_reader.metadata or {}).items()})
    return _write(writer, identity)


def _write(writer: PdfWriter, identity: bytes) -> bytes:
    file_id = ByteStringObject(hashlib.sha256(identity).digest()[:16])
    writer._ID = ArrayObject([file_id, file_id])  # noqa: SLF001 - fixed /ID: rebuilds are byte-identical
    writer.compress_identical_objects()
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
