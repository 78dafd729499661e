"""Bounded inflation: how far a compressed PDF stream or a page's content unpacks, known before
anything inflates it whole; and the declared decoded size of the images a PDF draws.

Owns: counting a zlib stream's output in small pieces (stopping just past the bound), the scan of
every stream in a PDF's bytes, the per-page sum of content streams (one stream named many times
counts each time), how many annotations a page and a file carry, and the refusals that name the
limit. Deflate cannot expand data more than MAX_DEFLATE_RATIO times, so a stream whose compressed
size times that stays under the bound is never inflated here: ordinary files cost next to nothing.
pypdf has decoding caps of its own (75 MB each by default): `pypdf_bounds` sets them to our bound
for the code it wraps (pypdf keeps them per thread), so that a file within `[limits]
max_inflated_bytes` is never stopped by pypdf, and `pypdf_limit_refusal` turns one of those caps,
hit all the same (a stream the checks above could not see), into a refusal naming our limit.
Must not: keep inflated data, or change the file.
"""

from __future__ import annotations

import binascii
import mmap
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pypdf import apply_configuration, get_configuration
from pypdf.errors import LimitReachedError
from pypdf.generic import ArrayObject, IndirectObject, StreamObject

from packet.errors import RefusedFile
from packet.intake.convert.refusals import limit_refusal, megabytes, refusal
from packet.intake.convert.streams import (IMAGE_CODECS, a85decode, MAX_IMAGE_SIDE, MAX_RATIO, ImpossibleImage,
                                           bound_by_ratio, canonical_filters, chain_size, image_size,
                                           inflated_beyond, stream_filters)

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
    # (counting stops just past the limit, so the size found is often the limit itself: then not repeated)
    found = f"; it holds at least {megabytes(size)} MB" if megabytes(size) != megabytes(limit) else ""
    return limit_refusal(f"{what} unpacks to more than {megabytes(limit)} MB (the limit for unpacked data "
                         f"in a document){found}")


def check_pdf_streams(path: Path | None, limit: int, data: bytes | None = None) -> set[int] | None:
    """Refuse a PDF (`path`, or its bytes `data`) holding a stream or an image that decodes past
    `limit`, as far as the file's bytes tell (before pypdf reads it). Returns the numbers of the
    objects whose stream the bytes alone cannot settle (a filter, a decode parameter or an image
    size given by reference), for `check_objects`; None when that cannot be told (then every object)."""
    if data is not None:
        return _scan_streams(data, limit)
    with open(path, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return set()
        with mapped:
            return _scan_streams(mapped, limit)


# Entries that, given by reference ("12 0 R"), leave a stream's decoded size unknown to the scan.
_BY_REFERENCE = re.compile(rb"/(?:Filter|DecodeParms|DP|Width|Height|BitsPerComponent|ColorSpace|ImageMask)"
                           rb"\s*\d+\s+\d+\s+R\b")
_KNOWN_FILTERS = frozenset(MAX_RATIO) | IMAGE_CODECS
_OBJECT_HEADER = re.compile(rb"(\d+)\s+\d+\s+obj\b")


def _scan_streams(data, limit: int) -> set[int] | None:
    threshold = limit // MAX_DEFLATE_RATIO
    unsettled: set[int] | None = set()
    for match in _STREAM_KEYWORD.finditer(data):
        raw = bytes(data[max(0, match.start() - _DICT_WINDOW):match.start()])
        header = raw.rfind(b" obj")
        window = raw[header:] if header != -1 else raw  # the stream's dictionary (as _dictionary)
        filters = _filters(window)
        if unsettled is not None and (header == -1 or b"#" in window or _BY_REFERENCE.search(window)
                                      or any(name not in _KNOWN_FILTERS for name in filters)):
            # (a name written with # escapes, "/LZW#44ecode", is another name to a regular expression)
            numbers = _OBJECT_HEADER.findall(raw[:header + 4]) if header != -1 else []
            if numbers:
                unsettled.add(int(numbers[-1]))
            else:
                unsettled = None  # a dictionary too long to see whole: pypdf reads every object
        size = _declared_image(window)
        if size > limit:
            raise image_refusal(size, limit)
        start = match.end()
        end = data.find(b"endstream", start)
        if end == -1:
            end = len(data)
        if filters and any(name not in ("/FlateDecode", "/ASCIIHexDecode", "/ASCII85Decode") for name in filters):
            # LZW, run-length and the image codecs' text prefixes: decoded with the bound as budget
            text_filters = filters[:-1] if filters[-1] in IMAGE_CODECS else filters
            if bound_by_ratio(end - start, text_filters) > limit:
                early = 0 if re.search(rb"/EarlyChange\s+0\b", window) else 1
                size = chain_size(bytes(data[start:end]), text_filters, limit, [early] * len(text_filters))
                if size > limit:
                    raise inflation_refusal(size, limit)
            # and on to the zlib count all the same: the names found may not be this stream's own
        if end - start <= threshold:
            continue  # cannot unpack past the limit
        size = inflated_size(data, start, end, limit)
        if size == 0:  # not zlib as it stands: text-encoded zlib ([/ASCIIHexDecode /FlateDecode] and the like)?
            decoded = _text_decoded(data, match.start(), start, end)
            size = inflated_size(decoded, 0, len(decoded), limit) if decoded else 0
        if size > limit:
            raise inflation_refusal(size, limit)
    return unsettled


_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[^\s/\[\]<>()]+)")


def _filters(window: bytes) -> list[str]:
    """The filter names a stream's dictionary gives directly (none when it gives them indirectly:
    pypdf resolves those, and `check_objects` measures them)."""
    found = _FILTER.search(window)
    if found is None:
        return []
    names = re.findall(rb"/[^\s/\[\]<>()]+", found.group(1))
    return canonical_filters(name.decode("latin-1") for name in names)


def image_refusal(size: int, limit: int) -> RefusedFile:
    return limit_refusal(f"the document holds an image that unpacks to {megabytes(size)} MB, more "
                         f"than the {megabytes(limit)} MB limit for unpacked data in a document")


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
        return a85decode(encoded.split(b"~>", 1)[0].replace(b"<~", b"", 1), ignorechars=b" \t\r\n\f\x00")
    except (ValueError, binascii.Error):
        return None


def _dictionary(data, stream_at: int) -> bytes | None:
    """The text of the dictionary before the stream keyword at `stream_at` (from its object's
    header, within _DICT_WINDOW bytes), or None."""
    low = max(0, stream_at - _DICT_WINDOW)
    window = bytes(data[low:stream_at])
    header = window.rfind(b" obj")
    return window[header:] if header != -1 else window


def _declared_image(window: bytes | None) -> int:
    """The bytes the image whose dictionary is `window` declares it decodes to (0 when the
    stream is not an image, or its size is given indirectly: `check_objects` resolves those). A
    stream's dictionary is never inside an object stream, so every image of a file is seen here;
    unknown colour spaces count one component, so no ordinary image is refused for a guess."""
    if not window or window.find(b"/Image") == -1 or not re.search(rb"/Subtype\s*/Image\b", window):
        return 0
    width, height = re.search(rb"/Width" + _NUMBER, window), re.search(rb"/Height" + _NUMBER, window)
    if not (width and height):
        return 0
    bits = re.search(rb"/BitsPerComponent" + _NUMBER, window)
    space = re.search(rb"/ColorSpace\s*/(\w+)", window)
    components = _COMPONENTS.get(space.group(1), 1) if space else 1
    depth = 1 if re.search(rb"/ImageMask\s*true", window) else min(16, max(1, int(bits.group(1)) if bits else 8))
    return int(width.group(1)) * int(height.group(1)) * depth * components // 8


def check_objects(reader, limit: int, only: set[int] | None = None) -> None:
    """Refuse a PDF holding a stream or an image that decodes past `limit` (or an image with a size
    that is not a size), measured on every object as pypdf reads it: filters, image
    sizes and decode parameters given through indirect references, dictionaries too long or too
    odd for the scan of the bytes. Nothing is decoded past the bound. `only`: the numbers of the
    objects to read (those `check_pdf_streams` could not settle); None: every object."""
    numbers: set[tuple[int, int]] = set()
    for generation, table in reader.xref.items():
        numbers.update((number, generation) for number in table)
    # A stream is never inside an object stream (PDF 32000-1 7.5.7), so those objects (tens of
    # thousands in some files) are not read here; the object streams themselves are.
    in_streams = set(reader.xref_objStm)
    for number, generation in sorted(numbers):
        if number in in_streams or (only is not None and number not in only):
            continue
        try:
            obj = reader.get_object(IndirectObject(number, generation, reader))
        except (RefusedFile, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken object is for the readers to judge, not this check
            if pypdf_size_cap(exc):
                raise pypdf_limit_refusal(limit) from exc
            continue
        if isinstance(obj, StreamObject):
            _check_stream(obj, limit)


def _check_stream(stream, limit: int) -> None:
    if stream.get("/Subtype") is not None and _resolved(stream.get("/Subtype")) == "/Image":
        try:
            size = image_size(stream)[1]
        except ImpossibleImage as exc:
            raise refusal("corrupt", f"an image in the document declares an impossible size ({exc}): "
                                     f"not a whole number of pixels from 1 to {MAX_IMAGE_SIDE:,}") from exc
        if size > limit:
            raise image_refusal(size, limit)
    size = inflated_beyond(stream, limit)
    if size is not None:
        raise inflation_refusal(size, limit)


def _resolved(value):
    return value.get_object() if isinstance(value, IndirectObject) else value


# Annotations (links, comments, form fields) are kept in the packet, and pypdf reads and copies each
# one where a page is merged, in the build's own process with no time limit: about 4,000 a second. A
# page of a browser print with 32,768 links (the corpus's pdfjs-bug1978317.pdf) took 8 s there. No
# medical record needs this many; a file past either bound is refused here, under the job's limits.
MAX_ANNOTATIONS_PER_PAGE = 1_000
MAX_ANNOTATIONS = 20_000


def check_annotations(reader) -> None:
    """Refuse a PDF with more than MAX_ANNOTATIONS_PER_PAGE annotations on a page, or more than
    MAX_ANNOTATIONS in all. Only each page's /Annots array is read, not the annotations."""
    total = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            annots = page.get("/Annots")
            annots = annots.get_object() if annots is not None else None
            count = len(annots) if isinstance(annots, ArrayObject) else 0
        except (RefusedFile, MemoryError):
            raise
        except Exception:  # noqa: BLE001 - not an array, or broken: the readers judge the page
            continue
        if count > MAX_ANNOTATIONS_PER_PAGE:
            raise refusal("too_many_annotations", f"page {number} carries {count:,} links, comments or form "
                                                  f"fields; a page may carry at most {MAX_ANNOTATIONS_PER_PAGE:,}")
        total += count
        if total > MAX_ANNOTATIONS:
            raise refusal("too_many_annotations", f"the document carries more than {MAX_ANNOTATIONS:,} links, "
                                                  "comments or form fields")


def check_pages(reader, limit: int) -> None:
    """Refuse a PDF whose page content (its streams joined, as a reader joins them) passes `limit`:
    e.g. one large stream named many times in a page's /Contents array."""
    sizes: dict[tuple[int, int], int] = {}
    for page in reader.pages:
        try:
            _check_page(page, limit, sizes)
        except (RefusedFile, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken object here is for the readers to judge, not this check
            if pypdf_size_cap(exc):
                raise pypdf_limit_refusal(limit) from exc
            continue


def _check_page(page, limit: int, sizes: dict) -> None:
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
        filters = [name for name in stream_filters(stream) if name not in IMAGE_CODECS]
        streams.append((key, filters, raw))
    if sum(bound_by_ratio(len(raw), filters) for _, filters, raw in streams) <= limit:
        return  # cannot unpack past the limit, however it is decoded
    total = 0
    for key, filters, raw in streams:
        size = sizes.get(key) if key is not None else None
        if size is None:
            size = chain_size(raw, filters, limit)
            if key is not None:
                sizes[key] = size
        total += size
        if total > limit:
            raise inflation_refusal(total, limit, "the content of one page")


# pypdf's caps on what one stream (or one image, or one page's joined content) decodes to, all set
# to our bound; decoding work (the bytes fed to a stream's filters, one after another) to a few times it.
_PYPDF_OUTPUT_CAPS = ("zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
                      "brotli_maximum_output_length", "jbig2_maximum_output_length",
                      "array_based_stream_maximum_output_length", "image_maximum_buffer_size",
                      "maximum_declared_stream_length")
_DECODING_WORK_FACTOR = 4
# The messages of pypdf's LimitReachedError for those caps (pypdf is pinned in constraints.txt; a
# test holds each cap to its message). Its other limits (a cycle in the page tree, 100,000 entries
# in an array...) are about a file's structure, not its size: those stay what they were (damaged).
_PYPDF_SIZE_MESSAGES = ("Limit reached while decompressing", "Declared stream length of", "Requested length of",
                        "Array-based stream has at least", "Requested buffer size", "Requested image buffer size",
                        "Memory limit reached while reading JBIG2", "Stream decoding exceeded the maximum")


@contextmanager
def pypdf_bounds(limit: int) -> Iterator[None]:
    """pypdf's decoding caps set to `limit` (`[limits] max_inflated_bytes`, or the output bound)
    while the block runs, in this thread (pypdf's configuration is a context variable)."""
    base = get_configuration()
    work = max(base.stream_decoding_work_maximum_length, _DECODING_WORK_FACTOR * limit)
    with apply_configuration(stream_decoding_work_maximum_length=work, **dict.fromkeys(_PYPDF_OUTPUT_CAPS, limit)):
        yield


def pypdf_size_cap(exc: BaseException | None) -> bool:
    """Whether `exc` is (or was raised from) pypdf stopping at one of the caps `pypdf_bounds` sets."""
    for _ in range(8):  # an error wrapped by a caller's own (packet.pdf.stamp.PageStampError and the like)
        if exc is None:
            return False
        if isinstance(exc, LimitReachedError) and str(exc).startswith(_PYPDF_SIZE_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def pypdf_limit_refusal(limit: int) -> RefusedFile:
    """The refusal of a file pypdf stopped at a decoding cap (set to `limit`): it names our limit;
    the file is neither damaged nor worth another try."""
    return inflation_refusal(limit, limit, "one part of the file")
