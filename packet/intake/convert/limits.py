"""Bounded inflation: how far a compressed PDF stream or a page's content unpacks, known before
anything inflates it whole; and the declared decoded size of the images a PDF draws.

Owns: counting a zlib stream's output in small pieces (stopping just past the bound), the scan of
every stream in a PDF's bytes, the per-page sum of content streams (one stream named many times
counts each time), and the refusals that name the limit. Deflate cannot expand data more than
MAX_DEFLATE_RATIO times, so a stream whose compressed size times that stays under the bound is
never inflated here: ordinary files cost next to nothing.
Must not: keep inflated data, or change the file.
"""

from __future__ import annotations

import base64
import binascii
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
_COMPONENTS = {b"DeviceGray": 1, b"CalGray": 1, b"DeviceRGB": 3, b"CalRGB": 3, b"Lab": 3, b"DeviceCMYK": 4}
_DICT_WINDOW = 4096  # bytes before a stream keyword where its dictionary is looked for
_NUMBER = rb"\s*(\d{1,10})(?!\s+\d+\s+R)"


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
        size = _declared_image_bytes(data, match.start())
        if size > limit:
            raise limit_refusal(f"the document holds an image that unpacks to {megabytes(size)} MB, more "
                                f"than the {megabytes(limit)} MB limit for unpacked data in a document")
        start = match.end()
        end = data.find(b"endstream", start)
        if end == -1:
            end = len(data)
        if end - start <= threshold:
            continue  # cannot unpack past the limit
        size = inflated_size(data, start, end, limit)
        if size == 0:  # not zlib as it stands: text-encoded zlib ([/ASCIIHexDecode /FlateDecode] and the like)?
            decoded = _text_decoded(data, match.start(), start, end)
            size = inflated_size(decoded, 0, len(decoded), limit) if decoded else 0
        if size > limit:
            raise inflation_refusal(size, limit)


_TEXT_THEN_FLATE = re.compile(rb"/Filter\s*\[\s*/(ASCIIHexDecode|AHx|ASCII85Decode|A85)\s*/(FlateDecode|Fl)\b")


def _text_decoded(data, stream_at: int, start: int, end: int) -> bytes | None:
    """The bytes of a stream whose first filter is ASCIIHex or ASCII85 and whose second is Flate,
    with the first filter undone (at most twice the stream's size), or None."""
    found = _TEXT_THEN_FLATE.search(_dictionary(data, stream_at) or b"")
    if found is None:
        return None
    encoded = bytes(data[start:end])
    try:
        if found.group(1) in (b"ASCIIHexDecode", b"AHx"):
            text = encoded.split(b">", 1)[0].translate(None, b" \t\r\n\f\x00")
            return binascii.unhexlify(text + b"0" * (len(text) % 2))
        return base64.a85decode(encoded.split(b"~>", 1)[0].replace(b"<~", b"", 1), ignorechars=b" \t\r\n\f\x00")
    except (ValueError, binascii.Error):
        return None


def _dictionary(data, stream_at: int) -> bytes | None:
    """The text of the dictionary before the stream keyword at `stream_at` (from its object's
    header, within _DICT_WINDOW bytes), or None."""
    low = max(0, stream_at - _DICT_WINDOW)
    window = bytes(data[low:stream_at])
    header = window.rfind(b" obj")
    return window[header:] if header != -1 else window


def _declared_image_bytes(data, stream_at: int) -> int:
    """What the image whose dictionary ends at `stream_at` declares it decodes to (0 when the stream
    is not an image, or its size is given indirectly). A stream's dictionary is never inside an
    object stream, so every image of a file is seen here; unknown colour spaces count one component,
    so no ordinary image is refused for a guess."""
    if data.rfind(b"/Image", max(0, stream_at - _DICT_WINDOW), stream_at) == -1:
        return 0
    window = _dictionary(data, stream_at)
    if not re.search(rb"/Subtype\s*/Image\b", window):
        return 0
    width, height = re.search(rb"/Width" + _NUMBER, window), re.search(rb"/Height" + _NUMBER, window)
    if not (width and height):
        return 0
    bits = re.search(rb"/BitsPerComponent" + _NUMBER, window)
    space = re.search(rb"/ColorSpace\s*/(\w+)", window)
    components = _COMPONENTS.get(space.group(1), 1) if space else 1
    depth = 1 if re.search(rb"/ImageMask\s*true", window) else min(16, max(1, int(bits.group(1)) if bits else 8))
    return int(width.group(1)) * int(height.group(1)) * depth * components // 8


def check_pages(reader, limit: int) -> None:
    """Refuse a PDF whose page content (its streams joined, as a reader joins them) passes `limit`:
    e.g. one large stream named many times in a page's /Contents array."""
    sizes: dict[tuple[int, int], int] = {}
    threshold = limit // MAX_DEFLATE_RATIO
    for page in reader.pages:
        try:
            _check_page(page, limit, sizes, threshold)
        except (RefusedFile, MemoryError):
            raise
        except Exception:  # noqa: BLE001 - a broken object here is for the readers to judge, not this check
            continue


def _check_page(page, limit: int, sizes: dict, threshold: int) -> None:
    from pypdf.generic import ArrayObject, IndirectObject

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
