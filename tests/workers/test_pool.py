"""The one worker pool (packet.workers.pool): fresh interpreters in their own process group, one
protocol for every role, a job's memory limit in force only while it runs, named jobs only, idle
workers kept per role and ended on shutdown."""

from __future__ import annotations

import os
import pickle
import time

import pytest

from packet.workers import pool

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def no_idle_workers():
    pool.shutdown()
    yield
    pool.shutdown()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_worker_is_a_fresh_interpreter_leading_its_own_process_group():
    worker = pool.Worker("convert")
    try:
        assert worker.send("packet.workers.pool:ready")
        assert worker.wait(time.monotonic() + 60)[:2] == ("ok", True)
        with open(f"/proc/{worker.process.pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\x00")
        assert argv[1:5] == [b"-m", b"packet.workers.pool", b"--worker", b"convert"]  # exec'd, not forked
        assert os.getpgid(worker.process.pid) == worker.process.pid != os.getpgid(0)
        used = worker.cpu_seconds()  # what the deadline check reads: the whole group's CPU time
        assert used is not None and 0 < used < 60
    finally:
        worker.stop(kill=False)
    assert not _alive(worker.process.pid)


def test_the_memory_limit_holds_only_while_its_job_runs():
    worker = pool.Worker("convert")
    try:
        worker.send("packet.workers.pool:memory_limit", memory_mib=700)
        assert worker.wait(time.monotonic() + 60)[:2] == ("ok", 700 * MIB)
        worker.send("packet.workers.pool:memory_limit")  # e.g. a render job after a conversion
        assert worker.wait(time.monotonic() + 60)[:2] == ("ok", None)
    finally:
        worker.stop(kill=True)


def test_only_named_jobs_run_on_either_side():
    worker = pool.Worker("render")
    try:
        with pytest.raises(ValueError, match="not a worker job"):
            worker.send("os:system", ("true",))
        payload = pickle.dumps(("os:system", ("touch /tmp/pool-should-not-exist",), {}, {}))
        worker.process.stdin.write(len(payload).to_bytes(8, "big") + payload)  # a forged request
        worker.process.stdin.flush()
        worker.deadline = time.monotonic() + 60
        status, error, _, _ = worker.wait()
        assert status == "error" and isinstance(error, ValueError) and "not a worker job" in str(error)
    finally:
        worker.stop(kill=True)


def test_a_job_past_its_deadline_raises_and_the_worker_can_be_killed():
    worker = pool.Worker("render")
    try:
        worker.send("packet.workers.pool:ready", timeout=60)
        worker.wait()
        worker.send("packet.workers.pool:ready", timeout=0.0)
        with pytest.raises(pool.WorkerTimeout):
            worker.wait()
    finally:
        worker.stop(kill=True)
    assert not _alive(worker.process.pid)


def test_idle_workers_are_kept_per_role_reused_and_stopped():
    pool.prestart("convert", "packet.workers.pool:ready", wait=True, count=3)
    pool.prestart("render", "packet.workers.pool:ready", wait=False)
    converting, rendering = pool.idle_pids("convert"), pool.idle_pids("render")
    assert len(converting) == len(rendering) == pool.IDLE_PER_ROLE == 1
    taken = pool.take("render")
    assert taken.process.pid == rendering[0] and pool.idle_pids("render") == []
    taken.send("packet.workers.pool:memory_limit")  # answered after the skipped warm-up answer
    assert taken.wait(time.monotonic() + 60)[:2] == ("ok", None)
    assert pool.give_back(taken) and pool.idle_pids("render") == rendering
    extra = pool.Worker("render")
    assert not pool.give_back(extra), "one idle worker per role"
    pool.shutdown()
    assert pool.idle_pids() == []
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in converting + rendering + [extra.process.pid]):
        assert time.monotonic() < deadline, "an idle worker outlived shutdown"
        time.sleep(0.05)


def test_a_worker_ends_with_status_0_once_its_input_closes_after_answering_every_job():
    worker = pool.Worker("convert")
    for _ in range(3):
        assert worker.send("packet.workers.pool:ready")
        assert worker.wait(time.monotonic() + 60)[:2] == ("ok", True)
    worker.process.stdin.close()
    assert worker.process.wait(timeout=30) == 0
    worker.stop(kill=True)


def test_shutdown_tells_every_idle_worker_to_end_before_it_waits_for_any(monkeypatch):
    pool.prestart("convert", "packet.workers.pool:ready", wait=True)
    pool.prestart("render", "packet.workers.pool:ready", wait=True)
    leaving = list(pool._idle)  # noqa: SLF001 - the idle workers shutdown is about to stop
    assert len(leaving) == 2
    closed_at_first_stop: list[list[bool]] = []
    real_stop = pool.Worker.stop

    def stop(self, *, kill):
        if not closed_at_first_stop:
            closed_at_first_stop.append([worker.process.stdin.closed for worker in leaving])
        real_stop(self, kill=kill)

    monkeypatch.setattr(pool.Worker, "stop", stop)
    pool.shutdown()
    assert closed_at_first_stop == [[True, True]], "the workers end side by side, not one after another"
    assert all(worker.process.poll() == 0 for worker in leaving)


def test_let_go_ends_idle_workers_without_waiting_and_shutdown_reaps_them(monkeypatch):
    pool.prestart("convert", "packet.workers.pool:ready", wait=True)
    pool.prestart("render", "packet.workers.pool:ready", wait=True)
    leaving = list(pool._idle)  # noqa: SLF001
    waited: list[int] = []
    real_wait = pool.subprocess.Popen.wait

    def wait(self, timeout=None):
        waited.append(self.pid)
        return real_wait(self, timeout)

    monkeypatch.setattr(pool.subprocess.Popen, "wait", wait)
    pool.let_go()
    assert waited == [], "let_go must not wait for a worker"
    assert pool.idle_pids() == [] and all(worker.process.stdin.closed for worker in leaving)
    fresh = pool.take("convert")  # a job after let_go gets a new worker, never one that is leaving
    try:
        assert fresh.process.pid not in [worker.process.pid for worker in leaving]
        assert fresh.send("packet.workers.pool:ready") and fresh.wait(time.monotonic() + 60)[:2] == ("ok", True)
    finally:
        fresh.stop(kill=True)
    pool.shutdown()
    assert {worker.process.pid for worker in leaving} <= set(waited), "shutdown waits for the leaving workers"
    assert all(worker.process.returncode == 0 for worker in leaving), "ended by their closed input, and reaped"
    assert pool._leaving == []  # noqa: SLF001


def test_a_worker_and_what_it_starts_never_write_a_core_file(monkeypatch):
    # A parser crashing on a hostile file would write its memory (the records it was reading) into
    # its working folder; the limit is inherited by every program a job starts.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core files are already off for this user")
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))  # as a person's shell may have it
    try:
        worker = pool.Worker("convert")
        try:
            assert worker.send("packet.workers.pool:ready")
            assert worker.wait(time.monotonic() + 60)[:2] == ("ok", True)
            with open(f"/proc/{worker.process.pid}/limits") as handle:
                line = next(row for row in handle if row.startswith("Max core file size"))
            assert line.split()[4:6] == ["0", "0"], line  # soft and hard: the job cannot raise it
        finally:
            worker.stop(kill=True)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


_FRAGMENTED = """
import json, sys
from packet.workers import pool
def rss():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) // 1024
base = rss()
blocks = [bytes(1500) for _ in range(120_000)]   # about 180 MiB from the C heap (not pymalloc's arenas)
kept = blocks[::64]                              # one live block in every 64: the heap cannot shrink from its top
del blocks
before = rss()
pool.return_free_memory()
print(json.dumps({"base": base, "before": before, "after": rss(), "trim": pool._malloc_trim() is not None}))
"""


def test_return_free_memory_hands_a_fragmented_heap_back_to_the_system():
    """After a large job glibc keeps freed memory for the next allocation: an idle process would stay
    at the size of its largest job. Freed pages between live blocks go back."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FRAGMENTED], capture_output=True, text=True, check=True,
                          timeout=120)
    report = json.loads(done.stdout)
    if not report["trim"]:
        pytest.skip("this C library has no malloc_trim (not glibc)")
    held = report["before"] - report["base"]
    assert held > 100  # MiB: the freed blocks were still the process's
    assert report["after"] - report["base"] < held / 3


def test_a_worker_a_job_left_large_answers_and_ends():
    """`end_above_mib`: a worker whose memory after a job is above it, even once it has returned its
    free memory, answers (retiring) and ends at once, giving back everything the job left; below it,
    or after a warm-up, it stays."""
    worker = pool.Worker("render")
    try:
        assert worker.send("packet.workers.pool:ready", end_above_mib=1)  # a warm-up never ends it
        assert worker.wait(time.monotonic() + 60)[:3] == ("ok", True, False)
        assert worker.send("packet.pdf.inspect:scan_outputs", end_above_mib=100_000)
        status, _, retire, _ = worker.wait(time.monotonic() + 60)
        assert status == "error" and not retire and worker.alive()  # a job, and the worker small enough
        assert worker.send("packet.pdf.inspect:scan_outputs", end_above_mib=1)
        status, _, retire, rss = worker.wait(time.monotonic() + 60)
        assert status == "error" and retire and rss > 1
        worker.process.wait(timeout=10)
        assert not worker.alive()
    finally:
        worker.stop(kill=True)


def test_a_worker_asked_to_trim_answers_first_and_then_takes_the_next_job():
    worker = pool.Worker("render")
    try:
        assert worker.send("packet.workers.pool:ready", trim_above_mib=0)
        assert worker.wait(time.monotonic() + 60)[:2] == ("ok", True)
        assert worker.send("packet.workers.pool:memory_limit", trim_above_mib=0)
        assert worker.wait(time.monotonic() + 60)[:2] == ("ok", None)
        assert worker.alive()
    finally:
        worker.stop(kill=False)


def test_an_idle_worker_that_grew_is_replaced_by_a_fresh_one_and_one_that_did_not_is_kept(monkeypatch):
    """`refresh_idle`: a service gone idle replaces an idle worker above the bound with a fresh one,
    warmed before the grown one is let go (and reaped: no zombie is left among the service's
    children); a worker below the bound, or of another role, stays."""
    pool.prestart("convert", "packet.workers.pool:ready", wait=True)
    pool.prestart("render", "packet.workers.pool:ready", wait=True)
    [first] = pool.idle_pids("convert")
    [render] = pool.idle_pids("render")
    size = pool.status_mib("VmRSS", first)
    assert size is not None and size > 4  # read from the system, not the worker's own report
    assert pool.refresh_idle("convert", "packet.workers.pool:ready", above_mib=size * 4) == 0
    assert pool.idle_pids("convert") == [first]
    told: list[tuple[list[int], list[int]]] = []  # (workers told to go, idle workers then)
    real_leave = pool._leave  # noqa: SLF001
    monkeypatch.setattr(pool, "_leave", lambda leaving: told.append(
        ([worker.process.pid for worker in leaving], pool.idle_pids("convert"))) or real_leave(leaving))
    assert pool.refresh_idle("convert", "packet.workers.pool:ready", above_mib=size / 4) == 1
    assert told[0][0] == [first]
    assert len(told[0][1]) == 1 and told[0][1][0] != first, "the fresh worker was warm before the grown one left"
    assert not os.path.exists(f"/proc/{first}") and pool._leaving == [], "ended by its closed input, and reaped"  # noqa: SLF001
    [fresh] = pool.idle_pids("convert")
    assert fresh != first and pool.idle_pids("render") == [render]
    worker = pool.take("convert")  # the fresh one answers its warm-up, then the job
    try:
        assert worker.process.pid == fresh
        assert worker.send("packet.workers.pool:ready") and worker.wait(time.monotonic() + 60)[:2] == ("ok", True)
    finally:
        worker.stop(kill=False)


_PARENT = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from helpers import make_config, make_pdf
from packet.intake.convert.batch import convert_many
from packet.model.models import SourceFile
root = Path(sys.argv[2])
pdf = make_pdf(root / "record.pdf", ["Progress note"])
source = SourceFile(relpath="record.pdf", path=pdf, size=pdf.stat().st_size, mtime_ns=pdf.stat().st_mtime_ns)
convert_many([source], make_config(root / "service"))  # its text: the fake pdftotext, which never ends
"""


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except FileNotFoundError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


def test_a_worker_whose_parent_was_killed_ends_with_what_its_job_started(tmp_path):
    """kill -9 of a command-line build (or of the service) in the middle of a conversion: its
    worker, and the program the job was waiting for, end within seconds instead of running on."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    (fake_bin / "pdftotext").write_text("#!/bin/sh\nexec sleep 300\n")  # a reading that takes its time
    (fake_bin / "pdftotext").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    tests_dir = str(Path(__file__).resolve().parents[1])
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, tests_dir, str(tmp_path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers, sleeper, worker = [], None, None
        while time.monotonic() < deadline and sleeper is None:  # the worker, and its pdftotext under way
            workers = [pid for pid in _children(parent.pid) if pid != parent.pid]
            sleeper = next((child for pid in workers for child in _children(pid)
                            if _alive(child) and b"sleep" in _cmdline(child)), None)
            time.sleep(0.05)
        assert sleeper is not None, "the conversion never reached its pdftotext"
        worker = next(w for w in workers if sleeper in _children(w))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone_by = time.monotonic() + 10
        while time.monotonic() < gone_by and (_alive(worker) or _alive(sleeper)):
            time.sleep(0.05)
        assert not _alive(worker), "the worker went on after its parent died"
        assert not _alive(sleeper), "the program its job started went on after the parent died"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in (worker, sleeper):  # a failed run leaves nothing behind either
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)
