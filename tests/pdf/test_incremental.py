"""Draft packets updated in place (packet.pdf.incremental): the same packet a full build makes, the
previous bytes untouched, kept documents never read again, and a full build whenever in doubt."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_config, make_pdf, write_case
from pdfkit import active_pdf

from packet import log
from packet.pdf import builder, incremental
from packet.pdf.inspect import pdf_summary
from packet.pipeline.build import DRAFT_PACKET_RECORD, build_case, case_state_dir
from packet.pipeline.seal import seal_case
from packet.pipeline.verify import verify_submission

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
WHO = f"Patient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\nDOB: {MEMBER_DOB:%m/%d/%Y}"


def _fill(case_dir: Path) -> None:
    make_pdf(case_dir / "medical-records" / "mri.pdf",
             [f"MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026\n{WHO}", "Findings page two", "Impression page three"])
    make_pdf(case_dir / "medical-records" / "pt notes.pdf",
             [f"PHYSICAL THERAPY NOTE\nDate of service: 09/20/2026\n{WHO}", "Plan of care"])
    make_pdf(case_dir / "correspondence" / "denial.pdf",
             [f"Notice of Action\nDate: 10/02/2026\n{WHO}\nWe denied the requested lumbar fusion."])
    make_pdf(case_dir / "correspondence" / "grievance resolution.pdf",
             [f"Grievance Resolution Letter\nDate: 10/30/2026\n{WHO}\nWe upheld the denial."])
    make_pdf(case_dir / "privileged" / "counsel memo.pdf",
             [f"Attorney-client privileged memo\nDate: 10/15/2026\n{WHO}", "Analysis page"])


def _additions(case_dir: Path) -> None:
    """Two new records that land in the middle of the packet, so later Bates numbers move."""
    make_pdf(case_dir / "medical-records" / "early consult.pdf",
             [f"ORTHOPEDIC CONSULTATION\nDate of service: 01/15/2026\n{WHO}", "Exam", "Assessment"])
    shutil.copy(active_pdf(case_dir.parent.parent / "scratch" / "active.pdf"),
                case_dir / "correspondence" / "letter with scripts.pdf")


def _packet(config, case_dir: Path) -> Path:
    return config.paths.outbox / case_dir.name / "draft" / "imr-org-packet.pdf"


def _text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-q", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _events(stream: io.StringIO, prefix: str = "draft_packet") -> list[dict]:
    return [line for line in (json.loads(x) for x in stream.getvalue().splitlines())
            if line["event"].startswith(prefix)]


@pytest.fixture
def logged():
    stream = io.StringIO()
    log.set_stream(stream)
    yield stream
    log.set_stream(None)


def _updated_case(tmp_path: Path, monkeypatch=None):
    """A case built once, then built again after two documents were added."""
    (tmp_path / "scratch").mkdir(parents=True, exist_ok=True)
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    _fill(case_dir)
    build_case(case_dir, config, now=NOW)
    before = _packet(config, case_dir).read_bytes()
    _additions(case_dir)
    opened: list[str] = []
    if monkeypatch is not None:
        # The mailings' copies of the records are made where a running service makes them, in the
        # render worker it keeps waiting: what this process opens is the IMR packet's reading alone.
        from packet.workers import render as renderworker

        renderworker.warm()
        real = builder.open_document
        monkeypatch.setattr(builder, "open_document", lambda document: opened.append(document.source) or real(document))
    build_case(case_dir, config, now=NOW)
    return config, case_dir, before, opened


def _full_build_of_the_same(tmp_path: Path) -> tuple[object, Path]:
    (tmp_path / "scratch").mkdir(parents=True, exist_ok=True)
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    _fill(case_dir)
    _additions(case_dir)
    build_case(case_dir, config, now=NOW)
    return config, case_dir


def test_an_added_document_updates_the_draft_to_the_packet_a_full_build_makes(tmp_path, monkeypatch, logged):
    config, case_dir, before, opened = _updated_case(tmp_path / "updated", monkeypatch)
    updated = _packet(config, case_dir)
    events = _events(logged)
    assert [e["event"] for e in events] == ["draft_packet.rebuilt", "draft_packet.updated"]
    assert events[1]["moved_stamps"] > 0  # the consult went before kept pages: their Bates numbers moved
    data = updated.read_bytes()
    assert data.startswith(before) and len(data) > len(before)  # the previous bytes are untouched
    # Only the new documents were read.
    assert sorted(opened) == ["correspondence/letter with scripts.pdf", "medical-records/early consult.pdf"]

    full_config, full_case = _full_build_of_the_same(tmp_path / "full")
    full = _packet(full_config, full_case)
    assert pdf_summary(updated) == pdf_summary(full)  # pages, labels, sizes, outline, every stamp
    summary = pdf_summary(updated)
    assert summary["active_content"] == []
    assert any("PRIVILEGED" in " ".join(stamp) for stamp in summary["stamps"])
    assert _text(updated) == _text(full)
    subprocess.run(["qpdf", "--check", str(updated)], check=True, capture_output=True)
    for needle in (b"/JavaScript", b"/OpenAction", b"/Launch", b"/EmbeddedFile", b"secret payload"):
        assert needle not in data, needle
    assert updated.stat().st_mode & 0o777 == 0o640
    report = verify_submission(updated.parent, config)  # the draft as a whole still checks out
    assert report.ok, report.failures


def test_a_case_sealed_after_updated_drafts_is_built_whole_and_verifies(tmp_path):
    config, case_dir, _, _ = _updated_case(tmp_path)
    submission = seal_case(config, case_dir.name, override_reason="test: sealing the draft as it is", now=NOW)
    packet = submission / "imr-org-packet.pdf"
    assert packet.read_bytes().count(b"%%EOF") == 1  # not an update of the draft
    report = verify_submission(submission, config, rebuild=True)
    assert report.ok, report


def test_the_same_documents_again_are_built_whole_with_the_same_bytes(tmp_path, logged):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    _fill(case_dir)
    build_case(case_dir, config, now=NOW)
    first = _packet(config, case_dir).read_bytes()
    build_case(case_dir, config, now=NOW)
    assert _packet(config, case_dir).read_bytes() == first
    assert [e["why"] for e in _events(logged)] == ["no_record", "no_new_document"]


def test_a_removed_document_never_stays_in_the_file(tmp_path, logged):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    _fill(case_dir)
    make_pdf(case_dir / "medical-records" / "wrong member.pdf", ["ZQXOTHERPATIENT record of someone else"])
    build_case(case_dir, config, now=NOW)
    assert b"ZQXOTHERPATIENT" in subprocess.run(["pdftotext", str(_packet(config, case_dir)), "-"],
                                                capture_output=True).stdout
    (case_dir / "medical-records" / "wrong member.pdf").unlink()
    make_pdf(case_dir / "medical-records" / "late lab.pdf", [f"LAB REPORT\nCollected: 11/01/2026\n{WHO}"])
    build_case(case_dir, config, now=NOW)
    assert _events(logged)[-1]["why"] == "document_removed"
    data = _packet(config, case_dir).read_bytes()
    assert data.count(b"%%EOF") == 1
    assert b"ZQXOTHERPATIENT" not in subprocess.run(["qpdf", "--qdf", "--object-streams=disable",
                                                     str(_packet(config, case_dir)), "-"], capture_output=True).stdout


@pytest.mark.parametrize("damage", ["record", "draft", "settings", "updates", "grown"])
def test_anything_doubtful_means_a_full_build(tmp_path, logged, damage, monkeypatch):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    _fill(case_dir)
    build_case(case_dir, config, now=NOW)
    record = case_state_dir(config, case_dir.name) / DRAFT_PACKET_RECORD
    expected = {"record": "no_record", "draft": "file_changed", "settings": "settings_changed",
                "updates": "many_updates", "grown": "grown"}[damage]
    if damage == "record":
        record.write_text("{not json")
    elif damage == "draft":
        with open(_packet(config, case_dir), "ab") as handle:
            handle.write(b"% appended by someone\n")
    elif damage == "settings":
        monkeypatch.setattr(incremental, "RECORD_VERSION", incremental.RECORD_VERSION + 1)
    elif damage == "updates":
        monkeypatch.setattr(incremental, "MAX_UPDATES", 0)
    else:
        monkeypatch.setattr(incremental, "MAX_GROWTH", 0.5)
    make_pdf(case_dir / "medical-records" / "late lab.pdf", [f"LAB REPORT\nCollected: 11/01/2026\n{WHO}"])
    build_case(case_dir, config, now=NOW)
    assert _events(logged)[-1]["why"] == expected
    assert _packet(config, case_dir).read_bytes().count(b"%%EOF") == 1
    assert pdf_summary(_packet(config, case_dir))["pages"] > 0


def test_an_update_that_fails_costs_a_full_build_and_logs_no_names(tmp_path, logged, monkeypatch):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    _fill(case_dir)
    build_case(case_dir, config, now=NOW)

    def broken(*args, **kwargs):
        raise KeyError("simulated")

    monkeypatch.setattr(incremental.UpdateWriter, "take_pages", broken)
    make_pdf(case_dir / "medical-records" / "late lab.pdf", [f"LAB REPORT\nCollected: 11/01/2026\n{WHO}"])
    build_case(case_dir, config, now=NOW)
    failed = [e for e in _events(logged) if e["event"] == "draft_packet.update_failed"]
    assert failed and failed[0]["error"] == "keyerror" and "incremental:write" in failed[0]["where"]
    assert _packet(config, case_dir).read_bytes().count(b"%%EOF") == 1
    assert not list(_packet(config, case_dir).parent.glob(".tmp-*"))  # the update's file went with it
    text = logged.getvalue()
    assert MEMBER_NAME not in text and MEMBER_ID not in text and "late lab" not in text


def test_repeated_updates_stay_equal_to_a_full_build(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental, "MAX_GROWTH", 100.0)  # a small case grows fast: keep updating
    config = make_config(tmp_path / "a")
    case_dir = write_case(config.paths.inbox)
    _fill(case_dir)
    build_case(case_dir, config, now=NOW)
    for number, date in enumerate(("03/01/2026", "12/01/2025", "11/20/2026")):
        make_pdf(case_dir / "medical-records" / f"visit {number}.pdf",
                 [f"PROGRESS NOTE\nDate of service: {date}\n{WHO}", "second page"])
        build_case(case_dir, config, now=NOW)
    updated = _packet(config, case_dir)
    assert updated.read_bytes().count(b"%%EOF") == 4
    record = json.loads((case_state_dir(config, case_dir.name) / DRAFT_PACKET_RECORD).read_text())
    assert (record["startxref"], record["size"], record["root"], record["info"]) == \
        incremental.trailer_facts(updated)[:4]
    subprocess.run(["qpdf", "--check", str(updated)], check=True, capture_output=True)

    full_config = make_config(tmp_path / "b")
    full_case = write_case(full_config.paths.inbox)
    shutil.copytree(case_dir, full_case, dirs_exist_ok=True)
    build_case(full_case, full_config, now=NOW)
    assert pdf_summary(updated) == pdf_summary(_packet(full_config, full_case))
    assert _text(updated) == _text(_packet(full_config, full_case))
