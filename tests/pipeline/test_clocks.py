"""Issue 15 items 1 and 2: the clocks of information requests and of supplements, end to end.

A supplement's 1-day clock runs from when the plan received the record (overrides.toml `received`,
written by hand or by the desk, or a dated folder), not from when the file was dropped. Each
[[info_requests]] entry has its own clock (5 business days; 1 calendar day expedited), shown in
`status`, `_STATUS.txt`, the board and the manifest, and is answered by a `response` submission
made of the files in responses/<request-id>/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess

import pytest
from helpers import make_config
from sealkit import CASE_ID, NOW, PST, add_record, sealable_case

from packet.desk.decisions import Decision, apply
from packet.errors import UsageError
from packet.intake.folder import load_overrides
from packet.model.case import load_case
from packet.model.deadlines import info_request_clocks
from packet.pipeline.build import build_case
from packet.pipeline.rebuild import rebuild_submission
from packet.pipeline.seal import seal_case
from packet.pipeline.verify import verify_submission
from packet.records.register import next_submission_info
from packet.service.board import write_board
from packet.service.status import case_status, format_status

REQUEST = """
[[info_requests]]
id = "req-1"
received = 2026-11-30T10:00:00-08:00
what = "Physical therapy notes since August"
"""
# Monday Nov 30 10:00: five business days after it are Dec 1, 2, 3, 4 and 7.
REQUEST_DUE = dt.datetime(2026, 12, 7, 23, 59, 59, tzinfo=PST)


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _status_text(case_dir) -> str:
    return (case_dir / "_STATUS.txt").read_text()


def _with_request(config, extra: str = REQUEST):
    case_dir = sealable_case(config.paths.inbox)
    with open(case_dir / "case.toml", "a", encoding="utf-8") as handle:
        handle.write(extra)
    return case_dir


# --- item 2: the supplement clock from the record's receipt -------------------------------------

def _supplement_received_two_days_before_drop(config, write_received) -> dict:
    case_dir = sealable_case(config.paths.inbox)
    seal_case(config, CASE_ID, now=NOW)
    add_record(case_dir, "medical-records/late note.pdf")
    write_received(case_dir)
    dropped = dt.datetime(2026, 11, 30, 8, 0, tzinfo=PST)
    build_case(case_dir, config, now=dropped)
    return {"draft": _manifest(config.paths.outbox / CASE_ID / "draft"), "status": _status_text(case_dir),
            "sealed": _manifest(seal_case(config, CASE_ID, now=dropped + dt.timedelta(hours=1)))}


def _hand_written(case_dir):
    with open(case_dir / "overrides.toml", "a", encoding="utf-8") as handle:
        handle.write('\n["medical-records/late note.pdf"]\nreceived = 2026-11-28T08:00:00-08:00\n')


def test_supplement_received_two_days_before_it_was_dropped_is_late(config):
    result = _supplement_received_two_days_before_drop(config, _hand_written)
    deadline = result["draft"]["deadline"]
    assert deadline["clock_start"] == "2026-11-28T08:00:00-08:00"
    assert deadline["due"] == "2026-11-29T08:00:00-08:00"  # 1 day from receipt, not from the drop
    [doc] = [d for d in result["draft"]["documents"] if d["source"] == "medical-records/late note.pdf"]
    assert doc["received_at"] == "2026-11-28T08:00:00-08:00"
    assert "OVERDUE" in result["status"]
    assert "received Saturday November 28, 2026 at 8:00 AM PST (received, as recorded in overrides.toml)" \
        in result["status"]
    sealed = result["sealed"]
    assert sealed["kind"] == "supplement" and sealed["on_time"] is False
    assert sealed["deadline"]["due"] == "2026-11-29T08:00:00-08:00"


def test_a_desk_written_receipt_gives_the_same_result_as_a_hand_written_one(tmp_path):
    by_hand = _supplement_received_two_days_before_drop(make_config(tmp_path / "hand"), _hand_written)
    desk_config = make_config(tmp_path / "desk")

    def by_desk(case_dir):
        sha = hashlib.sha256((case_dir / "medical-records/late note.pdf").read_bytes()).hexdigest()
        apply(desk_config, CASE_ID, "medical-records/late note.pdf", sha,
              Decision("received", "2026-11-28T08:00:00-08:00"), actor="reviewer-1")

    with_desk = _supplement_received_two_days_before_drop(desk_config, by_desk)
    for key in ("deadline", "on_time", "kind"):
        assert with_desk["sealed"][key] == by_hand["sealed"][key]
    assert with_desk["sealed"]["on_time"] is False


def test_receipt_date_without_time_and_dated_folder(config):
    case_dir = sealable_case(config.paths.inbox)
    seal_case(config, CASE_ID, now=NOW)
    add_record(case_dir, "received-2026-11-29/fax.pdf")
    build_case(case_dir, config, now=dt.datetime(2026, 11, 30, 8, 0, tzinfo=PST))
    draft = _manifest(config.paths.outbox / CASE_ID / "draft")
    assert draft["deadline"]["clock_start"] == "2026-11-29T00:00:00-08:00"  # start of that day, plan's zone
    assert "folder name" in _status_text(case_dir)
    # A date in overrides.toml beats the folder name; it too counts from the start of the day.
    (case_dir / "overrides.toml").write_text('["received-2026-11-29/fax.pdf"]\nreceived = 2026-11-28\n')
    build_case(case_dir, config, now=dt.datetime(2026, 11, 30, 8, 5, tzinfo=PST))
    draft = _manifest(config.paths.outbox / CASE_ID / "draft")
    assert draft["deadline"]["clock_start"] == "2026-11-28T00:00:00-08:00"
    assert draft["deadline"]["due"] == "2026-11-29T00:00:00-08:00"


def test_no_receipt_recorded_says_the_drop_time_is_used(config):
    case_dir = sealable_case(config.paths.inbox)
    seal_case(config, CASE_ID, now=NOW)
    add_record(case_dir)
    dropped = dt.datetime(2026, 11, 30, 8, 0, tzinfo=PST)
    build_case(case_dir, config, now=dropped)
    text = _status_text(case_dir)
    assert "dropped Monday November 30, 2026 at 8:00 AM PST (no receipt recorded: the drop time is used" in text
    assert _manifest(config.paths.outbox / CASE_ID / "draft")["deadline"]["due"] == "2026-12-01T08:00:00-08:00"


@pytest.mark.parametrize("line, problem", [
    ('received = "yesterday"', "must be a time"),
    ("received = 1926-11-28", "year 1926"),
    ("received = 08:00:00", "must be a time"),
])
def test_bad_received_values_are_reported_alone(tmp_path, line, problem):
    (tmp_path / "overrides.toml").write_text(f'["a.pdf"]\n{line}\ntitle = "Kept"\n')
    overrides, problems = load_overrides(tmp_path)
    assert overrides["a.pdf"].received is None and overrides["a.pdf"].title == "Kept"
    assert len(problems) == 1 and problem in problems[0]


def test_desk_refuses_a_receipt_it_cannot_read(config):
    sealable_case(config.paths.inbox)
    with pytest.raises(UsageError):
        apply(config, CASE_ID, "medical-records/mri report.pdf", "0" * 64, Decision("received", "28/11/2026"),
              actor="reviewer-1")


# --- item 1: information requests ---------------------------------------------------------------

def _answer(case_dir, name="pt notes.pdf"):
    return add_record(case_dir, f"responses/req-1/{name}", pages=2)


def test_info_request_answered_on_time_by_a_response_submission(config):
    case_dir = _with_request(config)
    first = _manifest(seal_case(config, CASE_ID, now=NOW))
    assert first["info_requests"] == [{
        "id": "req-1", "what": "Physical therapy notes since August", "received": "2026-11-30T10:00:00-08:00",
        "due": REQUEST_DUE.isoformat(), "rule": first["info_requests"][0]["rule"], "answered_by": None,
        "answered_at": None, "on_time": None}]
    _answer(case_dir)
    answered = dt.datetime(2026, 12, 3, 14, 0, tzinfo=PST)
    build_case(case_dir, config, now=answered - dt.timedelta(hours=1))
    assert "Response submission 2: answers the IMR organization's information request req-1" in _status_text(case_dir)
    submission = seal_case(config, CASE_ID, now=answered)
    manifest = _manifest(submission)
    assert manifest["kind"] == "response" and manifest["request_id"] == "req-1" and manifest["submission"] == 2
    assert manifest["deadline"]["due"] == REQUEST_DUE.isoformat() and manifest["on_time"] is True
    assert manifest["info_requests"][0]["answered_by"] == 2 and manifest["info_requests"][0]["on_time"] is True
    [doc] = [d for d in manifest["documents"] if d["packet_pages"]]
    assert doc["bates_first"] == f"{CASE_ID}-{first['bates']['next']:06d}"  # numbered on
    cover = subprocess.run(["pdftotext", "-l", "1", str(submission / "imr-org-packet.pdf"), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert "Response submission 2" in cover and "req-1" in cover and "Physical therapy notes since" in cover
    assert verify_submission(submission, config).ok
    assert next_submission_info(config, CASE_ID)[1] == "supplement"  # the next drop is a supplement again
    status = case_status(config, CASE_ID)
    [clock] = status.info_requests
    assert clock.answered_by == 2 and clock.on_time is True
    assert "answered on time" in format_status([status], answered)


def test_info_request_answered_late(config):
    case_dir = _with_request(config)
    seal_case(config, CASE_ID, now=NOW)
    _answer(case_dir)
    late = dt.datetime(2026, 12, 8, 9, 0, tzinfo=PST)
    manifest = _manifest(seal_case(config, CASE_ID, now=late))
    assert manifest["kind"] == "response" and manifest["on_time"] is False
    assert manifest["info_requests"][0]["on_time"] is False
    assert "LATE" in _status_text(case_dir)
    assert "answered late" in format_status([case_status(config, CASE_ID)], late)


def test_expedited_info_request_runs_across_the_weekend(config):
    case_dir = sealable_case(config.paths.inbox)
    text = (case_dir / "case.toml").read_text().replace('review_type = "standard"', 'review_type = "expedited"')
    (case_dir / "case.toml").write_text(text + REQUEST.replace("2026-11-30T10:00:00", "2026-12-04T17:00:00"))
    facts = load_case(case_dir)
    [clock] = info_request_clocks(facts, config)
    assert clock.deadline.due == dt.datetime(2026, 12, 5, 17, 0, tzinfo=PST)  # Saturday: 1 calendar day
    [answered] = info_request_clocks(facts, config, {"req-1": (2, dt.datetime(2026, 12, 7, 9, 0, tzinfo=PST))})
    assert answered.on_time is False  # Monday morning is too late


def test_the_clock_is_visible_in_status_status_note_board_and_manifest(config):
    case_dir = _with_request(config)
    seal_case(config, CASE_ID, now=NOW)
    now = dt.datetime(2026, 12, 8, 9, 0, tzinfo=PST)  # past the due time, unanswered
    build_case(case_dir, config, now=now)  # nothing new dropped: the note after a seal
    status = case_status(config, CASE_ID)
    assert status.urgency(now) == "overdue"
    table = format_status([status], now)
    assert "info request req-1" in table and "OVERDUE" in table and "answer in responses/req-1/" in table
    [entry] = status.to_json(now)["info_requests"]
    assert entry["due"] == REQUEST_DUE.isoformat() and entry["overdue"] is True and entry["on_time"] is None
    note = _status_text(case_dir)
    assert "Information requested by the IMR organization" in note
    assert "!!! req-1: Physical therapy notes since August" in note and "OVERDUE by" in note
    board = write_board(config, now).read_text()  # outbox/index.html
    assert f'<tr class="overdue request" id="request-{CASE_ID}-req-1">' in board
    assert f'<tr class="overdue" id="case-{CASE_ID}">' in board  # the case row counts the request too


def test_files_for_an_undeclared_request_block_the_seal(config):
    case_dir = sealable_case(config.paths.inbox)
    seal_case(config, CASE_ID, now=NOW)
    add_record(case_dir, "responses/unknown/x.pdf")
    build_case(case_dir, config, now=NOW + dt.timedelta(hours=2))
    assert "responses/unknown/ answers no request in case.toml" in _status_text(case_dir)


def test_a_case_without_requests_has_no_info_requests_in_its_manifest(config):
    sealable_case(config.paths.inbox)
    manifest = _manifest(seal_case(config, CASE_ID, now=NOW))
    assert "info_requests" not in manifest and "request_id" not in manifest


def test_a_response_submission_rebuilds_byte_identical(config, tmp_path):
    case_dir = _with_request(config)
    seal_case(config, CASE_ID, now=NOW)
    _answer(case_dir)
    submission = seal_case(config, CASE_ID, now=dt.datetime(2026, 12, 3, 14, 0, tzinfo=PST))
    rebuilt = rebuild_submission(submission, config, tmp_path / "rebuilt")
    for name in ("manifest.json", "imr-org-packet.pdf"):
        assert (rebuilt / name).read_bytes() == (submission / name).read_bytes(), name


# --- round 3: answers dropped early, several requests at once (issue 15 item 1) -------------------

REQUEST_2 = """
[[info_requests]]
id = "req-2"
received = 2026-11-27T08:00:00-08:00
what = "Operative report"
"""


def _cover_text(submission) -> str:
    return subprocess.run(["pdftotext", "-l", "1", str(submission / "imr-org-packet.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout


def test_answers_dropped_before_the_first_seal_wait_for_a_response_submission(config):
    case_dir = _with_request(config)
    answer = _answer(case_dir)
    build_case(case_dir, config, now=NOW - dt.timedelta(hours=1))
    note = _status_text(case_dir)
    assert "Held for a later submission" in note and "responses/req-1/pt notes.pdf" in note
    draft = _manifest(config.paths.outbox / CASE_ID / "draft")
    assert not any(d["source"].startswith("responses/") for d in draft["documents"])
    first = _manifest(seal_case(config, CASE_ID, now=NOW))
    assert first["kind"] == "initial"
    assert not any(d["source"].startswith("responses/") for d in first["documents"])
    assert answer.is_file()  # the clerk's file stays in the case folder until its own submission
    second = seal_case(config, CASE_ID, now=NOW + dt.timedelta(days=4))
    manifest = _manifest(second)
    assert manifest["kind"] == "response" and manifest["request_id"] == "req-1" and manifest["submission"] == 2
    assert [d["source"] for d in manifest["documents"]] == ["responses/req-1/pt notes.pdf"]
    assert manifest["info_requests"][0]["answered_by"] == 2 and manifest["info_requests"][0]["on_time"] is True
    assert not answer.exists()  # archived with the response


def test_answers_to_two_requests_are_sealed_one_request_a_submission_due_first_first(config):
    case_dir = _with_request(config, REQUEST + REQUEST_2)
    seal_case(config, CASE_ID, now=NOW)
    _answer(case_dir)
    add_record(case_dir, "responses/req-2/op report.pdf")
    at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=PST)
    build_case(case_dir, config, now=at)
    note = _status_text(case_dir)
    # req-2 (received Nov 27, due Dec 4) is due before req-1 (received Nov 30, due Dec 7).
    assert "Response submission 2: answers the IMR organization's information request req-2" in note
    assert "Held for a later submission" in note and "responses/req-1/pt notes.pdf" in note
    second = seal_case(config, CASE_ID, now=at)
    third = seal_case(config, CASE_ID, now=at + dt.timedelta(hours=1))
    m2, m3 = _manifest(second), _manifest(third)
    assert (m2["kind"], m2["request_id"], m3["kind"], m3["request_id"]) == ("response", "req-2", "response", "req-1")
    assert m3["bates"]["first"] == m2["bates"]["next"]  # numbered on
    assert "req-2" in _cover_text(second) and "Operative report" in _cover_text(second)
    assert "req-1" in _cover_text(third) and "Physical therapy notes since" in _cover_text(third)
    clocks = {c["id"]: c for c in m3["info_requests"]}
    assert clocks["req-2"]["answered_by"] == 2 and clocks["req-1"]["answered_by"] == 3
    assert clocks["req-1"]["on_time"] is True and clocks["req-2"]["on_time"] is True


def test_a_new_record_and_an_answer_dropped_together_go_in_turn(config):
    case_dir = _with_request(config)
    seal_case(config, CASE_ID, now=NOW)
    _answer(case_dir)
    add_record(case_dir, "medical-records/new note.pdf")
    at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=PST)
    # The new record is due 1 day after its receipt (Dec 2), before the request (Dec 7): it goes first.
    m2 = _manifest(seal_case(config, CASE_ID, now=at))
    assert m2["kind"] == "supplement" and [d["source"] for d in m2["documents"]] == ["medical-records/new note.pdf"]
    m3 = _manifest(seal_case(config, CASE_ID, now=at + dt.timedelta(hours=1)))
    assert m3["kind"] == "response" and m3["request_id"] == "req-1"
