"""The envelope addressed to DMHC for experimental/investigational notices, and the mailroom sheet.

28 CCR 1300.70.4: with an experimental or investigational denial the plan sends the member an
envelope addressed to DMHC. `dmhc_envelope` is a #10 envelope (9.5 x 4.125 in) laid out for a
standard office printer's envelope feed (fed short edge first, printed face up, landscape): the
member's name and address as the return address at the top left, DMHC's address in the
delivery-address zone, a stamp box at the top right. `mailroom_sheet` is one letter-size page for
the mailroom (never mailed): what to print on which paper and what goes into which envelope.
Must not: put anything but the two addresses and the mailing hint on the envelope (it travels
through the post: no diagnosis, no service, no case facts).
"""

from __future__ import annotations

import io
from typing import Any

from reportlab.lib.pagesizes import letter
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph

from packet.mailings.pages import fonts, styles, text_xml
from packet.mailings.templates import recipient_lines

ENVELOPE_10 = (9.5 * inch, 4.125 * inch)  # USPS #10 business envelope, landscape
# USPS delivery-address zone: at least 1in from the left edge... in practice about 4in from the
# left and 2in from the bottom on a #10 envelope; the OCR read area is 0.5in above the bottom
# up to 2.75in, 1in in from each side.
ADDRESS_LEFT = 4.0 * inch
ADDRESS_TOP = 2.35 * inch  # from the bottom edge: the first line's baseline
RETURN_LEFT = 0.375 * inch
RETURN_TOP = 0.375 * inch  # from the top edge


def dmhc_envelope(config, facts, labels: dict[str, Any]) -> bytes:
    """One #10 envelope page: from the member, to DMHC. Deterministic bytes."""
    f = fonts()
    width, height = ENVELOPE_10
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=ENVELOPE_10, invariant=1)
    c.setTitle(labels["envelope"]["title"])
    c.setAuthor(config.plan.name)
    c.setCreator("imr-packet")
    c.setProducer("imr-packet")
    y = height - RETURN_TOP - 9
    c.setFont(f.regular, 9)
    for line in recipient_lines(facts.member):
        c.drawString(RETURN_LEFT, y, line)
        y -= 11
    # Stamp box: the member adds postage unless the plan prints a postage-paid indicia here.
    box = 0.9 * inch
    c.setLineWidth(0.5)
    c.rect(width - RETURN_LEFT - box, height - RETURN_TOP - box, box, box)
    c.setFont(f.regular, 7)
    for index, line in enumerate(labels["envelope"]["stamp"].split("\n")):
        c.drawCentredString(width - RETURN_LEFT - box / 2, height - RETURN_TOP - box / 2 + 4 - 9 * index, line)
    c.setFont(f.regular, 12)
    y = ADDRESS_TOP
    for line in config.dmhc.address:
        c.drawString(ADDRESS_LEFT, y, line)
        y -= 15
    c.setFont(f.bold, 9)
    c.drawString(RETURN_LEFT, 0.45 * inch, labels["envelope"]["hint"])
    c.showPage()
    c.save()
    return buffer.getvalue()


def mailroom_sheet(config, facts, labels: dict[str, Any], *, notice_pages: int, files: dict[str, str]) -> bytes:
    """The mailroom's instructions for one notice mailing (English: the mailroom's language)."""
    sheet = labels["mailroom"]
    st = styles()
    width, height = letter
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=letter, invariant=1)
    c.setTitle(sheet["title"])
    c.setCreator("imr-packet")
    c.setProducer("imr-packet")
    lines = [f"<b>{text_xml(sheet['title'])}</b>", text_xml(f"{sheet['case']}: {facts.case_id}"), ""]
    values = {"notice_pages": notice_pages, "member": facts.member.name, **files}
    steps = list(sheet["steps"])
    if "representative_notice" in files:  # the letter's "cc": mailed on its own
        steps.append(sheet["representative_step"])
    for step in steps:
        lines.append("\u2022 " + text_xml(step.format(**values)))
    lines += ["", text_xml(sheet["never"])]
    y = height - inch
    for line in lines:
        para = Paragraph(line or "&nbsp;", st.h1 if line.startswith("<b>") else st.body)
        _, h = para.wrap(width - 2 * inch, height)
        para.drawOn(c, inch, y - h)
        y -= h + 6
    c.showPage()
    c.save()
    return buffer.getvalue()
