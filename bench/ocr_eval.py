"""`python -m bench.ocr_eval`: how well the OCR engine reads fax-like scans whose text we know.

Owns: the OCR evaluation set and its measurement. Born-digital pages are drawn with reportlab (a
clinic note, a Spanish letter, a two-column lab report, a note closing with a handwritten-looking
signature), rendered with `pdftoppm` at fax (204 x 196 dpi) or scanner (300 dpi) resolution, then
degraded the way fax machines and scanners do (tilt up to 3 degrees, speckle, 1-bit threshold,
G3/G4 TIFF or grey JPEG, upside down, sideways) and read by `packet.intake.ocr`. The known text
of each page is compared with what OCR read: word accuracy = 1 - errors / words of the original, errors
counted regardless of reading order (see `word_accuracy`; the in-order figure, 1 - word error rate,
is recorded beside it); case and surrounding punctuation ignored, accents kept. Prints a table per kind and writes `bench/ocr_eval.json`.
Targets (issue 12): >= 97% on clean scans, >= 90% on noisy ones (speckle).
Must not: time anything as a goal (seconds are reported for information only), or leave files
outside its temporary folder other than the results file.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from packet.config import Ocr
from packet.intake import ocr

RESULTS = Path(__file__).resolve().parent / "ocr_eval.json"
TARGETS = {"clean": 0.97, "noisy": 0.90}


@dataclass(frozen=True)
class Kind:
    name: str
    group: str  # clean | noisy
    content: str  # note | spanish | lab | signature
    dpi: tuple[int, int]
    encoding: str  # g3 | g4 | jpeg
    skew: float = 0.0  # degrees, counter-clockwise; the sign alternates between samples
    speckle: float = 0.0  # share of pixels flipped to black (and a fifth of that dropped to white)
    turn: int = 0  # degrees counter-clockwise the page is fed: 180 upside down, 90 sideways
    describe: str = ""


KINDS = (
    Kind("clean-300-g4", "clean", "note", (300, 300), "g4", describe="300 dpi, 1-bit G4"),
    Kind("clean-fax-g3", "clean", "note", (204, 196), "g3", describe="204x196 fax, 1-bit G3"),
    Kind("clean-grey-jpeg", "clean", "note", (200, 200), "jpeg", describe="200 dpi grey JPEG"),
    Kind("skew-3-fax-g4", "clean", "note", (204, 196), "g4", skew=3.0, describe="fax tilted 3 degrees"),
    Kind("skew-2-300-jpeg", "clean", "note", (300, 300), "jpeg", skew=2.0, describe="300 dpi JPEG tilted 2 degrees"),
    Kind("upside-down-fax", "clean", "note", (204, 196), "g4", turn=180, describe="fax fed upside down"),
    Kind("sideways-300", "clean", "note", (300, 300), "g4", turn=90, describe="page scanned sideways"),
    Kind("spanish-fax", "clean", "spanish", (204, 196), "g3", describe="Spanish letter, fax"),
    Kind("lab-2col-300", "clean", "lab", (300, 300), "g4", describe="two-column lab report"),
    Kind("signature-fax", "clean", "signature", (204, 196), "g4", skew=1.0,
         describe="note with a handwritten-looking signature"),
    Kind("noisy-fax-g3", "noisy", "note", (204, 196), "g3", skew=1.5, speckle=0.004, describe="speckled fax"),
    Kind("noisy-300-g4-skew", "noisy", "lab", (300, 300), "g4", skew=3.0, speckle=0.006,
         describe="speckled two-column lab, tilted 3 degrees"),
    Kind("noisy-grey-jpeg", "noisy", "spanish", (200, 200), "jpeg", speckle=0.004, describe="speckled grey JPEG"),
)

FIRST = ("Maria", "James", "Rosalind", "Ahmed", "Linh", "Carlos", "Patricia", "Robert", "Grace", "Tomas")
LAST = ("Testmember", "Nguyen", "Okafor", "Delgado", "Chen", "Whitfield", "Ramirez", "Kowalski", "Haddad")
NOTE_WORDS = ("patient reports low back pain radiating to the left leg with numbness in the foot and "
              "difficulty walking more than one block physical examination shows reduced range of "
              "motion straight leg raise positive on the left reflexes diminished at the ankle imaging "
              "reviewed with the patient conservative treatment including physical therapy for twelve "
              "weeks and medication did not relieve symptoms surgery was discussed risks benefits and "
              "alternatives follow up in four weeks continue current medications blood pressure stable "
              "lumbar spinal fusion requested denied as not medically necessary appeal filed by member").split()
SPANISH_WORDS = ("el paciente refiere dolor lumbar crónico con irradiación a la pierna izquierda y "
                 "entumecimiento del pie la exploración física muestra disminución del movimiento la "
                 "resonancia magnética revela hernia discal se recomienda fisioterapia durante doce "
                 "semanas además de medicación según indicación médica su plan de salud negó la "
                 "solicitud porque no es médicamente necesaria usted tiene derecho a pedir una revisión "
                 "médica independiente llame al número gratuito si necesita ayuda en español también "
                 "puede obtener información útil sobre su queja").split()
LAB_TESTS = (("Glucose", "mg/dL", "70-99"), ("BUN", "mg/dL", "7-20"), ("Creatinine", "mg/dL", "0.6-1.3"),
             ("Sodium", "mmol/L", "135-145"), ("Potassium", "mmol/L", "3.5-5.1"), ("Chloride", "mmol/L", "98-107"),
             ("Calcium", "mg/dL", "8.5-10.2"), ("Albumin", "g/dL", "3.5-5.0"), ("Hemoglobin", "g/dL", "12.0-16.0"),
             ("Hematocrit", "%", "36-46"), ("Platelets", "K/uL", "150-400"), ("WBC", "K/uL", "4.5-11.0"),
             ("ALT", "U/L", "7-56"), ("AST", "U/L", "10-40"), ("Cholesterol", "mg/dL", "125-200"),
             ("Triglycerides", "mg/dL", "0-150"), ("HDL", "mg/dL", "40-60"), ("LDL", "mg/dL", "0-100"))


# --- born-digital pages ------------------------------------------------------------------------

class Page:
    """A reportlab page that remembers every word it draws, in reading order."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.canvas = canvas.Canvas(self.buffer, pagesize=letter, invariant=1)
        self.words: list[str] = []

    def line(self, x: float, y: float, text: str, font: str = "Helvetica", size: float = 11) -> None:
        self.canvas.setFont(font, size)
        self.canvas.drawString(x, y, text)
        self.words.extend(text.split())

    def paragraph(self, x: float, y: float, words: list[str], width: float, *, font: str = "Helvetica",
                  size: float = 11, leading: float = 15) -> float:
        current: list[str] = []
        for word in words:
            trial = " ".join(current + [word])
            if current and self.canvas.stringWidth(trial, font, size) > width:
                self.line(x, y, " ".join(current), font, size)
                y -= leading
                current = [word]
            else:
                current.append(word)
        if current:
            self.line(x, y, " ".join(current), font, size)
            y -= leading
        return y

    def finish(self) -> tuple[bytes, str]:
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue(), " ".join(self.words)


def _sentences(rng: random.Random, vocabulary: list[str], count: int) -> list[str]:
    words = [rng.choice(vocabulary) for _ in range(count)]
    words[0] = words[0].capitalize()
    for position in range(9, count, rng.randint(8, 14)):
        words[position] += "."
    return words


def _header(page: Page, rng: random.Random, title: str) -> float:
    name = f"{rng.choice(LAST).upper()}, {rng.choice(FIRST)}"
    page.line(60, 740, title, "Helvetica-Bold", 14)
    page.line(60, 716, f"Patient: {name}   DOB: {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/"
                       f"{rng.randint(1940, 1999)}   MRN: {rng.randint(10000000, 99999999)}")
    page.line(60, 700, f"Date of service: {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2026   "
                       f"Member ID: M{rng.randint(100000000, 999999999)}")
    return 672


def note_page(rng: random.Random) -> tuple[bytes, str]:
    page = Page()
    y = _header(page, rng, "Progress Note - Capitol Orthopedics")
    y = page.paragraph(60, y, _sentences(rng, NOTE_WORDS, 150), 490)
    page.paragraph(60, y - 12, _sentences(rng, NOTE_WORDS, 110), 490, font="Times-Roman", size=12, leading=16)
    return page.finish()


def spanish_page(rng: random.Random) -> tuple[bytes, str]:
    page = Page()
    page.line(60, 740, "Aviso al miembro - Revisión Médica Independiente", "Helvetica-Bold", 14)
    page.line(60, 716, f"Estimado/a {rng.choice(FIRST)} {rng.choice(LAST)}:")
    y = page.paragraph(60, 692, _sentences(rng, SPANISH_WORDS, 170), 490)
    page.paragraph(60, y - 12, _sentences(rng, SPANISH_WORDS, 90), 490)
    return page.finish()


def lab_page(rng: random.Random) -> tuple[bytes, str]:
    """Two columns of results (left column read first, then right), then a comment paragraph."""
    page = Page()
    y0 = _header(page, rng, "Laboratory Report - Sierra Clinical Labs")
    tests = list(LAB_TESTS)
    rng.shuffle(tests)
    for column, x in ((tests[:9], 60), (tests[9:], 320)):
        y = y0
        page.line(x, y, "Test Result Units Range", "Courier-Bold", 10)
        for name, unit, span in column:
            low, high = (float(v) for v in span.split("-"))
            value = round(rng.uniform(low * 0.8, high * 1.2), 1)
            page.line(x, y - 16, f"{name} {value} {unit} {span}", "Courier", 10)
            y -= 16
    page.paragraph(60, y - 40, _sentences(rng, NOTE_WORDS, 90), 490, font="Courier", size=10, leading=13)
    return page.finish()


def signature_page(rng: random.Random) -> tuple[bytes, str]:
    page = Page()
    y = _header(page, rng, "Letter of Medical Necessity")
    y = page.paragraph(60, y, _sentences(rng, NOTE_WORDS, 170), 490)
    y -= 40
    sheet = page.canvas
    sheet.setLineWidth(1.6)
    path = sheet.beginPath()  # a looping scrawl: the signature has no words to read
    x, base = 150.0, y + 8
    path.moveTo(x, base)
    for _ in range(9):
        dx = rng.uniform(10, 22)
        path.curveTo(x + dx * 0.3, base + rng.uniform(8, 26), x + dx * 0.7, base - rng.uniform(4, 14),
                     x + dx, base + rng.uniform(-3, 6))
        x += dx
    sheet.drawPath(path, stroke=1, fill=0)
    sheet.setLineWidth(0.6)
    sheet.line(140, y, 360, y)
    page.line(60, y + 2, "Signature:")
    doctor = f"{rng.choice(FIRST)} {rng.choice(LAST)}, MD"
    page.line(140, y - 16, doctor)
    page.line(140, y - 32, f"Signed {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2026")
    return page.finish()


CONTENT = {"note": note_page, "spanish": spanish_page, "lab": lab_page, "signature": signature_page}


# --- scanning it badly -------------------------------------------------------------------------

def scan(pdf: bytes, kind: Kind, rng: random.Random, work: Path, name: str) -> Path:
    """Render the born-digital page as `kind` says and write the scan file; returns its path."""
    source = work / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-q", "-gray", "-rx", str(kind.dpi[0]), "-ry", str(kind.dpi[1]), "-singlefile",
                    str(source), str(work / name)], check=True, capture_output=True, timeout=120)
    image = Image.open(work / f"{name}.pgm")
    image.load()
    if kind.skew:
        angle = kind.skew * rng.choice((-1, 1))
        image = image.rotate(angle, resample=Image.BICUBIC, fillcolor=255)
    if kind.speckle:
        image = _speckle(image, kind.speckle, rng)
    if kind.turn:
        image = image.rotate(kind.turn, expand=True)
    dpi = kind.dpi if kind.turn in (0, 180) else (kind.dpi[1], kind.dpi[0])
    if kind.encoding == "jpeg":
        path = work / f"{name}.jpg"
        image.filter(ImageFilter.GaussianBlur(0.6)).save(path, format="JPEG", quality=55 if kind.speckle else 75,
                                                         dpi=dpi)
    else:
        path = work / f"{name}.tif"
        bilevel = image.point(lambda v: 255 if v > 150 else 0).convert("1")
        bilevel.save(path, format="TIFF", compression="group4" if kind.encoding == "g4" else "group3", dpi=dpi)
    return path


def _speckle(image: Image.Image, share: float, rng: random.Random) -> Image.Image:
    image = image.copy()
    pixels = image.load()
    width, height = image.size
    for _ in range(int(width * height * share)):
        x, y = rng.randrange(width - 1), rng.randrange(height - 1)
        pixels[x, y] = 0  # toner specks, sometimes 2 x 2
        if rng.random() < 0.3:
            pixels[x + 1, y] = pixels[x, y + 1] = pixels[x + 1, y + 1] = 0
    for _ in range(int(width * height * share / 5)):
        pixels[rng.randrange(width), rng.randrange(height)] = 255  # dropouts in the strokes
    return image


# --- scoring -----------------------------------------------------------------------------------

def words_of(text: str) -> list[str]:
    """Words compared: case folded, surrounding punctuation stripped, accents kept, empty tokens dropped."""
    out = []
    for token in unicodedata.normalize("NFKC", text).split():
        token = re.sub(r"^[^\w]+|[^\w]+$", "", token.casefold())
        if token:
            out.append(token)
    return out


def edit_distance(truth: list[str], read: list[str]) -> int:
    previous = list(range(len(read) + 1))
    for i, expected in enumerate(truth, 1):
        current = [i] + [0] * len(read)
        for j, got in enumerate(read, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (expected != got))
        previous = current
    return previous[-1]


def word_accuracy(truth: str, read: str) -> tuple[float, int, int]:
    """(accuracy, errors, words of the original); accuracy = 1 - errors / words, never below 0.

    Errors are counted regardless of reading order (a lab table read across both columns, row by
    row, is read right): max(words of the original, words read) - words in common (as multisets),
    so a misread word counts once, a lost word once and a word of noise once.
    """
    expected, got = Counter(words_of(truth)), Counter(words_of(read))
    total, count = sum(expected.values()), sum(got.values())
    errors = max(total, count) - sum((expected & got).values())
    return max(0.0, 1.0 - errors / max(1, total)), errors, total


def in_order_accuracy(truth: str, read: str) -> float:
    """1 - word error rate with the order kept (Levenshtein over words), for information."""
    expected = words_of(truth)
    return max(0.0, 1.0 - edit_distance(expected, words_of(read)) / max(1, len(expected)))


# --- the measurement ---------------------------------------------------------------------------

def evaluate(kinds: tuple[Kind, ...] = KINDS, *, samples: int = 2, seed: int = 12, jobs: int = 2,
             settings: Ocr | None = None, work: Path | None = None) -> dict:
    settings = settings or Ocr()
    own = work is None
    folder = Path(tempfile.mkdtemp(prefix="imr-ocr-eval-")) if own else Path(work)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        cases = []
        for kind in kinds:
            for sample in range(samples):
                rng = random.Random(f"{seed}-{kind.name}-{sample}")
                pdf, truth = CONTENT[kind.content](rng)
                cases.append((kind, truth, scan(pdf, kind, rng, folder, f"{kind.name}-{sample}")))

        def loader(path: Path):
            return lambda _allowance: (Image.open(path), None, None)

        started = time.monotonic()
        read = ocr.ocr_pages([loader(path) for _, _, path in cases], settings, jobs=jobs)
        seconds = time.monotonic() - started
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)
    per_kind: dict[str, dict] = {}
    groups: dict[str, list[int]] = {}
    for (kind, truth, _path), page in zip(cases, read.pages):
        accuracy, errors, total = word_accuracy(truth, page.text)
        entry = per_kind.setdefault(kind.name, {"group": kind.group, "describe": kind.describe, "pages": 0,
                                                "words": 0, "errors": 0, "worst_page": 1.0, "confidence": [],
                                                "in_order": [],
                                                "rotation_expected": kind.turn,
                                                "rotations": [], "deskew": [], "statuses": []})
        entry["pages"] += 1
        entry["words"] += total
        entry["errors"] += errors
        entry["worst_page"] = round(min(entry["worst_page"], accuracy), 4)
        entry["confidence"].append(page.confidence)
        entry["in_order"].append(round(in_order_accuracy(truth, page.text), 4))
        entry["rotations"].append(page.rotation)
        entry["deskew"].append(page.deskew_degrees)
        entry["statuses"].append(page.status)
        totals = groups.setdefault(kind.group, [0, 0])
        totals[0] += total
        totals[1] += errors
    for entry in per_kind.values():
        entry["accuracy"] = round(1 - entry["errors"] / max(1, entry["words"]), 4)
        entry["rotation_ok"] = all(r == entry["rotation_expected"] for r in entry["rotations"])
    summary = {}
    for group, (total, errors) in groups.items():
        accuracy = round(1 - errors / max(1, total), 4)
        summary[group] = {"accuracy": accuracy, "words": total, "target": TARGETS[group],
                          "met": accuracy >= TARGETS[group]}
    return {"schema": "imr-packet/ocr-eval@1", "engine": ocr.engine_version(settings.languages),
            "settings": ocr.settings_fingerprint(settings), "samples_per_kind": samples, "seed": seed,
            "pages": len(cases), "seconds": round(seconds, 1), "kinds": per_kind, "groups": summary}


def table(results: dict) -> str:
    rows = [("kind", "group", "pages", "words", "word accuracy", "worst page", "in order", "mean conf",
             "rotation ok")]
    for name, entry in results["kinds"].items():
        confidences = [c for c in entry["confidence"] if c is not None]
        mean = f"{sum(confidences) / len(confidences):.1f}" if confidences else "n/a"
        rows.append((name, entry["group"], str(entry["pages"]), str(entry["words"]), f"{entry['accuracy']:.2%}",
                     f"{entry['worst_page']:.2%}", f"{sum(entry['in_order']) / len(entry['in_order']):.2%}", mean,
                     "yes" if entry["rotation_ok"] else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for group, entry in results["groups"].items():
        lines.append(f"{group}: {entry['accuracy']:.2%} of {entry['words']} words "
                     f"(target >= {entry['target']:.0%}: {'met' if entry['met'] else 'NOT met'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ocr_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=3, help="pages per kind (default 3)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=2, help="tesseract processes side by side (default 2)")
    parser.add_argument("--only", default="", help="comma-separated kinds (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    parser.add_argument("--keep", type=Path, help="write the scans into this folder and keep them")
    parser.add_argument("--page-timeout", type=float, default=Ocr().page_timeout_seconds,
                        help="seconds one page may take (default: [ocr] page_timeout_seconds's default; "
                             "more on a busy machine, so that accuracy is measured, not the limit)")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - {kind.name for kind in KINDS}
    if unknown:
        parser.error(f"unknown kind(s): {', '.join(sorted(unknown))}")
    kinds = tuple(kind for kind in KINDS if not wanted or kind.name in wanted)
    limit = max(args.page_timeout, 1.0)
    settings = Ocr(page_timeout_seconds=limit, file_timeout_seconds=max(Ocr().file_timeout_seconds, limit))
    results = evaluate(kinds, samples=args.samples, seed=args.seed, jobs=args.jobs, settings=settings,
                       work=args.keep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\n{results['pages']} pages read in {results['seconds']} s; results in {args.out}")
    return 0 if all(entry["met"] for entry in results["groups"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
