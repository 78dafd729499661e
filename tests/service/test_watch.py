"""The watch service, driven as clerks drive it: a real `imr-packet watch` process on a temporary inbox.

Every wait is a condition with a deadline (`wait_for`). The only pauses are the pacing of a
simulated slow copy and the random moments at which the kill -9 test kills the watcher: those are
the inputs of the test, not waits for a result. Every test that runs a watcher process checks, at
its end, that the service log is JSON lines holding no member data and no file names.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import MEMBER_NAME, make_pdf, write_case
from watchkit import (DEBOUNCE, SETTLE, Service, document_text, grievance_letter, service, sha,  # noqa: F401
                      wait_for)
from watchkit import pace as _pace

from packet.pipeline import build as build_module
from packet.records import filestate
from packet import log as service_log
from packet.errors import RefusedFile
from packet.intake.folder import scan
from packet.service.observer import choose_polling, filesystem_type, is_network_fs
from packet.service.watch import run_watcher

# --- files are taken only when complete ----------------------------------------------------------

def test_a_file_copied_slowly_in_chunks_is_taken_only_when_complete(tmp_path):
    # The copy stalls once for longer than the debounce but shorter than the settle time: only the
    # per-file settle check keeps the half-copied file out (a debounce alone would take it).
    service = Service(tmp_path, settle_seconds=2.0, debounce_seconds=0.2)
    try:
        _slow_copy(service, tmp_path)
    finally:
        service.close()
    service.assert_log_clean()


def _slow_copy(service: Service, tmp_path: Path) -> None:
    case_dir = write_case(service.inbox, "CASE-SLOW")
    service.drop(case_dir / "correspondence" / "Grievance resolution letter.txt",
                 grievance_letter("CASE-SLOW").encode())
    service.start()
    service.started()
    source = make_pdf(tmp_path / "source.pdf", [document_text("CASE-SLOW", i, "MRI report page") for i in range(60)])
    data = source.read_bytes()
    target = case_dir / "medical-records" / "MRI lumbar spine report.pdf"
    service.file_names.update({target.name, target.stem})
    target.parent.mkdir(parents=True, exist_ok=True)
    chunks = 12
    step = len(data) // chunks + 1
    with open(target, "wb") as handle:
        for number, offset in enumerate(range(0, len(data), step)):
            handle.write(data[offset:offset + step])
            handle.flush()
            # Pauses shorter than the settle time (2 s): the copy is still in progress.
            _pace(0.6 if number == chunks // 2 else 0.1)
    wait_for(lambda: sha(data) in service.draft_shas("CASE-SLOW"), timeout=90,
             what="the complete PDF in the draft", service=service)
    settled = {e["doc"] for e in service.events() if e.get("event") == "file_settled" and e.get("case") == "CASE-SLOW"}
    assert sha(data)[:12] in settled
    letter_sha = sha(grievance_letter("CASE-SLOW").encode())
    assert settled == {sha(data)[:12], letter_sha[:12]}, "a partial copy was settled"
    taken = {e["doc"] for e in service.events() if e.get("event") == "file_taken" and e.get("case") == "CASE-SLOW"}
    assert taken == {sha(data)[:12], letter_sha[:12]}, "a partial copy was taken"
    looked_at = {e["doc"] for e in service.events() if e.get("doc")}
    assert looked_at == {sha(data)[:12], letter_sha[:12]}, "a partial copy was converted or retried"
    assert not (case_dir / "_rejected").exists()
    assert len(service.draft_shas("CASE-SLOW")) == 2
    assert service.terminate() == 0


# --- a burst: everything exactly once -------------------------------------------------------------

def test_a_burst_of_200_files_across_20_cases_is_taken_exactly_once(service):
    service.start()
    service.started()
    expected: dict[str, set[str]] = {}
    for case_number in range(20):
        case_id = f"BURST-{case_number:02d}"
        case_dir = write_case(service.inbox, case_id)
        expected[case_id] = set()
        for index in range(10):
            folder = "correspondence" if index == 0 else "medical-records"
            text = grievance_letter(case_id) if index == 0 else document_text(case_id, index)
            service.drop(case_dir / folder / f"burst note {case_number} {index}.txt", text.encode())
            expected[case_id].add(sha(text.encode()))

    def all_taken():
        return all(set(service.draft_shas(case_id)) == shas for case_id, shas in expected.items())

    wait_for(all_taken, timeout=400, what="all 200 files in their drafts", service=service)
    assert service.terminate() == 0
    for case_id, shas in expected.items():
        assert len(service.draft_shas(case_id)) == 10, case_id  # no document twice
        assert not (service.inbox / case_id / "_rejected").exists()
        records = filestate.load(SimpleNamespace(paths=SimpleNamespace(state=service.state)), case_id)
        assert {r.sha256 for r in records.files.values()} == shas
        assert {r.outcome for r in records.files.values()} == {filestate.TAKEN}
    events = service.events()
    settled = collections.Counter((e["case"], e["doc"]) for e in events if e.get("event") == "file_settled")
    taken = collections.Counter((e["case"], e["doc"]) for e in events if e.get("event") == "file_taken")
    assert len(settled) == 200 and set(settled.values()) == {1}, "a file was queued twice"
    assert len(taken) == 200 and set(taken.values()) == {1}, "a file was taken twice"


def test_ready_waits_for_files_still_being_copied_and_late_files_become_a_supplement(tmp_path):
    service = Service(tmp_path, settle_seconds=1.0, debounce_seconds=0.2)
    try:
        case_dir = write_case(service.inbox, "CASE-READY")
        letter = sha(grievance_letter("CASE-READY").encode())
        service.drop(case_dir / "correspondence" / "resolution.txt", grievance_letter("CASE-READY").encode())
        service.start()
        wait_for(lambda: service.draft_shas("CASE-READY") == [letter], timeout=120, what="the first draft",
                 service=service)
        # A long record arrives slowly, and READY is dropped while it is still being copied: the
        # seal must wait for it. (A text file: any prefix of it is a valid document, so only
        # waiting keeps a partial one out of the sealed submission.)
        data = "\n".join(document_text("CASE-READY", i) for i in range(40)).encode()
        target = case_dir / "medical-records" / "hospital chart.txt"
        service.file_names.update({target.name, target.stem})
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:  # about 6 s: long enough for a build and a seal meanwhile
            for number, offset in enumerate(range(0, len(data), len(data) // 30 + 1)):
                handle.write(data[offset:offset + len(data) // 30 + 1])
                handle.flush()
                if number == 3:
                    (case_dir / "READY").write_bytes(b"")
                _pace(0.2)
        wait_for(lambda: not (case_dir / "READY").exists() and service.submissions("CASE-READY"), timeout=180,
                 what="the seal", service=service)
        first = service.submissions("CASE-READY")
        assert len(first) == 1
        assert sorted(d["sha256"] for d in first[0]["documents"]) == sorted([letter, sha(data)])
        # A record dropped after sealing starts submission 2 (a supplement) once READY comes again.
        late = document_text("CASE-READY", 7).encode()
        service.drop(case_dir / "medical-records" / "late note.txt", late)
        (case_dir / "READY").write_bytes(b"")
        wait_for(lambda: len(service.submissions("CASE-READY")) == 2 and not (case_dir / "READY").exists(),
                 timeout=180, what="the supplement", service=service)
        second = service.submissions("CASE-READY")[1]
        assert second["kind"] == "supplement"
        assert [d["sha256"] for d in second["documents"]] == [sha(late)]
        assert service.terminate() == 0
        events = service.events()
        assert not [e for e in events if e["event"] == "seal_refused"], "a seal was tried during the copy"
        taken = {e["doc"] for e in events if e["event"] == "file_taken"}
        assert taken == {letter[:12], sha(data)[:12], sha(late)[:12]}, "a partial copy was read"
    finally:
        service.close()
    service.assert_log_clean()


# --- polling --------------------------------------------------------------------------------------

def test_polling_mode_takes_files(tmp_path):
    service = Service(tmp_path, polling="always")
    try:
        service.start()
        service.started()
        started = next(e for e in service.events() if e.get("event") == "watch_started")
        assert started["mode"] == "polling" and started["why"] == "configured"
        case_dir = write_case(service.inbox, "CASE-POLL")
        letter = service.drop(case_dir / "correspondence" / "resolution.txt", grievance_letter("CASE-POLL").encode())
        note = service.drop(case_dir / "medical-records" / "visit.txt", document_text("CASE-POLL", 1).encode())
        wanted = sorted({sha(letter.read_bytes()), sha(note.read_bytes())})
        wait_for(lambda: service.draft_shas("CASE-POLL") == wanted, timeout=120, what="the draft", service=service)
        assert service.terminate() == 0
    finally:
        service.close()
    service.assert_log_clean()


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /srv/share rw,relatime shared:20 - cifs //files/clerks rw,vers=3.1.1
41 22 0:36 / /mnt/nfs rw,relatime shared:21 - nfs4 filer:/export rw
42 22 0:37 / /mnt/ssh\\040drive rw,nosuid shared:22 - fuse.sshfs me@host:/x rw
43 40 0:38 / /srv/share/local rw shared:23 - ext4 /dev/sdb1 rw
"""


@pytest.mark.parametrize("path, fs_type, network", [
    ("/home/clerk/inbox", "ext4", False),
    ("/srv/share/inbox", "cifs", True),
    ("/srv/share", "cifs", True),
    ("/srv/shared/inbox", "ext4", False),  # a prefix of the name is not a mount point
    ("/mnt/nfs/cases/inbox", "nfs4", True),
    ("/mnt/ssh drive/inbox", "fuse.sshfs", True),
    ("/srv/share/local/inbox", "ext4", False),  # the deepest mount wins
])
def test_network_file_systems_are_detected_from_mountinfo(path, fs_type, network):
    assert filesystem_type(Path(path), MOUNTINFO) == fs_type
    assert is_network_fs(fs_type) is network


def test_polling_auto_follows_the_inbox_file_system(config):
    def with_polling(mode):
        return replace(config, watch=replace(config.watch, polling=mode))

    assert choose_polling(with_polling("always"), "") == (True, "configured")
    assert choose_polling(with_polling("never"), MOUNTINFO) == (False, "configured")
    inbox = os.path.realpath(config.paths.inbox)
    on_share = f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n50 22 0:40 / {inbox} rw - smb3 //f/s rw\n"
    assert choose_polling(config, on_share) == (True, "network_fs")
    assert choose_polling(config, "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n") == (False, "local_fs")


# --- one watcher per inbox; signals ---------------------------------------------------------------

def test_a_second_watcher_refuses_to_start(service, tmp_path):
    first = service.start()
    service.started(first)
    second = service.start()
    assert second.wait(timeout=60) == 2
    assert "already running" in service.runs[-1][2].read_text()
    # Another configuration (its own state folder) pointed at the same inbox is refused too.
    other = tmp_path / "other.toml"
    other.write_text(f'[paths]\ninbox = "{service.inbox}"\noutbox = "{tmp_path / "o2"}"\n'
                     f'archive = "{tmp_path / "a2"}"\nstate = "{tmp_path / "s2"}"\n')
    third = service.start(config_file=other)
    assert third.wait(timeout=60) == 2
    assert "already running" in service.runs[-1][2].read_text()
    assert first.poll() is None
    assert service.terminate(first) == 0


def test_sigterm_finishes_the_step_and_exits_0(service):
    case_dir = write_case(service.inbox, "CASE-TERM")
    service.drop(case_dir / "correspondence" / "letter.txt", grievance_letter("CASE-TERM").encode())
    proc = service.start()
    service.started()
    wait_for(lambda: any(e.get("event") == "file_settled" for e in service.events()), timeout=60,
             what="a file to settle", service=service)
    assert service.terminate(proc) == 0
    events = service.events()
    assert events[-1]["event"] == "watch_stopped" and events[-1]["code"] == 0
    # A build that had started finished whole: its draft is complete or absent, never half there.
    draft = service.outbox / "CASE-TERM" / "draft"
    if draft.exists():
        assert (draft / "manifest.json").is_file() and (draft / "review.json").is_file()


def test_a_restart_does_not_redo_finished_work(service):
    case_dir = write_case(service.inbox, "CASE-AGAIN")
    service.drop(case_dir / "correspondence" / "letter.txt", grievance_letter("CASE-AGAIN").encode())
    service.drop(case_dir / "medical-records" / "note.txt", document_text("CASE-AGAIN", 1).encode())
    first = service.start("--once")
    assert first.wait(timeout=180) == 0, service.diagnostics()
    assert len(service.draft_shas("CASE-AGAIN")) == 2
    second = service.start("--once")
    assert second.wait(timeout=180) == 0, service.diagnostics()
    again = [e["event"] for e in service.events(1)]
    assert "file_settled" not in again and "case_built" not in again
    # A changed file is a reason: only then is the case built again.
    service.drop(case_dir / "medical-records" / "note.txt", document_text("CASE-AGAIN", 2).encode())
    third = service.start("--once")
    assert third.wait(timeout=180) == 0, service.diagnostics()
    assert [e["event"] for e in service.events(2)].count("case_built") == 1
    assert sha(document_text("CASE-AGAIN", 2).encode()) in service.draft_shas("CASE-AGAIN")


# --- kill -9 at random moments during intake and sealing -----------------------------------------

def _fill_case(service: Service, case_id: str, notes: int = 3) -> set[str]:
    """A complete case: notes, the grievance response, one file that must be refused, and READY."""
    case_dir = write_case(service.inbox, case_id)
    inputs = set()
    for index in range(notes):
        data = document_text(case_id, index).encode()
        service.drop(case_dir / "medical-records" / f"visit {case_id} {index}.txt", data)
        inputs.add(sha(data))
    data = grievance_letter(case_id).encode()
    service.drop(case_dir / "correspondence" / f"resolution {case_id}.txt", data)
    inputs.add(sha(data))
    service.drop(case_dir / f"scan {case_id}.pdf", b"")  # empty: refused to _rejected/
    inputs.add(sha(b""))
    (case_dir / "READY").write_bytes(b"")
    return inputs


def _sealed_everything(service: Service, expected: dict[str, set[str]]) -> bool:
    for case_id in expected:
        case_dir = service.inbox / case_id
        if (case_dir / "READY").exists() or not service.submissions(case_id):
            return False
        if any(scan(case_dir)):
            return False  # an original not yet archived (or a supplement not yet sealed)
        if (service.state / "cases" / case_id / "seal-journal.json").exists():
            return False
    return True


def _check_exactly_once(service: Service, expected: dict[str, set[str]]) -> None:
    from packet.config import load_config
    from packet.pipeline.verify import verify_submission

    config = load_config(service.config_file, environ={})
    for case_id, inputs in expected.items():
        sent = [d["sha256"] for manifest in service.submissions(case_id) for d in manifest["documents"]]
        refused = service.rejected_shas(case_id)
        counts = collections.Counter(sent + refused)
        assert set(counts) == inputs, f"{case_id}: lost or unexpected inputs"
        assert set(counts.values()) == {1}, f"{case_id}: an input ended up twice: {counts}"
        numbers = [m["submission"] for m in service.submissions(case_id)]
        assert numbers == list(range(1, len(numbers) + 1))
        archived = {sha(p.read_bytes()) for p in (service.archive / case_id).rglob("*.txt")
                    if "_sealed" not in p.parts}
        assert set(sent) <= archived
        for submission in sorted((service.outbox / case_id).glob("submission-*")):
            report = verify_submission(submission, config, rebuild=True)
            assert report.ok, report.text()
    # Nothing half-written is visible in the outbox. The only hidden names allowed are the ".tmp-*"
    # files a kill inside an atomic write leaves (never a final name; swept after a while).
    for path in service.outbox.rglob("*"):
        relative = path.relative_to(service.outbox)
        assert not any(part.startswith(".") and not part.startswith(".tmp-") for part in relative.parts), path
        assert not path.name.startswith(("draft-", "old-", "seal-")), path
    # Every mailing in the print folder is whole: the same bytes as in its sealed submission.
    for printed in sorted((service.outbox / "_print").glob("[0-9]*.pdf")):
        _, case_id, number, recipient = re.match(r"(\d{8}T\d{6}Z)-(.+)-s(\d\d)-(member|provider)-\d+p\.pdf$",
                                                 printed.name).groups()
        original = service.outbox / case_id / f"submission-{number}" / f"{recipient}-packet.pdf"
        assert printed.read_bytes() == original.read_bytes(), printed.name


def _kill_test(service: Service, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    expected = {"KILL-A": _fill_case(service, "KILL-A"), "KILL-B": _fill_case(service, "KILL-B")}
    for round_number in range(kills):
        service.start()
        if round_number == 1:
            expected["KILL-C"] = _fill_case(service, "KILL-C", notes=2)
        if round_number == 3:
            # A late record for A: a supplement if A is sealed by now, else part of submission 1.
            data = document_text("KILL-A", 99, "Late record").encode()
            service.drop(service.inbox / "KILL-A" / "medical-records" / "late record.txt", data)
            expected["KILL-A"].add(sha(data))
            (service.inbox / "KILL-A" / "READY").write_bytes(b"")
        _pace(rng.uniform(0.2, 4.0))  # a random moment: during start-up, intake, a build or a seal
        service.kill()
    service.start()
    service.started()  # (a SIGTERM before the handlers are installed would end it as a signal)
    wait_for(lambda: _sealed_everything(service, expected), timeout=600,
             what=f"every case sealed after {kills} kills (seed {seed})", service=service)
    assert service.terminate() == 0
    _check_exactly_once(service, expected)


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(service):
    _kill_test(service, kills=6, seed=int(os.environ.get("IMR_KILL_SEED", "20261127")))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("IMR_SLOW_TESTS"), reason="slow: set IMR_SLOW_TESTS=1")
@pytest.mark.parametrize("seed", range(5))
def test_kill_9_many_more_times(service, seed):
    _kill_test(service, kills=20, seed=seed)


@pytest.fixture(scope="module")
def seal_steps(tmp_path_factory) -> list[tuple[int, str]]:
    """The numbered steps (packet.pipeline.seal checkpoints) of an uninterrupted `watch --once` seal."""
    root = tmp_path_factory.mktemp("probe")
    probe = Service(root)
    _fill_case(probe, "CRASH-A")
    checkpoints = root / "checkpoints.txt"
    run = probe.start("--once", env={"IMR_SEAL_CHECKPOINT_LOG": str(checkpoints)})
    assert run.wait(timeout=300) == 0, probe.diagnostics()
    probe.assert_log_clean()
    return [(int(n), name) for n, name in (line.split(" ", 1) for line in checkpoints.read_text().splitlines())]


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["outputs built", "original removed"])
def test_a_watcher_killed_inside_a_seal_is_completed_by_the_next_one(service, seal_steps, crash_at):
    """Deterministic companion of the random kills: the watcher dies (os._exit, as kill -9) at a
    named step of a seal, before and after its commit point; the next watcher recovers the case."""
    expected = {"CRASH-A": _fill_case(service, "CRASH-A")}
    number = next(n for n, name in seal_steps if name.startswith(crash_at))
    crashed = service.start("--once", env={"IMR_SEAL_CRASH_AT": str(number)})
    assert crashed.wait(timeout=300) == 137, service.diagnostics()  # died inside the seal
    assert not _sealed_everything(service, expected)
    again = service.start("--once")
    assert again.wait(timeout=300) == 0, service.diagnostics()
    assert _sealed_everything(service, expected)
    _check_exactly_once(service, expected)


# --- in-process: retries, refused folders ---------------------------------------------------------

def _in_process(config, *, stop_after, timeout=60):
    """Run the watcher in a thread until `stop_after()` holds; return (exit code, log lines)."""
    stream = io.StringIO()
    service_log.set_stream(stream)
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", run_watcher(config, stop_event=stop)))
    thread.start()
    try:
        wait_for(stop_after, timeout=timeout, what="the watcher to finish its work")
    finally:
        stop.set()
        thread.join(timeout=60)
        service_log.set_stream(None)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return result.get("code"), lines


def test_transient_failures_are_retried_with_growing_delays_then_refused(config, monkeypatch):
    config = replace(config, watch=replace(config.watch, settle_seconds=0.1, debounce_seconds=0.1,
                                           retry_attempts=3, retry_base_seconds=0.1))
    case_dir = write_case(config.paths.inbox, "CASE-RETRY")
    (case_dir / "slow.docx").write_bytes(b"pretend")
    (case_dir / "fine.txt").write_bytes(b"fine")
    calls = []

    def fake_build(case_dir, config, *, settled=None, give_up=frozenset(), now=None, **hooks):
        sources = [s for s in scan(case_dir) if settled(s)]
        calls.append((sorted(s.relpath for s in sources), give_up))
        transient, refused = {}, []
        for source in sources:
            if source.relpath == "slow.docx":
                if source.relpath in give_up:
                    (case_dir / "_rejected").mkdir(exist_ok=True)
                    os.replace(source.path, case_dir / "_rejected" / "slow.docx")
                    refused.append(SimpleNamespace(source=source.relpath))
                else:
                    transient[source.relpath] = RefusedFile("timeout", "took too long", "wait", transient=True)
        documents = [SimpleNamespace(source=s.relpath) for s in sources if s.relpath != "slow.docx"]
        return SimpleNamespace(documents=documents, newly_rejected=refused, transient=transient, draft_dir=None)

    monkeypatch.setattr(build_module, "build_case", fake_build)
    code, lines = _in_process(config, stop_after=lambda: (case_dir / "_rejected" / "slow.docx").exists())
    assert code == 0
    tried = [give_up for relpaths, give_up in calls if "slow.docx" in relpaths]
    assert tried[:3] == [frozenset()] * 3  # three tries ...
    assert tried[3] == frozenset({"slow.docx"})  # ... then given up, so the build refuses it
    retries = [(e["attempt"], e["delay_seconds"]) for e in lines if e["event"] == "file_retry"]
    assert retries == [(1, 0.1), (2, 0.2)]  # growing delays
    assert [e["attempts"] for e in lines if e["event"] == "file_given_up"] == [3]
    record = filestate.load(config, "CASE-RETRY")
    assert record.files["fine.txt"].outcome == filestate.TAKEN


def test_a_folder_with_an_invalid_name_gets_a_note_and_nothing_else(config, monkeypatch):
    calls = []
    monkeypatch.setattr(build_module, "build_case", lambda *a, **k: calls.append(a))
    bad = config.paths.inbox / f"{MEMBER_NAME} case"
    bad.mkdir(parents=True)
    (bad / "records.pdf").write_bytes(b"%PDF-1.4 not really")
    (config.paths.inbox / "_scratch").mkdir()  # ignored: starts with "_"
    (config.paths.inbox / "loose file.pdf").write_bytes(b"x")  # not a case folder: left alone
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        assert run_watcher(replace(config, watch=replace(config.watch, settle_seconds=0.1)), once=True) == 0
    finally:
        service_log.set_stream(None)
    note = (bad / "_STATUS.txt").read_text()
    assert "not a valid case id" in note
    assert sorted(p.name for p in bad.iterdir()) == ["_STATUS.txt", "records.pdf"]
    assert (bad / "records.pdf").read_bytes() == b"%PDF-1.4 not really"
    assert sorted(p.name for p in (config.paths.inbox / "_scratch").iterdir()) == []
    assert calls == []
    text = stream.getvalue()
    refused = [json.loads(line) for line in text.splitlines() if "case_folder_refused" in line]
    assert refused and refused[0]["reason"] == "invalid_case_id"
    assert MEMBER_NAME not in text and "Rosalind" not in text


def test_the_watcher_returns_freed_memory_once_its_work_is_done_and_only_then(config, monkeypatch):
    """After a build the watcher, idle, hands what the build freed back to the system
    (packet.workers.pool.return_free_memory): a day of cases of every size must not leave it at
    the size of the largest. Never while a case is still due, never when nothing was done."""
    from packet.service import watch as watch_module

    trims, built = [], []

    def fake_build(case_dir, config, *, settled=None, give_up=frozenset(), now=None, **hooks):
        sources = scan(case_dir)
        built.append(case_dir.name)
        # As long as a build takes: the other case, seen a moment after this one, is due by the end
        # (a fake build of no time at all let the watcher go idle in between on a busy machine).
        time.sleep(0.5)
        return SimpleNamespace(documents=[SimpleNamespace(source=s.relpath) for s in sources if settled(s)],
                               newly_rejected=[], transient={}, draft_dir=None)

    monkeypatch.setattr(build_module, "build_case", fake_build)
    monkeypatch.setattr(watch_module, "return_free_memory", lambda: trims.append(list(built)))
    refreshed: list[list[str]] = []
    monkeypatch.setattr(watch_module.convert, "refresh_idle", lambda: refreshed.append(list(built)))
    monkeypatch.setattr(watch_module.convert, "prestart", lambda config: None)
    config = replace(config, watch=replace(config.watch, settle_seconds=0.1))
    assert run_watcher(config, once=True) == 0
    assert trims == []  # an empty inbox: nothing built, nothing to give back
    for name in ("CASE-TRIM-A", "CASE-TRIM-B"):
        (write_case(config.paths.inbox, name) / "a.txt").write_text("a")
    assert run_watcher(config, once=True) == 0
    assert sorted(built) == ["CASE-TRIM-A", "CASE-TRIM-B"]
    assert trims and all(sorted(done) == sorted(built) for done in trims)  # after both, not between
    assert refreshed == []  # --once ends its workers when it exits: nothing to make fresh
    # A service, idle after its build, also replaces a conversion worker that grew (convert.refresh_idle)
    (write_case(config.paths.inbox, "CASE-TRIM-C") / "a.txt").write_text("a")
    code, _ = _in_process(config, stop_after=lambda: refreshed and "CASE-TRIM-C" in refreshed[-1])
    assert code == 0 and all("CASE-TRIM-C" in done for done in refreshed)


def test_once_waits_for_files_to_settle_and_exits(config, monkeypatch):
    built = []

    def fake_build(case_dir, config, *, settled=None, give_up=frozenset(), now=None, **hooks):
        sources = scan(case_dir)
        built.append([s.relpath for s in sources if settled(s)])
        return SimpleNamespace(documents=[SimpleNamespace(source=s.relpath) for s in sources if settled(s)],
                               newly_rejected=[], transient={}, draft_dir=None)

    monkeypatch.setattr(build_module, "build_case", fake_build)
    case_dir = write_case(config.paths.inbox, "CASE-ONCE")
    (case_dir / "a.txt").write_text("a")
    (case_dir / "b.txt").write_text("b")
    config = replace(config, watch=replace(config.watch, settle_seconds=0.2))
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        assert run_watcher(config, once=True) == 0
    finally:
        service_log.set_stream(None)
    assert built == [["a.txt", "b.txt"]]  # built once, with both files complete
    assert filestate.load(config, "CASE-ONCE").files.keys() == {"a.txt", "b.txt"}


def test_temporary_files_of_killed_writes_are_swept_when_stale(config, monkeypatch):
    monkeypatch.setattr(build_module, "build_case", lambda *a, **k: SimpleNamespace(
        documents=[], newly_rejected=[], transient={}, draft_dir=None))
    case_dir = write_case(config.paths.inbox, "CASE-TMP")
    (case_dir / "_rejected").mkdir()
    (config.paths.outbox / "_print").mkdir(parents=True)
    stale = [case_dir / ".tmp-a1", case_dir / "_rejected" / ".tmp-b2", config.paths.outbox / "_print" / ".tmp-c3",
             config.paths.outbox / ".tmp-d4"]
    fresh = config.paths.outbox / "_print" / ".tmp-e5"  # perhaps a write in progress: kept
    kept = [fresh, case_dir / "_rejected" / "scan.pdf", config.paths.outbox / "_print" / "not-temp.pdf"]
    an_hour_ago = time.time() - 3600
    for path in stale + kept:
        path.write_bytes(b"partial")
        if path is not fresh:
            os.utime(path, (an_hour_ago, an_hour_ago))
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        assert run_watcher(config, once=True) == 0
    finally:
        service_log.set_stream(None)
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert '"temp_files_removed"' in stream.getvalue()


def test_a_changed_template_or_configuration_rebuilds_drafts_after_a_restart(config, tmp_path, monkeypatch):
    builds = []
    monkeypatch.setattr(build_module, "build_case", lambda case_dir, *a, **k: builds.append(case_dir.name) or
                        SimpleNamespace(documents=[], newly_rejected=[], transient={}, draft_dir=None))
    templates = tmp_path / "my-templates"
    templates.mkdir()
    (templates / "letter.html.j2").write_text("Dear member")
    config = replace(config, paths=replace(config.paths, templates=templates),
                     watch=replace(config.watch, settle_seconds=0.05))
    write_case(config.paths.inbox, "CASE-TPL")
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        assert run_watcher(config, once=True) == 0
        assert run_watcher(config, once=True) == 0  # nothing changed: no build
        assert builds == ["CASE-TPL"]
        (templates / "letter.html.j2").write_text("Dear member, (revised wording)")
        assert run_watcher(config, once=True) == 0
        assert builds == ["CASE-TPL"] * 2
        changed = replace(config, bates=replace(config.bates, digits=7))
        assert run_watcher(changed, once=True) == 0
        assert builds == ["CASE-TPL"] * 3
    finally:
        service_log.set_stream(None)


def test_file_records_survive_a_round_trip(config):
    record = filestate.CaseRecord(case_id="C1").with_file(filestate.FileRecord(
        relpath="a/b.pdf", size=3, mtime_ns=5, sha256="0" * 64, outcome=filestate.TRANSIENT, attempts=2,
        next_try_at=1.5, first_seen=dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc).isoformat()))
    filestate.save(config, replace(record, built_fingerprint="f", build_outcome="built", has_draft=True))
    loaded = filestate.load(config, "C1")
    assert loaded.files == record.files and loaded.built_fingerprint == "f" and loaded.has_draft
    filestate.record_path(config, "C1").write_text("{broken")
    assert filestate.load(config, "C1") == filestate.CaseRecord(case_id="C1")
