"""Sealing: the release gate, overrides, the atomic submission, crash recovery, supplements."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import make_config, make_pdf
from sealkit import CASE_ID, NOW, add_record, sealable_case, tree

from packet.records import audit
from packet.errors import GateFailed
from packet.records.register import (load_gate_result, next_submission_info, read_journal, sealed_submissions)
from packet.pipeline.seal import CHECKPOINT_LOG_ENV, CRASH_ENV, recover, seal_case
from packet.records.archive import check_archive
from packet.pipeline.verify import VerifyReport, verify_submission

PROJECT = Path(__file__).resolve().parents[2]
OUTPUTS = {"imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf",
           "annotated-list.csv", "notice-letter.docx", "manifest.json"}


def _audit_events(config, event: str) -> list[dict]:
    if not config.audit_log.is_file():
        return []
    entries = [json.loads(line) for line in config.audit_log.read_text().splitlines() if line.strip()]
    return [e for e in entries if e.get("event") == event]


def _originals(case_dir: Path) -> dict[str, str]:
    """The clerk's documents in a case folder (not case.toml, overrides.toml, READY or the notes)."""
    keep = {"case.toml", "overrides.toml", "READY", "_STATUS.txt"}
    return {k: v for k, v in tree(case_dir).items() if k not in keep and not k.startswith("_rejected/")}


# --- the whole seal ---------------------------------------------------------------------------

def test_seal_writes_submission_archive_print_and_clears_inbox(config):
    case_dir = sealable_case(config.paths.inbox)
    (case_dir / "READY").touch()
    originals = _originals(case_dir)
    assert len(originals) == 3
    submission = seal_case(config, CASE_ID, now=NOW, actor="clerk-anna")

    assert submission == config.paths.outbox / CASE_ID / "submission-01"
    assert {p.name for p in submission.iterdir()} == OUTPUTS
    manifest = json.loads((submission / "manifest.json").read_text())
    assert manifest["kind"] == "initial" and manifest["submission"] == 1
    assert manifest["sealed_at"] == NOW.isoformat() and manifest["generated_at"] == NOW.isoformat()
    assert manifest["on_time"] is True and manifest["overrides"] == []
    assert manifest["documents"][0]["bates_first"] == f"{CASE_ID}-000001"
    assert {o["file"] for o in manifest["outputs"]} == OUTPUTS - {"manifest.json"}

    # The originals left the inbox for the archive, byte for byte, with their hashes.
    archive = config.paths.archive / CASE_ID / "submission-01"
    archived = tree(archive)
    for relpath, digest in originals.items():
        assert archived[relpath] == digest
        assert not (case_dir / relpath).exists()
    assert check_archive(archive) == []
    assert "case.toml" in archived and "overrides.toml" in archived
    sums = (archive / "_sealed" / "SHA256SUMS").read_text()
    assert all(f"{digest}  {relpath}" in sums for relpath, digest in originals.items())
    # The inbox keeps the clerk's control files and the service's note; READY is gone.
    left = set(tree(case_dir))
    assert {"case.toml", "overrides.toml", "_STATUS.txt"} <= left and "READY" not in left
    assert "sealed" in (case_dir / "_STATUS.txt").read_text()
    assert not (config.paths.outbox / CASE_ID / "draft").exists(), "the draft of what was sealed is gone"

    prints = sorted(p.name for p in (config.paths.outbox / "_print").iterdir())
    member_pages = next(o["pages"] for o in manifest["outputs"] if o["file"] == "member-packet.pdf")
    assert prints == [f"20261127T170000Z-{CASE_ID}-s01-member-{member_pages}p.pdf",
                      f"20261127T170000Z-{CASE_ID}-s01-provider-"
                      f"{next(o['pages'] for o in manifest['outputs'] if o['file'] == 'provider-packet.pdf')}p.pdf"]
    assert (config.paths.outbox / "_print" / prints[0]).read_bytes() == (submission / "member-packet.pdf").read_bytes()

    [register] = sealed_submissions(config, CASE_ID)
    assert (register.number, register.kind, register.first_bates) == (1, "initial", 1)
    assert register.next_bates == manifest["bates"]["next"] == 6  # 2 + 1 + 2 pages, from 1
    [sealed] = _audit_events(config, "sealed")
    assert sealed["case"] == CASE_ID and sealed["actor"] == "clerk-anna" and sealed["submission"] == 1
    assert read_journal(config, CASE_ID) is None
    assert not list(config.work_dir.glob("seal-*"))
    assert verify_submission(submission, config).ok
    for path in [*submission.iterdir(), *archive.rglob("*")]:
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o640, path


# --- the release gate -------------------------------------------------------------------------

def _other_member(case_dir: Path) -> None:
    make_pdf(case_dir / "medical-records" / "fax.pdf",
             ["Progress note\nPatient: Someone Else\nMember ID: M111222333\nDOB: 02/03/1950\nSeen for knee pain."])


def _unclassified(case_dir: Path) -> None:
    make_pdf(case_dir / "scan 0001.pdf", ["zzz qqq 123"])


def _no_grievance_response(case_dir: Path) -> None:
    (case_dir / "correspondence" / "grievance resolution.pdf").unlink()


def _bad_case_toml(case_dir: Path) -> None:
    text = (case_dir / "case.toml").read_text().replace('review_type = "standard"', 'review_type = "soon"')
    (case_dir / "case.toml").write_text(text)


def _representative_without_address(case_dir: Path) -> None:
    """Issue 15 item 3: the letters copy a representative who has no address: their copy cannot be mailed."""
    with open(case_dir / "case.toml", "a", encoding="utf-8") as handle:
        handle.write('\n[representative]\nname = "Rosa Phoneonly"\nrelationship = "daughter"\n')


GATE_CASES = {
    "case_toml": (_bad_case_toml, "review_type", False),
    "needs_review": (_unclassified, "scan 0001.pdf", True),
    # Another member's pages: never passed by a blanket --override (a breach if wrong); see below.
    "identity_mismatch": (_other_member, "ANOTHER member", False),
    "grievance_response_missing": (_no_grievance_response, "grievance response", True),
    "representative_no_address": (_representative_without_address, "representative ([representative]) without an "
                                  "address", True),
}


@pytest.mark.parametrize("code", sorted(GATE_CASES))
def test_each_gate_item_fails_then_an_override_passes_it(tmp_path, code):
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    spoil, words, overridable = GATE_CASES[code]
    spoil(case_dir)
    (case_dir / "READY").touch()
    before = _originals(case_dir)

    with pytest.raises(GateFailed) as failed:
        seal_case(config, CASE_ID, now=NOW)
    assert any(words in item for item in failed.value.items), failed.value.items
    # Nothing sealed, nothing moved, READY stays, and the clerk's note and state say why.
    assert not (config.paths.outbox / CASE_ID / "submission-01").exists()
    assert not (config.paths.archive / CASE_ID / "submission-01").exists()
    assert _originals(case_dir) == before and (case_dir / "READY").exists()
    assert sealed_submissions(config, CASE_ID) == ()
    gate = load_gate_result(config, CASE_ID)
    assert not gate.ok and code in {item.code for item in gate.blocking}
    status = (case_dir / "_STATUS.txt").read_text()
    assert words in status
    assert _audit_events(config, "seal_refused")

    if not overridable:
        with pytest.raises(GateFailed) as again:
            seal_case(config, CASE_ID, now=NOW, override_reason="the clerk insists")
        assert "cannot be overridden" in " ".join(again.value.items)
        return
    submission = seal_case(config, CASE_ID, now=NOW, override_reason="confirmed by the medical director",
                           actor="supervisor-li")
    manifest = json.loads((submission / "manifest.json").read_text())
    overrides = manifest["overrides"]
    assert overrides and all(o["reason"] == "confirmed by the medical director" and o["by"] == "supervisor-li"
                             for o in overrides)
    assert any(words in o["item"] for o in overrides)
    [event] = [e for e in _audit_events(config, "overridden") if e["item"] == code]
    assert event["reason"] == "confirmed by the medical director" and event["actor"] == "supervisor-li"
    assert load_gate_result(config, CASE_ID).ok


def test_a_person_resolves_an_identity_mismatch_per_file(tmp_path):
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    _other_member(case_dir)
    with pytest.raises(GateFailed):
        seal_case(config, CASE_ID, now=NOW)
    (case_dir / "overrides.toml").write_text(
        '["medical-records/fax.pdf"]\nidentity_confirmed = "DOB is the mother\'s; checked with the clinic"\n')
    submission = seal_case(config, CASE_ID, now=NOW)
    manifest = json.loads((submission / "manifest.json").read_text())
    [fax] = [d for d in manifest["documents"] if d["source"] == "medical-records/fax.pdf"]
    assert fax["identity"] == "confirmed" and fax["identity_reason"].startswith("override:")
    assert manifest["overrides"] == []


def test_gate_passes_without_grievance_response_for_experimental_dispute(config):
    case_dir = sealable_case(config.paths.inbox, grievance_response=False, dispute_type="experimental")
    assert seal_case(config, CASE_ID, now=NOW).is_dir()
    assert load_gate_result(config, CASE_ID).items == ()
    assert case_dir.is_dir()


def test_override_user_defaults_to_the_operating_system_user(config):
    case_dir = sealable_case(config.paths.inbox)
    _no_grievance_response(case_dir)
    submission = seal_case(config, CASE_ID, now=NOW, override_reason="sent by fax on 11/26")
    [override] = json.loads((submission / "manifest.json").read_text())["overrides"]
    assert override["by"] == audit.current_user()


def test_a_built_submission_that_fails_verify_is_not_sealed_even_with_override(config, monkeypatch):
    import packet.pipeline.verify

    case_dir = sealable_case(config.paths.inbox)
    (case_dir / "READY").touch()
    before = _originals(case_dir)

    def failing(submission_dir, config, **kwargs):
        return VerifyReport(submission_dir=Path(submission_dir), case_id=CASE_ID, submission=1,
                            failures=("member-packet.pdf page 3: holds the text of a withheld document",))

    monkeypatch.setattr(packet.pipeline.verify, "verify_submission", failing)
    with pytest.raises(GateFailed) as failed:
        seal_case(config, CASE_ID, now=NOW, override_reason="ship it")
    assert "does not pass verify" in failed.value.items[0] and "cannot be overridden" in failed.value.items[0]
    assert not (config.paths.outbox / CASE_ID / "submission-01").exists()
    assert not list((config.paths.archive / CASE_ID).iterdir())
    assert not list(config.work_dir.glob("seal-*"))
    assert _originals(case_dir) == before and (case_dir / "READY").exists()
    assert read_journal(config, CASE_ID) is None


# --- supplements ------------------------------------------------------------------------------

def test_supplement_continues_numbering_and_has_one_day_clock(config):
    case_dir = sealable_case(config.paths.inbox)
    assert next_submission_info(config, CASE_ID) == (1, "initial", 1)
    seal_case(config, CASE_ID, now=NOW)
    first = json.loads((config.paths.outbox / CASE_ID / "submission-01" / "manifest.json").read_text())
    assert next_submission_info(config, CASE_ID) == (2, "supplement", first["bates"]["next"])

    add_record(case_dir, pages=2)
    later = NOW.replace(hour=15)
    submission = seal_case(config, CASE_ID, now=later)
    assert submission.name == "submission-02"
    manifest = json.loads((submission / "manifest.json").read_text())
    assert manifest["kind"] == "supplement" and manifest["submission"] == 2
    [doc] = [d for d in manifest["documents"] if d["packet_pages"]]
    assert doc["bates_first"] == f"{CASE_ID}-{first['bates']['next']:06d}"
    assert doc["bates_last"] == f"{CASE_ID}-{first['bates']['next'] + 1:06d}"
    assert "1 day" in manifest["deadline"]["rule"]
    assert manifest["deadline"]["due"] == later.replace(day=28).isoformat()  # received at `later` + 24 h
    text = subprocess.run(["pdftotext", "-l", "2", str(submission / "imr-org-packet.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Supplemental submission 2" in text
    report = verify_submission(submission, config)
    assert report.ok, report.text()
    assert any("submission 1 ended" in check for check in report.checks)
    assert [s.number for s in sealed_submissions(config, CASE_ID)] == [1, 2]
    assert (config.paths.archive / CASE_ID / "submission-02" / "medical-records" / "pt note.pdf").is_file()


# --- crashes ----------------------------------------------------------------------------------

RUNNER = """
import datetime as dt, sys
from packet.config import load_config
from packet.pipeline.seal import recover, seal_case
root, action = sys.argv[1], sys.argv[2]
config = load_config(None, flags={k: f"{root}/{k}" for k in ("inbox", "outbox", "archive", "state")}, environ={})
if action == "seal":
    seal_case(config, sys.argv[3], now=dt.datetime.fromisoformat(sys.argv[4]))
else:
    recover(config)
"""

# The crash tests run a seal or a recovery in a process of its own, dozens of times. A fresh
# interpreter each time would spend most of it importing the library; this server (a fresh,
# single-threaded interpreter that has imported it once) forks one child per run instead. The child
# is a process of its own as before: it sets the crash variables, runs RUNNER's two lines (rendering
# the mailings itself, `[limits] workers = 1`, with the fonts the server loaded: starting a render
# worker per child was a fresh interpreter each; the real kill -9 tests below keep the worker), writes its
# error output to a file (its output to nowhere), and ends with os._exit (137 at the crash checkpoint, 1 after an exception,
# 0 after the exit handlers, as an interpreter's end runs them).
FORK_SERVER = """
import atexit, datetime as dt, os, sys, traceback
from dataclasses import replace
from packet.config import load_config
from packet.mailings.layout import warm_up
from packet.pipeline.seal import recover, seal_case
warm_up()  # the mailings' fonts, loaded once: each child renders in its own process (workers = 1)
for line in sys.stdin:
    root, action, case_id, now, err, crash_at, checkpoint_log = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
            for name, value in ((%(crash)r, crash_at), (%(log)r, checkpoint_log)):
                if value:
                    os.environ[name] = value
            config = load_config(None, flags={k: f"{root}/{k}" for k in ("inbox", "outbox", "archive", "state")},
                                 environ={})
            config = replace(config, limits=replace(config.limits, workers=1))
            if action == "seal":
                seal_case(config, case_id, now=dt.datetime.fromisoformat(now))
            else:
                recover(config)
            atexit._run_exitfuncs()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
""" % {"crash": CRASH_ENV, "log": CHECKPOINT_LOG_ENV}


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMR_")}
    env["PYTHONPATH"] = str(PROJECT)
    return env


class _Forks:
    """The fork server of this module, started at its first use."""

    process: subprocess.Popen | None = None

    @classmethod
    def run(cls, root: Path, action: str, crash_at: int | None, checkpoint_log: Path | None):
        if cls.process is None or cls.process.poll() is not None:
            cls.process = subprocess.Popen([sys.executable, "-c", FORK_SERVER], env=_environment(), text=True,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        err = Path(root).parent / f"{Path(root).name}-{action}-{crash_at or 0}.err"
        fields = [str(root), action, CASE_ID, NOW.isoformat(), str(err), str(crash_at or ""), str(checkpoint_log or "")]
        cls.process.stdin.write("\t".join(fields) + "\n")
        cls.process.stdin.flush()
        answer = cls.process.stdout.readline()
        assert answer, "the fork server ended"
        return subprocess.CompletedProcess([action], int(answer), "", err.read_text(errors="replace"))

    @classmethod
    def stop(cls) -> None:
        if cls.process is not None:
            cls.process.stdin.close()
            cls.process.wait(timeout=60)
            cls.process.stdout.close()
            cls.process = None


@pytest.fixture(scope="module", autouse=True)
def _fork_server():
    yield
    _Forks.stop()


def _run(root: Path, action: str, *, crash_at: int | None = None, checkpoint_log: Path | None = None,
         wait: bool = True):
    if wait:
        return _Forks.run(root, action, crash_at, checkpoint_log)
    # A real kill -9 from outside: the seal runs in an interpreter of its own, as before.
    args = [sys.executable, "-c", RUNNER, str(root), action, CASE_ID, NOW.isoformat()]
    return subprocess.Popen(args, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A sealable case with READY, its conversions cached, and the reference of an uninterrupted seal."""
    template = tmp_path_factory.mktemp("template")
    config = make_config(template)
    case_dir = sealable_case(config.paths.inbox)
    (case_dir / "READY").touch()
    from packet.pipeline.build import build_case

    build_case(case_dir, config, now=NOW)  # warms the conversion cache and fixes receipt times
    reference = tmp_path_factory.mktemp("reference") / "root"
    shutil.copytree(template, reference)
    log = reference.parent / "checkpoints.txt"
    result = _run(reference, "seal", checkpoint_log=log)
    assert result.returncode == 0, result.stderr
    names = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    return template, reference, names, _originals(case_dir)


def _fresh(prepared, tmp_path: Path) -> Path:
    template = prepared[0]
    root = tmp_path / "root"
    shutil.copytree(template, root)
    return root


def _assert_invariant(root: Path, prepared) -> str:
    """After recovery: no submission and every original in the inbox, or exactly the submission an
    uninterrupted run produces with every original in the archive. Never a lost original."""
    _template, reference, _names, originals = prepared
    config = make_config(root)
    case_dir = config.paths.inbox / CASE_ID
    submission = config.paths.outbox / CASE_ID / "submission-01"
    archive = config.paths.archive / CASE_ID / "submission-01"
    assert read_journal(config, CASE_ID) is None
    assert not list(config.work_dir.glob("seal-*")), "work folders are cleaned up"
    assert not list((config.paths.archive / CASE_ID).glob(".sealing-*")) if (config.paths.archive / CASE_ID).is_dir() else True
    inbox_now = tree(case_dir)
    if not submission.exists():
        assert not archive.exists()
        assert {k: inbox_now.get(k) for k in originals} == originals, "every original is still in the inbox"
        assert (case_dir / "READY").exists()
        assert sealed_submissions(config, CASE_ID) == ()
        assert not (config.paths.outbox / "_print").is_dir() or not list((config.paths.outbox / "_print").iterdir())
        return "none"
    ref_sub = reference / "outbox" / CASE_ID / "submission-01"
    assert {p.name for p in submission.iterdir()} == {p.name for p in ref_sub.iterdir()}
    for path in submission.iterdir():
        if path.name == "manifest.json":
            ours, theirs = json.loads(path.read_text()), json.loads((ref_sub / path.name).read_text())
            ours.pop("audit_head"), theirs.pop("audit_head")
            assert ours == theirs
        else:
            assert path.read_bytes() == (ref_sub / path.name).read_bytes(), path.name
    assert check_archive(archive) == []
    archived = tree(archive)
    for relpath, digest in originals.items():
        assert archived[relpath] == digest, "every original is in the archive"
        assert relpath not in inbox_now, "and no longer in the inbox"
    assert not (case_dir / "READY").exists()
    assert [s.number for s in sealed_submissions(config, CASE_ID)] == [1]
    assert sorted(p.name for p in (config.paths.outbox / "_print").iterdir()) == \
        sorted(p.name for p in (reference / "outbox" / "_print").iterdir())
    assert len([e for e in _audit_events(config, "sealed") if e["case"] == CASE_ID]) == 1
    assert verify_submission(submission, config).ok
    return "complete"


@pytest.mark.slow
def test_kill_at_every_step_of_a_seal_then_recover(prepared, tmp_path):
    names = prepared[2]
    assert len(names) >= 15, names  # journal, build, each original archived, publish steps, ...
    commit = names.index("journal publishing") + 1
    outcomes = {}
    for crash_at in range(1, len(names) + 1):
        root = _fresh(prepared, tmp_path / f"n{crash_at}")
        result = _run(root, "seal", crash_at=crash_at)
        assert result.returncode == 137, (crash_at, result.stderr[-2000:])
        config = make_config(root)
        # Before recovery, the originals are all still somewhere whole.
        case_dir = config.paths.inbox / CASE_ID
        staged = list((config.paths.archive / CASE_ID).glob("*"))
        published = (config.paths.outbox / CASE_ID / "submission-01" / "manifest.json").is_file()
        for relpath, digest in prepared[3].items():
            places = [case_dir / relpath] + [d / relpath for d in staged]
            assert any(p.is_file() and tree(p.parent).get(p.name) == digest for p in places), (crash_at, relpath)
            if not published:  # originals leave the inbox only after the submission is in place
                assert tree(case_dir).get(relpath) == digest, (crash_at, relpath)
        recover(config)
        outcomes[names[crash_at - 1]] = _assert_invariant(root, prepared)
        expected = "none" if crash_at < commit else "complete"
        assert outcomes[names[crash_at - 1]] == expected, (crash_at, names[crash_at - 1])
        shutil.rmtree(root.parent)
    assert "none" in outcomes.values() and "complete" in outcomes.values()


def test_a_rolled_back_seal_can_be_sealed_again(prepared, tmp_path):
    names = prepared[2]
    root = _fresh(prepared, tmp_path)
    assert _run(root, "seal", crash_at=names.index("fsynced") + 1).returncode == 137
    assert _run(root, "seal").returncode == 0  # seal_case recovers (rolls back) first, then seals
    assert _assert_invariant(root, prepared) == "complete"


@pytest.mark.slow
def test_kill_during_recovery_then_recover_again(prepared, tmp_path):
    names = prepared[2]
    root = _fresh(prepared, tmp_path / "probe")
    assert _run(root, "seal", crash_at=names.index("journal publishing") + 1).returncode == 137
    probe_log = tmp_path / "recovery-checkpoints.txt"
    assert _run(root, "recover", checkpoint_log=probe_log).returncode == 0
    steps = len(probe_log.read_text().splitlines())
    assert steps >= 8
    for crash_at in range(1, steps + 1):
        root = _fresh(prepared, tmp_path / f"r{crash_at}")
        assert _run(root, "seal", crash_at=names.index("journal publishing") + 1).returncode == 137
        assert _run(root, "recover", crash_at=crash_at).returncode == 137
        recover(make_config(root))
        assert _assert_invariant(root, prepared) == "complete", crash_at


KILL_WHEN = {
    "journal written": lambda c: (c.paths.state / "cases" / CASE_ID / "seal-journal.json").exists(),
    "archive staged": lambda c: any((c.paths.archive / CASE_ID).glob(".sealing-*/_sealed/SHA256SUMS")),
    "submission published": lambda c: (c.paths.outbox / CASE_ID / "submission-01").exists(),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", sorted(KILL_WHEN))
def test_sigkill_while_sealing(prepared, tmp_path, moment):
    """A real kill -9, as soon as the seal reaches a moment (the exact instruction is the OS's choice)."""
    root = _fresh(prepared, tmp_path)
    config = make_config(root)
    reached = KILL_WHEN[moment]
    process = _run(root, "seal", wait=False)
    deadline = time.monotonic() + 120
    while not reached(config) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stderr.close()
    recover(config)
    assert _assert_invariant(root, prepared) in ("none", "complete")


def test_cli_seal_reports_gate_items_and_exit_codes(config, monkeypatch, capsys):
    from packet.cli import main

    for key in ("inbox", "outbox", "archive", "state"):
        monkeypatch.setenv(f"IMR_{key.upper()}", str(getattr(config.paths, key)))
    monkeypatch.delenv("IMR_CONFIG", raising=False)
    case_dir = sealable_case(config.paths.inbox)
    _no_grievance_response(case_dir)
    _unclassified(case_dir)
    assert main(["seal", CASE_ID]) == 1
    err = capsys.readouterr().err
    assert "2 problems" in err and "scan 0001.pdf" in err and "grievance response" in err
    assert main(["seal", CASE_ID, "--override", "records sent separately by fax"]) == 0
    assert "submission-01" in capsys.readouterr().out
    manifest = json.loads((config.paths.outbox / CASE_ID / "submission-01" / "manifest.json").read_text())
    assert {o["reason"] for o in manifest["overrides"]} == {"records sent separately by fax"}
    assert len(manifest["overrides"]) == 2
