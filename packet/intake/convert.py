"""Turning every accepted input into a PDF with the text of each page, or refusing it with a reason.

Owns: telling a file's type by its content (magic bytes, then the inside of ZIP and OLE containers),
the refusal codes and their plain-language messages (encrypted, corrupt, empty, unsupported,
too_large, too_many_pages, macros, conversion_failed, timeout), the converters (PDF as is or a
repaired / decrypted copy; DOCX, DOC, RTF and ODT through LibreOffice; TIFF, JPEG and PNG through
img2pdf at their physical size; plain text rendered with reportlab), text extraction (poppler's
pdftotext, with pypdf as the fallback), and the worker processes that run all of this under a
per-file time limit (long-lived: idle workers wait for the next build while they are small).
Must not: classify, stamp or merge documents; move or change the clerk's files (they are only
read); put file names or document text into messages or the service log.
Results are cached by content hash through packet.intake.cache, so an unchanged file is read once.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import logging
import mmap
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import warnings
import zipfile
import zlib
from collections import deque
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import wait as wait_for_ready
from pathlib import Path
from typing import Callable

from packet.intake import cache
from packet.config import Config
from packet.errors import RefusedFile
from packet.fsutil import ensure_dir, short_hash
from packet.log import log
from packet.model.models import Converted, SourceFile

PDF = "pdf"
LIBREOFFICE_KINDS = ("docx", "doc", "rtf", "odt")
IMAGE_KINDS = ("tiff", "jpeg", "png")
TEXT = "txt"
KINDS = (PDF, *LIBREOFFICE_KINDS, *IMAGE_KINDS, TEXT)

TEXT_SUFFIXES = (".txt", ".text")
# What a file's name says it is, used only when its content has no recognisable signature.
SUFFIX_KINDS = {".pdf": PDF, ".docx": "docx", ".docm": "docx", ".dotx": "docx", ".dotm": "docx",
                ".doc": "doc", ".dot": "doc", ".rtf": "rtf", ".odt": "odt", ".ott": "odt",
                ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg",
                ".png": "png", ".txt": TEXT, ".text": TEXT}
KIND_NAMES = {PDF: "PDF", "docx": "Word (.docx)", "doc": "Word (.doc)", "rtf": "RTF", "odt": "ODT",
              "tiff": "TIFF image", "jpeg": "JPEG image", "png": "PNG image", TEXT: "text"}
MACRO_SUFFIXES = (".docm", ".dotm")

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: .doc, and encrypted OOXML
# Signatures of common files that are not accepted inputs, so they get a clear "unsupported".
FOREIGN_SIGNATURES = ((b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"BM", "a BMP image"),
                      (b"%!PS", "a PostScript file"), (b"\x1f\x8b", "a compressed (gzip) file"),
                      (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
                      (b"\x00\x00\x01\x00", "an icon file"), (b"MZ", "a program"),
                      (b"\x7fELF", "a program"))

ACCEPTED = "PDF, Word (.docx, .doc), RTF, ODT, TIFF, JPEG, PNG and plain text (.txt)"

# Images: the size a page gets when the file does not say its resolution (or says nonsense).
DEFAULT_DPI = 200.0
LETTER_INCHES = (8.5, 11.0)
MAX_PAGE_INCHES = 200.0  # the PDF limit for a page side (14,400 points)
SCREEN_DPIS = (72.0, 96.0)  # "resolutions" written by software that did not know the real one
MAX_IMAGE_PIXELS = 600_000_000  # Pillow's decompression-bomb guard, per frame

# Text files: letter paper, one-inch margins, a monospace font.
TEXT_FONT_SIZE = 10.0
TEXT_LEADING = 12.0
TEXT_MARGIN = 72.0
TEXT_FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
                   "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
                   "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
                   "/usr/local/share/fonts/DejaVuSansMono.ttf")

_MESSAGES = {
    "encrypted": ("the file is protected with a password, so it cannot be opened",
                  "ask the sender for an unlocked copy (no password) and drop that in"),
    "corrupt": ("the file is damaged or incomplete and cannot be read",
                "the file is damaged or incomplete; ask for a new copy or re-scan it"),
    "empty": ("the file is empty: it holds no content",
              "check that the file was saved or scanned completely, then drop in a complete copy"),
    "unsupported": (f"this kind of file is not accepted (accepted: {ACCEPTED})",
                    "save or print it as a PDF and drop that in"),
    "too_large": ("the file is larger than the size limit",
                  "ask for a smaller copy (split it into parts, or scan at a lower resolution) and drop that in"),
    "too_many_pages": ("the document has more pages than the limit for one document",
                       "split it into smaller documents and drop those in"),
    "macros": ("the file contains macros (small programs), which the service never opens",
               "ask the sender for a copy saved as an ordinary Word document (.docx) or as a PDF, "
               "without macros, and drop that in"),
    "conversion_failed": ("LibreOffice could not turn the file into a PDF",
                          "open it in Word (or another editor), save it as a PDF and drop that in"),
    "timeout": ("reading the file took longer than the time limit",
                "nothing for now: the service will try again later; if this keeps happening, save it "
                "as a PDF (or split it into smaller files) and drop that in"),
}
REASONS = tuple(_MESSAGES)


def refusal(reason: str, message: str | None = None, what_to_do: str | None = None, *,
            transient: bool = False) -> RefusedFile:
    """A RefusedFile with the standard wording for `reason` unless a more precise one is given."""
    default_message, default_what = _MESSAGES[reason]
    return RefusedFile(reason, message or default_message, what_to_do or default_what, transient=transient)


# --------------------------------------------------------------------------------------------
# Public interface


def convert(source: SourceFile, config: Config) -> Converted:
    """Convert one file (in a worker process, under the time limit); raise RefusedFile if unusable."""
    result = convert_many([source], config)[0]
    if isinstance(result, RefusedFile):
        raise result
    return result


def convert_many(sources: list[SourceFile], config: Config, *,
                 on_result: Callable[[int, Converted | RefusedFile], None] | None = None
                 ) -> list[Converted | RefusedFile]:
    """Convert files in parallel (up to `config.limits.workers` processes), in input order.

    A file already seen (same bytes) is answered from the cache without being parsed again. A file
    whose worker exceeds its time limit is refused as "timeout" (transient) and its worker killed.
    `on_result(index, result)`, if given, is called once per source in this process as soon as its
    result is known, while the workers go on with the other files (a build classifies documents
    then, so that work overlaps with text extraction); an exception from it stops the conversion.
    """
    limits = config.limits
    results: list[Converted | RefusedFile | None] = [None] * len(sources)
    waiting: dict[str, list[int]] = {}  # sha256 -> indexes of sources with that content
    jobs: list[_Job] = []
    announce: deque[int] = deque()  # indexes whose result is known but not yet given to on_result
    for index, source in enumerate(sources):
        try:
            sha256 = _check_and_hash(source, limits.max_file_bytes)
            cached = cache.load(config.cache_dir, sha256, source.path)
            if cached is None:
                if sha256 not in waiting:
                    waiting[sha256] = []
                    jobs.append(_make_job(source, sha256, config))
                waiting[sha256].append(index)
                continue
            results[index] = _apply_limits(cached, limits.max_pages)
        except RefusedFile as refused:
            results[index] = refused
        announce.append(index)

    settled: set[str] = set()

    def settle(job: _Job, outcome: dict | RefusedFile) -> None:
        settled.add(job.sha256)
        if isinstance(outcome, RefusedFile):
            with contextlib.suppress(OSError):  # not cached: the file is simply tried again next time
                cache.store_refusal(config.cache_dir, job.sha256, outcome)
            log("convert.refused", doc=short_hash(job.sha256), reason=outcome.reason,
                transient=outcome.transient)
        for index in waiting[job.sha256]:
            source = sources[index]
            announce.append(index)
            if isinstance(outcome, RefusedFile):
                results[index] = outcome
                continue
            loaded = cache.load(config.cache_dir, job.sha256, source.path)
            if not isinstance(loaded, Converted):  # the entry vanished under us: try again later
                results[index] = refusal("conversion_failed", "the converted copy could not be read back "
                                         "from the cache", "nothing for now: the service will try again",
                                         transient=True)
                continue
            results[index] = _apply_limits(loaded, limits.max_pages)
        if not isinstance(outcome, RefusedFile):
            log("convert.done", doc=short_hash(job.sha256), kind=outcome.get("kind"),
                pages=outcome.get("pages"), seconds=outcome.get("seconds"))

    def give_one() -> bool:
        """Hand one known result to on_result; True while more are waiting."""
        if on_result is None:
            announce.clear()
            return False
        if announce:
            index = announce.popleft()
            on_result(index, results[index])
        return bool(announce)

    if jobs:
        outcomes = _run_jobs(jobs, max(1, limits.workers), on_outcome=settle, on_idle=give_one)
        for job in jobs:
            if job.sha256 not in settled:
                settle(job, outcomes[job.sha256])
    while give_one():
        pass
    return [r for r in results if r is not None]


def sniff(path: Path, suffix: str = "", *, max_unpacked_bytes: int = 1 << 31) -> str:
    """The kind of file at `path`, told by its content (the name's suffix only breaks ties).

    Returns one of KINDS or raises RefusedFile (encrypted, macros, unsupported, corrupt, too_large)
    when the container itself already says the file cannot be used.
    """
    path = Path(path)
    suffix = (suffix or path.suffix).lower()
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if not head:
        raise refusal("empty")
    if head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024] and suffix not in TEXT_SUFFIXES):
        return PDF  # junk before the header is common (mail gateways, scanners); viewers accept it
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(path, suffix, max_unpacked_bytes)
    if head.startswith(CFB_MAGIC):
        return _sniff_cfb(path)
    for signature, what in FOREIGN_SIGNATURES:
        if head.startswith(signature) and suffix not in TEXT_SUFFIXES:
            raise refusal("unsupported", f"the file is {what}, which is not an accepted kind of file "
                                         f"(accepted: {ACCEPTED})")
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        raise refusal("unsupported", f"the file is a HEIC/AVIF photo, which is not accepted (accepted: {ACCEPTED})",
                      "save or export it as JPEG or PDF and drop that in")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        raise refusal("unsupported", f"the file is a WebP image, which is not accepted (accepted: {ACCEPTED})",
                      "save or export it as JPEG, PNG or PDF and drop that in")
    if suffix in TEXT_SUFFIXES:
        return TEXT
    if suffix == ".pdf":
        return PDF  # no header in the first KiB: let the PDF reader try, it refuses damaged files
    if suffix in SUFFIX_KINDS:
        raise refusal("corrupt", f"the file is named like a {KIND_NAMES[SUFFIX_KINDS[suffix]]} file, but its "
                                 "content is not one: it is damaged or incomplete")
    raise refusal("unsupported")


# --------------------------------------------------------------------------------------------
# Parent side: hashing, limits, scheduling worker processes


@dataclass(frozen=True)
class _Job:
    """What a worker needs; only plain values, so it pickles cheaply."""

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


_HASH_MEMO: dict[tuple, str] = {}  # (path, size, mtime, inode, ctime) -> sha256, for long-running services
_HASH_MEMO_MAX = 20000


def _check_and_hash(source: SourceFile, max_file_bytes: int) -> str:
    try:
        stat = os.stat(source.path)
    except OSError as exc:
        raise refusal("conversion_failed", "the file could not be read (it was moved, deleted or locked "
                                           "while the service was reading it)",
                      "nothing for now: the service will try again", transient=True) from exc
    if stat.st_size == 0:
        raise refusal("empty")
    if stat.st_size > max_file_bytes:
        raise refusal("too_large", f"the file is {_megabytes(stat.st_size)} MB, larger than the "
                                   f"{_megabytes(max_file_bytes)} MB limit for one file")
    key = (str(source.path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    sha256 = _HASH_MEMO.get(key)
    if sha256 is None:
        try:
            sha256 = _hash_path(Path(source.path))
        except OSError as exc:
            raise refusal("conversion_failed", "the file could not be read (it was moved, deleted or locked "
                                               "while the service was reading it)",
                          "nothing for now: the service will try again", transient=True) from exc
        if len(_HASH_MEMO) >= _HASH_MEMO_MAX:
            _HASH_MEMO.clear()
        _HASH_MEMO[key] = sha256
    return sha256


def _hash_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def _apply_limits(converted: Converted | RefusedFile, max_pages: int) -> Converted | RefusedFile:
    if isinstance(converted, Converted) and converted.pages > max_pages:
        return _too_many_pages(converted.pages, max_pages)
    return converted


def _too_many_pages(pages: int | None, max_pages: int) -> RefusedFile:
    count = f"{pages} pages" if pages is not None else f"more than {max_pages} pages"
    return refusal("too_many_pages", f"the document has {count}; the limit for one document is {max_pages} pages")


def _guess_is_office(path: Path) -> bool:
    """Whether a file will go to LibreOffice (it then gets the longer conversion time limit)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return False
    return head.startswith((b"PK\x03\x04", b"{\\rtf")) or head == CFB_MAGIC


def _make_job(source: SourceFile, sha256: str, config: Config) -> _Job:
    limits = config.limits
    path = Path(source.path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        head = b""
    if b"%PDF-" in head:
        timeout = limits.pdf_open_timeout_seconds
    elif _guess_is_office(path):
        timeout = limits.conversion_timeout_seconds + limits.pdf_open_timeout_seconds
    else:  # images and text: decoding a large scan can take a while
        timeout = max(limits.conversion_timeout_seconds, limits.pdf_open_timeout_seconds)
    work_root = Path(config.work_dir) / "convert"  # scratch copies stay inside the private state folder
    return _Job(sha256=sha256, path=str(path), suffix=source.suffix, cache_dir=str(config.cache_dir),
                work_root=str(work_root), work_dir="",  # named when the job starts
                max_pages=limits.max_pages,
                max_file_bytes=limits.max_file_bytes, timeout=float(timeout),
                pdf_timeout=float(limits.pdf_open_timeout_seconds))


def worker_command(module: str = "packet.intake.convert") -> tuple[list[str], dict[str, str]]:
    """A fresh interpreter running `module` as a worker: no fork of a threaded service, no shared
    state (also the render worker's, packet.workers.render)."""
    env = dict(os.environ)
    project_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONWARNINGS"] = "ignore"
    return [sys.executable, "-m", module, "--worker"], env


def stop_worker_process(process: subprocess.Popen, *, kill: bool) -> None:
    """End a worker: close its input (it exits when idle) or kill its whole process group (also
    anything it started that is still running, such as LibreOffice)."""
    with contextlib.suppress(OSError, ValueError):
        process.stdin.close()
    if not kill:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    _kill_group(process)


# A worker takes job after job; it retires (and a fresh one takes its place) after this many jobs
# or once its peak memory passes this many MiB, so one huge file does not pin memory for the rest.
WORKER_MAX_JOBS = 200
WORKER_MAX_RSS_MIB = 400
# Idle workers stay for the next build (a running service then starts no interpreter for the file
# or two a case usually gains) while their memory now is below WORKER_KEEP_RSS_MIB; at most
# POOL_SIZE of them, since each holds ~45 MiB while the build that follows merges the packet.
WORKER_KEEP_RSS_MIB = 150
POOL_SIZE = 1

_pool: list[tuple[str, "_Worker"]] = []  # idle workers kept between runs: (environment fingerprint, worker)
_pool_lock = threading.Lock()


def _environment_key(command: list[str], env: dict[str, str]) -> str:
    """Workers inherit PATH and the rest at start: one started under another environment (a
    test's fake soffice, a changed PATH) is not reused."""
    return hashlib.sha256(json.dumps([command, sorted(env.items())]).encode("utf-8")).hexdigest()


def _take_pooled(key: str) -> "_Worker | None":
    with _pool_lock:
        while _pool:
            pooled_key, worker = _pool.pop()
            if pooled_key == key and worker.process.poll() is None:
                return worker
            worker.stop(kill=True)
    return None


def _return_to_pool(key: str, worker: "_Worker", limit: int) -> bool:
    with _pool_lock:
        if (worker.process.poll() is None and worker.rss_mib < WORKER_KEEP_RSS_MIB
                and len(_pool) < min(limit, POOL_SIZE)):
            _pool.append((key, worker))
            return True
    return False


def prestart(config: Config) -> None:
    """Start the pool's conversion workers now and wait until each has imported its libraries (a
    service does this once; the benchmark before its clock starts). Never fails."""
    command, env = worker_command()
    key = _environment_key(command, env)
    with _pool_lock:
        missing = min(max(1, config.limits.workers), POOL_SIZE) - len(_pool)
    started = []
    for _ in range(max(0, missing)):
        with contextlib.suppress(OSError):
            started.append(_Worker(command, env))
    for worker in started:
        if not (worker.ping() and _return_to_pool(key, worker, max(1, config.limits.workers))):
            worker.stop(kill=True)


def shutdown_pool() -> None:
    """Stop the idle workers (each also ends by itself when this process's end of its pipe closes)."""
    with _pool_lock:
        workers = [worker for _, worker in _pool]
        _pool.clear()
    for worker in workers:
        worker.stop(kill=False)


atexit.register(shutdown_pool)


class _Worker:
    """One long-lived worker process (parent side): its pipes, and the job it is doing now."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        self.pipe = self.process.stdout
        self.buffer = b""
        self.job: _Job | None = None
        self.deadline = 0.0
        self.started = 0.0
        self.rss_mib = 0.0  # its memory after the last job, as it reported

    def ping(self, timeout: float = 60.0) -> bool:
        """Wait until the worker answers (it has started and imported what it needs)."""
        try:
            self.process.stdin.write(b'{"ping": true}\n')
            self.process.stdin.flush()
        except (OSError, ValueError):
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not wait_for_ready([self.pipe], timeout=max(0.0, deadline - time.monotonic())):
                break
            alive, reply = self.read_reply()
            if not alive:
                return False
            if reply is not None:
                return reply.get("status") == "ready"
        return False

    def send(self, job: _Job) -> bool:
        """Hand over a job (one JSON line on standard input: never on the command line)."""
        self.job, self.buffer = job, b""
        self.started = time.monotonic()
        self.deadline = self.started + job.timeout
        try:
            self.process.stdin.write(json.dumps(asdict(job)).encode("utf-8") + b"\n")
            self.process.stdin.flush()
            return True
        except (OSError, ValueError):
            return False  # the worker is gone; the caller replaces it

    def read_reply(self) -> tuple[bool, dict | None]:
        """After the pipe is readable: (still alive, the reply if a whole line has arrived)."""
        try:
            data = os.read(self.pipe.fileno(), 65536)
        except OSError:
            data = b""
        if not data:
            return False, None
        self.buffer += data
        if b"\n" not in self.buffer:
            return True, None
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            reply = json.loads(line.decode("utf-8"))
        except ValueError:
            return False, None
        return True, reply if isinstance(reply, dict) else None

    def stop(self, *, kill: bool) -> None:
        """End the worker (see stop_worker_process) and close its pipe."""
        stop_worker_process(self.process, kill=kill)
        with contextlib.suppress(OSError):
            self.pipe.close()


def _run_jobs(jobs: list[_Job], workers: int, *,
              on_outcome: Callable[[_Job, dict | RefusedFile], None] | None = None,
              on_idle: Callable[[], bool] | None = None) -> dict[str, dict | RefusedFile]:
    """Run the jobs on at most `workers` long-lived worker processes, each job with a deadline.

    A worker takes one job at a time on standard input (file paths never appear in the process
    list), converts it and answers with one line; then it takes the next job. Each worker leads its
    own process group: a job past its deadline gets its worker killed together with any LibreOffice
    it started, the file is refused as "timeout" (transient), and a fresh worker takes the next job.
    `on_outcome(job, outcome)` is called as each job ends; `on_idle()` while workers are busy (a
    small piece of the caller's own work; it returns True when it has more, so the wait is short).
    """
    command, env = worker_command()
    pool_key = _environment_key(command, env)
    # Longest first (LibreOffice, then big files), so one slow file does not finish last alone.
    pending = sorted(jobs, key=lambda job: (-job.timeout, -_size_or_zero(job.path)))
    idle: list[_Worker] = []
    busy: dict = {}  # stdout pipe of a worker -> the worker
    outcomes: dict[str, dict | RefusedFile] = {}

    # One private folder for this run; a job's scratch folder inside it is only named here and
    # made by the worker if the job needs one (LibreOffice, qpdf): most PDFs need none.
    run_dir: Path | None = None
    serial = 0

    def finish(worker: _Worker, outcome: dict | RefusedFile, now: float) -> None:
        job = worker.job
        worker.job = None
        if os.path.isdir(job.work_dir):
            shutil.rmtree(job.work_dir, ignore_errors=True)
        if isinstance(outcome, dict):
            outcome["seconds"] = round(now - worker.started, 2)
        outcomes[job.sha256] = outcome
        if on_outcome is not None:
            on_outcome(job, outcome)

    try:
        while pending or busy:
            while pending and len(busy) < workers:
                job = pending.pop(0)
                if run_dir is None:
                    run_dir = Path(tempfile.mkdtemp(prefix="convert-", dir=ensure_dir(Path(job.work_root))))
                serial += 1
                job = replace(job, work_dir=str(run_dir / f"job-{serial}"))
                worker = idle.pop() if idle else (_take_pooled(pool_key) or _Worker(command, env))
                if not worker.send(job):  # an idle worker died meanwhile: one fresh try
                    worker.stop(kill=True)
                    worker = _Worker(command, env)
                    worker.send(job)  # if this fails too, its end of file reads as "stopped unexpectedly"
                busy[worker.pipe] = worker
            more = on_idle() if on_idle is not None else False
            nearest = min(worker.deadline for worker in busy.values())
            ready = set(wait_for_ready(list(busy), timeout=0.0 if more else max(0.0, nearest - time.monotonic())))
            now = time.monotonic()
            for pipe in list(busy):
                worker = busy[pipe]
                if pipe in ready:
                    alive, reply = worker.read_reply()
                    if alive and reply is None:
                        continue  # part of a line: the rest follows
                    del busy[pipe]
                    outcome = _outcome_from_reply(reply)
                    if outcome is None:
                        log("convert.worker_died", doc=short_hash(worker.job.sha256),
                            exitcode=worker.process.poll(), level="error")
                        outcome = refusal("conversion_failed", "the conversion stopped unexpectedly",
                                          "nothing for now: the service will try again; if this keeps "
                                          "happening, save the file as a PDF and drop that in", transient=True)
                    if alive and not (reply or {}).get("retire"):
                        worker.rss_mib = float((reply or {}).get("rss_mib") or 0.0)
                        idle.append(worker)
                    else:
                        worker.stop(kill=not alive)
                    finish(worker, outcome, now)  # last: on_outcome may raise, the worker is accounted for
                elif now >= worker.deadline:
                    del busy[pipe]
                    worker.stop(kill=True)
                    finish(worker, refusal("timeout", f"reading the file took longer than the "
                                                      f"{worker.job.timeout:g}-second limit", transient=True), now)
    finally:  # an interrupt must not leave workers or LibreOffice behind
        for worker in busy.values():
            worker.stop(kill=True)
            shutil.rmtree(worker.job.work_dir, ignore_errors=True)
        for worker in idle:  # kept for the next run when small, else ended
            if not _return_to_pool(pool_key, worker, workers):
                worker.stop(kill=False)
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
    return outcomes


def _size_or_zero(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _outcome_from_reply(message: dict | None) -> dict | RefusedFile | None:
    if not isinstance(message, dict):
        return None
    if message.get("status") == "ok":
        return message
    try:
        return RefusedFile(str(message["reason"]), str(message["message"]), str(message["what_to_do"]),
                           transient=bool(message.get("transient")))
    except KeyError:
        return None


def _kill_group(process: subprocess.Popen) -> None:
    """Kill a worker and everything it started (LibreOffice runs in the worker's process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# Worker side


def _worker_main() -> int:
    """Entry point of a worker process (`python -m packet.intake.convert --worker`).

    Jobs arrive one JSON line at a time on standard input; each outcome goes back as one JSON line
    on the original standard output, which nothing else may write to (it is moved aside, and fd 1
    then points to /dev/null, so a stray print from a library cannot garble a reply). The worker
    exits at the end of its input, or after answering when it should retire (see WORKER_MAX_JOBS).
    """
    import resource

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # pypdf/img2pdf warnings may quote document text; never log them
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = sys.stderr
    done = 0
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        request = json.loads(line.decode("utf-8"))
        if request == {"ping": True}:  # the service warms its workers up: load what most files need
            import pypdf  # noqa: F401
            replies.write(b'{"status": "ready"}\n')
            continue
        message = _worker_outcome(_Job(**request))
        done += 1
        peak_mib = _peak_rss_mib(resource)
        retire = done >= WORKER_MAX_JOBS or peak_mib > WORKER_MAX_RSS_MIB
        message["retire"] = retire
        message["rss_mib"] = _current_rss_mib()
        replies.write(json.dumps(message).encode("utf-8") + b"\n")
        if retire:
            break
    return 0


def status_mib(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status, in MiB ("VmHWM": its peak, "VmRSS":
    now), or None where there is no such file. Linux carries getrusage's ru_maxrss across fork and
    exec, so a worker started by a large process would seem large from birth; these belong to the
    process's own address space."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_mib(resource) -> float:
    """This worker's own peak memory (see status_mib)."""
    peak = status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    """This worker's memory now, which decides whether it may wait for the next build."""
    now = status_mib("VmRSS")
    return now if now is not None else float(WORKER_KEEP_RSS_MIB)  # unknown: do not keep it


def _worker_outcome(job: _Job) -> dict:
    """The outcome of one job as a plain dict (never raises: every failure is a refusal)."""
    work_dir = Path(job.work_dir)
    try:
        return _convert_job(job, work_dir)
    except RefusedFile as refused:
        return {"status": "refused", "reason": refused.reason, "message": refused.message,
                "what_to_do": refused.what_to_do, "transient": refused.transient}
    except OSError:  # the file vanished or got locked, or the cache could not be written: try again later
        refused = refusal("conversion_failed", "the file could not be read or its conversion could not be "
                                               "saved", "nothing for now: the service will try again",
                          transient=True)
    except MemoryError:
        refused = refusal("too_large", "the file needs more memory to read than the service has",
                          transient=True)
    except Exception:  # noqa: BLE001 - an unforeseen failure is a refusal, never a crash
        refused = refusal("conversion_failed", "the file could not be converted (unexpected problem)")
    return {"status": "refused", "reason": refused.reason, "message": refused.message,
            "what_to_do": refused.what_to_do, "transient": refused.transient}


def _convert_job(job: _Job, work_dir: Path) -> dict:
    path = Path(job.path)
    before = _fingerprint(path)
    if _hash_path(path) != job.sha256:
        raise _changed_while_reading()
    kind = sniff(path, job.suffix, max_unpacked_bytes=max(job.max_file_bytes * 10, 1 << 30))
    if kind == PDF:
        texts, title, pdf_bytes = _convert_pdf(path, job, work_dir)
    elif kind in LIBREOFFICE_KINDS:
        texts, title, pdf_bytes = _convert_office(path, kind, job, work_dir)
    elif kind in IMAGE_KINDS:
        texts, title, pdf_bytes = _convert_image(path, job)
    else:
        texts, title, pdf_bytes = _convert_text(path, job)
    if _fingerprint(path) != before:  # the cache must describe exactly the bytes that were hashed
        raise _changed_while_reading()
    cache.store_converted(Path(job.cache_dir), job.sha256, kind=kind, page_texts=texts, title=title,
                          pdf_bytes=pdf_bytes)
    return {"status": "ok", "kind": kind, "pages": len(texts)}


def _fingerprint(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _changed_while_reading() -> RefusedFile:
    return refusal("corrupt", "the file changed while it was being read (it may still have been copying)",
                   "nothing for now: the service will try again once the file stops changing", transient=True)


# --- containers (ZIP: DOCX / ODT; OLE compound files: DOC, encrypted OOXML) ---------------------


def _sniff_zip(path: Path, suffix: str, max_unpacked_bytes: int) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            return _inspect_zip(archive, suffix, max_unpacked_bytes)
    except RefusedFile:
        raise
    except RuntimeError as exc:  # zipfile: a member is encrypted and needs a password
        raise refusal("encrypted") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, NotImplementedError,
            struct.error) as exc:
        raise refusal("corrupt", "the file is damaged or incomplete (its internal archive cannot be "
                                 "read)") from exc


def _inspect_zip(archive: zipfile.ZipFile, suffix: str, max_unpacked_bytes: int) -> str:
    infos = archive.infolist()
    names = {info.filename.lower(): info for info in infos}
    if sum(info.file_size for info in infos) > max_unpacked_bytes:
        raise refusal("too_large", "the file unpacks to far more data than a document holds")
    content_types = _read_member(archive, names.get("[content_types].xml"), 1 << 20)
    if (suffix in MACRO_SUFFIXES or any(name.endswith("vbaproject.bin") for name in names)
            or b"macroenabled" in content_types.lower()):
        raise refusal("macros")
    mimetype = _read_member(archive, names.get("mimetype"), 200).strip()
    if mimetype.startswith(b"application/vnd.oasis.opendocument.text"):
        manifest = _read_member(archive, names.get("meta-inf/manifest.xml"), 4 << 20)
        if b"encryption-data" in manifest:
            raise refusal("encrypted")
        if any((name.startswith("basic/") and name.endswith(".xml")
                and not name.endswith(("script-lc.xml", "script-lb.xml", "dialog-lc.xml", "dialog-lb.xml")))
               or (name.startswith("scripts/") and not name.endswith("/")) for name in names):
            raise refusal("macros")
        kind = "odt"
    elif "word/document.xml" in names or b"wordprocessingml" in content_types:
        kind = "docx"
    elif mimetype.startswith(b"application/vnd.oasis.opendocument"):
        raise refusal("unsupported", "the file is an OpenDocument spreadsheet, presentation or drawing, "
                                     f"not a text document (accepted: {ACCEPTED})")
    elif b"spreadsheetml" in content_types or b"presentationml" in content_types:
        raise refusal("unsupported", "the file is an Excel or PowerPoint file, not a Word document "
                                     f"(accepted: {ACCEPTED})")
    else:
        raise refusal("unsupported", f"the file is a ZIP archive, not a document (accepted: {ACCEPTED})",
                      "unpack it and drop the documents inside it in one by one")
    # Word and OpenDocument never use a DTD; one here means a crafted file (XML external entities
    # can make a reader fetch URLs or local files). Such files are never handed to LibreOffice.
    for info in infos[:2000]:
        if info.filename.lower().endswith((".xml", ".rels")):
            head = _read_member(archive, info, 8192)
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                raise refusal("unsupported", "the file contains unusual internal markup (an external "
                                             "entity reference) that the service does not open, for safety",
                              "open it in Word, save it as a new .docx or as a PDF, and drop that in")
    return kind


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None, limit: int) -> bytes:
    if info is None:
        return b""
    with archive.open(info) as handle:
        return handle.read(limit)


def _cfb_entries(data, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Directory entries of an OLE compound file: name -> (start sector, stream size).

    Directory entries are 128-byte records aligned to 128 bytes in the file (sectors are 512 or
    4096 bytes after a 512-byte header): a UTF-16 name, then its byte length at offset 64.
    """
    found: dict[str, tuple[int, int]] = {}
    for name in names:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        position = data.find(encoded, 512)
        while position != -1:
            if position % 128 == 0 and struct.unpack_from("<H", data, position + 64)[0] == len(encoded):
                start, size = struct.unpack_from("<IQ", data, position + 116)
                found[name] = (start, size)
                break
            position = data.find(encoded, position + 1)
    return found


def _sniff_cfb(path: Path) -> str:
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            entries = _cfb_entries(data, ("EncryptedPackage", "WordDocument", "_VBA_PROJECT", "Macros",
                                          "Workbook", "Book", "PowerPoint Document"))
            if "EncryptedPackage" in entries:
                raise refusal("encrypted")
            if "WordDocument" not in entries:
                what = ("an Excel file" if {"Workbook", "Book"} & set(entries)
                        else "a PowerPoint file" if "PowerPoint Document" in entries
                        else "an older Office file that is not a Word document")
                raise refusal("unsupported", f"the file is {what} (accepted: {ACCEPTED})")
            if "_VBA_PROJECT" in entries or "Macros" in entries:
                raise refusal("macros")
            if _word97_is_encrypted(data, entries["WordDocument"]):
                raise refusal("encrypted")
            return "doc"
    except RefusedFile:
        raise
    except (OSError, ValueError, struct.error) as exc:
        raise refusal("corrupt") from exc


def _word97_is_encrypted(data, entry: tuple[int, int]) -> bool:
    """The FIB's fEncrypted flag at the start of the WordDocument stream ([MS-DOC] 2.5.2)."""
    sector_shift = struct.unpack_from("<H", data, 0x1E)[0]
    mini_cutoff = struct.unpack_from("<I", data, 0x38)[0] or 4096
    start, size = entry
    if size < mini_cutoff or not 7 <= sector_shift <= 16:
        return False  # stored in the mini stream: too small to be a real document; let LibreOffice judge
    offset = (start + 1) << sector_shift
    if offset + 12 > len(data):
        return False
    ident, = struct.unpack_from("<H", data, offset)
    flags, = struct.unpack_from("<H", data, offset + 0x0A)
    return ident == 0xA5EC and bool(flags & 0x0100)


# --- PDF ---------------------------------------------------------------------------------------


def _convert_pdf(path: Path, job: _Job, work_dir: Path) -> tuple[list[str], str | None, bytes | None]:
    """Accept a PDF as is when pypdf reads it; else a decrypted or repaired copy; else refuse."""
    reader, copy_bytes = _open_pdf(path, job, work_dir)
    pages = _page_count(reader)
    if pages > job.max_pages:
        raise _too_many_pages(pages, job.max_pages)
    if copy_bytes is None:
        texts = page_texts(path, reader, pages, job)
    else:  # pdftotext reads the decrypted or repaired copy, which is what later stages use
        work_dir.mkdir(mode=0o700, exist_ok=True)
        copy_path = work_dir / "copy.pdf"
        copy_path.write_bytes(copy_bytes)
        texts = page_texts(copy_path, reader, pages, job)
    return texts, _pdf_title(reader), copy_bytes


def _open_pdf(path: Path, job: _Job, work_dir: Path):
    """(reader, bytes of a copy to cache or None). Refuses encrypted and unreadable PDFs."""
    from pypdf import PdfReader, PdfWriter

    opened_without_password = False
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            if not _decrypts_without_password(reader):
                raise refusal("encrypted")
            opened_without_password = True
        if _page_count(reader) < 1:
            raise ValueError("no pages")
        if not opened_without_password:
            return reader, None
        # Owner-password restrictions only: keep a decrypted copy so later stages can read it freely.
        buffer = io.BytesIO()
        PdfWriter(clone_from=reader).write(buffer)
        copy_bytes = buffer.getvalue()
        return PdfReader(io.BytesIO(copy_bytes), strict=False), copy_bytes
    except RefusedFile:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on broken files
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


def _page_count(reader) -> int:
    return len(reader.pages)


def _mentions_encryption(path: Path) -> bool:
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"/Encrypt") != -1
    except (OSError, ValueError):
        return False


def _repair_with_qpdf(path: Path, job: _Job, work_dir: Path):
    """qpdf rebuilds a damaged cross-reference table; pypdf must then read the copy with pages."""
    from pypdf import PdfReader, PdfWriter

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
        if reader.is_encrypted or _page_count(reader) < 1:
            return None
        # A repaired file must also survive being merged into the packet (some still break pypdf
        # deeper inside, e.g. pdf.js's filled-background.pdf): try the merge the assembler will do.
        PdfWriter().append(reader, import_outline=False)
    except Exception:  # noqa: BLE001
        return None
    return reader, copy_bytes


# pdftotext (poppler, C) reads text about three times faster than pypdf; it gets at most this share
# of the job's time limit, so that pypdf still has time to take over when it fails or hangs.
PDFTOTEXT_SHARE = 0.5


def page_texts(pdf_path: Path, reader, pages: int, job: _Job) -> list[str]:
    """The text of each page: pdftotext's when it answers for exactly `pages` pages, else pypdf's."""
    texts = pdftotext_pages(pdf_path, pages, timeout=max(1.0, job.timeout * PDFTOTEXT_SHARE))
    return texts if texts is not None else _extract_texts(reader, pages)


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
        except Exception:  # noqa: BLE001 - broken content streams raise anything
            text = ""
        texts.append(text)
    return texts


_FILENAME_TITLE = re.compile(r"\.(pdf|docx?|docm|rtf|odt|txt|tiff?|jpe?g|png|xlsx?|html?)$", re.IGNORECASE)
_JUNK_TITLES = {"untitled", "document", "title", "no title", "pdf", "word document", "microsoft word",
                "blank", "new document", "document1", "doc1", "input", "scan", "scanned document"}


def _pdf_title(reader) -> str | None:
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


# --- LibreOffice -------------------------------------------------------------------------------

# A fresh profile per conversion, seeded so that no macro can run and no linked content is fetched.
_PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" \
oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" \
oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks" \
oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="UseLocking" oor:op="fuse">\
<value>false</value></prop></item>
</oor:items>
"""


def soffice_command() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _convert_office(path: Path, kind: str, job: _Job, work_dir: Path) -> tuple[list[str], str | None, bytes]:
    from pypdf import PdfReader

    soffice = soffice_command()
    if soffice is None:
        raise refusal("conversion_failed", "LibreOffice is not installed, so Word, RTF and ODT files cannot be "
                                           "converted", "ask the administrator to install LibreOffice; the "
                                           "service will try again", transient=True)
    work_dir.mkdir(mode=0o700, exist_ok=True)
    source = work_dir / f"document.{kind}"  # a plain name: the clerk's file name never reaches LibreOffice
    shutil.copyfile(path, source)
    produced = work_dir / "out" / "document.pdf"
    for attempt in (1, 2):  # a first start of a fresh profile occasionally fails; try once more
        profile = work_dir / f"profile-{attempt}"
        (profile / "user").mkdir(parents=True, exist_ok=True)
        (profile / "user" / "registrymodifications.xcu").write_text(_PROFILE_SETTINGS, encoding="utf-8")
        home = work_dir / "home"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("UNO_", "URE_"))}
        env.update(HOME=str(home), TMPDIR=str(home / "tmp"), SAL_USE_VCLPLUGIN="svp", LC_ALL="C.UTF-8")
        # No timeout here: the parent's deadline kills this whole process group, LibreOffice included.
        subprocess.run([soffice, "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
                        f"-env:UserInstallation={profile.as_uri()}", "--convert-to", "pdf",
                        "--outdir", str(produced.parent), str(source)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=str(work_dir), env=env, check=False)
        if produced.is_file() and produced.stat().st_size > 0:
            break
    else:
        raise refusal("conversion_failed", f"LibreOffice could not turn the {KIND_NAMES[kind]} file into a PDF "
                                           "(it may be damaged, or use features LibreOffice cannot read)")
    pdf_bytes = produced.read_bytes()
    try:
        reader = PdfReader(io.BytesIO(pdf_bytes), strict=False)
        pages = _page_count(reader)
    except Exception as exc:  # noqa: BLE001
        raise refusal("conversion_failed") from exc
    if pages < 1:
        raise refusal("conversion_failed", f"LibreOffice produced no pages from the {KIND_NAMES[kind]} file")
    if pages > job.max_pages:
        raise _too_many_pages(pages, job.max_pages)
    return page_texts(produced, reader, pages, job), _pdf_title(reader), pdf_bytes


# --- images ------------------------------------------------------------------------------------


def _image_dpi(frame) -> tuple[float, float] | None:
    """The resolution a frame declares, or None when it is missing or cannot be right."""
    dpi = frame.info.get("dpi")
    try:
        x_dpi, y_dpi = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None
    if not (10.0 <= x_dpi <= 10000.0 and 10.0 <= y_dpi <= 10000.0):
        return None
    width_in, height_in = frame.size[0] / x_dpi, frame.size[1] / y_dpi
    if x_dpi in SCREEN_DPIS and y_dpi in SCREEN_DPIS and (max(width_in, height_in) > 22 or min(width_in, height_in) > 17):
        return None  # a camera photo "at 72 dpi" would be a poster: the number is not a real resolution
    return x_dpi, y_dpi


def page_size_points(width_px: int, height_px: int, dpi: tuple[float, float] | None) -> tuple[float, float]:
    """The physical page size of an image: from its resolution, else 200 dpi fitted within letter paper."""
    if dpi is None:
        width_in, height_in = width_px / DEFAULT_DPI, height_px / DEFAULT_DPI
        short_side, long_side = sorted(LETTER_INCHES)
        box = (short_side, long_side) if width_in <= height_in else (long_side, short_side)
        scale = min(1.0, box[0] / width_in, box[1] / height_in)
    else:
        width_in, height_in = width_px / dpi[0], height_px / dpi[1]
        scale = min(1.0, MAX_PAGE_INCHES / width_in, MAX_PAGE_INCHES / height_in)
    return width_in * scale * 72.0, height_in * scale * 72.0


def _convert_image(path: Path, job: _Job) -> tuple[list[str], None, bytes]:
    import img2pdf
    from PIL import Image, ImageOps, ImageSequence

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    sizes: list[tuple[float, float]] = []
    try:
        with Image.open(path) as image:
            for number, frame in enumerate(ImageSequence.Iterator(image)):
                if number >= job.max_pages:
                    raise _too_many_pages(None, job.max_pages)
                frame.load()  # decode now: a truncated scan must be refused, not passed through
                sizes.append(page_size_points(frame.size[0], frame.size[1], _image_dpi(frame)))
    except RefusedFile:
        raise
    except Image.DecompressionBombError as exc:
        raise refusal("too_large", "the image has far more pixels than a scanned page") from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ...
        raise refusal("corrupt", "the image is damaged or incomplete and cannot be read") from exc
    if not sizes:
        raise refusal("corrupt", "the image file holds no pictures")

    def layout(sizes_in_order):
        remaining = list(sizes_in_order)

        def layout_fun(width_px, height_px, ndpi):
            width_pt, height_pt = remaining.pop(0) if remaining else page_size_points(width_px, height_px, None)
            return width_pt, height_pt, width_pt, height_pt
        return layout_fun

    try:  # img2pdf embeds JPEG and CCITT G4 data as they are (no quality loss), one page per frame
        pdf_bytes = img2pdf.convert(str(path), layout_fun=layout(sizes), nodate=True,
                                    rotation=img2pdf.Rotation.ifvalid)
    except Exception:  # noqa: BLE001 - modes img2pdf refuses: re-encode each frame losslessly with Pillow
        pngs, fallback_sizes = [], []
        with Image.open(path) as image:
            for frame in ImageSequence.Iterator(image):
                dpi = _image_dpi(frame)
                upright = ImageOps.exif_transpose(frame.copy())
                if upright.size != frame.size and dpi is not None:
                    dpi = (dpi[1], dpi[0])
                pngs.append(_png_bytes(_flatten(upright)))
                fallback_sizes.append(page_size_points(upright.size[0], upright.size[1], dpi))
        try:
            pdf_bytes = img2pdf.convert(pngs, layout_fun=layout(fallback_sizes), nodate=True)
        except Exception as exc:  # noqa: BLE001
            raise refusal("conversion_failed", "the image could not be turned into a PDF page") from exc
    return [""] * len(sizes), None, pdf_bytes


def _flatten(image):
    """An image img2pdf takes: no alpha (composited on white), 1-bit, grey or RGB."""
    from PIL import Image

    if image.mode in ("1", "L", "RGB"):
        return image
    if image.mode == "P" and "transparency" not in image.info:
        return image.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image.convert("L")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- plain text --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\u0080-\u009f]")


def decode_text(data: bytes) -> str:
    """The text of a plain-text file, whatever its encoding (BOM, UTF-8, else charset-normalizer)."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                          (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise refusal("unsupported", "the file is named as plain text but does not contain readable text",
                      "open it in the program that made it, save it as a PDF and drop that in")
    best = matches[0]
    # Western European text fits several 8-bit code pages equally well; a US plan's files are far
    # more often Windows-1252 (or Latin-1) than Central European, so prefer it when it fits as well.
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.01 \
                and match.coherence >= best.coherence - 0.05:
            return str(match)
    if best.coherence < 0.1:  # no language evidence at all (short text): take the common code page
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("cp1252")
    return str(best)


def normalise_text(text: str) -> str:
    """Line endings to \\n, tabs to spaces, control characters removed (form feeds kept: new page)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _CONTROL.sub("", text)
    return "\n".join(line.expandtabs(8) for line in text.split("\n"))


def _char_columns(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def wrap_text(text: str, columns: int, lines_per_page: int, max_pages: int) -> list[list[str]]:
    """Lay text out in pages of lines: long lines wrap at a space where possible; \\f starts a page."""
    pages: list[list[str]] = [[]]
    for block_number, block in enumerate(text.split("\f")):
        if block_number and pages[-1]:
            pages.append([])
        lines = block.split("\n")
        if block.endswith("\n"):
            lines.pop()
        for line in lines:
            for piece in _wrap_line(line.rstrip(), columns):
                if len(pages[-1]) >= lines_per_page:
                    if len(pages) >= max_pages:
                        raise _too_many_pages(None, max_pages)
                    pages.append([])
                pages[-1].append(piece)
    while len(pages) > 1 and not any(line.strip() for line in pages[-1]):
        pages.pop()
    return pages


def _wrap_line(line: str, columns: int) -> list[str]:
    pieces = []
    while True:
        width, cut = 0, len(line)
        for position, ch in enumerate(line):
            width += _char_columns(ch)
            if width > columns:
                cut = position
                break
        if cut >= len(line):
            pieces.append(line)
            return pieces
        space = line.rfind(" ", 0, cut + 1)
        if space > cut // 2:
            pieces.append(line[:space].rstrip())
            line = line[space + 1:]
        else:
            pieces.append(line[:cut])
            line = line[cut:]


def _text_font() -> tuple[str, float]:
    """A monospace font with wide Unicode coverage (DejaVu Sans Mono), else the built-in Courier."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for candidate in TEXT_FONT_FILES:
        if os.path.isfile(candidate):
            try:
                if "IMRTextMono" not in pdfmetrics.getRegisteredFontNames():
                    pdfmetrics.registerFont(TTFont("IMRTextMono", candidate))
                return "IMRTextMono", pdfmetrics.stringWidth("M", "IMRTextMono", TEXT_FONT_SIZE)
            except Exception:  # noqa: BLE001 - a broken font file: fall back to Courier
                continue
    return "Courier", pdfmetrics.stringWidth("M", "Courier", TEXT_FONT_SIZE)


def render_text_pdf(pages: list[list[str]]) -> bytes:
    """Letter pages, one-inch margins, monospace; byte-identical for the same text."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    font, _ = _text_font()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=letter, invariant=1, pageCompression=1)
    pdf.setTitle("")
    for lines in pages:
        y = letter[1] - TEXT_MARGIN - TEXT_FONT_SIZE
        text = pdf.beginText(TEXT_MARGIN, y)
        text.setFont(font, TEXT_FONT_SIZE, TEXT_LEADING)
        for line in lines:
            text.textLine(line if font != "Courier" else line.encode("latin-1", "replace").decode("latin-1"))
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _convert_text(path: Path, job: _Job) -> tuple[list[str], None, bytes]:
    from reportlab.lib.pagesizes import letter

    text = normalise_text(decode_text(path.read_bytes()))
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        raise refusal("empty", "the text file holds only blank space")
    _, char_width = _text_font()
    columns = max(20, int((letter[0] - 2 * TEXT_MARGIN) // char_width))
    lines_per_page = max(10, int((letter[1] - 2 * TEXT_MARGIN) // TEXT_LEADING))
    pages = wrap_text(text, columns, lines_per_page, job.max_pages)
    return ["\n".join(lines) for lines in pages], None, render_text_pdf(pages)


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    sys.exit(_worker_main())
