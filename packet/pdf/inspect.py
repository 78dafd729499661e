"""Reading an output back: the normalised summary tests and `verify` compare, and the scans of every
object of a PDF for active content and oversized streams.

Owns: `pdf_summary(path)`, `find_active_content(reader)`, `find_oversized_streams(reader, limit)`, and
`scan_outputs(paths, limit, bound)`, both scans of several files as a worker job (packet.workers.pool).
Must not: change a file, or decode a stream whose size is in doubt (`packet.pdf.streams` measures).

``pdf_summary(path) -> dict``
    {"pages", "page_labels", "page_sizes", "outline": [{"title", "page" (1-based), "children"}],
    "stamps": [[text, ...] per page], "active_content": [finding, ...]}.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pypdf.errors import PdfReadError, PyPdfError
from pypdf.generic import ArrayObject, ByteStringObject, ContentStream, DictionaryObject, StreamObject, TextStringObject

from packet.intake.convert.limits import pypdf_bounds
from packet.pdf.geometry import rectangle
from packet.pdf.sanitize import DROPPED_ANNOTATIONS, active_action_kind, resolved
from packet.pdf.stamp import STAMP_XOBJECT
from packet.pdf.streams import inflated_beyond
from packet.pdfread import PdfReader

def pdf_summary(path: Path) -> dict:
    """A normalised view of a PDF for tests and verify (no document text, only the stamps)."""
    reader = PdfReader(path)
    pages = reader.pages
    def outline(items: Iterable) -> list[dict]:
        out: list[dict] = []
        for item in items:
            if isinstance(item, list):
                if out:
                    out[-1]["children"] = outline(item)
                continue
            page = reader.get_destination_page_number(item)
            out.append({"title": str(item.title), "page": page + 1 if page is not None and page >= 0 else None,
                        "children": []})
        return out

    stamps = [stamp_text(page) for page in pages]
    sizes = []
    for page in pages:
        box = rectangle(page.get("/MediaBox")) or (0, 0, 0, 0)
        sizes.append([round(box[2] - box[0], 2), round(box[3] - box[1], 2)])
    return {
        "pages": len(pages),
        "page_labels": list(reader.page_labels),
        "page_sizes": sizes,
        "outline": outline(reader.outline),
        "stamps": stamps,
        "active_content": find_active_content(reader),
    }


def stamp_text(page) -> list[str]:
    """The text of the page's /ImrStamp overlay (Bates label, privileged mark, DRAFT)."""
    resources = page.get("/Resources")
    if resources is None:
        return []
    xobjects = resources.get_object().get("/XObject")
    if xobjects is None or STAMP_XOBJECT not in xobjects.get_object():
        return []
    form = xobjects.get_object()[STAMP_XOBJECT].get_object()
    texts: list[str] = []
    try:
        operations = ContentStream(form, page.pdf).operations
    except (PdfReadError, PyPdfError, ValueError):
        return ["<unreadable stamp>"]
    for operands, operator in operations:
        if operator == b"Tj" and operands:
            value = operands[0]
            texts.append(value.original_bytes.decode("latin-1") if hasattr(value, "original_bytes") else str(value))
        elif operator == b"TJ" and operands:
            texts.append("".join(str(v) for v in operands[0] if isinstance(v, (TextStringObject, ByteStringObject))))
    return texts


# Keys that are active content wherever they appear, and the kind a finding names.
ACTIVE_KEYS = {"/OpenAction": "OpenAction", "/AA": "AA", "/XFA": "XFA", "/JavaScript": "JavaScript",
               "/EmbeddedFiles": "EmbeddedFiles", "/EF": "EmbeddedFile", "/RF": "EmbeddedFile",
               "/AF": "EmbeddedFile", "/RichMediaContent": "RichMedia", "/RichMediaSettings": "RichMedia"}


def _object_numbers(reader: PdfReader) -> tuple[list[int], dict[int, int]]:
    """(numbers of the objects stored directly, {number: its object stream} for the others)."""
    direct: set[int] = set()
    for table in reader.xref.values():
        direct.update(table)
    in_streams = {number: entry[0] for number, entry in reader.xref_objStm.items()}
    return sorted(direct - set(in_streams)), in_streams


def _every_object(reader: PdfReader, skip_streams: set[int] = frozenset()) -> Iterator[tuple[str, object]]:
    """(where, object) of every object of the file, each once: the trailer, every object of every
    cross-reference section and object stream (objects in `skip_streams` left out), and every
    dictionary and array nested in them, however deep."""
    direct, in_streams = _object_numbers(reader)
    numbers = direct + sorted(n for n, stream in in_streams.items() if stream not in skip_streams)
    tops: list[tuple[str, object]] = [("trailer", reader.trailer)]
    for number in numbers:
        try:
            tops.append((f"object {number}", reader.get_object(number)))
        except (PdfReadError, PyPdfError, ValueError, KeyError, IndexError, TypeError):
            continue
    seen: set[int] = set()
    for where, top in tops:
        stack = [top]
        while stack:
            obj = stack.pop()
            if id(obj) in seen or not isinstance(obj, (DictionaryObject, ArrayObject)):
                continue
            seen.add(id(obj))
            yield where, obj
            values = obj.values() if isinstance(obj, DictionaryObject) else obj
            stack.extend(v for v in values if isinstance(v, (DictionaryObject, ArrayObject)))


def find_active_content(reader: PdfReader, *, skip_streams: set[int] = frozenset()) -> list[str]:
    """Every piece of active content in a PDF ("<kind> (<where>)"), scanning every object: actions
    that run code or open or send files, additional and open actions, script and file name trees,
    XFA, embedded and associated files, RichMedia and file-attachment annotations. The objects of
    the object streams numbered in `skip_streams` are not read (see `find_oversized_streams`)."""
    findings: set[str] = set()
    for where, obj in _every_object(reader, skip_streams):
        if not isinstance(obj, DictionaryObject):
            continue
        kind = active_action_kind(obj)
        if kind is not None:
            findings.add(f"{kind} action ({where})")
        for key, kind in ACTIVE_KEYS.items():
            if key in obj:
                findings.add(f"{kind} ({where} {key})")
        subtype = resolved(obj.get("/Subtype"))
        if subtype in DROPPED_ANNOTATIONS:
            findings.add(f"{str(subtype)[1:]} annotation ({where})")
        if (isinstance(obj, StreamObject) and resolved(obj.get("/Type")) == "/EmbeddedFile"
                and getattr(obj, "_data", b"")):
            findings.add(f"EmbeddedFile ({where})")
    return sorted(findings)


def find_oversized_streams(reader: PdfReader, limit: int) -> dict[int, str]:
    """Every stream of the file that inflates past `limit` bytes, {object number: finding}.
    Object streams are measured first, and the objects inside an oversized one are not read."""
    findings: dict[int, str] = {}
    direct, in_streams = _object_numbers(reader)
    oversized: set[int] = set()
    for number in direct:
        try:
            obj = reader.get_object(number)
        except (PdfReadError, PyPdfError, ValueError, KeyError, IndexError, TypeError):
            continue
        if isinstance(obj, StreamObject):
            size = inflated_beyond(obj, limit)
            if size is not None:
                oversized.add(number)
                findings[number] = f"object {number} inflates to more than {limit} bytes (at least {size})"
    for number in sorted(n for n, stream in in_streams.items() if stream not in oversized):
        try:
            obj = reader.get_object(number)
        except (PdfReadError, PyPdfError, ValueError, KeyError, IndexError, TypeError):
            continue
        if isinstance(obj, StreamObject):  # (a stream cannot be in an object stream; a broken file may try)
            size = inflated_beyond(obj, limit)
            if size is not None:
                findings[number] = f"object {number} inflates to more than {limit} bytes (at least {size})"
    return findings


def scan_outputs(paths: list[str], limit: int, bound: int) -> list[dict]:
    """For each PDF: {"oversized": [finding, ...], "active": [finding, ...]} (`find_oversized_streams`
    against `limit`, then `find_active_content` without the oversized object streams), or
    {"error": the exception's type name} when its objects cannot be read. pypdf's decoding caps are
    `bound` meanwhile. A worker job: `verify` reads outputs that may have been tampered with, under
    the worker's memory and time limits."""
    results = []
    with pypdf_bounds(bound):
        for path in paths:
            try:
                reader = PdfReader(path)
                oversized = find_oversized_streams(reader, limit)
                active = find_active_content(reader, skip_streams=set(oversized))
            except MemoryError:
                raise  # the worker's memory limit: the job fails, and verify says so
            except Exception as exc:  # noqa: BLE001 - an unreadable output is reported, not raised
                results.append({"error": type(exc).__name__})
                continue
            results.append({"oversized": list(oversized.values()), "active": active})
    return results
