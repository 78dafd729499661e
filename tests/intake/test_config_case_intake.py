"""Configuration, case.toml, the intake walk and overrides: the folder contract of spec.md."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import MEMBER_ID, make_config, write_case
from packet.model.case import case_template, check_case_id, load_case, parse_case, valid_case_id
from packet.cli import main
from packet.config import load_config
from packet.errors import CaseError, ConfigError
from packet.intake.folder import is_junk, read_case_folder, scan


def test_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert config.watch.settle_seconds == 2
    assert config.bates.label("IMR-1", 4) == "IMR-1-000004"
    assert config.calendar.timezone == "America/Los_Angeles"
    assert (tmp_path / "inbox").is_dir() and (tmp_path / "state").is_dir()
    assert config.rules.rules, "built-in rules are loaded"


def test_every_config_problem_is_reported_at_once(tmp_path):
    bad = tmp_path / "imr.toml"
    bad.write_text('[watch]\nsettle_seconds = "soon"\npolling = "sometimes"\n[bates]\ndigits = 40\n'
                   '[calendar]\ntimezone = "Mars/Olympus"\nextra_holidays = ["tuesday"]\n[colour]\nx = 1\n'
                   '[[rules.rule]]\nid = "x"\nkind = "category"\ncategory = "letters"\npatterns = ["("]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(bad, flags={k: str(tmp_path / k) for k in ("inbox", "outbox", "archive", "state")}, environ={})
    text = "\n".join(caught.value.problems)
    for key in ("[watch] settle_seconds", "[watch] polling", "[bates] digits", "[calendar] timezone",
                "[calendar] extra_holidays", "[colour]", "category must be", "not a valid regular expression"):
        assert key in text, key


def test_flags_beat_environment_beat_file(tmp_path):
    conf = tmp_path / "imr.toml"
    conf.write_text(f'[paths]\ninbox = "{tmp_path / "from-file"}"\noutbox = "{tmp_path / "out"}"\n'
                    f'archive = "{tmp_path / "arch"}"\nstate = "{tmp_path / "st"}"\n')
    config = load_config(conf, environ={"IMR_INBOX": str(tmp_path / "from-env")})
    assert config.paths.inbox == tmp_path / "from-env"
    config = load_config(conf, flags={"inbox": str(tmp_path / "from-flag")},
                         environ={"IMR_INBOX": str(tmp_path / "from-env")})
    assert config.paths.inbox == tmp_path / "from-flag"


def test_overlapping_folders_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="overlap"):
        load_config(None, flags={"inbox": str(tmp_path / "a"), "outbox": str(tmp_path / "a" / "out"),
                                 "archive": str(tmp_path / "b"), "state": str(tmp_path / "c")}, environ={})


def test_user_rules_add_replace_and_disable(tmp_path):
    conf = tmp_path / "imr.toml"
    conf.write_text('[rules]\ndisable = ["progress-note"]\n'
                    '[[rules.rule]]\nid = "chiro"\nkind = "category"\ncategory = "medical_records"\n'
                    'patterns = ["chiropractic"]\nweight = 3\n')
    config = load_config(conf, flags={k: str(tmp_path / k) for k in ("inbox", "outbox", "archive", "state")},
                         environ={})
    ids = [r.id for r in config.rules.rules]
    assert "chiro" in ids and "progress-note" not in ids


@pytest.mark.parametrize("case_id,ok", [("IMR-2026-000417", True), ("a", True), ("A.b_c-1", True),
                                        ("-x", False), ("", False), ("a b", False), ("../x", False),
                                        ("x" * 65, False), ("é", False), (".hidden", False)])
def test_case_id_rule(case_id, ok):
    assert valid_case_id(case_id) is ok


def test_valid_case_toml(tmp_path):
    facts = load_case(write_case(tmp_path))
    assert facts.member.member_id == MEMBER_ID
    assert facts.dmhc_notice_received.utcoffset() == dt.timedelta(hours=-8)
    assert facts.provider.fax


def test_invalid_case_toml_names_each_key(tmp_path):
    case_dir = tmp_path / "IMR-1"
    case_dir.mkdir()
    (case_dir / "case.toml").write_text('review_type = "slow"\ndmhc_notice_received = "yesterday"\n'
                                        'language = "fr"\n[member]\nname = "X"\n')
    with pytest.raises(CaseError) as caught:
        load_case(case_dir)
    text = "\n".join(caught.value.problems)
    for key in ("review_type", "dmhc_notice_received", "language", "disputed_service", "[member] member_id",
                "[member] date_of_birth", "[member] address"):
        assert key in text, key


def test_case_id_must_match_folder(tmp_path):
    case_dir = write_case(tmp_path, "IMR-2")
    text = (case_dir / "case.toml").read_text().replace('case_id = "IMR-2"', 'case_id = "IMR-3"')
    (case_dir / "case.toml").write_text(text)
    with pytest.raises(CaseError, match="folder"):
        load_case(case_dir)


def test_new_case_template_is_refused_until_a_person_fills_it_in():
    """The template parses as TOML, but every placeholder is refused with a note naming its key, and
    the notice time (which starts the legal clock) is never pre-filled."""
    import tomllib

    text = case_template("IMR-9", dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc))
    assert "2026-11-27" not in text
    raw = tomllib.loads(text)
    with pytest.raises(CaseError) as caught:
        parse_case(raw, "IMR-9")
    problems = caught.value.problems
    for key in ("dmhc_notice_received", "disputed_service", "[member] name", "[member] member_id",
                "[member] date_of_birth", "[member] address", "[provider] name", "[provider] address"):
        assert any(p.startswith(key) for p in problems), key
    assert len(problems) == 8


def test_new_case_command(tmp_path, capsys):
    flags = [f"--inbox={tmp_path / 'inbox'}", f"--outbox={tmp_path / 'outbox'}"]
    os.environ_backup = None
    code = main(["new-case", "IMR-2026-1", *flags, "--config", str(_paths_config(tmp_path))])
    assert code == 0
    assert (tmp_path / "inbox" / "IMR-2026-1" / "case.toml").is_file()
    assert main(["new-case", "IMR-2026-1", "--config", str(_paths_config(tmp_path))]) == 2
    assert main(["new-case", "../evil", "--config", str(_paths_config(tmp_path))]) == 3
    assert not (tmp_path / "evil").exists()


def _paths_config(tmp_path: Path) -> Path:
    conf = tmp_path / "imr.toml"
    conf.write_text("".join(f'[paths]\n' if i == 0 else "" for i in range(1)) + "".join(
        f'{k} = "{tmp_path / k}"\n' for k in ("inbox", "outbox", "archive", "state")))
    return conf


@pytest.mark.parametrize("name", [".DS_Store", "~$letter.docx", ".~lock.letter.docx#", "scan.tmp", "big.part",
                                  "file.crdownload", "Thumbs.db", "desktop.ini", "THUMBS.DB"])
def test_junk_is_ignored(name):
    assert is_junk(name)


def test_scan_follows_the_folder_contract(tmp_path):
    case_dir = write_case(tmp_path)
    for rel in ("a.pdf", "medical-records/mri.pdf", "Medical-Records/sub/labs.pdf", "correspondence/denial.pdf",
                "plan-statements/md review.pdf", "privileged/memo.pdf", "privileged/correspondence/x.pdf",
                "_rejected/old.pdf", ".hidden/h.pdf", "_work/w.pdf", "~$lock.docx", "Thumbs.db",
                "READY", "overrides.toml", "_STATUS.txt", "sub/READY"):
        path = case_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    files = {f.relpath: f for f in scan(case_dir)}
    assert set(files) == {"a.pdf", "medical-records/mri.pdf", "Medical-Records/sub/labs.pdf",
                          "correspondence/denial.pdf", "plan-statements/md review.pdf", "privileged/memo.pdf",
                          "privileged/correspondence/x.pdf", "sub/READY"}
    assert files["a.pdf"].hint_category is None
    assert files["Medical-Records/sub/labs.pdf"].hint_category == "medical_records"
    assert files["privileged/memo.pdf"].in_privileged_folder
    assert files["privileged/correspondence/x.pdf"].hint_category == "correspondence"
    assert not files["correspondence/denial.pdf"].in_privileged_folder


def test_symlinks_are_never_followed(tmp_path):
    case_dir = write_case(tmp_path)
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"%PDF")
    (case_dir / "link.pdf").symlink_to(outside)
    assert [f.relpath for f in scan(case_dir)] == []


def test_overrides_are_parsed_and_checked(tmp_path):
    case_dir = write_case(tmp_path)
    (case_dir / "a.pdf").write_bytes(b"x")
    (case_dir / "overrides.toml").write_text(
        '["a.pdf"]\ncategory = "correspondence"\nprivileged = "attorney memo"\ndate = 2026-08-14\n'
        'title = "Denial letter"\n["missing.pdf"]\nexclude = "duplicate"\n["a.pdf ".x]\n')
    intake = read_case_folder(case_dir)
    override = intake.overrides["a.pdf"]
    assert override.category == "correspondence" and override.privileged == "attorney memo"
    assert override.date == dt.date(2026, 8, 14) and override.title == "Denial letter"
    assert any("missing.pdf" in p for p in intake.override_problems)


def test_bad_override_values_are_reported(tmp_path):
    case_dir = write_case(tmp_path)
    (case_dir / "overrides.toml").write_text('["a.pdf"]\ncategory = "letters"\ndate = "soon"\ncolour = 1\n')
    problems = read_case_folder(case_dir).override_problems
    assert any("category" in p for p in problems)
    assert any("date" in p for p in problems)
    assert any("colour" in p for p in problems)
