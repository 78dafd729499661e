"""Bounded inflation: how far a compressed PDF stream or a page's content unpacks, known before
anything inflates it whole; and the declared size of the images a PDF draws.

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


def check_pages(reader, limit: int, max_pixels: int) -> None:
    """Refuse a PDF whose page content (its streams joined, as a reader joins them) passes `limit`
    (e.g. one large stream named many times in a page's /Contents array), or that draws an image
    declaring more than `max_pixels` pixels (one an OCR engine or a viewer would have to decode)."""
    sizes: dict[tuple[int, int], int] = {}
    seen: set[tuple[int, int]] = set()  # image and form XObjects already checked
    threshold = limit // MAX_DEFLATE_RATIO
    for page in reader.pages:
        try:
            _check_page(page, limit, max_pixels, sizes, seen, threshold)
        except (RefusedFile, MemoryError):
            raise
        except Exception:  # noqa: BLE001 - a broken object here is for the readers to judge, not this check
            continue


def _check_page(page, limit: int, max_pixels: int, sizes: dict, seen: set, threshold: int) -> None:
    from pypdf.generic import ArrayObject, IndirectObject

    _check_images(page, max_pixels, seen)
    contents = page.get("/Contents")
    if isinstance(contents, IndirectObject):
        contents = contents.get_object()
    if not isinstance(contents, ArrayObject) or len(contents) < 2:
        return  # a single stream: the scan of every stream has bounded it already
    streams = []
    for item in contents:
        key = (item.idnum, item.generation) if isinstance(item, IndirectObject) else None
        stream = item.get_object()
        raw = getattr(stream, "_data", b"") or b""
        streams.append((key, stream, raw))
    if sum(len(raw) for _, _, raw in streams) <= threshold:
        return
    total = 0
    for key, stream, raw in streams:
        size = sizes.get(key) if key is not None else None
        if size is None:
            filters = stream.get("/Filter")
            flate = filters == "/FlateDecode" or (isinstance(filters, ArrayObject)
                                                  and list(filters) == ["/FlateDecode"])
            size = inflated_size(raw, 0, len(raw), limit) if flate else len(raw)
            if key is not None:
                sizes[key] = size
        total += size
        if total > limit:
            raise inflation_refusal(total, limit, "the content of one page")


def _check_images(holder, max_pixels: int, seen: set) -> None:
    """The images a page (or a form it draws) names in its resources, forms followed once each."""
    from pypdf.generic import DictionaryObject, IndirectObject

    pending = [holder]
    while pending:
        current = pending.pop()
        resources = current.get("/Resources")
        resources = resources.get_object() if resources is not None else None
        xobjects = resources.get("/XObject") if isinstance(resources, DictionaryObject) else None
        xobjects = xobjects.get_object() if xobjects is not None else None
        if not isinstance(xobjects, DictionaryObject):
            continue
        for reference in xobjects.values():
            if isinstance(reference, IndirectObject):
                key = (reference.idnum, reference.generation)
                if key in seen:
                    continue
                seen.add(key)
            xobject = reference.get_object()
            if not isinstance(xobject, DictionaryObject):
                continue
            subtype = xobject.get("/Subtype")
            if subtype == "/Image":
                try:
                    pixels = int(xobject.get("/Width", 0)) * int(xobject.get("/Height", 0))
                except (TypeError, ValueError):
                    continue
                if pixels > max_pixels:
                    raise limit_refusal(f"the document holds an image of {pixels / 1e6:.0f} million pixels, more "
                                        f"than the limit of {max_pixels / 1e6:g} million pixels for one image")
            elif subtype == "/Form":
                pending.append(xobject)
