"""Where the converters meet OCR: the pages that exist only as an image are read, in the worker.

Owns: choosing the pages OCR reads (every frame of a TIFF, JPEG or PNG; every page of a PDF, or
of an office file's PDF, whose text layer is blank), laying each reading's invisible text layer
over its page (turning a page upright when the engine read it turned), the page
texts and per-page confidence (0..1, None for born-digital pages) that go to the cache, and
turning an OCR limit (page cap, page or file time limit) into a refusal that names the limit.
The engine itself is packet.intake.ocr; its page cache lives in the conversion cache folder
(`ocr/`), keyed by content hash and engine version, so a page is never read twice.
Must not: log, print document text, touch the clerk's file, or keep page images after the call.
A page OCR reads without finding a single word keeps its original form (no layer, no confidence):
a blank separator sheet in a born-digital PDF does not turn the file into a converted copy.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from packet.config import Ocr
from packet.errors import OcrError, RefusedFile
from packet.intake.convert.refusals import limit_refusal, refusal, timeout_refusal
from packet.intake.ocr import OcrCache, OcrFile, OcrPage, ocr_image_file, ocr_pdf
from packet.pdfread import PdfReader

# Letters and digits of its own from which a page OCR read too keeps the confidence of born-digital
# text (packet.intake.convert.pdf.LIGHT_TEXT_CHARS: the most a page read for its picture has otherwise).
OWN_TEXT_TRUSTED = 1_000

OCR_CACHE = "ocr"  # the engine's page cache, inside the conversion cache folder
JOBS = 2  # Tesseract processes side by side for one file (OMP_THREAD_LIMIT=1 each)


PROGRESS = "ocr-progress"  # in the job's scratch folder: "<pages done> <pages to read>", for the parent


class _CountingCache(OcrCache):
    """The engine's cache, also counting the pages done (found in the cache, or read and stored)
    into a progress file the service's process reads while the job runs ("reading page n of m")."""

    def __init__(self, folder: Path, progress: Path | None, total: int):
        super().__init__(folder)
        self.progress, self.total, self.done = progress, total, 0
        self.lock = threading.Lock()
        self._write()

    def get(self, key: str) -> OcrPage | None:
        hit = super().get(key)
        if hit is not None:
            self._count()
        return hit

    def put(self, key: str, page: OcrPage) -> None:
        super().put(key, page)
        self._count()

    def _count(self) -> None:
        with self.lock:
            self.done += 1
            self._write()

    def _write(self) -> None:
        if self.progress is None:
            return
        try:
            self.progress.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            scratch = self.progress.with_suffix(".tmp")
            scratch.write_text(f"{min(self.done, self.total)} {self.total}", encoding="ascii")
            os.replace(scratch, self.progress)
        except OSError:
            pass  # progress is a courtesy: reading goes on without it


def read_progress(work_dir: Path) -> tuple[int, int]:
    """(pages done, pages to read) of a running job, from its progress file; (0, 0) when none."""
    try:
        done, total = (Path(work_dir) / PROGRESS).read_text(encoding="ascii").split()
        return int(done), int(total)
    except (OSError, ValueError):
        return 0, 0


def read_scanned_pages(kind: str, source: Path, texts: list[str], pdf_bytes: bytes | None, settings: Ocr,
                       cache_dir: Path, work_dir: Path, *, image: bool, pictured: Sequence[int] = ()
                       ) -> tuple[list[str], bytes | None, tuple[float | None, ...]]:
    """(texts, pdf_bytes, page_confidence) once every page without a text layer, and every page of
    `pictured` (a little text over a large picture: packet.intake.convert.pdf.pictured_pages), has
    been read. A pictured page keeps its own text, followed by what OCR read.

    `image`: the source is a TIFF/JPEG/PNG (every frame is read from the source's own pixels);
    otherwise the PDF read is `pdf_bytes` when given (a converted or repaired copy), else `source`.
    Raises RefusedFile when a page could not be read within the limits (the limit is named).
    """
    wanted = list(range(len(texts))) if image else sorted(
        {i for i, text in enumerate(texts) if not text.strip()} | set(pictured))
    if not settings.enabled or not wanted:
        return texts, pdf_bytes, ()
    cache = _CountingCache(Path(cache_dir) / OCR_CACHE, work_dir / PROGRESS, len(wanted))
    # The page images are the scan's pages: they stay in the job's folder, inside the private state
    # folder (removed after the job, and at the service's start after a killed worker).
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if image:
            read = ocr_image_file(Path(source).read_bytes(), settings, jobs=JOBS, cache=cache, scratch=work_dir)
        else:
            pdf_path = Path(source)
            if pdf_bytes is not None:
                pdf_path = work_dir / "ocr-source.pdf"
                pdf_path.write_bytes(pdf_bytes)
            read = ocr_pdf(pdf_path, settings, pages=wanted, jobs=JOBS, cache=cache, scratch=work_dir)
    except OcrError as exc:  # Tesseract or a language missing: the machine's problem, tried again later
        raise refusal("conversion_failed", "the pages of this scan could not be read: the text "
                      "recognition engine is not available on the server",
                      "nothing for now: tell the administrator (run `make setup`); the file is read again "
                      "once the engine is installed", transient=True) from exc
    _check_limits(read, settings)
    base = pdf_bytes if pdf_bytes is not None else Path(source).read_bytes()
    found = [page for page in read.pages if page.words > 0]
    if not found:
        return texts, pdf_bytes, ()
    new_texts = list(texts)
    confidence: list[float | None] = [None] * len(texts)
    for page in found:
        own = texts[page.index] if not image else ""
        new_texts[page.index] = f"{own.rstrip()}\n{page.text}" if own.strip() else page.text
        if sum(map(str.isalnum, own)) < OWN_TEXT_TRUSTED:
            confidence[page.index] = round((page.confidence or 0.0) / 100.0, 3)
        # else a typed page with a scan pasted in: its own text decides as any born-digital page's
        # (what OCR read of the scan still shows another person, whatever its confidence)
    source_digest = hashlib.sha256(Path(source).read_bytes()).digest()
    return new_texts, _overlay(base, found, source_digest), tuple(confidence)


def _check_limits(read: OcrFile, settings: Ocr) -> None:
    """A page not read is a refusal naming the limit: the document must never pass half-read."""
    for page in read.pages:
        if page.status == "read":
            continue
        number = page.index + 1
        if page.status == "timeout":
            raise timeout_refusal_for_page(number, settings.page_timeout_seconds)
        if page.status == "skipped" and "cap" in page.reason:
            raise limit_refusal(f"the scan has more pages than the limit of {settings.max_pages} pages "
                                "read by text recognition in one file")
        if page.status == "skipped":
            raise refusal("timeout", f"reading the scanned pages took longer than the "
                                     f"{settings.file_timeout_seconds:g}-second limit for one file "
                                     f"(page {number} was not read)")
        raise refusal("corrupt", f"page {number} of the scan could not be read by text recognition "
                                 f"({page.reason})")


def timeout_refusal_for_page(number: int, seconds: float) -> RefusedFile:
    base = timeout_refusal(seconds)
    return RefusedFile(base.reason, f"reading page {number} of the scan took longer than the {seconds:g}-second "
                                    "limit for one page", base.what_to_do)


def _overlay(pdf_bytes: bytes, pages: list[OcrPage], source_digest: bytes) -> bytes:
    """The PDF with each read page's invisible text laid over it; a page the engine turned upright
    is turned upright in the PDF too (the text layer fits the upright page)."""
    from pypdf import PdfWriter, Transformation
    from pypdf.generic import ArrayObject, ByteStringObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes)))
    for page in pages:
        layer = PdfReader(io.BytesIO(page.text_layer)).pages[0]
        target = writer.pages[page.index]
        if page.rotation:  # upside down or sideways: the page itself is turned upright, pixels kept
            target.rotate(page.rotation)
        if target.rotation % 360:
            target.transfer_rotation_to_content()
        if page.image is not None and _needs_corrected_image(target, page):
            writer.insert_page(PdfReader(io.BytesIO(_image_page(page))).pages[0], page.index)
            writer.remove_page(page.index + 1)
            target = writer.pages[page.index]
        box = target.mediabox
        width, height = float(box.width), float(box.height)
        layer_width, layer_height = page.page_size
        scale_x = width / layer_width if layer_width else 1.0
        scale_y = height / layer_height if layer_height else 1.0
        target.merge_transformed_page(layer, Transformation().scale(scale_x, scale_y)
                                      .translate(float(box.left), float(box.bottom)))
    # A fixed /ID (from the clerk's file and the layers; img2pdf's own /ID is random): the same scan
    # converts to the same bytes in any process, so converting it again changes nothing downstream.
    identity = hashlib.sha256(source_digest)
    for page in pages:
        identity.update(page.text_layer or b"")
        identity.update(page.image or b"")
    file_id = ByteStringObject(identity.digest()[:16])
    writer._ID = ArrayObject([file_id, file_id])  # noqa: SLF001 - as packet.mailings.enclosures does
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _needs_corrected_image(target, page: OcrPage) -> bool:
    """Whether the page must show the engine's corrected image instead of its own pixels: only when
    the page, turned upright, still does not have the layer's shape (an orientation tag the PDF did
    not apply). A turned page keeps its pixels (turned); a straightened one keeps them as they are,
    so a scan is never re-rendered larger than it came; its layer's words lie straight near the
    tilted ones (searchable; a selection highlight may sit a line off near the edge of a tilted page)."""
    width, height = float(target.mediabox.width), float(target.mediabox.height)
    layer_width, layer_height = page.page_size
    return (width >= height) != (layer_width >= layer_height)


def _image_page(page: OcrPage) -> bytes:
    import img2pdf

    width, height = page.page_size

    def fixed(_width_px, _height_px, _dpi):
        return width, height, width, height

    return img2pdf.convert(page.image, layout_fun=fixed, nodate=True)
