"""The guards' evaluation: the page-level identity check and withholding by meaning, on generated cases.

    python -m bench.guards_eval            # prints the table; exit 1 if any target is missed

Targets (issue 12 and issue 13 item 12): every adversarial other-patient page caught; no false
mismatch on the member's own pages; every real-world title variant of a withheld kind withheld;
no document withheld because of a mention or a negation. The cases are built here from templates
(English and Spanish, OCR-style slips, fax-style layouts) and are what tests/classify/test_guards.py
checks too.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

from packet.classify.identity import PAGE_OTHER, page_identities
from packet.classify.rules import describe
from packet.config import Config, load_config
from packet.model.case import CaseFacts, Person
from packet.model.models import IDENTITY_MISMATCH, Converted, SourceFile

RECEIVED = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
MEMBER = Person(name="María Elena García-López", member_id="M551203347", date_of_birth=dt.date(1984, 3, 17),
                address=("12 Olive St", "Fresno, CA 93701"), other_names=("María Elena Ruiz",),
                known_mrns=("00991122",))
FACTS = CaseFacts(
    case_id="IMR-2026-000901", review_type="standard", dispute_type="medical_necessity",
    dmhc_notice_received=dt.datetime(2026, 11, 25, 16, 10, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
    disputed_service="Outpatient psychotherapy", language="es", member=MEMBER,
    provider=Person(name="Dr. Alan Spineworth"))

# ------------------------------------------------------------------------------------------ pages

MEMBER_HEADERS = (
    "Patient: GARCIA-LOPEZ, MARIA E   DOB: 03/17/1984   MRN: 00991122",
    "Patient Name: María Elena García-López\nDate of Birth: 1984-03-17",
    "Pt: Garcia-Lopez, Maria   Member ID: M551203347",
    "Pt Name: Maria Garcia   DOB 3/17/84",
    "Patient: M. García-López   Age/Sex 42/F",
    "Nombre del paciente: María Elena García López\nFecha de nacimiento: 17/03/1984",
    "Paciente: GARCÍA LÓPEZ, MARÍA ELENA   Afiliado N.º M551203347",
    "Patient: Maria Elena Ruiz (maiden name on file)   DOB: 03/17/1984",
    "Patient: Marla Garcia-Lopez   DOB: 03/17/1984",  # OCR slip: i read as l
    "PATIENT: MARIA GARClA-LOPEZ   D0B: 03/17/1984",  # OCR slips
    "Patient: Garcia-L0pez, Maria E",  # 0 for o
    "Member: Maria E. Garcia-Lopez   Member ID: XXXXX3347",  # masked, right digits
    "Enrollee Name: MARIA GARCIA LOPEZ   Enrollee ID: M551203347-01",  # dependent suffix
    "Name: Maria Garcia-Lopez   DOB: 03/17/1984   Sex: F",
    "Patient: López, María   MRN 00991122",
    "Patient: Maria Elena Garcia-Lopez\nSubscriber: Jose Garcia   Subscriber DOB: 05/05/1955",
    "Patient: Maria Garcia-Lopez   Guardian: Rosa Lopez   Guardian DOB: 01/02/1950",
    "Patient: GARCIA-LOPEZ, MARIA\nParent/Guardian Name: Jose Garcia\nResponsible party: Jose Garcia",
    "Patient: Maria Garcia-Lopez\nAttending physician: Dr. Luis Garcia\nReferring Provider Name: Robert Chen, MD",
    "Patient: Maria Garcia-Lopez\nEmergency contact name: Carlos Garcia   Phone (559) 555-0101",
    "Paciente: María García-López   Médico: Dra. Ana López\nNombre del asegurado titular: José García",
    "Patient: Maria Garcia-Lopez   Insured: Jose Garcia   Insured DOB: 05/05/1955",
    "RE: Maria Garcia-Lopez\nDate of birth: March 17, 1984",
    "Patient: MARIA GARCIA-LOPEZ  |  DOB 03-17-1984  |  Acct # 00991122",
    "Patient Name: GARCIA LOPEZ MARIA E\nMRN: 00991122",
    "Patient Name    DOB    MRN\nGARCIA-LOPEZ, MARIA E    03/17/1984    00991122",
    "Patient: Garcia-Lopez, Maria (DOB 3/17/1984)   42 y/o F",
    "Pat1ent: Maria Garcia-Lopez   D0B: 03/17/1984",
    "Name: GARCIA-LOPEZ, MARIA E\nAge: 42   Sex: F",
    "Patient: GARCIA MARIA ELENA   DOB: 03/17/1984",
    "Patient: Maria Elena Garcia Lopez",
    "Patient: LOPEZ, MARIA ELENA",
    "Pt: Garcia-Lopez, Maria   Mbr ID: M551203347",
    "Name/DOB: Garcia-Lopez, Maria / 03/17/1984",
    "Patient Narne: Maria Garcia-Lopez",
    "Patient Last Name: GARCIA-LOPEZ   First Name: MARIA",
    "Subscriber/Patient: Garcia-Lopez, Maria   Group: 44812",
    "Patient/Subscriber: Garcia-Lopez, Maria",
    "GARCIA-LOPEZ, MARIA E   03/17/1984   F",
    "Garcia-Lopez, Maria   3/17/84   42Y F\nSPINEWORTH, ALAN   10/01/2026   M",
    "HPI: Maria Garcia-Lopez is a 42-year-old woman with low back pain.",
    "Ms. Garcia-Lopez is a 42-year-old woman seen with her husband.\nMr. Spineworth is a 55-year-old surgeon.",
    "Patient: Maria Garcia-Lopez\nSocial history: lives with her husband. Jose Garcia is a 45-year-old carpenter.\n"
    "Her husband, Jose Garcia, is a 45-year-old man.",
    "Patient: Maria Garcia-Lopez   DOB: 03/17/1984\nPatient/Guardian Name: Jose Garcia",
    "First Name: María Elena\nLast Name: García-López\nDOB: 03/17/1984",
    "Patient: Maria Garcia-Lopez\nEmergency Contact Last Name: Garcia   First Name: Jose",
    "Patient: Maria Garcia-Lopez   DOB: 03/17/1984\nReferring provider\nLast Name: Chen   First Name: Robert",
    "Patient Name (Last, First, MI): Garcia-Lopez, Maria E   DOB (MM/DD/YYYY): 03/17/1984",
    "PATIENT'S NAME (Last Name, First Name, Middle Initial)\nGARCIA-LOPEZ, MARIA E\n"
    "INSURED'S NAME (Last Name, First Name, Middle Initial)\nGARCIA, JOSE",
    "Nombre del paciente (apellido, nombre): García-López, María\nMember ID (as shown on card): M551203347",
    "Pt Nm: GARCIA-LOPEZ, MARIA E   Pt DOB: 03/17/1984",
    "PAT!ENT NAME; GARCIA-LOPEZ, MARIA   Member ID; M551203347",
    "PATIENT INFORMATION\nGARCIA-LOPEZ, MARIA E\nPatient\nEducation Materials\nPatient Information\nGolden Poppy Health Plan",
    "Patient: GARCIA-LOPEZ, MARIA   Member lD: M551203347   DO8: 03/17/1984   Fecha Nac.: 03/17/1984",
    "Patient: Maria Garcia-Lopez   DOB: 03/17/1984\nSignature of patient or authorized representative: ________\n"
    "Name (print): Jose Garcia\nRelationship to patient: husband",
    "Paciente: María García-López\nFirma del paciente o representante: ________\nNombre: José García",
    "Patient: Maria Garcia-Lopez\nDiscussed the risks with the patient; Jose Garcia (husband) was present.",
    "Patient: Maria Garcia-Lopez\nName (guardian): Jose Garcia\nPhysician Name (Last, First): Chen, Robert\n"
    "Subscriber DOB (MM/DD/YYYY): 05/05/1955",
    # a relative's or policy holder's birth date and id after their name on the same line
    "Patient: Maria Garcia-Lopez   DOB: 03/17/1984\nSpouse: Jose Garcia   DOB: 05/05/1955",
    "Patient: Maria Garcia-Lopez\nSubscriber: Jose Garcia  DOB: 05/05/1955  Member ID: W44120077",
    "Patient: Maria Garcia-Lopez\nResponsible party: Jose Garcia | Relationship: Spouse | DOB: 05/05/1955",
    "Patient: Maria Garcia-Lopez\nGuarantor: GARCIA, JOSE   Date of Birth:\n05/05/1955",
    "Paciente: María García-López\nCónyuge: José García   Fecha de nacimiento: 05/05/1955",
    # a table's label and value cells, as a PDF's text gives them
    "Patient Maria Garcia-Lopez Age 42 Sex F",
    "PATIENT GARCIA-LOPEZ, MARIA E\nPatient Safety Event ID 4471",
    "Patient      Garcia-Lopez, Maria      MRN 00991122",
    # a letter naming her by role
    "I am writing on behalf of my patient, Maria Garcia-Lopez, regarding her appeal.",
    "RE: Member Maria Elena Garcia-Lopez, ID M551203347",
    "Name: Maria Garcia-Lopez   Visit Date: 10/01/2026",
    "Patient Maria Garcia-Lopez was seen today for follow-up.",
    "Patient: Maria Garcia-Lopez Page 1 of 2",
    "Patient: Maria Garcia-Lopez Female 42",
    "Patient: Maria Garcia-Lopez Report Status: Final Ordered by Dr. Luis Garcia",
    "Patient: Maria Garcia-Lopez   DOB: 17/03/1984",
    "Patient: Maria Garcia-Lopez\nDOB (MM DD YYYY): 03 17 1984",
    "Pt: Garcia-Lopez, Maria   Member ID: M551 203 347   Group 44812",
)
MEMBER_BODIES = (
    "PROGRESS NOTE\nChief complaint: low back pain.\nAssessment and plan: continue physical therapy.",
    "LABORATORY RESULTS\nHemoglobin A1c 5.6 % (reference range 4.0-5.6)\nCollected: 10/02/2026",
    "Electronically signed by: Robert Chen, MD 10/03/2026 14:22\ncc: Dr. Ana Lopez; Jose Garcia",
    "NURSE TELEPHONE NOTE\nSpoke with the patient's mother, Rosa Lopez, DOB 01/02/1950, who confirmed the visit.",
    "RADIOLOGY REPORT\nFindings: no acute fracture.\nImpression: normal study.\nRadiologist: Dr. Luis Garcia",
    "Family history: father (Jose Garcia) with diabetes; mother with hypertension.\nPlan: return in 4 weeks.",
    "NOTA DE EVOLUCIÓN\nMotivo de consulta: dolor lumbar.\nPlan: continuar fisioterapia. Firma: Dr. Luis García",
    "Author: Robert Chen, LCSW\nSession focused on coping skills.\nNext visit 10/20/2026.",
    "MEDICATIONS\nMedication Name: Lisinopril Oral 10 mg daily\nPharmacy Name: CVS Pharmacy\n"
    "Facility Name: Valley Medical Group\nMember: Golden Poppy Health Plan",
    "EMERGENCY CONTACT\nName: Jose Garcia   Relationship: husband   Age: 45\nPhone: (559) 555-0101",
    "Dear Ms. García-López,\nWe received your appeal on 10/02/2026 and will answer it within 30 days.",
    "Dear Mr. Spineworth,\nThank you for your letter of medical necessity for Ms. Garcia-Lopez.",
    "Household members\nName: Jose Garcia   Age: 45   Sex: M   Relationship: spouse",
    "Dear Grievance Coordinator:\nI am writing to appeal the denial of my surgery.",
    "Social history:\nJose Garcia is a 45-year-old carpenter who helps with her care.\nFamily History\n"
    "Rosa Lopez is a 70-year-old woman with diabetes.",
    "Dear Golden Poppy,\nI disagree with your decision.\nDear Sir or Madam: please review my records.",
    "Dear Medical Director:\nPlease reconsider.\nDear Alan Spineworth,\nThank you for your letter.",
    "Patient Safety Event ID 4471 reviewed.\nPatient Education, Patient Rights handout given.\n"
    "Patient tolerated the procedure well.\nPatient      Visit Date      Provider\n"
    "Patient Safety Event was reported to the committee. Patient Advocate Jane Smith was present.",
    "Thank you for completing our patient satisfaction survey.\nYour Patient Assistance Program application "
    "is enclosed.\nSubject: Member Handbook Update\nRE: Member Services Department\nmy member ID is on the card.",
    "INTERPRETER\nName: Jose Garcia   Service Date: 10/01/2026\nClinician signature: ________\n"
    "Name: Luis Garcia, LCSW   Session Date: 10/01/2026",
)


def member_documents() -> list[tuple[str, tuple[str, ...]]]:
    """The member's own pages (>= 100), one document each, plus some multi-page records."""
    documents = []
    for (h, header), (b, body) in itertools.product(enumerate(MEMBER_HEADERS), enumerate(MEMBER_BODIES)):
        if (h + b) % 2 == 0:
            documents.append((f"member header {h} body {b}", (f"{header}\n{body}",)))
    for h, header in enumerate(MEMBER_HEADERS[:10]):  # a fax: cover, then pages that only some label
        cover = "FAX COVER SHEET\nTo: Name: Golden Poppy Health Plan, Attn: Dr. Smith\nFrom: Valley Clinic\nPages: 4"
        documents.append((f"member fax {h}", (cover, f"{header}\n{MEMBER_BODIES[0]}", MEMBER_BODIES[1],
                                              "Page 4 of 4\nEnd of record.")))
    return documents


@dataclass(frozen=True)
class IdentityCase:
    name: str
    pages: tuple[str, ...]
    other_pages: frozenset[int]  # 1-based pages that name another patient


FOREIGN_PAGES = (
    ("other name, LAST, FIRST (issue 12)", "Patient: CHEN, ROBERT W / Age/Sex 77/M / MRN 00448812\nHIV-1/2 Ab: REACTIVE"),
    ("same first name", "Patient: María Torres   DOB: 03/17/1984\nCBC within normal limits."),
    ("same birth date", "Patient: Jennifer Walsh   DOB: 03/17/1984\nLipid panel: LDL 162 mg/dL."),
    ("same surname, sibling", "Patient: Carlos García-López   DOB: 07/09/1990\nX-ray of the wrist: normal."),
    ("parent as subscriber, child is the patient",
     "Patient: Sofia Lopez   DOB: 06/01/2015\nSubscriber: María Elena García-López   Member ID: M551203347"),
    ("physician with the member's surname", "Patient: Robert Chen\nPhysician: Dr. Luis Garcia-Lopez\nVisit for cough."),
    ("masked member id of another member", "LAB REPORT\nMember ID: XXXXX9921\nGlucose 212 mg/dL (H)"),
    ("another member id", "Member ID: M440017788\nCoverage verified for MRI."),
    ("another birth date only", "DOB: 02/02/1950\nPotassium 5.9 mmol/L (H)"),
    ("accented other patient", "Paciente: José Hernández Ñúñez\nFecha de nacimiento: 11/12/1971"),
    ("Spanish header", "Nombre del paciente: Roberto Chen Wu\nAfiliado N.º M440017788"),
    ("OCR slips in the other name", "PATIENT: R0BERT W. CHEN   D0B: 02/02/1950"),
    ("hyphenated other patient", "Pt Name: Ana López-Ruiz\nUltrasound: gallstones."),
    ("bare Name in a patient header", "Name: Robert Chen   DOB: 02/02/1950   Sex: M"),
    ("enrollee of another plan member", "Enrollee: Wanda Kowalski\nEligibility confirmed."),
    ("other record number only (lab page 2)", "MRN: 00448812\nHIV viral load: 48,000 copies/mL"),
    ("Pt abbreviation", "Pt: Chen, Robert   Acct# 77120034\nDischarge instructions reviewed."),
    ("table header row, values below", "LAB REPORT\nPatient Name    DOB    MRN\nCHEN, ROBERT W    02/02/1950    00448812"),
    ("table header row, single spaces", "Patient Name DOB MRN\nCHEN, ROBERT W 02/02/1950 00448812\nHIV REACTIVE"),
    ("name with a bracketed birth date", "Patient: Chen, Robert (DOB 2/2/1950)\nChest x-ray: clear."),
    ("OCR slip in the label", "Pat1ent Name: R0bert Chen\nGlucose 98 mg/dL"),
    ("bare Name beside age and sex", "Name: CHEN, ROBERT\nAge: 76   Sex: M\nWBC 12.1 K/uL (H)"),
    ("bare Nombre beside edad and sexo", "Nombre: Roberto Chen Wu   Edad: 76   Sexo: M\nGlucosa 212 mg/dL (H)"),
    ("the member's given names, another surname", "Patient: Maria Elena Chen\nCBC within normal limits."),
    ("the member's given names, LAST, FIRST MIDDLE", "Patient: CHEN, MARIA ELENA\nHIV-1/2 Ab: REACTIVE"),
    ("the member's given names, surname first without a comma", "Patient: CHEN MARIA ELENA\nGlucose 212 mg/dL"),
    ("the member's surname as another woman's second", "Patient: MARIA TORRES GARCIA\nMammogram: BI-RADS 4."),
    ("the member's first name as another's second", "Patient: Ana Maria Lopez\nPap smear: ASC-US."),
    ("abbreviated member id label", "Mbr ID: M440017788\nEligibility: active. Prior authorization approved."),
    ("two labels sharing one colon", "Name/DOB: Chen, Robert / 02-02-1950\nCBC within normal limits."),
    ("name and id sharing one colon", "Patient Name/ID: Chen, Robert / 00448812\nUrinalysis: normal."),
    ("OCR's rn for m in the label", "Patient Narne: Robert Chen\nGlucose 98 mg/dL"),
    ("the subscriber is the patient", "Subscriber/Patient: Chen, Robert   Group: 44812\nClaim for office visit."),
    ("a label plate without labels", "LABORATORY REPORT\nCHEN, ROBERT W   02/02/1950   M\nGlucose 212 mg/dL (H)"),
    ("a label plate with the age", "Chen, Robert   2/2/50   76Y M\nChest x-ray: clear."),
    ("a consult's opening sentence", "CONSULTATION (continued)\nHPI: Robert Chen is a 76-year-old man with COPD.\n"
     "Exam: wheezes."),
    ("a note's opening with a courtesy title", "Progress note (continued)\nHPI: Mr. Chen is a 76 y/o male with COPD.\n"
     "Plan: inhalers."),
    ("an opening sentence that names a relative", "Progress note (continued)\nHPI: Robert Chen is a 76-year-old "
     "man brought in by his daughter.\nPlan: inhalers."),
    ("a Spanish note's opening sentence", "Roberto Chen Wu es un paciente de 76 años con EPOC.\nPlan: inhaladores."),
    ("the patient is the insured", "Patient/Insured Name: Robert Chen\nClaim for office visit."),
    ("a name in two fields", "Patient Last Name: CHEN   Patient First Name: ROBERT\nGlucose 212 mg/dL (H)"),
    ("given name first, two fields, two lines", "First Name: Robert\nLast Name: Chen\nSex: M\nCBC normal."),
    ("Spanish name in two fields", "Apellidos: Chen Wu   Nombre: Roberto   Edad: 76\nGlucosa 212 mg/dL (H)"),
    ("a name label with its format", "Patient Name (Last, First): Chen, Robert\nGlucose 212 mg/dL (H)"),
    ("a claim form's name box, value below", "2. PATIENT'S NAME (Last Name, First Name, Middle Initial)\nCHEN, ROBERT W\n"
     "Office visit 99213."),
    ("a birth date label with its format", "DOB (MM/DD/YYYY): 02/02/1950\nCBC within normal limits."),
    ("a Spanish birth date label with its format", "Fecha de nacimiento (dd/mm/aaaa): 02/02/1950\nGlucosa normal."),
    ("a form's short name label", "Pt Nm: CHEN, ROBERT\nChest x-ray: clear."),
    ("OCR's semicolon for a colon", "PATIENT NAME; CHEN, ROBERT W\nMember ID; XJ7788123\nUrinalysis normal."),
    ("OCR's ! for an i", "Pat!ent: Chen, Robert\nECG: sinus rhythm."),
    ("a member id label with a note", "Member ID (as shown on card): XJ7788123\nClaim for office visit."),
    ("a letter to another member", "Golden Poppy Health Plan\nOctober 1, 2026\nDear Mr. Chen,\n"
     "We have completed our review of your appeal. We uphold our decision."),
    ("OCR's l or 1 for the I of ID", "Member lD: XJ7788123\nMember 1D: XJ7788123\nEligibility verified."),
    ("OCR's 8 for the B of DOB, 0 for o", "DO8: 02/02/1950\nDate 0f Birth: 02/02/1950\nPotassium 5.9 mmol/L (H)"),
    ("a Spanish birth date label without 'de'", "Fecha Nac.: 02/02/1950\nGlucosa 212 mg/dL"),
    ("a name alone under a patient heading", "PATIENT INFORMATION\nCHEN, ROBERT W\nAge: 76  Gender: M\nCBC normal."),
    ("a Spanish name alone under a patient heading", "Datos del paciente\nRoberto Chen Wu\nGlucosa 212 mg/dL"),
    ("a patient header below the last note's signature", "Electronically signed by: Dr. Luis Garcia 10/02/2026\n"
     "Name: Robert Chen   Age: 76   Sex: M\nCBC normal."),
    ("a letter to another member by full name", "Golden Poppy Health Plan\nDear Robert Chen:\n"
     "We have completed our review of your appeal. We uphold our decision."),
    ("a Spanish letter by full name", "Estimado Roberto Chen Wu:\nHemos revisado su queja."),
    ("a table row, the cells one space apart", "LAB REPORT\nPatient CHEN, ROBERT W\nGlucose 212 mg/dL (H)"),
    ("a table row with the age and sex", "Patient Robert Chen Age 76 Sex M\nCBC within normal limits."),
    ("a table of rows, the sex on the next", "Patient Robert Chen\nSex M\nCBC within normal limits."),
    ("a Spanish table row", "Paciente Roberto Chen Wu Edad 76\nGlucosa 212 mg/dL (H)"),
    ("a table row, the columns apart", "Patient      CHEN, ROBERT\nUrinalysis: normal."),
    ("a bare Name beside an admission date", "DISCHARGE SUMMARY\nName: Robert Chen   Admission Date: 10/01/2026\n"
     "Discharged home in stable condition."),
    ("a bare Nombre beside a visit date", "Nombre: Roberto Chen Wu   Fecha de consulta: 01/10/2026\nGlucosa 212 mg/dL"),
    ("a note's sentence naming another patient", "Progress note\nPatient Robert Chen was seen today for "
     "follow-up.\nPlan: continue."),
    ("a Spanish note's sentence naming another patient", "Paciente Roberto Chen Wu acude a consulta por dolor lumbar."),
    ("a letter's sentence wrapped across lines", "To whom it may concern: I am writing on behalf of my\n"
     "patient, Robert\nChen, who needs a lumbar fusion."),
    ("a footer with the page number after the name", "CBC within normal limits.\nPatient: Robert Chen Page 1"),
    ("a Spanish footer with the page number", "Glucosa 212 mg/dL\nPaciente: Roberto Chen Wu Página 1"),
    ("a name followed by the next field, one space apart", "Patient: Robert Chen Referring: Dr. Smith\nCBC normal."),
    ("a name followed by a printed stamp", "Patient: Robert Chen Printed on 10/01/2026 by JSMITH\nLipid panel normal."),
    ("a Spanish name followed by the next field", "Paciente: Roberto Chen Wu Médico: Dra. Ana López\nGlucosa 212 mg/dL"),
    ("a member id grouped as on a card", "Member ID: XJ7 788 123\nEligibility verified for MRI."),
    ("a day-first birth date", "DOB: 25/12/1950\nCBC within normal limits."),
    ("a form's boxed birth date", "DOB (MM DD YYYY): 02 02 1950\nClaim for office visit 99213."),
    ("a birth date without separators", "Date of Birth: 02021950\nPotassium 5.9 mmol/L (H)"),
    ("a name followed by the sex", "Patient: Robert Chen Male 76\nChest x-ray: clear."),
    ("a letter's subject line naming another member", "Golden Poppy Health Plan\nRe: Member Robert Chen, "
     "ID XJ7788123\nWe received the records you sent."),
    ("a provider's letter for another patient", "To whom it may concern:\nI am writing on behalf of my "
     "patient, Robert Chen, who needs a lumbar fusion."),
    ("a Spanish letter for another patient", "Le escribo en nombre de mi paciente, Roberto Chen Wu, quien "
     "necesita cirugía."),
    ("the patient's own birth date after a clinician's name", "Physician: Dr. Luis Garcia   DOB: 02/02/1950\n"
     "CBC within normal limits."),
    ("the patient is the guarantor", "Guarantor: Self   DOB: 02/02/1950\nStatement of account."),
    ("a birth date after a relative's field, the patient's own", "Spouse: Rosa Chen   Patient DOB: 02/02/1950\n"
     "Glucose 212 mg/dL (H)"),
    ("a Spanish letter to another member", "Golden Poppy Health Plan\nEstimada Sra. Torres:\n"
     "Hemos revisado su queja. Mantenemos nuestra decisión."),
)


# Another patient's record of several pages, named on one of them only: its own page counter joins the
# others to it. (A counter that also runs over the member's pages counts the whole document: a member
# case in MEMBER_COUNTED.)
FOREIGN_RECORDS = (
    ("a 2-page lab report named on its first page",
     ("LIPID PANEL\nPatient: CHEN, ROBERT W   DOB: 02/02/1950\nPage 1 of 2", "LDL 162 mg/dL (H)\nPage 2 of 2")),
    ("a 3-page note named on its second page",
     ("CONSULT NOTE\nHPI: dyspnea.\nPage 1 of 3", "Patient: Chen, Robert   MRN 00448812\nExam: wheezes.\nPage 2 of 3",
      "Plan: inhalers.\nPage 3 of 3")),
    ("a Spanish record of 2 pages",
     ("Paciente: Roberto Chen Wu\nGlucosa 212 mg/dL\nPágina 1 de 2", "Hemoglobina 13.1 g/dL\nPágina 2 de 2")),
)


def identity_cases() -> list[IdentityCase]:
    """Adversarial cases (>= 40): another patient's page at page 2, page 7 or the last page; another
    patient's record of several pages from page 2, page 7, or ending on the last page."""
    member_page = f"{MEMBER_HEADERS[0]}\n{MEMBER_BODIES[0]}"
    filler = MEMBER_BODIES[1]
    cases = []
    for name, foreign in FOREIGN_PAGES:
        for where, length in (("page 2", 3), ("page 7", 9), ("last page", 5)):
            position = 2 if where == "page 2" else 7 if where == "page 7" else length
            pages = [member_page] + [filler] * (length - 1)
            pages[position - 1] = foreign
            cases.append(IdentityCase(f"{name}, {where}", tuple(pages), frozenset({position})))
    for name, record in FOREIGN_RECORDS:
        for where, length in (("from page 2", 4 + len(record)), ("from page 7", 9 + len(record)), ("last pages", 5)):
            first = 2 if where == "from page 2" else 7 if where == "from page 7" else length - len(record) + 1
            pages = [member_page] + [filler] * (length - 1)
            pages[first - 1:first - 1 + len(record)] = record
            cases.append(IdentityCase(f"{name}, {where}", tuple(pages),
                                      frozenset(range(first, first + len(record)))))
    # The whole document's counter (a fax's) runs over the member's first page: it joins nothing.
    for name, foreign in FOREIGN_PAGES[:2]:
        for where, length in (("page 2", 3), ("page 7", 9), ("last page", 5)):
            position = 2 if where == "page 2" else 7 if where == "page 7" else length
            pages = [member_page] + [filler] * (length - 1)
            pages[position - 1] = foreign
            counted = tuple(f"{page}\nPage {number} of {length}" for number, page in enumerate(pages, 1))
            cases.append(IdentityCase(f"{name}, {where}, every page counted", counted, frozenset({position})))
    return cases


# ------------------------------------------------------------------------------------------ titles

WITHHELD_TITLES: dict[str, tuple[str, ...]] = {
    "psychotherapy notes": (
        "PSYCHOTHERAPY PROGRESS NOTE", "Psychotherapy Note", "Psychotherapy Notes", "Psychotherapy Session Note",
        "Psychotherapy Process Notes", "Individual Psychotherapy Note", "Psychotherapy Note - Session 12",
        "Psychotherapist's Notes", "Psychotherapist Session Notes", "Private Psychotherapy Notes",
        "Psychotherapy Clinical Note", "Notes of Psychotherapy Session", "Psychotherapy Treatment Notes",
        "Group Psychotherapy Note", "Family Psychotherapy Notes", "Psychotherapy Documentation",
        "Psychotherapy - Progress Note", "Psycho-therapy Note", "Psychotherapy Record", "Psychotherapy Summary",
        "Notas de psicoterapia", "Nota de psicoterapia", "Nota de progreso de psicoterapia",
        "Notas de sesión de psicoterapia", "PSICOTERAPIA - NOTA DE SESIÓN", "Notas psicoterapéuticas",
        "Registro de sesión de psicoterapia", "Nota clínica de psicoterapia",
        "Individual Psychotherapy (90834) Session Note", "Session Notes (Psychotherapy)", "Clinical Notes - Psychotherapy",
        "Psych Therapy Note", "Psychotherapy SOAP Note", "Therapist's Private Notes", "Private Therapy Notes",
        "Notas privadas del terapeuta", "Nota de sesión (psicoterapia)", "Psychoanalysis Session Notes",
        "Psychoanalytic Process Notes", "Notas de psicoanálisis"),
    "mental health therapy session": (
        "Mental Health Therapy Session Note", "Mental Health Therapy Session", "Behavioral Health Therapy Session Note",
        "Therapy Session Note", "Individual Therapy Session", "Family Therapy Session Note", "Group Therapy Session Notes",
        "Mental Health Session Notes", "Behavioral Health Session Summary", "Couples Therapy Session Note",
        "Trauma Therapy Session Note", "CBT Therapy Session Note", "DBT Therapy Session Notes", "EMDR Therapy Session",
        "Therapist's Session Notes", "Mental Health Therapy Notes", "Behavioral Health Treatment Session",
        "Play Therapy Session Note", "Grief Therapy Session", "Therapy Session Summary",
        "Sesión de terapia de salud mental", "Nota de sesión de terapia", "Sesión de terapia psicológica",
        "Sesión de terapia individual", "Sesión de terapia familiar", "Notas de la sesión de terapia",
        "Sesión de salud mental", "Terapia psicológica - nota de sesión"),
    "counseling session notes": (
        "Counseling Session Notes", "Counseling Session Note", "Counselling Session Notes", "Individual Counseling Session",
        "Mental Health Counseling Note", "Counseling Notes", "Counselor's Session Notes", "Grief Counseling Session Note",
        "Family Counseling Session", "Marriage Counseling Notes", "Substance Use Counseling Session",
        "Crisis Counseling Note", "Counseling Progress Note", "Counselor Progress Notes", "Trauma Counseling Session",
        "Behavioral Health Counseling Session", "Counseling Session Summary", "Addiction Counseling Notes",
        "Couples Counseling Session Note", "Counseling Record",
        "Notas de consejería", "Nota de sesión de consejería", "Sesión de consejería",
        "Consejería psicológica", "Consejería de salud mental - nota", "Notas de orientación psicológica",
        "Consejería familiar", "Registro de consejería"),
    "process notes": (
        "Process Notes", "Process Note", "Therapist Process Notes", "Psychotherapy Process Notes",
        "Clinical Process Notes", "Session Process Notes", "Process Recording", "Therapist's Process Notes",
        "Counselor Process Notes", "Confidential Process Notes", "Process Notes - Session 3", "Process Notes (Private)",
        "Individual Session Process Note", "Group Process Notes", "Family Session Process Notes",
        "Process Recordings", "Supervision Process Notes", "Therapy Process Notes", "Process Note - Draft",
        "Private Process Notes",
        "Notas de proceso", "Nota de proceso", "Notas de proceso terapéutico", "Notas del proceso de terapia",
        "Notas de proceso clínico", "Registro de proceso terapéutico", "Nota de proceso de psicoterapia",
        "Notas de proceso - sesión 4"),
    "legal-proceeding material": (
        "Prepared in Anticipation of Litigation", "Litigation File", "Litigation Memo", "Litigation Chronology",
        "Deposition Summary", "Deposition Transcript", "Notice of Deposition", "Responses to Interrogatories",
        "Special Interrogatories", "Request for Production of Documents", "Subpoena Duces Tecum",
        "Complaint for Damages", "Answer to Complaint", "Settlement Conference Statement", "Mediation Brief",
        "Arbitration Brief", "Trial Exhibit 14", "Case Evaluation for Counsel", "Legal Proceeding Materials",
        "Expert Report for Litigation", "Litigation Hold Notice", "Hearing Transcript",
        "Material para el litigio", "Preparado en anticipación de litigio", "Expediente del litigio",
        "Resumen de la deposición", "Demanda por daños", "Interrogatorios", "Contestación a la demanda",
        "Deposition of Dr. Lee", "Summons", "Counsel's Notes for Arbitration"),
}

OCR_SLIPS = {"o": "0", "l": "1", "O": "0", "I": "1", "s": "5"}


def _ocr(title: str) -> str:
    """One letter in a long word read as a digit, as a fax OCR does ("PSYCH0THERAPY")."""
    words = title.split()
    longest = max(range(len(words)), key=lambda index: len(words[index]))
    word = words[longest]
    for index in range(1, len(word) - 1):
        if word[index] in OCR_SLIPS:
            words[longest] = word[:index] + OCR_SLIPS[word[index]] + word[index + 1:]
            break
    return " ".join(words)


def title_variants(kind: str) -> list[str]:
    """>= 50 distinct title variants of a withheld kind: as written, in capitals, OCR'd, with a date."""
    out: list[str] = []
    for title in WITHHELD_TITLES[kind]:
        for variant in (title, title.upper(), _ocr(title), f"{title} 10/02/2026"):
            if variant not in out:
                out.append(variant)
    return out


def withheld_documents(kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """Documents that ARE of the kind: its title as the heading (page 1, a later page, a note type)."""
    body = "Patient: Maria Garcia-Lopez   DOB: 03/17/1984\nSession content recorded by the clinician.\nPlan: continue."
    out = []
    for index, title in enumerate(title_variants(kind)):
        if index % 5 == 4:
            out.append((title, ("Valley Behavioral Health\nFAX COVER SHEET\nPages: 2", f"{title}\n{body}")))
        elif index % 5 == 3:
            out.append((title, (f"Valley Behavioral Health\nNote type: {title}\n{body}",)))
        else:
            out.append((title, (f"Valley Behavioral Health\n{title}\n{body}",)))
    return out


MENTION_PHRASES: dict[str, tuple[str, str]] = {  # kind: (English phrase, Spanish phrase)
    "psychotherapy notes": ("psychotherapy notes", "notas de psicoterapia"),
    "mental health therapy session": ("mental health therapy session notes", "notas de sesión de terapia"),
    "counseling session notes": ("counseling session notes", "notas de consejería"),
    "process notes": ("process notes", "notas de proceso"),
    "legal-proceeding material": ("materials prepared in anticipation of litigation", "material para el litigio"),
}
MENTION_SENTENCES_EN = (
    "This authorization does not include {x}.", "This authorization does not cover {x}.",
    "Records other than {x} may be released.", "All records, excluding {x}, are enclosed.",
    "No {x} were requested or sent.", "The plan did not receive any {x}.",
    "You may ask for {x} separately by writing to us.", "The member asked whether {x} exist.",
    "Dr. Lee explained what {x} are.", "Except for {x}, every record is attached.",
    "We will not release {x} without your written permission.", "The release covers treatment records but not {x}.",
    "{X} are not included in this release.", "{X} are excluded from this request.",
    "Without {x}, the file holds 12 pages.", "Neither billing records nor {x} are part of this packet.",
    "Please note that {x} are kept separately by the provider.", "Questions about {x} go to the privacy office.",
    "I understand that {x} will not be disclosed.", "The reviewer did not rely on {x}.",
    "Patient denies wanting {x} shared with family.", "Rather than {x}, a treatment summary is attached.",
    "Your rights regarding {x} are explained in the notice of privacy practices.",
    "Instead of {x}, the provider sent a summary.", "This request is for records other than {x}.",
)
MENTION_SENTENCES_ES = (
    "Esta autorización no incluye {x}.", "Se entregan todos los expedientes excepto {x}.",
    "No se solicitaron {x}.", "Puede pedir {x} por separado.", "Sin {x}, el expediente tiene 12 páginas.",
)
GOVERNED_HEADINGS = (
    "AUTHORIZATION TO RELEASE {X}", "REQUEST FOR COPIES OF {X}", "Policy on {X}", "Re: {X}",
    "Solicitud de {XES}", "Autorización para divulgar {XES}", "NO {X} ENCLOSED",
)


def mention_documents(kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """Documents that only mention or negate the kind (>= 50): each must NOT be withheld."""
    english, spanish = MENTION_PHRASES[kind]
    out = []
    for template in MENTION_SENTENCES_EN:
        sentence = template.format(x=english, X=english[:1].upper() + english[1:])
        out.append((sentence, (f"Golden Poppy Health Plan\nAUTHORIZATION FOR RELEASE OF MEDICAL RECORDS\n"
                               f"Patient: Maria Garcia-Lopez\nThe records of my care may be released to DMHC. {sentence}\n"
                               "Signature of the patient: ______ Date: 10/02/2026",)))
        out.append((sentence + " (letter)", (f"Dear Ms. Garcia-Lopez,\nWe received your appeal on 10/02/2026. {sentence} "
                                             "Please call us with any questions.\nSincerely, Member Services",)))
    for template in MENTION_SENTENCES_ES:
        sentence = template.format(x=spanish)
        out.append((sentence, (f"Estimada Sra. García-López:\nRecibimos su apelación. {sentence}\nAtentamente,",)))
    for template in GOVERNED_HEADINGS:
        heading = template.format(X=english.upper() if template.isupper() else english.title(), XES=spanish)
        out.append((heading, (f"{heading}\nPatient: Maria Garcia-Lopez\nSigned 10/02/2026",)))
    return out


# A provider's determination that a mental-health record would harm the patient to see (H&S 123115(b)),
# in the provider's own words or as an instruction: each must be withheld wherever it stands.
HARM_STATEMENTS = (
    "DO NOT RELEASE TO PATIENT", "Do Not Release to Patient - per Dr. A. Patel 10/01/2026",
    "CONFIDENTIAL - NOT TO BE RELEASED TO PATIENT", "Not for release to patient.",
    "Note to medical records: do not disclose this chart to the patient (determination dated 10/01/2026).",
    "Withhold from patient per treating psychiatrist, 10/01/2026.",
    "This record must not be released to the patient.",
    "I have determined that releasing these records to the patient would be detrimental to her treatment.",
    "In my professional judgment, disclosure of these notes to the patient would be harmful to her.",
    "Access by the patient to these records is likely to endanger her safety.",
    "Providing copies of the chart to the patient could result in serious harm.",
    "It would be harmful to the patient to see these records at this time.",
    "Release of this information to the patient poses a substantial risk of significant adverse or "
    "detrimental consequences.",
    "The treating psychiatrist has determined that patient access to these records would be harmful.",
    "Release of the records to the patient is clinically contraindicated at this time (10/01/2026).",
    "Sharing these notes with the patient would be destabilizing.",
    "Dr. Patel, who treats the patient, determined that releasing these records to the patient would be "
    "detrimental.",
    "Patient's request to inspect the records was denied on 10/01/2026.",
    "Patient access denied 10/01/2026, Dr. Patel.",
    "Dr. Patel declined the patient's request to review her psychiatric records on 10/01/2026.",
    "NOTICE OF REFUSAL TO PERMIT INSPECTION OF MENTAL HEALTH RECORDS",
)
HARM_STATEMENTS_ES = (
    "NO ENTREGAR AL PACIENTE", "No se debe entregar copia al paciente.",
    "Entregar estos registros al paciente sería perjudicial para su salud.",
    "Divulgar esta nota a la paciente podría ser dañina para su tratamiento.",
)
# The same words as a condition, a rule about others, a denial, or clinical talk of harm: never withheld.
HARM_MENTIONS = (
    "A provider may decline to release records to the patient if disclosure would be detrimental to the patient.",
    "If release to the patient would be harmful, the provider must note the date in the record.",
    "Under state law, when access by the patient would endanger the patient, the provider can refuse.",
    "Your provider can refuse to show records to the patient when seeing them would be harmful.",
    "A provider who determines that access by the patient would be harmful may decline to share the records.",
    "Therapists who find that releasing notes to the patient would be detrimental must record the date.",
    "Releasing these records to the patient would not be harmful.",
    "It is not my opinion that release of the records to the patient would be detrimental.",
    "Reviewed safety plan with patient; denies thoughts of harm to self or others.",
    "Discussed access by the patient to lethal means, harm reduction plan reviewed.",
    "Seeing the patient weekly for harm reduction.", "Patient consented to release of records to the PCP.",
    "Copies of the records were released to the patient on 09/12/2026.",
    "Patient was given a copy of the treatment plan and it was reviewed with her.",
    "Patient denied suicidal ideation. Access to care was denied by the plan previously.",
    "Patient denies access to firearms.", "Records may be released to the patient upon written request.",
    "The provider did not withhold records from the patient.",
    "Do not release to third parties without the patient's written authorization.",
    "Provided education to the patient about the harmful effects of alcohol.",
    "Patient's request for copies of the records was approved and the records were mailed.",
    "Si divulgar el expediente al paciente fuera perjudicial, el proveedor puede negarse.",
)


def harm_documents(statements: tuple[str, ...], spanish: tuple[str, ...], *,
                   letters: bool = False) -> list[tuple[str, tuple[str, ...]]]:
    """Each statement in a psychiatric record: in the body of page 1 and at the foot of its last page;
    with `letters`, also in the plan's letter to the member about her mental-health records; the
    Spanish ones in a Spanish record."""
    header = "Valley Behavioral Health\nPsychiatric Progress Note\nPatient: Maria Garcia-Lopez   DOB: 03/17/1984\n"
    body = "Assessment: major depressive disorder, recurrent, moderate.\nPlan: continue sertraline 100 mg."
    out = []
    for text in statements:
        out.append((text, (f"{header}{text}\n{body}",)))
        out.append((text + " (last page)", (f"{header}{body}", f"Mental status exam\n{body}\n{text}")))
        if letters:
            out.append((text + " (letter)", (f"Golden Poppy Health Plan\nDear Ms. Garcia-Lopez,\nWe reviewed your "
                                             f"request for your mental health records. {text}\nSincerely,",)))
    for text in spanish:
        out.append((text, (f"Salud Mental del Valle\nNota de evolución psiquiátrica\nPaciente: María García-López\n"
                           f"Diagnóstico: depresión mayor.\n{text}",)))
    return out


# ------------------------------------------------------------------------------------------ running

def _describe(config: Config, name: str, pages: tuple[str, ...], facts: CaseFacts = FACTS):
    relpath = "document.pdf"
    source = SourceFile(relpath=relpath, path=Path("/nonexistent") / relpath, size=1, mtime_ns=0)
    converted = Converted(sha256="ab" * 32, pdf_path=Path("/nonexistent/doc.pdf"), pages=len(pages),
                          page_texts=pages, source_kind="pdf")
    return describe(source, converted, facts, None, config, RECEIVED), converted


@dataclass(frozen=True)
class Row:
    what: str
    total: int
    good: int
    target: str
    failures: tuple[str, ...]

    @property
    def met(self) -> bool:
        return self.good == self.total


def evaluate(config: Config | None = None) -> list[Row]:
    config = config or load_config(None, check_paths=False)
    rows = []
    caught, missed = 0, []
    cases = identity_cases()
    for case in cases:
        document, converted = _describe(config, case.name, case.pages)
        flagged = {p.page for p in page_identities(FACTS, converted, RECEIVED.year) if p.status == PAGE_OTHER}
        if document.identity.value == IDENTITY_MISMATCH and case.other_pages <= set(document.other_person_pages) \
                and flagged == set(case.other_pages):
            caught += 1
        else:
            missed.append(f"{case.name}: {document.identity.value} {sorted(flagged)}")
    rows.append(Row("other-patient pages caught (adversarial)", len(cases), caught, "100%", tuple(missed)))
    members = member_documents()
    pages = sum(len(p) for _, p in members)
    false = [name for name, p in members if _describe(config, name, p)[0].identity.value == IDENTITY_MISMATCH]
    rows.append(Row(f"member documents without a false mismatch ({pages} pages)", len(members),
                    len(members) - len(false), "100%", tuple(false)))
    for kind in WITHHELD_TITLES:
        documents = withheld_documents(kind)
        missed = [name for name, p in documents if not _describe(config, name, p)[0].withheld.value]
        rows.append(Row(f"{kind}: title variants withheld", len(documents), len(documents) - len(missed),
                        "100%", tuple(missed)))
    for kind in WITHHELD_TITLES:
        documents = mention_documents(kind)
        wrong = []
        for name, p in documents:
            document = _describe(config, name, p)[0]
            if document.withheld.value or document.privileged.value:
                wrong.append(f"{name}: {document.withheld.reason}")
        rows.append(Row(f"{kind}: mentions / negations not withheld", len(documents), len(documents) - len(wrong),
                        "100%", tuple(wrong)))
    harmful = harm_documents(HARM_STATEMENTS, HARM_STATEMENTS_ES)
    missed = [name for name, p in harmful if not _describe(config, name, p)[0].withheld.value]
    rows.append(Row("123115(b) determinations and instructions withheld", len(harmful), len(harmful) - len(missed),
                    "100%", tuple(missed)))
    mentions = harm_documents(HARM_MENTIONS, (), letters=True)
    wrong = [f"{name}: {d.withheld.reason}" for name, p in mentions
             if (d := _describe(config, name, p)[0]).withheld.value]
    rows.append(Row("123115(b) conditions, rights notices, clinical talk of harm not withheld", len(mentions),
                    len(mentions) - len(wrong), "100%", tuple(wrong)))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| guard | cases | right | target |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {row.what} | {row.total} | {row.good} | {row.target} |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    rows = evaluate()
    print(table(rows))
    for row in rows:
        for failure in row.failures[:10]:
            print(f"  MISSED [{row.what}] {failure}", file=sys.stderr)
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
