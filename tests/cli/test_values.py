"""Every configuration and case.toml value range-checked with its key named; ids validated to the
end of the string (issue 13 items 6 and 7)."""

from __future__ import annotations

import datetime as dt
import io
import json
import tomllib

import pytest

from helpers import CASE_TOML, MEMBER_DOB, MEMBER_ID, MEMBER_NAME, write_case
from packet import log as service_log
from packet.config import load_config
from packet.errors import CaseError, ConfigError
from packet.model.case import check_case_id, parse_case, valid_case_id
from packet.records import audit


def _problems(tmp_path, text: str, **kwargs) -> list[str]:
    path = tmp_path / "imr.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={}, flags={k: str(tmp_path / k) for k in ("inbox", "outbox", "archive", "state")},
                    **kwargs)
    return caught.value.problems


@pytest.mark.parametrize("line, key", [
    ("[watch]\nsettle_seconds = nan", "[watch] settle_seconds"),
    ("[watch]\nsettle_seconds = inf", "[watch] settle_seconds"),
    ("[watch]\nsettle_seconds = -inf", "[watch] settle_seconds"),
    ("[watch]\ndebounce_seconds = 1e300", "[watch] debounce_seconds"),
    ("[watch]\nrescan_seconds = 0", "[watch] rescan_seconds"),
    ("[watch]\nretry_attempts = 2.5", "[watch] retry_attempts"),
    ("[watch]\nretry_attempts = 0", "[watch] retry_attempts"),
    ("[limits]\nworkers = 0", "[limits] workers"),
    ("[limits]\nworkers = 100000", "[limits] workers"),
    ("[limits]\nmax_pages = -1", "[limits] max_pages"),
    ("[limits]\nconversion_timeout_seconds = nan", "[limits] conversion_timeout_seconds"),
    ("[bates]\ndigits = 99", "[bates] digits"),
    ("[bates]\ndigits = true", "[bates] digits"),
    ('[bates]\nprefix = "{case_id}-' + "X" * 30 + '-"', "[bates] prefix"),
    ('[bates]\nprefix = "{case_id}\\u00a0-"', "[bates] prefix"),
    ('[plan]\nname = "Golden\\u0000Poppy"', "[plan] name"),
    ('[plan]\nphone = "1-800\\n555"', "[plan] phone"),
    ('[plan]\naddress = ["P.O. Box 1", "Sacramento\\u202e"]', "[plan] address"),
    ('[paths]\ntemplates = "tem\\u0007plates"', "[paths] templates"),
    ("[calendar]\nextra_holidays = [9999-01-01]", "[calendar] extra_holidays"),
    ("[calendar]\nnot_holidays = [0001-01-01]", "[calendar] not_holidays"),
])
def test_config_values_are_range_checked_with_the_key_named(tmp_path, line, key):
    problems = _problems(tmp_path, line + "\n")
    assert len(problems) == 1 and problems[0].startswith(key), problems


def test_environment_and_flag_paths_with_control_characters_are_refused(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"IMR_STATE": "st\x00ate"}, flags={"inbox": "in\nbox"}, check_paths=False)
    assert sorted(p.split(" ")[0] for p in caught.value.problems) == ["--inbox", "IMR_STATE"]


def test_a_broken_configuration_creates_no_folder(tmp_path):
    _problems(tmp_path, "[watch]\nsettle_seconds = nan\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imr.toml"]


def test_reasonable_values_still_load(tmp_path):
    path = tmp_path / "imr.toml"
    path.write_text("[watch]\nsettle_seconds = 0.5\nretry_attempts = 3\n[limits]\nworkers = 2\n"
                    '[plan]\nnondiscrimination = """Line one.\nLine two."""\n[calendar]\nextra_holidays = [2026-03-31]\n')
    config = load_config(path, environ={}, flags={k: str(tmp_path / k) for k in ("inbox", "outbox", "archive", "state")})
    assert config.watch.settle_seconds == 0.5 and config.calendar.extra_holidays == (dt.date(2026, 3, 31),)


def _case(**replace) -> dict:
    text = CASE_TOML.format(case_id="IMR-1", review_type="standard", dispute_type="medical_necessity",
                            notice="2026-11-25T16:10:00-08:00", language="en", member_name=MEMBER_NAME,
                            member_id=MEMBER_ID, dob=MEMBER_DOB.isoformat())
    for old, new in replace.items():
        text = text.replace(old.replace("_", " ") if old.startswith("x") else old, new)
    return tomllib.loads(text)


@pytest.mark.parametrize("old, new, key", [
    ("2026-11-25T16:10:00-08:00", "9999-12-31T23:59:59-08:00", "dmhc_notice_received"),
    ("2026-11-25T16:10:00-08:00", "0001-01-01T00:00:00+14:00", "dmhc_notice_received"),
    ("2026-11-25T16:10:00-08:00", '"2026-11-25T16:10:00-08:00"', "dmhc_notice_received"),
    ("2026-11-25T16:10:00-08:00", '"FILL IN: the notice time"', "dmhc_notice_received"),
    ("1961-04-09", "9999-04-09", "[member] date_of_birth"),
    ("1961-04-09", '"FILL IN"', "[member] date_of_birth"),
    (MEMBER_NAME, "Rosalind\\u0000Q", "[member] name"),
    (MEMBER_NAME, "Rosalind\\tQ", "[member] name"),
    (MEMBER_NAME, "First Last", "[member] name"),
    (MEMBER_ID, "M000000000", "[member] member_id"),
    (MEMBER_ID, "M99\\r887", "[member] member_id"),
    ("1200 Poppy Lane, Apt 3", "1200 Poppy Lane\\u2028Apt 3", "[member] address"),
    ("Lumbar spinal fusion L4-L5", "Lumbar\\u0085fusion", "disputed_service"),
    ("G-2026-0456", "G-2026\\u0000", "grievance_number"),
    ("Dr. Alan Spineworth", "Dr. First Last", "[provider] name"),
])
def test_case_values_are_checked_with_the_key_named(old, new, key):
    with pytest.raises(CaseError) as caught:
        parse_case(_case(**{old: new}), "IMR-1")
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(key), caught.value.problems


def test_info_request_times_are_range_checked():
    raw = _case()
    raw["info_requests"] = [{"received": dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc), "what": "notes"},
                            {"received": dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), "what": "a\x07b"}]
    with pytest.raises(CaseError) as caught:
        parse_case(raw, "IMR-1")
    assert [p.split(":")[0] for p in caught.value.problems] == ["info_requests #1", "info_requests #2"]


@pytest.mark.parametrize("case_id", ["NL2\n", "IMR-1\n", "\nIMR-1", "IMR-1\r", "IMR 1", "..", ".", "-x", "", "a" * 65,
                                     "IMR/1", "IMR\x00"])
def test_ids_are_validated_to_the_end(case_id):
    assert not valid_case_id(case_id)
    with pytest.raises(CaseError):
        check_case_id(case_id)


def test_logs_and_the_audit_trail_never_take_an_id_with_a_newline(config):
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        service_log.log("case_built", case="NL2\n", reason="ok\n")
    finally:
        service_log.set_stream(None)
    record = json.loads(stream.getvalue())
    assert record["case"] == "[invalid]" and record["reason"] == "[redacted]"
    entry = audit.record(config, "draft_built", case="NL2\n", doc="ab" * 32 + "\n")
    assert entry["case"] == "[invalid]" and entry["doc"] == "[invalid]"
    with pytest.raises(ValueError):
        audit.record(config, "draft_built\n")


def test_a_case_folder_with_a_valid_case_still_parses(tmp_path):
    case_dir = write_case(tmp_path)
    assert parse_case(_case(), "IMR-1").member.name == MEMBER_NAME
    assert case_dir.name == "IMR-2026-000417"


def test_the_text_log_keeps_the_same_rules_and_levels():
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        service_log.configure(fmt="text", level="warning")
        service_log.log("case_built", case="IMR-1", documents=3)  # info: below the level
        service_log.log("file_refused", case="IMR-1", level="warning", reason="Rosalind's scan.pdf")
        service_log.configure(fmt="json", level="debug")
        service_log.log("case_built", case="IMR-1", documents=3)
    finally:
        service_log.configure(fmt="json", level="debug")
        service_log.set_stream(None)
    text_line, json_line = stream.getvalue().splitlines()
    assert "warning" in text_line and "file_refused case=IMR-1 reason=[redacted]" in text_line
    assert "Rosalind" not in stream.getvalue() and not text_line.startswith("{")
    assert json.loads(json_line)["documents"] == 3
