"""How far a stream inflates (packet.pdf.streams), measured without holding more than the bound."""

from __future__ import annotations

import binascii
import tracemalloc
import zlib

import pytest
from pypdf.generic import ArrayObject, DecodedStreamObject, NameObject, NumberObject, StreamObject

from packet.pdf.streams import inflated_beyond

MiB = 1024 * 1024


def _stream(data: bytes, *filters: str, **entries) -> StreamObject:
    stream = StreamObject()
    stream._data = data
    if filters:
        stream[NameObject("/Filter")] = (NameObject(filters[0]) if len(filters) == 1
                                         else ArrayObject(NameObject(f) for f in filters))
    for key, value in entries.items():
        stream[NameObject("/" + key)] = value
    return stream


def _deflate(size: int) -> bytes:
    squeezer = zlib.compressobj(9)
    block = b"\0" * MiB
    return b"".join(squeezer.compress(block) for _ in range(size // MiB)) + squeezer.flush()


def test_small_streams_are_settled_without_decoding():
    assert inflated_beyond(_stream(zlib.compress(b"q Q\n" * 100), "/FlateDecode"), MiB) is None
    assert inflated_beyond(_stream(b"x" * 100), MiB) is None
    plain = DecodedStreamObject()
    plain.set_data(b"y" * (2 * MiB))
    assert inflated_beyond(plain, MiB) == 2 * MiB


def test_a_flate_bomb_is_caught_with_little_memory():
    bomb = _stream(_deflate(256 * MiB), "/FlateDecode")  # ~250 KB that inflate to 256 MiB
    assert len(bomb._data) < 300_000
    tracemalloc.start()
    try:
        size = inflated_beyond(bomb, 8 * MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size is not None and size > 8 * MiB
    assert peak < 4 * MiB  # counted chunk by chunk, stopped at the bound
    assert inflated_beyond(bomb, 512 * MiB) is None


def _encoded(filters: tuple[str, ...], payload: bytes) -> bytes:
    """`payload` (the output of the last filter's encoder) encoded by the filters before it."""
    data = payload
    for name in reversed(filters[:-1]):
        data = zlib.compress(data) if name == "/FlateDecode" else binascii.hexlify(data) + b">"
    return data


@pytest.mark.parametrize("filters", [("/FlateDecode", "/FlateDecode"), ("/ASCIIHexDecode", "/FlateDecode"), ("/Fl",)])
def test_filter_chains_and_abbreviations(filters):
    data = _encoded(filters, _deflate(3 * MiB))
    assert inflated_beyond(_stream(data, *filters), 2 * MiB) is not None
    assert inflated_beyond(_stream(data, *filters), 4 * MiB) is None


def test_lzw_and_run_length_are_bounded_too():
    # Run-length: 128 copies of a byte per two input bytes.
    run_length = bytes([129, 0]) * (40 * 1024) + b"\x80"
    assert inflated_beyond(_stream(run_length, "/RunLengthDecode"), MiB) is not None
    assert inflated_beyond(_stream(run_length, "/RunLengthDecode"), 8 * MiB) is None
    # LZW: a clear code, then the same code again and again builds ever longer strings.
    codes = [256, 65] + [258 + n for n in range(200)]
    bits, value, width, out = 0, 0, 9, bytearray()
    table = 258
    for code in codes:
        value = (value << width) | code
        bits += width
        while bits >= 8:
            bits -= 8
            out.append((value >> bits) & 0xFF)
        table += 1
        if table + 1 >= (1 << width):
            width += 1
    data = bytes(out)
    assert inflated_beyond(_stream(data, "/LZWDecode"), 1000) is not None


def test_image_codecs_count_the_pixels_they_declare():
    huge = _stream(b"\xff\xd8 not really a jpeg", "/DCTDecode", Width=NumberObject(40000), Height=NumberObject(40000),
                   ColorSpace=NameObject("/DeviceRGB"), BitsPerComponent=NumberObject(8))
    assert inflated_beyond(huge, 512 * MiB) == 40000 * 40000 * 3
    fax = _stream(b"\0" * 100, "/CCITTFaxDecode", Width=NumberObject(35000), Height=NumberObject(35000))
    assert inflated_beyond(fax, 512 * MiB) is None  # 1 bit per pixel: 153 MB


def test_a_raw_deflate_bomb_without_a_zlib_header_is_caught_too():
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = b"".join(squeezer.compress(b"\0" * MiB) for _ in range(16)) + squeezer.flush()
    assert inflated_beyond(_stream(raw, "/FlateDecode"), 8 * MiB) is not None
    assert inflated_beyond(_stream(b"\x00garbage" * 40_000, "/FlateDecode"), MiB) is None  # nothing decodes
