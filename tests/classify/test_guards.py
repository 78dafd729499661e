"""The guards: page-level identity (issue 12 part 2) and withholding by meaning (issue 12 part 3, issue 13
item 12), on the generated evaluation set of bench/guards_eval.py and on the issue's reproductions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is not an installed package

from bench import guards_eval  # noqa: E402
from bench.guards_eval import FACTS, MEMBER  # noqa: E402

from packet.classify.identity import PAGE_MEMBER, PAGE_OTHER, PAGE_UNLABELLED, page_identities  # noqa: E402
from packet.classify.rules import describe, needs_attention, withheld_correspondence  # noqa: E402
from packet.config import load_config  # noqa: E402
from packet.intake.folder import load_overrides  # noqa: E402
from packet.errors import CaseError  # noqa: E402
from packet.model.case import Person, parse_case  # noqa: E402
from packet.model.models import (  # noqa: E402
    CORRESPONDENCE,
    IDENTITY_CONFIRMED,
    IDENTITY_MISMATCH,
    IDENTITY_NOT_FOUND,
    NEEDS_REVIEW,
    Converted,
    Override,
    SourceFile,
)
from packet.pipeline.gate import document_items  # noqa: E402

RECEIVED = guards_eval.RECEIVED


@pytest.fixture(scope="module")
def config():
    return load_config(None, check_paths=False)


def describe_pages(config, pages, *, relpath="document.pdf", hint=None, override=None, facts=FACTS,
                   confidence=()):
    source = SourceFile(relpath=relpath, path=Path("/nonexistent") / relpath, size=1, mtime_ns=0, hint_category=hint)
    converted = Converted(sha256="cd" * 32, pdf_path=Path("/nonexistent/doc.pdf"), pages=len(pages),
                          page_texts=tuple(pages), source_kind="pdf", page_confidence=tuple(confidence))
    return describe(source, converted, facts, override, config, RECEIVED)


# ------------------------------------------------------------------------------ the evaluation set

def test_the_evaluation_set_is_as_large_as_the_issue_asks():
    assert len(guards_eval.identity_cases()) >= 40
    assert sum(len(pages) for _, pages in guards_eval.member_documents()) >= 100
    for kind in guards_eval.WITHHELD_TITLES:
        assert len(guards_eval.withheld_documents(kind)) >= 50, kind
        assert len(guards_eval.mention_documents(kind)) >= 50, kind


def test_every_guard_meets_its_target(config):
    rows = guards_eval.evaluate(config)
    assert len(rows) == 14
    for row in rows:
        assert row.met, (row.what, row.failures[:5])


@pytest.mark.parametrize("case", guards_eval.identity_cases(), ids=lambda case: case.name)
def test_another_patient_page_is_named(config, case):
    document = describe_pages(config, case.pages)
    assert document.identity.value == IDENTITY_MISMATCH, document.identity.evidence
    assert set(document.other_person_pages) == set(case.other_pages)
    for secret in ("Chen", "CHEN", "M440017788", "1950", "9921", "00448812", "Torres"):
        assert secret not in document.identity.evidence


# ------------------------------------------------------------------------------ issue 12, item 2

ISSUE_LAB = ("LABORATORY REPORT\nPatient: GARCIA-LOPEZ, MARIA E   DOB: 03/17/1984\nHIV-1/2 Ab: NONREACTIVE",
             "LABORATORY REPORT (continued)\nPatient: CHEN, ROBERT W / Age/Sex 77/M / MRN 00448812\n"
             "HIV-1/2 Ab: REACTIVE")


def test_issue_12_item_2_a_text_page_of_another_patient_is_a_mismatch(config):
    document = describe_pages(config, ISSUE_LAB, hint="medical_records")
    assert document.identity.value == IDENTITY_MISMATCH
    assert document.other_person_pages == (2,)
    assert "page 2" in document.identity.evidence and "CHEN" not in document.identity.evidence
    items = document_items(FACTS, [document])
    assert [item.code for item in items if item.code == "identity_mismatch"] == ["identity_mismatch"]


def test_a_letter_to_another_member_is_a_mismatch_wherever_it_was_filed(config):
    """Another member's grievance letter, filed with this case's correspondence, names nobody by a
    patient label: its salutation says whom it was written to."""
    letter = ("Golden Poppy Health Plan\nOctober 1, 2026\nRobert Chen\n12 Elm St\nFresno, CA 93702\n"
              "Dear Mr. Chen,\nWe have completed our review of your appeal. We uphold our decision.\nSincerely,")
    document = describe_pages(config, [letter], relpath="correspondence/resolution.pdf", hint=CORRESPONDENCE)
    assert document.identity.value == IDENTITY_MISMATCH and document.other_person_pages == (1,)
    assert "addressee" in document.identity.evidence and "Chen" not in document.identity.evidence
    # Letters to the member, to her representative and to her provider are hers.
    facts = dataclasses.replace(FACTS, representative=Person(name="Carmen Ortiz"))
    for salutation in ("Dear Ms. García-López,", "Estimada Sra. Garcia:", "Dear Mrs. Ruiz,", "Dear Ms. Ortiz,",
                       "Dear Mr. Spineworth,", "Dear Dr. Lee,", "Dear Member,"):
        mine = describe_pages(config, [f"Golden Poppy Health Plan\n{salutation}\nWe received your appeal."],
                              relpath="correspondence/ack.pdf", hint=CORRESPONDENCE, facts=facts)
        assert mine.identity.value != IDENTITY_MISMATCH, salutation


def test_page_statuses(config):
    converted = Converted(sha256="ef" * 32, pdf_path=Path("/x.pdf"), pages=3, source_kind="pdf",
                          page_texts=(ISSUE_LAB[0], "Findings are unremarkable.", ISSUE_LAB[1]))
    statuses = [p.status for p in page_identities(FACTS, converted, 2026)]
    assert statuses == [PAGE_MEMBER, PAGE_UNLABELLED, PAGE_OTHER]


def test_a_person_confirms_only_some_pages(config):
    both = ISSUE_LAB + ("Patient: Wanda Kowalski\nEligibility confirmed.",)
    some = describe_pages(config, both, override=Override(identity_confirmed="same patient, name misprinted",
                                                          identity_confirmed_pages=(2,)))
    assert some.identity.value == IDENTITY_MISMATCH and some.other_person_pages == (3,)
    every = describe_pages(config, both, override=Override(identity_confirmed="checked",
                                                           identity_confirmed_pages=(2, 3)))
    assert every.identity.value == IDENTITY_CONFIRMED and every.identity.rule == "override"
    assert every.other_person_pages == ()
    whole = describe_pages(config, both, override=Override(identity_confirmed="checked"))
    assert whole.identity.value == IDENTITY_CONFIRMED and whole.other_person_pages == ()


@pytest.mark.parametrize("label", [
    "Subscriber: Robert Chen   Subscriber DOB: 02/02/1950",
    "Parent/Guardian Name: Robert Chen",
    "Physician: Dr. Robert Chen",
    "Electronically signed by: Robert Chen, MD",
    "cc: Robert Chen",
    "Author: Robert Chen, LCSW",
    "Insured: Robert Chen   Insured DOB: 02/02/1950",
    "Referring physician name: Robert Chen",
    "Nombre del asegurado titular: Roberto Chen",
    "Patient: states that her pain is worse",
    "Patient Name: ____________________",
    "Medication Name: Lisinopril Oral",
    "Pharmacy Name: CVS Pharmacy",
    "Name: Valley Imaging Center   Phone: (916) 555-0100",
    "Member: Golden Poppy Health Plan",
    "Enrollee: Self",
    "Patient: Female",
    "Patient: Mari Garcia-Lopez",  # a short form of her given name
    # a relative's or policy holder's birth date and id after their name on the same line
    "Spouse: Jose Garcia   DOB: 05/05/1955",
    "Subscriber: Jose Garcia  DOB: 05/05/1955  Member ID: W44120077",
    "Responsible party: Jose Garcia | Relationship: Spouse | DOB: 05/05/1955",
    "Relationship: Father   DOB: 05/05/1955",
    "Guarantor: GARCIA, JOSE   Date of Birth:\n05/05/1955",
    "Cónyuge: José García   Fecha de nacimiento: 05/05/1955",
])
def test_people_who_are_not_the_patient_are_not_another_patient(config, label):
    document = describe_pages(config, [f"Patient: Maria Garcia-Lopez   DOB: 03/17/1984\n{label}\nPlan: rest."])
    assert document.identity.value == IDENTITY_CONFIRMED, document.identity.evidence


@pytest.mark.parametrize("line", [
    "Physician: Dr. Luis Garcia   DOB: 02/02/1950",  # a clinician's field before the patient's birth date
    "Guarantor: Self   DOB: 02/02/1950",
    "Spouse: Rosa Chen   Patient DOB: 02/02/1950",
    "Emergency contact phone: (559) 555-0101   DOB: 02/02/1950",
    "Subscriber: Rosa Chen\nDOB: 02/02/1950",  # another line: not the subscriber's field
    "Relationship: Self   Member ID: XJ7788123",
])
def test_a_birth_date_or_id_after_a_field_that_is_not_a_relatives_is_the_patients(config, line):
    document = describe_pages(config, [f"{line}\nGlucose 212 mg/dL (H)"])
    assert document.identity.value == IDENTITY_MISMATCH, document.identity.evidence


def test_low_confidence_ocr_never_confirms_identity(config):
    page = "Patient: Maria Garcia-Lopez   DOB: 03/17/1984\nFindings unremarkable."
    sure = describe_pages(config, [page], confidence=[0.95])
    assert sure.identity.value == IDENTITY_CONFIRMED
    unsure = describe_pages(config, [page], confidence=[0.41])
    assert unsure.identity.value == IDENTITY_NOT_FOUND and "low confidence" in unsure.identity.evidence
    # ... while what it shows of another person still goes to a person
    foreign = describe_pages(config, [page, ISSUE_LAB[1]], confidence=[0.95, 0.41])
    assert foreign.identity.value == IDENTITY_MISMATCH and "low confidence" in foreign.identity.evidence


def test_low_confidence_ocr_never_decides_a_category_alone(config):
    denial = "NOTICE OF ACTION\nYour request for this service has been denied because it is not medically necessary."
    sure = describe_pages(config, [denial], confidence=[0.97])
    assert sure.category.value == CORRESPONDENCE, sure.category.reason
    unsure = describe_pages(config, [denial], confidence=[0.40])
    assert unsure.category.value == NEEDS_REVIEW and unsure.category.rule == "low-confidence"
    assert "low confidence" in unsure.category.evidence


def test_min_confidence_from_imr_toml_is_the_threshold_everywhere(tmp_path):
    """[ocr] min_confidence, not the default, decides what a page OCR read at 0.75 may prove: under
    60 it confirms identity and decides the category; under 80 both go to a person, with the reason."""
    page = "NOTICE OF ACTION\nPatient: Maria Garcia-Lopez   DOB: 03/17/1984\nYour request for this service " \
           "has been denied because it is not medically necessary."
    decided = {}
    for threshold in (60, 80):
        toml = tmp_path / f"imr-{threshold}.toml"
        toml.write_text(f"[ocr]\nmin_confidence = {threshold}\n", encoding="utf-8")
        decided[threshold] = describe_pages(load_config(toml, check_paths=False), [page], confidence=[0.75])
    assert decided[60].identity.value == IDENTITY_CONFIRMED, decided[60].identity.reason
    assert decided[60].category.value == CORRESPONDENCE, decided[60].category.reason
    assert decided[80].identity.value == IDENTITY_NOT_FOUND and "low confidence" in decided[80].identity.evidence
    assert decided[80].category.value == NEEDS_REVIEW and decided[80].category.rule == "low-confidence"


def test_a_letter_greeting_the_plan_by_its_name_is_no_other_person(tmp_path):
    """"Dear Robert Chen:" greets another member; "Dear Blue Harbor," greets the plan the member writes
    to (imr.toml [plan] name), not a person: only that plan's name is known as one."""
    letter = ["Dear Blue Harbor,\nI am writing to appeal the denial of my surgery.\nMaria Garcia-Lopez"]
    toml = tmp_path / "imr.toml"
    toml.write_text('[plan]\nname = "Blue Harbor Health"\n', encoding="utf-8")
    assert describe_pages(load_config(toml, check_paths=False), letter).identity.value != IDENTITY_MISMATCH
    assert describe_pages(load_config(None, check_paths=False), letter).identity.value == IDENTITY_MISMATCH
    for role in ("Grievance Coordinator", "Provider Relations", "Sir or Madam", "Medical Director", "Appeals Team"):
        page = [f"Dear {role}:\nPlease review my records.\nMaria Garcia-Lopez"]
        assert describe_pages(load_config(None, check_paths=False), page).identity.value != IDENTITY_MISMATCH, role


def test_other_names_and_known_mrns_come_from_case_toml(tmp_path):
    raw = {"review_type": "standard", "dispute_type": "medical_necessity",
           "dmhc_notice_received": dt.datetime(2026, 11, 25, 16, 10, tzinfo=dt.timezone.utc),
           "disputed_service": "x", "member": {"name": "Maria Lopez", "member_id": "M1", "address": ["a"],
                                               "date_of_birth": dt.date(1984, 3, 17),
                                               "other_names": ["Maria Ruiz"], "known_mrns": ["00991122"]},
           "provider": {"name": "Dr. A"}}
    facts = parse_case(raw, "CASE-1")
    assert facts.member.other_names == ("Maria Ruiz",) and facts.member.known_mrns == ("00991122",)
    raw["member"]["other_names"] = "Maria Ruiz"
    with pytest.raises(CaseError) as error:
        parse_case(raw, "CASE-1")
    assert any("other_names" in problem for problem in error.value.problems)
    raw["member"]["other_names"] = []
    raw["provider"]["known_mrns"] = ["1"]  # only [member] has them
    with pytest.raises(CaseError):
        parse_case(raw, "CASE-1")


def test_identity_confirmed_for_a_page_range_in_overrides_toml(tmp_path):
    (tmp_path / "overrides.toml").write_text(
        '["lab.pdf"]\nidentity_confirmed = { reason = "same patient, maiden name", pages = "2, 4-5" }\n'
        '["fax.pdf"]\nidentity_confirmed = { reason = "x", pages = "0-2" }\n'
        '["note.pdf"]\nrelease_to_member = "the member\'s own letter"\n', encoding="utf-8")
    overrides, problems = load_overrides(tmp_path)
    assert overrides["lab.pdf"] == Override(identity_confirmed="same patient, maiden name",
                                            identity_confirmed_pages=(2, 4, 5))
    assert overrides["note.pdf"].release_to_member == "the member's own letter"
    assert "fax.pdf" in overrides and overrides["fax.pdf"].identity_confirmed is None
    assert any("fax.pdf" in problem and "pages" in problem for problem in problems)


# ------------------------------------------------------------------------------ issue 12, item 3 / issue 13, item 12

SIGNED_APPLICATION = (
    "Independent Medical Review Application\n1. The patient\nPatient name: Maria Elena Garcia-Lopez\n"
    "Date of birth: 03/17/1984\n4. Consent to obtain medical records\nI ask for an Independent Medical Review.\n"
    "This authorization does not include psychotherapy notes.\nSignature: Maria Garcia-Lopez  Date: 11/20/2026\n"
    "Form IMRP-APP-1")


def test_issue_12_item_3_the_members_own_application_is_not_withheld(config):
    document = describe_pages(config, [SIGNED_APPLICATION])
    assert document.withheld.value is False and document.privileged.value is False, document.withheld.reason
    assert document.category.value == CORRESPONDENCE and document.category.rule == "rule:imr-packet-form"
    assert document.identity.value == IDENTITY_CONFIRMED


def test_issue_13_item_12_a_psychotherapy_progress_note_is_withheld(config):
    note = "Valley Behavioral Health\nPSYCHOTHERAPY PROGRESS NOTE\nPatient: Maria Garcia-Lopez\nSession 6."
    document = describe_pages(config, [note], hint="medical_records")
    assert document.withheld.value is True and document.withheld.rule == "rule:psychotherapy-notes"
    assert "page 1" in document.withheld.evidence


@pytest.mark.parametrize("title", ["Physical Therapy Session Note", "Nutrition Counseling Session Note",
                                   "Genetic Counseling Note", "Quality Improvement Process Notes",
                                   "Occupational therapy session notes", "Lactation counseling session",
                                   "Psychotherapy Referral and Medical Records Release",
                                   "Psychotherapy referral: please send records and notes"])
def test_near_kinds_are_not_withheld(config, title):
    document = describe_pages(config, [f"{title}\nPatient: Maria Garcia-Lopez\nTolerated well."])
    assert document.withheld.value is False, document.withheld.reason


def test_correspondence_a_rule_would_withhold_goes_to_a_person(config):
    letter = ("PSYCHOTHERAPY NOTES\nDear Ms. Garcia-Lopez, here are the notes you asked for.\n"
              "Patient: Maria Garcia-Lopez")
    document = describe_pages(config, [letter], relpath="correspondence/letter.pdf", hint=CORRESPONDENCE)
    assert document.withheld.value is True  # never released by a rule either
    assert withheld_correspondence(document)
    items = document_items(FACTS, [document])
    assert "withheld_correspondence" in [item.code for item in items]
    assert any("release_to_member" in item for item in needs_attention(document))
    released = describe_pages(config, [letter], relpath="correspondence/letter.pdf", hint=CORRESPONDENCE,
                              override=Override(release_to_member="the member's own request, answered"))
    assert released.withheld.value is False and released.withheld.rule == "override"
    assert not withheld_correspondence(released)
    confirmed = describe_pages(config, [letter], relpath="correspondence/letter.pdf", hint=CORRESPONDENCE,
                               override=Override(withhold_from_member="they are notes, not a letter"))
    assert confirmed.withheld.value is True and not withheld_correspondence(confirmed)
    assert "withheld_correspondence" not in [item.code for item in document_items(FACTS, [confirmed])]


def test_member_facts_are_the_evaluation_member():
    assert MEMBER.other_names and MEMBER.known_mrns


@pytest.mark.parametrize("language", ["en", "es"])
def test_forms_imr_packet_issued_come_back_as_correspondence_and_are_not_withheld(tmp_path, language):
    """The notice mailing's forms, as rendered (text read from the PDF), each carry their form code;
    a returned form is the member's correspondence, even though the authorization mentions
    psychotherapy notes."""
    from helpers import make_config, write_case
    from pypdf import PdfReader

    from packet.mailings.notice import write_notice
    from packet.model.case import load_case

    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox, "IMR-2026-000417", language=language)
    facts = load_case(case_dir)
    pdf = write_notice(config, "IMR-2026-000417", now=dt.datetime(2026, 11, 30, 9, 15, tzinfo=dt.timezone.utc))
    texts = [page.extract_text() or "" for page in PdfReader(str(pdf)).pages]
    codes = {code for text in texts for code in ("IMRP-APP-1", "IMRP-AUTH-1", "IMRP-DECL-1", "IMRP-PHYS-1")
             if code in text}
    assert codes >= {"IMRP-APP-1", "IMRP-AUTH-1"}, codes
    for code in sorted(codes):
        # the form's pages, up to and including the page that carries its code
        end = next(index for index, text in enumerate(texts) if code in text)
        start = end
        while start > 0 and not any(other in texts[start - 1] for other in codes) and end - start < 2:
            start -= 1
        pages = texts[start:end + 1]
        document = describe_pages(load_config(None, check_paths=False), pages, relpath=f"returned {code}.pdf",
                                  facts=facts)
        assert document.category.value == CORRESPONDENCE, (code, document.category.reason)
        assert document.withheld.value is False and document.privileged.value is False, (code, document.withheld.reason)
        assert document.identity.value != IDENTITY_MISMATCH, (code, document.identity.evidence)


@pytest.mark.parametrize("pages", [
    ["NOTICE OF PRIVACY PRACTICES\nThis notice describes how medical information about you may be used.\n"
     "Your rights\nPsychotherapy Notes\nWe must obtain your authorization for most uses of psychotherapy notes."],
    ["AUTHORIZATION TO RELEASE HEALTH INFORMATION\nPatient: Maria Garcia-Lopez\nRecords to release:\n"
     "[ ] Psychotherapy notes\n[X] Progress notes"],
    ["FAX COVER\nPages 3", "PROGRESS NOTE\nPatient: Maria Garcia-Lopez\nChief complaint: anxiety\nHPI: sleeps poorly\n"
     "Exam: calm\nPsychotherapy Notes\nSee separate record."],
    ["PROGRESS NOTE\nPatient: Maria Garcia-Lopez\nPsychotherapy notes: none\nPlan: continue PT."],
    ["PROGRESS NOTE\nPatient is in weekly psychotherapy; psychotherapy notes are kept by Dr. Lee.\nPlan: rest."],
    ["Dear Ms. Garcia-Lopez,\nThis letter is not legal advice and was not prepared in anticipation of litigation.\n"
     "Sincerely,"],
    ["Psychotherapy notes may be requested separately.\nPatient: Maria Garcia-Lopez"],
    ["Golden Poppy Health Plan\nThe member may request psychotherapy notes\nThank you"],
    ["What Is a Psychotherapy Note?\nA note a therapist keeps apart from the record."],
], ids=["privacy notice section", "authorization checkbox", "section heading mid-page", "empty field",
        "mention in a note", "negated legal", "first line sentence", "title-like sentence", "question"])
def test_sections_checkboxes_and_mentions_are_not_the_document(config, pages):
    document = describe_pages(config, pages)
    assert document.withheld.value is False and document.privileged.value is False, document.withheld.reason


def test_a_psychotherapy_note_inside_a_fax_is_withheld(config):
    document = describe_pages(config, ["FAX COVER SHEET\nPages: 3", "Valley Behavioral Health\nPSYCHOTHERAPY NOTE\n"
                                       "Patient: Maria Garcia-Lopez\nSession 3."])
    assert document.withheld.value is True and "page 2" in document.withheld.evidence
    status = describe_pages(config, ["PSYCHOTHERAPY NOTE - Patient did not attend\nPatient: Maria Garcia-Lopez"])
    assert status.withheld.value is True


@pytest.mark.parametrize("text", [
    "Patient Name " * 2000 + "X\nvalue",  # a header row that never ends (backtracking)
    "Patient: Name: DOB: " * 3000,  # thousands of labels on one line
    "\n".join(f"Line {i} of the record" for i in range(20000)),  # thousands of lines
    ("not " * 5000) + "psychotherapy notes",
    "Patient: " + ", ".join(["Chen"] * 5000),
    "Patient Name (" + "last, first yyyymmdd " * 3000 + "\nDOB (" + "mm/dd/yyyy " * 3000,
    "Patient Name (Last, First) DOB (MM/DD/YYYY) Member ID (from card) " * 2000,
], ids=["endless header row", "labels on one line", "many lines", "long negation", "many commas",
        "a format bracket that never ends", "format brackets on one line"])
def test_hostile_pages_are_read_in_bounded_time(config, text):
    import time

    started = time.monotonic()
    describe_pages(config, [text])
    assert time.monotonic() - started < 20  # seconds, on a loaded machine; quadratic work takes minutes


# ------------------------------------------------------------------------------ fields in other shapes

@pytest.mark.parametrize(("text", "fields"), [
    ("CHEN, ROBERT W   02/02/1950   M", "Patient: CHEN, ROBERT W\nDOB: 02/02/1950"),
    ("Chen, Robert  2/2/50  76 yo F", "Patient: Chen, Robert\nDOB: 2/2/50"),
    ("Chen Wu, Roberto   02-02-1950   Male", "Patient: Chen Wu, Roberto\nDOB: 02-02-1950"),
    ("SMITH, JOHN MD 10/01/2026", ""),  # a signer's dated line
    ("SPINEWORTH, ALAN   10/01/2026   M", ""),  # a date of this year or last is not a birth date
    ("Lipids, fasting   09/30/2026   F", ""),
    ("Seen today. Chen, Robert 02/02/1950 M", ""),  # not alone on its line
])
def test_a_label_plate_is_read_only_in_its_own_shape(text, fields):
    from packet.classify.fields import label_line_fields

    assert label_line_fields(text, 2026) == fields


@pytest.mark.parametrize(("text", "name"), [
    ("HPI: Robert Chen is a 76-year-old man with COPD.", "Robert Chen"),
    ("Robert W. Chen is a 76 y/o male.", "Robert W. Chen"),
    ("Roberto Chen Wu es un paciente de 76 años.", "Roberto Chen Wu"),
    ("Her husband, Jose Garcia, is a 45-year-old man.", ""),
    ("Lives with her husband. Jose Garcia is a 45-year-old carpenter.", ""),
    ("The patient is a 42-year-old woman.", ""),
    ("Dr. Alan Spineworth is a 55-year-old surgeon.", ""),
])
def test_a_notes_opening_sentence_names_its_patient(text, name):
    from packet.classify.fields import opening_fields

    assert opening_fields(text) == (f"Patient: {name}" if name else "")


@pytest.mark.parametrize(("text", "counter"), [
    ("LDL 162\nPage 2 of 3", (2, 3)), ("Pg. 1 of 2", (1, 2)), ("Page 2/2", (2, 2)), ("Página 1 de 2", (1, 2)),
    ("Pág. 3 de 3", (3, 3)), ("Page 1 of 1", None), ("Page 3 of 2", None), ("no counter here", None),
    ("Page 1 of 2 ... Page 2 of 2", None),  # two counters on one page tell nothing
])
def test_a_records_page_counter_is_read(text, counter):
    from packet.classify.fields import page_counter

    assert page_counter(text) == counter


def test_a_counter_run_is_the_neighbouring_pages_that_follow_on():
    from packet.classify.fields import counter_run

    counters = [None, (1, 3), (2, 3), (3, 3), (2, 3), (1, 2), (2, 2)]
    assert counter_run(counters, 2) == [1, 2, 3]
    assert counter_run(counters, 4) == [4]  # (2, 3) after (3, 3) starts nothing
    assert counter_run(counters, 6) == [5, 6]


@pytest.mark.parametrize(("text", "withheld"), [
    ("BEHAVIORAL HEALTH\nPatient: Maria Garcia-Lopez\nNote type: Psychotherapy\nImpressions of the session.", True),
    ("Patient: Maria Garcia-Lopez\nVisit Type: Individual psychotherapy   Date: 10/02/2026\nSession content.", True),
    ("Paciente: María García-López\nTipo de nota: Psicoterapia\nContenido de la sesión.", True),
    ("Patient: Maria Garcia-Lopez\nNote type: Counseling session | Duration: 50 min\nExplored coping.", True),
    ("Patient: Maria Garcia-Lopez\nNote type: Physical therapy\nGait training.", False),
    ("Patient: Maria Garcia-Lopez\nVisit type: Nutrition counseling\nDiet reviewed.", False),
    ("Dear Ms. Garcia-Lopez,\nService type: Outpatient psychotherapy\nYour request for 12 sessions was approved.",
     False),  # a service's type on a letter about it: no note
    ("Patient: Maria Garcia-Lopez\nNote type: Progress note\nVisit to schedule psychotherapy only.", False),
    ("Patient: Maria Garcia-Lopez\nEncounter type: Office visit\nDiscussed psychotherapy options.", False),
])
def test_a_notes_type_given_by_its_kind_alone_names_a_note_of_that_kind(config, text, withheld):
    assert describe_pages(config, [text]).withheld.value is withheld


def test_a_table_of_label_and_value_cells_is_read_through_the_pdfs_own_text(config, tmp_path):
    """A lab report drawn as a table ("Patient" | "Robert Chen" | "Age" | "76"): the PDF's text gives
    the cells one space apart, without a colon. Another patient's such page is found; the member's
    is hers; a heading row ("Patient Safety Event") names nobody."""
    from reportlab.lib.pagesizes import letter
    from reportlab.platypus import PageBreak, SimpleDocTemplate, Table

    from packet.intake.convert.batch import convert_many
    path = tmp_path / "lab tables.pdf"
    rows = ([["Patient", "Garcia-Lopez, Maria E", "Age", "42", "Sex", "F"], ["Patient Safety Event", "ID 4471"]],
            [["Patient", "Robert Chen", "Age", "76", "Sex", "M"], ["Glucose", "212 mg/dL (H)"]],
            [["Paciente", "Roberto Chen Wu", "Edad", "76"], ["Glucosa", "212 mg/dL (H)"]],
            [["PATIENT", "CHEN, ROBERT W"], ["Potassium", "5.9 mmol/L (H)"]])
    story = []
    for table in rows:
        story += [Table(table), PageBreak()]
    SimpleDocTemplate(str(path), pagesize=letter).build(story[:-1])
    source = SourceFile(relpath=path.name, path=path, size=path.stat().st_size, mtime_ns=path.stat().st_mtime_ns)
    converted = convert_many([source], config)[0]
    assert "Patient Robert Chen Age 76" in converted.page_texts[1]  # the cells, one space apart
    pages = page_identities(FACTS, converted, RECEIVED.year)
    assert [p.status for p in pages] == [PAGE_MEMBER, PAGE_OTHER, PAGE_OTHER, PAGE_OTHER]
    document = describe(source, converted, FACTS, None, config, RECEIVED)
    assert document.identity.value == IDENTITY_MISMATCH and document.other_person_pages == (2, 3, 4)


def test_a_letter_for_another_patient_is_found_through_word_and_its_wrapped_lines(config, tmp_path):
    """A provider's Word letter "on behalf of my patient, Robert Chen" (LibreOffice's PDF wraps the
    sentence where it will) and a typed note "Patient Robert Chen was seen today": another patient's,
    with no label anywhere. The member's own letter, worded the same, is hers. A Word note named only
    in its footer, "Patient: Robert Chen   Page 1", is another patient's too."""
    import docx

    from packet.intake.convert.batch import convert_many
    sources = []
    for name, patient in (("other.docx", "Robert Chen"), ("member.docx", "Maria Elena Garcia-Lopez")):
        letter = docx.Document()
        letter.add_paragraph("To whom it may concern:")
        letter.add_paragraph(f"I am writing this letter of medical necessity on behalf of my patient, {patient}, "
                             "who has had low back pain for two years despite physical therapy and medication.")
        letter.save(tmp_path / name)
    note = docx.Document()  # another patient's note named only in its footer, the page number after the name
    note.sections[0].footer.paragraphs[0].text = "Patient: Robert Chen   Page 1"
    note.add_paragraph("Progress note. Chief complaint: cough. Plan: fluids and rest.")
    note.save(tmp_path / "footer.docx")
    from reportlab.pdfgen import canvas
    for name, lines in (("note.pdf", ["PROGRESS NOTE", "Patient Robert Chen was seen today for follow-up."]),
                        ("wrapped.pdf", ["I am writing on behalf of my patient, Robert", "Chen, who needs surgery.",
                                         "Follow-up: Patient Robert Chen", "was seen today."])):
        page = canvas.Canvas(str(tmp_path / name))
        for number, line in enumerate(lines):
            page.drawString(72, 720 - 20 * number, line)
        page.save()
    for name in ("other.docx", "member.docx", "note.pdf", "wrapped.pdf", "footer.docx"):
        path = tmp_path / name
        sources.append(SourceFile(relpath=path.name, path=path, size=path.stat().st_size,
                                  mtime_ns=path.stat().st_mtime_ns))
    converted = convert_many(sources, config)
    assert "Robert\nChen" in converted[3].page_texts[0]  # the name wraps
    decided = [describe(source, one, FACTS, None, config, RECEIVED).identity.value
               for source, one in zip(sources, converted)]
    assert decided == [IDENTITY_MISMATCH, IDENTITY_CONFIRMED, IDENTITY_MISMATCH, IDENTITY_MISMATCH,
                       IDENTITY_MISMATCH], decided


@pytest.mark.parametrize(("member_name", "page", "expected"), [
    ("Zhang Wei", "Patient: ZHANG, WEI", IDENTITY_CONFIRMED),  # case.toml has the family name first
    ("Nguyen Van An", "Patient: NGUYEN, VAN AN", IDENTITY_CONFIRMED),
    ("Nguyen Van An", "Patient: Nguyen, An", IDENTITY_CONFIRMED),
    ("Zhang Wei", "Patient: ZHANG, MING", IDENTITY_MISMATCH),
    ("Juan Carlos De La Cruz", "Patient: DE LA CRUZ, JUAN C", IDENTITY_CONFIRMED),  # surname particles
    ("Juan Carlos De La Cruz", "Patient: Juan C. de la Cruz", IDENTITY_CONFIRMED),
    ("Juan Carlos De La Cruz", "Patient: De La Rosa, Juan", IDENTITY_MISMATCH),
    ("María Elena García-López", "Patient: De La Cruz, Juan", IDENTITY_MISMATCH),
    ("María Elena García-López", "Patient: van der Berg, Anna", IDENTITY_MISMATCH),
    ("María Elena García-López", "Patient: Nguyễn Văn An", IDENTITY_MISMATCH),
    ("María Elena García-López", "Patient: De La Torre", IDENTITY_NOT_FOUND),  # a surname alone tells nothing
    ("María Elena García-López", "Patient: Los Angeles County", IDENTITY_NOT_FOUND),
    ("María Elena García-López", "PATIENT: AN ELDERLY MAN", IDENTITY_NOT_FOUND),
])
def test_names_in_family_order_and_with_particles(config, member_name, page, expected):
    member = dataclasses.replace(MEMBER, name=member_name, other_names=(), member_id="W1234567", known_mrns=())
    document = describe_pages(config, [f"{page}\nPlan: rest."], facts=dataclasses.replace(FACTS, member=member))
    assert document.identity.value == expected, document.identity.evidence


@pytest.mark.parametrize("page", ["Patient Robert Chen\nMRN 00448812", "Patient Robert Chen MRN 00448812",
                                  "Paciente Roberto Chen Wu\nMRN 00448812"])
def test_a_table_row_with_a_record_number_names_the_patient_without_known_record_numbers(config, page):
    """A table's name row and its record number row, for a member whose record numbers are not listed
    (a record number alone then tells nothing): the name is read as the patient's."""
    member = dataclasses.replace(MEMBER, known_mrns=())
    document = describe_pages(config, [f"{page}\nCBC within normal limits."],
                              facts=dataclasses.replace(FACTS, member=member))
    assert document.identity.value == IDENTITY_MISMATCH, document.identity.evidence


def test_a_filled_form_of_another_patient_is_read_by_its_fields(config, tmp_path):
    """A fillable intake form: poppler gives the fields' values after the page's labels, apart from
    them, so the values are also read as "field name: value" (packet.intake.convert.pdf.field_lines).
    Another patient's filled form is another patient's; the member's is hers; a check box is no text."""
    from reportlab.pdfgen import canvas

    from packet.intake.convert.batch import convert_many
    sources = []
    for name, patient, born in (("other.pdf", "Robert Chen", "02/02/1950"),
                                ("member.pdf", "Maria Elena Garcia-Lopez", "03/17/1984")):
        form = canvas.Canvas(str(tmp_path / name))
        form.drawString(72, 720, "PATIENT INTAKE FORM")
        form.drawString(72, 690, "Patient name:")
        form.acroForm.textfield(name="form1[0].Page1[0].PatientName[0]", value=patient, x=170, y=685, width=220)
        form.drawString(72, 660, "Date of birth:")
        form.acroForm.textfield(name="date_of_birth", value=born, x=170, y=655, width=220)
        form.acroForm.checkbox(name="consent", checked=True, x=72, y=620)
        form.save()
        path = tmp_path / name
        sources.append(SourceFile(relpath=name, path=path, size=path.stat().st_size, mtime_ns=path.stat().st_mtime_ns))
    other, member = convert_many(sources, config)
    assert "Patient Name: Robert Chen" in other.page_texts[0] and "date of birth: 02/02/1950" in other.page_texts[0]
    assert "consent" not in other.page_texts[0]
    decided = [describe(source, one, FACTS, None, config, RECEIVED).identity.value
               for source, one in zip(sources, (other, member))]
    assert decided == [IDENTITY_MISMATCH, IDENTITY_CONFIRMED]


def test_form_fields_that_cannot_be_read_leave_the_page_text_alone():
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject

    from packet.intake.convert.pdf import field_lines

    def widget(**entries):
        return DictionaryObject({NameObject("/Subtype"): NameObject("/Widget"),
                                 **{NameObject("/" + k): v for k, v in entries.items()}})
    parent = DictionaryObject({NameObject("/T"): TextStringObject("pt_name"),
                               NameObject("/TU"): TextStringObject("Patient Name"),
                               NameObject("/V"): TextStringObject("Robert\nChen")})
    page = DictionaryObject({NameObject("/Annots"): ArrayObject([
        widget(Parent=parent),  # the value is the parent field's, named for people by /TU
        widget(T=TextStringObject("Check Box1"), V=NameObject("/Yes")),  # a check box
        widget(T=TextStringObject("Text7"), V=NumberObject(3)),  # not text
        NumberObject(5),  # not an annotation
        DictionaryObject({NameObject("/Subtype"): NameObject("/Link")})])})
    assert field_lines(page) == "Patient Name: Robert Chen"
    assert field_lines(DictionaryObject({NameObject("/Annots"): NumberObject(1)})) == ""
    assert field_lines(None) == ""
