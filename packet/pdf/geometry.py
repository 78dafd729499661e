"""Page geometry: where a page's visible box is, how it is rotated, and the matrices that move it.

Owns: reading a page's boxes, /Rotate and /UserUnit into a `PageGeometry`, and the small matrix
arithmetic the stamper uses (PDF row-vector convention).
Must not: change a page (`packet.pdf.stamp` does) or read anything but a page's own dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageGeometry:
    box: tuple[float, float, float, float]  # the visible box in the page's own user space
    rotation: int  # 0, 90, 180, 270 (clockwise, as displayed)
    width: float  # displayed (upright) size
    height: float
    matrix: tuple[float, float, float, float, float, float]  # user space -> upright, origin at 0,0
    user_unit: float = 1.0


def rectangle(value) -> tuple[float, float, float, float] | None:
    try:
        values = [float(v) for v in value.get_object()]
    except (TypeError, ValueError, AttributeError):
        return None
    if len(values) != 4:
        return None
    x0, y0, x1, y1 = values
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def page_geometry(page) -> PageGeometry:
    media = rectangle(page.get("/MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = rectangle(page.get("/CropBox")) if "/CropBox" in page else None
    box = media
    if crop is not None:  # the visible area is the crop box clipped to the media box
        clipped = (max(media[0], crop[0]), max(media[1], crop[1]), min(media[2], crop[2]), min(media[3], crop[3]))
        if clipped[2] - clipped[0] > 1 and clipped[3] - clipped[1] > 1:
            box = clipped
    try:
        rotate = page.get("/Rotate", 0)
        rotate = int(rotate.get_object() if hasattr(rotate, "get_object") else rotate)
    except (TypeError, ValueError):
        rotate = 0
    rotation = ((rotate + 45) // 90 * 90) % 360
    x0, y0, x1, y1 = box
    if rotation == 90:
        matrix = (0.0, -1.0, 1.0, 0.0, -y0, x1)
    elif rotation == 180:
        matrix = (-1.0, 0.0, 0.0, -1.0, x1, y1)
    elif rotation == 270:
        matrix = (0.0, 1.0, -1.0, 0.0, y1, -x0)
    else:
        matrix = (1.0, 0.0, 0.0, 1.0, -x0, -y0)
    width, height = (y1 - y0, x1 - x0) if rotation in (90, 270) else (x1 - x0, y1 - y0)
    try:
        user_unit = float(page.get("/UserUnit", 1.0))
    except (TypeError, ValueError):
        user_unit = 1.0
    return PageGeometry(box=box, rotation=rotation, width=width, height=height, matrix=matrix,
                     user_unit=user_unit if user_unit > 0 else 1.0)


def compose(first, then) -> tuple[float, ...]:
    """The matrix applying `first`, then `then` (PDF row-vector convention)."""
    a1, b1, c1, d1, e1, f1 = first
    a2, b2, c2, d2, e2, f2 = then
    return (a1 * a2 + b1 * c2, a1 * b2 + b1 * d2, c1 * a2 + d1 * c2, c1 * b2 + d1 * d2,
            e1 * a2 + f1 * c2 + e2, e1 * b2 + f1 * d2 + f2)


def apply(matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = matrix
    return (a * x + c * y + e, b * x + d * y + f)


def num(value: float) -> str:
    text = f"{value:.5f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text

