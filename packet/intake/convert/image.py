"""TIFF, JPEG and PNG files: one PDF page per frame, at the image's physical size, through img2pdf.

Owns: the page size of an image (its resolution when believable, else 200 dpi fitted to letter),
the pixel limit (checked on each frame's header, before anything is decoded), lossless embedding
(JPEG and CCITT data as they are; other modes re-encoded as PNG). Must not: resample or alter pixels.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from packet.errors import RefusedFile
from packet.intake.convert.refusals import limit_refusal, refusal, too_many_pages

# The size a page gets when the file does not say its resolution (or says nonsense).
DEFAULT_DPI = 200.0
LETTER_INCHES = (8.5, 11.0)
MAX_PAGE_INCHES = 200.0  # the PDF limit for a page side (14,400 points)
SCREEN_DPIS = (72.0, 96.0)  # "resolutions" written by software that did not know the real one


def pixel_refusal(pixels: int, max_pixels: int) -> RefusedFile:
    return limit_refusal(f"the image has {pixels / 1e6:.0f} million pixels, more than the limit of "
                         f"{max_pixels / 1e6:g} million pixels for one image")


def image_dpi(frame) -> tuple[float, float] | None:
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


def convert_image(path: Path, max_pages: int, max_pixels: int) -> tuple[list[str], None, bytes]:
    import img2pdf
    from PIL import Image, ImageOps, ImageSequence

    # Pillow itself only refuses at twice its limit; the frames are checked at the limit below.
    Image.MAX_IMAGE_PIXELS = max_pixels
    sizes: list[tuple[float, float]] = []
    texts: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                for number, frame in enumerate(ImageSequence.Iterator(image)):
                    if number >= max_pages:
                        raise too_many_pages(None, max_pages)
                    pixels = frame.size[0] * frame.size[1]
                    if pixels > max_pixels:
                        raise pixel_refusal(pixels, max_pixels)
                    frame.load()  # decode now: a truncated scan must be refused, not passed through
                    sizes.append(page_size_points(frame.size[0], frame.size[1], image_dpi(frame)))
                    texts.append("")  # read by OCR afterwards (packet.intake.convert.ocr_hook)
    except RefusedFile:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise limit_refusal(f"the image has more than the limit of {max_pixels / 1e6:g} million pixels "
                            "for one image") from exc
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
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - modes img2pdf refuses: re-encode each frame losslessly with Pillow
        pngs, fallback_sizes = [], []
        with Image.open(path) as image:
            for frame in ImageSequence.Iterator(image):
                dpi = image_dpi(frame)
                upright = ImageOps.exif_transpose(frame.copy())
                if upright.size != frame.size and dpi is not None:
                    dpi = (dpi[1], dpi[0])
                pngs.append(_png_bytes(_flatten(upright)))
                fallback_sizes.append(page_size_points(upright.size[0], upright.size[1], dpi))
        try:
            pdf_bytes = img2pdf.convert(pngs, layout_fun=layout(fallback_sizes), nodate=True)
        except Exception as exc:  # noqa: BLE001
            raise refusal("conversion_failed", "the image could not be turned into a PDF page") from exc
    return texts, None, pdf_bytes


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
