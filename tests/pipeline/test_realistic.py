"""QA on realistic case folders, as the clerks, the mailroom and the auditors use them.

Four case folders built in code the way clerks drop them (tests/realistic.py): messy names, scans
and faxes without text, Word/RTF/DOC, a phone photo, junk, an encrypted file, a privileged memo
found by its text, a psychotherapy note, another patient's page inside a fax; a Spanish-speaking
member with a representative; an expedited experimental-therapy dispute; a sealed case that gets
late records. Each runs the whole flow: build -> read _STATUS.txt -> fix what blocks with
overrides.toml as a clerk would -> seal -> verify --rebuild -> copies -> notice -> status, and the
outputs are checked as a person would check them (categories of EVERY document, flags, dates,
titles, deadlines, language, Bates continuity, where the address sits on the letter).

Privileged-leak checks in depth live in tests/test_leaks.py; here they are only spot checks.
The flows run once per module (fixtures below) and share one state/ (the conversion cache), so the
module stays well under 90 seconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

import realistic as R
from helpers import make_config
from packet.pipeline.build import build_case
from packet.mailings.copies import write_copies
from packet.errors import GateFailed
from packet.mailings.notice import write_notice
from packet.pipeline.seal import seal_case
from packet.service.status import collect_status
from packet.pipeline.verify import verify_submission

PST = dt.timezone(dt.timedelta(hours=-8))


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PST)


# ------------------------------------------------------------------------------------ helpers

def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pdf_text(path: Path) -> str:
    reader = PdfReader(str(path))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def flat(text: str) -> str:
    return " ".join(text.split())


def manifest_of(folder: Path) -> dict:
    return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))


def docs_by_source(manifest: dict) -> dict[str, dict]:
    return {d["source"]: d for d in manifest["documents"]}


def word_boxes(pdf: Path, page: int) -> list[tuple[str, float, float, float, float]]:
    """(word, xMin, yMin, xMax, yMax) in points from the top-left, via poppler's pdftotext -bbox."""
    import re

    out = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [(m.group(5), float(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4)))
            for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
                                 out)]


def render_png(pdf: Path, page: int, out_dir: Path) -> Path:
    """What a person looks at: one page at 50 dpi (pdftoppm)."""
    prefix = out_dir / f"{Path(pdf).stem}-{page}"
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", str(page), "-l", str(page), str(pdf), str(prefix)],
                   check=True, capture_output=True, timeout=60)
    found = sorted(out_dir.glob(f"{prefix.name}-*.png"))
    assert found, f"pdftoppm rendered nothing for page {page} of {pdf.name}"
    return found[-1]


def dark_fraction(png: Path, box_inches: tuple[float, float, float, float]) -> float:
    """Share of dark pixels inside (left, top, right, bottom) inches of a 50-dpi rendering."""
    from PIL import Image

    with Image.open(png) as image:
        grey = image.convert("L")
        left, top, right, bottom = (round(v * 50) for v in box_inches)
        crop = grey.crop((left, top, right, bottom))
        histogram = crop.histogram()
    return sum(histogram[:128]) / max(1, sum(histogram))


def assert_documents_as_expected(manifest: dict, expected: dict[str, R.Expect], *, before_fixes: bool = False):
    """Every realistic document has exactly the category, flags, identity, date and title a careful
    person gives it. This is the classification quality test."""
    documents = docs_by_source(manifest)
    wanted = {k: v for k, v in expected.items() if v.category is not None and k in documents}
    problems = []
    for source, want in wanted.items():
        got = documents[source]
        category = (want.first_category or want.category) if before_fixes else want.category
        if got["category"] != category:
            problems.append(f"{source}: category {got['category']} ({got['category_reason']}), expected {category}")
        if got["privileged"] != want.privileged:
            problems.append(f"{source}: privileged={got['privileged']} ({got['privilege_reason']})")
        if got["withheld_from_member"] != want.withheld:
            problems.append(f"{source}: withheld={got['withheld_from_member']} ({got['withheld_reason']})")
        if want.identity and got["identity"] != want.identity:
            problems.append(f"{source}: identity {got['identity']} ({got['identity_reason']}), expected {want.identity}")
        if not before_fixes:
            date = want.date.isoformat() if want.date else None
            if got["date"] != date:
                problems.append(f"{source}: date {got['date']} ({got['date_reason']}), expected {date}")
            if want.title_has and want.title_has.lower() not in got["title"].lower():
                problems.append(f"{source}: title {got['title']!r} lacks {want.title_has!r}")
        if want.pages is not None and got["pages"] != want.pages:
            problems.append(f"{source}: {got['pages']} pages, expected {want.pages}")
    assert not problems, "\n".join(problems)
    return documents


# ------------------------------------------------------------------------------------ the flows

@dataclasses.dataclass
class Flow:
    case: R.RealisticCase
    first: object = None  # BuildResult before the clerk's fixes
    first_status: str = ""
    first_manifest: dict | None = None
    junk_hashes: dict = dataclasses.field(default_factory=dict)
    gate_error: GateFailed | None = None
    submission: Path | None = None
    manifest: dict | None = None
    status_after_seal: str = ""
    extra: dict = dataclasses.field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("realistic")
    config = make_config(root)
    config.paths.inbox.mkdir(parents=True, exist_ok=True)
    return config


def _run(config, case: R.RealisticCase, *, first_at: dt.datetime, seal_at: dt.datetime) -> Flow:
    flow = Flow(case=case)
    flow.junk_hashes = {rel: sha(case.case_dir / rel) for rel, e in case.expected.items() if e.junk}
    flow.first = build_case(case.case_dir, config, now=first_at)
    flow.first_status = (case.case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    flow.first_manifest = manifest_of(config.paths.outbox / case.case_id / "draft")
    if flow.first.blocking:
        with pytest.raises(GateFailed) as failed:
            seal_case(config, case.case_id, now=first_at, actor="qa-clerk")
        flow.gate_error = failed.value
        flow.extra["refused_status"] = (case.case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    case.apply_clerk_fixes()
    flow.submission = seal_case(config, case.case_id, now=seal_at, actor="qa-clerk")
    flow.manifest = manifest_of(flow.submission)
    flow.status_after_seal = (case.case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    return flow


@pytest.fixture(scope="module")
def standard(world):
    case = R.standard_case(world.paths.inbox)
    return _run(world, case, first_at=at(2026, 11, 27, 9, 0), seal_at=at(2026, 11, 30, 10, 0))


@pytest.fixture(scope="module")
def spanish(world):
    case = R.spanish_case(world.paths.inbox)
    return _run(world, case, first_at=at(2026, 11, 17, 8, 30), seal_at=at(2026, 11, 18, 16, 0))


@pytest.fixture(scope="module")
def expedited(world):
    case = R.expedited_case(world.paths.inbox)
    return _run(world, case, first_at=at(2026, 11, 25, 18, 0), seal_at=at(2026, 11, 26, 9, 30))


@pytest.fixture(scope="module")
def supplemented(world):
    case = R.supplement_case(world.paths.inbox)
    flow = _run(world, case, first_at=at(2026, 11, 24, 11, 0), seal_at=at(2026, 11, 24, 14, 0))
    late = R.supplement_files(case)
    flow.extra["late"] = late
    flow.extra["late_build"] = build_case(case.case_dir, world, now=at(2026, 12, 1, 10, 15))
    flow.extra["late_status"] = (case.case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    second = seal_case(world, case.case_id, now=at(2026, 12, 1, 15, 0), actor="qa-clerk")
    flow.extra["second"] = second
    flow.extra["second_manifest"] = manifest_of(second)
    flow.extra["status_after_second"] = (case.case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    return flow


# ------------------------------------------------------------------------------------ case 1: standard, English

def test_standard_first_build_tells_the_clerk_what_to_fix(standard):
    status = standard.first_status
    # deadline in plain words: notice Tue Nov 24 15:42; Thanksgiving and the day after are off
    assert "Due: Tuesday December 1, 2026 at 11:59 PM PST (4 days 14 hours left)" in status
    blocking = "\n".join(standard.first.blocking)
    assert "scan0001.pdf" not in blocking  # the scanned progress note is read by OCR and classified
    assert '"Records from Sierra PT fax 11-20.pdf" appears to name ANOTHER member' in blocking
    assert "grievance" not in blocking.lower()  # the resolution letter in correspondence/ was recognised
    assert len(standard.first.blocking) == 1, standard.first.blocking
    assert "!!! ANOTHER MEMBER'S DATA?" in status
    # the other patient's identifiers are never repeated to the clerk or in the manifest
    for secret in ("Okafor", "K55500123", "05/30/1949"):
        assert secret not in status
        assert secret not in json.dumps(standard.first_manifest)
    # the refusal says why and what to do, in the status note and beside the file
    assert "Labs Quest 07-2026.pdf: the file is protected with a password" in status
    why = (standard.case.case_dir / "_rejected" / "Labs Quest 07-2026.pdf.why.txt").read_text(encoding="utf-8")
    assert "unlocked copy" in why
    # the gate refused to seal, naming the same problems
    assert standard.gate_error is not None
    assert any("Records from Sierra PT fax 11-20.pdf" in item for item in standard.gate_error.items)


def test_standard_refused_seal_status_keeps_the_per_document_guidance(standard):
    refused = standard.extra["refused_status"]
    assert refused.startswith("Case IMR-2026-004211: NOT SEALED: 1 thing(s) to fix first; READY stays")
    assert "appears to name ANOTHER member" in refused
    assert "Due: Tuesday December 1, 2026 at 11:59 PM PST" in refused


def test_standard_refused_seal_status_still_says_what_needs_a_person(standard):
    assert "needs a person:" in standard.first_status
    assert "needs a person: The rules flagged it as privileged" in standard.extra["refused_status"]


def test_standard_first_build_classifies_every_document(standard):
    assert_documents_as_expected(standard.first_manifest, standard.case.expected, before_fixes=True)
    documents = docs_by_source(standard.first_manifest)
    # Read by OCR (confidence recorded per page), then classified by its title like typed text.
    assert documents["scan0001.pdf"]["category_reason"].startswith("rule:progress-note")
    assert len(documents["scan0001.pdf"]["ocr"]) == 2 and all(0.7 <= c <= 1 for c in documents["scan0001.pdf"]["ocr"])
    assert "Memo re Garcia IMR.pdf" in documents and documents["Memo re Garcia IMR.pdf"]["privileged"]
    assert "attorney-client" in documents["Memo re Garcia IMR.pdf"]["privilege_reason"].lower()
    assert documents["privileged/G&A case review.pdf"]["privilege_reason"].startswith("folder: folder privileged/")
    assert documents["From Sierra PT/PT RE-EVAL 05-2026.PDF"]["category_reason"].startswith("rule:")


def test_standard_junk_is_ignored_and_untouched_and_refusals_move_byte_for_byte(standard):
    case_dir = standard.case.case_dir
    for rel, digest in standard.junk_hashes.items():
        assert sha(case_dir / rel) == digest, rel
        assert rel not in docs_by_source(standard.manifest)
    assert [r["source"] for r in standard.manifest["rejected"]] == ["Labs Quest 07-2026.pdf"]
    assert standard.manifest["rejected"][0]["reason_code"] == "encrypted"
    assert PdfReader(str(case_dir / "_rejected" / "Labs Quest 07-2026.pdf")).is_encrypted


def test_standard_sealed_packet_has_the_right_documents_dates_and_titles(standard):
    manifest = standard.manifest
    documents = assert_documents_as_expected(manifest, standard.case.expected)
    assert manifest["kind"] == "initial" and manifest["submission"] == 1
    assert manifest["deadline"]["due"] == "2026-12-01T23:59:59-08:00"
    assert "3 business days" in manifest["deadline"]["rule"]
    assert manifest["on_time"] is True
    # the fax with another patient's page is excluded by the clerk and numbered nowhere
    excluded = documents["Records from Sierra PT fax 11-20.pdf"]
    assert excluded["excluded"].startswith("page 3 is another patient") and excluded["bates_first"] is None
    # overrides are recorded as a person's decisions
    scan = documents["scan0001.pdf"]
    assert scan["category_reason"].startswith("override") and scan["title"] == "Progress notes, Dr. Susan Lee (scanned)"
    # Bates continuity 1..16 in category order, and the index of the packet agrees with the manifest
    placed = [d for d in manifest["documents"] if d["bates_first"]]
    numbers = [int(d["bates_first"][-6:]) for d in placed]
    assert numbers[0] == 1 and manifest["bates"]["last"] == sum(d["pages"] for d in placed) == 18
    order = ["medical_records", "correspondence", "plan_statements"]
    assert [order.index(d["category"]) for d in placed] == sorted(order.index(d["category"]) for d in placed)
    org = standard.submission / "imr-org-packet.pdf"
    labels = list(PdfReader(str(org)).page_labels)
    for d in placed:
        assert labels[d["packet_pages"][0] - 1] == d["bates_first"]
        assert labels[d["packet_pages"][-1] - 1] == d["bates_last"]
    index = flat(pdf_text(org))
    for title in ("Radiology Report", "Notice of Action", "Letter of Medical Necessity", "Telephone Encounter",
                  "Progress notes, Dr. Susan Lee (scanned)"):
        assert title in index


def test_standard_status_after_sealing_is_calm_and_accurate(standard):
    status = standard.status_after_seal
    assert "submission 1 is sealed" in status
    assert "Submission 1 was sealed on Monday November 30, 2026 at 10:00 AM PST (on time)" in status
    assert "Before this case can be sealed" not in status  # nothing is pending after a seal
    assert "not in the case folder" not in status  # overrides.toml naming archived files is expected
    assert "left)" not in status  # the met deadline no longer counts down


def test_standard_verify_rebuild_and_mailings(standard, world, tmp_path):
    report = verify_submission(standard.submission, world, rebuild=True)
    assert report.ok, report.text()
    member = standard.submission / "member-packet.pdf"
    text = flat(pdf_text(member))
    assert "Daniel R. Garcia" in text and "Page 1 of" in text
    assert "Legally privileged" in text  # the neutral description's reason (issue 15 item 7)
    assert "litigation risk" not in text and "Memorandum" not in text and "General Counsel" not in text
    # the excluded fax's other patient reaches no output at all, not even the IMR organization's
    for output in ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf", "imr-org-packet.pdf"):
        assert "Okafor" not in pdf_text(standard.submission / output), output
    # every sent document is a row of the annotated list (one row per document, as in the manifest)
    rows = (standard.submission / "annotated-list.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(rows) - 1 == len([d for d in standard.manifest["documents"] if d["bates_first"]])
    # page 1: the member's address sits in the window of a #10 envelope (about 7/8" from the left,
    # 2" from the top; the window is 4 1/2" x 1 1/8")
    boxes = word_boxes(member, 1)
    name = [b for b in boxes if b[0] == "Daniel" and b[2] < 250]  # first word of the address block
    city = [b for b in boxes if b[0] == "95817-2204"]
    assert name and city
    left, top = name[0][1] / 72, name[0][2] / 72
    bottom = city[0][4] / 72
    assert 0.6 <= left <= 1.3 and 1.7 <= top <= 2.8 and bottom - top <= 1.125, (left, top, bottom)
    png = render_png(member, 1, tmp_path)
    assert dark_fraction(png, (left, top, left + 3.0, bottom)) > 0.02  # the address is really drawn there
    # a document page of the packet: the Bates label in the bottom margin, drawn and legible
    org = standard.submission / "imr-org-packet.pdf"
    scan = docs_by_source(standard.manifest)["scan0001.pdf"]
    scan_page = scan["packet_pages"][0]
    label = [b for b in word_boxes(org, scan_page) if b[0] == scan["bates_first"]]
    assert label and label[0][2] > 792 - 36, label
    png = render_png(org, scan_page, tmp_path)
    assert dark_fraction(png, (label[0][1] / 72, label[0][2] / 72, label[0][3] / 72, label[0][4] / 72)) > 0.05


def test_standard_copies_and_notice(standard, world):
    copies = write_copies(world, standard.case.case_id, "member", now=at(2026, 12, 2, 9, 0))
    text = flat(pdf_text(copies))
    assert "litigation risk" not in text and "General Counsel" not in text
    memo = docs_by_source(standard.manifest)["Memo re Garcia IMR.pdf"]
    assert memo["bates_first"] in text  # the slip sheet keeps the withheld memo's Bates range
    assert "Memorandum" not in text and "Okafor" not in text
    # the mailroom mails the set: the member's address sits in the window of the first page
    boxes = word_boxes(copies, 1)
    first = [b for b in boxes if b[0] == "Daniel" and b[2] < 250]
    assert first and 0.6 <= first[0][1] / 72 <= 1.3 and 1.7 <= first[0][2] / 72 <= 2.8, first
    provider = write_copies(world, standard.case.case_id, "provider", now=at(2026, 12, 2, 9, 5))
    cover = flat(PdfReader(str(provider)).pages[0].extract_text())
    assert "Dr. Susan Lee, MD" in cover and "Patient: Daniel R. Garcia" in cover
    notice = write_notice(world, standard.case.case_id, now=at(2026, 12, 2, 9, 0))
    text = flat(pdf_text(notice))
    assert "Physician Certification" not in text  # not an experimental denial
    fields = PdfReader(str(notice)).get_fields()
    assert fields["application.patient_name"]["/V"] == "Daniel R. Garcia"
    assert fields["application.grievance_number"]["/V"] == "G-2026-1187"
    assert not any(name.startswith("physician.") for name in fields)


# ------------------------------------------------------------------------------------ case 2: Spanish, representative

def test_spanish_case_classifies_every_document_without_help(spanish):
    # the psychotherapy note, the Spanish .doc letter and the phone photo need no category override
    assert not spanish.first.blocking, spanish.first.blocking
    assert_documents_as_expected(spanish.first_manifest, spanish.case.expected, before_fixes=True)
    documents = docs_by_source(spanish.manifest)
    assert_documents_as_expected(spanish.manifest, spanish.case.expected)
    assert documents["BH therapy note.pdf"]["withheld_reason"].startswith("rule:psychotherapy-notes")
    assert documents["InterQual TKA criteria.pdf"]["privileged"] is True
    assert documents["Carta de apelacion - Hernandez.doc"]["date_reason"].startswith("letter-date")
    assert spanish.manifest["deadline"]["due"] == "2026-11-19T23:59:59-08:00"


def test_spanish_member_mailings_are_in_spanish_with_the_representative(spanish):
    member = spanish.submission / "member-packet.pdf"
    text = flat(pdf_text(member))
    for phrase in ("Estimado(a) José Luis Hernández Ávila", "Página 1 de", "Revisión Médica Independiente",
                   "cc: María Hernández de Ruiz", "Unit 3 & 4", "1457 Calle de los Álamos",
                   "Carta de apelación de la hija", "Retenido por ley", "1-888-466-2219"):
        assert phrase in text, phrase
    assert "Dear " not in text and "Page 1 of" not in text
    assert "5 oct 2026" in text  # unambiguous dates in the Spanish list (not 05/10/2026)
    assert "grief" not in text and "Process notes" not in text  # the psychotherapy note stays out
    assert "Change Healthcare" not in text


def test_spanish_notice_prefills_the_declaration_for_the_representative(spanish, world):
    notice = write_notice(world, spanish.case.case_id, now=at(2026, 11, 20, 9, 0))
    text = flat(pdf_text(notice))
    assert "Solicitud" in text and "Revisión Médica Independiente" in text
    fields = PdfReader(str(notice)).get_fields()
    assert fields["declaration.helper_name"]["/V"] == "María Hernández de Ruiz"
    assert "Clovis" in fields["declaration.helper_address"]["/V"]
    assert fields["application.applicant_other"]["/V"] == "/Yes"


# ------------------------------------------------------------------------------------ case 3: expedited experimental

def test_expedited_deadline_is_24_hours_and_no_grievance_response_is_needed(expedited):
    deadline = expedited.manifest["deadline"]
    start = dt.datetime.fromisoformat(deadline["clock_start"])
    due = dt.datetime.fromisoformat(deadline["due"])
    assert due - start == dt.timedelta(hours=24)
    assert due == at(2026, 11, 26, 16, 10)  # Thanksgiving: calendar hours, not business days
    assert "24 hours" in deadline["rule"]
    assert "Due: Thursday November 26, 2026 at 4:10 PM PST (22 hours 10 minutes left)" in expedited.first_status
    assert not expedited.first.blocking  # experimental disputes need no grievance first
    assert expedited.manifest["on_time"] is True
    assert_documents_as_expected(expedited.manifest, expedited.case.expected)
    assert "Evidence Code 1157" in docs_by_source(expedited.manifest)["QI referral.pdf"]["privilege_reason"]


def test_expedited_experimental_notice_has_the_physician_certification(expedited, world, tmp_path):
    notice = write_notice(world, expedited.case.case_id, now=at(2026, 11, 26, 10, 0))
    text = flat(pdf_text(notice))
    assert "Physician Certification: Experimental or Investigational" in text
    assert "H&S 1370.4" in text
    fields = PdfReader(str(notice)).get_fields()
    assert fields["physician.physician_name"]["/V"] == "Dr. Chidi Okonkwo"
    assert fields["application.type_experimental"]["/V"] == "/Yes"
    assert fields["application.expedited"]["/V"] == "/Yes"
    # the physician certifies; the plan pre-checks none of the physician's statements
    for box in ("life_threatening", "standard_failed", "more_beneficial", "promptly"):
        assert fields[f"physician.{box}"]["/V"] == "/Off", box
    reader = PdfReader(str(notice))
    page = next(i for i, p in enumerate(reader.pages, 1) if "Physician Certification" in (p.extract_text() or ""))
    png = render_png(notice, page, tmp_path)
    assert dark_fraction(png, (0.5, 0.5, 8.0, 10.5)) > 0.01


def test_expedited_member_packet_lists_the_withheld_quality_record_without_its_content(expedited):
    text = flat(pdf_text(expedited.submission / "member-packet.pdf"))
    assert "Legally privileged" in text
    assert "delay in the oncology authorization" not in text and "Quality Improvement Committee" not in text


# ------------------------------------------------------------------------------------ case 4: sealed, then a supplement

def test_supplement_continues_bates_and_is_due_one_day_after_receipt(supplemented, world):
    late_build = supplemented.extra["late_build"]
    assert late_build.kind == "supplement" and late_build.submission == 2
    assert late_build.deadline.due == at(2026, 12, 2, 10, 15)
    assert "Supplemental submission 2: new records are due 1 day after they arrive." in supplemented.extra["late_status"]
    assert "Due: Wednesday December 2, 2026 at 10:15 AM PST (1 day left)" in supplemented.extra["late_status"]
    refused = {r["source"]: r["reason_code"] for r in supplemented.extra["second_manifest"]["rejected"]}
    assert refused == {"NOA CGM (copy).pdf": "duplicate"}
    first, second = supplemented.manifest, supplemented.extra["second_manifest"]
    assert first["bates"]["last"] == 4 and second["bates"]["first"] == 5
    assert second["kind"] == "supplement" and second["submission"] == 2 and second["on_time"] is True
    documents = docs_by_source(second)
    assert set(documents) == {"Hospital DC summary 11-28.pdf", "medical-records/scan0002.tif"}
    summary = documents["Hospital DC summary 11-28.pdf"]
    assert summary["category"] == "medical_records" and summary["title"] == "Discharge Summary"
    assert summary["date"] in ("2026-11-26", "2026-11-28")  # admission or discharge date, both defensible
    assert (summary["bates_first"], summary["bates_last"]) == ("IMR-2026-004610-000005", "IMR-2026-004610-000006")
    org = supplemented.extra["second"] / "imr-org-packet.pdf"
    assert "Supplemental submission 2" in pdf_text(org)
    assert "IMR-2026-004610-000007" in list(PdfReader(str(org)).page_labels)
    report = verify_submission(supplemented.extra["second"], world, rebuild=True)
    assert report.ok, report.text()
    status = supplemented.extra["status_after_second"]
    assert "Submission 2 was sealed on Tuesday December 1, 2026 at 3:00 PM PST (on time)" in status
    assert "Before this case can be sealed" not in status


def test_status_command_sees_every_case_sealed_and_on_time(standard, spanish, expedited, supplemented, world):
    cases = {c.case_id: c for c in collect_status(world)}
    for flow in (standard, spanish, expedited, supplemented):
        status = cases[flow.case.case_id]
        assert status.state == "sealed", (flow.case.case_id, status)
        assert status.on_time is True
        assert not status.blocks
    assert cases["IMR-2026-004610"].submissions == 2


# ------------------------------------------------------------------------------------ the CLI with relative paths

def test_clerk_build_with_relative_paths_takes_word_documents(tmp_path, monkeypatch):
    """Regression: with relative [paths] (the spec's default), every DOCX/DOC/RTF/ODT was refused
    as "conversion_failed (unexpected problem)" (convert passed Path.as_uri() a relative work folder).
    packet.config now resolves the folders; this keeps it that way."""
    from packet.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "imr.toml").write_text('[paths]\ninbox = "inbox"\noutbox = "outbox"\narchive = "archive"\n'
                                       'state = "state"\n', encoding="utf-8")
    case = R.standard_case(tmp_path / "inbox")
    for folder in ("outbox", "archive", "state"):  # only watch/demo/new-case create them (issue 14)
        (tmp_path / folder).mkdir()
    for path in sorted(case.case_dir.iterdir()):  # keep case.toml and one Word letter
        if path.is_dir():
            shutil.rmtree(path)
        elif path.name not in ("case.toml", "appeal letter from member.docx"):
            path.unlink()
    assert main(["build", str(Path("inbox") / case.case_id)]) == 0
    assert not (case.case_dir / "_rejected").exists(), os.listdir(case.case_dir / "_rejected")
    manifest = manifest_of(tmp_path / "outbox" / case.case_id / "draft")
    assert [d["source"] for d in manifest["documents"]] == ["appeal letter from member.docx"]


# ------------------------------------------------------------------------------------ the inputs are what they claim

def test_generated_inputs_are_realistic(standard, spanish, world):
    """The archived originals: a test of realistic folders is only as good as its folders."""
    from PIL import Image

    from packet.intake.convert.sniff import CFB_MAGIC

    first = world.paths.archive / standard.case.case_id / "submission-01"
    with Image.open(first / "medical-records" / "Fax from Dr Lee 3-12.tif") as fax:
        assert (fax.n_frames, fax.info["compression"], fax.mode) == (3, "group4", "1")
    assert not flat(pdf_text(first / "scan0001.pdf"))  # a scan: no text layer at all
    assert (first / "Dr Lee LOMN.rtf").read_bytes().startswith(b"{\\rtf1")
    assert (first / "phone note 11-19.txt").read_bytes().count(b"\r\n") >= 5  # typed on Windows
    second = world.paths.archive / spanish.case.case_id / "submission-01"
    assert (second / "Carta de apelacion - Hernandez.doc").read_bytes()[:8] == CFB_MAGIC or \
        (second / "Carta de apelacion - Hernandez.doc").read_bytes().startswith(b"{\\rtf1")
    with Image.open(second / "correspondence" / "IMG_20261103_142233.jpg") as photo:
        assert photo.getexif().get(0x0112) == 6 and photo.width > photo.height  # stored sideways
    # ... and the packet shows it upright (portrait), as a person reads the letter
    org = PdfReader(str(spanish.submission / "imr-org-packet.pdf"))
    page_number = docs_by_source(spanish.manifest)["correspondence/IMG_20261103_142233.jpg"]["packet_pages"][0]
    page = org.pages[page_number - 1]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    if (page.rotation or 0) % 180:
        width, height = height, width
    assert width < height
