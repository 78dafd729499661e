"""Builders shared by tests/test_seal.py and tests/test_verify.py: sealable case folders in code."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_pdf, write_case

CASE_ID = "IMR-2026-000417"
PST = dt.timezone(dt.timedelta(hours=-8))
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=PST)
WHO = f"Patient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\nDOB: {MEMBER_DOB:%m/%d/%Y}"
PRIVILEGED_TEXT = "Prepared at the direction of counsel regarding litigation risk of this appeal."


def sealable_case(inbox: Path, case_id: str = CASE_ID, *, grievance_response: bool = True,
                  dispute_type: str = "medical_necessity", privileged: bool = True) -> Path:
    """A case that passes the release gate: a medical record, the grievance response, a privileged memo."""
    case_dir = write_case(inbox, case_id, dispute_type=dispute_type)
    make_pdf(case_dir / "medical-records" / "mri report.pdf",
             [f"MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026\n{WHO}\nFindings: disc protrusion at L4-L5.",
              f"MRI LUMBAR SPINE REPORT page two\n{WHO}\nImpression: moderate stenosis."])
    if grievance_response:
        make_pdf(case_dir / "correspondence" / "grievance resolution.pdf",
                 [f"Grievance Resolution Letter\nDate: 10/02/2026\n{WHO}\nWe have upheld our decision to deny "
                  "the requested lumbar fusion. This is our written response to your grievance."])
    if privileged:
        make_pdf(case_dir / "privileged" / "counsel memo.pdf",
                 [f"PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION\nMemo from counsel\n{WHO}\n"
                  + PRIVILEGED_TEXT, f"Memo from counsel, page two\n{WHO}\nRecommendation: uphold the denial."])
        (case_dir / "overrides.toml").write_text('["privileged/counsel memo.pdf"]\ncategory = "plan_statements"\n')
    return case_dir


def add_record(case_dir: Path, name: str = "medical-records/pt note.pdf", pages: int = 1) -> Path:
    return make_pdf(case_dir / name, [f"PHYSICAL THERAPY NOTE {n}\nVisit date: 11/20/2026\n{WHO}\n"
                                      "Range of motion limited." for n in range(1, pages + 1)])


def tree(folder: Path) -> dict[str, str]:
    """relative path -> SHA-256 of every file under `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
