"""One conversion job, in a worker process of packet.workers.pool: the file read, checked against
its hash, converted by the converter of its kind, and the result written to the cache.

Owns: the job's outcome as a plain dict (never an exception: every failure is a refusal), pypdf's
decoding caps set to the job's `max_inflated_bytes` for the whole job, and turning a memory-limit
hit (or one of those caps, hit where no check saw it coming) into a final refusal that names the
limit. Must not: log (the service log belongs to the parent), or run anywhere but in a worker (the
memory limit is the pool's).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from pathlib import Path

from packet.config import Ocr
from packet.errors import RefusedFile
from packet.fsutil import NotPlainFile, open_plain_file
from packet.intake import cache
from packet.intake.convert.image import convert_image
from packet.intake.convert.job import Job
from packet.intake.convert.limits import pypdf_bounds, pypdf_limit_refusal, pypdf_size_cap
from packet.intake.convert.ocr_hook import read_progress, read_scanned_pages
from packet.intake.convert.office import convert_office
from packet.intake.convert.pdf import convert_pdf
from packet.intake.convert.refusals import (IMAGE_KINDS, LIBREOFFICE_KINDS, PDF, TEXT, changed_while_reading,
                                            limit_refusal, not_plain_refusal, refusal)
from packet.intake.convert.sniff import sniff
from packet.intake.convert.text import convert_text
from packet.intake.ocr import conversion_key


def warm() -> bool:
    """Import what most files need, before the first job asks (a pool worker's warm-up)."""
    importlib.import_module("pypdf")
    return True


def run_job(fields: dict) -> dict:
    """The outcome of one job (given as the fields of a Job) as a plain dict.

    {"status": "ok", "kind", "pages"} or {"status": "refused", "reason", "message", "what_to_do",
    "transient"}; "retire": True asks the pool to replace this worker (its memory is suspect).
    """
    job = Job(**fields)
    work_dir = Path(job.work_dir)
    retire = False
    try:
        with pypdf_bounds(job.max_inflated_bytes):
            return convert_job(job, work_dir)
    except RefusedFile as exc:
        refused = exc
    except MemoryError:
        retire = True
        refused = limit_refusal(f"reading the file needs more than the {job.memory_mib} MB of memory the "
                                "service allows for one file")
    except OSError:  # the file vanished or got locked, or the cache could not be written: try again later
        refused = refusal("conversion_failed", "the file could not be read or its conversion could not be "
                                               "saved", "nothing for now: the service will try again",
                          transient=True)
    except Exception as exc:  # noqa: BLE001 - an unforeseen failure is a refusal, never a crash
        if pypdf_size_cap(exc):  # pypdf stopped at our bound where no check of ours saw it coming
            refused = pypdf_limit_refusal(job.max_inflated_bytes)
        else:
            refused = refusal("conversion_failed", "the file could not be converted (unexpected problem)")
    return {"status": "refused", "reason": refused.reason, "message": refused.message,
            "what_to_do": refused.what_to_do, "transient": refused.transient, "retire": retire}


def convert_job(job: Job, work_dir: Path) -> dict:
    path = private_copy(job, work_dir)
    kind = sniff(path, job.suffix, max_unpacked_bytes=job.max_office_unpacked_bytes,
                 max_parts=job.max_office_parts)
    pictured: list[int] = []  # pages with some text over a large picture: OCR reads them too
    if kind == PDF:
        texts, title, pdf_bytes, pictured = convert_pdf(path, job, work_dir)
    elif kind in LIBREOFFICE_KINDS:
        texts, title, pdf_bytes, pictured = convert_office(path, kind, job, work_dir)
    elif kind in IMAGE_KINDS:
        texts, title, pdf_bytes = convert_image(path, job.max_pages, job.max_image_pixels)
    else:
        texts, title, pdf_bytes = convert_text(path, job.max_pages)
    confidence: tuple[float | None, ...] = ()
    settings = Ocr(**job.ocr) if job.ocr is not None else None
    # A file with pages OCR reads (or would read, were it on) remembers the settings it was read with.
    scanned = kind != TEXT and (kind in IMAGE_KINDS or bool(pictured) or any(not text.strip() for text in texts))
    if settings is not None and kind != TEXT:
        texts, pdf_bytes, confidence = read_scanned_pages(kind, path, texts, pdf_bytes, settings,
                                                          Path(job.cache_dir), work_dir, image=kind in IMAGE_KINDS,
                                                          pictured=pictured)
    cache.store_converted(Path(job.cache_dir), job.sha256, kind=kind, page_texts=texts, title=title,
                          pdf_bytes=pdf_bytes, page_confidence=confidence,
                          ocr=conversion_key(settings) if scanned else None)
    return {"status": "ok", "kind": kind, "pages": len(texts), "ocr_pages": read_progress(work_dir)[1]}


_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


def private_copy(job: Job, work_dir: Path) -> Path:
    """The clerk's file copied into the job's private folder, read from one descriptor opened
    without following a link and checked to be the plain file the folder walk found (one name, the
    same device and inode), its bytes hashed as they are copied: every converter (and every
    program it runs) reads only this copy, so a file swapped for a link, a hard link or another
    file after the walk is never read. The copy must hash to what the service hashed."""
    try:
        fd = open_plain_file(Path(job.path), job.identity)
    except NotPlainFile as exc:
        raise not_plain_refusal(exc.why) from exc
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    suffix = job.suffix if _SAFE_SUFFIX.fullmatch(job.suffix or "") else ""
    copy = work_dir / f"source{suffix.lower()}"
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "rb") as handle, open(copy, "xb") as out:
        while block := handle.read(1 << 20):
            size += len(block)
            if size > job.max_file_bytes:
                raise changed_while_reading()  # it grew past the limit after it was measured
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != job.sha256:
        raise changed_while_reading()
    return copy


def hash_handle(handle) -> str:
    digest = hashlib.sha256()
    while block := handle.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()
