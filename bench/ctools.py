"""The C toolchain the benchmark compares against, run on the same files in the same run.

Owns: the reference work: `pdftotext` over every file (one process per file, one after another, as a
shell loop would), `qpdf --empty --pages ... --` to merge, `qpdf --overlay` to stamp every page from
one overlay PDF, and for the mixed case LibreOffice (`soffice --convert-to pdf`, one call for all
DOCX files) and `tiff2pdf` (or the `img2pdf` command when libtiff's tools are not installed).
The overlay PDF is an input the C tools are given, made before the clock starts.
Must not: import the service.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from . import measure


@dataclass(frozen=True)
class ChainResult:
    seconds: float
    steps: dict[str, float]  # step -> seconds
    max_rss_kb: dict[str, int]  # step -> largest process of the step


def make_overlay(path: Path, pages: int) -> Path:
    """One overlay page per packet page, a Bates-like label in the bottom margin of each."""
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    for number in range(1, pages + 1):
        c.setFont("Helvetica", 8)
        c.drawRightString(letter[0] - 36, 18, f"BENCH-CASE-{number:06d}")
        c.showPage()
    c.save()
    return path


def pdftotext_all(paths: list[Path], work: Path) -> measure.Run:
    total, peak = 0.0, 0
    for index, path in enumerate(paths):
        result = measure.run(["pdftotext", "-q", str(path), str(work / f"text-{index}.txt")])
        total += result.seconds
        peak = max(peak, result.max_rss_kb)
    return measure.Run(seconds=total, max_rss_kb=peak, tree_peak_kb=0, returncode=0)


def qpdf_merge(paths: list[Path], out: Path) -> measure.Run:
    # --warning-exit-0: a warning about an input is not a failure of the merge
    return measure.run(["qpdf", "--warning-exit-0", "--empty", "--pages", *map(str, paths), "--", str(out)])


def qpdf_overlay(merged: Path, overlay: Path, out: Path) -> measure.Run:
    return measure.run(["qpdf", "--warning-exit-0", str(merged), "--overlay", str(overlay), "--", str(out)])


def pdf_chain(paths: list[Path], overlay: Path, work: Path) -> ChainResult:
    """pdftotext over every file + qpdf merge + qpdf overlay."""
    work.mkdir(parents=True, exist_ok=True)
    text = pdftotext_all(paths, work)
    merge = qpdf_merge(paths, work / "merged.pdf")
    stamp = qpdf_overlay(work / "merged.pdf", overlay, work / "stamped.pdf")
    steps = {"pdftotext": text.seconds, "qpdf_merge": merge.seconds, "qpdf_overlay": stamp.seconds}
    rss = {"pdftotext": text.max_rss_kb, "qpdf_merge": merge.max_rss_kb, "qpdf_overlay": stamp.max_rss_kb}
    return ChainResult(seconds=sum(steps.values()), steps=steps, max_rss_kb=rss)


def count_pages(paths: list[Path]) -> int:
    """Pages of the converted PDFs (not timed: it only sizes the overlay)."""
    import subprocess

    total = 0
    for path in paths:
        out = subprocess.run(["qpdf", "--show-npages", str(path)], capture_output=True, text=True)
        total += int(out.stdout.strip() or 0)
    return total


def tiff_tool() -> str:
    return "tiff2pdf" if shutil.which("tiff2pdf") else "img2pdf"


def convert_chain(tiffs: list[Path], docx: list[Path], overlay_pages_hint: int, work: Path) -> ChainResult:
    """Convert TIFFs and DOCX files to PDF with C tools, then the same chain as `pdf_chain`."""
    work.mkdir(parents=True, exist_ok=True)
    steps: dict[str, float] = {}
    rss: dict[str, int] = {}
    converted: list[Path] = []
    tool = tiff_tool()
    seconds, peak = 0.0, 0
    for index, tiff in enumerate(tiffs):
        out = work / f"tiff-{index}.pdf"
        if tool == "tiff2pdf":
            argv = ["tiff2pdf", "-o", str(out), str(tiff)]
        else:
            argv = [str(Path(sys.executable).with_name("img2pdf")), "-o", str(out), str(tiff)]
        result = measure.run(argv)
        seconds += result.seconds
        peak = max(peak, result.max_rss_kb)
        converted.append(out)
    steps[tool], rss[tool] = seconds, peak
    if docx:
        profile = Path(tempfile.mkdtemp(prefix="lo-profile-", dir=work))
        outdir = work / "docx"
        outdir.mkdir(exist_ok=True)
        result = measure.run(["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless",
                              "--norestore", "--convert-to", "pdf", "--outdir", str(outdir),
                              *map(str, docx)], timeout=600)
        steps["soffice"], rss["soffice"] = result.seconds, result.max_rss_kb
        converted += [outdir / (path.stem + ".pdf") for path in docx]
    missing = [p for p in converted if not p.is_file()]
    if missing:
        raise measure.CommandFailed(f"the C tools did not produce {len(missing)} PDF(s)")
    overlay = make_overlay(work / "overlay.pdf", count_pages(converted) or overlay_pages_hint)
    chain = pdf_chain(converted, overlay, work / "chain")
    steps.update(chain.steps)
    rss.update(chain.max_rss_kb)
    return ChainResult(seconds=sum(steps.values()), steps=steps, max_rss_kb=rss)
