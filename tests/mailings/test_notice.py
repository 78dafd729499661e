"""The IMR notice mailing (packet.mailings.notice): required contents, fillable pre-filled forms, 14-point authorization."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from helpers import MEMBER_ID, MEMBER_NAME, make_config, write_case
from packet.errors import CaseError
from packet.mailings.notice import add_months, representative_kind, write_notice

PST = dt.timezone(dt.timedelta(hours=-8))
NOW = dt.datetime(2026, 11, 30, 9, 15, tzinfo=PST)
CASE_ID = "IMR-2026-000417"
REPRESENTATIVE = """
[representative]
name = "María José O'Connor-Núñez"
relationship = "madre (parent)"
authorized = true
address = ["77 Calle Larga", "Fresno, CA 93701"]
"""
ASSISTANT = """
[representative]
name = "Daughter Helpwell"
relationship = "daughter, authorized assistant"
address = ["9 Elm Street", "Davis, CA 95616"]
"""


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def notice(tmp_path: Path, **case_kwargs) -> tuple[Path, object]:
    config = make_config(tmp_path)
    write_case(config.paths.inbox, CASE_ID, **case_kwargs)
    return write_notice(config, CASE_ID, now=NOW), config


def page_texts(path: Path) -> list[str]:
    return [squash(page.extract_text() or "") for page in PdfReader(str(path)).pages]


@pytest.fixture(scope="module")
def experimental_spanish(tmp_path_factory):
    return notice(tmp_path_factory.mktemp("exp"), language="es", dispute_type="experimental",
                  review_type="expedited", extra=REPRESENTATIVE)


@pytest.fixture(scope="module")
def standard_english(tmp_path_factory):
    return notice(tmp_path_factory.mktemp("std"))


def test_notice_is_written_into_the_case_outbox(standard_english):
    path, config = standard_english
    assert path == config.paths.outbox / CASE_ID / "notice" / "20261130T091500" / "imr-notice.pdf"
    assert (path.parent / "imr-notice-letter.docx").is_file()
    assert path.stat().st_mode & 0o777 == 0o640
    events = [json.loads(line) for line in config.audit_log.read_text().splitlines()]
    assert [e["event"] for e in events[-2:]] == ["notice", "print_queued"]
    assert events[-2]["case"] == CASE_ID
    queued = list((config.paths.outbox / "_print").iterdir())
    assert [p.name for p in queued] == [f"20261130T171500Z-{CASE_ID}-notice-{len(PdfReader(str(path)).pages)}p.pdf"]
    assert queued[0].read_bytes() == path.read_bytes()
    assert MEMBER_NAME not in config.audit_log.read_text()


def test_letter_explains_imr_with_required_points(standard_english):
    path, _ = standard_english
    text = squash(" ".join(page_texts(path)))
    for phrase in ("You pay nothing for an IMR",  # no fee
                   "within 6 months of the date of this letter, that is by May 30, 2027",
                   "ask for an expedited review",
                   "You may send DMHC any information that supports your request",
                   "you may lose some legal rights",  # forfeiture warning
                   "Who can ask for an IMR",  # eligibility
                   "1-888-466-2219", "1-877-688-9891", "www.dmhc.ca.gov", "www.HealthHelp.ca.gov",
                   "(916) 255-5241", "The California Department of Managed Health Care is responsible for "
                   "regulating health care service plans.",
                   "Nondiscrimination notice", "ATENCIÓN: Si habla español"):
        assert phrase in text, phrase
    for part in ("How to apply for an Independent Medical Review", "Independent Medical Review Application",
                 "Consent to obtain medical records", "Authorization for Release of Medical Records",
                 "Declaration of Relationship", "Address sheet: mail your application to DMHC"):
        assert part in text, part
    assert "Physician Certification" not in text


def test_forms_are_fillable_and_prefilled(standard_english):
    path, _ = standard_english
    fields = PdfReader(str(path)).get_fields()
    assert fields["application.patient_name"]["/V"] == MEMBER_NAME
    assert fields["application.member_id"]["/V"] == MEMBER_ID
    assert fields["application.date_of_birth"]["/V"] == "04/09/1961"
    assert fields["application.disputed_service"]["/V"] == "Lumbar spinal fusion L4-L5"
    assert fields["application.grievance_number"]["/V"] == "G-2026-0456"
    assert fields["application.type_medical_necessity"]["/V"] == "/Yes"
    assert fields["application.type_experimental"]["/V"] == "/Off"
    assert fields["application.applicant_self"]["/V"] == "/Yes"
    assert fields["authorization.patient_name"]["/V"] == MEMBER_NAME
    assert fields["authorization.expiration_date"]["/V"] == "November 30, 2027"  # a specific date
    assert fields["declaration.helper_name"].get("/V", "") == ""
    assert not any(name.startswith("physician.") for name in fields)


def test_authorization_has_the_required_elements_in_14_point_type(standard_english):
    path, _ = standard_english
    reader = PdfReader(str(path))
    texts = page_texts(path)
    first = next(i for i, t in enumerate(texts) if t.startswith("Authorization for Release of Medical Records")
                 or "Authorization for Release of Medical Records Patient name" in t)
    last = next(i for i, t in enumerate(texts) if "Declaration of Relationship (Authorized Assistant)" in t) - 1
    while "intentionally left blank" in texts[last]:
        last -= 1
    auth_text = " ".join(texts[first:last + 1])
    for phrase in ("Information to be released", "Who may release it", "Who may receive it", "Purpose",
                   "This authorization expires on the date below", "I may revoke this authorization",
                   "will not condition my treatment, payment, enrollment or eligibility",
                   "may be redisclosed by the recipient", "right to receive a copy",
                   "Signature of the patient or the patient's legal representative",
                   "Representative's authority to sign"):
        assert phrase in auth_text, phrase
    sizes = set()
    for page in reader.pages[first:last + 1]:
        def visit(text, cm, tm, font, size):
            if text.strip():
                scale = (tm[0] ** 2 + tm[1] ** 2) ** 0.5 * (cm[0] ** 2 + cm[1] ** 2) ** 0.5
                sizes.add(round(size * scale, 1))
        page.extract_text(visitor_text=visit)
        for annotation in page.get("/Annots", []):
            field = annotation.get_object()
            if field.get("/FT") == "/Tx":
                assert float(str(field["/DA"]).split(" Tf")[0].split()[-1]) >= 14
    assert sizes and min(sizes) >= 14, sizes


def test_expedited_experimental_spanish_with_representative(experimental_spanish):
    path, _ = experimental_spanish
    text = squash(" ".join(page_texts(path)))
    assert "Su derecho a una Revisión Médica Independiente (IMR)" in text
    assert "No tiene que presentar primero una queja ante nosotros" in text
    assert "Certificación del médico: terapia experimental o de investigación" in text
    assert "Su caso se trató como urgente" in text
    assert "cc: María José O'Connor-Núñez (madre)" in text  # the Spanish word, not "(parent)"
    assert "Página 1 de" in text
    fields = PdfReader(str(path)).get_fields()
    assert fields["physician.physician_name"]["/V"] == "Dr. Alan Spineworth"
    assert fields["physician.therapy"]["/V"] == "Lumbar spinal fusion L4-L5"
    # Every box under "I certify that" is the physician's statement, not the plan's: none is pre-checked,
    # not even "less effective if not promptly initiated" for an expedited case (QA, test_realistic.py).
    assert fields["physician.promptly"]["/V"] == "/Off"
    assert fields["physician.life_threatening"]["/V"] == "/Off"  # the physician certifies, not the plan
    assert fields["application.expedited"]["/V"] == "/Yes"
    assert fields["application.type_experimental"]["/V"] == "/Yes"
    assert fields["application.applicant_other"]["/V"] == "/Yes"
    assert fields["declaration.helper_name"]["/V"] == "María José O'Connor-Núñez"
    assert fields["declaration.helper_address"]["/V"] == "77 Calle Larga, Fresno, CA 93701"
    assert fields["declaration.rel_parent"]["/V"] == "/Yes"
    assert fields["authorization.representative_name"]["/V"] == "María José O'Connor-Núñez"
    assert fields["authorization.expiration_date"]["/V"] == "30 de noviembre de 2027"


def test_each_part_starts_on_an_odd_page(experimental_spanish):
    path, _ = experimental_spanish
    texts = page_texts(path)
    for phrase in ("Cómo solicitar una Revisión Médica Independiente", "Solicitud de Revisión Médica Independiente",
                   "Autorización para divulgar expedientes médicos Nombre del paciente",
                   "Declaración de relación (asistente autorizado) Llene",
                   "Certificación del médico: terapia", "Hoja de dirección: envíe su solicitud al DMHC"):
        page = next(i for i, t in enumerate(texts, 1) if phrase in t)
        assert page % 2 == 1, (phrase, page)


def test_dmhc_address_sheet_puts_dmhc_in_the_window(standard_english):
    path, _ = standard_english
    reader = PdfReader(str(path))
    index = next(i for i, t in enumerate(page_texts(path)) if "Address sheet: mail your application" in t)
    positions = []

    def visit(text, cm, tm, font, size):
        if "980 9th Street, Suite 500" in text:
            positions.append((tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]))
    reader.pages[index].extract_text(visitor_text=visit)
    assert positions
    x, y = positions[0]
    assert 0.875 * 72 <= x <= 5.375 * 72 and 792 - 3.125 * 72 <= y <= 792 - 2 * 72


def test_missing_case_is_a_case_error(tmp_path):
    config = make_config(tmp_path)
    with pytest.raises(CaseError):
        write_notice(config, "NO-SUCH-CASE", now=NOW)
    with pytest.raises(CaseError):
        write_notice(config, "../etc", now=NOW)


def test_helpers():
    assert add_months(dt.date(2026, 8, 31), 6) == dt.date(2027, 2, 28)
    assert add_months(dt.date(2026, 11, 30), 12) == dt.date(2027, 11, 30)
    assert representative_kind("Legal Guardian") == "guardian"
    assert representative_kind("agent under power of attorney") == "agent"
    assert representative_kind("neighbour") == "other"
    assert representative_kind(None) == "other"


def test_an_authorized_assistant_is_not_prefilled_as_the_signer_of_the_authorization(tmp_path):
    """Issue 15 item 4: a helper may apply and receive copies, but the member signs the HIPAA release."""
    path, _ = notice(tmp_path, extra=ASSISTANT)
    fields = PdfReader(str(path)).get_fields()
    assert fields["authorization.representative_name"]["/V"] == ""
    assert fields["authorization.representative_authority"]["/V"] == ""
    assert fields["declaration.helper_name"]["/V"] == "Daughter Helpwell"  # the declaration is theirs
    text = squash(" ".join(page_texts(path)))
    assert "cc: Daughter Helpwell (daughter, authorized assistant)" in text


@pytest.mark.parametrize("relationship, authorized, birth, expected", [
    ("mother", None, dt.date(2015, 5, 1), True),  # parent of a minor
    ("mother", None, dt.date(1961, 5, 1), False),  # parent of an adult: a helper
    ("madre (parent)", None, dt.date(2009, 11, 30), False),  # turned 18 the day before the notice
    ("madre (parent)", None, dt.date(2009, 12, 2), True),  # 17 on the day of the notice
    ("legal guardian", None, dt.date(1961, 5, 1), True),
    ("conservator", None, dt.date(1961, 5, 1), True),
    ("agent under health care power of attorney", None, dt.date(1961, 5, 1), True),
    ("authorized assistant", None, dt.date(1961, 5, 1), False),
    ("daughter", None, dt.date(1961, 5, 1), False),
    ("spouse", None, dt.date(1961, 5, 1), False),
    ("daughter", True, dt.date(1961, 5, 1), True),  # case.toml says she holds the authority
    ("guardian", False, dt.date(2015, 5, 1), False),
])
def test_who_may_sign_the_authorization(relationship, authorized, birth, expected):
    from packet.mailings.templates import representative_authorized
    from packet.model.case import CaseFacts, Person

    facts = CaseFacts(case_id="C1", review_type="standard", dispute_type="medical_necessity",
                      dmhc_notice_received=dt.datetime(2027, 12, 1, 9, tzinfo=PST), disputed_service="x",
                      language="en", member=Person("M", date_of_birth=birth), provider=None,
                      representative=Person("R", relationship=relationship, authorized=authorized))
    assert representative_authorized(facts, dt.date(2027, 12, 1)) is expected


def test_experimental_notice_has_a_10_envelope_to_dmhc_and_a_mailroom_sheet(experimental_spanish):
    """Issue 15 item 5 (28 CCR 1300.70.4): an envelope addressed to DMHC, printable on an envelope feed."""
    path, config = experimental_spanish
    envelope = path.parent / "dmhc-envelope-10.pdf"
    reader = PdfReader(str(envelope))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == (9.5 * 72, 4.125 * 72)  # a #10 envelope, landscape
    positions = {}

    def visit(text, cm, tm, font, size):
        if text.strip():
            positions[text.strip()] = (tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5])
    reader.pages[0].extract_text(visitor_text=visit)
    x, y = positions["980 9th Street, Suite 500"]
    assert 3.5 * 72 <= x <= 5 * 72 and 0.5 * 72 <= y <= 2.75 * 72  # the delivery-address zone
    rx, ry = positions[MEMBER_NAME]
    assert rx < 1 * 72 and ry > 3.4 * 72  # return address: the member, top left
    text = squash(reader.pages[0].extract_text())
    assert "Lumbar" not in text and "experimental" not in text.lower()  # nothing about the case
    sheet = squash(PdfReader(str(path.parent / "mailroom-sheet.pdf")).pages[0].extract_text())
    assert "#10 envelope" in sheet and "envelope feed" in sheet and "dmhc-envelope-10.pdf" in sheet
    rep_copy = next(name for name in sorted(p.name for p in (config.paths.outbox / "_print").iterdir())
                    if "-notice-representative-" in name)
    assert f"The representative's copy, {rep_copy}, goes alone" in sheet
    queued = sorted(p.name for p in (config.paths.outbox / "_print").iterdir())
    assert any(name.endswith("-dmhc-envelope-10.pdf") for name in queued)
    assert any(name.endswith("-mailroom-sheet.pdf") for name in queued)
    assert any("-notice-representative-" in name for name in queued)  # the cc is mailed too
    letter = squash(" ".join(page_texts(path)))
    assert "en el sobre adjunto dirigido al DMHC" in letter


def test_standard_notice_has_no_envelope(standard_english):
    path, _ = standard_english
    assert not (path.parent / "dmhc-envelope-10.pdf").exists()
    assert not (path.parent / "mailroom-sheet.pdf").exists()


def test_a_representative_without_an_address_is_not_mailed_silently(tmp_path):
    """Issue 15 item 3: the notice copies them, but their copy cannot be mailed: the audit log says
    so (no representative PDF is made); sealing the IMR packet blocks on the same fact."""
    config = make_config(tmp_path)
    write_case(config.paths.inbox, extra='\n[representative]\nname = "Rosa Phoneonly"\nrelationship = "daughter"\n')
    path = write_notice(config, "IMR-2026-000417", now=dt.datetime(2026, 10, 5, 9, 0, tzinfo=PST))
    assert not (path.parent / "imr-notice-representative.pdf").exists()
    events = [json.loads(line) for line in config.audit_log.read_text().splitlines()]
    [event] = [e for e in events if e["event"] == "notice_not_mailed"]
    assert event["recipient"] == "representative" and "no address" in event["reason"]
    assert "Rosa Phoneonly" not in config.audit_log.read_text()
