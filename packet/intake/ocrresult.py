"""What OCR made of a page and of a file, and the cache of pages already read.

Owns: `OcrPage` and `OcrFile` (the engine's results, packet.intake.ocr), and `OcrCache`, one folder
per page key (the key is the engine's business: packet.intake.ocr.cache_key), whose entries appear
whole. Must not: run Tesseract, or keep anything but what it is given under its folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUSES = ("read", "timeout", "skipped", "failed")


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
