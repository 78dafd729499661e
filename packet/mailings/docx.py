"""The editable DOCX letter (python-docx), written deterministically.

Owns: markup blocks laid out as a Word document with the letterhead and taglines, and a zip
rewritten with fixed entry times so the same inputs give the same bytes.
Must not: choose what the letter says.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

from docx import Document as DocxDocument
from docx.oxml import OxmlElement
from docx.shared import Inches, Pt

from packet.mailings.markup import Block, Run
from packet.mailings.pages import BODY_SIZE, BOLD_SIZE, Letterhead

RTL_TEXT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


def build_docx(blocks: tuple[Block, ...], *, letterhead: Letterhead | None, taglines: list[str],
               created: dt.datetime, title: str, language: str, taglines_heading: str = "",
               draft: bool = False) -> bytes:
    document = DocxDocument()
    section = document.sections[0]
    section.page_width, section.page_height = Inches(8.5), Inches(11)
    section.left_margin = section.right_margin = Inches(0.875)
    section.top_margin = Inches(0.6)
    section.bottom_margin = Inches(0.75)
    if draft:  # the header repeats on every page, like the PDF watermark
        header = section.header.paragraphs[0]
        mark = header.add_run("DRAFT")
        mark.bold = True
        mark.font.size = Pt(20)
    normal = document.styles["Normal"]
    normal.font.name = "Arial"
    normal.font.size = Pt(BODY_SIZE)

    if letterhead is not None:
        p = document.add_paragraph()
        r = p.add_run(letterhead.plan_name)
        r.bold = True
        r.font.size = Pt(13)
        for line in letterhead.return_address:
            p = document.add_paragraph(line)
            p.paragraph_format.space_after = Pt(0)
            p.runs[0].font.size = Pt(9)
        spacer = document.add_paragraph()
        spacer.paragraph_format.space_after = Pt(28)
        for line in letterhead.recipient:
            p = document.add_paragraph(line)
            p.paragraph_format.space_after = Pt(0)
            p.paragraph_format.left_indent = Inches(0.0)
        document.add_paragraph()

    def add_runs(paragraph, runs: tuple[Run, ...]) -> None:
        for run in runs:
            if run.text == "\n":
                paragraph.add_run().add_break()
                continue
            r = paragraph.add_run(run.text)
            if run.bold:
                r.bold = True
                r.font.size = Pt(BOLD_SIZE)

    def add_heading(runs: tuple[Run, ...], size: float) -> None:
        paragraph = document.add_paragraph()
        for run in runs:
            r = paragraph.add_run(run.text)
            r.bold = True
            r.font.size = Pt(size)

    for block in blocks:
        if block.kind in ("h1", "h2"):
            add_heading(block.runs, BODY_SIZE + (4 if block.kind == "h1" else 1))
        elif block.kind == "p":
            add_runs(document.add_paragraph(), block.runs)
        elif block.kind == "bullet":
            add_runs(document.add_paragraph(style="List Bullet"), block.runs)
        elif block.kind == "pagebreak":
            document.add_page_break()
        elif block.kind in ("field", "check", "signature"):
            label = block.args[1] if len(block.args) > 1 else ""
            value = block.args[2] if len(block.args) > 2 and block.kind == "field" else ""
            document.add_paragraph(f"{label}: {value}" if value else f"{label}: ____________________")
    if taglines:
        if taglines_heading:
            p = document.add_paragraph()
            r = p.add_run(taglines_heading)
            r.bold = True
            r.font.size = Pt(BODY_SIZE + 1)
        for text in taglines:
            p = document.add_paragraph(text)
            p.runs[0].font.size = Pt(BODY_SIZE)  # never smaller than the letter's body text
            if RTL_TEXT.search(text):  # Arabic, Persian: a right-to-left paragraph, so Word orders it
                _right_to_left(p)

    props = document.core_properties
    props.author = "imr-packet"
    props.last_modified_by = "imr-packet"
    props.title = title
    props.language = language
    props.revision = 1
    stamp = created.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    props.created = stamp
    props.modified = stamp
    props.last_printed = stamp
    props.comments = ""
    props.keywords = ""
    buffer = io.BytesIO()
    document.save(buffer)
    return deterministic_zip(buffer.getvalue(), created)


def _right_to_left(paragraph) -> None:
    paragraph._p.get_or_add_pPr().append(OxmlElement("w:bidi"))
    for run in paragraph.runs:
        run._r.get_or_add_rPr().append(OxmlElement("w:rtl"))


def deterministic_zip(data: bytes, when: dt.datetime) -> bytes:
    """Rewrite a zip with fixed entry times and order, so the same inputs give the same bytes."""
    stamp = when.astimezone(dt.timezone.utc)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second // 2 * 2)
    source = zipfile.ZipFile(io.BytesIO(data))
    names = source.namelist()
    # [Content_Types].xml must stay first; keep python-docx's order otherwise (it is deterministic).
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o640 << 16
            info.create_system = 3
            target.writestr(info, source.read(name))
    return out.getvalue()
