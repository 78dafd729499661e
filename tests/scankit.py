"""Scanned pages made in code: text drawn with reportlab, rendered by poppler, saved as a fax TIFF
(G4, 1-bit), a grey JPEG or a PNG, or wrapped in an image-only PDF page; and a tesseract on PATH
that counts the pages it reads. Shared by the OCR tests."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from PIL import Image
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from packet.workers import pool


def page_image(lines: list[str], *, dpi: int = 200, size: int = 13) -> Image.Image:
    """One letter page with `lines` of text, rendered at `dpi` (grey)."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, pagesize=letter, invariant=1)
    sheet.setFont("Helvetica", size)
    y = letter[1] - 72
    for line in lines:
        sheet.drawString(72, y, line)
        y -= size * 1.8
    sheet.showPage()
    sheet.save()
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "page.pdf").write_bytes(buffer.getvalue())
        subprocess.run(["pdftoppm", "-q", "-r", str(dpi), "-gray", "-singlefile", str(Path(work) / "page.pdf"),
                        str(Path(work) / "page")], check=True)
        image = Image.open(Path(work) / "page.pgm")
        image.load()
    return image


def fax_tiff(path: Path, pages: list[list[str]], *, dpi: int = 200) -> Path:
    """A multi-page 1-bit TIFF G4, one frame per page of lines."""
    frames = [page_image(lines, dpi=dpi).point(lambda v: 255 if v > 128 else 0).convert("1") for lines in pages]
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="TIFF", compression="group4", dpi=(dpi, dpi), save_all=True,
                   append_images=frames[1:])
    return path


def grey_jpeg(path: Path, lines: list[str], *, dpi: int = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    page_image(lines, dpi=dpi).save(path, format="JPEG", quality=85, dpi=(dpi, dpi))
    return path


def png_scan(path: Path, lines: list[str], *, dpi: int = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    page_image(lines, dpi=dpi).save(path, format="PNG", dpi=(dpi, dpi))
    return path


def image_pdf_bytes(pages: list[list[str] | str | tuple[str, list[str]]], *, dpi: int = 200) -> bytes:
    """A PDF whose pages are: an image of the lines (a list), born-digital text (a string), or an
    image under a born-digital header line (a (header, lines) tuple: a fax server's stamp on a scan)."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, pagesize=letter, invariant=1)
    for page in pages:
        if isinstance(page, str):
            y = letter[1] - 72
            for line in page.splitlines():
                sheet.drawString(72, y, line)
                y -= 14
        else:
            from reportlab.lib.utils import ImageReader

            header, lines = page if isinstance(page, tuple) else ("", page)
            picture = io.BytesIO()
            page_image(lines, dpi=dpi).save(picture, format="PNG")
            sheet.drawImage(ImageReader(io.BytesIO(picture.getvalue())), 0, 0, *letter)
            if header:
                sheet.setFont("Helvetica", 8)
                sheet.drawString(18, letter[1] - 12, header)
        sheet.showPage()
    sheet.save()
    return buffer.getvalue()


def image_pdf(path: Path, pages: list[list[str] | str | tuple[str, list[str]]], *, dpi: int = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_pdf_bytes(pages, dpi=dpi))
    return path


def pdf_text(path: Path) -> str:
    """pdftotext's reading of a PDF (what a person searching the file finds)."""
    return subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True, text=True, check=True).stdout


@contextlib.contextmanager
def counted_tesseract(folder: Path, monkeypatch):
    """A tesseract shim first on PATH that counts the pages it is asked to read (not `--version`
    calls); yields a function returning the count. Conversion workers are restarted on entry and
    exit so that fresh workers see the shim (and later tests the real PATH)."""
    real = shutil.which("tesseract")
    shim_dir = folder / "shim"
    shim_dir.mkdir()
    log = folder / "tesseract-runs"
    shim = shim_dir / "tesseract"
    shim.write_text(f'#!/bin/sh\ncase "$1" in --*) ;; *) echo run >> "{log}" ;; esac\nexec "{real}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{shim_dir}{os.pathsep}{os.environ['PATH']}")
    pool.shutdown("convert")
    try:
        yield lambda: len(log.read_text().splitlines()) if log.exists() else 0
    finally:
        pool.shutdown("convert")
