"""`imr-packet status`: each state from the files the service leaves, and a table where urgency shows.

The drafts and submissions here are written by hand in the shapes packet.pipeline.build / packet.pipeline.seal write
(manifest.json, review.json, the register, gate.json), so these tests do not depend on rendering.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_pdf, write_case

from packet.service.status import (DRAFTING, INVALID_FOLDER, NEEDS_REVIEW, READY, SEALED, SUPPLEMENT_OPEN,
                           WAITING_FOR_CASE_TOML, CaseStatus, collect_status, format_status)

PACIFIC = dt.timezone(dt.timedelta(hours=-8))


def _draft(config, case_id: str, sources: list[str], *, blocks: list[str] = (), submission: int = 1,
           due: str = "2026-12-02T23:59:59-08:00", generated_at: dt.datetime | None = None) -> Path:
    folder = config.paths.outbox / case_id / "draft"
    folder.mkdir(parents=True, exist_ok=True)
    generated_at = generated_at or dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    manifest = {"schema": "imr-packet/manifest@1", "case_id": case_id, "submission": submission, "kind": "draft",
                "generated_at": generated_at.isoformat(),
                "deadline": {"review_type": "standard", "clock_start": "2026-11-25T16:10:00-08:00", "due": due,
                             "rule": "3 business days"},
                "documents": [{"source": s, "sha256": "0" * 64} for s in sources], "rejected": [], "outputs": []}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "review.json").write_text(json.dumps({"case_id": case_id, "blocks_sealing": list(blocks)}))
    return folder


def _seal(config, case_id: str, number: int = 1, *, on_time: bool = True) -> None:
    from packet.records.register import SealedSubmission, record_sealed

    folder = config.paths.outbox / case_id / f"submission-{number:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({
        "schema": "imr-packet/manifest@1", "case_id": case_id, "submission": number, "kind": "initial",
        "sealed_at": "2026-11-30T10:00:00-08:00", "on_time": on_time,
        "deadline": {"due": "2026-12-02T23:59:59-08:00", "rule": "3 business days"}, "documents": []}))
    record_sealed(config, case_id, SealedSubmission(number=number, kind="initial",
                                                    sealed_at="2026-11-30T10:00:00-08:00", first_bates=1, next_bates=5))


def _by_id(cases: list[CaseStatus]) -> dict[str, CaseStatus]:
    return {c.case_id: c for c in cases}


def test_every_state_is_told_from_the_files(config):
    inbox = config.paths.inbox
    # waiting for case.toml: a folder without one, and one with a broken key
    (inbox / "CASE-NOTOML").mkdir(parents=True)
    write_case(inbox, "CASE-BADTOML", review_type="sometimes")
    # drafting: a file but no draft yet
    drafting = write_case(inbox, "CASE-DRAFTING")
    make_pdf(drafting / "a.pdf", ["x"])
    # needs review: a draft covering the file, with a blocker
    review = write_case(inbox, "CASE-REVIEW")
    make_pdf(review / "a.pdf", ["x"])
    _draft(config, "CASE-REVIEW", ["a.pdf"], blocks=['"a.pdf" needs a category'])
    # ready: a draft with nothing blocking
    ready = write_case(inbox, "CASE-READY")
    make_pdf(ready / "medical-records" / "a.pdf", ["x"])
    _draft(config, "CASE-READY", ["medical-records/a.pdf"])
    # sealed: a submission and nothing new in the folder
    write_case(inbox, "CASE-SEALED")
    _seal(config, "CASE-SEALED")
    # supplement open: sealed, and a new file dropped since
    supplement = write_case(inbox, "CASE-SUPP")
    _seal(config, "CASE-SUPP")
    make_pdf(supplement / "late.pdf", ["x"])
    # a case with its case.toml and no documents yet
    write_case(inbox, "CASE-EMPTY")
    # an invalid folder name
    (inbox / "Not a case").mkdir()

    cases = _by_id(collect_status(config))
    assert cases["CASE-NOTOML"].state == WAITING_FOR_CASE_TOML
    assert any("case.toml is missing" in b for b in cases["CASE-NOTOML"].blocks)
    assert cases["CASE-BADTOML"].state == WAITING_FOR_CASE_TOML
    assert any("review_type" in b for b in cases["CASE-BADTOML"].blocks)
    assert cases["CASE-DRAFTING"].state == DRAFTING
    assert cases["CASE-DRAFTING"].files_pending == 1
    assert cases["CASE-REVIEW"].state == NEEDS_REVIEW
    assert cases["CASE-REVIEW"].blocks == ('"a.pdf" needs a category',)
    assert cases["CASE-READY"].state == READY
    assert cases["CASE-READY"].blocks == ()
    assert cases["CASE-READY"].documents == 1
    assert cases["CASE-SEALED"].state == SEALED
    assert cases["CASE-SEALED"].submissions == 1
    assert cases["CASE-SUPP"].state == SUPPLEMENT_OPEN
    assert cases["CASE-SUPP"].due is not None  # 1 day from the new record's receipt
    assert cases["CASE-EMPTY"].state == DRAFTING
    assert cases["CASE-EMPTY"].blocks == ("no documents in the case folder yet",)
    assert cases["CASE-EMPTY"].due is not None  # from case.toml: the clock runs already
    assert cases["Not a case"].state == INVALID_FOLDER


def test_a_file_changed_after_the_draft_is_pending_again(config):
    case_dir = write_case(config.paths.inbox, "CASE-1")
    make_pdf(case_dir / "a.pdf", ["x"])
    _draft(config, "CASE-1", ["a.pdf"], generated_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    status = _by_id(collect_status(config))["CASE-1"]
    assert status.state == DRAFTING
    assert status.files_pending == 1


def test_a_failed_gate_shows_when_ready_was_dropped(config):
    from packet.records.register import GateItem, GateResult, save_gate_result

    case_dir = write_case(config.paths.inbox, "CASE-1")
    pdf = make_pdf(case_dir / "a.pdf", ["x"])
    an_hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    os.utime(pdf, (an_hour_ago.timestamp(), an_hour_ago.timestamp()))
    _draft(config, "CASE-1", ["a.pdf"], generated_at=an_hour_ago + dt.timedelta(minutes=1))
    (case_dir / "READY").write_text("")
    save_gate_result(config, GateResult(case_id="CASE-1", checked_at=dt.datetime.now(dt.timezone.utc).isoformat(),
                                        items=(GateItem(code="verify", text="the built submission failed verify"),)))
    status = _by_id(collect_status(config))["CASE-1"]
    assert status.state == NEEDS_REVIEW
    assert status.ready_marker
    assert any("failed verify" in b for b in status.blocks)


def test_table_marks_overdue_and_due_soon_and_sorts_by_due():
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=PACIFIC)
    cases = [
        CaseStatus(case_id="LATER", state=READY, due=now + dt.timedelta(days=3)),
        CaseStatus(case_id="SOON", state=NEEDS_REVIEW, due=now + dt.timedelta(hours=5), blocks=("a", "b")),
        CaseStatus(case_id="LATE", state=DRAFTING, due=now - dt.timedelta(hours=2)),
        CaseStatus(case_id="DONE", state=SEALED, due=now - dt.timedelta(days=2), on_time=True, submissions=1),
        CaseStatus(case_id="NOTOML", state=WAITING_FOR_CASE_TOML, blocks=("case.toml is missing",)),
    ]
    text = format_status(cases, now=now)
    lines = [line for line in text.splitlines()[1:] if line.strip() and "case(s)" not in line]
    order = [next(word for word in line.split() if word in {"LATER", "SOON", "LATE", "DONE", "NOTOML"})
             for line in lines]
    assert order == ["LATE", "SOON", "LATER", "NOTOML", "DONE"]  # open cases first, by due time
    assert lines[0].startswith("OVERDUE") and "OVERDUE by 2 hours" in lines[0]
    assert lines[1].startswith("DUE SOON") and "5 hours left" in lines[1] and "(+1 more)" in lines[1]
    assert not lines[2].startswith(("OVERDUE", "DUE SOON"))
    assert not lines[4].startswith(("OVERDUE", "DUE SOON"))  # sealed on time: nothing to chase
    assert "1 overdue; 1 due within 24 hours" in text


def test_json_carries_state_due_time_left_and_blocks():
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=PACIFIC)
    status = CaseStatus(case_id="C1", state=NEEDS_REVIEW, due=now + dt.timedelta(hours=30), blocks=("x",))
    data = status.to_json(now=now)
    assert data["state"] == "needs_review" and data["state_text"] == "needs review"
    assert data["time_left_seconds"] == 30 * 3600
    assert data["time_left"] == "1 day 6 hours left"
    assert data["urgency"] is None
    assert data["blocks"] == ["x"]
    json.dumps(data)


def test_status_command_prints_table_and_json_without_member_data(tmp_path):
    config_file = tmp_path / "imr.toml"
    folders = ("inbox", "outbox", "archive", "state")
    config_file.write_text("[paths]\n" + "".join(f'{k} = "{tmp_path / k}"\n' for k in folders))
    for folder in folders:  # an installation: status reports missing folders instead of creating them
        (tmp_path / folder).mkdir(exist_ok=True)
    case_dir = write_case(tmp_path / "inbox", "CASE-1")
    make_pdf(case_dir / "a.pdf", ["x"])
    env_cmd = [sys.executable, "-m", "packet.cli", "status", "--config", str(config_file)]
    table = subprocess.run(env_cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "CASE-1" in table.stdout and "drafting" in table.stdout
    as_json = subprocess.run(env_cmd + ["--json"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [c["case_id"] for c in data] == ["CASE-1"] and data[0]["state"] == "drafting"
    for output in (table.stdout, as_json.stdout):
        for secret in (MEMBER_NAME, MEMBER_ID, MEMBER_DOB.isoformat()):
            assert secret not in output
