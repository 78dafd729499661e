"""`python -m bench.incremental_writers`: pypdf 7's `PdfWriter(incremental=True)` against
`packet.pdf.incremental` on the same draft update (docs/performance.md has the figures).

The draft: DOCS documents of PAGES pages each (reportlab text pages, one category), built whole;
the update adds one 1-page document dated after all the others, so it lands at the end and no
Bates number moves (the case most favourable to pypdf: no stamp to redefine). Both sides start
from the same numbered page list and the same rendered front matter, and both pay for building
the new document's stamped, sanitised page with `packet.pdf.builder.Builder`.
- packet: `packet.pdf.incremental.build_draft_packet` (the new front matter, the new page, a new
  page tree, outline, labels, catalog and info appended to the old bytes);
- pypdf: `PdfWriter(old, incremental=True)`, the front matter pages replaced, the new page
  inserted, page labels set again, `write` (it appends only the changed objects). It does less
  than the packet side (no outline rebuilt): a lower bound for pypdf.
Must not: assert anything (a report); leave files outside its temporary folder.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from packet.config import load_config
from packet.model.case import CaseFacts, Person
from packet.model.context import BuildContext
from packet.model.models import MEDICAL_RECORDS, Deadline, Decision, Document
from packet.model.pagelist import number_pages
from packet.pipeline.numbering import write_numbered_packet
from packet.pdf.builder import Builder, DraftPacket, bates_label_parts, label_ranges
from packet.pdf.frontmatter import render_front_matter
from packet.pdf.incremental import build_draft_packet

DOCS = 40
PAGES = 25
RUNS = 5
TZ = dt.timezone(dt.timedelta(hours=-8))


def _pdf(path: Path, pages: int, title: str) -> Path:
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    for number in range(pages):
        c.drawString(72, 720, f"{title} page {number + 1}")
        for line in range(40):
            c.drawString(72, 690 - 14 * line, f"line {line} of the progress note for page {number + 1}")
        c.showPage()
    c.save()
    return path


def _document(path: Path, day: int) -> Document:
    return Document(source=path.name, sha256=f"{day:064d}", received_at=dt.datetime(2026, 11, 1, tzinfo=TZ),
                    title=Decision(path.stem, "bench"), date=Decision(dt.date(2025, 1, 1) + dt.timedelta(days=day), "bench"),
                    category=Decision(MEDICAL_RECORDS, "bench"), privileged=Decision(False, "default"),
                    withheld=Decision(False, "default"), identity=Decision("confirmed", "bench"),
                    pages=len(PdfReader(path).pages), pdf_path=path)


def _context(config) -> BuildContext:
    facts = CaseFacts(case_id="IMR-2026-000900", review_type="standard", dispute_type="medical_necessity",
                      dmhc_notice_received=dt.datetime(2026, 11, 25, 16, 0, tzinfo=TZ), disputed_service="MRI",
                      language="en", member=Person(name="Bench Member", address=("1 A St", "Sacramento, CA")),
                      provider=Person(name="Dr. Bench", address=("2 B St", "Sacramento, CA")))
    deadline = Deadline(review_type="standard", clock_start=facts.dmhc_notice_received,
                        due=dt.datetime(2026, 12, 2, 16, 0, tzinfo=TZ), rule="bench", calendar="bench")
    return BuildContext(config=config, facts=facts, deadline=deadline, submission=1, kind="draft",
                        generated_at=dt.datetime(2026, 11, 30, 10, 0, tzinfo=TZ), draft=True)


def _pypdf_update(old: Path, page_list, ctx: BuildContext, front_path: Path, new_placed) -> bytes:
    builder = Builder(ctx)  # the new document's page, stamped and sanitised as in a full build
    builder.add_document(new_placed, privileged=False)
    new_page_pdf = PdfReader(io.BytesIO(builder.finish(identity="0" * 64, title="new page")))
    writer = PdfWriter(str(old), incremental=True)
    front = PdfReader(front_path)
    generated = page_list.front_pages + len(page_list.sections)
    front_indexes = list(range(page_list.front_pages)) + [s.divider_page - 1 for s in page_list.sections]
    writer.insert_page(new_page_pdf.pages[0], new_placed.packet_first - 1)
    for index, page_number in enumerate(front_indexes[:generated]):
        target, source = writer.pages[page_number], front.pages[index]
        target.replace_contents(source.get_contents())
        target[NameObject("/Resources")] = source["/Resources"].clone(writer)
    bates = ctx.config.bates
    prefix = bates.prefix.format(case_id=ctx.facts.case_id)
    labels = [("Cover", None, None)] + [(f"Index-{n}", None, None) for n in range(1, page_list.front_pages)]
    for number, section in enumerate(page_list.sections):
        labels.append((f"Divider-{number + 1}", None, None))
        for placed in section.documents:
            labels += [bates_label_parts(prefix, bates.digits, n) for n in range(placed.bates_first, placed.bates_last + 1)]
    for start, end, prefix, style, number in label_ranges(labels):
        if style is None:
            writer.set_page_label(start, end, prefix=prefix)
        else:
            writer.set_page_label(start, end, style=style, prefix=prefix or None, start=number)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    try:
        config = load_config(None, flags={k: str(work / k) for k in ("inbox", "outbox", "archive", "state")},
                             environ={})
        ctx = _context(config)
        src = work / "src"
        src.mkdir()
        documents = [_document(_pdf(src / f"note {n:03d}.pdf", PAGES, f"Note {n}"), n) for n in range(DOCS)]
        new = _document(_pdf(src / "late note.pdf", 1, "Late note"), DOCS + 100)
        base_pdf, base_record = work / "base.pdf", work / "base.json"
        write_numbered_packet(documents, ctx, base_pdf, first_bates=1, previous=DraftPacket(base_pdf, base_record))
        all_documents = documents + [new]
        page_list = number_pages(all_documents, case_id=ctx.facts.case_id, submission=1, kind="draft",
                                 first_bates=1, front_pages=1, bates=config.bates)
        front_path = work / "front.pdf"
        front_pages = render_front_matter(ctx, page_list, front_path).front_pages
        page_list = number_pages(all_documents, case_id=ctx.facts.case_id, submission=1, kind="draft",
                                 first_bates=1, front_pages=front_pages, bates=config.bates)
        render_front_matter(ctx, page_list, front_path)
        new_placed = page_list.entries[-1]
        assert new_placed.document is new
        times: dict[str, list[float]] = {"packet": [], "pypdf": []}
        sizes: dict[str, int] = {}
        for _ in range(RUNS):
            for side in ("packet", "pypdf"):
                old, record = work / f"{side}.pdf", work / f"{side}.json"
                shutil.copy(base_pdf, old)
                shutil.copy(base_record, record)
                start = time.perf_counter()
                if side == "packet":
                    data = build_draft_packet(page_list, ctx, front_path, DraftPacket(old, record))
                else:
                    data = _pypdf_update(old, page_list, ctx, front_path, new_placed)
                times[side].append(time.perf_counter() - start)
                sizes[side] = len(data) - base_pdf.stat().st_size
                if side == "packet":
                    assert data.startswith(base_pdf.read_bytes()) and data.count(b"%%EOF") == 2, "not an update"
        pages = page_list.total_pages
        print(f"draft of {pages} pages ({DOCS} documents), previous file {base_pdf.stat().st_size} bytes; "
              f"update adds one 1-page document; median of {RUNS} runs")
        for side, values in times.items():
            print(f"  {side:6s}: {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f}); "
                  f"update {sizes[side]} bytes")
        print(f"python {sys.version.split()[0]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
