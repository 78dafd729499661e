"""packet.classify.rules: category, privilege / withholding flags, identity, title, date, author.

Most tests build `Converted` values directly from text (no PDF needed); a few run real generated
PDFs through packet.intake.convert to check the heuristics against pypdf's text layout.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_pdf

from packet.model.case import CaseFacts, Person
from packet.classify.dates import find_dates
from packet.classify.rules import describe, is_grievance_response, needs_attention
from packet.config import load_config
from packet.model.models import (
    CORRESPONDENCE,
    IDENTITY_CONFIRMED,
    IDENTITY_MISMATCH,
    IDENTITY_NOT_FOUND,
    MEDICAL_RECORDS,
    NEEDS_REVIEW,
    PLAN_STATEMENTS,
    Converted,
    Override,
    SourceFile,
)

RECEIVED = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
FACTS = CaseFacts(
    case_id="IMR-2026-000417", review_type="standard", dispute_type="medical_necessity",
    dmhc_notice_received=dt.datetime(2026, 11, 25, 16, 10, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
    disputed_service="Lumbar spinal fusion L4-L5", language="en",
    member=Person(name=MEMBER_NAME, member_id=MEMBER_ID, date_of_birth=MEMBER_DOB,
                  address=("1200 Poppy Lane, Apt 3", "Sacramento, CA 95814")),
    provider=Person(name="Dr. Alan Spineworth"))
OTHER_ID = "M123456789"

# ------------------------------------------------------------------------------ sample documents

DENIAL = """Golden Poppy Health Plan
Utilization Management Department
P.O. Box 1000, Sacramento, CA 95814
November 2, 2026
Rosalind Q. Testmember
1200 Poppy Lane, Apt 3
Sacramento, CA 95814
Member ID: M998877665
NOTICE OF ACTION
Dear Ms. Testmember,
We reviewed the request from Dr. Alan Spineworth for lumbar spinal fusion L4-L5 (date of service 12/03/2026).
We reviewed your medical records, including progress notes, physical therapy notes and the MRI report, and
the letter of medical necessity. Your request for this service has been denied because it is not medically
necessary. We used InterQual criteria for lumbar fusion; you may ask for a copy. Our medical director reviewed
the request. You may file a grievance or appeal within 180 days. If you disagree with this decision you can
ask for an Independent Medical Review.
The California Department of Managed Health Care is responsible for regulating health care service plans.
Sincerely,
Utilization Management
"""
PROGRESS = """Capitol Orthopedics
55 J Street, Sacramento, CA 95814
PROGRESS NOTE
Patient: Testmember, Rosalind Q    DOB: 04/09/1961    MRN: 55511
Date of service: 08/14/2026
Chief complaint: low back pain radiating to the left leg.
HPI: 65 year old woman with chronic low back pain. Failed 12 weeks of physical therapy.
Assessment and plan: L4-L5 spondylolisthesis. MRI lumbar spine reviewed. Fusion requested; prior
authorization was denied by the plan and the patient will appeal. Follow up in 6 weeks.
Electronically signed by Alan Spineworth, MD
"""
CONSULT = """Sacramento Neurosurgery
NEUROSURGERY CONSULTATION
Reason for consultation: evaluation of lumbar stenosis.
History of present illness: chronic back pain with leg symptoms for two years, worse with walking.
Physical exam: strength 5/5, decreased sensation left L5.
"""
MRI = """Sacramento Valley Imaging
MRI LUMBAR SPINE WITHOUT CONTRAST
Patient: Rosalind Testmember  DOB: April 9, 1961
Exam date: 06/03/2026
Technique: Multiplanar multisequence images.
Comparison: None.
Findings: Grade 1 anterolisthesis of L4 on L5.
Impression: Degenerative spondylolisthesis L4-L5 with moderate stenosis.
"""
LAB = """Quest Diagnostics
LABORATORY REPORT
Specimen collected: 07/01/2026 08:10
Test              Result      Reference range
Hemoglobin A1c    5.6 %       4.0 - 5.6
"""
PT_NOTE = """Poppy Physical Therapy
PHYSICAL THERAPY PROGRESS NOTE
Visit 10 of 12. Patient reports pain 6/10 despite home exercise program and manual therapy sessions.
Plan of care: continue twice weekly for 2 weeks, then reassess with the referring surgeon.
"""
DISCHARGE = """Mercy General Hospital
DISCHARGE SUMMARY
Admission date: 03/02/2026   Discharge date: 03/05/2026
Hospital course: admitted for intractable back pain, treated with IV analgesics and physical therapy.
Discharge medications: naproxen 500 mg twice daily.
"""
REFERRAL = """Golden Poppy Medical Group
REFERRAL FORM
Referring provider: Dr. Maria Primary
Reason for referral: chronic low back pain, failed conservative care, evaluate for surgery.
"""
FAX_COVER = """FAX
From: Capitol Orthopedics   Fax: (916) 555-0100
To: Golden Poppy UM
Re: records as requested
Pages: 3
"""
RESOLUTION = """Golden Poppy Health Plan
Grievance and Appeals Unit
November 20, 2026
Rosalind Q. Testmember
1200 Poppy Lane, Apt 3
Sacramento, CA 95814
Re: Grievance resolution, grievance number G-2026-0456
Dear Ms. Testmember,
We received your grievance on November 3, 2026. We have completed our review of your grievance about lumbar
spinal fusion. A physician reviewer looked at your medical records. We are upholding our original decision to
deny the service. If you disagree with this decision you may ask for an Independent Medical Review.
The California Department of Managed Health Care is responsible for regulating health care service plans.
Sincerely,
Grievance and Appeals Unit
"""
ACKNOWLEDGMENT = """Golden Poppy Health Plan
Grievance and Appeals Unit
November 5, 2026
Dear Ms. Testmember,
This letter is our acknowledgment of your grievance received on November 3, 2026 about your surgery request.
We will send you a written appeal decision within 30 days of the day we received your grievance.
The California Department of Managed Health Care is responsible for regulating health care service plans.
"""
LOMN = """Capitol Orthopedics
55 J Street, Sacramento, CA 95814
August 20, 2026
To: Golden Poppy Health Plan, Utilization Management
RE: Letter of Medical Necessity - Rosalind Testmember
Dear Medical Director,
My patient has failed conservative treatment including physical therapy and injections. Her MRI shows
spondylolisthesis with stenosis. Lumbar fusion is the appropriate treatment for her condition now.
Sincerely, Alan Spineworth, MD
"""
MEMBER_APPEAL = """Rosalind Testmember
1200 Poppy Lane
Sacramento CA
October 12, 2026
To Golden Poppy Health Plan
I am writing to appeal your decision to deny my back surgery. My doctor says I need it and I have had
months of therapy that did not help me. Please reconsider and approve the surgery my doctor asked for.
"""
IMR_APPLICATION = """Department of Managed Health Care
INDEPENDENT MEDICAL REVIEW APPLICATION / COMPLAINT FORM
Applicant information: the enrollee named below asks for an independent review of the decision.
"""
MD_REVIEW = """Golden Poppy Health Plan
MEDICAL DIRECTOR REVIEW
Member: Rosalind Q. Testmember   Member ID: M998877665
Request: lumbar spinal fusion L4-L5
Clinical summary: progress notes from 07/2026 and the MRI report were reviewed for this request.
Criteria: InterQual 2026 Procedures, Lumbar Fusion. Criteria not met: no documented instability.
Determination: Deny. Rationale: conservative care incomplete.
Reviewer: Dr. Grace Reviewer, Medical Director, board certified in orthopedic surgery
Date of review: 10/30/2026
"""
UM_NOTES = """Golden Poppy Health Plan
UM REVIEW NOTES
10/25/2026 Nurse reviewer: request received with clinical notes, sent for physician review as the
criteria are not met for this level of care per the guideline.
"""
CRITERIA = """InterQual 2026 Procedures Criteria
Lumbar Fusion (Adult)
Criteria applied to the request: 1. Spondylolisthesis with instability; 2. Failure of conservative care.
"""
P2P = """PEER-TO-PEER DISCUSSION NOTE
Date: 10/28/2026
Dr. Spineworth and the plan reviewer discussed the request by telephone; the plan reviewer explained
the criteria. Determination: uphold denial.
"""
STATEMENT = """Golden Poppy Health Plan
STATEMENT OF REASONS
The plan denied lumbar fusion because the member had not completed six months of conservative care.
"""
CASE_SUMMARY = """IMR CASE SUMMARY
Prepared by the Grievance and Appeals Unit for the IMR organization, summarising the request, the plan's
decision, the grievance and the records reviewed by the plan.
"""

TEXT_CASES = [
    ("progress note", PROGRESS, MEDICAL_RECORDS),
    ("consultation", CONSULT, MEDICAL_RECORDS),
    ("MRI report", MRI, MEDICAL_RECORDS),
    ("lab report", LAB, MEDICAL_RECORDS),
    ("PT note", PT_NOTE, MEDICAL_RECORDS),
    ("discharge summary", DISCHARGE, MEDICAL_RECORDS),
    ("referral", REFERRAL, MEDICAL_RECORDS),
    ("denial letter", DENIAL, CORRESPONDENCE),
    ("grievance resolution", RESOLUTION, CORRESPONDENCE),
    ("grievance acknowledgment", ACKNOWLEDGMENT, CORRESPONDENCE),
    ("letter of medical necessity", LOMN, CORRESPONDENCE),
    ("member appeal letter", MEMBER_APPEAL, CORRESPONDENCE),
    ("IMR application", IMR_APPLICATION, CORRESPONDENCE),
    ("medical director review", MD_REVIEW, PLAN_STATEMENTS),
    ("UM notes", UM_NOTES, PLAN_STATEMENTS),
    ("criteria", CRITERIA, PLAN_STATEMENTS),
    ("peer-to-peer", P2P, PLAN_STATEMENTS),
    ("statement of reasons", STATEMENT, PLAN_STATEMENTS),
    ("case summary", CASE_SUMMARY, PLAN_STATEMENTS),
]


# ------------------------------------------------------------------------------ helpers

def converted(pages: list[str], *, title: str | None = None) -> Converted:
    return Converted(sha256="ab" * 32, pdf_path=Path("/nonexistent/doc.pdf"), pages=len(pages),
                     page_texts=tuple(pages), source_kind="pdf", title=title)


def source(relpath: str = "document.pdf", *, hint: str | None = None, privileged: bool = False) -> SourceFile:
    return SourceFile(relpath=relpath, path=Path("/inbox/IMR-2026-000417") / relpath, size=1, mtime_ns=1,
                      hint_category=hint, in_privileged_folder=privileged)


def describe_text(pages: list[str] | str, relpath: str = "document.pdf", *, config, hint: str | None = None,
                  privileged_folder: bool = False, override: Override | None = None, title: str | None = None,
                  facts: CaseFacts | None = FACTS):
    if isinstance(pages, str):
        pages = [pages]
    return describe(source(relpath, hint=hint, privileged=privileged_folder), converted(pages, title=title),
                    facts, override, config, RECEIVED)


# ------------------------------------------------------------------------------ category

@pytest.mark.parametrize(("folder", "category"), [
    ("medical-records", MEDICAL_RECORDS), ("correspondence", CORRESPONDENCE), ("plan-statements", PLAN_STATEMENTS)])
def test_hint_folder_gives_the_category_even_against_the_text(config, folder, category):
    text = DENIAL if category != CORRESPONDENCE else PROGRESS  # the text says something else
    document = describe_text(text, f"{folder}/scan.pdf", config=config, hint=category)
    assert document.category.value == category
    assert document.category.rule == "folder"
    assert document.category.evidence == f"folder {folder}/"


def test_override_beats_folder_and_rules(config):
    document = describe_text(DENIAL, "medical-records/notice.pdf", config=config, hint=MEDICAL_RECORDS,
                             override=Override(category=PLAN_STATEMENTS))
    assert document.category.value == PLAN_STATEMENTS
    assert document.category.rule == "override"
    assert "overrides.toml" in document.category.evidence


@pytest.mark.parametrize(("name", "text", "category"), TEXT_CASES, ids=[case[0] for case in TEXT_CASES])
def test_category_from_text(config, name, text, category):
    document = describe_text(text, "document.pdf", config=config)
    assert document.category.value == category, document.category.reason
    assert document.category.rule.startswith("rule:")
    assert " on page 1" in document.category.evidence or "title lines of page 1" in document.category.evidence


def test_denial_letter_full_of_medical_words_is_still_correspondence(config):
    # It mentions medical records, progress notes, MRI report, medical necessity and InterQual.
    document = describe_text(DENIAL, config=config)
    assert document.category.value == CORRESPONDENCE
    assert document.category.rule == "rule:denial-letter"
    assert 'phrase "NOTICE OF ACTION" in the title lines of page 1' in document.category.evidence


def test_progress_note_that_says_denied_is_still_a_medical_record(config):
    document = describe_text(PROGRESS, config=config)
    assert document.category.value == MEDICAL_RECORDS


def test_medication_doses_in_mcg_are_not_mcg_criteria(config):
    document = describe_text(PROGRESS + "\nMedications: levothyroxine 50 mcg daily, vitamin B12 1000 mcg.",
                             config=config)
    assert document.category.value == MEDICAL_RECORDS
    assert "plan_statements" not in document.category.evidence


def test_faxed_records_with_cover_page_are_medical_records(config):
    document = describe_text([FAX_COVER, PROGRESS], "fax.pdf", config=config)
    assert document.category.value == MEDICAL_RECORDS


@pytest.mark.parametrize(("name", "category"), [
    ("MRI report lumbar.pdf", MEDICAL_RECORDS), ("progress_notes_Dr_Spineworth.tif", MEDICAL_RECORDS),
    ("denial-letter.pdf", CORRESPONDENCE), ("Grievance resolution letter.pdf", CORRESPONDENCE),
    ("UM review notes.pdf", PLAN_STATEMENTS), ("medical director review.tif", PLAN_STATEMENTS)])
def test_scanned_document_is_classified_by_its_name(config, name, category):
    document = describe_text([""], name, config=config)
    assert document.category.value == category, document.category.reason
    assert "file name contains" in document.category.evidence
    assert "scanned" in document.category.evidence


@pytest.mark.parametrize("name", ["scan0001.pdf", "IMG_2231.jpg", "document.tif"])
def test_scanned_document_with_an_uninformative_name_needs_review(config, name):
    document = describe_text(["", ""], name, config=config)
    assert document.category.value == NEEDS_REVIEW
    assert document.category.rule == "scanned"


def test_scanned_document_ignores_text_only_rules(config):
    # No text layer: even a "notice of action" file name with nothing else is judged by name only.
    document = describe_text([""], "notice of action.pdf", config=config)
    assert document.category.value == CORRESPONDENCE
    assert document.category.evidence.startswith("scanned document")


def test_no_evidence_needs_review(config):
    document = describe_text("Patient called to reschedule the appointment to next Tuesday.", config=config)
    assert document.category.value == NEEDS_REVIEW
    assert document.category.rule == "no-match"


def test_weak_evidence_needs_review(config):
    # One supporting phrase in a sentence (weight 2) is below min_score 4: never guess.
    document = describe_text("Please bring your lab results to the next visit, as we discussed earlier.",
                             config=config)
    assert document.category.value == NEEDS_REVIEW
    assert document.category.rule == "too-weak"
    assert "medical_records 2" in document.category.evidence


def test_conflicting_evidence_needs_review_and_names_both_sides(config):
    document = describe_text("MEDICAL DIRECTOR REVIEW\nNOTICE OF ACTION\nSee attached.", config=config)
    assert document.category.value == NEEDS_REVIEW
    assert document.category.rule == "conflict"
    assert "correspondence 8" in document.category.evidence
    assert "plan_statements 8" in document.category.evidence
    assert "denial-letter" in document.category.evidence and "medical-director-review" in document.category.evidence


def test_title_phrase_weighs_more_than_the_same_phrase_in_a_sentence(config):
    heading = describe_text("UM REVIEW NOTES\nSee the letter of medical necessity from the provider for details.",
                            config=config)
    sentence = describe_text("LETTER OF MEDICAL NECESSITY\nThese are not the UM review notes the nurse wrote.",
                             config=config)
    assert heading.category.value == PLAN_STATEMENTS, heading.category.reason
    assert sentence.category.value == CORRESPONDENCE, sentence.category.reason


# ------------------------------------------------------------------------------ configuration of rules

def write_config(tmp_path: Path, rules: str):
    path = tmp_path / "imr.toml"
    path.write_text(rules)
    flags = {key: str(tmp_path / key) for key in ("inbox", "outbox", "archive", "state")}
    return load_config(path, flags=flags, environ={})


def test_custom_rule_from_imr_toml_takes_effect(tmp_path, config):
    text = "TUMOR BOARD MINUTES\nThe board discussed the options for this member."
    assert describe_text(text, config=config).category.value == NEEDS_REVIEW
    custom = write_config(tmp_path, """
[[rules.rule]]
id = "tumor-board"
kind = "category"
category = "plan_statements"
weight = 3
patterns = ['tumou?r board']
""")
    document = describe_text(text, config=custom)
    assert document.category.value == PLAN_STATEMENTS
    assert document.category.rule == "rule:tumor-board"


def test_custom_privileged_and_withhold_rules_take_effect(tmp_path):
    custom = write_config(tmp_path, """
[[rules.rule]]
id = "risk-management"
kind = "privileged"
label = "risk management file"
patterns = ['risk management file']

[[rules.rule]]
id = "sensitive-services"
kind = "withhold"
label = "sensitive services (Civ. 56.107)"
patterns = ['sensitive services? confidential communication']
""")
    privileged = describe_text("RISK MANAGEMENT FILE\nNotes.", config=custom)
    assert privileged.privileged.value is True
    assert privileged.privileged.rule == "rule:risk-management"
    withheld = describe_text("Sensitive services confidential communication request.", config=custom)
    assert withheld.privileged.value is False
    assert withheld.withheld.value is True and withheld.withheld.rule == "rule:sensitive-services"


def test_disabled_built_in_rule_no_longer_fires(tmp_path, config):
    text = "NOTICE OF ACTION\nSee the enclosed information."
    assert describe_text(text, config=config).category.rule == "rule:denial-letter"
    custom = write_config(tmp_path, '[rules]\ndisable = ["denial-letter"]\n')
    document = describe_text(text, config=custom)
    assert document.category.value == NEEDS_REVIEW
    assert "denial-letter" not in document.category.evidence


def test_min_score_and_margin_come_from_the_configuration(tmp_path):
    custom = write_config(tmp_path, "[rules]\nmin_score = 1\nmargin = 1\n")
    document = describe_text("Please bring your lab results to the next visit, as we discussed earlier.",
                             config=custom)
    assert document.category.value == MEDICAL_RECORDS


def test_rule_tag_must_be_text(tmp_path):
    from packet.errors import ConfigError
    with pytest.raises(ConfigError, match="tag must be text"):
        write_config(tmp_path, "[[rules.rule]]\nid = \"x\"\nkind = \"category\"\ncategory = \"correspondence\"\n"
                               "patterns = ['x']\ntag = 3\n")


@pytest.mark.parametrize(("extra", "problem"), [
    ("evidence = \"heading\"", "evidence must be one of meaning, statement"),
    ("context = 'psych'", "context must be a list of text patterns"),
    ("context = ['(psych']", "context pattern '(psych' is not a valid regular expression"),
])
def test_rule_evidence_and_context_are_checked(tmp_path, extra, problem):
    from packet.errors import ConfigError
    with pytest.raises(ConfigError, match=re.escape(problem)):
        write_config(tmp_path, f"[[rules.rule]]\nid = \"x\"\nkind = \"withhold\"\npatterns = ['x']\n{extra}\n")


def test_a_category_rule_takes_no_evidence_mode(tmp_path):
    from packet.errors import ConfigError
    with pytest.raises(ConfigError, match="evidence and context are for privileged and withhold rules"):
        write_config(tmp_path, "[[rules.rule]]\nid = \"x\"\nkind = \"category\"\ncategory = \"correspondence\"\n"
                               "patterns = ['x']\nevidence = \"statement\"\n")


def test_a_statement_rule_counts_where_it_is_said_and_only_in_its_context(tmp_path):
    custom = write_config(tmp_path, """
[[rules.rule]]
id = "hold-for-counsel"
kind = "withhold"
label = "held for counsel"
evidence = "statement"
context = ['\\bgrievance\\b']
patterns = ['\\bhold for counsel\\b']
""")
    said = describe_text("Grievance file\nReviewed 10/01/2026. Hold for counsel.", config=custom)
    assert said.withheld.rule == "rule:hold-for-counsel" and "page 1" in said.withheld.evidence
    assert not describe_text("Grievance file\nIf disputed, hold for counsel.", config=custom).withheld.value
    assert not describe_text("Visit note\nReviewed 10/01/2026. Hold for counsel.", config=custom).withheld.value


HARM_HEADER = ("Valley Behavioral Health\nPsychiatric Progress Note\nPatient: Rosalind Q. Testmember\n"
               "Assessment: generalized anxiety disorder.\n")


def test_a_stamp_in_capitals_on_its_own_line_is_not_read_into_the_line_above(config):
    # The line above ends without punctuation and holds "if": flattened, the stamp would be its clause.
    text = HARM_HEADER + "Plan: increase the dose if symptoms persist\nDO NOT RELEASE TO PATIENT"
    document = describe_text(text, config=config)
    assert document.withheld.rule == "rule:harm-determination", document.withheld
    assert "123115(b)" in document.withheld.evidence


def test_a_condition_wrapped_onto_the_line_above_still_makes_a_condition(config):
    text = HARM_HEADER + "Providers may refuse access when\nrelease of the records to the patient would be harmful."
    assert describe_text(text, config=config).withheld.value is False


@pytest.mark.parametrize("text", [
    "Quest Diagnostics\nLipid panel\nPatient: Rosalind Q. Testmember\nLDL 130 mg/dL\nDO NOT RELEASE TO PATIENT",
    "Oncology Progress Note\nPatient: Rosalind Q. Testmember\nRadiation therapy, week 3 of 6.\n"
    "DO NOT RELEASE TO PATIENT until reviewed",
    "Physical Therapy Note\nPatient: Rosalind Q. Testmember\nTherapist: J. Lee, PT\nDO NOT RELEASE TO PATIENT",
])
def test_a_stamp_on_a_record_that_is_not_a_mental_health_record_is_not_123115(config, text):
    assert describe_text(text, config=config).withheld.value is False


# ------------------------------------------------------------------------------ grievance response

def test_grievance_resolution_letter_is_the_grievance_response(config):
    document = describe_text(RESOLUTION, config=config)
    assert "grievance_response" in document.tags
    assert is_grievance_response(document)


@pytest.mark.parametrize("text", [ACKNOWLEDGMENT, DENIAL, LOMN, MD_REVIEW])
def test_other_documents_are_not_the_grievance_response(config, text):
    assert not is_grievance_response(describe_text(text, config=config))


def test_resolution_letter_without_a_title_is_recognised_by_its_wording(config):
    text = ("Dear Ms. Testmember,\nWe have completed our review of your appeal. Your appeal has been denied,\n"
            "and we are upholding our original decision about the surgery that was requested for you.")
    assert is_grievance_response(describe_text(text, config=config))


@pytest.mark.parametrize("text", [
    "Golden Poppy Health Plan\nRE: Your Grievance #G-2026-1182\nDear Ms. Testmember,\nWe have resolved your "
    "grievance. The denial is upheld.",
    "Golden Poppy Health Plan\nGrievance Response\nDear Ms. Testmember,\nThis letter is our written response to "
    "your grievance received 08/20/2026.",
    "Golden Poppy Health Plan\nFinal Adverse Determination\nDear Ms. Testmember,\nYour appeal is denied. You may "
    "apply for an Independent Medical Review.",
    "Golden Poppy Health Plan\nResolución de su queja\nEstimada Sra. Testmember:\nHemos revisado su queja. "
    "Mantenemos nuestra decisión.",
])
def test_other_wordings_of_the_grievance_response_are_recognised(config, text):
    assert is_grievance_response(describe_text(text, config=config))


def test_a_letter_promising_a_response_is_not_the_response(config):
    text = ("Golden Poppy Health Plan\nGrievance Acknowledgment\nDear Ms. Testmember,\nWe received your grievance. "
            "We will send you a written response to your grievance within 30 days. Grievance response time may be "
            "shorter for urgent cases.")
    assert not is_grievance_response(describe_text(text, config=config))


def test_grievance_response_must_be_in_the_packet_as_correspondence(config):
    excluded = describe_text(RESOLUTION, config=config, override=Override(exclude="duplicate copy"))
    assert not is_grievance_response(excluded)
    elsewhere = describe_text(RESOLUTION, config=config, override=Override(category=PLAN_STATEMENTS))
    assert not is_grievance_response(elsewhere)


def test_person_can_vouch_for_a_scanned_grievance_response_by_its_title(config):
    scanned = describe_text([""], "scan0002.pdf", config=config,
                            override=Override(category=CORRESPONDENCE, title="Grievance resolution letter"))
    assert is_grievance_response(scanned)
    plain = describe_text([""], "scan0002.pdf", config=config, override=Override(category=CORRESPONDENCE))
    assert not is_grievance_response(plain)


# ------------------------------------------------------------------------------ privileged

PRIVILEGED_CASES = [
    ("attorney-client", "ATTORNEY-CLIENT PRIVILEGED COMMUNICATION\nMemo to the grievance unit.", "attorney-client"),
    ("work product", "Memorandum.\nThis analysis was prepared at the direction of counsel for the plan.",
     "work-product"),
    ("evidence code 1157", "Minutes. These records are protected under Evidence Code section 1157.", "peer-review"),
    ("peer review committee", "Summary for the peer review committee meeting of October 2026.", "peer-review"),
    ("peer review document", "PEER REVIEW DOCUMENT - CONFIDENTIAL\nCase reviewed by the committee.", "peer-review"),
    ("medical staff peer review", "Medical Staff Peer Review\nFindings: care met the standard.", "peer-review"),
    ("credentialing file", "Credentialing File: Dr. Alan Spineworth\nBoard certification verified.", "peer-review"),
    ("H&S 1370", "Quality file kept under Health and Safety Code section 1370 for this provider.", "peer-review"),
    ("confidential and proprietary", "CONFIDENTIAL AND PROPRIETARY\nPlan medical policy 7.01.", "confidential-proprietary"),
    ("licensed criteria", "Lumbar fusion subset.\n© 2026 Change Healthcare. InterQual is a registered trademark.",
     "licensed-criteria"),
    # Counsel's memos are legal advice whether or not they say "privileged".
    ("counsel's memo", "LEGAL MEMORANDUM\nTo: Grievance and Appeals\nRe: the member's pending lawsuit\n"
     "The member filed suit over the denial. Our exposure is limited.", "counsel-memo"),
    ("from general counsel", "MEMO\nFrom: Office of the General Counsel\nTo: Utilization Management\n"
     "The denial can be defended at review.", "counsel-memo"),
    ("quality committee", "Incident Review\nConfidential - prepared for the Quality Committee.\nFall on unit 4B.",
     "peer-review"),
    ("patient safety work product", "Root cause analysis\nPatient Safety Work Product\nSequence of events.",
     "peer-review"),
    ("peer review privileged stamp", "Peer Review Privileged\nPhysician reviewer notes on the fusion request.",
     "peer-review"),
    ("confidential peer review stamp", "Confidential Peer Review\nCase 2026-114: timeliness of the decision.",
     "peer-review"),
    ("spanish attorney-client", "COMUNICACIÓN PRIVILEGIADA ENTRE ABOGADO Y CLIENTE\nMemorando sobre la queja.",
     "attorney-client"),
    ("spanish work product", "Memorando\nProducto del trabajo del abogado.\nAnálisis del caso.", "work-product"),
    ("quality assurance review", "Privileged and Confidential: Quality Assurance Review\nCase 2026-210: delay in "
     "the authorization.", "peer-review"),
    ("incident report", "UNUSUAL OCCURRENCE REPORT\nFall in room 12 on 10/01/2026.", "risk-management"),
    ("risk management file", "Risk Management Incident Report - Confidential\nSequence of events.", "risk-management"),
    ("spanish incident report", "INFORME DE INCIDENTE\nCaída en la habitación 12.", "risk-management"),
]


@pytest.mark.parametrize("text", [
    "Grievance Resolution\nDear Ms. Testmember,\nThe Quality Improvement Committee meets monthly. We upheld "
    "our decision.",
    "Progress Note\nPatient: Rosalind Q. Testmember\nPatient serves on the hospital's quality committee as a weekly volunteer.",
    "Estimada Sra. Testmember:\nSu queja fue revisada por nuestro comité de calidad.\nAtentamente",
    "Grievance Resolution\nDear Ms. Testmember,\nYour records were not part of any confidential peer review. We "
    "upheld our decision.",
])
def test_a_committee_named_in_a_sentence_does_not_make_a_document_privileged(config, text):
    # Neither a sentence near the top of a letter nor a field line joined with the sentence below it
    # is a heading.
    assert describe_text(text, config=config).privileged.value is False


@pytest.mark.parametrize(("name", "text", "rule"), PRIVILEGED_CASES, ids=[case[0] for case in PRIVILEGED_CASES])
def test_privileged_by_rule_with_evidence(config, name, text, rule):
    document = describe_text(text, config=config)
    assert document.privileged.value is True
    assert document.privileged.rule == f"rule:{rule}"
    assert "page 1" in document.privileged.evidence
    # Privileged documents never reach the member or provider.
    assert document.withheld.value is True and document.is_withheld
    assert document.withheld.rule == "privileged"
    assert document.withheld.evidence.startswith("privileged: ")


@pytest.mark.parametrize("text", [PRIVILEGED_CASES[0][1], PRIVILEGED_CASES[1][1], PRIVILEGED_CASES[2][1]])
def test_counsel_and_peer_review_documents_are_plan_statements(config, text):
    # privileged/ files are classified by rules too: counsel's memos and quality files are the plan's own.
    document = describe_text(text, "privileged/memo.pdf", config=config, privileged_folder=True)
    assert document.category.value == PLAN_STATEMENTS, document.category.reason
    assert document.category.rule == "rule:plan-internal-legal-or-quality"


def test_privileged_folder_and_override(config):
    folder = describe_text(PROGRESS, "privileged/qoc.pdf", config=config, privileged_folder=True)
    assert folder.privileged.value is True
    assert (folder.privileged.rule, folder.privileged.evidence) == ("folder", "folder privileged/")
    assert folder.category.value == MEDICAL_RECORDS  # still classified by rules
    override = describe_text(PROGRESS, config=config, override=Override(privileged="counsel's review memo"))
    assert (override.privileged.rule, override.privileged.evidence) == ("override", "counsel's review memo")
    assert override.withheld.value is True
    assert override.withheld.evidence == "privileged: counsel's review memo"


@pytest.mark.parametrize("text", [
    DENIAL,  # cites InterQual criteria: the member must get the letter
    "The member's attorney called to ask about the status of the appeal.",
    "CONFIDENTIALITY NOTICE: This fax contains privileged and confidential information intended only for the "
    "recipient. If you are not the intended recipient, destroy it.",
    "Medical director review with peer-to-peer discussion; the physician reviewer is board certified.",
    "Dear Ms. Garcia-Lopez,\nThis letter is not a legal memorandum or legal advice. You may wish to consult "
    "your own counsel about your rights.",
    "NURSING NOTE\nPatient slipped in the hallway; an incident report was filed per policy.",
    "Progress note\nWe discussed a root cause analysis of her back pain flares with her.",
])
def test_passing_words_do_not_make_a_document_privileged(config, text):
    document = describe_text(text, config=config)
    assert document.privileged.value is False
    assert document.privileged.rule == "default"
    assert document.withheld.value is False


# ------------------------------------------------------------------------------ withheld

WITHHELD_CASES = [
    ("psychotherapy notes", "PSYCHOTHERAPY NOTES\nSession 4. Kept apart from the medical record.",
     "psychotherapy-notes", "164.524(a)(1)"),
    ("legal proceeding", "Chronology compiled in anticipation of litigation about this claim.",
     "legal-proceeding", "164.524(a)(1)"),
    ("harmful mental health", "Access to these mental health records was refused under H&S 123115(b) on "
     "09/01/2026: a substantial risk of significant adverse or detrimental consequences to the patient.",
     "harmful-mental-health", "123115(b)"),
]


@pytest.mark.parametrize(("name", "text", "rule", "citation"), WITHHELD_CASES, ids=[c[0] for c in WITHHELD_CASES])
def test_withheld_by_law_with_evidence(config, name, text, rule, citation):
    document = describe_text(text, config=config)
    assert document.privileged.value is False
    assert document.withheld.value is True and document.is_withheld
    assert document.withheld.rule == f"rule:{rule}"
    assert citation in document.withheld.evidence and "page 1" in document.withheld.evidence


def test_withhold_override(config):
    document = describe_text(PROGRESS, config=config,
                             override=Override(withhold_from_member="provider found release harmful (note 2026-09-01)"))
    assert document.withheld.value is True
    assert document.withheld.rule == "override"
    assert document.withheld.evidence == "provider found release harmful (note 2026-09-01)"
    assert document.privileged.value is False


def test_ordinary_record_is_not_withheld(config):
    document = describe_text(PROGRESS, config=config)
    assert (document.withheld.value, document.withheld.rule) == (False, "default")
    assert not document.is_withheld


# ------------------------------------------------------------------------------ identity

@pytest.mark.parametrize("text", [
    "Patient: Rosalind Q. Testmember",
    "Patient: TESTMEMBER, ROSALIND Q",
    "Name: rosalind   testmember",
    "Re: Rosalind\nQuinn Testmember",
    f"Member ID: {MEMBER_ID}",
    "DOB: 04/09/1961", "DOB 4/9/1961", "Date of birth: 1961-04-09", "born April 9, 1961", "DOB: 09-Apr-1961",
])
def test_identity_confirmed(config, text):
    document = describe_text(["Visit note, nothing to see.", text], config=config)
    assert document.identity.value == IDENTITY_CONFIRMED, document.identity.evidence
    assert "found on page 2" in document.identity.evidence


def test_confirmed_evidence_does_not_repeat_identifiers(config):
    document = describe_text(PROGRESS + f"\nMember ID: {MEMBER_ID}", config=config)
    assert document.identity.value == IDENTITY_CONFIRMED
    evidence = document.identity.evidence
    assert "member name found on page 1" in evidence and "member id found on page 1" in evidence
    for secret in (MEMBER_ID, "Testmember", "Rosalind", "1961", "04/09"):
        assert secret not in evidence


@pytest.mark.parametrize(("text", "what"), [
    (f"Patient: Rosalind Testmember\nMember ID: {OTHER_ID}", "member id"),
    ("Patient: Rosalind Testmember\nDOB: 02/02/1950", "date of birth"),
    ("Patient: Rosalind Testmember\nDate of birth: March 3, 1961", "date of birth"),
    ("Member #: XXXXX1234", "member id"),
])
def test_identity_mismatch_on_a_different_id_or_birth_date(config, text, what):
    document = describe_text(text, config=config)
    assert document.identity.value == IDENTITY_MISMATCH
    assert document.identity.evidence == f"a different {what} on page 1"


@pytest.mark.parametrize("text", [
    "Member ID: XXXXX7665",  # masked, right digits
    f"Member ID: {MEMBER_ID}-01",  # dependent suffix
    "DOB: 09/04/1961",  # written day-first
])
def test_same_member_written_differently_is_not_a_mismatch(config, text):
    document = describe_text(f"Patient: Rosalind Testmember\n{text}", config=config)
    assert document.identity.value == IDENTITY_CONFIRMED, document.identity.evidence


def test_one_foreign_page_in_a_fax_makes_a_mismatch(config):
    foreign = f"PROGRESS NOTE\nPatient: Other, Person   DOB: 02/02/1950   Member ID: {OTHER_ID}\nKnee pain."
    document = describe_text([FAX_COVER, PROGRESS, foreign], "fax.pdf", config=config)
    assert document.identity.value == IDENTITY_MISMATCH
    evidence = document.identity.evidence
    assert "a different member id on page 3" in evidence and "a different date of birth on page 3" in evidence
    for secret in (OTHER_ID, "1950", "Other, Person", MEMBER_ID):
        assert secret not in evidence
    assert any("another person" in item for item in needs_attention(document))


@pytest.mark.parametrize(("pages", "kwargs", "rule"), [
    (["Clinical guideline for lumbar fusion, general text."], {}, "identity-check"),
    ([""], {}, "identity-check"),  # scanned
    ([PROGRESS], {"facts": None}, "no-case-facts"),
])
def test_identity_not_found(config, pages, kwargs, rule):
    document = describe_text(pages, config=config, **kwargs)
    assert document.identity.value == IDENTITY_NOT_FOUND
    assert document.identity.rule == rule


# ------------------------------------------------------------------------------ title

def test_title_override_beats_everything(config):
    document = describe_text(DENIAL, config=config, title="Meta title", override=Override(title="NOA 2026-11-02"))
    assert (document.title.value, document.title.rule) == ("NOA 2026-11-02", "override")


def test_sensible_metadata_title_is_used(config):
    document = describe_text(DENIAL, config=config, title="Notice of Action - lumbar fusion")
    assert (document.title.value, document.title.rule) == ("Notice of Action - lumbar fusion", "metadata")


@pytest.mark.parametrize("junk", ["Microsoft Word - denial.docx", "untitled", "Document1", "scan0001.pdf",
                                  "Letter template"])
def test_junk_metadata_title_is_ignored(config, junk):
    document = describe_text(DENIAL, config=config, title=junk)
    assert (document.title.value, document.title.rule) == ("Notice of Action", "heading")


@pytest.mark.parametrize(("text", "title"), [
    (MRI, "MRI Lumbar Spine Without Contrast"),
    (PROGRESS, "Progress Note"),
    (LOMN, "Letter of Medical Necessity"),
    (MD_REVIEW, "Medical Director Review"),
    ("Consent for Treatment\nI agree to the procedure described below and its risks.", "Consent for Treatment"),
])
def test_title_from_a_heading(config, text, title):
    document = describe_text(text, config=config)
    assert (document.title.value, document.title.rule) == (title, "heading")


@pytest.mark.parametrize(("name", "title"), [
    ("medical-records/MRI_report-2026-08-14.pdf", "MRI report 2026-08-14"),
    ("scan0001.pdf", "scan0001"),
])
def test_title_falls_back_to_the_cleaned_file_name(config, name, title):
    document = describe_text([""], name, config=config)
    assert (document.title.value, document.title.rule) == (title, "file-name")


def test_letter_without_heading_gets_its_file_name_not_an_address_line(config):
    document = describe_text(MEMBER_APPEAL, "member appeal letter.pdf", config=config)
    assert (document.title.value, document.title.rule) == ("member appeal letter", "file-name")


# ------------------------------------------------------------------------------ date

@pytest.mark.parametrize(("pages", "name", "expected", "rule"), [
    ([PROGRESS], "document.pdf", dt.date(2026, 8, 14), "labelled-date"),  # skips the DOB before it
    ([MRI], "document.pdf", dt.date(2026, 6, 3), "labelled-date"),
    ([DENIAL], "document.pdf", dt.date(2026, 11, 2), "letter-date"),
    (["Memo\nDated: 1 October 2026\nText."], "document.pdf", dt.date(2026, 10, 1), "labelled-date"),
    (["Some text written around 09/15/2026 about care."], "document.pdf", dt.date(2026, 9, 15), "first-date"),
    ([""], "MRI 2026-06-03.pdf", dt.date(2026, 6, 3), "file-name-date"),
    ([""], "labs_20260701.pdf", dt.date(2026, 7, 1), "file-name-date"),
    (["No dates here."], "notes.pdf", None, "none"),
])
def test_date_extraction(config, pages, name, expected, rule):
    document = describe_text(pages, name, config=config)
    assert (document.date.value, document.date.rule) == (expected, rule), document.date.evidence


def test_date_labels_on_a_later_page_beat_an_unlabelled_date_on_page_1(config):
    document = describe_text(["Cover sheet sent 11/20/2026", "Date of service: 08/14/2026"], config=config)
    assert (document.date.value, document.date.rule) == (dt.date(2026, 8, 14), "labelled-date")
    assert document.date.evidence == 'label "Date of service" on page 2'


@pytest.mark.parametrize("text", [
    "Patient DOB 04/09/1961 and nothing else",  # the member's date of birth is not the document date
    "Rosalind Testmember (April 9, 1961) was seen in clinic",  # ... even without a label
    "Date: 02/30/2026",  # impossible
    "Date: 01/15/2027",  # after the document reached the plan
    "Seen by the school nurse; date of birth 05/05/1980 noted.",  # any birth date
])
def test_implausible_dates_are_rejected(config, text):
    assert describe_text(text, "notes.pdf", config=config).date.value is None


def test_date_override(config):
    document = describe_text(PROGRESS, config=config, override=Override(date=dt.date(2026, 1, 2)))
    assert (document.date.value, document.date.rule) == (dt.date(2026, 1, 2), "override")


def test_find_dates_formats():
    text = "04/09/1961, 4/9/1961, 1961-04-09, April 9, 1961, Apr. 9 1961, 9 April 1961, 09-Apr-1961, 4/9/61"
    assert [value for value, _, _ in find_dates(text)] == [MEMBER_DOB] * 8
    assert find_dates("13/45/2026 and 2026-02-30") == []


# ------------------------------------------------------------------------------ author

def test_author_from_the_from_line_or_the_letterhead(config):
    assert describe_text(FAX_COVER, config=config).author == "Capitol Orthopedics"
    assert describe_text(MRI, config=config).author == "Sacramento Valley Imaging"
    assert describe_text("Valley Imaging - RADIOLOGY REPORT\nText.", config=config).author == "Valley Imaging"
    assert describe_text("Some text without a sender.", config=config).author is None


# ------------------------------------------------------------------------------ needs_attention

def test_needs_attention_lists_what_a_person_must_check(config):
    assert needs_attention(describe_text(DENIAL, config=config)) == []
    unclassified = needs_attention(describe_text([""], "scan0001.pdf", config=config))
    assert any("category could not be decided" in item for item in unclassified)
    assert any("No document date" in item for item in unclassified)
    flagged = needs_attention(describe_text(PRIVILEGED_CASES[0][1] + "\nDate: 10/01/2026", config=config))
    assert any("flagged it as privileged" in item for item in flagged)
    withheld = needs_attention(describe_text(WITHHELD_CASES[0][1] + "\nDate: 10/01/2026", config=config))
    assert any("withheld it from the member" in item for item in withheld)
    unknown = needs_attention(describe_text("PROGRESS NOTE\nDate of service: 08/14/2026\nChief complaint: pain",
                                            config=config))
    assert any("was not found" in item for item in unknown)
    # A person's own decisions need no second look; an excluded document needs nothing.
    vouched = describe_text(DENIAL, config=config, override=Override(privileged="counsel says so"))
    assert needs_attention(vouched) == []
    assert needs_attention(describe_text([""], "scan0001.pdf", config=config, override=Override(exclude="dup"))) == []


def test_excluded_reason_is_carried(config):
    document = describe_text(DENIAL, config=config, override=Override(exclude="duplicate of the faxed copy"))
    assert document.excluded == "duplicate of the faxed copy"


# ------------------------------------------------------------------------------ end to end with real PDFs

def convert_pdf(path: Path, relpath: str, config) -> Converted:
    from packet.intake.convert.batch import convert
    stat = path.stat()
    return convert(SourceFile(relpath=relpath, path=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns), config)


def test_end_to_end_denial_letter_pdf(tmp_path, config):
    path = make_pdf(tmp_path / "case" / "notice.pdf", [DENIAL])
    result = convert_pdf(path, "notice.pdf", config)
    document = describe(source("notice.pdf"), result, FACTS, None, config, RECEIVED)
    assert document.category.value == CORRESPONDENCE, document.category.reason
    assert document.identity.value == IDENTITY_CONFIRMED
    assert document.date.value == dt.date(2026, 11, 2)
    assert document.title.value == "Notice of Action"
    assert document.sha256 == result.sha256 and document.pages == 1


def test_end_to_end_fax_with_a_foreign_page(tmp_path, config):
    foreign = f"PROGRESS NOTE\nPatient: Other, Person   DOB: 02/02/1950   Member ID: {OTHER_ID}\nKnee pain."
    path = make_pdf(tmp_path / "case" / "fax.pdf", [FAX_COVER, PROGRESS, foreign])
    result = convert_pdf(path, "fax.pdf", config)
    document = describe(source("fax.pdf"), result, FACTS, None, config, RECEIVED)
    assert document.category.value == MEDICAL_RECORDS, document.category.reason
    assert document.identity.value == IDENTITY_MISMATCH
    assert "page 3" in document.identity.evidence
    assert document.date.value == dt.date(2026, 8, 14)
