"""The audit trail's gaps (issue 13 item 14): each attack named in the issue, on a really sealed case.

One case is sealed once per module (with an audit key, and a supervisor's override so the seal has
an `overridden` entry after `sealed`); each test works on a copy of that world.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers import make_config
from sealkit import CASE_ID, NOW, audit_entries as _entries, reseal_records, rewrite_audit_log, sealable_case
from packet.cli import main
from packet.config import Audit
from packet.pipeline.seal import seal_case
from packet.pipeline.verify import verify_submission
from packet.records import audit
from packet.records.register import sealed_submissions

KEY = b"k" * 32


def _with_key(config, key_file: Path):
    return dataclasses.replace(config, audit=Audit(key_file=str(key_file)))


@pytest.fixture(scope="module")
def sealed_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("trail")
    key_file = root / "audit.key"
    key_file.write_bytes(KEY)
    config = _with_key(make_config(root / "world"), key_file)
    sealable_case(config.paths.inbox, grievance_response=False)  # one item for the supervisor to override
    seal_case(config, CASE_ID, now=NOW, actor="clerk", override_reason="checked by the supervisor")
    return root


@pytest.fixture
def world(sealed_world, tmp_path):
    shutil.copytree(sealed_world, tmp_path / "copy")
    root = tmp_path / "copy"
    keyed = _with_key(make_config(root / "world"), root / "audit.key")
    return keyed, make_config(root / "world")  # with the key, and as someone without it


def _submission(config) -> Path:
    return config.paths.outbox / CASE_ID / "submission-01"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_untouched_world_passes_every_check(world):
    keyed, plain = world
    assert audit.verify_chain(keyed).ok, audit.verify_chain(keyed).text()
    assert audit.verify_chain(plain).ok
    assert verify_submission(_submission(keyed), keyed, audit=False).ok


def test_head_is_recorded_after_the_seals_last_entry(world):
    keyed, _ = world
    entries = _entries(keyed)
    mine = [e for e in entries if e.get("case") == CASE_ID and e.get("submission") == 1]
    assert [e["event"] for e in mine][-2:] == ["sealed", "overridden"]
    printed = [e["seq"] for e in mine if e["event"] == "print_queued"]
    (sealed,) = sealed_submissions(keyed, CASE_ID)
    assert sealed.audit_seq == mine[-1]["seq"] > max(printed)
    assert "mac" in next(e for e in mine if e["event"] == "sealed")


def test_deleting_sealed_and_print_entries_and_rewriting_the_head_is_caught(world):
    keyed, plain = world
    kept = [e for e in _entries(plain) if e["event"] not in ("sealed", "print_queued")]
    rewrite_audit_log(plain, kept)
    for config in (plain, keyed):
        report = audit.verify_chain(config)
        assert not report.ok
        text = report.text()
        assert "no `sealed` entry" in text and "not in the chain as it was recorded" in text, text


def test_a_one_byte_manifest_edit_fails_plain_verify(world):
    keyed, plain = world
    manifest = _submission(plain) / "manifest.json"
    data = manifest.read_bytes()
    manifest.write_bytes(data.replace(b'"on_time": true', b'"on_time": tru\x65', 1).replace(b"  ", b" \t", 1))
    assert manifest.read_bytes() != data
    report = verify_submission(_submission(plain), plain, audit=False)
    assert not report.ok
    assert any("changed after sealing" in f for f in report.failures), report.failures
    assert any("archive snapshot" in f for f in report.failures), report.failures
    assert not audit.verify_chain(plain).ok


def test_a_rehashed_mailing_fails_plain_verify(world):
    _, plain = world
    folder = _submission(plain)
    mailing = folder / "member-packet.pdf"
    mailing.write_bytes(mailing.read_bytes() + b"\n% a page slipped in\n")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for output in manifest["outputs"]:
        if output["file"] == "member-packet.pdf":
            output["sha256"] = _sha(mailing)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report = verify_submission(folder, plain, audit=False)
    assert not report.ok
    assert any("changed after sealing" in f for f in report.failures), report.failures


def _forge(config) -> None:
    """Everything the service can write, rewritten consistently: manifest, archive snapshot and
    SHA256SUMS, the `sealed` entry, the whole chain, audit.head and the register."""
    folder = _submission(config)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["on_time"] = not manifest["on_time"]
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    reseal_records(config, folder)


def test_a_full_forgery_is_caught_by_the_key_and_by_a_kept_checkpoint(world, tmp_path):
    keyed, plain = world
    kept = audit.checkpoint(keyed)
    assert "mac" in kept and kept["seq"] == len(_entries(keyed))
    assert audit.verify_chain(keyed, [kept]).ok
    _forge(plain)
    # Without the key and without a checkpoint, a consistent rewrite cannot be told (README says so).
    assert audit.verify_chain(plain).ok
    # The key: the forged `sealed` entry's MAC does not match.
    report = audit.verify_chain(keyed)
    assert not report.ok and "MAC does not match" in report.text(), report.text()
    assert not verify_submission(_submission(keyed), keyed, audit=False).ok
    # A checkpoint an auditor kept: the rewritten chain no longer holds that entry.
    report = audit.verify_chain(plain, [kept])
    assert not report.ok and "rewritten since the checkpoint" in report.text(), report.text()


def test_cli_checkpoint_and_verify_with_checkpoints(world, tmp_path, monkeypatch, capsys):
    _, plain = world
    for key in ("inbox", "outbox", "archive", "state"):
        monkeypatch.setenv(f"IMR_{key.upper()}", str(getattr(plain.paths, key)))
    monkeypatch.delenv("IMR_CONFIG", raising=False)
    kept = tmp_path / "auditor-checkpoints.jsonl"
    assert main(["audit", "checkpoint", "--append-to", str(kept)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(kept.read_text()) == printed and "mac" not in printed  # no key: unsigned
    assert main(["audit", "verify", "--checkpoint", str(kept)]) == 0
    capsys.readouterr()
    _forge(plain)
    assert main(["audit", "verify", "--checkpoint", str(kept)]) != 0
    assert "rewritten since the checkpoint" in capsys.readouterr().out


def test_a_configured_key_that_cannot_be_read_stops_the_seal_before_it_starts(tmp_path):
    config = _with_key(make_config(tmp_path), tmp_path / "missing.key")
    sealable_case(config.paths.inbox)
    with pytest.raises(Exception, match="audit key"):
        seal_case(config, CASE_ID, now=NOW, actor="clerk", override_reason="checked")
    assert not (config.paths.outbox / CASE_ID / "submission-01").exists()
    assert not list(config.work_dir.glob("seal-*"))
    assert not list((config.paths.archive / CASE_ID).glob(".sealing-*"))
    assert "STUCK" in (config.paths.inbox / CASE_ID / "_STATUS.txt").read_text()


def test_a_forgery_that_strips_the_mac_is_caught_unless_a_checkpoint_anchors_the_entry(world):
    keyed, plain = world
    _forge(plain)
    entries = _entries(plain)
    for entry in entries:
        entry.pop("mac", None)
    rewrite_audit_log(plain, entries)
    reseal_records(plain, _submission(plain))  # register position after the rewrite
    assert audit.verify_chain(plain).ok  # consistent without the key
    report = audit.verify_chain(keyed)
    assert not report.ok and "carries no MAC" in report.text(), report.text()
    # A seal made before the key was set up is anchored by a checkpoint taken since.
    assert audit.verify_chain(keyed, [audit.checkpoint(plain)]).ok
