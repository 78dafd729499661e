"""Civ. 56.107 (domain.md): a member's confidential communication request on file
(`[member] confidential_address` in case.toml) sends every mailing to the member to the address it
names, never to the home address (which may be the subscriber's): the seal's mailings, the notice
mailing and its forms, a copy set on request, the experimental notice's return address."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_config, make_pdf, write_case
from mailkit import poppler_text
from packet.errors import CaseError
from packet.mailings.copies import write_copies
from packet.mailings.notice import write_notice
from packet.model.case import load_case
from packet.pipeline.build import build_case
from packet.pipeline.seal import seal_case

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
HOME = ("1200 Poppy Lane",)  # helpers.CASE_TOML's member address (its city is the plan's too)
CONFIDENTIAL = ("PO Box 4417", "Davis, CA 95617")
WHO = f"Patient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\nDOB: {MEMBER_DOB:%m/%d/%Y}"


def confidential_case(inbox: Path, line: str = 'confidential_address = ["PO Box 4417", "Davis, CA 95617"]',
                      **kwargs) -> Path:
    case_dir = write_case(inbox, **kwargs)
    toml = case_dir / "case.toml"
    text = toml.read_text(encoding="utf-8")
    home = 'address = ["1200 Poppy Lane, Apt 3", "Sacramento, CA 95814"]\n'
    assert text.count(home) == 1
    toml.write_text(text.replace(home, home + line + "\n"), encoding="utf-8")
    return case_dir


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def docx_text(path: Path) -> str:
    document = docx.Document(str(path))
    return "\n".join(p.text for p in document.paragraphs) + "\n".join(
        cell.text for table in document.tables for row in table.rows for cell in row.cells)


def assert_confidential_only(text: str, where: str) -> None:
    text = squash(text)
    assert all(line in text for line in CONFIDENTIAL), f"{where}: the confidential address is missing"
    assert not any(line in text for line in HOME), f"{where}: the home address is printed"


def test_case_toml_takes_a_confidential_address_for_the_member_only(tmp_path):
    facts = load_case(confidential_case(tmp_path / "inbox"))
    assert facts.member.confidential_address == CONFIDENTIAL
    assert facts.member.mailing_address == CONFIDENTIAL
    assert facts.member.address[0].startswith(HOME[0])  # kept as written
    assert facts.provider.mailing_address == facts.provider.address  # no request: the address on file


@pytest.mark.parametrize("line, message", [
    ("confidential_address = 4417", "[member] confidential_address must be a list of text lines"),
    ("confidential_address = []", "[member] confidential_address must be a list of text lines"),
    ('confidential_address = ["FILL IN: street and number"]', "confidential_address still holds the template"),
    ('confidential_address = ["PO Box 1\\u0007"]', "confidential_address must not contain control characters"),
])
def test_a_bad_confidential_address_is_named(tmp_path, line, message):
    with pytest.raises(CaseError) as raised:
        load_case(confidential_case(tmp_path / "inbox", line))
    assert message in str(raised.value)


def test_only_the_member_has_a_confidential_address(tmp_path):
    case_dir = write_case(tmp_path / "inbox", extra='confidential_address = ["PO Box 1", "Davis, CA 95617"]\n')
    with pytest.raises(CaseError, match=r"\[provider\] confidential_address is not a known key"):
        load_case(case_dir)


def test_every_mailing_to_the_member_goes_to_the_confidential_address(tmp_path):
    config = make_config(tmp_path)
    case_dir = confidential_case(config.paths.inbox)
    make_pdf(case_dir / "medical-records" / "mri report.pdf",
             [f"MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026\n{WHO}\nFindings: disc protrusion at L4-L5."])
    make_pdf(case_dir / "correspondence" / "grievance resolution.pdf",
             [f"Grievance Resolution Letter\nDate: 10/02/2026\n{WHO}\nWe have upheld our decision to deny "
              "the requested lumbar fusion. This is our written response to your grievance."])
    build_case(case_dir, config, now=NOW)
    status = (case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    assert "confidential communication address" in status and "Civ. 56.107" in status
    seal_case(config, case_dir.name, now=NOW)
    submission = config.paths.outbox / case_dir.name / "submission-01"
    member = submission / "member-packet.pdf"
    assert_confidential_only(poppler_text(member), "member packet")
    assert_confidential_only(docx_text(submission / "notice-letter.docx"), "notice letter")
    first = squash(PdfReader(str(member)).pages[0].extract_text())  # the window of the #10 envelope
    assert MEMBER_NAME in first and CONFIDENTIAL[0] in first
    for name in ("provider-packet.pdf", "annotated-list.pdf", "imr-org-packet.pdf"):
        assert not any(line in squash(poppler_text(submission / name)) for line in HOME), name
    printed = sorted((config.paths.outbox / "_print").glob("*member*"))
    assert printed and all(CONFIDENTIAL[0] in squash(poppler_text(path)) for path in printed)
    copies = write_copies(config, case_dir.name, "member", now=NOW)
    assert_confidential_only(poppler_text(copies), "member copy set")


def test_the_notice_mailing_and_its_forms_use_the_confidential_address(tmp_path):
    config = make_config(tmp_path)
    confidential_case(config.paths.inbox, dispute_type="experimental")
    path = write_notice(config, "IMR-2026-000417", now=NOW)
    assert_confidential_only(poppler_text(path), "notice mailing")
    fields = PdfReader(str(path)).get_fields()
    assert fields["application.address"]["/V"] == ", ".join(CONFIDENTIAL)  # what DMHC will write to
    envelope = squash(poppler_text(path.parent / "dmhc-envelope-10.pdf"))
    assert CONFIDENTIAL[0] in envelope and HOME[0] not in envelope  # the return address
