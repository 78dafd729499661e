"""`imr-packet demo`: a sample case, every document generated in code, written into the inbox.

Owns: the demo case (a fictional member, documents in all three categories, a privileged memo, a
scanned fax without a text layer, a DOCX letter, a TXT note, and an encrypted PDF the service must
refuse), so a newcomer sees the whole flow within a minute of cloning.
Must not: read or change any other case, or write outside the new case folder. The case folder
appears whole: it is built in a hidden folder of the inbox (ignored by the service) and renamed
into place.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packet.config import Config
from packet.errors import UsageError
from packet.fsutil import DIR_MODE, atomic_write_bytes, atomic_write_text, ensure_dir
from packet.pdfread import PdfReader

DEMO_PREFIX = "DEMO"

# A fictional member and provider: no real person.
MEMBER_NAME = "Marisol T. Demoperson"
MEMBER_ID = "GP7700112233"
MEMBER_DOB = dt.date(1968, 3, 14)
MEMBER_ADDRESS = ("418 Camellia Court", "Davis, CA 95616")
PROVIDER_NAME = "Dr. Harold K. Bonewright"
PROVIDER_ADDRESS = ("Valley Spine Associates", "2200 Oak Avenue, Suite 4", "Davis, CA 95616")
PROVIDER_FAX = "(530) 555-0188"
DISPUTED_SERVICE = "Lumbar spinal fusion L4-L5 with instrumentation"
GRIEVANCE_NUMBER = "G-DEMO-0042"

# Files the demo writes, relative to the case folder (tests and the README rely on these names).
PROGRESS_NOTE_1 = "medical-records/Progress note 2026 spring - Dr Bonewright.pdf"
MRI_REPORT = "medical-records/MRI lumbar spine report.pdf"
PROGRESS_NOTE_TOP = "Physical therapy progress notes.pdf"
FAX_TIFF = "medical-records/Fax from Valley Spine Associates.tif"
PHONE_NOTE_TXT = "medical-records/Nurse telephone note.txt"
DENIAL_LETTER = "correspondence/Notice of action - denial letter.pdf"
GRIEVANCE_RESOLUTION = "correspondence/Grievance resolution letter.pdf"
LMN_DOCX = "Letter of medical necessity - Dr Bonewright.docx"
MD_REVIEW = "plan-statements/Medical director review.pdf"
STATEMENT_OF_REASONS = "plan-statements/Statement of reasons.pdf"
PRIVILEGED_MEMO = "privileged/Memo from counsel re IMR.pdf"
ENCRYPTED_PDF = "Lab results (password protected).pdf"

DEMO_FILES = (PROGRESS_NOTE_1, MRI_REPORT, PROGRESS_NOTE_TOP, FAX_TIFF, PHONE_NOTE_TXT, DENIAL_LETTER,
              GRIEVANCE_RESOLUTION, LMN_DOCX, MD_REVIEW, STATEMENT_OF_REASONS, PRIVILEGED_MEMO,
              ENCRYPTED_PDF)


@dataclass(frozen=True)
class _Dates:
    """Document dates relative to the demo's "now", so the story reads right whenever it runs."""

    now: dt.datetime

    def ago(self, days: int) -> dt.date:
        return self.now.date() - dt.timedelta(days=days)


def _identity_lines() -> list[str]:
    return [f"Patient: {MEMBER_NAME}", f"Member ID: {MEMBER_ID}",
            f"Date of birth: {MEMBER_DOB.strftime('%m/%d/%Y')}"]


def _pdf_bytes(pages: list[list[str]], *, title: str) -> bytes:
    """A text PDF: one page per list of lines, wrapped to the page width."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=letter, invariant=1)
    c.setTitle(title)
    width, height = letter
    for lines in pages:
        y = height - 72
        c.setFont("Helvetica", 11)
        for line in lines:
            for part in simpleSplit(line, "Helvetica", 11, width - 144) or [""]:
                if y < 72:
                    c.showPage()
                    c.setFont("Helvetica", 11)
                    y = height - 72
                c.drawString(72, y, part)
                y -= 15
        c.showPage()
    c.save()
    return buffer.getvalue()


def _progress_note(dates: _Dates) -> bytes:
    visits = [(dates.ago(200), "Low back pain radiating to the left leg for 8 months. Numbness in the "
               "left foot. Straight-leg raise positive on the left at 40 degrees."),
              (dates.ago(170), "No improvement after 6 weeks of physical therapy and NSAIDs. "
               "Epidural steroid injection planned."),
              (dates.ago(140), "Injection gave two weeks of relief only. Pain 8/10. Walking limited "
               "to one block. MRI ordered.")]
    pages = []
    for when, text in visits:
        pages.append(["Valley Spine Associates - PROGRESS NOTE", *_identity_lines(),
                      f"Date of service: {when.isoformat()}", f"Provider: {PROVIDER_NAME}", "",
                      "Subjective / Objective:", text, "",
                      "Assessment: lumbar spondylolisthesis L4-L5 with left L5 radiculopathy.",
                      "Plan: continue conservative care; follow up in 4 weeks."])
    return _pdf_bytes(pages, title="Progress notes")


def _mri_report(dates: _Dates) -> bytes:
    return _pdf_bytes([[
        "Sacramento Valley Imaging - RADIOLOGY REPORT", *_identity_lines(),
        f"Exam date: {dates.ago(130).isoformat()}", "Exam: MRI lumbar spine without contrast",
        f"Ordering physician: {PROVIDER_NAME}", "",
        "Findings: Grade 1 anterolisthesis of L4 on L5 with severe left foraminal stenosis and "
        "compression of the exiting left L5 nerve root. Mild disc desiccation at L3-L4.",
        "Impression: degenerative spondylolisthesis L4-L5 with severe left foraminal stenosis.",
        "Electronically signed by the radiologist."]], title="MRI lumbar spine report")


def _pt_notes(dates: _Dates) -> bytes:
    pages = []
    for number, days in enumerate((185, 178, 171, 164), 1):
        pages.append(["Davis Physical Therapy - PHYSICAL THERAPY PROGRESS NOTE", *_identity_lines(),
                      f"Visit {number} of 12, date of service {dates.ago(days).isoformat()}",
                      "Treatment: core stabilization, McKenzie extension, neural glides.",
                      "Progress note: pain unchanged at 7-8/10; tolerance for sitting 20 minutes.",
                      f"Therapist's progress note sent to {PROVIDER_NAME}."])
    return _pdf_bytes(pages, title="Physical therapy progress notes")


def _denial_letter(dates: _Dates, config: Config) -> bytes:
    return _pdf_bytes([[
        config.plan.name, *config.plan.address, "",
        f"Date: {dates.ago(100).isoformat()}", f"To: {MEMBER_NAME}", *MEMBER_ADDRESS,
        f"Member ID: {MEMBER_ID}    Date of birth: {MEMBER_DOB.strftime('%m/%d/%Y')}", "",
        "NOTICE OF ACTION - DENIAL OF SERVICE",
        f"We have denied the request from {PROVIDER_NAME} for: {DISPUTED_SERVICE}.",
        "Reason: the request does not meet the plan's criteria for medical necessity because "
        "conservative treatment for at least six months has not been documented.",
        "You may file a grievance (appeal) with the plan within 180 days of this letter.",
        f"If you have questions, call the plan at {config.plan.phone} (TTY {config.plan.tty})."]],
        title="Notice of action")


def _grievance_resolution(dates: _Dates, config: Config) -> bytes:
    return _pdf_bytes([[
        config.plan.name, *config.plan.address, "",
        f"Date: {dates.ago(20).isoformat()}", f"To: {MEMBER_NAME}", *MEMBER_ADDRESS,
        f"Member ID: {MEMBER_ID}    Grievance number: {GRIEVANCE_NUMBER}", "",
        "GRIEVANCE RESOLUTION LETTER",
        f"We have finished reviewing your grievance about the denial of {DISPUTED_SERVICE}. "
        "After review by a physician who was not involved in the first decision, the plan upholds "
        "the denial. This letter is the plan's written response to your grievance.",
        "You may apply to the Department of Managed Health Care for an Independent Medical Review "
        "(IMR). An application form and an envelope are enclosed.",
        f"Call the plan at {config.plan.phone}. The department's number is "
        f"{config.dmhc.help_center_phone} and its website is {config.dmhc.website}."]],
        title="Grievance resolution letter")


def _medical_director_review(dates: _Dates) -> bytes:
    return _pdf_bytes([[
        "MEDICAL DIRECTOR REVIEW - UTILIZATION MANAGEMENT", *_identity_lines(),
        f"Review date: {dates.ago(101).isoformat()}", f"Requested service: {DISPUTED_SERVICE}",
        f"Requesting provider: {PROVIDER_NAME}", "",
        "Clinical summary: 58-year-old with low back and left leg pain, grade 1 spondylolisthesis.",
        "Rationale for denial: the records show 4 weeks of physical therapy, not the 6 months of "
        "supervised conservative treatment the criteria require. No documentation of instability "
        "on flexion-extension films.",
        "Determination: not medically necessary at this time. Reviewer: plan medical director."]],
        title="Medical director review")


def _statement_of_reasons(dates: _Dates, config: Config) -> bytes:
    return _pdf_bytes([[
        f"{config.plan.name} - STATEMENT OF REASONS FOR THE DENIAL", *_identity_lines(),
        f"Date: {dates.ago(1).isoformat()}", f"Disputed service: {DISPUTED_SERVICE}", "",
        "The plan denied the requested service because the member has not completed an adequate "
        "trial of conservative therapy and imaging does not show instability. The plan's "
        "grievance reviewer upheld the denial. This statement explains the plan's reasons for the "
        "decision to deny the disputed health care service."]], title="Statement of reasons")


def _privileged_memo(dates: _Dates) -> bytes:
    return _pdf_bytes([[
        "ATTORNEY-CLIENT PRIVILEGED AND CONFIDENTIAL - ATTORNEY WORK PRODUCT",
        f"Date: {dates.ago(2).isoformat()}", "To: Grievance and Appeals Unit", "From: Office of the General Counsel",
        f"Re: {MEMBER_NAME}, member ID {MEMBER_ID}: the plan's position in Independent Medical Review", "",
        "Attorney-client privileged communication. This memo gives legal advice about the plan's "
        "position in the Independent Medical Review and must not be released to the enrollee.",
        "Our assessment of litigation risk and the documents to include follows."]],
        title="Memo from counsel")


def _encrypted_pdf(dates: _Dates) -> bytes:
    from pypdf import PdfWriter

    plain = _pdf_bytes([["LABORATORY RESULTS", *_identity_lines(),
                         f"Collected: {dates.ago(150).isoformat()}", "CBC, BMP: within normal limits."]],
                       title="Lab results")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _lmn_docx(dates: _Dates, config: Config) -> bytes:
    from docx import Document as DocxDocument

    doc = DocxDocument()
    doc.core_properties.title = "Letter of medical necessity"
    doc.add_paragraph(PROVIDER_NAME)
    for line in PROVIDER_ADDRESS:
        doc.add_paragraph(line)
    doc.add_paragraph(f"Date: {dates.ago(30).isoformat()}")
    doc.add_paragraph(f"To: {config.plan.name}, Grievance and Appeals Unit")
    doc.add_heading("Letter of Medical Necessity", level=1)
    doc.add_paragraph(f"Re: {MEMBER_NAME}, member ID {MEMBER_ID}, date of birth "
                      f"{MEMBER_DOB.strftime('%m/%d/%Y')}")
    doc.add_paragraph(
        f"I am writing in support of my patient's grievance and request for {DISPUTED_SERVICE}. "
        "My patient has had more than eight months of conservative care, including physical "
        "therapy, anti-inflammatory medication and an epidural steroid injection, without lasting "
        "relief. The MRI shows severe left foraminal stenosis with nerve root compression.")
    doc.add_paragraph(
        "In my medical opinion, the requested surgery is medically necessary to prevent permanent "
        "nerve damage and to restore my patient's ability to walk and work.")
    doc.add_paragraph(f"Sincerely, {PROVIDER_NAME}, MD, Orthopedic Spine Surgery")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _fax_tiff(dates: _Dates) -> bytes:
    """A 2-page fax at 204x196 dpi, CCITT Group 4, no text layer (the text is only pixels)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1728, 2156  # a fax page: 8.5 x 11 in at 204 x 196 dpi
    try:
        font = ImageFont.load_default(size=34)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    pages = []
    texts = [["FAX - Valley Spine Associates", f"From fax: {PROVIDER_FAX}",
              "To: Utilization Management, health plan",
              f"Date: {dates.ago(60).isoformat()}", f"Patient: {MEMBER_NAME}",
              f"DOB: {MEMBER_DOB.strftime('%m/%d/%Y')}", "Pages: 2", "",
              "Enclosed: operative consult note and", "flexion-extension X-ray report."],
             ["CONSULT NOTE (faxed copy)", f"Patient: {MEMBER_NAME}",
              "Flexion-extension films: 4 mm translation at L4-L5.", "Recommend L4-L5 fusion.",
              f"Signed: {PROVIDER_NAME}"]]
    for lines in texts:
        image = Image.new("1", (width, height), 1)
        draw = ImageDraw.Draw(image)
        y = 160
        for line in lines:
            draw.text((140, y), line, fill=0, font=font)
            y += 60
        # a little scanner noise along the edge, as on a real fax
        draw.line((100, 120, width - 100, 120), fill=0, width=3)
        pages.append(image)
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", compression="group4", save_all=True,
                  append_images=pages[1:], dpi=(204, 196))
    return buffer.getvalue()


def _phone_note(dates: _Dates) -> str:
    return "\n".join([
        "NURSE TELEPHONE NOTE", *_identity_lines(), f"Date: {dates.ago(45).isoformat()}", "",
        "Member called about the status of the surgery request. Reports pain 8/10, uses a cane, "
        "unable to work. Advised that the grievance is under review. Forwarded to case management.",
        "RN, Utilization Management", ""])


def _case_toml(case_id: str, now: dt.datetime) -> str:
    address = ", ".join(f'"{line}"' for line in MEMBER_ADDRESS)
    provider_address = ", ".join(f'"{line}"' for line in PROVIDER_ADDRESS)
    return f'''\
# A sample case written by `imr-packet demo`. The member and provider are fictional.
case_id = "{case_id}"
review_type = "standard"               # standard | expedited (24 hours)
dispute_type = "medical_necessity"     # medical_necessity | experimental | urgent_emergency_claim
dmhc_notice_received = {now.replace(microsecond=0).isoformat()}   # when the plan received DMHC's notice: starts the clock
disputed_service = "{DISPUTED_SERVICE}"
grievance_number = "{GRIEVANCE_NUMBER}"
language = "en"                        # en | es: the member's written language

[member]
name = "{MEMBER_NAME}"
member_id = "{MEMBER_ID}"
date_of_birth = {MEMBER_DOB.isoformat()}
address = [{address}]

[provider]
name = "{PROVIDER_NAME}"
address = [{provider_address}]
fax = "{PROVIDER_FAX}"
'''


def _overrides_toml() -> str:
    # The memo is privileged by its folder; no category rule fits a lawyer's memo, so a person
    # decides its category here (and the demo shows what overrides.toml looks like).
    return f'''\
# Decisions by a person, keyed by the file's path in this case folder. They beat every rule.
["{PRIVILEGED_MEMO}"]
category = "plan_statements"
title = "Memo from counsel on the plan's position"
'''


def _next_case_id(inbox: Path, year: int) -> str:
    pattern = re.compile(rf"^{DEMO_PREFIX}-{year}-(\d{{4,}})\Z")
    taken = [int(m.group(1)) for entry in (os.listdir(inbox) if inbox.is_dir() else [])
             if (m := pattern.match(entry))]
    return f"{DEMO_PREFIX}-{year}-{(max(taken) + 1 if taken else 1):04d}"


def write_demo_files(case_dir: Path, config: Config, now: dt.datetime) -> None:
    """Write every demo file into `case_dir` (which must exist)."""
    dates = _Dates(now)
    binaries = {
        PROGRESS_NOTE_1: _progress_note(dates),
        MRI_REPORT: _mri_report(dates),
        PROGRESS_NOTE_TOP: _pt_notes(dates),
        FAX_TIFF: _fax_tiff(dates),
        DENIAL_LETTER: _denial_letter(dates, config),
        GRIEVANCE_RESOLUTION: _grievance_resolution(dates, config),
        LMN_DOCX: _lmn_docx(dates, config),
        MD_REVIEW: _medical_director_review(dates),
        STATEMENT_OF_REASONS: _statement_of_reasons(dates, config),
        PRIVILEGED_MEMO: _privileged_memo(dates),
        ENCRYPTED_PDF: _encrypted_pdf(dates),
    }
    for relpath, data in binaries.items():
        atomic_write_bytes(case_dir / relpath, data)
    atomic_write_text(case_dir / PHONE_NOTE_TXT, _phone_note(dates))
    atomic_write_text(case_dir / "overrides.toml", _overrides_toml())
    atomic_write_text(case_dir / "case.toml", _case_toml(case_dir.name, now))


def write_demo(config: Config, *, now: dt.datetime | None = None) -> Path:
    """Write a sample case into the inbox and return its folder (DEMO-<year>-0001, then 0002, ...).

    `dmhc_notice_received` is `now` in the plan's time zone, so the deadline is live.
    """
    tz = config.calendar.tz
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    inbox = ensure_dir(config.paths.inbox)
    # Built in a hidden folder (names starting with "." are ignored by the service), then renamed,
    # so a running watcher never sees half a case.
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=inbox))
    try:
        os.chmod(staging, DIR_MODE)
        write_demo_files(staging, config, now)  # case.toml is rewritten below with the final id
        for _ in range(100):
            case_id = _next_case_id(inbox, now.year)
            target = inbox / case_id
            if target.exists():
                continue
            atomic_write_text(staging / "case.toml", _case_toml(case_id, now))
            try:
                os.rename(staging, target)
            except OSError:  # another writer took the name between the check and the rename
                continue
            return target
        raise UsageError("could not find a free demo case id in the inbox")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
