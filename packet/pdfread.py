"""pypdf's PDF reader, reading one object of an object stream without parsing the stream's others.

pypdf (7.1) parses every object of an object stream the first time any one of them is asked for. A
file printed from a browser can keep its page among 65,000 objects in streams (the corpus's
pdfjs-bug1978317.pdf): pypdf then spent 10-15 s of pure Python reaching a one-page file's page
tree, and did so again in the conversion, the assembly and every rebuild. This reader reads a
stream's index once and parses only the objects asked for (0.3 s).

Owns: `PdfReader`, the reader every room opens a PDF with. It differs from pypdf's in one method and
only for a clean object stream: a header of plain numbers within /First whose offsets rise and stay
inside the stream. Anything else (a stream that cannot be decoded, a damaged header, a circular
reference, an object that fails to parse) goes to pypdf's own method, with pypdf's warnings, nulls
and errors. One difference is by design: a damaged object fails only itself, where pypdf, parsing
the stream whole, fails every object of that stream (tests/test_pdfread.py compares every object
of the corpus files and of mutants of them with pypdf's reading).
Must not: read any object otherwise than pypdf reads it, where pypdf reads it at all.
"""

from __future__ import annotations

import re
from io import BytesIO

import pypdf
from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError
from pypdf.generic import IndirectObject, NumberObject, PdfObject, read_object

# PDF white space as pypdf reads it between the numbers of an object stream's header.
_HEADER_SPACE = re.compile(rb"[\x00\t\n\f\r ]+")
_MAX_DIGITS = 10  # a longer number is left to pypdf (its own length limit and errors)


class _Stream:
    """One object stream's decoded bytes and where each object starts in them."""

    __slots__ = ("data", "starts")

    def __init__(self, data: bytes, starts: dict[int, int]):
        self.data = data
        self.starts = starts


class ReleasedFileError(RuntimeError):
    """An object was asked of a reader whose file's bytes were let go (`PdfReader.release_file`)."""


class _ReleasedFile:
    """Stands for the bytes of a released reader: any use raises (never an empty read, which pypdf
    could take for a damaged file and answer with a null object)."""

    def __getattr__(self, name: str):
        raise ReleasedFileError(f"the file's bytes were released; {name} is not possible")


_RELEASED = _ReleasedFile()


class PdfReader(pypdf.PdfReader):
    __doc__ = pypdf.PdfReader.__doc__

    def forget_objects(self) -> None:
        """Drop the objects parsed so far, its page list and its decoded object streams. The file's
        bytes and cross-reference stay, so an object asked for again is read again, the same way.
        A packet's writer holds copies of a merged document's objects: its reader's own are dead
        weight until the packet is written (at 5,000 pages, about 30 MB of the build's memory).
        An encrypted file keeps them: pypdf reads its encryption dictionary once, undecrypted, and
        would decrypt it as any other object if it were read again."""
        if self.is_encrypted:
            return
        self.resolved_objects = {}
        self.flattened_pages = None
        self.__dict__.pop("_imr_object_streams", None)

    def release_file(self) -> None:
        """`forget_objects`, and let go of the file's bytes too: for a document whose pages a writer
        has copied and that is never read again (packet.pdf.builder; at 5,000 pages the sources'
        bytes are 11-17 MB in each process that merges them). Reading any object afterwards raises
        `ReleasedFileError` instead. An encrypted file keeps everything (see `forget_objects`)."""
        if self.is_encrypted:
            return
        self.forget_objects()
        self.stream = _RELEASED

    def _get_object_from_stream(self, indirect_reference: IndirectObject) -> PdfObject:
        number = indirect_reference.idnum
        stream = self._object_stream_of(number)
        if stream is None or number not in stream.starts:
            return self._read_by_pypdf(indirect_reference)
        buffer = BytesIO(stream.data)
        buffer.seek(stream.starts[number])
        try:
            obj = read_object(buffer, self)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - pypdf reads the whole stream and decides (warning, null or error)
            return self._read_by_pypdf(indirect_reference)
        return self.cache_indirect_object(0, number, obj)

    def _read_by_pypdf(self, indirect_reference: IndirectObject) -> PdfObject:
        """pypdf's method; the error it raised for a stream is raised again at once for the stream's
        other objects. pypdf would read the stream again to find the same error (its header, or the
        first object that fails to parse, is the same whichever object is asked for), and a file whose
        root is lost asks for every object in turn: 65,000 readings of one stream."""
        stream_number = self.xref_objStm[indirect_reference.idnum][0]
        failed = self.__dict__.setdefault("_imr_failed_streams", {})
        if stream_number in failed:
            kind, args = failed[stream_number]
            raise kind(*args)
        try:
            return super()._get_object_from_stream(indirect_reference)
        except FileNotDecryptedError:
            raise  # read again once the file is decrypted
        except PdfReadError as exc:
            if not str(exc).startswith("Circular"):  # depends on what is being read, not on the stream
                failed[stream_number] = (type(exc), exc.args)
            raise

    def _object_stream_of(self, number: int) -> _Stream | None:
        """The clean object stream holding object `number`, indexed once; None: pypdf's method decides."""
        stream_number = self.xref_objStm[number][0]
        streams = self.__dict__.setdefault("_imr_object_streams", {})
        if stream_number not in streams:
            streams[stream_number] = self._index(number, stream_number)
        return streams[stream_number]

    def _index(self, number: int, stream_number: int) -> _Stream | None:
        if number in self._object_stream_resolution_stack:
            return None  # a circle: pypdf names it
        self._object_stream_resolution_stack.append(number)
        try:
            stream = IndirectObject(stream_number, 0, self).get_object()
            if stream.get("/Type") != "/ObjStm":
                return None
            count, first = stream.get("/N"), stream.get("/First")
            if not (isinstance(count, NumberObject) and isinstance(first, NumberObject)):
                return None
            data = stream.get_data()
        except (MemoryError, LimitReachedError, FileNotDecryptedError):
            raise  # not the stream's fault alone: a bound, or a file not decrypted yet
        except Exception:  # noqa: BLE001 - pypdf's method meets the same problem and reports it
            return None
        finally:
            self._object_stream_resolution_stack.pop()
        count, first = int(count), int(first)
        if count < 0 or not 0 <= first <= len(data) or count > len(data) // 3:
            return None
        tokens = _HEADER_SPACE.split(data[:first].strip(b"\x00\t\n\f\r "))
        if len(tokens) < 2 * count or not all(t.isdigit() and len(t) <= _MAX_DIGITS for t in tokens[:2 * count]):
            return None
        starts: dict[int, int] = {}
        last = -1
        for i in range(0, 2 * count, 2):
            object_number, offset = int(tokens[i]), int(tokens[i + 1])
            if offset <= last or first + offset > len(data):
                return None
            last = offset
            starts.setdefault(object_number, _skip_space(data, first + offset))
        return _Stream(data, starts)


def _skip_space(data: bytes, at: int) -> int:
    """Where the object starting at `at` begins, after white space (as pypdf reads it)."""
    match = _HEADER_SPACE.match(data, at)
    return match.end() if match else at
