"""Every decoder pypdf would run is bounded before anything decodes a clerk's PDF (issue 13 item 2):
LZW bombs (alone, with predictors, after ASCIIHex), run-length ones, LZW content named many times
by a page; and image sizes given through indirect references are resolved, counted against the
decoded-size limit, and refused when they are not a size at all. Every PDF here is generated (a few KB)."""

from __future__ import annotations

import binascii
import zlib
from pathlib import Path

import pytest
from pdfkit import raw_pdf
from pypdf._codecs._codecs import LzwCodec

from packet.errors import RefusedFile
from packet.intake.convert.batch import convert
from packet.intake.convert.streams import chain_size, inflated_beyond
from packet.model.models import Converted, SourceFile
from packet.workers.pool import status_mib

MIB = 1024 * 1024


def source(path: Path) -> SourceFile:
    st = path.stat()
    return SourceFile(relpath=path.name, path=path.resolve(), size=st.st_size, mtime_ns=st.st_mtime_ns,
                      identity=(st.st_dev, st.st_ino))


def refused_for_good(path: Path, config) -> RefusedFile:
    peak_before = status_mib("VmHWM")
    with pytest.raises(RefusedFile) as info:
        convert(source(path), config)
    assert status_mib("VmHWM") - peak_before < 64, "the bomb was decoded in the service's own process"
    assert not info.value.transient
    return info.value


def lzw_bomb(total: int) -> bytes:
    """LZW codes (PDF's early change) that decode to at least `total` NUL bytes: the table is filled
    with ever longer runs, then its longest entry (3,839 bytes) is named again and again."""
    out, acc, nbits = bytearray(), 0, 0

    def emit(code: int, width: int) -> None:
        nonlocal acc, nbits
        acc, nbits = (acc << width) | code, nbits + width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
        acc &= (1 << nbits) - 1

    emit(256, 9)
    emit(0, 9)
    produced, width, table = 1, 9, 258
    while table < 4096 and produced < total:
        emit(table, width)
        produced += table - 256
        table += 1
        if table + 1 >= (1 << width) and width < 12:
            width += 1
    while produced < total:
        emit(4095, 12)
        produced += 3839
    emit(257, width)
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


def _stream(data: bytes, entries: bytes) -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), entries) + data + b"\nendstream"


def _page_pdf(path: Path, contents: bytes, *extra: bytes, resources: bytes = b"") -> Path:
    path.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                             b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents " + contents
                             + b" /Resources << " + resources + b" >> >>", *extra]))
    return path


def test_the_bomb_maker_makes_what_pypdf_decodes():
    data = lzw_bomb(3 * MIB)
    assert len(data) < 4_000
    decoded = LzwCodec(max_output_length=1 << 30).decode(data)
    assert len(decoded) >= 3 * MIB and chain_size(data, ["/LZWDecode"], 1 << 30) == len(decoded)


LZW_VARIANTS = {
    "lzw": lambda bomb: (bomb, b"/Filter /LZWDecode"),
    "lzw-abbreviated": lambda bomb: (bomb, b"/Filter /LZW"),
    "lzw-with-predictor": lambda bomb: (bomb, b"/Filter /LZWDecode /DecodeParms << /Predictor 12 /Columns 100 >>"),
    "lzw-in-array-with-params": lambda bomb: (bomb, b"/Filter [/LZWDecode] /DecodeParms [<< /Predictor 2 >>]"),
    "hex-then-lzw": lambda bomb: (binascii.hexlify(bomb) + b">", b"/Filter [/ASCIIHexDecode /LZWDecode]"),
    "hex-then-lzw-abbreviated": lambda bomb: (binascii.hexlify(bomb) + b">", b"/Filter [/AHx /LZW]"),
    "flate-then-lzw": lambda bomb: (zlib.compress(bomb), b"/Filter [/FlateDecode /LZWDecode]"),
    "lzw-filter-given-indirectly": lambda bomb: (bomb, b"/Filter 5 0 R"),
    "lzw-name-with-escapes": lambda bomb: (bomb, b"/Filter /LZW#44ecode"),
    "filter-key-with-escapes": lambda bomb: (bomb, b"/Filt#65r [/LZWDecode]"),
    "lzw-early-change-0-claimed": lambda bomb: (bomb, b"/Filter /LZWDecode /DecodeParms << /EarlyChange 0 >>"),
    "lzw-after-a-long-dictionary": lambda bomb: (bomb, b"/Pad (" + b" " * 5000 + b") /Filter /LZWDecode"),
}


@pytest.mark.parametrize("variant", sorted(LZW_VARIANTS))
def test_an_lzw_bomb_is_refused_naming_the_limit(config, tmp_path, variant):
    data, entries = LZW_VARIANTS[variant](lzw_bomb(300 * MIB))  # ~120 KB that decode to 300 MB
    assert len(data) < 300_000
    pdf = _page_pdf(tmp_path / "lzw.pdf", b"4 0 R", _stream(data, entries), b"[/LZWDecode]")
    error = refused_for_good(pdf, config)
    assert error.reason == "too_large" and "unpacks to more than 256 MB" in error.message, error.message


def test_an_lzw_image_bomb_and_a_run_length_bomb_are_refused(config, tmp_path):
    image = _stream(lzw_bomb(300 * MIB), b"/Type /XObject /Subtype /Image /Width 10 /Height 10 "
                                         b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /LZWDecode")
    draw = _stream(b"q 10 0 0 10 0 0 cm /Im0 Do Q", b"")
    pdf = _page_pdf(tmp_path / "image.pdf", b"5 0 R", image, draw, resources=b"/XObject << /Im0 4 0 R >>")
    assert "unpacks to more than 256 MB" in refused_for_good(pdf, config).message
    run_length = bytes([129, 0]) * 2_200_000 + b"\x80"  # 128 bytes per pair: 281 MB from 4.4 MB
    pdf = _page_pdf(tmp_path / "rl.pdf", b"4 0 R", _stream(run_length, b"/Filter /RunLengthDecode"))
    assert "unpacks to more than 256 MB" in refused_for_good(pdf, config).message


def test_lzw_content_named_many_times_by_a_page_counts_each_time(config, tmp_path):
    content = lzw_bomb(10 * MIB)  # 10 MB of NUL bytes (an empty content stream) in ~4 KB
    refs = b" ".join(b"4 0 R" for _ in range(30))
    pdf = _page_pdf(tmp_path / "repeated.pdf", b"[" + refs + b"]", _stream(content, b"/Filter /LZWDecode"))
    error = refused_for_good(pdf, config)
    assert "content of one page" in error.message and "256 MB" in error.message


def test_an_ordinary_lzw_pdf_is_taken(config, tmp_path):
    text = b"BT /F1 12 Tf 72 700 Td (An LZW page) Tj ET"
    # LZW of a short text: the literal codes alone (9 bits each), no table use
    acc, nbits, out = 0, 0, bytearray()
    for code in [256, *text, 257]:
        acc, nbits = (acc << 9) | code, nbits + 9
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
        acc &= (1 << nbits) - 1
    out.append((acc << (8 - nbits)) & 0xFF)
    pdf = _page_pdf(tmp_path / "plain.pdf", b"4 0 R", _stream(bytes(out), b"/Filter /LZWDecode"),
                    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", resources=b"/Font << /F1 5 0 R >>")
    converted = convert(source(pdf), config)
    assert isinstance(converted, Converted) and "An LZW page" in converted.page_texts[0]


def _image_pdf(path: Path, width: bytes, height: bytes, *extra_objects: bytes, bits: bytes = b"8",
               codec: bytes = b"/DCTDecode", space: bytes = b"/DeviceRGB") -> Path:
    image = _stream(b"\xff\xd8\xff\xe0 not really a jpeg", b"/Type /XObject /Subtype /Image /Width " + width
                    + b" /Height " + height + b" /ColorSpace " + space + b" /BitsPerComponent " + bits
                    + b" /Filter " + codec)
    draw = _stream(b"q 100 0 0 100 0 0 cm /Im0 Do Q", b"")
    return _page_pdf(path, b"5 0 R", image, draw, *extra_objects, resources=b"/XObject << /Im0 4 0 R >>")


def test_an_image_size_given_by_indirect_references_is_resolved_and_counted(config, tmp_path):
    giant = _image_pdf(tmp_path / "giant.pdf", b"6 0 R", b"7 0 R", b"60000", b"60000")
    error = refused_for_good(giant, config)
    assert error.reason == "too_large" and "image that unpacks to" in error.message
    # A reference to a reference (which pypdf cannot follow): refused, never a crash.
    deep = _image_pdf(tmp_path / "deep.pdf", b"6 0 R", b"7 0 R", b"8 0 R", b"40000", b"40000")
    assert "impossible size" in refused_for_good(deep, config).message
    bits = _image_pdf(tmp_path / "bits.pdf", b"9000", b"9000", b"16", bits=b"6 0 R")  # 486 MB at 16 bits
    assert "image that unpacks to" in refused_for_good(bits, config).message
    small = _image_pdf(tmp_path / "small.pdf", b"6 0 R", b"7 0 R", b"8", b"8")
    assert isinstance(convert(source(small), config), Converted)


@pytest.mark.parametrize("width", [b"12.5", b"-100", b"0", b"(wide)", b"/Wide", b"99999999999", b"true", b"[100]"])
def test_an_image_whose_size_is_not_a_size_is_refused(config, tmp_path, width):
    pdf = _image_pdf(tmp_path / "odd.pdf", b"6 0 R", b"100", width)
    error = refused_for_good(pdf, config)
    assert "impossible size" in error.message or "unpacks" in error.message


def test_the_output_bound_counts_lzw_without_keeping_it():
    from pypdf.generic import NameObject, StreamObject
    import tracemalloc

    stream = StreamObject()
    stream._data = lzw_bomb(64 * MIB)
    stream[NameObject("/Filter")] = NameObject("/LZWDecode")
    tracemalloc.start()
    try:
        size = inflated_beyond(stream, 32 * MIB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size is not None and size > 32 * MIB and peak < 8 * MIB
    assert inflated_beyond(stream, 128 * MIB) is None


def test_ascii85_is_decoded_as_the_standard_library_decodes_it():
    """The sanitiser's ASCII85 decoder (`streams.a85decode`, fast: it runs in the build's process
    on clerks' streams) gives base64.a85decode's bytes, or its error, on encoded data, "z" groups,
    short last groups, overflowing groups, "z" inside a group and characters that are no digits."""
    import base64
    import os
    import random

    from packet.intake.convert.streams import a85decode

    def outcome(decode, text):
        try:
            return "ok", decode(text)
        except ValueError as exc:
            return "error", str(exc)

    rng = random.Random(85)
    cases = [b"", b"z", b"zz", b"!!", b"uuuuu", b"s8W-!", b"s8W-\"", b"Az!!!!", b"!!z", b"@:E_", b"<~", b"a b",
             base64.a85encode(b"\0" * 9), base64.a85encode(os.urandom(1001))]
    for _ in range(3000):
        if rng.random() < 0.5:
            cases.append(base64.a85encode(bytes(rng.randrange(256) for _ in range(rng.randrange(30)))))
        else:
            cases.append(bytes(rng.choice(b"!#AKuz~s8W- \x0b\x7f\n\x00") for _ in range(rng.randrange(24))))
    for text in cases:
        assert outcome(a85decode, text) == outcome(base64.a85decode, text), text
        # The conversion's byte scan skips other characters (packet.intake.convert.limits).
        scan = b" \t\r\n\f\x00"
        assert (outcome(lambda t: a85decode(t, ignorechars=scan), text)
                == outcome(lambda t: base64.a85decode(t, ignorechars=scan), text)), text
    wrapped = b"\n".join(base64.a85encode(os.urandom(3000))[i:i + 75] for i in range(0, 3750, 75))
    assert a85decode(wrapped) == base64.a85decode(wrapped)  # lines of 75, as PDF writers wrap it
