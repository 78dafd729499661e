"""A person removes single pages of a file (issue 12 "removes the pages", issue 16): overrides.toml
`exclude = { reason = "...", pages = "2" }`. The removed pages reach no output, nothing on them
decides anything, Bates numbers run on without a gap, and verify fails if one comes back."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_config, make_pdf
from pypdf import PdfReader, PdfWriter
from scankit import fax_tiff
from sealkit import CASE_ID, NOW, sealable_case

from packet.errors import GateFailed
from packet.intake.folder import load_overrides
from packet.pipeline.build import build_case
from packet.pipeline.seal import seal_case
from packet.pipeline.verify import verify_submission
from packet.records import audit

LAB = "medical-records/lab panel.pdf"
HEADER = f"Patient: {MEMBER_NAME}   Member ID: {MEMBER_ID}   DOB: {MEMBER_DOB:%m/%d/%Y}"
OTHER = "Patient: CHEN, ROBERT W   DOB: 02/17/1949   MRN: 00448812"
LAB_PAGES = [f"VALLEY LAB\nLaboratory report\n{HEADER}\nDate of service: 08/14/2026\nCBC within normal limits.",
             f"VALLEY LAB\nLaboratory report\n{OTHER}\nDate of service: 08/15/2026\nHIV-1/2 antibody: REACTIVE\n"
             "Zebrafinch quartz marmalade specimen annotation.",
             f"VALLEY LAB\nLaboratory report\n{HEADER}\nDate of service: 08/14/2026\nMetabolic panel normal."]
TRACES = ("CHEN", "00448812", "REACTIVE", "Zebrafinch")


def pdftotext(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _case(config, pages=LAB_PAGES, overrides: str = ""):
    case_dir = sealable_case(config.paths.inbox)
    make_pdf(case_dir / LAB, pages)
    text = (case_dir / "overrides.toml").read_text()
    (case_dir / "overrides.toml").write_text(text + overrides)
    return case_dir


def _remove(reason="page 2 is another patient's lab result", pages="2") -> str:
    return f'\n["{LAB}"]\nexclude = {{ reason = "{reason}", pages = "{pages}" }}\n'


def test_page_ranges_parse_like_identity_confirmed_and_bad_ones_are_refused_alone(tmp_path):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    (case_dir / "overrides.toml").write_text(
        '["a.pdf"]\nexclude = { reason = "other patient", pages = "2, 5-6" }\ntitle = "Lab"\n'
        '["b.pdf"]\nexclude = { reason = "other patient", pages = "3-1" }\ntitle = "Kept title"\n'
        '["c.pdf"]\nexclude = { reason = "other patient", pages = "two" }\n'
        '["d.pdf"]\nexclude = { pages = "2" }\n'
        '["e.pdf"]\nexclude = "the whole file"\n')
    overrides, problems = load_overrides(case_dir)
    assert overrides["a.pdf"].exclude == "other patient" and overrides["a.pdf"].exclude_pages == (2, 5, 6)
    assert overrides["a.pdf"].title == "Lab"
    assert overrides["b.pdf"].exclude is None and overrides["b.pdf"].title == "Kept title"
    assert overrides["c.pdf"].exclude is None and overrides["d.pdf"].exclude is None
    assert overrides["e.pdf"].exclude == "the whole file" and overrides["e.pdf"].exclude_pages == ()
    assert len(problems) == 3
    assert all("exclude" in p and "were not removed" in p for p in problems)
    assert any('["b.pdf"]' in p for p in problems) and any('["c.pdf"]' in p for p in problems)


def test_a_page_beyond_the_file_is_refused_and_the_other_decisions_stand(tmp_path):
    config = make_config(tmp_path)
    case_dir = _case(config, overrides=_remove(pages="2, 9") + 'title = "Valley lab panel"\n')
    result = build_case(case_dir, config, now=NOW)
    [lab] = [d for d in result.documents if d.source == LAB]
    assert lab.removed_pages == () and lab.pages == 3 and lab.identity.value == "mismatch"
    assert lab.title.value == "Valley lab panel"
    note = (case_dir / "_STATUS.txt").read_text()
    assert f'["{LAB}"] exclude pages 9' in note and "3 page(s)" in note
    with pytest.raises(GateFailed) as caught:
        seal_case(config, CASE_ID, now=NOW)
    assert any("exclude pages 9" in item for item in caught.value.items), caught.value.items


def test_removing_the_other_patients_page_seals_and_it_reaches_no_output(tmp_path):
    config = make_config(tmp_path)
    case_dir = _case(config)
    first = build_case(case_dir, config, now=NOW)
    [lab] = [d for d in first.documents if d.source == LAB]
    assert lab.identity.value == "mismatch" and lab.other_person_pages == (2,)
    with pytest.raises(GateFailed):
        seal_case(config, CASE_ID, now=NOW)

    (case_dir / "overrides.toml").write_text((case_dir / "overrides.toml").read_text() + _remove())
    again = build_case(case_dir, config, now=NOW)
    [lab] = [d for d in again.documents if d.source == LAB]
    assert lab.removed_pages == (2,) and lab.pages == 2 and lab.other_person_pages == ()
    assert lab.identity.value == "confirmed"
    assert lab.date.value.isoformat() == "2026-08-14"  # the removed page's date decides nothing
    note = (case_dir / "_STATUS.txt").read_text()
    assert "1 page(s) removed by a person" in note and "CHEN" not in note
    draft = config.paths.outbox / CASE_ID / "draft" / "imr-org-packet.pdf"  # not an update of the last draft
    assert "CHEN" not in pdftotext(draft) and b"CHEN" not in draft.read_bytes()

    submission = seal_case(config, CASE_ID, now=NOW)
    manifest = json.loads((submission / "manifest.json").read_text())
    entry = next(d for d in manifest["documents"] if d["source"] == LAB)
    assert entry["removed_pages"] == [2] and entry["pages"] == 2 and len(entry["packet_pages"]) == 2
    assert entry["removed_reason"] == "page 2 is another patient's lab result"
    assert entry["removed_by"]
    events = [e for e in audit.iter_entries(config) if e.get("decision") == "exclude_pages"]
    assert events and events[-1]["new"] == [2] and events[-1]["actor"] == entry["removed_by"]
    # Bates numbers run on over the kept pages without a gap.
    placed = sorted((d for d in manifest["documents"] if d["packet_pages"]), key=lambda d: d["packet_pages"][0])
    numbers = []
    for d in placed:
        first_no, last_no = int(d["bates_first"][-6:]), int(d["bates_last"][-6:])
        assert last_no - first_no + 1 == d["pages"]
        numbers += list(range(first_no, last_no + 1))
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))

    outputs = [submission / o["file"] for o in manifest["outputs"] if o["file"].endswith(".pdf")]
    assert {"imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf"} <= {p.name for p in outputs}
    for path in outputs:
        text = pdftotext(path)
        assert not any(trace in text for trace in TRACES), path.name
    assert "Metabolic panel normal" in pdftotext(submission / "imr-org-packet.pdf")
    assert "removed by a person" in pdftotext(submission / "member-packet.pdf")

    from packet.mailings.copies import write_copies
    copies = write_copies(config, CASE_ID, "member", now=NOW)
    assert "Metabolic panel" in pdftotext(copies)
    assert not any(trace in pdftotext(copies) for trace in TRACES)

    report = verify_submission(submission, config, rebuild=True)
    assert report.ok, report.text()
    assert any("people removed appears in any output" in c for c in report.checks)
    assert "byte-identical" in report.checks[-1]

    # The removed page put back into the member's mailing: verify fails, naming it.
    member = submission / "member-packet.pdf"
    writer = PdfWriter(clone_from=str(member))
    writer.add_page(PdfReader(str(config.paths.archive / CASE_ID / "submission-01" / LAB)).pages[1])
    with open(member, "wb") as handle:
        writer.write(handle)
    report = verify_submission(submission, config)
    assert not report.ok
    assert any("which a person removed" in f and "member-packet.pdf" in f for f in report.failures), report.text()


def test_a_foreign_page_left_over_still_blocks_and_is_named(tmp_path):
    config = make_config(tmp_path)
    pages = LAB_PAGES + [f"VALLEY LAB\nLaboratory report\n{OTHER}\nLipid panel: elevated."]
    case_dir = _case(config, pages=pages, overrides=_remove())
    result = build_case(case_dir, config, now=NOW)
    [lab] = [d for d in result.documents if d.source == LAB]
    assert lab.identity.value == "mismatch" and lab.other_person_pages == (4,)
    with pytest.raises(GateFailed) as caught:
        seal_case(config, CASE_ID, now=NOW)
    [item] = [i for i in caught.value.items if "ANOTHER" in i]
    assert LAB in item and "page 4" in item and "page 2" not in item, item


def test_withholding_evidence_on_a_removed_page_decides_nothing(tmp_path):
    config = make_config(tmp_path)
    pages = [LAB_PAGES[0], "PSYCHOTHERAPY NOTES\nSession notes of the therapist, kept separately.\n" + OTHER]
    case_dir = _case(config, pages=pages)
    [before] = [d for d in build_case(case_dir, config, now=NOW).documents if d.source == LAB]
    (case_dir / "overrides.toml").write_text((case_dir / "overrides.toml").read_text() + _remove())
    [after] = [d for d in build_case(case_dir, config, now=NOW).documents if d.source == LAB]
    assert before.is_withheld and "page 2" in before.withheld.reason, before.withheld.reason
    assert after.removed_pages == (2,)
    assert not after.is_withheld, after.withheld.reason
    assert "page 2" not in after.category.reason and "page 2" not in after.title.reason


def test_every_page_removed_is_an_excluded_file(tmp_path):
    config = make_config(tmp_path)
    case_dir = _case(config, overrides=_remove(pages="1-3"))
    result = build_case(case_dir, config, now=NOW)
    [lab] = [d for d in result.documents if d.source == LAB]
    assert lab.excluded == "page 2 is another patient's lab result" and lab.removed_pages == ()
    submission = seal_case(config, CASE_ID, now=NOW)
    for name in ("imr-org-packet.pdf", "member-packet.pdf"):
        assert "VALLEY LAB" not in pdftotext(submission / name)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
def test_a_scanned_lab_fax_with_another_patients_page_removed(tmp_path):
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    scan = "medical-records/lab fax.tif"
    fax_tiff(case_dir / scan, [
        ["VALLEY LAB REPORT", f"Patient: {MEMBER_NAME}", f"Member ID: {MEMBER_ID}", "Collected: 08/14/2026",
         "CBC within normal limits."],
        ["VALLEY LAB REPORT", "Patient: CHEN, ROBERT W", "Member ID: ZX44881200", "DOB: 02/17/1949",
         "HIV-1/2 antigen/antibody: REACTIVE"],
        ["VALLEY LAB REPORT", f"Patient: {MEMBER_NAME}", f"Member ID: {MEMBER_ID}", "Collected: 08/14/2026",
         "Metabolic panel normal."]])
    [lab] = [d for d in build_case(case_dir, config, now=NOW).documents if d.source == scan]
    assert lab.identity.value == "mismatch" and lab.other_person_pages == (2,)
    (case_dir / "overrides.toml").write_text((case_dir / "overrides.toml").read_text()
                                             + f'\n["{scan}"]\nexclude = {{ reason = "other patient", pages = "2" }}\n')
    [lab] = [d for d in build_case(case_dir, config, now=NOW).documents if d.source == scan]
    assert lab.removed_pages == (2,) and lab.pages == 2 and lab.ocr is not None and len(lab.ocr) == 2
    submission = seal_case(config, CASE_ID, now=NOW)
    for name in ("imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf"):
        text = pdftotext(submission / name)
        assert "CHEN" not in text and "ZX44881200" not in text, name
    assert "Metabolic" in pdftotext(submission / "imr-org-packet.pdf")
    report = verify_submission(submission, config, rebuild=True)
    assert report.ok, report.text()


def test_another_patients_record_named_on_one_page_is_removed_whole_and_reaches_no_output(tmp_path):
    """A lab's 2-page report of another patient, named on its first page only, inside the member's
    file: its own page counter joins its second page to the first, so both are named, and removing
    the pages the check names leaves nothing of it in any output."""
    pages = [LAB_PAGES[0] + "\nPage 1 of 1",
             f"VALLEY LAB\n{OTHER}\nHIV-1/2 antibody: see next page\nPage 1 of 2",
             "Result: REACTIVE\nZebrafinch quartz marmalade specimen annotation.\nPage 2 of 2",
             LAB_PAGES[2]]
    config = make_config(tmp_path)
    case_dir = _case(config, pages)
    [lab] = [d for d in build_case(case_dir, config, now=NOW).documents if d.source == LAB]
    assert lab.identity.value == "mismatch" and lab.other_person_pages == (2, 3)
    assert "continued on page 3" in lab.identity.evidence
    with pytest.raises(GateFailed):
        seal_case(config, CASE_ID, now=NOW)

    named = ", ".join(str(page) for page in lab.other_person_pages)
    (case_dir / "overrides.toml").write_text((case_dir / "overrides.toml").read_text()
                                             + _remove("another patient's lab report", named))
    [lab] = [d for d in build_case(case_dir, config, now=NOW).documents if d.source == LAB]
    assert lab.removed_pages == (2, 3) and lab.identity.value == "confirmed"
    submission = seal_case(config, CASE_ID, now=NOW)
    manifest = json.loads((submission / "manifest.json").read_text())
    for output in (o["file"] for o in manifest["outputs"] if o["file"].endswith(".pdf")):
        text = pdftotext(submission / output)
        assert not any(trace in text for trace in TRACES), output
