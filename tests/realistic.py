"""Realistic case folders, built in code the way records clerks actually drop them.

Four cases for tests/pipeline/test_realistic.py (QA of the whole flow as clerks, the mailroom and auditors
use it):

1. `STANDARD` (IMR-2026-004211): standard medical-necessity dispute, English. Messy names
   ("scan0001.pdf", "DENIAL LTR - Garcia.pdf", "MR Lumbar 08.14.26.pdf"), a scanned PDF with no
   text layer, a multi-page G4 fax TIFF in a hint folder, a DOCX appeal letter, an RTF letter of
   medical necessity, a TXT phone note, a privileged memo from counsel loose in the folder (found by
   its text), a faxed PT record with ANOTHER patient's page inside, an encrypted lab PDF, and junk
   (".~lock...#", "Thumbs.db", a half-copied "big.pdf.part").
2. `SPANISH` (IMR-2026-004377): Spanish-speaking member (`language = "es"`) with a daughter as
   `[representative]`; a JPEG phone photo of a letter (EXIF-rotated), a legacy .doc appeal letter
   in Spanish (converted with LibreOffice), a psychotherapy note, licensed InterQual criteria.
3. `EXPEDITED` (IMR-2026-004502): expedited experimental-therapy dispute (no grievance response
   needed), a peer-review committee record, a pathology report, a letter of support (DOCX).
4. `SUPPLEMENT` (IMR-2026-004610): a plain case sealed, then late records dropped (a second
   submission), including a duplicate of an already sent document.

Each builder writes the case folder and returns a `RealisticCase` with what a careful person
expects of every file (category, flags, identity, date, title words, or refusal / junk), plus the
overrides.toml a clerk writes after reading the first `_STATUS.txt`.
Every person here is fictional.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from docx import Document as DocxDocument
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen import canvas

FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
MONO_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"

MEDICAL = "medical_records"
CORRESPONDENCE = "correspondence"
PLAN = "plan_statements"
REVIEW = "needs_review"


@dataclass(frozen=True)
class Expect:
    """What a careful person expects of one file of a case folder."""

    category: str | None = None  # None: not a document (refused or junk)
    privileged: bool = False
    withheld: bool = False  # withheld from the member (privileged or by law)
    identity: str | None = None  # confirmed | not_found | mismatch (None: not checked)
    date: dt.date | None = None
    title_has: str | None = None  # words the title must contain (case-insensitive)
    pages: int | None = None
    refused: str | None = None  # reason code when the service must refuse the file
    junk: bool = False  # ignored and never touched
    grievance_response: bool = False
    first_category: str | None = None  # what the rules say before the clerk's overrides (if different)


@dataclass(frozen=True)
class RealisticCase:
    case_id: str
    case_dir: Path
    expected: dict[str, Expect]  # relpath -> expectation, after the clerk's overrides
    overrides: str = ""  # overrides.toml the clerk writes after reading _STATUS.txt
    corrected: dict[str, list[list[str]]] = field(default_factory=dict)  # text PDFs the clerk drops with the overrides
    notice: dt.datetime | None = None
    review_type: str = "standard"
    dispute_type: str = "medical_necessity"
    language: str = "en"
    member_name: str = ""
    member_id: str = ""
    member_dob: dt.date | None = None
    representative: str | None = None

    def documents(self) -> dict[str, Expect]:
        return {k: v for k, v in self.expected.items() if v.category is not None}

    def apply_clerk_fixes(self) -> None:
        """What the clerk does after reading _STATUS.txt: write overrides.toml, drop corrected copies."""
        if self.overrides:
            (self.case_dir / "overrides.toml").write_text(self.overrides, encoding="utf-8")
        for relpath, pages in self.corrected.items():
            text_pdf(self.case_dir / relpath, pages)


# ------------------------------------------------------------------------------------ file makers

def _font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(MONO_FILE if mono else FONT_FILE, size)


def text_pdf(path: Path, pages: list[list[str]], *, title: str | None = None, author: str | None = None,
             pagesize=letter, font_size: float = 10.5) -> Path:
    """A PDF with a text layer, as a practice-management or plan system writes it (lines wrap)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=pagesize, invariant=1)
    if title:
        c.setTitle(title)
    if author:
        c.setAuthor(author)
    width, height = pagesize
    for lines in pages:
        y = height - 60
        for line in lines:
            bold = line.startswith("**")
            text = line.strip("*")
            face = "Helvetica-Bold" if bold else "Helvetica"
            c.setFont(face, font_size + (1.5 if bold else 0))
            for part in simpleSplit(text, face, font_size, width - 130) or [""]:
                c.drawString(65, y, part)
                y -= font_size * 1.4
        c.showPage()
    c.save()
    return path


def _page_image(lines: list[str], *, size=(1700, 2200), font_size=30, mode="L", margin=140,
                skew: float = 0.0, background=255, ink=0) -> Image.Image:
    image = Image.new("L", size, background)
    draw = ImageDraw.Draw(image)
    font = _font(font_size)
    y = margin
    for line in lines:
        draw.text((margin, y), line, fill=ink, font=font)
        y += int(font_size * 1.45)
    if skew:
        image = image.rotate(skew, resample=Image.BICUBIC, fillcolor=background, expand=False)
    if mode == "1":
        image = image.point(lambda v: 255 if v > 160 else 0).convert("1")
    return image


def scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A scanner's PDF: one greyscale image per page at 200 dpi, slightly skewed, no text layer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    for number, lines in enumerate(pages):
        image = _page_image(lines, skew=0.6 if number % 2 == 0 else -0.4)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
        buffer.seek(0)
        c.drawImage(ImageReader(buffer), 0, 0, width=letter[0], height=letter[1])
        c.showPage()
    c.save()
    return path


def fax_tiff(path: Path, pages: list[list[str]]) -> Path:
    """A fax server's multi-page TIFF: 1-bit, CCITT G4, 204 x 196 dpi, no text layer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [_page_image(lines, size=(1728, 2156), font_size=34, mode="1", margin=120) for lines in pages]
    frames[0].save(path, format="TIFF", compression="group4", save_all=True, append_images=frames[1:],
                   dpi=(204, 196))
    return path


def phone_photo(path: Path, lines: list[str], *, exif_rotated: bool = True) -> Path:
    """A phone photo of a paper letter: a JPEG, off-white paper on a dark table, stored sideways
    with EXIF orientation 6 (as phones store portrait shots) and a nonsense 72 dpi."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    photo = Image.new("RGB", (1500, 2000), (60, 52, 45))
    paper = _page_image(lines, size=(1300, 1800), font_size=26, margin=90, skew=1.2, background=236, ink=30)
    photo.paste(paper.convert("RGB"), (100, 100))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if exif_rotated:
        photo = photo.transpose(Image.Transpose.ROTATE_90)  # stored sideways ...
        exif[0x0112] = 6  # ... and the viewer turns it upright
    photo.save(path, format="JPEG", quality=82, dpi=(72, 72), exif=exif.tobytes())
    return path


def docx_file(path: Path, paragraphs: list[str], *, title: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = DocxDocument()
    for text in paragraphs:
        document.add_paragraph(text)
    document.core_properties.title = title or ""
    document.core_properties.author = "user"
    document.save(str(path))
    return path


def _rtf_escape(text: str) -> str:
    out = []
    for ch in text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}"):
        out.append(ch if ord(ch) < 128 else f"\\u{ord(ch)}?")
    return "".join(out)


def rtf_file(path: Path, paragraphs: list[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"\\pard\\sa160 {_rtf_escape(p)}\\par" for p in paragraphs)
    path.write_text("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}\\f0\\fs24\n" + body + "\n}",
                    encoding="ascii")
    return path


def doc_file(path: Path, paragraphs: list[str]) -> Path:
    """A legacy Word 97 .doc, made from a DOCX with LibreOffice (as an old office PC would save it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:  # no LibreOffice: an RTF under a .doc name (Word opens those too)
        return rtf_file(path, paragraphs)
    with tempfile.TemporaryDirectory(prefix="realistic-doc-") as scratch:
        scratch_path = Path(scratch)
        source = docx_file(scratch_path / "letter.docx", paragraphs)
        subprocess.run([soffice, "--headless", "--norestore", "--nologo",
                        f"-env:UserInstallation={(scratch_path / 'profile').as_uri()}",
                        "--convert-to", "doc", "--outdir", str(scratch_path / "out"), str(source)],
                       check=True, capture_output=True, timeout=180)
        shutil.copyfile(scratch_path / "out" / "letter.doc", path)
    return path


def encrypted_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A lab portal's PDF protected with an open password."""
    path = Path(path)
    plain = io.BytesIO()
    text_pdf(path, pages)
    writer = PdfWriter(clone_from=PdfReader(path))
    writer.encrypt(user_password="Quest2026!", owner_password="owner-only", algorithm="AES-256")
    writer.write(plain)
    path.write_bytes(plain.getvalue())
    return path


def junk(case_dir: Path) -> dict[str, Expect]:
    """What Windows, LibreOffice and an interrupted copy leave behind."""
    (case_dir / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    (case_dir / ".~lock.appeal letter from member.docx#").write_text(
        ",DOMAIN/jclerk,CLERK-PC07,27.11.2026 08:14,file:///C:/Users/jclerk/AppData/Roaming/LibreOffice/4;")
    (case_dir / "big.pdf.part").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog")
    return {"Thumbs.db": Expect(junk=True), ".~lock.appeal letter from member.docx#": Expect(junk=True),
            "big.pdf.part": Expect(junk=True)}


def write_case_toml(case_dir: Path, text: str) -> None:
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "case.toml").write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------------ case 1

PLAN_NAME = "Golden Poppy Health Plan"


def standard_case(inbox: Path) -> RealisticCase:
    case_id = "IMR-2026-004211"
    case_dir = Path(inbox) / case_id
    name, mid, dob = "Daniel R. Garcia", "K44019283", dt.date(1958, 2, 17)
    who = [f"Patient: {name}", f"DOB: {dob:%m/%d/%Y}", f"Member ID: {mid}"]
    notice = dt.datetime(2026, 11, 24, 15, 42, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    write_case_toml(case_dir, f"""\
# filled in by J. Clerk from the DMHC notice
case_id = "{case_id}"
review_type = "standard"
dispute_type = "medical_necessity"
dmhc_notice_received = 2026-11-24T15:42:00-08:00
disputed_service = "Lumbar spinal fusion L4-L5 with instrumentation"
grievance_number = "G-2026-1187"
language = "en"

[member]
name = "{name}"
member_id = "{mid}"
date_of_birth = {dob.isoformat()}
address = ["2219 W. Alhambra Rd, Apt 14B", "Sacramento, CA 95817-2204"]

[provider]
name = "Dr. Susan Lee, MD"
address = ["River City Spine & Orthopaedics", "4400 J Street, Suite 210", "Sacramento, CA 95819"]
fax = "(916) 555-0142"
""")
    expected: dict[str, Expect] = {}

    text_pdf(case_dir / "DENIAL LTR - Garcia.pdf", [[
        PLAN_NAME, "Utilization Management Department", "P.O. Box 1900, Sacramento, CA 95812", "",
        "September 3, 2026", "", name, "2219 W. Alhambra Rd, Apt 14B", "Sacramento, CA 95817-2204", "",
        f"Member ID: {mid}", "Authorization #: UM-26-884120", "",
        "**NOTICE OF ACTION", "",
        "Dear Mr. Garcia:",
        "We reviewed the request from Dr. Susan Lee for lumbar spinal fusion L4-L5 with instrumentation. "
        "We have denied this request. The request does not meet the plan's criteria because the records "
        "do not show six months of conservative treatment, including physical therapy.",
        "If you disagree with this decision, you may file a grievance (appeal) with us within 180 days.",
        "The California Department of Managed Health Care is responsible for regulating health care "
        "service plans. If you have a grievance against your health plan, you should first telephone "
        "your health plan at 1-800-555-0199.",
        "Sincerely,", "Marcus Oyelaran, MD, Medical Director"]],
        title="Microsoft Word - NOA_template_v7.docx")
    expected["DENIAL LTR - Garcia.pdf"] = Expect(CORRESPONDENCE, identity="confirmed", date=dt.date(2026, 9, 3),
                                                 title_has="notice of action", pages=1)

    text_pdf(case_dir / "MR Lumbar 08.14.26.pdf", [[
        "Sacramento Valley Imaging - RADIOLOGY REPORT", *who,
        "Exam date: 08/14/2026", "Exam: MRI LUMBAR SPINE WITHOUT CONTRAST",
        "Ordering physician: Susan Lee, MD", "",
        "Technique: Multiplanar multisequence MR images of the lumbar spine without contrast.",
        "Comparison: None.",
        "Findings: Grade 1 anterolisthesis of L4 on L5 with moderate bilateral foraminal narrowing. "
        "Disc bulge at L4-L5 with moderate central canal stenosis. Mild facet arthropathy L3-S1.",
        "Impression: Grade 1 spondylolisthesis L4-L5 with moderate central and foraminal stenosis.",
        "Electronically signed by: Amir Haddad, MD  08/15/2026 07:12"]])
    expected["MR Lumbar 08.14.26.pdf"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 8, 14),
                                                title_has="radiology report", pages=1)

    scanned_pdf(case_dir / "scan0001.pdf", [
        ["River City Spine & Orthopaedics", "PROGRESS NOTE", *who, "Date of service: 07/30/2026", "",
         "Chief complaint: low back pain with left leg pain.", "Completed 8 weeks of PT in spring.",
         "Assessment: spondylolisthesis L4-L5, radiculopathy.", "Plan: request L4-L5 fusion."],
        ["River City Spine & Orthopaedics", "PROGRESS NOTE (continued)", *who, "",
         "Exam: SLR positive left at 45 degrees. EHL 4/5 left.", "Signed: Susan Lee, MD"]])
    # Read by OCR: the member's identifiers and the note's title decide as typed text would.
    expected["scan0001.pdf"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 7, 30),
                                      title_has="progress note", pages=2)

    fax_tiff(case_dir / "medical-records" / "Fax from Dr Lee 3-12.tif", [
        ["FAX  03/12/2026 10:41  FROM: RIVER CITY SPINE  TO: GOLDEN POPPY UM  P.1/3",
         "", "Physical therapy plan of care", *who, "Visits: 12 authorized"],
        ["FAX  03/12/2026 10:41  P.2/3", "", "PT daily notes, visits 1-6", "Pain 7/10, ROM limited"],
        ["FAX  03/12/2026 10:42  P.3/3", "", "PT daily notes, visits 7-12", "Minimal improvement"]])
    expected["medical-records/Fax from Dr Lee 3-12.tif"] = Expect(  # read by OCR: the fax header's date
        MEDICAL, identity="confirmed", date=dt.date(2026, 3, 12), pages=3)

    docx_file(case_dir / "appeal letter from member.docx", [
        "Daniel R. Garcia", "2219 W. Alhambra Rd, Apt 14B", "Sacramento, CA 95817-2204", "",
        "September 20, 2026", "", f"{PLAN_NAME}", "Attn: Grievances and Appeals", "",
        f"Re: Member ID {mid} - authorization UM-26-884120", "",
        "To whom it may concern,",
        "I am writing to appeal your decision to deny my back surgery. I did physical therapy for "
        "two months this spring and it did not help. I cannot walk more than a block and I had to stop "
        "working. Dr. Lee says the fusion is the only thing left. Please reconsider.",
        "Thank you,", "Daniel Garcia"])
    expected["appeal letter from member.docx"] = Expect(CORRESPONDENCE, identity="confirmed",
                                                        date=dt.date(2026, 9, 20), pages=1)

    rtf_file(case_dir / "Dr Lee LOMN.rtf", [
        "River City Spine & Orthopaedics", "4400 J Street, Suite 210, Sacramento, CA 95819", "",
        "October 14, 2026", "",
        "Re: Letter of Medical Necessity - Daniel R. Garcia, DOB 02/17/1958", "",
        "Dear Medical Director:",
        "I am writing in support of my patient's request for L4-L5 decompression and fusion. He has "
        "grade 1 spondylolisthesis with stenosis on MRI of 08/14/2026 and has failed more than six months "
        "of conservative care, including physical therapy, NSAIDs and an epidural steroid injection.",
        "Sincerely,", "Susan Lee, MD, Orthopaedic Spine Surgery"])
    expected["Dr Lee LOMN.rtf"] = Expect(CORRESPONDENCE, identity="confirmed", date=dt.date(2026, 10, 14),
                                         title_has="medical necessity")

    text_pdf(case_dir / "UM notes (internal).pdf", [[
        "**UTILIZATION MANAGEMENT REVIEW NOTES", f"Member: {name}   Member ID: {mid}",
        "Request: L4-L5 posterior lumbar fusion   Auth #: UM-26-884120", "",
        "08/28/2026 RN reviewer: clinicals received; PT notes cover 8 weeks only.",
        "09/02/2026 Physician reviewer: criteria not met: conservative care under 6 months. "
        "Determination: deny. Peer-to-peer offered to Dr. Lee, not scheduled.",
        "09/03/2026 NOA mailed to member and provider."]])
    expected["UM notes (internal).pdf"] = Expect(PLAN, identity="confirmed", date=dt.date(2026, 8, 28),
                                                 title_has="utilization management")

    text_pdf(case_dir / "correspondence" / "Grievance Resolution Ltr 10-02-26.pdf", [[
        PLAN_NAME, "Grievances and Appeals", "", "October 2, 2026", "", name, "2219 W. Alhambra Rd, Apt 14B",
        "Sacramento, CA 95817-2204", "", f"Member ID: {mid}   Grievance #: G-2026-1187", "",
        "Dear Mr. Garcia:",
        "We have completed our review of your grievance about the denial of lumbar spinal fusion. "
        "A board-certified orthopaedic surgeon reviewed your records. We have upheld our original decision.",
        "You may also be eligible for an Independent Medical Review (IMR).", "Sincerely,",
        "Grievance Coordinator"]])
    expected["correspondence/Grievance Resolution Ltr 10-02-26.pdf"] = Expect(
        CORRESPONDENCE, identity="confirmed", date=dt.date(2026, 10, 2), grievance_response=True)

    text_pdf(case_dir / "Memo re Garcia IMR.pdf", [[
        "PRIVILEGED & CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION",
        "MEMORANDUM", "To: Grievance and Appeals Manager", "From: Office of the General Counsel",
        "Date: November 25, 2026", f"Re: IMR application of {name} (G-2026-1187)", "",
        "You asked whether the denial can be defended at IMR. Our assessment of the litigation risk "
        "follows. The PT documentation is thin; consider whether the 6-month rule was applied consistently.",
        ], ["Page 2 of 2", "Recommendation: submit the full PT record; do not concede the criteria issue."]])
    expected["Memo re Garcia IMR.pdf"] = Expect(PLAN, privileged=True, withheld=True, identity="confirmed",
                                                date=dt.date(2026, 11, 25), pages=2, title_has="memorandum")

    fax_pages = [
        ["FAX COVER - Sierra Physical Therapy  11/20/2026", "To: Golden Poppy Health Plan, UM", "Pages: 3",
         "Re: records requested for Daniel Garcia", "Medical records attached as requested."],
        ["Sierra Physical Therapy - PT PROGRESS NOTE", *who, "Date of service: 04/22/2026",
         "Subjective: back pain 7/10 radiating left.", "Objective: lumbar flexion 40 deg.",
         "Assessment: slow progress.", "Plan: continue 2x/week."],
        ["Sierra Physical Therapy - PT PROGRESS NOTE", "Patient: Linda M. Okafor", "DOB: 05/30/1949",
         "Member ID: K55500123", "Date of service: 04/23/2026", "Subjective: right shoulder pain.",
         "Plan: rotator cuff strengthening."]]
    text_pdf(case_dir / "Records from Sierra PT fax 11-20.pdf", fax_pages)
    # The records' own date of service beats the fax cover's date.
    expected["Records from Sierra PT fax 11-20.pdf"] = Expect(MEDICAL, identity="mismatch", pages=3,
                                                              date=dt.date(2026, 4, 22))

    (case_dir / "phone note 11-19.txt").write_text(
        "TELEPHONE ENCOUNTER - nurse advice line\r\n"
        f"Patient: {name}   DOB: {dob:%m/%d/%Y}\r\n"
        "Date of call: 11/19/2026 14:05\r\n\r\n"
        "Member called about the status of his appeal and asked how to apply for an IMR. Reports\r\n"
        "pain 8/10, using a cane. Advised to keep the follow-up visit with Dr. Lee on 12/03/2026.\r\n"
        "RN: T. Alvarez\r\n", encoding="cp1252")
    expected["phone note 11-19.txt"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 11, 19),
                                              title_has="telephone encounter", pages=1)

    # A sub-folder that is not a hint folder, and a scanner that writes upper-case extensions.
    text_pdf(case_dir / "From Sierra PT" / "PT RE-EVAL 05-2026.PDF", [[
        "Sierra Physical Therapy", "**PHYSICAL THERAPY RE-EVALUATION", *who, "Date of service: 05/28/2026",
        "Visits to date: 16. Pain 7/10 unchanged. Lumbar flexion 45 degrees.",
        "Assessment: plateaued; goals not met. Plan: discharge from PT, return to referring surgeon."]])
    expected["From Sierra PT/PT RE-EVAL 05-2026.PDF"] = Expect(MEDICAL, identity="confirmed",
                                                              date=dt.date(2026, 5, 28),
                                                              title_has="physical therapy re-evaluation")
    # A supervisor's file put in privileged/ by the clerk: privileged by folder, category by its text.
    text_pdf(case_dir / "privileged" / "G&A case review.pdf", [[
        "**CASE REVIEW SUMMARY - GRIEVANCE COMMITTEE", f"Member ID: {mid}", "Review date: 10/01/2026",
        "Timeline: request 08/20, NOA 09/03, grievance 09/21, resolution 10/02.",
        "Rationale for the decision: criteria not met; recommend uphold."]])
    expected["privileged/G&A case review.pdf"] = Expect(PLAN, privileged=True, withheld=True, identity="confirmed",
                                                        date=dt.date(2026, 10, 1))

    encrypted_pdf(case_dir / "Labs Quest 07-2026.pdf", [[
        "Quest Diagnostics - LABORATORY REPORT", *who, "Collected: 07/09/2026", "CBC: within normal limits"]])
    expected["Labs Quest 07-2026.pdf"] = Expect(refused="encrypted")

    expected.update(junk(case_dir))

    overrides = """\
# J. Clerk, after reading _STATUS.txt
["scan0001.pdf"]
category = "medical_records"
title = "Progress notes, Dr. Susan Lee (scanned)"
date = 2026-07-30

["Records from Sierra PT fax 11-20.pdf"]
exclude = "page 3 is another patient's record; a corrected copy without it was dropped"
"""
    corrected = {"Records from Sierra PT fax 11-20 (corrected).pdf": fax_pages[:2]}
    expected["Records from Sierra PT fax 11-20 (corrected).pdf"] = Expect(
        MEDICAL, identity="confirmed", pages=2, date=dt.date(2026, 4, 22))
    return RealisticCase(case_id=case_id, case_dir=case_dir, expected=expected, overrides=overrides,
                         corrected=corrected, notice=notice, member_name=name, member_id=mid, member_dob=dob)


# ------------------------------------------------------------------------------------ case 2

def spanish_case(inbox: Path) -> RealisticCase:
    case_id = "IMR-2026-004377"
    case_dir = Path(inbox) / case_id
    name, mid, dob = "José Luis Hernández Ávila", "K30088811", dt.date(1949, 11, 2)
    rep = "María Hernández de Ruiz"
    who = [f"Patient: {name}", f"DOB: {dob:%m/%d/%Y}", f"Member ID: {mid}"]
    notice = dt.datetime(2026, 11, 16, 10, 5, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    write_case_toml(case_dir, f"""\
case_id = "{case_id}"
review_type = "standard"
dispute_type = "medical_necessity"
dmhc_notice_received = 2026-11-16T10:05:00-08:00
disputed_service = "Right total knee arthroplasty (reemplazo total de rodilla derecha)"
grievance_number = "G-2026-1302"
language = "es"

[member]
name = "{name}"
member_id = "{mid}"
date_of_birth = {dob.isoformat()}
address = ["1457 Calle de los Álamos", "Unit 3 & 4", "Fresno, CA 93702"]

[provider]
name = "Dr. Kenji Nakamura"
address = ["Central Valley Orthopedic Group", "1800 E. Herndon Ave", "Fresno, CA 93720"]

[representative]
name = "{rep}"
relationship = "daughter (hija)"
address = ["88 O'Farrell Court", "Clovis, CA 93612"]
""")
    expected: dict[str, Expect] = {}

    phone_photo(case_dir / "correspondence" / "IMG_20261103_142233.jpg", [
        "3 de noviembre de 2026", "", "Golden Poppy Health Plan", "Departamento de Quejas", "",
        f"Yo, {name}, autorizo a mi hija", f"{rep} a ayudarme con mi apelación.", "",
        "No puedo caminar sin andadera. Por favor", "reconsideren la cirugía de rodilla.", "",
        "Firma: J. L. Hernández"])
    expected["correspondence/IMG_20261103_142233.jpg"] = Expect(CORRESPONDENCE, identity="not_found", pages=1,
                                                                date=dt.date(2026, 11, 3), title_has="carta")

    doc_file(case_dir / "Carta de apelacion - Hernandez.doc", [
        rep, "88 O'Farrell Court, Clovis, CA 93612", "", "5 de octubre de 2026", "",
        f"{PLAN_NAME}", "Departamento de Quejas y Apelaciones", "",
        f"Asunto: Apelación - {name}, número de miembro {mid}", "",
        "A quien corresponda:",
        "Escribo en nombre de mi padre para apelar la decisión de negar el reemplazo total de la rodilla "
        "derecha. Mi padre ha recibido inyecciones y terapia física por más de un año sin mejoría. "
        "Les pido que reconsideren su decisión.",
        "Atentamente,", rep])
    expected["Carta de apelacion - Hernandez.doc"] = Expect(CORRESPONDENCE, identity="confirmed",
                                                            date=dt.date(2026, 10, 5), title_has="apelación",
                                                            pages=1)

    text_pdf(case_dir / "Ortho consult Dr Nakamura.pdf", [[
        "Central Valley Orthopedic Group", "**ORTHOPEDIC CONSULTATION", *who,
        "Date of visit: 06/18/2026", "Referring physician: Ana Flores, MD (PCP)", "",
        "Chief complaint: right knee pain for 3 years, worse over 6 months.",
        "History of present illness: failed NSAIDs, 3 corticosteroid injections, 12 PT visits.",
        "Physical exam: varus deformity, crepitus, flexion 95 degrees.",
        "Assessment and plan: severe tricompartmental osteoarthritis; recommend right TKA.",
        "Electronically signed by Kenji Nakamura, MD"]])
    expected["Ortho consult Dr Nakamura.pdf"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 6, 18),
                                                       title_has="consultation")

    text_pdf(case_dir / "xray knee 2026-06.pdf", [[
        "Fresno Imaging Center", "**X-RAY REPORT: RIGHT KNEE, 3 VIEWS WEIGHT-BEARING", *who,
        "Exam date: 06/11/2026", "Findings: severe medial joint space narrowing, osteophytes, subchondral sclerosis.",
        "Impression: severe osteoarthritis of the right knee (Kellgren-Lawrence grade 4)."]])
    expected["xray knee 2026-06.pdf"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 6, 11),
                                               title_has="x-ray report")

    text_pdf(case_dir / "NOA knee 09-22.pdf", [[
        PLAN_NAME, "", "September 22, 2026", "", name, "1457 Calle de los Álamos", "", f"Member ID: {mid}", "",
        "**NOTICE OF ACTION / AVISO DE ACCIÓN", "Dear Mr. Hernández Ávila:",
        "We have denied the request for right total knee arthroplasty. The records do not show a trial of "
        "a knee brace and weight loss counseling as required by the criteria.",
        "If you disagree with this decision, you may file a grievance."]])
    expected["NOA knee 09-22.pdf"] = Expect(CORRESPONDENCE, identity="confirmed", date=dt.date(2026, 9, 22),
                                            title_has="notice of action")

    text_pdf(case_dir / "Grievance resolution - Hernandez.pdf", [[
        PLAN_NAME, "Grievances and Appeals", "", "October 30, 2026", "", name, "", f"Member ID: {mid}",
        "Grievance #: G-2026-1302", "", "Dear Mr. Hernández Ávila:",
        "We have completed our review of your appeal of the denial of right knee replacement. "
        "We have upheld our decision.", "Sincerely,", "Grievance Coordinator"]])
    expected["Grievance resolution - Hernandez.pdf"] = Expect(CORRESPONDENCE, identity="confirmed",
                                                              date=dt.date(2026, 10, 30), grievance_response=True)

    text_pdf(case_dir / "MD review TKA.pdf", [[
        "**MEDICAL DIRECTOR REVIEW", f"Member: {name}  ID: {mid}", "Review date: 10/27/2026",
        "Reviewer: Marcus Oyelaran, MD, board-certified in internal medicine",
        "Criteria applied: plan medical policy MP-ORTHO-112 (total knee arthroplasty).",
        "Rationale for the decision: no documented trial of bracing; BMI 36 without weight counseling.",
        "Decision: uphold denial."]])
    expected["MD review TKA.pdf"] = Expect(PLAN, identity="confirmed", date=dt.date(2026, 10, 27),
                                           title_has="medical director")

    text_pdf(case_dir / "BH therapy note.pdf", [[
        "Valley Behavioral Health", "**PSYCHOTHERAPY NOTES", "Kept separate from the medical record", *who,
        "Session date: 09/10/2026", "Process notes: patient discussed grief over loss of mobility and "
        "frustration with family dynamics. Explored coping strategies.", "Clinician: R. Benton, LCSW"]])
    expected["BH therapy note.pdf"] = Expect(MEDICAL, withheld=True, identity="confirmed",
                                             date=dt.date(2026, 9, 10), title_has="psychotherapy notes")

    text_pdf(case_dir / "InterQual TKA criteria.pdf", [[
        "**InterQual(R) 2026 Procedures: Knee Arthroplasty, Total", "Criteria subset applied for: " + mid,
        "Review date: 10/27/2026",
        "Criteria not met: 200.2 conservative treatment >= 3 months including bracing.",
        "(c) 2026 Change Healthcare. All rights reserved. Confidential and proprietary."]])
    expected["InterQual TKA criteria.pdf"] = Expect(PLAN, privileged=True, withheld=True, identity="confirmed",
                                                    date=dt.date(2026, 10, 27))

    (case_dir / "desktop.ini").write_text("[.ShellClassInfo]\r\nIconResource=C:\\Windows\\System32\\imageres.dll,-3\r\n")
    (case_dir / "~$rta de apelacion - Hernandez.docx").write_bytes(b"\x05clerk" + bytes(150))
    expected["desktop.ini"] = Expect(junk=True)
    expected["~$rta de apelacion - Hernandez.docx"] = Expect(junk=True)

    overrides = """\
# The clerk names the two letters the family sent (the file names say little)
["Carta de apelacion - Hernandez.doc"]
title = "Carta de apelación de la hija (appeal letter from the member's daughter)"

["correspondence/IMG_20261103_142233.jpg"]
title = "Carta del miembro, foto (member's letter, phone photo)"
"""
    return RealisticCase(case_id=case_id, case_dir=case_dir, expected=expected, overrides=overrides,
                         notice=notice, language="es", member_name=name, member_id=mid, member_dob=dob,
                         representative=rep)


# ------------------------------------------------------------------------------------ case 3

def expedited_case(inbox: Path) -> RealisticCase:
    case_id = "IMR-2026-004502"
    case_dir = Path(inbox) / case_id
    name, mid, dob = "Priya N. Raman", "K77120045", dt.date(1979, 6, 21)
    who = [f"Patient: {name}", f"DOB: {dob:%m/%d/%Y}", f"Member ID: {mid}"]
    notice = dt.datetime(2026, 11, 25, 16, 10, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    write_case_toml(case_dir, f"""\
case_id = "{case_id}"
review_type = "expedited"
dispute_type = "experimental"
dmhc_notice_received = 2026-11-25T16:10:00-08:00
disputed_service = "Investigational bispecific antibody therapy (clinical trial) for relapsed large B-cell lymphoma"
language = "en"

[member]
name = "{name}"
member_id = "{mid}"
date_of_birth = {dob.isoformat()}
address = ["77 Marina Vista Blvd", "Alameda, CA 94501"]

[provider]
name = "Dr. Chidi Okonkwo"
address = ["Bay Cancer Institute", "1600 Divisadero Street", "San Francisco, CA 94115"]
fax = "(415) 555-0177"
""")
    expected: dict[str, Expect] = {}
    text_pdf(case_dir / "medical-records" / "Onc consult 11-02.pdf", [[
        "Bay Cancer Institute", "**HEMATOLOGY/ONCOLOGY CONSULTATION", *who, "Date of visit: 11/02/2026",
        "Reason for consultation: relapsed diffuse large B-cell lymphoma after CAR-T.",
        "History of present illness: progression 4 months after CAR-T; two prior lines of chemoimmunotherapy.",
        "Assessment and plan: eligible for phase 2 trial of a bispecific antibody; no standard option "
        "is likely to be effective."]])
    expected["medical-records/Onc consult 11-02.pdf"] = Expect(MEDICAL, identity="confirmed",
                                                               date=dt.date(2026, 11, 2))
    text_pdf(case_dir / "PET CT 10-28-2026.pdf", [[
        "Bay Imaging Associates - RADIOLOGY REPORT", *who, "Exam date: 10/28/2026",
        "Exam: PET/CT skull base to mid-thigh", "Findings: new FDG-avid mediastinal and retroperitoneal nodes.",
        "Impression: progressive lymphoma (Deauville 5)."]])
    expected["PET CT 10-28-2026.pdf"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 10, 28))
    text_pdf(case_dir / "Path report 10-30.pdf", [[
        "Bay Pathology Medical Group", "**SURGICAL PATHOLOGY REPORT", *who, "Collected: 10/30/2026",
        "Specimen: core biopsy, retroperitoneal node", "Diagnosis: diffuse large B-cell lymphoma, CD19 negative."]])
    expected["Path report 10-30.pdf"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 10, 30))
    text_pdf(case_dir / "Denial - experimental investigational.pdf", [[
        PLAN_NAME, "", "November 12, 2026", "", name, "77 Marina Vista Blvd", "Alameda, CA 94501", "",
        f"Member ID: {mid}", "**NOTICE OF ADVERSE BENEFIT DETERMINATION", "Dear Ms. Raman:",
        "We have denied coverage of the requested investigational bispecific antibody therapy because it "
        "is experimental or investigational. You may ask for an Independent Medical Review without first "
        "filing a grievance."]])
    expected["Denial - experimental investigational.pdf"] = Expect(CORRESPONDENCE, identity="confirmed",
                                                                   date=dt.date(2026, 11, 12))
    docx_file(case_dir / "Dr Okonkwo letter of support.docx", [
        "Bay Cancer Institute", "November 18, 2026", "",
        f"Re: {name}, DOB {dob:%m/%d/%Y}, Member ID {mid}", "",
        "To the Independent Medical Review Organization:",
        "I am writing in support of my patient's request for treatment in a phase 2 clinical trial. "
        "Her lymphoma has progressed after three lines of therapy including CAR-T. Published phase 1/2 "
        "data show complete responses in 35 percent of similar patients.",
        "Sincerely,", "Chidi Okonkwo, MD"], title="Letter of support")
    expected["Dr Okonkwo letter of support.docx"] = Expect(CORRESPONDENCE, identity="confirmed",
                                                           date=dt.date(2026, 11, 18))
    text_pdf(case_dir / "Med Dir review - exp tx.pdf", [[
        "**MEDICAL DIRECTOR REVIEW", f"Member: {name}   ID: {mid}", "Review date: 11/11/2026",
        "Requested: investigational bispecific antibody (clinical trial).",
        "Rationale for the denial: the agent is not FDA approved for this indication; evidence limited to "
        "phase 1/2 studies.", "Determination: deny as experimental/investigational."]])
    expected["Med Dir review - exp tx.pdf"] = Expect(PLAN, identity="confirmed", date=dt.date(2026, 11, 11))
    text_pdf(case_dir / "QI referral.pdf", [[
        "**QUALITY IMPROVEMENT COMMITTEE - CONFIDENTIAL",
        "Protected from disclosure under Evidence Code section 1157", f"Member ID: {mid}",
        "Date: 11/20/2026", "Potential quality of care issue referred: delay in the oncology authorization."]])
    expected["QI referral.pdf"] = Expect(PLAN, privileged=True, withheld=True, identity="confirmed",
                                         date=dt.date(2026, 11, 20))
    expected["Thumbs.db"] = Expect(junk=True)
    (case_dir / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    return RealisticCase(case_id=case_id, case_dir=case_dir, expected=expected, notice=notice,
                         review_type="expedited", dispute_type="experimental", member_name=name,
                         member_id=mid, member_dob=dob)


# ------------------------------------------------------------------------------------ case 4

def supplement_case(inbox: Path) -> RealisticCase:
    case_id = "IMR-2026-004610"
    case_dir = Path(inbox) / case_id
    name, mid, dob = "Walter K. Brennan", "K12345098", dt.date(1966, 9, 30)
    who = [f"Patient: {name}", f"DOB: {dob:%m/%d/%Y}", f"Member ID: {mid}"]
    notice = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    write_case_toml(case_dir, f"""\
case_id = "{case_id}"
review_type = "standard"
dispute_type = "medical_necessity"
dmhc_notice_received = 2026-11-23T09:30:00-08:00
disputed_service = "Continuous glucose monitor (Dexcom G7)"
grievance_number = "G-2026-1411"
language = "en"

[member]
name = "{name}"
member_id = "{mid}"
date_of_birth = {dob.isoformat()}
address = ["501 Cedar Hollow Rd", "Redding, CA 96001"]

[provider]
name = "Dr. Helen Marsh"
address = ["Shasta Endocrine Clinic", "1200 Hilltop Dr", "Redding, CA 96003"]
""")
    expected: dict[str, Expect] = {}
    text_pdf(case_dir / "medical-records" / "Endo visit 09-15.pdf", [[
        "Shasta Endocrine Clinic", "**PROGRESS NOTE", *who, "Date of visit: 09/15/2026",
        "HbA1c 9.8%. Two hypoglycemic episodes requiring assistance.", "Plan: request CGM."]])
    expected["medical-records/Endo visit 09-15.pdf"] = Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 9, 15))
    _noa_cgm(case_dir / "correspondence" / "NOA CGM.pdf", name, mid)
    expected["correspondence/NOA CGM.pdf"] = Expect(CORRESPONDENCE, identity="confirmed", date=dt.date(2026, 10, 1))
    text_pdf(case_dir / "correspondence" / "Grievance decision CGM.pdf", [[
        PLAN_NAME, "November 2, 2026", name, f"Member ID: {mid}", "**GRIEVANCE RESOLUTION",
        "We have completed our review of your grievance. We have upheld our decision."]])
    expected["correspondence/Grievance decision CGM.pdf"] = Expect(
        CORRESPONDENCE, identity="confirmed", date=dt.date(2026, 11, 2), grievance_response=True)
    text_pdf(case_dir / "plan-statements" / "MD review CGM.pdf", [[
        "**MEDICAL DIRECTOR REVIEW", f"Member: {name}  ID: {mid}", "Review date: 10/30/2026",
        "Decision: uphold denial; criteria require insulin pump use."]])
    expected["plan-statements/MD review CGM.pdf"] = Expect(PLAN, identity="confirmed", date=dt.date(2026, 10, 30))
    return RealisticCase(case_id=case_id, case_dir=case_dir, expected=expected, notice=notice,
                         member_name=name, member_id=mid, member_dob=dob)


def _noa_cgm(path: Path, name: str, mid: str) -> Path:
    return text_pdf(path, [[PLAN_NAME, "October 1, 2026", name, f"Member ID: {mid}", "**NOTICE OF ACTION",
                            "We have denied the request for a continuous glucose monitor."]])


def supplement_files(case: RealisticCase) -> dict[str, Expect]:
    """The late records a clerk drops after the first submission was sealed (and a re-dropped copy)."""
    name, mid, dob = case.member_name, case.member_id, case.member_dob
    who = [f"Patient: {name}", f"DOB: {dob:%m/%d/%Y}", f"Member ID: {mid}"]
    case_dir = case.case_dir
    text_pdf(case_dir / "Hospital DC summary 11-28.pdf", [[
        "Mercy Medical Center Redding", "**DISCHARGE SUMMARY", *who, "Date of admission: 11/26/2026",
        "Discharge date: 11/28/2026", "Hospital course: admitted for severe hypoglycemia (glucose 38), "
        "found unresponsive by spouse.", "Discharge diagnoses: hypoglycemia unawareness; type 1 diabetes."],
        ["Discharge instructions: follow up with Dr. Marsh in 1 week. CGM strongly recommended."]])
    fax_tiff(case_dir / "medical-records" / "scan0002.tif", [["Shasta Endocrine Clinic", "glucose log, November", *who]])
    # The clerk drops the denial letter again, not knowing it was sent.
    _noa_cgm(case_dir / "NOA CGM (copy).pdf", name, mid)  # byte-identical: reportlab invariant mode
    return {"Hospital DC summary 11-28.pdf": Expect(MEDICAL, identity="confirmed", date=dt.date(2026, 11, 28),
                                                    pages=2, title_has="discharge summary"),
            "medical-records/scan0002.tif": Expect(MEDICAL, identity="not_found", pages=1),
            "NOA CGM (copy).pdf": Expect(refused="duplicate")}
