"""PDF files: taken as they are when pypdf reads them, else a decrypted or repaired copy, else refused;
and the text of each page, whatever produced the PDF.

Owns: opening (the empty password, qpdf repair), the inflation bounds of a PDF's streams and page
content, page text (poppler's pdftotext, pypdf as the fallback, OCR for pages without text) and the
document title worth showing. Must not: change the clerk's file (a copy is written when one is needed).
"""

from __future__ import annotations

import contextlib
import io
import mmap
import re
import shutil
import subprocess
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from packet.errors import RefusedFile
from packet.intake.convert.limits import (check_annotations, check_objects, check_pages, check_pdf_streams,
                                          pypdf_limit_refusal, pypdf_size_cap)
from packet.intake.convert.refusals import refusal, too_many_pages
from packet.pdfread import PdfReader

# pdftotext (poppler, C) reads text about three times faster than pypdf; it gets at most this share
# of the job's time limit, so that pypdf still has time to take over when it fails or hangs.
PDFTOTEXT_SHARE = 0.5

# A page with little text of its own drawn over a large picture: a scan under a fax server's header
# line or confidentiality footer, a scanned record pasted into a Word file. Its text does not say
# whose record the picture is, so OCR reads the page too (`pictured_pages`). Two sizes: a little text
# over a picture, or a paragraph over a whole scanned page.
SPARSE_TEXT_CHARS = 200  # letters and digits: a fax header line has about 60
PICTURE_MIN_PIXELS = 500_000  # a letter page scanned at 70 dpi; a logo or a signature is far smaller
LIGHT_TEXT_CHARS = 1_000  # a fax server's confidentiality notice has 300-600
PAGE_PICTURE_PIXELS = 1_500_000  # a letter page at 150 dpi, a fax page at 204 x 98 dpi
_XOBJECTS_LOOKED_AT = 200  # per page, its forms' included
_FORM_DEPTH = 3
# A typed page with a scan pasted into part of it (a clinic's letter with a lab report's picture under
# its text): any amount of text, a picture of PART_PICTURE_PIXELS drawn over PART_OF_PAGE of the page.
# Not a logo (fewer pixels), not a letterhead or a scanner's own page behind the text (the whole page).
PART_PICTURE_PIXELS = 1_000_000  # a half page scanned at 200 dpi has 1.9 million
PART_OF_PAGE = (0.15, 0.9)
_OPERATIONS_LOOKED_AT = 20_000  # drawing operations read per page, its forms' included


def convert_pdf(path: Path, job, work_dir: Path) -> tuple[list[str], str | None, bytes | None, list[int]]:
    """Accept a PDF as is when pypdf reads it without searching it for objects; else a decrypted or
    repaired copy; else refuse. Also the pages OCR must read though they have some text
    (`pictured_pages`)."""
    unsettled = check_pdf_streams(path, job.max_inflated_bytes)
    try:
        with object_searches(stop=True):
            reader, copy_bytes = _open_pdf(path, job, work_dir)
            if copy_bytes is not None:
                unsettled = check_pdf_streams(None, job.max_inflated_bytes, copy_bytes)
            pages = _checked(reader, job, unsettled)
    except ObjectSearch:
        # An object pypdf found only by searching the whole file (a cross-reference table that points
        # wrong or leaves it out): the assembly, in the service's process and without this job's time
        # limit, would search again for each, and a damaged 2 MB file took 45 s there. Reading stops at
        # the first search (a mutant missing thousands of objects made pypdf search 10,000 times, one
        # whole-file scan each, until the time limit); qpdf rewrites the table once, here. A file it
        # cannot make whole is damaged.
        repaired = _repair_with_qpdf(path, job, work_dir)
        if repaired is None:
            raise refusal("corrupt") from None
        reader, copy_bytes = repaired
        pages = _checked(reader, job, check_pdf_streams(None, job.max_inflated_bytes, copy_bytes))
    if copy_bytes is None:
        texts = page_texts(path, reader, pages, job.timeout)
    else:  # pdftotext reads the decrypted or repaired copy, which is what later stages use
        work_dir.mkdir(mode=0o700, exist_ok=True)
        copy_path = work_dir / "copy.pdf"
        copy_path.write_bytes(copy_bytes)
        texts = page_texts(copy_path, reader, pages, job.timeout)
    pictured = pictured_pages(reader, texts)  # on the page's own text: a field's lines must not hide a scan
    texts = [f"{text}\n{fields}" if (fields := field_lines(page)) else text
             for text, page in zip(texts, _pages_or_none(reader, pages))]
    return texts, pdf_title(reader), copy_bytes, pictured


# A filled form's fields: poppler gives their values after the page's own text, apart from the labels
# printed beside them ("Patient name:" ... "Robert Chen"), so a filled form of another patient read as
# unlabelled. Each text field with a value adds "its name: its value" to the page's text, named as the
# form names it for people (/TU), else by its own name made readable ("PatientName", "patient_name",
# "form1[0].Page1[0].DOB[0]" -> "Patient Name", "patient name", "DOB").
_FIELDS_READ = 200  # per page
_FIELD_VALUE_CHARS = 200


def field_lines(page) -> str:
    """"name: value" lines of the page's filled text fields (see above); "" when there are none or
    they cannot be read (a form's fields never stop a file from being taken)."""
    if page is None:
        return ""
    lines = []
    try:
        for annotation in list(_resolved(page.get("/Annots")) or [])[:_FIELDS_READ]:
            field = _resolved(annotation)
            if not hasattr(field, "get") or field.get("/Subtype") != "/Widget":
                continue
            for _ in range(4):  # a widget's name and value may be its parent field's
                if "/V" in field or "/Parent" not in field:
                    break
                field = _resolved(field["/Parent"])
            value, name = _resolved(field.get("/V")), _resolved(field.get("/TU") or field.get("/T"))
            # (a check box's value is a name, "/Yes")
            if isinstance(value, str) and isinstance(name, str) and value.strip() and not value.startswith("/"):
                label = re.sub(r"\[\d+\]", "", str(name)).split(".")[-1]
                label = re.sub(r"(?<=[a-z])(?=[A-Z])|[_\-]+", " ", label).strip()
                lines.append(f"{label}: {' '.join(str(value).split())[:_FIELD_VALUE_CHARS]}")
    except Exception:  # noqa: BLE001 - a damaged form: its page keeps the text poppler gave
        return ""
    return "\n".join(lines)


def _pages_or_none(reader, pages: int) -> list:
    try:
        return [reader.pages[index] for index in range(pages)]
    except Exception:  # noqa: BLE001 - the text stands; only the fields' lines are lost
        return [None] * pages


def pictured_pages(reader, texts: list[str]) -> list[int]:
    """The 0-based pages that have some text, but little, over a large picture: fewer than
    SPARSE_TEXT_CHARS letters and digits over a picture of PICTURE_MIN_PIXELS, or fewer than
    LIGHT_TEXT_CHARS over one of PAGE_PICTURE_PIXELS; and the pages with a scan pasted into part of
    them (`_part_picture`). OCR reads them as it reads pages without text.
    A page whose resources cannot be read is not one (its text is what there is)."""
    out = []
    for index, text in enumerate(texts):
        if not text.strip():
            continue  # read anyway
        try:
            pixels = _largest_picture(reader.pages[index].get("/Resources"))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - damaged resources raise anything
            if pypdf_size_cap(exc):
                raise
            continue
        if ((pixels >= PAGE_PICTURE_PIXELS and _fewer_letters(text, LIGHT_TEXT_CHARS))
                or (pixels >= PICTURE_MIN_PIXELS and _fewer_letters(text, SPARSE_TEXT_CHARS))
                or (pixels >= PART_PICTURE_PIXELS and _part_picture(reader.pages[index]))):
            out.append(index)
    return out


def _resolved(value):
    return value.get_object() if hasattr(value, "get_object") else value


def _part_picture(page) -> bool:
    """Whether a picture of PART_PICTURE_PIXELS is drawn over PART_OF_PAGE of the page: the drawn
    area is the determinant of the transformation in force where the picture is drawn (`cm`, `q`,
    `Q`, forms' matrices), read through forms _FORM_DEPTH deep and _OPERATIONS_LOOKED_AT operations
    in all. A page whose drawing cannot be read is not one."""
    from pypdf.generic import ContentStream

    box = page.mediabox
    page_area = abs(float(box.width) * float(box.height))
    if page_area <= 0:
        return False
    budget = [_OPERATIONS_LOOKED_AT]

    def walk(content, resources, scale: float, depth: int) -> bool:
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        xobjects = xobjects.get_object() if xobjects is not None else {}
        stack = []
        for operands, operator in ContentStream(content, page.pdf).operations:
            budget[0] -= 1
            if budget[0] < 0:
                return False
            if operator == b"q":
                stack.append(scale)
            elif operator == b"Q" and stack:
                scale = stack.pop()
            elif operator == b"cm" and len(operands) == 6:
                a, b, c, d = (float(value) for value in operands[:4])
                scale *= a * d - b * c
            elif operator == b"Do" and operands and operands[0] in xobjects:
                xobject = xobjects[operands[0]].get_object()
                if xobject.get("/Subtype") == "/Image":
                    width, height = (_resolved(xobject.get(key)) for key in ("/Width", "/Height"))
                    if (isinstance(width, (int, float)) and isinstance(height, (int, float))
                            and width * height >= PART_PICTURE_PIXELS
                            and PART_OF_PAGE[0] <= abs(scale) / page_area <= PART_OF_PAGE[1]):
                        return True
                elif xobject.get("/Subtype") == "/Form" and depth < _FORM_DEPTH:
                    matrix = [float(_resolved(value)) for value in _resolved(xobject.get("/Matrix", [1, 0, 0, 1]))][:4]
                    form_scale = scale * (matrix[0] * matrix[3] - matrix[1] * matrix[2]) if len(matrix) == 4 else scale
                    if walk(xobject, xobject.get("/Resources"), form_scale, depth + 1):
                        return True
        return False

    try:
        contents = page.get_contents()
        return contents is not None and walk(contents, page.get("/Resources"), 1.0, 0)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged content raises anything
        if pypdf_size_cap(exc):
            raise
        return False


def _fewer_letters(text: str, limit: int) -> bool:
    """Fewer than `limit` letters and digits (most pages tell from their first lines)."""
    if sum(map(str.isalnum, text[:2 * limit])) >= limit:
        return False
    return sum(map(str.isalnum, text)) < limit


def _largest_picture(resources) -> int:
    """The pixel count of the largest image a page's resources draw, its forms' included (forms
    _FORM_DEPTH deep, _XOBJECTS_LOOKED_AT in all: a page of forms within forms is not walked for long)."""
    largest, budget = 0, _XOBJECTS_LOOKED_AT
    pending = [(resources, 0)]
    while pending and budget > 0:
        resources, depth = pending.pop()
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        if xobjects is None:
            continue
        for _name, value in list(xobjects.get_object().items())[:budget]:
            budget -= 1
            xobject = value.get_object()
            subtype = xobject.get("/Subtype")
            if subtype == "/Image":
                width, height = xobject.get("/Width"), xobject.get("/Height")
                width = width.get_object() if width is not None else 0
                height = height.get_object() if height is not None else 0
                if isinstance(width, (int, float)) and isinstance(height, (int, float)):
                    largest = max(largest, int(width) * int(height))
            elif subtype == "/Form" and depth < _FORM_DEPTH:
                pending.append((xobject.get("/Resources"), depth + 1))
    return largest


def _checked(reader, job, unsettled) -> int:
    """The page count, once the PDF's pages, objects and page contents are within the job's bounds."""
    pages = page_count(reader)
    if pages > job.max_pages:
        raise too_many_pages(pages, job.max_pages)
    check_objects(reader, job.max_inflated_bytes, unsettled)
    check_pages(reader, job.max_inflated_bytes)
    check_annotations(reader)
    return pages


# pypdf's warnings when it looks for an object by searching the whole file: its cross-reference entry
# points elsewhere ("ref repaired"), is missing ("found"), or the object is nowhere ("not defined", and
# then every later use searches again).
_OBJECT_SEARCH_WARNINGS = frozenset({"Object ID %(idnum)d,%(generation)d ref repaired",
                                     "Object %(idnum)d %(generation)d found",
                                     "Object %(idnum)d %(generation)d not defined."})


class ObjectSearch(BaseException):
    """Raised through pypdf at its first search for an object, under `object_searches(stop=True)`.
    A BaseException, as KeyboardInterrupt is: pypdf and the bounds' checks catch Exception on
    damaged files and would go on reading (and searching)."""


class _Searches:
    count = 0


@contextlib.contextmanager
def object_searches(*, stop: bool = False) -> Iterator[_Searches]:
    """How many times pypdf searched the file for an object while the block ran; with `stop`, the
    first search raises ObjectSearch instead. Seen through pypdf's own hook for its warnings
    (`logger_warning`, which its documentation offers for overriding), called once each search is
    done; a conversion worker runs one job at a time and logs nothing (packet.workers.pool)."""
    from pypdf import _reader

    searches = _Searches()
    warn = _reader.logger_warning
    reading = threading.get_ident()  # only this thread's reading is stopped

    def counting(message: str, *, source: str, **values) -> None:
        if message in _OBJECT_SEARCH_WARNINGS:
            searches.count += 1
            if stop and threading.get_ident() == reading:
                raise ObjectSearch()
        warn(message, source=source, **values)

    _reader.logger_warning = counting
    try:
        yield searches
    finally:
        _reader.logger_warning = warn


def _open_pdf(path: Path, job, work_dir: Path):
    """(reader, bytes of a copy to cache or None). Refuses encrypted and unreadable PDFs."""
    from pypdf import PdfWriter

    opened_without_password = False
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            if not _decrypts_without_password(reader):
                raise refusal("encrypted")
            opened_without_password = True
        if page_count(reader) < 1:
            raise ValueError("no pages")
        if not opened_without_password:
            return reader, None
        # Owner-password restrictions only: keep a decrypted copy so later stages can read it freely.
        buffer = io.BytesIO()
        PdfWriter(clone_from=reader).write(buffer)
        copy_bytes = buffer.getvalue()
        return PdfReader(io.BytesIO(copy_bytes), strict=False), copy_bytes
    except (RefusedFile, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on broken files
        if pypdf_size_cap(exc):  # not damaged: larger than our bound (a repair would not shrink it)
            raise pypdf_limit_refusal(job.max_inflated_bytes) from exc
        if not opened_without_password and _mentions_encryption(path):
            # pypdf could not even try the empty password (e.g. an RC4 key size it rejects)
            raise refusal("encrypted") from exc
        repaired = _repair_with_qpdf(path, job, work_dir)
        if repaired is None:
            raise refusal("corrupt") from exc
        return repaired


def _decrypts_without_password(reader) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - unsupported ciphers raise NotImplementedError, ValueError, ...
        return False


def page_count(reader) -> int:
    return len(reader.pages)


def _mentions_encryption(path: Path) -> bool:
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"/Encrypt") != -1
    except (OSError, ValueError):
        return False


def _repair_with_qpdf(path: Path, job, work_dir: Path):
    """qpdf rebuilds a damaged cross-reference table; pypdf must then read the copy with pages."""
    from pypdf import PdfWriter

    qpdf = shutil.which("qpdf")
    if qpdf is None:
        return None
    work_dir.mkdir(mode=0o700, exist_ok=True)
    output = work_dir / "repaired.pdf"
    try:
        completed = subprocess.run([qpdf, "--decrypt", "--object-streams=preserve", str(path), str(output)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=job.pdf_timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode not in (0, 3) or not output.is_file():
        return None
    copy_bytes = output.read_bytes()
    try:
        reader = PdfReader(io.BytesIO(copy_bytes), strict=False)
        if reader.is_encrypted or page_count(reader) < 1:
            return None
        # A repaired file must also survive being merged into the packet (some still break pypdf
        # deeper inside, e.g. pdf.js's filled-background.pdf): try the merge the assembler will do.
        PdfWriter().append(reader, import_outline=False)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        if pypdf_size_cap(exc):
            raise pypdf_limit_refusal(job.max_inflated_bytes) from exc
        return None
    return reader, copy_bytes


def page_texts(pdf_path: Path, reader, pages: int, timeout: float) -> list[str]:
    """The text of each page: pdftotext's when it answers for exactly `pages` pages, else pypdf's.
    A page still without text is read by OCR afterwards (packet.intake.convert.ocr_hook)."""
    texts = pdftotext_pages(pdf_path, pages, timeout=max(1.0, timeout * PDFTOTEXT_SHARE))
    if texts is None:
        texts = _extract_texts(reader, pages)
    return texts


def pdftotext_pages(pdf_path: Path, pages: int, *, timeout: float) -> list[str] | None:
    """poppler's `pdftotext` text of each page, or None if it is missing, fails, times out, or does
    not give exactly `pages` pages (the caller then uses pypdf).

    `-raw` (content-stream order, like pypdf): the default reading-order mode joins a word broken
    at a line end and drops its hyphen ("attorney-" + "client" becomes "attorneyclient"), which
    hides phrases the privilege and withholding rules look for; `-layout` pads lines with spaces.

    One call per file: pdftotext ends every page with a form feed, so the output splits into
    `pages` texts and an empty remainder; a page without text is "". The file is read from standard
    input (`fd://0`), so its name never appears on a command line.
    """
    command = shutil.which("pdftotext")
    if command is None:
        return None
    try:
        with open(pdf_path, "rb") as pdf:
            completed = subprocess.run([command, "-q", "-raw", "-enc", "UTF-8", "-eol", "unix", "fd://0", "-"],
                                       stdin=pdf, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    try:
        text = completed.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None
    chunks = text.split("\f")
    if len(chunks) != pages + 1 or chunks[-1].strip():
        return None  # a form feed inside a page's text, or a different page count: let pypdf read it
    return [chunk.rstrip("\n") for chunk in chunks[:pages]]


def _extract_texts(reader, pages: int) -> list[str]:
    """pypdf's text per page; a page whose extraction fails gives "" (the page itself is kept)."""
    texts = []
    for number in range(pages):
        try:
            text = reader.pages[number].extract_text() or ""
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - broken content streams raise anything
            if pypdf_size_cap(exc):
                raise  # past our bound: the job refuses the file naming it (packet.intake.convert.worker)
            text = ""
        texts.append(text)
    return texts


_FILENAME_TITLE = re.compile(r"\.(pdf|docx?|docm|rtf|odt|txt|tiff?|jpe?g|png|xlsx?|html?)$", re.IGNORECASE)
_JUNK_TITLES = {"untitled", "document", "title", "no title", "pdf", "word document", "microsoft word",
                "blank", "new document", "document1", "doc1", "input", "scan", "scanned document"}


def pdf_title(reader) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # noqa: BLE001
        return None
    return sensible_title(title)


def sensible_title(title: object) -> str | None:
    """A metadata title worth showing to people, or None (empty, a file name, a placeholder)."""
    if not isinstance(title, str):
        return None
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in title)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"^Microsoft (Word|PowerPoint|Excel) - ", "", text, flags=re.IGNORECASE)
    if not 3 <= len(text) <= 200 or text.lower() in _JUNK_TITLES:
        return None
    if _FILENAME_TITLE.search(text) or "/" in text or "\\" in text or text.lower().startswith("untitled"):
        return None
    if not any(ch.isalpha() for ch in text) or "\ufffd" in text:
        return None
    return text
