"""The reader every room opens a PDF with (packet.pdfread): an object of an object stream is parsed
alone, and every object reads as pypdf's own reader reads it."""

from __future__ import annotations

import contextlib
import io
import logging
import random
import re
import shutil
import subprocess

import pypdf
import pytest
from pypdf.errors import FileNotDecryptedError, PdfReadError
from pypdf.generic import IndirectObject

from corpuskit import CORPUS
from helpers import make_pdf
from packet.pdfread import PdfReader

BIG_STREAM = CORPUS / "pdf" / "pdfjs-bug1978317.pdf"  # one page; 65,564 objects in object streams


def _written(obj) -> bytes:
    buffer = io.BytesIO()
    if obj is not None:
        obj.write_to_stream(buffer)
    return buffer.getvalue()


def _objects(reader_class, data: bytes) -> dict:
    """Every object the file's tables name, written out (or the error reading it raised), and the page count."""
    out = {}
    try:
        reader = reader_class(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            reader.decrypt("")
        numbers = {(n, g) for g, table in reader.xref.items() for n in table} | {(n, 0) for n in reader.xref_objStm}
        try:
            out["pages"] = len(reader.pages)
        except Exception as exc:  # noqa: BLE001
            out["pages"] = exc
        for number, generation in sorted(numbers):
            try:
                out[number, generation] = _written(reader.get_object(IndirectObject(number, generation, reader)))
            except Exception as exc:  # noqa: BLE001
                out[number, generation] = exc
    except Exception as exc:  # noqa: BLE001
        out["open"] = exc
    return out


def _with_object_streams(tmp_path, pages: int = 3) -> bytes:
    """A small PDF whose objects sit in uncompressed object streams (qpdf), to edit by hand."""
    plain = make_pdf(tmp_path / "plain.pdf", [f"Progress note page {n}" for n in range(1, pages + 1)])
    out = tmp_path / "objstm.pdf"
    subprocess.run(["qpdf", "--object-streams=generate", "--compress-streams=n", "--decode-level=generalized",
                    str(plain), str(out)], check=True)
    return out.read_bytes()


def _first_object_stream(data: bytes) -> tuple[int, int]:
    """(where the first uncompressed object stream's data starts, its /First)."""
    match = re.search(rb"<<((?:(?!>>).)*?/Type\s*/ObjStm(?:(?!>>).)*)>>\s*stream\r?\n", data, re.S)
    return match.end(), int(re.search(rb"/First\s+(\d+)", match.group(1)).group(1))


def _object_stream_files() -> list:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*.pdf") if b"/ObjStm" in p.read_bytes() and p != BIG_STREAM)


needs_qpdf = pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf is not installed")


@pytest.fixture(autouse=True)
def _quiet_pypdf():
    logging.disable(logging.WARNING)  # damaged files make pypdf warn a lot
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.skipif(not BIG_STREAM.is_file(), reason="../shared/corpus is not beside the project")
def test_a_page_in_a_stream_of_65000_objects_is_reached_without_parsing_the_others():
    reader = PdfReader(str(BIG_STREAM))
    assert len(reader.pages) == 1
    assert "/Contents" in reader.pages[0]
    assert len(reader.xref_objStm) > 65_000
    assert len(reader.resolved_objects) < 50  # pypdf's own reader has parsed all 65,000 here


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the project")
@pytest.mark.parametrize("path", _object_stream_files(), ids=lambda p: p.name)
def test_every_object_of_a_corpus_file_reads_as_pypdf_reads_it(path):
    data = path.read_bytes()
    ours, theirs = _objects(PdfReader, data), _objects(pypdf.PdfReader, data)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, Exception):
            assert type(ours[key]) is type(value), key
        else:
            assert ours[key] == value, key


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the project")
def test_mutated_files_read_as_pypdf_reads_them_or_where_pypdf_fails_the_whole_stream():
    """Seeded mutants of the corpus files with object streams. An object reads exactly as pypdf reads
    it, or pypdf raised for it: pypdf parses a stream's objects together, so one damaged object
    fails them all there, and only itself here. Never the other way round."""
    from bench.fuzz import mutate

    seeds = [p.read_bytes() for p in _object_stream_files() if p.stat().st_size < 100_000]
    rng = random.Random(2026)
    lenient = 0
    for _ in range(120):
        data = mutate(rng.choice(seeds), rng, rng.choice(seeds))
        ours, theirs = _objects(PdfReader, data), _objects(pypdf.PdfReader, data)
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            if isinstance(value, Exception):
                lenient += not isinstance(ours[key], Exception)
            else:
                assert ours[key] == value, key
    assert lenient  # the sample does reach damaged streams


@needs_qpdf
def test_a_damaged_stream_header_is_left_to_pypdf(tmp_path):
    """Offsets that do not rise: pypdf refuses the whole stream, and so does this reader."""
    data = _with_object_streams(tmp_path)
    start, _ = _first_object_stream(data)
    header = re.compile(rb"(\d+) (\d+) (\d+) (\d+)").match(data, start)
    n1, o1, n2, o2 = header.groups()
    damaged = data[:start] + b" ".join([n1, o2, n2, o1]) + data[header.end():]
    assert len(damaged) == len(data)
    ours, theirs = _objects(PdfReader, damaged), _objects(pypdf.PdfReader, damaged)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
    refused = {k: str(v) for k, v in ours.items() if isinstance(v, PdfReadError)}
    assert len(refused) > 1
    assert refused == {k: str(v) for k, v in theirs.items() if isinstance(v, PdfReadError)}
    # found once, the error is raised again for the stream's other objects without reading it again
    stream_number = int(damaged[:start].rsplit(b" obj", 1)[0].split()[-2])
    reader = PdfReader(io.BytesIO(damaged))
    for number, (in_stream, _) in reader.xref_objStm.items():
        if in_stream == stream_number:
            with pytest.raises(PdfReadError, match="Invalid offset"):
                reader.get_object(number)
    assert set(reader._imr_failed_streams) == {stream_number}


@needs_qpdf
def test_a_damaged_object_is_an_error_for_itself_only_and_pypdf_decides_how(tmp_path):
    data = _with_object_streams(tmp_path)
    start, first = _first_object_stream(data)
    header = data[start:start + first].split()
    pairs = [(int(header[i]), int(header[i + 1])) for i in range(0, len(header), 2)]
    # break the last object of the stream: pypdf's own method then reads it (a warning, a null or an error)
    target_number, target_offset = pairs[-1]
    at = start + first + target_offset
    damaged = data[:at] + b")" + data[at + 1:]
    ours, theirs = _objects(PdfReader, damaged), _objects(pypdf.PdfReader, damaged)
    assert type(ours[target_number, 0]) is type(theirs[target_number, 0])
    for key, value in theirs.items():
        if not isinstance(value, Exception):
            assert ours[key] == value, key


@needs_qpdf
def test_a_compressed_object_stream_reads_the_same_and_writes_the_same_packet(tmp_path):
    plain = make_pdf(tmp_path / "plain.pdf", [f"Discharge summary page {n}" for n in range(1, 6)])
    packed = tmp_path / "packed.pdf"
    subprocess.run(["qpdf", "--object-streams=generate", str(plain), str(packed)], check=True)
    data = packed.read_bytes()
    assert b"/ObjStm" in data and b"/FlateDecode" in data
    assert _objects(PdfReader, data) == _objects(pypdf.PdfReader, data)
    written = []
    for reader_class in (PdfReader, pypdf.PdfReader):
        writer = pypdf.PdfWriter()
        writer.append(reader_class(io.BytesIO(data)), import_outline=False)
        buffer = io.BytesIO()
        writer.write(buffer)
        written.append(re.sub(rb"/ID \[.*?\]", b"", buffer.getvalue()))
    assert written[0] == written[1]


@needs_qpdf
def test_an_encrypted_file_reads_its_streams_once_decrypted(tmp_path):
    """Before the password is given, an object in a stream cannot be read; afterwards it reads as
    pypdf reads it (no error or stream kept from before)."""
    plain = make_pdf(tmp_path / "plain.pdf", ["Operative report page 1", "Operative report page 2"])
    locked = tmp_path / "locked.pdf"
    subprocess.run(["qpdf", "--object-streams=generate", "--encrypt", "user-secret", "owner-secret", "256", "--",
                    str(plain), str(locked)], check=True)
    data = locked.read_bytes()
    reader = PdfReader(io.BytesIO(data))
    in_stream = sorted(reader.xref_objStm)[0]
    with pytest.raises(FileNotDecryptedError):
        reader.get_object(in_stream)
    with pytest.raises(FileNotDecryptedError):
        reader.get_object(in_stream)
    assert reader.decrypt("user-secret")
    assert len(reader.pages) == 2 and "Operative report page 2" in reader.pages[1].extract_text()
    stock = pypdf.PdfReader(io.BytesIO(data))
    stock.decrypt("user-secret")
    for number in reader.xref_objStm:
        assert _written(reader.get_object(number)) == _written(stock.get_object(number))


@pytest.mark.parametrize("source", ["generated", *[p.name for p in _object_stream_files()]])
def test_objects_asked_for_again_after_they_were_forgotten_read_the_same(tmp_path, source):
    """`forget_objects` drops what was parsed (a merged document's objects, copied into the packet);
    whatever is asked for afterwards is read again from the file, as it read the first time."""
    if source == "generated":
        plain = make_pdf(tmp_path / "plain.pdf", [f"Operative report page {n}" for n in range(1, 5)])
        packed = tmp_path / "packed.pdf"
        subprocess.run(["qpdf", "--object-streams=generate", str(plain), str(packed)], check=True)
        data = packed.read_bytes()
    else:
        data = next(p for p in _object_stream_files() if p.name == source).read_bytes()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"pypdf cannot open it ({type(exc).__name__}): nothing is read, nothing to forget")
    if reader.is_encrypted:
        with contextlib.suppress(Exception):  # a file that needs a password reads only its errors
            reader.decrypt("")

    def everything():
        numbers = {(n, g) for g, table in reader.xref.items() for n in table} | {(n, 0) for n in reader.xref_objStm}
        try:
            out = {"pages": len(reader.pages)}
        except Exception as exc:  # noqa: BLE001
            out = {"pages": repr(exc)}
        for number, generation in sorted(numbers):
            try:
                out[number, generation] = _written(reader.get_object(IndirectObject(number, generation, reader)))
            except Exception as exc:  # noqa: BLE001
                out[number, generation] = repr(exc)
        return out

    first = everything()
    assert reader.resolved_objects
    reader.forget_objects()
    if reader.is_encrypted:  # read once, undecrypted, its encryption dictionary would not read the same again
        assert reader.resolved_objects
    else:
        assert reader.resolved_objects == {} and reader.flattened_pages is None
        assert "_imr_object_streams" not in vars(reader)
    assert everything() == first


def test_a_released_reader_holds_no_bytes_and_any_read_raises_instead_of_reading_nothing(tmp_path):
    """`release_file` (a merged document, packet.pdf.builder): what was parsed and the file's bytes
    go; asking for an object afterwards raises, never reads an empty file as a damaged one (pypdf
    would answer that with a null object). A file opened with an owner-only lock keeps everything."""
    import gc
    import weakref

    from packet.pdfread import ReleasedFileError

    data = make_pdf(tmp_path / "plain.pdf", ["Operative report page 1", "page 2"]).read_bytes()
    buffer = io.BytesIO(data)
    watched = weakref.ref(buffer)
    reader = PdfReader(buffer)
    assert "Operative report" in reader.pages[0].extract_text()
    del buffer
    reader.release_file()
    gc.collect()
    assert watched() is None, "the file's bytes are no longer held"
    assert reader.resolved_objects == {}
    with pytest.raises(ReleasedFileError):
        reader.get_object(1)
    with pytest.raises(ReleasedFileError):
        reader.pages[0]  # noqa: B018
    locked = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    locked.encrypt(user_password="", owner_password="owner-only", algorithm="AES-128")
    out = io.BytesIO()
    locked.write(out)
    reader = PdfReader(io.BytesIO(out.getvalue()))
    reader.decrypt("")
    reader.release_file()
    assert "Operative report" in reader.pages[0].extract_text()  # kept whole: it decrypts as it reads
