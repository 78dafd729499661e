"""A case for the desk's tests: built once, with items that need a person (a file no rule can place,
another patient's page, a privileged memo), and accounts of each role."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_config, make_pdf, write_case

CASE_ID = "IMR-2026-000417"
PASSWORD = "correct horse battery staple"
OTHER_PATIENT = "CHEN, ROBERT W"


def desk_case(root: Path, **flags):
    """(config, case_dir) with the case built into a draft."""
    from packet.desk import accounts
    from packet.pipeline.build import build_case

    config = make_config(root, **flags)
    case_dir = write_case(config.paths.inbox, CASE_ID)
    header = f"Patient: {MEMBER_NAME}   Member ID: {MEMBER_ID}   DOB: {MEMBER_DOB:%m/%d/%Y}"
    make_pdf(case_dir / "medical-records" / "Lab panel.pdf", [
        f"VALLEY LAB\nLaboratory report\n{header}\nDate of service: 08/14/2026\nCBC within normal limits.",
        f"VALLEY LAB\nLaboratory report\nPatient: {OTHER_PATIENT}  DOB: 03/02/1949  Member ID: M111222333\n"
        "Date of service: 08/14/2026\nHIV-1/2 antibody: REACTIVE",
    ])
    make_pdf(case_dir / "correspondence" / "Grievance resolution letter.pdf", [
        f"Golden Poppy Health Plan\nGrievance resolution\nDear {MEMBER_NAME},\nMember ID: {MEMBER_ID}\n"
        "Date: 10/01/2026\nWe reviewed your grievance and uphold our decision.\nSincerely,"])
    make_pdf(case_dir / "plan-statements" / "Statement of reasons.pdf", [
        f"Statement of reasons\nMember: {MEMBER_NAME} ({MEMBER_ID})\nDate: 09/20/2026\n"
        "The requested service is not medically necessary."])
    make_pdf(case_dir / "misc scan 7.pdf", [f"{MEMBER_NAME}\n{MEMBER_ID}\nSee attached.\nthanks"])
    build_case(case_dir, config)
    for name, role in (("clara", "clerk"), ("sam", "supervisor"), ("audrey", "auditor")):
        accounts.add_user(config, name, role, PASSWORD)
    return config, case_dir


def copy_root(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)
