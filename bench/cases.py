"""Reference cases for the benchmark, generated in code (no binary file is committed).

Owns: deterministic case folders of a stated size: N pages in M documents spread over the three
hint folders (mostly text pages, some image-only "scanned" pages), a mixed case of fax TIFFs and
DOCX letters, and the one-page document the incremental measurement adds. Every generated file
records its page count, so a test can check the generator says the truth.
Must not: time anything, or import the service beyond `packet.model.case` (to keep case.toml valid).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

if TYPE_CHECKING:
    from PIL.Image import Image

MEMBER_NAME = "Benchmark A. Member"
MEMBER_ID = "BM000111222"
MEMBER_DOB = "1959-07-21"

CASE_TOML = f'''\
case_id = "{{case_id}}"
review_type = "expedited"
dispute_type = "medical_necessity"
dmhc_notice_received = 2026-11-25T16:10:00-08:00
disputed_service = "Lumbar spinal fusion L4-L5"
grievance_number = "G-BENCH-0001"
language = "en"

[member]
name = "{MEMBER_NAME}"
member_id = "{MEMBER_ID}"
date_of_birth = {MEMBER_DOB}
address = ["1 Benchmark Way", "Sacramento, CA 95814"]

[provider]
name = "Dr. Bench Marker"
address = ["Bench Clinic", "2 Clinic Road", "Sacramento, CA 95814"]
'''

# (hint folder, share of documents, kinds of document named after what the rules look for)
FOLDERS = (
    ("medical-records", 0.70, ("Progress notes", "Consult note", "MRI report", "Lab results",
                               "Physical therapy notes", "Hospital discharge summary")),
    ("correspondence", 0.15, ("Denial letter", "Grievance resolution letter", "Member appeal letter",
                              "Letter of medical necessity")),
    ("plan-statements", 0.15, ("Medical director review", "UM reviewer notes", "Statement of reasons")),
)

WORDS = ("patient reports low back pain radiating to the left leg with numbness in the foot and "
         "difficulty walking more than one block physical examination shows reduced range of motion "
         "straight leg raise positive on the left reflexes diminished at the ankle imaging reviewed "
         "assessment lumbar spondylolisthesis with radiculopathy plan continue physical therapy "
         "follow up in four weeks medication reconciled no known drug allergies vital signs stable").split()


@dataclass(frozen=True)
class CaseSpec:
    name: str  # the case id
    pages: int
    documents: int
    seed: int = 7
    scanned_share: float = 0.1  # share of documents whose pages are images without a text layer


@dataclass(frozen=True)
class GeneratedFile:
    relpath: str
    pages: int
    kind: str  # pdf-text | pdf-scanned | tiff | docx


@dataclass(frozen=True)
class GeneratedCase:
    case_dir: Path
    files: tuple[GeneratedFile, ...]

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.files)

    @property
    def paths(self) -> list[Path]:
        return [self.case_dir / f.relpath for f in self.files]


def page_split(total: int, count: int, rng: random.Random) -> list[int]:
    """`count` document lengths, each at least 1, adding up to `total`, uneven like a real case."""
    if count < 1 or total < count:
        raise ValueError("need at least one page per document")
    weights = [rng.paretovariate(1.5) for _ in range(count)]
    scale = (total - count) / sum(weights)
    sizes = [1 + int(w * scale) for w in weights]
    # hand out what rounding left over, largest remainders first
    remainders = sorted(range(count), key=lambda i: -(weights[i] * scale - int(weights[i] * scale)))
    for i in remainders[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _text_lines(rng: random.Random, count: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(9, 13))) for _ in range(count)]


def _scan_image(rng: random.Random) -> Image:
    """A 1-bit page at 100 dpi with strokes that look like handwriting-free typed text blocks."""
    from PIL import Image, ImageDraw

    image = Image.new("1", (850, 1100), 1)
    draw = ImageDraw.Draw(image)
    y = 90
    while y < 1000:
        x = 80
        while x < 760:
            length = rng.randint(20, 70)
            draw.rectangle((x, y, min(x + length, 770), y + 9), fill=0)
            x += length + rng.randint(8, 16)
        y += rng.randint(22, 30)
    return image


def write_pdf(path: Path, pages: int, rng: random.Random, *, title: str, scanned: bool = False,
              header: str = "") -> Path:
    """A PDF of `pages` letter pages: text with the member's identity, or page-sized scans."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.setTitle(title)
    width, height = letter
    scans = [ImageReader(_scan_image(rng)) for _ in range(3)] if scanned else []
    for number in range(1, pages + 1):
        if scanned:
            c.drawImage(scans[number % len(scans)], 0, 0, width=width, height=height)
        else:
            y = height - 60
            c.setFont("Helvetica-Bold", 12)
            c.drawString(60, y, f"{header or title} - page {number} of {pages}")
            y -= 18
            c.setFont("Helvetica", 10)
            for line in (f"Patient: {MEMBER_NAME}   Member ID: {MEMBER_ID}   DOB: {MEMBER_DOB}",
                         *_text_lines(rng, 40)):
                c.drawString(60, y, line)
                y -= 14
        c.showPage()
    c.save()
    return path


def new_case_folder(root: Path, case_id: str) -> Path:
    case_dir = Path(root) / case_id
    case_dir.mkdir(parents=True, exist_ok=False)
    (case_dir / "case.toml").write_text(CASE_TOML.format(case_id=case_id), encoding="utf-8")
    return case_dir


def generate_pdf_case(root: Path, spec: CaseSpec) -> GeneratedCase:
    """`spec.pages` pages in `spec.documents` PDFs under `root/<spec.name>/`."""
    rng = random.Random(spec.seed)
    case_dir = new_case_folder(root, spec.name)
    sizes = page_split(spec.pages, spec.documents, rng)
    scanned = set(rng.sample(range(spec.documents), round(spec.documents * spec.scanned_share)))
    files = []
    bounds, acc = [], 0.0
    for folder, share, kinds in FOLDERS:
        acc += share
        bounds.append((acc, folder, kinds))
    for index, pages in enumerate(sizes):
        position = (index + 0.5) / spec.documents
        folder, kinds = next((f, k) for limit, f, k in bounds if position <= limit + 1e-9)
        title = kinds[index % len(kinds)]
        relpath = f"{folder}/{title} {index + 1:04d}.pdf"
        is_scanned = index in scanned
        write_pdf(case_dir / relpath, pages, rng, title=title, scanned=is_scanned)
        files.append(GeneratedFile(relpath, pages, "pdf-scanned" if is_scanned else "pdf-text"))
    return GeneratedCase(case_dir=case_dir, files=tuple(files))


def add_one_page_document(case: GeneratedCase, number: int) -> GeneratedCase:
    """The new record of the incremental measurement: a 1-page progress note."""
    relpath = f"medical-records/Late progress note {number:03d}.pdf"
    write_pdf(case.case_dir / relpath, 1, random.Random(1000 + number), title="Progress note",
              header=f"Progress note (late record {number})")
    return GeneratedCase(case_dir=case.case_dir, files=case.files + (GeneratedFile(relpath, 1, "pdf-text"),))


def write_fax_tiff(path: Path, pages: int, rng: random.Random) -> Path:
    """A multi-page CCITT G4 fax at 204x196 dpi with no text layer."""
    from PIL import Image

    frames = []
    for _ in range(pages):
        small = _scan_image(rng)  # 850x1100 at 100 dpi -> a fax-sized page
        frames.append(small.resize((1728, 2156), Image.NEAREST))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="TIFF", compression="group4", save_all=True, append_images=frames[1:],
                   dpi=(204, 196))
    return path


def write_docx(path: Path, pages: int, rng: random.Random, *, title: str) -> Path:
    """A letter of `pages` pages (explicit page breaks), with the member's identity."""
    from docx import Document as DocxDocument
    from docx.enum.text import WD_BREAK

    doc = DocxDocument()
    doc.core_properties.title = title
    for number in range(1, pages + 1):
        doc.add_heading(f"{title} - page {number}", level=2)
        doc.add_paragraph(f"Re: {MEMBER_NAME}, member ID {MEMBER_ID}, date of birth {MEMBER_DOB}")
        for _ in range(4):
            doc.add_paragraph(" ".join(_text_lines(rng, 3)))
        if number < pages:
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    doc.save(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def generate_mixed_case(root: Path, name: str, *, tiffs: int = 10, tiff_pages: int = 4, docx: int = 6,
                        docx_pages: int = 2, seed: int = 11) -> GeneratedCase:
    """Scanned fax TIFFs (medical records) and DOCX letters (correspondence): conversion cost."""
    rng = random.Random(seed)
    case_dir = new_case_folder(root, name)
    files = []
    for index in range(tiffs):
        relpath = f"medical-records/Fax {index + 1:03d}.tif"
        write_fax_tiff(case_dir / relpath, tiff_pages, rng)
        files.append(GeneratedFile(relpath, tiff_pages, "tiff"))
    for index in range(docx):
        relpath = f"correspondence/Letter of medical necessity {index + 1:03d}.docx"
        write_docx(case_dir / relpath, docx_pages, rng, title="Letter of medical necessity")
        files.append(GeneratedFile(relpath, docx_pages, "docx"))
    return GeneratedCase(case_dir=case_dir, files=tuple(files))
