"""Reading pages that have no text layer: Tesseract, English and Spanish, upright and straight.

Owns: the OCR engine (Tesseract, automatic layout `--psm 3`, hOCR output, run by
packet.intake.tesseract: each process reads a batch of pages from a list file, so its language models
load once per batch, with the page and file time limits kept page by page), automatic page rotation
(a page whose text lines run up or down the page, found by the projection profile that also
measures the tilt, is turned as Tesseract's orientation detection, `--psm 0 -l osd`, says before it is
read; a page read with a mean word confidence under ROTATION_DOUBT is read again turned half a turn,
with the other doubtful pages of its batch, and the better reading wins; one still doubtful both ways
is asked of orientation detection after all and read turned a quarter turn when it says so; lines
Tesseract itself reports turned, hOCR `textangle`, turn the page too), deskew
and despeckling (packet.intake.pageimage, before Tesseract reads the page: Tesseract loses whole
pages of a low-resolution fax tilted 3 degrees clockwise), the invisible text layer (a one-page PDF
of render-mode-3 text drawn with reportlab over the word boxes, to be laid over the page image), the
page cap, and the cache key (content hash, page, engine version and the settings that change what
a page reads as).
Must not: touch a clerk's file (it reads bytes and writes only in temporary folders and the cache
folder it is given), log or print document text, or decide anything about the text it reads (the
confidence is reported; what it may decide is the classifier's and the identity check's business).

A page comes back as an `OcrPage`. When the page had to be turned or straightened, `image` holds
the corrected page (TIFF G4 for a 1-bit page, PNG otherwise) and `text_layer` fits that image, not
the original; the packet should show `image` in place of the original page. When nothing was
corrected, `image` is None and `text_layer` fits the page as given (same size in points).
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import PIL
import reportlab
from PIL import Image
from pypdf.errors import PyPdfError

from packet.config import Ocr
from packet.errors import OcrError
from packet.intake import tesseract
from packet.intake.pageimage import (TRANSPOSE, despeckled, encode, image_dpi, load_frame, normalise,
                                     save_for_tesseract, speckled, straighten, text_lines)
from packet.intake.hocr import Line, mean_confidence, page_rotation, page_text, parse_hocr_pages, text_layer
from packet.intake.ocrresult import OcrCache, OcrFile, OcrPage
from packet.pdfread import PdfReader

# Bump when the text layer or the reading procedure changes in a way that changes results: it is
# part of the engine version, so cached pages read the old way are read again.
PROCEDURE_VERSION = "2"
ROTATION_DOUBT = 80.0  # mean word confidence under which the orientation is checked: upright 91-96, upside down ~51
RENDER_MAX_PIXELS = 36_000_000  # a PDF page is rendered at pdf_dpi, or coarser to stay under this


# --- the engine and its version ---------------------------------------------------------------------

def engine_version(languages: str) -> str:
    """Tesseract and Leptonica versions, a digest of every trained-data file used (the languages and
    `osd`), and the Pillow and reportlab versions: a Debian update of the models (or another
    TESSDATA_PREFIX) changes the version, also in a running service, so cached text is read again.
    Raises OcrError when Tesseract or a language is missing."""
    # The program found before serves when PATH no longer finds it: pages already read are still
    # found in the cache; reading a new page needs Tesseract on PATH (packet.intake.tesseract).
    program = shutil.which("tesseract") or _FOUND.get("tesseract") or tesseract.program()
    _FOUND["tesseract"] = program
    try:
        stat = os.stat(program)
    except OSError as exc:
        raise OcrError(f"tesseract does not run: {exc}", reason="ocr_missing") from exc
    versions, tessdata = _engine(program, (stat.st_size, stat.st_mtime_ns, stat.st_ino),
                                 os.environ.get("TESSDATA_PREFIX", ""))
    digests = []
    for language in [*languages.split("+"), "osd"]:
        model = tessdata / f"{language}.traineddata" if tessdata else None
        digest = _model_digest(model) if model is not None else None
        if digest is None:
            raise OcrError(f"the Tesseract language {language!r} is not installed "
                           f"(apt-get install tesseract-ocr-{language})", reason="ocr_language_missing")
        digests.append(f"{language}:{digest}")
    # Pillow straightens and cleans the page Tesseract sees; reportlab writes the text layer's bytes.
    return (f"{versions}; {' '.join(digests)}; pillow {PIL.__version__}; reportlab {reportlab.Version}; "
            f"procedure {PROCEDURE_VERSION}")


@functools.lru_cache(maxsize=8)
def _engine(program: str, _program_stat: tuple, _prefix: str) -> tuple[str, Path | None]:
    """(Tesseract's and Leptonica's versions, its language-data folder), asked once per program file
    and TESSDATA_PREFIX."""
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
        listing = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OcrError(f"tesseract does not run: {exc}", reason="ocr_missing") from exc
    lines = (out.stdout or out.stderr).splitlines()
    match = re.search(r'"([^"]+)"', listing.stdout)
    return " ".join(line.strip() for line in lines[:2]), Path(match.group(1)) if match else None


_FOUND: dict[str, str] = {}  # "tesseract" -> the program engine_version last found
_MODEL_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime, inode) -> digest: a changed file is read again


def _model_digest(path: Path) -> str | None:
    try:
        stat = path.stat()
        if not path.is_file():
            return None
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key not in _MODEL_DIGESTS:
            _MODEL_DIGESTS[key] = _file_digest(path)[:16]
    except OSError:
        return None
    return _MODEL_DIGESTS[key]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def settings_fingerprint(settings: Ocr) -> str:
    """The settings that change what a page reads as (time limits and the cap do not)."""
    return (f"lang={settings.languages} rotate={settings.rotate_pages} deskew={settings.deskew}"
            f" max_deskew={settings.max_deskew_degrees} pdf_dpi={int(settings.pdf_dpi)}")


def conversion_key(settings: Ocr | None) -> str:
    """What the reading of a file's pages depended on, for the conversion cache: "off" when OCR is
    off, else a digest of the engine version and the settings that change what a page reads as."""
    if settings is None or not settings.enabled:
        return "off"
    material = "\n".join([engine_version(settings.languages), settings_fingerprint(settings)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def cache_key(content_sha256: str, page_index: int, settings: Ocr) -> str:
    """The key of one page: the file's content hash, the page, the engine version and the settings."""
    material = "\n".join([content_sha256, str(page_index), engine_version(settings.languages),
                          settings_fingerprint(settings)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


# --- one page -------------------------------------------------------------------------------------

def ocr_image(image: Image.Image | bytes, settings: Ocr, *, index: int = 0,
              dpi: tuple[float, float] | None = None, page_size: tuple[float, float] | None = None,
              timeout: float | None = None) -> OcrPage:
    """Read one page image (a PIL image, or the bytes of an image file: its first frame).

    `dpi` overrides the image's own resolution (a fax without one is assumed 204 x 196); `page_size`
    (points) overrides the size the resolution gives, e.g. the media box of an image-only PDF page.
    A page over `timeout` (default: the page time limit) comes back with status "timeout".
    """
    if isinstance(image, (bytes, bytearray)):
        try:
            image = load_frame(Image.open(io.BytesIO(image)))
        except (OSError, ValueError, Image.DecompressionBombError, Warning) as exc:
            return OcrPage(index, "failed", reason=f"the image cannot be decoded ({type(exc).__name__})")
    limit = settings.page_timeout_seconds if timeout is None else min(timeout, settings.page_timeout_seconds)
    # One page: only its own limit applies (the file limit is set well beyond it).
    alone = replace(settings, page_timeout_seconds=limit, file_timeout_seconds=2 * limit + 60.0)
    return ocr_pages([lambda _allowance: (image, dpi, page_size)], alone, jobs=1, indexes=[index],
                     capped=False).pages[0]


def batch_size(queued: int, jobs: int) -> int:
    """How many of the `queued` pages the next Tesseract process reads: smaller batches towards the
    end, so that the processes finish together, but not under MIN_BATCH pages while there are
    enough for every process (each batch loads the language models again, about a quarter of a
    page's reading)."""
    jobs = max(1, jobs)
    size = max(min(MIN_BATCH, math.ceil(queued / jobs)), min(MAX_BATCH, math.ceil(queued / (2 * jobs))))
    return max(0, min(size, queued))


def _better(lines: list[Line] | None, than: list[Line]) -> bool:
    return lines is not None and (mean_confidence(lines) or -1.0) > (mean_confidence(than) or -1.0)


def _doubtful(lines: list[Line]) -> bool:
    confidence = mean_confidence(lines)
    return confidence is None or confidence < ROTATION_DOUBT


# --- whole files ----------------------------------------------------------------------------------

PageLoader = Callable[[float], "tuple[Image.Image, tuple[float, float] | None, tuple[float, float] | None]"]
MAX_BATCH = 12  # pages one Tesseract process reads (its models are loaded once for all of them)
MIN_BATCH = 4  # pages a batch has at least, unless fewer are left than one for each process
_FAILED = object()  # what a page Tesseract gives up on is worth: nothing, it failed


def ocr_pages(loaders: list[PageLoader], settings: Ocr, *, jobs: int = 2, indexes: list[int] | None = None,
              content_sha256: str | list[str] | None = None, cache: OcrCache | None = None,
              capped: bool = True, scratch: Path | None = None) -> OcrFile:
    """Read pages with `jobs` Tesseract processes side by side, within the time limits and the cap.

    Each loader is called with its time allowance and returns (image, dpi or None, page size or None).
    `indexes` are the pages' numbers in their file (default 0, 1, ...). Pages past
    `settings.max_pages` (when `capped`) and pages left when the file time limit runs out come back
    "skipped" with the reason; a page over the page time limit (its preparation and its readings
    together) "timeout". With a cache and the content hash of the file (one for all pages, or one
    per page when the pages come from several files), a page is never read twice.

    Each Tesseract process reads a batch of pages from a list file (its language models loaded
    once per batch, not once per page). Orientation detection costs about as much as reading a
    page, so it is asked only of the pages lying on their side, before they are read; a page read
    with low confidence (upside down, nearly always) is read again turned half a turn, with the other
    doubtful pages of its batch, and the better reading is kept.

    The page images and Tesseract's files live in a folder made in `scratch` (default: the system's
    temporary folder) and removed at the end. They are the pages themselves: the conversion gives
    its job's folder inside the private state folder, which the service removes even after a
    killed worker.
    """
    engine = engine_version(settings.languages)
    indexes = list(range(len(loaders))) if indexes is None else list(indexes)
    digests = content_sha256 if isinstance(content_sha256, list) else [content_sha256] * len(loaders)
    results: list[OcrPage | None] = [None] * len(loaders)
    keys: list[str | None] = [None] * len(loaders)
    to_read: list[int] = []
    for position, index in enumerate(indexes):
        if capped and position >= settings.max_pages:
            results[position] = OcrPage(index, "skipped", reason=f"past the page cap ({settings.max_pages} pages "
                                        "per file)", engine=engine)
            continue
        if cache is not None and digests[position]:
            keys[position] = cache_key(digests[position], index, settings)
            if (hit := cache.get(keys[position])) is not None:
                results[position] = hit
                continue
        to_read.append(position)
    if to_read:
        with tempfile.TemporaryDirectory(prefix="imr-ocr-", dir=scratch) as folder:
            reader = _Reader(loaders, indexes, settings, engine, Path(folder), results, keys, cache, to_read,
                             max(1, jobs))
            workers = min(reader.jobs, len(to_read))
            if workers == 1:
                reader.work()
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for running in [pool.submit(reader.work) for _ in range(workers)]:
                        running.result()  # Tesseract missing (OcrError) or a full disk: raised here
    return OcrFile(tuple(page for page in results if page is not None))


@dataclass
class _Page:
    """A page on its way through the engine: its images on disk, what was done to it, its time."""

    position: int
    index: int
    seen: Path  # what Tesseract reads: raw TIFF, its resolution inside (square pixels)
    shown: Path  # the page as shown (the same file, unless speckle was filtered out of `seen`)
    size: tuple[int, int]  # pixels of `shown`
    dpi: tuple[float, float]
    page_size: tuple[float, float] | None
    deskew: float
    oriented: bool
    sideways: bool  # its text lines run up or down the page
    spent: float  # seconds of its page time limit used
    lines: list[Line] = field(default_factory=list)
    rotation: int = 0  # clockwise turn to make it upright
    upright: bool = False  # `seen` is the page turned by `rotation`: `lines` fit the turned page


class _Reader:
    """The pages of one `ocr_pages` call, shared by its threads: each takes a batch of pages,
    prepares them, has the orientation of the pages lying on their side detected (one process, when
    there are any), has one Tesseract process read them, reads the doubtful readings of the batch
    again turned half a turn (one more process), and finishes them."""

    def __init__(self, loaders: list[PageLoader], indexes: list[int], settings: Ocr, engine: str, folder: Path,
                 results: list[OcrPage | None], keys: list[str | None], cache: OcrCache | None,
                 to_read: list[int], jobs: int):
        self.loaders, self.indexes, self.settings, self.engine = loaders, indexes, settings, engine
        self.folder, self.results, self.keys, self.cache, self.jobs = folder, results, keys, cache, jobs
        self.queue = deque(to_read)
        self.lock = threading.Lock()
        self.runs = itertools.count()
        self.deadline = time.monotonic() + settings.file_timeout_seconds
        self.options = ["-l", settings.languages, "--psm", "3", "hocr"]

    def work(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                size = batch_size(len(self.queue), self.jobs)
                batch = [self.queue.popleft() for _ in range(size)]
            self._read(batch)

    # -- the stages of a batch

    def _read(self, positions: list[int]) -> None:
        pages = [page for page in map(self._prepare, positions) if page is not None]
        if self.settings.rotate_pages and any(page.sideways for page in pages):
            self._turn_sideways([page for page in pages if page.sideways])
            pages = [page for page in pages if self.results[page.position] is None]  # not settled on the way
        doubtful: list[_Page] = []
        for page, lines in self._run(pages, [page.seen for page in pages], self.options, _hocr_pages):
            page.lines = lines
            if self.settings.rotate_pages:
                if not page.upright:
                    page.rotation = page_rotation(lines)
                if _doubtful(lines):
                    # Upright pages (nearly all) are read once; the pages of the batch read badly are
                    # read again turned half a turn, keeping the better reading (here, not at the end,
                    # so that no thread is left alone with them).
                    doubtful.append(page)
                    continue
            self._finish(page)
        if doubtful:
            self._check(doubtful)

    def _turn_sideways(self, pages: list[_Page]) -> None:
        """Turn the pages lying on their side as orientation detection says, before they are read."""
        turns = self._run(pages, [page.seen for page in pages], ["--psm", "0", "-l", "osd"],
                          tesseract.orientation_output, unread=0)  # too few letters to tell: left as it is
        for page, turn in turns:
            if turn:
                path = _turned_copy(page, turn, "upright")
                if page.seen != page.shown:
                    page.seen.unlink(missing_ok=True)
                page.seen, page.rotation, page.upright = path, turn, True
                page.dpi, page.size = _turned(page.dpi, turn), _turned(page.size, turn)

    def _check(self, pages: list[_Page]) -> None:
        """Read the doubtful pages again turned half a turn, keeping the better reading of each. A
        page still doubtful both ways and not asked before (a page on its side that the profile did
        not tell, or a poor scan) is asked of orientation detection, and read again turned a quarter
        turn when it says so."""
        base = {id(page): page.rotation if page.upright else 0 for page in pages}
        still: list[_Page] = []
        for page, lines in self._read_turned(pages, 180):
            if _better(lines, page.lines):
                page.lines, page.rotation, page.upright = lines, (base[id(page)] + 180) % 360, True
            if page.sideways or not _doubtful(page.lines):
                self._finish(page)
            else:
                still.append(page)
        if not still:
            return
        quarter: dict[int, list[_Page]] = {}
        for page, turn in self._run(still, [page.seen for page in still], ["--psm", "0", "-l", "osd"],
                                    tesseract.orientation_output, unread=0):
            if turn in (90, 270):
                quarter.setdefault(turn, []).append(page)
            else:
                self._finish(page)  # upright or upside down: both readings are in hand
        for turn, group in quarter.items():
            for page, lines in self._read_turned(group, turn):
                if _better(lines, page.lines):  # (`seen` is the page as it came: never turned a quarter yet)
                    page.lines, page.rotation, page.upright = lines, turn, True
                    page.dpi, page.size = _turned(page.dpi, turn), _turned(page.size, turn)
                self._finish(page)

    def _read_turned(self, pages: list[_Page], turn: int) -> list:
        """(page, lines or None) for each page whose `seen` image, turned `turn` degrees clockwise, was
        read (a reading that fails is None: the first one stands); pages settled on the way are not in it."""
        paths = [_turned_copy(page, turn, "again") for page in pages]
        try:
            return self._run(pages, paths, self.options, _hocr_pages, unread=None)
        finally:
            for path in paths:
                path.unlink(missing_ok=True)

    def _run(self, pages: list[_Page], images: list[Path], options: list[str], parse, *, unread=_FAILED) -> list:
        """(page, answer) for each page Tesseract answered, in as many runs as it takes; a page over its
        time limit is settled "timeout", pages left when the file limit runs out "skipped", a page
        Tesseract gives up on "failed" (or answered `unread`). A killed run's other pages are read again."""
        answered: list[tuple[_Page, object]] = []
        todo = list(zip(pages, images))
        single = False
        while todo:
            group = todo[:1] if single else todo
            limit = self.settings.page_timeout_seconds
            run = tesseract.run_list([image for _, image in group], options, self.folder, f"run-{next(self.runs)}",
                                     allowances=[max(0.001, limit - page.spent) for page, _ in group],
                                     deadline=self.deadline)
            if run.out_of_time:
                for page, _ in todo:
                    self._settle(page, self._out_of_time(page.index))
                return answered
            if run.killed_page is not None:
                page = group[run.killed_page][0]
                self._settle(page, OcrPage(page.index, "timeout", reason=f"not read within {limit:.0f} s",
                                           engine=self.engine))
                todo.remove(group[run.killed_page])
                continue
            answers = parse(run.output) or []
            if run.complete and len(answers) == len(group):
                done, blamed = len(group), None
            elif run.returncode != 0 and len(answers) >= run.finished:  # given up on one page, the rest read
                done, blamed = run.finished, run.finished
            elif len(group) > 1:  # which page it could not read is not known: one page at a time
                single = True
                continue
            else:
                done, blamed = 0, 0
            for (page, _), answer, seconds in zip(group[:done], answers, run.seconds):
                page.spent += seconds
                answered.append((page, answer))
            if blamed is not None:
                page = group[blamed][0]
                if unread is _FAILED:
                    self._settle(page, OcrPage(page.index, "failed", reason="tesseract could not read the page",
                                               engine=self.engine))
                else:
                    answered.append((page, unread))
                done += 1
            todo = group[done:] + todo[len(group):]
        return answered

    # -- one page

    def _prepare(self, position: int) -> _Page | None:
        """The page loaded, made upright by its orientation tag, straightened, and written for
        Tesseract; None when it is already settled (out of time, unloadable)."""
        index, settings = self.indexes[position], self.settings
        started = time.monotonic()
        remaining = self.deadline - started
        if remaining <= 0:
            self.results[position] = self._out_of_time(index)
            return None
        allowance = min(remaining, settings.page_timeout_seconds)
        try:
            image, dpi, page_size = self.loaders[position](allowance)
        except subprocess.TimeoutExpired:
            self.results[position] = OcrPage(index, "timeout", reason=f"not rendered within {allowance:.0f} s",
                                              engine=self.engine)
            return None
        except (OSError, ValueError, Image.DecompressionBombError, Warning, EOFError,
                subprocess.CalledProcessError) as exc:
            self.results[position] = OcrPage(index, "failed", engine=self.engine,
                                              reason=f"the page cannot be rendered ({type(exc).__name__})")
            return None
        try:
            image, dpi, oriented = normalise(image, dpi or image_dpi(image))
        except (OSError, ValueError) as exc:
            self.results[position] = OcrPage(index, "failed", reason=f"the page image cannot be used ({exc})",
                                              engine=self.engine)
            return None
        deskew, sideways = text_lines(image, settings.max_deskew_degrees if settings.deskew else 0.0)
        if abs(deskew) < 0.2:
            deskew = 0.0  # below a pixel's drift across a fax line: leave the page as it came
        if deskew:
            image = straighten(image, deskew)
        seen = self.folder / f"{position}.tif"
        shown = seen
        if speckled(image):  # filtered out of what Tesseract sees only; the page shown keeps every pixel
            save_for_tesseract(despeckled(image), dpi, seen)
            shown = seen.with_name(f"{position}-shown.tif")
        save_for_tesseract(image, dpi, shown)
        page = _Page(position, index, seen, shown, image.size, dpi, page_size, deskew, oriented, sideways,
                     spent=time.monotonic() - started)
        if page.spent >= settings.page_timeout_seconds:
            self._settle(page, OcrPage(index, "timeout", reason=f"not read within {settings.page_timeout_seconds:.0f} s",
                                       engine=self.engine))
            return None
        return page

    def _finish(self, page: _Page) -> None:
        """The reading as an OcrPage: the lines and the page turned upright, the text layer, and the
        corrected page image when the page was turned, straightened or turned by its tag."""
        lines, dpi, (width, height), rotation = page.lines, page.dpi, page.size, page.rotation
        if rotation and not page.upright:  # Tesseract read the lines turned: turn the page and the boxes
            lines = [line.turned(rotation, width, height) for line in lines]
            if rotation in (90, 270):
                dpi, (width, height) = (dpi[1], dpi[0]), (height, width)
        image = None
        if rotation or page.deskew or page.oriented:
            with Image.open(page.shown) as shown:
                picture = shown.transpose(TRANSPOSE[rotation]) if rotation else shown.copy()
            image = encode(picture, dpi)
        given = page.page_size
        if given is None or page.deskew or rotation or page.oriented:
            size = (width * 72.0 / dpi[0], height * 72.0 / dpi[1])
            if given is not None:  # keep the given size, turned with the page
                size = given if rotation in (0, 180) else (given[1], given[0])
        else:
            size = given
        confidence = mean_confidence(lines)
        self._settle(page, OcrPage(
            page.index, "read", text=page_text(lines), confidence=None if confidence is None else round(confidence, 1),
            words=sum(len(line.words) for line in lines), rotation=rotation, deskew_degrees=page.deskew,
            page_size=(round(size[0], 3), round(size[1], 3)), text_layer=text_layer(lines, (width, height), size),
            image=image, engine=self.engine))

    def _settle(self, page: _Page, result: OcrPage) -> None:
        page.seen.unlink(missing_ok=True)
        page.shown.unlink(missing_ok=True)
        self.results[page.position] = result
        if self.cache is not None and self.keys[page.position] is not None:
            self.cache.put(self.keys[page.position], result)

    def _out_of_time(self, index: int) -> OcrPage:
        return OcrPage(index, "skipped", reason=f"the file time limit ({self.settings.file_timeout_seconds:.0f} s) "
                                                "ran out before this page", engine=self.engine)


def _turned_copy(page: _Page, turn: int, purpose: str) -> Path:
    """`page.seen` turned `turn` degrees clockwise, written for Tesseract beside it as
    `<position>-<purpose>-<turn>.tif` (its resolution turned with it)."""
    path = page.seen.with_name(f"{page.position}-{purpose}-{turn}.tif")
    with Image.open(page.seen) as seen:
        save_for_tesseract(seen.transpose(TRANSPOSE[turn]), _turned(page.dpi, turn), path)
    return path


def _turned(pair: tuple, turn: int) -> tuple:
    """A page's (width, height) or (x, y) resolution once it is turned `turn` degrees (a multiple of 90)."""
    return pair if turn % 180 == 0 else (pair[1], pair[0])


def _hocr_pages(output: bytes) -> list[list[Line]] | None:
    try:
        return parse_hocr_pages(output)
    except (ET.ParseError, ValueError, KeyError):
        return None


def ocr_image_file(data: bytes, settings: Ocr, *, jobs: int = 2, cache: OcrCache | None = None,
                   scratch: Path | None = None) -> OcrFile:
    """Every frame of a TIFF (fax G3/G4, multi-page), JPEG or PNG, given as the file's bytes
    (`scratch`: see `ocr_pages`)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            frames = getattr(probe, "n_frames", 1)
    except (OSError, ValueError, Image.DecompressionBombError, Warning) as exc:
        raise OcrError(f"the image cannot be decoded ({type(exc).__name__})", reason="ocr_bad_image") from exc

    def loader(frame: int) -> PageLoader:
        def load(_allowance: float):
            image = Image.open(io.BytesIO(data))
            image.seek(frame)
            return load_frame(image), None, None
        return load

    return ocr_pages([loader(frame) for frame in range(frames)], settings, jobs=jobs,
                     content_sha256=hashlib.sha256(data).hexdigest(), cache=cache, scratch=scratch)


def ocr_pdf(path: Path, settings: Ocr, *, pages: Iterable[int] | None = None, jobs: int = 2,
            cache: OcrCache | None = None, scratch: Path | None = None) -> OcrFile:
    """The listed 0-based pages (default: all) of a PDF, rendered with `pdftoppm` at
    `settings.pdf_dpi` and read; each text layer has the page's size as displayed (rotation applied).
    Use it for image-only PDFs and for image-only pages inside otherwise digital PDFs. The rendered
    pages go where the readings go (`scratch`: see `ocr_pages`)."""
    path = Path(path)
    try:
        reader = PdfReader(path)
        sizes = []
        for page in reader.pages:
            width, height = float(page.mediabox.width), float(page.mediabox.height)
            sizes.append((height, width) if (page.rotation or 0) % 180 else (width, height))
    except (OSError, ValueError, PyPdfError) as exc:
        raise OcrError(f"the PDF cannot be read for OCR ({type(exc).__name__})", reason="ocr_bad_pdf") from exc
    wanted = list(range(len(sizes))) if pages is None else list(pages)
    if any(not 0 <= index < len(sizes) for index in wanted):
        raise OcrError(f"page out of range (the PDF has {len(sizes)} pages)", reason="ocr_bad_page")
    dpi = int(settings.pdf_dpi)

    def loader(index: int) -> PageLoader:
        width_in, height_in = sizes[index][0] / 72.0, sizes[index][1] / 72.0
        # A poster-sized page is rendered coarser rather than into gigabytes of pixels.
        page_dpi = max(1, min(dpi, int(math.sqrt(RENDER_MAX_PIXELS / max(width_in * height_in, 1e-6)))))

        def load(allowance: float):
            with tempfile.TemporaryDirectory(prefix="imr-ocr-pdf-", dir=scratch) as work:
                subprocess.run(["pdftoppm", "-q", "-r", str(page_dpi), "-gray", "-f", str(index + 1), "-l", str(index + 1),
                                "-singlefile", str(path), str(Path(work) / "page")],
                               capture_output=True, timeout=allowance, check=True)
                image = Image.open(Path(work) / "page.pgm")
                image.load()
            return image, (float(page_dpi), float(page_dpi)), sizes[index]
        return load

    content = _file_digest(path) if cache is not None else None
    return ocr_pages([loader(index) for index in wanted], settings, jobs=jobs, indexes=wanted,
                     content_sha256=content, cache=cache, scratch=scratch)
