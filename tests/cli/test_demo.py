"""`imr-packet demo`: the sample case is valid, complete, and (once build exists) builds as promised."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import stat

import pytest
from docx import Document as DocxDocument
from PIL import Image
from pypdf import PdfReader

from packet import demo
from packet.model.case import load_case
from packet.model.deadlines import packet_deadline


def test_demo_writes_a_valid_case_with_a_live_deadline(config):
    before = dt.datetime.now(config.calendar.tz).replace(microsecond=0)
    case_dir = demo.write_demo(config)
    after = dt.datetime.now(config.calendar.tz)
    assert case_dir.parent == config.paths.inbox
    assert case_dir.name == f"DEMO-{before.year}-0001"
    facts = load_case(case_dir)
    assert facts.case_id == case_dir.name
    assert facts.member.name == demo.MEMBER_NAME
    assert facts.member.date_of_birth == demo.MEMBER_DOB
    assert before <= facts.dmhc_notice_received <= after
    assert facts.dmhc_notice_received.utcoffset() == after.utcoffset()
    assert packet_deadline(facts, config).due > after


def test_demo_numbers_the_next_case_and_leaves_no_staging_folder(config):
    first = demo.write_demo(config)
    (config.paths.inbox / first.name.replace("0001", "0007")).mkdir()
    second = demo.write_demo(config)
    assert second.name.endswith("-0008")
    load_case(second)
    assert sorted(p.name for p in config.paths.inbox.iterdir() if p.name.startswith(".")) == []


def test_demo_files_exist_and_are_what_they_say(config):
    case_dir = demo.write_demo(config)
    present = {p.relative_to(case_dir).as_posix() for p in case_dir.rglob("*") if p.is_file()}
    assert present == set(demo.DEMO_FILES) | {"case.toml", "overrides.toml"}
    for path in case_dir.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o640

    # all three hint folders, the privileged folder, and files at the top level for the rules
    assert {rel.split("/")[0] for rel in present if "/" in rel} == {
        "medical-records", "correspondence", "plan-statements", "privileged"}

    identity = (demo.MEMBER_NAME, demo.MEMBER_ID, demo.MEMBER_DOB.strftime("%m/%d/%Y"))
    for rel in present:
        if rel.endswith(".pdf") and rel != demo.ENCRYPTED_PDF:
            reader = PdfReader(case_dir / rel)
            text = "\n".join(page.extract_text() for page in reader.pages)
            assert demo.MEMBER_NAME in text, rel
            assert any(value in text for value in identity[1:]), rel

    assert "GRIEVANCE RESOLUTION" in _pdf_text(case_dir / demo.GRIEVANCE_RESOLUTION).upper()
    assert "NOTICE OF ACTION" in _pdf_text(case_dir / demo.DENIAL_LETTER)
    assert "Attorney-client privileged" in _pdf_text(case_dir / demo.PRIVILEGED_MEMO)
    assert "STATEMENT OF REASONS" in _pdf_text(case_dir / demo.STATEMENT_OF_REASONS)
    assert "MEDICAL DIRECTOR REVIEW" in _pdf_text(case_dir / demo.MD_REVIEW)
    assert len(PdfReader(case_dir / demo.PROGRESS_NOTE_1).pages) == 3

    docx_text = "\n".join(p.text for p in DocxDocument(case_dir / demo.LMN_DOCX).paragraphs)
    assert "Letter of Medical Necessity" in docx_text and demo.MEMBER_ID in docx_text

    txt = (case_dir / demo.PHONE_NOTE_TXT).read_text(encoding="utf-8")
    assert demo.MEMBER_NAME in txt

    with Image.open(case_dir / demo.FAX_TIFF) as fax:
        assert fax.n_frames == 2
        assert fax.info["compression"] == "group4"
        assert fax.mode == "1"

    locked = PdfReader(case_dir / demo.ENCRYPTED_PDF)
    assert locked.is_encrypted


def _pdf_text(path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def _build_case():
    try:
        module = importlib.import_module("packet.pipeline.build")
    except ImportError:
        return None
    return getattr(module, "build_case", None)


@pytest.mark.skipif(_build_case() is None, reason="packet.pipeline.build.build_case does not exist yet")
def test_building_the_demo_gives_every_category_a_privileged_memo_and_one_refusal(config):
    case_dir = demo.write_demo(config)
    _build_case()(case_dir, config)
    manifests = list(config.paths.outbox.glob(f"{case_dir.name}/draft/manifest.json"))
    assert manifests, "build_case wrote no draft manifest"
    manifest = json.loads(manifests[0].read_text(encoding="utf-8"))
    documents = {d["source"]: d for d in manifest["documents"]}
    categories = {d["category"] for d in documents.values()}
    assert {"medical_records", "correspondence", "plan_statements"} <= categories
    memo = documents[demo.PRIVILEGED_MEMO]
    assert memo["privileged"] is True and memo["withheld_from_member"] is True
    assert memo["category"] == "plan_statements"  # from the demo's overrides.toml
    assert [r["source"] for r in manifest["rejected"]] == [demo.ENCRYPTED_PDF]
    assert "encrypt" in json.dumps(manifest["rejected"][0]).lower()
    assert demo.FAX_TIFF in documents and documents[demo.FAX_TIFF]["pages"] == 2
    assert demo.LMN_DOCX in documents
    assert documents[demo.MRI_REPORT]["identity"] == "confirmed"
