"""Reading pages that have no text layer: Tesseract, English and Spanish, upright and straight.

Owns: the OCR engine (one `tesseract` process per page, automatic layout `--psm 3`, hOCR output),
automatic page rotation (a page read with a mean word confidence under ROTATION_DOUBT is checked
with Tesseract's orientation detection, `--psm 0`, and read again turned; the better reading wins;
lines Tesseract itself reports turned, hOCR `textangle`, turn the page too),
deskew (a projection-profile search before Tesseract reads the page: Tesseract loses whole pages of a
low-resolution fax tilted 3 degrees clockwise), despeckling of what Tesseract sees (a median filter,
only on pages measured as speckled), the invisible text layer (a one-page PDF of
render-mode-3 text drawn with reportlab over the word boxes, to be laid over the page image), the
per-page and per-file time limits, the page cap, and the cache key (content hash + engine version).
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
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import PIL
import reportlab
from PIL import Image, ImageFilter, ImageOps, ImageStat
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from packet.config import Ocr
from packet.errors import OcrError
from packet.intake.hocr import Line, mean_confidence, page_rotation, page_text, parse_hocr, text_layer

# Bump when the text layer or the reading procedure changes in a way that changes results: it is
# part of the engine version, so cached pages read the old way are read again.
PROCEDURE_VERSION = "1"
STATUSES = ("read", "timeout", "skipped", "failed")
ROTATION_DOUBT = 80.0  # mean word confidence under which the orientation is checked: upright 91-96, upside down ~51
_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                 8: Image.Transpose.ROTATE_90}  # EXIF/TIFF Orientation tag -> the turn a viewer makes
_TURNED_BY_TAG = "imr_turned_by_orientation_tag"
_TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
SPECKLE_SHARE = 0.10  # measured with bench/ocr_eval.py: clean scans 0.01-0.06, speckled faxes 0.14-0.27
MAX_PIXELS = 120_000_000  # a page image bigger than this (about 36 x 36 inches at 300 dpi) is not read
RENDER_MAX_PIXELS = 36_000_000  # a PDF page is rendered at pdf_dpi, or coarser to stay under this


@dataclass(frozen=True)
class OcrPage:
    """What OCR made of one page. Coordinates and sizes are in PDF points of the corrected page."""

    index: int  # 0-based page (or frame) of the file
    status: str  # read | timeout | skipped | failed
    reason: str = ""  # plain words when status is not "read" (never document text)
    text: str = ""
    confidence: float | None = None  # mean word confidence 0-100; None when no word was read
    words: int = 0
    rotation: int = 0  # degrees turned clockwise to make the page upright: 0, 90, 180, 270
    deskew_degrees: float = 0.0  # degrees turned counter-clockwise to straighten it (before `rotation`)
    page_size: tuple[float, float] = (0.0, 0.0)  # width, height of `text_layer` (and of `image`)
    text_layer: bytes | None = field(default=None, repr=False)  # one-page PDF, invisible text only
    image: bytes | None = field(default=None, repr=False)  # the corrected page, or None: use the original
    engine: str = ""

    @property
    def corrected(self) -> bool:
        return self.image is not None


@dataclass(frozen=True)
class OcrFile:
    """The pages of one file, in order, one entry per page (read or not, with the reason)."""

    pages: tuple[OcrPage, ...]

    @property
    def complete(self) -> bool:
        return all(page.status == "read" for page in self.pages)

    @property
    def text(self) -> str:
        return "\f".join(page.text for page in self.pages)


# --- the engine and its version ---------------------------------------------------------------------

def _tesseract() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise OcrError("tesseract is not installed (run `make setup`)", reason="ocr_missing")
    return path


@functools.lru_cache(maxsize=8)
def engine_version(languages: str) -> str:
    """Tesseract and Leptonica versions, a digest of every trained-data file used (the languages and
    `osd`), and the Pillow and reportlab versions: a Debian update of the models changes the
    version, so cached text is read again. Raises OcrError when Tesseract or a language is missing."""
    try:
        out = subprocess.run([_tesseract(), "--version"], capture_output=True, text=True, timeout=30)
        listing = subprocess.run([_tesseract(), "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OcrError(f"tesseract does not run: {exc}", reason="ocr_missing") from exc
    lines = (out.stdout or out.stderr).splitlines()
    versions = " ".join(line.strip() for line in lines[:2])
    match = re.search(r'"([^"]+)"', listing.stdout)
    tessdata = Path(match.group(1)) if match else None
    digests = []
    for language in [*languages.split("+"), "osd"]:
        model = tessdata / f"{language}.traineddata" if tessdata else None
        if model is None or not model.is_file():
            raise OcrError(f"the Tesseract language {language!r} is not installed "
                           f"(apt-get install tesseract-ocr-{language})", reason="ocr_language_missing")
        digests.append(f"{language}:{_file_digest(model)[:16]}")
    # Pillow straightens and cleans the page Tesseract sees; reportlab writes the text layer's bytes.
    return (f"{versions}; {' '.join(digests)}; pillow {PIL.__version__}; reportlab {reportlab.Version}; "
            f"procedure {PROCEDURE_VERSION}")


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


def cache_key(content_sha256: str, page_index: int, settings: Ocr) -> str:
    """The key of one page: the file's content hash, the page, the engine version and the settings."""
    material = "\n".join([content_sha256, str(page_index), engine_version(settings.languages),
                          settings_fingerprint(settings)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class OcrCache:
    """Pages already read, one folder per key: meta.json, layer.pdf and image (when corrected).

    Entries appear whole (written in a temporary folder, then renamed); a damaged entry is a miss.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def get(self, key: str) -> OcrPage | None:
        entry = self._entry(key)
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            layer = (entry / "layer.pdf").read_bytes()
            image = (entry / "image").read_bytes() if meta.pop("has_image") else None
            meta["page_size"] = tuple(meta["page_size"])
            return OcrPage(**meta, text_layer=layer, image=image)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, page: OcrPage) -> None:
        if page.status != "read" or page.text_layer is None:
            return  # only what was read is remembered: a timeout may pass on a quieter machine
        entry = self._entry(key)
        if (entry / "meta.json").is_file():
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        try:
            meta = {k: v for k, v in asdict(page).items() if k not in ("text_layer", "image")}
            meta["has_image"] = page.image is not None
            (work / "layer.pdf").write_bytes(page.text_layer)
            if page.image is not None:
                (work / "image").write_bytes(page.image)
            (work / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            os.replace(work, entry)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)  # another process stored it first, or a full disk


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
    engine = engine_version(settings.languages)
    limit = settings.page_timeout_seconds if timeout is None else min(timeout, settings.page_timeout_seconds)
    try:
        return _read(image, settings, index=index, dpi=dpi or _image_dpi(image), page_size=page_size,
                     timeout=limit, engine=engine)
    except subprocess.TimeoutExpired:
        return OcrPage(index, "timeout", reason=f"not read within {limit:.0f} s", engine=engine)


def load_frame(image: Image.Image) -> Image.Image:
    """Decode the current frame. Pillow turns a TIFF frame as its Orientation tag says while loading
    it and then forgets the tag: it is remembered here, so the turned page is the one shown."""
    tag = image.tag_v2.get(0x0112) if image.format == "TIFF" else None
    image.load()
    if tag in _ORIENTATIONS:
        image.info[_TURNED_BY_TAG] = tag
    return image


def _image_dpi(image: Image.Image) -> tuple[float, float]:
    raw = image.info.get("dpi")
    try:
        x, y = float(raw[0]), float(raw[1])
    except (TypeError, ValueError, IndexError):
        x = y = 0.0
    if x >= 50 and y >= 50:
        return x, y
    if image.width in (1728, 1729, 1730):  # a G3/G4 fax: 204 dpi across; 98 lines/inch in normal mode
        return (204.0, 98.0) if image.height < 1500 else (204.0, 196.0)
    return (300.0, 300.0) if image.width >= 2400 else (200.0, 200.0)


def _normalise(image: Image.Image, dpi: tuple[float, float]) -> tuple[Image.Image, tuple[float, float], bool]:
    """One frame in mode 1, L or RGB, with square pixels (a normal-mode fax is twice as tall), turned
    as its EXIF/TIFF Orientation tag says (then True: the page to show is the turned one)."""
    if image.width * image.height > MAX_PIXELS:
        raise ValueError("page image too large")
    if image.info.get(_TURNED_BY_TAG):  # a TIFF frame Pillow turned while loading it
        oriented = True
        if image.info[_TURNED_BY_TAG] >= 5:
            dpi = (dpi[1], dpi[0])
    else:
        orientation = image.getexif().get(0x0112, 1) if image.format != "TIFF" else 1
        oriented = orientation in _ORIENTATIONS
        if oriented:
            image = image.transpose(_ORIENTATIONS[orientation])
            if orientation >= 5:  # a quarter turn: the resolutions swap too
                dpi = (dpi[1], dpi[0])
    if image.mode not in ("1", "L", "RGB"):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            image = image.point(lambda v: v / 256).convert("L")
        elif image.mode in ("LA", "La") or (image.mode == "P" and not _has_colour(image)):
            image = image.convert("L")
        else:
            image = image.convert("RGBA").convert("RGB") if "A" in image.mode else image.convert("RGB")
    x_dpi, y_dpi = dpi
    if abs(x_dpi - y_dpi) / max(x_dpi, y_dpi) > 0.1:
        source = image.convert("L") if image.mode == "1" else image
        image = source.resize((image.width, max(1, round(image.height * x_dpi / y_dpi))), Image.LANCZOS)
        y_dpi = x_dpi
    return image, (x_dpi, y_dpi), oriented


def _has_colour(image: Image.Image) -> bool:
    return image.convert("RGB").convert("HSV").getextrema()[1][1] > 16


def skew_angle(image: Image.Image, limit: float) -> float:
    """The counter-clockwise turn (degrees, within +-limit) that makes the text lines straight.

    Projection profile on a reduced copy: ink summed along rows (or columns, for a sideways page)
    varies most when the lines are level. Ties go to the smaller turn, so a blank page stays as is.
    """
    if limit <= 0:
        return 0.0
    grey = image.convert("L")
    factor = max(1, math.ceil(max(grey.size) / 800))
    ink = ImageOps.invert(grey.reduce(factor) if factor > 1 else grey)

    def score(angle: float, columns: bool) -> float:
        turned = ink.rotate(angle, resample=Image.NEAREST)
        size = (turned.width, 1) if columns else (1, turned.height)
        return ImageStat.Stat(turned.resize(size, Image.BOX)).var[0]

    columns = score(0.0, True) > score(0.0, False)  # text runs up or down the page
    coarse = [step * 0.5 for step in range(-int(limit * 2), int(limit * 2) + 1)]
    best = max(coarse, key=lambda a: (score(a, columns), -abs(a)))
    fine = [best + step * 0.05 for step in range(-6, 7) if abs(best + step * 0.05) <= limit]
    angle = round(max(fine, key=lambda a: (score(a, columns), -abs(a))), 2)
    # No text lines to level (a photo, a drawing): the search runs to its edge, or barely beats
    # leaving the page as it is. Then it is left as it is.
    if abs(angle) >= limit - 0.05 or score(angle, columns) < 1.1 * score(0.0, columns):
        return 0.0
    return angle


def speckled(image: Image.Image) -> bool:
    """True when a 3 x 3 median filter takes away more than SPECKLE_SHARE of the ink in a band across
    the middle of the page (a sixth of its height): isolated toner specks, not letter strokes (clean
    pages lose under 7%)."""
    band = image.crop((0, image.height * 5 // 12, image.width, image.height * 7 // 12)).convert("L")
    ink = 255.0 - ImageStat.Stat(band).mean[0]
    if ink < 0.5:  # a blank band: nothing to judge by
        return False
    cleaned = 255.0 - ImageStat.Stat(band.filter(ImageFilter.MedianFilter(3))).mean[0]
    return (ink - cleaned) / ink > SPECKLE_SHARE


def _turn(image: Image.Image, angle: float) -> Image.Image:
    if image.mode == "1":
        grey = image.convert("L").rotate(angle, resample=Image.BICUBIC, fillcolor=255)
        return grey.point(lambda v: 255 if v > 127 else 0).convert("1")
    return image.rotate(angle, resample=Image.BICUBIC, fillcolor=255 if image.mode == "L" else (255, 255, 255))


def _read(image: Image.Image, settings: Ocr, *, index: int, dpi: tuple[float, float],
          page_size: tuple[float, float] | None, timeout: float, engine: str) -> OcrPage:
    deadline = time.monotonic() + timeout
    try:
        image, dpi, oriented = _normalise(image, dpi)
    except (OSError, ValueError) as exc:
        return OcrPage(index, "failed", reason=f"the page image cannot be used ({exc})", engine=engine)
    deskew = skew_angle(image, settings.max_deskew_degrees) if settings.deskew else 0.0
    if abs(deskew) < 0.2:
        deskew = 0.0  # below a pixel's drift across a fax line: leave the page as it came
    if deskew:
        image = _turn(image, deskew)
    # Speckle is filtered out of what Tesseract sees only; the page shown keeps every pixel.
    seen = image.convert("L").filter(ImageFilter.MedianFilter(3)) if speckled(image) else image
    rotation, upright = 0, False
    with tempfile.TemporaryDirectory(prefix="imr-ocr-") as folder:
        work = Path(folder)
        lines = _recognise(seen, dpi, settings, work / "page", deadline)
        if lines is None:
            return OcrPage(index, "failed", reason="tesseract could not read the page", engine=engine)
        if settings.rotate_pages:
            rotation = page_rotation(lines)
            if _doubtful(lines):
                # Upright pages (nearly all) are read once; a page read badly is checked for its
                # orientation (Tesseract OSD) and read again turned, keeping the better reading.
                turn = _orientation(_write(seen, work / "page"), deadline)
                if turn:
                    turned_dpi = dpi if turn == 180 else (dpi[1], dpi[0])
                    again = _recognise(seen.transpose(_TRANSPOSE[turn]), turned_dpi, settings, work / "turned",
                                       deadline)
                    if again is not None and (mean_confidence(again) or -1.0) > (mean_confidence(lines) or -1.0):
                        image, dpi, lines, rotation, upright = image.transpose(_TRANSPOSE[turn]), turned_dpi, again, turn, True
    if rotation and not upright:  # Tesseract read the lines turned: turn the page and the boxes
        width_px, height_px = image.size
        image = image.transpose(_TRANSPOSE[rotation])
        lines = [line.turned(rotation, width_px, height_px) for line in lines]
        if rotation in (90, 270):
            dpi = (dpi[1], dpi[0])
    if page_size is None or deskew or rotation or oriented:
        size = (image.width * 72.0 / dpi[0], image.height * 72.0 / dpi[1])
        if page_size is not None:  # keep the given size, turned with the page
            size = page_size if rotation in (0, 180) else (page_size[1], page_size[0])
    else:
        size = page_size
    words = [word for line in lines for word in line.words]
    confidence = mean_confidence(lines)
    return OcrPage(index, "read", text=page_text(lines), confidence=None if confidence is None else round(confidence, 1),
                   words=len(words), rotation=rotation, deskew_degrees=deskew,
                   page_size=(round(size[0], 3), round(size[1], 3)), text_layer=text_layer(lines, image.size, size),
                   image=_encode(image, dpi) if (rotation or deskew or oriented) else None, engine=engine)


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_THREAD_LIMIT="1")  # one core per page: pages run side by side


def _left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise subprocess.TimeoutExpired("tesseract", 0)
    return remaining


def _recognise(image: Image.Image, dpi: tuple[float, float], settings: Ocr, base: Path,
               deadline: float) -> list[Line] | None:
    """One Tesseract reading (automatic layout, hOCR) of an image; None when Tesseract fails."""
    source = _write(image, base)
    done = subprocess.run([_tesseract(), str(source), str(base), "-l", settings.languages, "--psm", "3",
                           "--dpi", str(round(dpi[0])), "hocr"],
                          capture_output=True, timeout=_left(deadline), env=_env(), cwd=base.parent)
    hocr = base.with_suffix(".hocr")
    if done.returncode != 0 or not hocr.is_file():
        return None
    try:
        return parse_hocr(hocr.read_bytes())
    except (ET.ParseError, ValueError, KeyError):
        return None


def _write(image: Image.Image, base: Path) -> Path:
    source = base.with_suffix(".pbm" if image.mode == "1" else ".pnm")  # PNM: no compression to pay for
    image.save(source, format="PPM")
    return source


def _orientation(source: Path, deadline: float) -> int:
    """Tesseract's orientation detection: the clockwise turn (0, 90, 180, 270) that makes the page
    upright, or 0 when it cannot tell (too few letters)."""
    done = subprocess.run([_tesseract(), str(source), "stdout", "--psm", "0"], capture_output=True, text=True,
                          timeout=_left(deadline), env=_env(), cwd=source.parent)
    match = re.search(r"Rotate: (\d+)", done.stdout)
    if done.returncode != 0 or match is None:
        return 0
    clockwise = int(match.group(1)) % 360  # OSD's "Rotate": a page fed a quarter turn left says 90
    return clockwise if clockwise in (90, 180, 270) else 0


def _doubtful(lines: list[Line]) -> bool:
    confidence = mean_confidence(lines)
    return confidence is None or confidence < ROTATION_DOUBT


def _encode(image: Image.Image, dpi: tuple[float, float]) -> bytes:
    out = io.BytesIO()
    if image.mode == "1":
        image.save(out, format="TIFF", compression="group4", dpi=dpi)
    else:
        image.save(out, format="PNG", dpi=(round(dpi[0]), round(dpi[1])), optimize=False)
    return out.getvalue()


# --- whole files ----------------------------------------------------------------------------------

PageLoader = Callable[[float], "tuple[Image.Image, tuple[float, float] | None, tuple[float, float] | None]"]


def ocr_pages(loaders: list[PageLoader], settings: Ocr, *, jobs: int = 2, indexes: list[int] | None = None,
              content_sha256: str | list[str] | None = None, cache: OcrCache | None = None,
              capped: bool = True) -> OcrFile:
    """Read pages side by side (`jobs` Tesseract processes), within the file time limit and the cap.

    Each loader is called with its time allowance and returns (image, dpi or None, page size or None).
    `indexes` are the pages' numbers in their file (default 0, 1, ...). Pages past
    `settings.max_pages` (when `capped`) and pages left when the file time limit runs out come back
    "skipped" with the reason. With a cache and the content hash of the file (one for all pages, or
    one per page when the pages come from several files), a page is never read twice.
    """
    engine = engine_version(settings.languages)
    indexes = list(range(len(loaders))) if indexes is None else list(indexes)
    digests = content_sha256 if isinstance(content_sha256, list) else [content_sha256] * len(loaders)
    deadline = time.monotonic() + settings.file_timeout_seconds

    def one(position: int) -> OcrPage:
        index = indexes[position]
        if capped and position >= settings.max_pages:
            return OcrPage(index, "skipped", reason=f"past the page cap ({settings.max_pages} pages per file)",
                           engine=engine)
        digest = digests[position]
        key = cache_key(digest, index, settings) if cache is not None and digest else None
        if key is not None and (hit := cache.get(key)) is not None:
            return hit
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return OcrPage(index, "skipped", reason=f"the file time limit ({settings.file_timeout_seconds:.0f} s) "
                                                    "ran out before this page", engine=engine)
        allowance = min(remaining, settings.page_timeout_seconds)
        started = time.monotonic()
        try:
            image, dpi, page_size = loaders[position](allowance)
        except subprocess.TimeoutExpired:
            return OcrPage(index, "timeout", reason=f"not rendered within {allowance:.0f} s", engine=engine)
        except (OSError, ValueError, Image.DecompressionBombError, Warning, EOFError,
                subprocess.CalledProcessError) as exc:
            return OcrPage(index, "failed", reason=f"the page cannot be rendered ({type(exc).__name__})",
                           engine=engine)
        left = allowance - (time.monotonic() - started)
        page = ocr_image(image, settings, index=index, dpi=dpi, page_size=page_size, timeout=max(left, 0.001))
        if key is not None:
            cache.put(key, page)
        return page

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return OcrFile(tuple(pool.map(one, range(len(loaders)))))


def ocr_image_file(data: bytes, settings: Ocr, *, jobs: int = 2, cache: OcrCache | None = None) -> OcrFile:
    """Every frame of a TIFF (fax G3/G4, multi-page), JPEG or PNG, given as the file's bytes."""
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
                     content_sha256=hashlib.sha256(data).hexdigest(), cache=cache)


def ocr_pdf(path: Path, settings: Ocr, *, pages: Iterable[int] | None = None, jobs: int = 2,
            cache: OcrCache | None = None) -> OcrFile:
    """The listed 0-based pages (default: all) of a PDF, rendered with `pdftoppm` at
    `settings.pdf_dpi` and read; each text layer has the page's size as displayed (rotation applied).
    Use it for image-only PDFs and for image-only pages inside otherwise digital PDFs."""
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
            with tempfile.TemporaryDirectory(prefix="imr-ocr-pdf-") as work:
                subprocess.run(["pdftoppm", "-q", "-r", str(page_dpi), "-gray", "-f", str(index + 1), "-l", str(index + 1),
                                "-singlefile", str(path), str(Path(work) / "page")],
                               capture_output=True, timeout=allowance, check=True)
                image = Image.open(Path(work) / "page.pgm")
                image.load()
            return image, (float(page_dpi), float(page_dpi)), sizes[index]
        return load

    content = _file_digest(path) if cache is not None else None
    return ocr_pages([loader(index) for index in wanted], settings, jobs=jobs, indexes=wanted,
                     content_sha256=content, cache=cache)
