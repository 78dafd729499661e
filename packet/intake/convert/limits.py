"""Bounded inflation: how far a compressed PDF stream or a page's content unpacks, known before
anything inflates it whole.

Owns: counting a zlib stream's output in small pieces (stopping just past the bound), the scan of
every stream in a PDF's bytes, the per-page sum of content streams (one stream named many times
counts each time), and the refusals that name the limit. Deflate cannot expand data more than
MAX_DEFLATE_RATIO times, so a stream whose compressed size times that stays under the bound is
never inflated here: ordinary files cost next to nothing.
Must not: keep inflated data, or change the file.
"""

from __future__ import annotations

import mmap
import re
import zlib
from pathlib import Path

from packet.errors import RefusedFile
from packet.intake.convert.refusals import limit_refusal, megabytes

MAX_DEFLATE_RATIO = 1032  # deflate's largest possible expansion (258 bytes from 2 bits)
_PIECE = 1 << 16  # compressed bytes fed to zlib at a time
_OUT = 1 << 20  # inflated bytes produced at a time (and dropped)
_STREAM_KEYWORD = re.compile(rb"(?<!end)stream\r?\n")


def inflated_size(data, start: int, end: int, limit: int) -> int:
    """How many bytes the zlib data in data[start:end] inflates to, counting at most to just past
    `limit`; 0 when it is not zlib data at all (another filter, or encrypted)."""
    inflater = zlib.decompressobj()
    total = 0
    view = memoryview(data)
    try:
        for position in range(start, end, _PIECE):
            piece = view[position:min(end, position + _PIECE)]
            while piece and not inflater.eof:
                produced = len(inflater.decompress(piece, _OUT))
                total += produced
                if total > limit:
                    return total
                if not produced and len(inflater.unconsumed_tail) == len(piece):
                    break  # no progress (cannot happen with zlib's contract; never spin on it)
                piece = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error:
        pass  # not zlib (or damaged past here): what came out so far is what a reader would get
    finally:
        view.release()
    return total


def inflation_refusal(size: int, limit: int, what: str = "one compressed part of the file") -> RefusedFile:
    return limit_refusal(f"{what} unpacks to more than {megabytes(limit)} MB (the limit for unpacked data "
                         f"in a document); it holds at least {megabytes(size)} MB")


def check_pdf_streams(path: Path | None, limit: int, data: bytes | None = None) -> None:
    """Refuse a PDF (`path`, or its bytes `data`) holding a stream that inflates past `limit`."""
    if data is not None:
        _scan_streams(data, limit)
        return
    with open(path, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return
        with mapped:
            _scan_streams(mapped, limit)


def _scan_streams(data, limit: int) -> None:
    threshold = limit // MAX_DEFLATE_RATIO
    for match in _STREAM_KEYWORD.finditer(data):
        start = match.end()
        end = data.find(b"endstream", start)
        if end == -1:
            end = len(data)
        if end - start <= threshold:
            continue  # cannot unpack past the limit
        size = inflated_size(data, start, end, limit)
        if size > limit:
            raise inflation_refusal(size, limit)


def check_page_contents(reader, limit: int) -> None:
    """Refuse a PDF whose page content (its streams joined, as a reader joins them) passes `limit`:
    e.g. one large stream named many times in a page's /Contents array."""
    from pypdf.generic import ArrayObject, IndirectObject

    sizes: dict[tuple[int, int], int] = {}
    threshold = limit // MAX_DEFLATE_RATIO
    for page in reader.pages:
        contents = page.get("/Contents")
        if isinstance(contents, IndirectObject):
            contents = contents.get_object()
        if not isinstance(contents, ArrayObject) or len(contents) < 2:
            continue  # a single stream: the scan of every stream has bounded it already
        streams = []
        for item in contents:
            key = (item.idnum, item.generation) if isinstance(item, IndirectObject) else None
            stream = item.get_object()
            raw = getattr(stream, "_data", b"") or b""
            streams.append((key, stream, raw))
        if sum(len(raw) for _, _, raw in streams) <= threshold:
            continue
        total = 0
        for key, stream, raw in streams:
            size = sizes.get(key) if key is not None else None
            if size is None:
                filters = stream.get("/Filter")
                flate = filters == "/FlateDecode" or (isinstance(filters, ArrayObject) and list(filters) == ["/FlateDecode"])
                size = inflated_size(raw, 0, len(raw), limit) if flate else len(raw)
                if key is not None:
                    sizes[key] = size
            total += size
            if total > limit:
                raise inflation_refusal(total, limit, "the content of one page")
