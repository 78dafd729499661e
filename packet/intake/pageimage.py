"""A page image made ready for Tesseract, and the corrected page image the packet shows.

Owns: decoding a frame as its orientation tag says, the resolution of an image that does not say
(a fax's 204 x 196 or 204 x 98), square pixels, the pixel limit, measuring the tilt (a projection
profile, which also tells a page lying on its side) and straightening, measuring speckle, the uncompressed TIFF Tesseract reads (its resolution
inside), and encoding the corrected page (G4 for 1-bit, PNG otherwise).
Must not: run Tesseract, decide anything about the text, or write anywhere but the path it is given.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps, ImageStat

_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                 8: Image.Transpose.ROTATE_90}  # EXIF/TIFF Orientation tag -> the turn a viewer makes
_TURNED_BY_TAG = "imr_turned_by_orientation_tag"
TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
SPECKLE_SHARE = 0.10  # measured with bench/ocr_eval.py: clean scans 0.01-0.06, speckled faxes 0.14-0.27
MAX_PIXELS = 120_000_000  # a page image bigger than this (about 36 x 36 inches at 300 dpi) is not read


def load_frame(image: Image.Image) -> Image.Image:
    """Decode the current frame. Pillow turns a TIFF frame as its Orientation tag says while loading
    it and then forgets the tag: it is remembered here, so the turned page is the one shown."""
    tag = image.tag_v2.get(0x0112) if image.format == "TIFF" else None
    image.load()
    if tag in _ORIENTATIONS:
        image.info[_TURNED_BY_TAG] = tag
    return image


def image_dpi(image: Image.Image) -> tuple[float, float]:
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


def normalise(image: Image.Image, dpi: tuple[float, float]) -> tuple[Image.Image, tuple[float, float], bool]:
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


def text_lines(image: Image.Image, limit: float) -> tuple[float, bool]:
    """How the text lines lie: (the counter-clockwise turn, degrees within +-limit, that makes them
    straight; True when they run up or down the page, a page on its side).

    Projection profile on a reduced copy: ink summed along rows (or columns, for a sideways page)
    varies most when the lines are level. The search goes in half-degree steps on a copy reduced
    further, then in tenths of a degree around the best. Ties go to the smaller turn, so a blank
    page stays as is.
    """
    grey = image.convert("L")
    factor = max(1, math.ceil(max(grey.size) / 800))
    ink = ImageOps.invert(grey.reduce(factor) if factor > 1 else grey)
    coarse_ink = ink.reduce(2) if min(ink.size) >= 200 else ink

    scores: dict[tuple, float] = {}

    def score(angle: float, columns: bool, source: Image.Image = ink) -> float:
        key = (round(angle, 3), columns, source is ink)
        if key not in scores:
            turned = source.rotate(angle, resample=Image.NEAREST) if angle else source
            size = (turned.width, 1) if columns else (1, turned.height)
            scores[key] = ImageStat.Stat(turned.resize(size, Image.BOX)).var[0]
        return scores[key]

    columns = score(0.0, True) > score(0.0, False)  # text runs up or down the page
    if limit <= 0:
        return 0.0, columns
    coarse = [step * 0.5 for step in range(-int(limit * 2), int(limit * 2) + 1)]
    best = max(coarse, key=lambda a: (score(a, columns, coarse_ink), -abs(a)))
    fine = [best + step * 0.1 for step in range(-4, 5) if abs(best + step * 0.1) <= limit]
    angle = round(max(fine, key=lambda a: (score(a, columns), -abs(a))), 2)
    # No text lines to level (a photo, a drawing): the search runs to its edge, or barely beats
    # leaving the page as it is. Then it is left as it is.
    if abs(angle) >= limit - 0.05 or score(angle, columns) < 1.1 * score(0.0, columns):
        return 0.0, columns
    return angle, columns


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


def despeckled(image: Image.Image) -> Image.Image:
    """What Tesseract sees of a speckled page: grey, through a 3 x 3 median filter."""
    return image.convert("L").filter(ImageFilter.MedianFilter(3))


def straighten(image: Image.Image, angle: float) -> Image.Image:
    """Turned `angle` degrees counter-clockwise, white filling the corners. A 1-bit page is turned
    pixel by pixel and stays 1-bit (read as well as when turned in grey, bicubic, and thresholded:
    bench/ocr_eval.py; at a tenth of the cost); a grey or colour page is turned bicubic."""
    if image.mode == "1":
        return image.rotate(angle, resample=Image.NEAREST, fillcolor=255)
    return image.rotate(angle, resample=Image.BICUBIC, fillcolor=255 if image.mode == "L" else (255, 255, 255))


def encode(image: Image.Image, dpi: tuple[float, float]) -> bytes:
    out = io.BytesIO()
    if image.mode == "1":
        image.save(out, format="TIFF", compression="group4", dpi=dpi)
    else:
        image.save(out, format="PNG", dpi=(round(dpi[0]), round(dpi[1])), optimize=False)
    return out.getvalue()


def save_for_tesseract(image: Image.Image, dpi: tuple[float, float], path: Path) -> None:
    """Uncompressed TIFF (nothing to pay for compression), its resolution inside: a list file gives
    Tesseract no `--dpi` per page. The pixels are square by now (see normalise)."""
    resolution = round(dpi[0])
    image.save(path, format="TIFF", compression="raw", dpi=(resolution, resolution))
