"""How far a PDF stream inflates, found without ever holding more than the bound in memory.

Owns: `inflated_beyond(stream, limit)`, the one measure the builder (while writing an output) and
`verify` (reading one back) apply to every stream, so an output never carries a stream that decodes
to more than `[limits] max_stream_bytes`.
Must not: change a stream, or decode one whole when its size is in doubt.

A stream's filters are applied one after another (PDF 32000-1 7.4). Most streams are settled
without decoding: each filter has a largest possible expansion (Flate about 1032:1), and a stream
whose encoded size times those factors stays under the bound cannot pass it. Otherwise Flate is
decoded in chunks and counted, stopping as soon as the count passes the bound; the other text
filters are decoded with the same budget. Image codecs (DCT, JPX, JBIG2, CCITT) count what their
decoder must allocate: width x height x components x bits, from the image dictionary.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from pypdf.generic import ArrayObject, IndirectObject, StreamObject

_ALIASES = {"/Fl": "/FlateDecode", "/LZW": "/LZWDecode", "/RL": "/RunLengthDecode", "/AHx": "/ASCIIHexDecode",
            "/A85": "/ASCII85Decode", "/DCT": "/DCTDecode", "/CCF": "/CCITTFaxDecode"}
# The largest output per input byte of each filter: deflate's 258-byte matches in 2 bits give
# about 1032:1; an LZW code (9 bits at least) gives at most 4096 bytes; a run-length pair 128
# bytes; "z" in ASCII85 four.
_MAX_RATIO = {"/FlateDecode": 1033, "/LZWDecode": 4096, "/RunLengthDecode": 64, "/ASCIIHexDecode": 1,
              "/ASCII85Decode": 4, "/Crypt": 1}
_IMAGE_CODECS = frozenset({"/DCTDecode", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode"})
_CHUNK = 1 << 16


def _resolve(value):
    return value.get_object() if isinstance(value, IndirectObject) else value


def stream_filters(stream: StreamObject) -> list[str]:
    filters = _resolve(stream.get("/Filter"))
    if filters is None:
        return []
    if isinstance(filters, ArrayObject):
        names = [str(_resolve(f)) for f in filters]
    else:
        names = [str(filters)]
    return [_ALIASES.get(name, name) for name in names]


def inflated_beyond(stream: StreamObject, limit: int) -> int | None:
    """None when `stream` decodes to at most `limit` bytes; else a size past `limit` it reaches
    (a lower bound: decoding stops once the bound is passed)."""
    data = getattr(stream, "_data", b"") or b""
    filters = stream_filters(stream)
    if not filters:
        return len(data) if len(data) > limit else None
    codec = filters[-1] if filters[-1] in _IMAGE_CODECS else None
    text_filters = filters[:-1] if codec else filters
    if codec is not None:
        declared = _declared_image_bytes(stream, codec)
        if declared > limit:
            return declared
    bound = len(data)
    for name in text_filters:
        bound *= _MAX_RATIO.get(name, 1)
    if bound <= limit:
        return None
    size = len(data)
    for position, name in enumerate(text_filters):
        last = position == len(text_filters) - 1
        if name == "/FlateDecode":
            data, size = _inflate(data, limit, keep=not last)
        elif name in ("/ASCIIHexDecode", "/ASCII85Decode", "/RunLengthDecode", "/LZWDecode"):
            data = _decode_small(name, data, limit)
            size = len(data)
        else:  # an unknown filter: a reader cannot decode it either; its bytes are what it holds
            size = len(data)
        if size > limit:
            return size
    return None


def _inflate(data: bytes, limit: int, *, keep: bool) -> tuple[bytes, int]:
    """(decoded bytes if `keep`, decoded size), stopping once past `limit`; a damaged stream
    counts what decodes before the damage (as a reader would show). A stream without a zlib
    header is read as raw deflate, as readers (pypdf among them) fall back to."""
    result = _inflate_with(data, limit, keep, zlib.MAX_WBITS)
    if result is None:
        result = _inflate_with(data, limit, keep, -zlib.MAX_WBITS) or (b"", 0)
    return result


def _inflate_with(data: bytes, limit: int, keep: bool, wbits: int) -> tuple[bytes, int] | None:
    """None when the stream fails before giving a single byte."""
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while size <= limit and not inflater.eof:
            chunk = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            size += len(chunk)
            if keep:
                parts.append(chunk)
            if not chunk and not pending:  # a truncated stream: nothing more will come
                break
    except zlib.error:
        if size == 0:
            return None
    return (b"".join(parts) if keep else b""), size


def _decode_small(name: str, data: bytes, limit: int) -> bytes:
    """ASCIIHex, ASCII85, RunLength and LZW, each stopped once past `limit` (+1 byte)."""
    try:
        if name == "/ASCIIHexDecode":
            text = bytes(b for b in data.split(b">", 1)[0] if b not in b" \t\r\n\f\0")
            if len(text) % 2:
                text += b"0"
            return binascii.unhexlify(text)
        if name == "/ASCII85Decode":
            text = data.strip()
            if text.startswith(b"<~"):
                text = text[2:]
            text = text.split(b"~>", 1)[0]
            text = bytes(b for b in text if b not in b" \t\r\n\f\0")
            if text.count(b"z") * 4 > limit + 1:
                return b"\0" * (limit + 1)
            return base64.a85decode(text)
        if name == "/RunLengthDecode":
            return _run_length(data, limit)
        return _lzw(data, limit)
    except (ValueError, binascii.Error):
        return b""


def _run_length(data: bytes, limit: int) -> bytes:
    out = bytearray()
    index = 0
    while index < len(data) and len(out) <= limit:
        length = data[index]
        if length == 128:
            break
        if length < 128:
            out += data[index + 1:index + 2 + length]
            index += 2 + length
        else:
            if index + 1 < len(data):
                out += bytes([data[index + 1]]) * (257 - length)
            index += 2
    return bytes(out)


def _lzw(data: bytes, limit: int) -> bytes:
    """LZW as PDF uses it (early change 1), stopped once past `limit`."""
    table = [bytes([i]) for i in range(256)] + [b"", b""]
    out = bytearray()
    bits, value, width = 0, 0, 9
    previous: bytes | None = None
    for byte in data:
        value = (value << 8) | byte
        bits += 8
        while bits >= width:
            bits -= width
            code = (value >> bits) & ((1 << width) - 1)
            if code == 256:  # clear table
                table = table[:258]
                width, previous = 9, None
                continue
            if code == 257:  # end of data
                return bytes(out)
            if code < len(table):
                entry = table[code]
            elif previous is not None and code == len(table):
                entry = previous + previous[:1]
            else:
                return bytes(out)
            out += entry
            if len(out) > limit:
                return bytes(out)
            if previous is not None and len(table) < 4096:
                table.append(previous + entry[:1])
            previous = entry
            if len(table) + 1 >= (1 << width) and width < 12:
                width += 1
    return bytes(out)


def _declared_image_bytes(stream: StreamObject, codec: str) -> int:
    """What a decoder must allocate for the image, from its dictionary (0 if it does not say)."""
    try:
        width = int(_resolve(stream.get("/Width", 0)))
        height = int(_resolve(stream.get("/Height", 0)))
    except (TypeError, ValueError):
        return 0
    if width <= 0 or height <= 0:
        return 0
    if codec in ("/JBIG2Decode", "/CCITTFaxDecode"):
        components, bits = 1, 1
    else:
        colorspace = _resolve(stream.get("/ColorSpace"))
        if isinstance(colorspace, ArrayObject) and colorspace:
            colorspace = _resolve(colorspace[0])
        components = {"/DeviceGray": 1, "/CalGray": 1, "/Indexed": 1, "/DeviceCMYK": 4}.get(str(colorspace), 3)
        if codec == "/JPXDecode":
            components = max(components, 4)
        try:
            bits = int(_resolve(stream.get("/BitsPerComponent", 8)))
        except (TypeError, ValueError):
            bits = 8
        bits = min(max(bits, 1), 16)
    return (width * components * bits + 7) // 8 * height
