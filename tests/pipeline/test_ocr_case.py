"""A scanned case end to end: OCR text feeds identity and privilege exactly like born-digital text,
the packet and the mailings are searchable on the scanned pages, the manifest records the
confidence, and a sealed scanned case rebuilds byte-identically without running OCR
(issue 12, item 1, reproduced)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_config
from scankit import counted_tesseract, fax_tiff, image_pdf, pdf_text
from sealkit import CASE_ID, NOW, sealable_case

from packet.config import load_config
from packet.errors import GateFailed
from packet.pipeline.build import build_case
from packet.pipeline.seal import seal_case
from packet.pipeline.verify import verify_submission

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")

SCANNED = "medical-records/outside clinic fax.tif"
SCAN_LINES = ["OUTSIDE CLINIC PROGRESS NOTE", f"Patient: {MEMBER_NAME}", f"Member ID: {MEMBER_ID}",
              f"DOB: {MEMBER_DOB:%m/%d/%Y}", "Visit date: 09/03/2026",
              "Assessment: lumbar stenosis, pain improving with therapy."]
OTHER = "medical-records/lab fax.tif"
OTHER_LINES = ["QUEST DIAGNOSTICS LABORATORY REPORT", "Patient: CHEN, ROBERT W", "Member ID: ZX44881200",
               "DOB: 02/17/1949", "Collected: 09/12/2026", "HIV-1/2 antigen/antibody: REACTIVE"]
MEMO = "correspondence/scanned memo.tif"
MEMO_LINES = ["PRIVILEGED AND CONFIDENTIAL", "ATTORNEY-CLIENT COMMUNICATION", "Memo from counsel",
              f"Re: {MEMBER_NAME}, Member ID: {MEMBER_ID}",
              "Prepared at the direction of counsel regarding litigation risk of this appeal."]


@pytest.fixture
def tesseract_runs(tmp_path, monkeypatch):
    with counted_tesseract(tmp_path, monkeypatch) as runs:
        yield runs


def _pages_with(path: Path, *words: str) -> list[int]:
    return [number for number, text in enumerate(pdf_text(path).split("\f"), 1)
            if all(word in text for word in words)]


@pytest.mark.parametrize("scanned", [SCANNED, "medical-records/outside clinic fax with header.pdf"])
def test_a_scanned_case_is_searchable_sealed_and_rebuilt_without_ocr(tmp_path, tesseract_runs, scanned):
    # The TIFF has no text at all; the PDF's page has the fax server's header line over the scan.
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    if scanned.endswith(".tif"):
        fax_tiff(case_dir / scanned, [SCAN_LINES])
    else:
        image_pdf(case_dir / scanned, [("10/01/2026 14:22 FROM: OUTSIDE CLINIC P.001/001", SCAN_LINES)])
    progress: list[tuple[str, int, int]] = []
    result = build_case(case_dir, config, now=NOW, progress=lambda *event: progress.append(event))
    [scan] = [d for d in result.documents if d.source == scanned]
    assert scan.identity.value == "confirmed", scan.identity.reason
    assert scan.date.value is not None and scan.date.value.isoformat() == "2026-09-03"
    assert scan.ocr is not None and len(scan.ocr) == 1 and 0.7 < scan.ocr[0] <= 1.0
    assert ("reading_pages", 1, 1) in progress
    for name in ("imr-org-packet.pdf", "member-packet.pdf"):
        assert _pages_with(result.draft_dir / name, "OUTSIDE CLINIC", "Testmember"), name
    runs = tesseract_runs()
    assert runs >= 1

    again = build_case(case_dir, config, now=NOW)  # a rebuild of the same case reads nothing again
    assert tesseract_runs() == runs
    assert [d.ocr for d in again.documents] == [d.ocr for d in result.documents]

    submission = seal_case(config, CASE_ID, now=NOW)
    manifest = json.loads((submission / "manifest.json").read_text())
    entries = {d["source"]: d for d in manifest["documents"]}
    assert entries[scanned]["ocr"] == list(scan.ocr)
    assert entries["medical-records/mri report.pdf"]["ocr"] is None
    archived = config.paths.archive / CASE_ID / "submission-01" / "_sealed" / "converted" / f"{scan.sha256}.pdf"
    assert archived.is_file() and "OUTSIDE CLINIC" in pdf_text(archived)

    shutil.rmtree(config.cache_dir)  # neither the conversion nor the OCR cache is left
    report = verify_submission(submission, config, rebuild=True)
    assert report.ok, report.text()
    assert "byte-identical" in report.checks[-1]
    assert tesseract_runs() == runs, "verify --rebuild reads the archived conversion, never OCR"


def test_issue_12_a_scanned_fax_of_another_patient_blocks_sealing(tmp_path):
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    fax_tiff(case_dir / OTHER, [OTHER_LINES])
    result = build_case(case_dir, config, now=NOW)
    [lab] = [d for d in result.documents if d.source == OTHER]
    assert lab.identity.value == "mismatch", lab.identity.reason
    assert lab.other_person_pages == (1,)
    with pytest.raises(GateFailed):
        seal_case(config, CASE_ID, now=NOW)
    assert not (config.paths.outbox / CASE_ID / "submission-01").exists()


def test_issue_12_an_image_only_privileged_memo_outside_privileged_is_flagged(tmp_path):
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    fax_tiff(case_dir / MEMO, [MEMO_LINES])
    result = build_case(case_dir, config, now=NOW)
    [memo] = [d for d in result.documents if d.source == MEMO]
    assert memo.is_privileged and memo.is_withheld, memo.privileged.reason
    assert not _pages_with(result.draft_dir / "member-packet.pdf", "Memo from counsel")


def _config_with(tmp_path: Path, ocr_lines: str):
    """The configuration as an imr.toml with an [ocr] table gives it (folders under tmp_path)."""
    toml = tmp_path / "imr.toml"
    toml.write_text(f"[ocr]\n{ocr_lines}\n", encoding="utf-8")
    values = {key: str(tmp_path / key) for key in ("inbox", "outbox", "archive", "state")}
    return load_config(toml, flags=values, environ={})


@pytest.mark.slow  # ten builds, five of them reading the page
def test_changed_ocr_settings_read_the_page_again_and_the_same_settings_never(tmp_path, tesseract_runs):
    """The conversion cache is keyed by the OCR settings too: a page read with other settings is not
    served (the page is read again); the same settings read nothing (issue 12/17: cache by settings)."""
    config = _config_with(tmp_path, "max_deskew_degrees = 5.0")
    case_dir = sealable_case(config.paths.inbox)
    fax_tiff(case_dir / SCANNED, [SCAN_LINES])
    build_case(case_dir, config, now=NOW)
    first = tesseract_runs()
    assert first >= 1
    build_case(case_dir, _config_with(tmp_path, "max_deskew_degrees = 5.0"), now=NOW)
    assert tesseract_runs() == first, "the same settings: nothing is read again"
    for number, setting in enumerate(["max_deskew_degrees = 4.0", "deskew = false", "rotate_pages = false",
                                      'languages = "eng"'], 1):
        before = tesseract_runs()
        changed = _config_with(tmp_path, setting)
        result = build_case(case_dir, changed, now=NOW)
        assert tesseract_runs() > before, f"{setting}: the page must be read again"
        [scan] = [d for d in result.documents if d.source == SCANNED]
        assert scan.identity.value == "confirmed", scan.identity.reason
        again = tesseract_runs()
        build_case(case_dir, _config_with(tmp_path, setting), now=NOW)
        assert tesseract_runs() == again, f"{setting} again: nothing is read again"
    entries = list((config.cache_dir / "ocr").glob("*/*/meta.json"))
    assert len(entries) == 5, "one reading of the page per distinct setting"


def test_min_confidence_from_imr_toml_decides_what_a_scanned_page_proves(tmp_path):
    """[ocr] min_confidence reaches the classifier: the same scanned page (read once) confirms the
    member under a threshold below its confidence and goes to a person, with the reason, above it."""
    config = _config_with(tmp_path, "min_confidence = 10")
    case_dir = sealable_case(config.paths.inbox)
    fax_tiff(case_dir / SCANNED, [SCAN_LINES])
    [scan] = [d for d in build_case(case_dir, config, now=NOW).documents if d.source == SCANNED]
    assert scan.identity.value == "confirmed", scan.identity.reason
    confidence = scan.ocr[0] * 100
    assert 15 < confidence < 99.5
    below = _config_with(tmp_path, f"min_confidence = {confidence - 5:.1f}")
    [scan] = [d for d in build_case(case_dir, below, now=NOW).documents if d.source == SCANNED]
    assert scan.identity.value == "confirmed", scan.identity.reason
    above = _config_with(tmp_path, f"min_confidence = {min(100.0, confidence + 0.5):.1f}")
    [scan] = [d for d in build_case(case_dir, above, now=NOW).documents if d.source == SCANNED]
    assert scan.identity.value == "not_found"
    assert "low confidence" in scan.identity.reason and "a person must check" in scan.identity.reason
    [scan] = [d for d in build_case(case_dir, below, now=NOW).documents if d.source == SCANNED]
    assert scan.identity.value == "confirmed", "and back: the classification follows the setting"
