"""What a worker is handed to convert one file: plain values only, so it travels cheaply.

Owns: the Job record and building it from a Config (which time limit a file gets).
Must not: parse the file (the first bytes tell only whether it is a PDF or an office file).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from packet.config import Config
from packet.fsutil import open_plain_file
from packet.intake.convert.sniff import guess_is_office
from packet.model.models import SourceFile


OCR_MARGIN_SECONDS = 60.0  # beyond OCR's file limit: laying the text layers over the pages, writing the PDF


@dataclass(frozen=True)
class Job:
    sha256: str
    path: str
    suffix: str
    cache_dir: str
    work_root: str
    max_pages: int
    max_file_bytes: int
    timeout: float  # seconds, enforced by the parent (the worker's process group is killed)
    pdf_timeout: float
    work_dir: str  # private scratch folder of this job (made by the worker only if it needs one), removed when it ends
    # The [limits] of packet.config (see there): what the worker enforces while it reads the file.
    memory_mib: int
    office_memory_mib: int
    max_image_pixels: int
    max_inflated_bytes: int
    max_office_unpacked_bytes: int
    max_office_parts: int
    ocr: dict | None = None  # the [ocr] settings (packet.config.Ocr as a dict); None: no OCR
    # Added once to the deadline when the job starts reading pages by OCR (the engine keeps to its
    # own page and file limits and refuses the file naming them; this is the parent's backstop).
    ocr_seconds: float = 0.0
    attempt: int = 0  # 1 when its first worker died and a fresh one tries again
    identity: tuple[int, int] | None = None  # (device, inode) the folder walk found; the worker reads only that file


def make_job(source: SourceFile, sha256: str, config: Config) -> Job:
    limits = config.limits
    path = Path(source.path)
    try:
        with os.fdopen(open_plain_file(path, source.identity), "rb") as handle:
            head = handle.read(1024)
    except OSError:
        head = b""
    if b"%PDF-" in head:
        timeout = limits.pdf_open_timeout_seconds
    elif guess_is_office(head):
        timeout = limits.conversion_timeout_seconds + limits.pdf_open_timeout_seconds
    else:  # images and text: decoding a large scan can take a while
        timeout = max(limits.conversion_timeout_seconds, limits.pdf_open_timeout_seconds)
    ocr = config.ocr
    work_root = Path(config.work_dir) / "convert"  # scratch copies stay inside the private state folder
    return Job(sha256=sha256, path=str(path), suffix=source.suffix, cache_dir=str(config.cache_dir),
               work_root=str(work_root), work_dir="",  # named when the job starts
               max_pages=limits.max_pages, max_file_bytes=limits.max_file_bytes, timeout=float(timeout),
               pdf_timeout=float(limits.pdf_open_timeout_seconds),
               memory_mib=int(limits.worker_memory_mib), office_memory_mib=int(limits.office_memory_mib),
               max_image_pixels=int(limits.max_image_pixels), max_inflated_bytes=int(limits.max_inflated_bytes),
               max_office_unpacked_bytes=int(limits.max_office_unpacked_bytes),
               max_office_parts=int(limits.max_office_parts),
               ocr=asdict(ocr) if ocr.enabled else None,
               ocr_seconds=float(ocr.file_timeout_seconds + OCR_MARGIN_SECONDS) if ocr.enabled else 0.0,
               identity=tuple(source.identity) if source.identity is not None else None)
