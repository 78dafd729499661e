"""The one worker pool: fresh interpreters (never a fork of the threaded service) that run named jobs.

Owns: starting a worker (`python -m packet.workers.pool --worker`, in its own process group, its
input and output pipes the only channel), the protocol (one length-prefixed pickle frame per
request and per answer), a job's hard memory limit (RLIMIT_AS for the job's duration, inherited by
any program the job starts), no core files from a worker or what it starts, retiring workers that grew or ran many jobs, keeping warm idle workers
between builds (one per role: "convert", "render"), replacing an idle one that grew with a fresh one, and stopping them, with
everything they started; a worker whose parent has died ends at once, with everything it started.
Also `return_free_memory`, which a process calls once it has gone idle after a large job.

Why not concurrent.futures.ProcessPoolExecutor: a job past its deadline must be killed together
with the programs it started (LibreOffice, qpdf, pdftotext) while the pool's other workers go on,
and a warm worker must survive between builds; a process group per worker does both.

Must not: decide what a job does (jobs are named "module:function" and must be in JOBS, on both
sides), log anything in the worker (the service log belongs to the parent), or hand a job a file
name on a command line.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import gc
import hashlib
import importlib
import json
import logging
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

from packet.fsutil import no_core_files

# What a worker may be asked to run; anything else is refused on both sides.
JOBS = frozenset({"packet.intake.convert.worker:run_job", "packet.intake.convert.worker:warm",
                  "packet.mailings.layout:render_mailings", "packet.workers.render:load_fonts",
                  "packet.pdf.inspect:scan_outputs",
                  "packet.workers.pool:ready", "packet.workers.pool:memory_limit"})
WARM_UPS = frozenset({"packet.intake.convert.worker:warm", "packet.workers.render:load_fonts",
                      "packet.workers.pool:ready", "packet.workers.pool:memory_limit"})  # not counted as jobs done
# Idle workers kept between builds, per role (each holds ~45 MiB while the next build merges the packet).
IDLE_PER_ROLE = 1

_HEADER = struct.Struct(">Q")
_MIB = 1024 * 1024


class WorkerTimeout(Exception):
    """Raised by Worker.wait when the job's deadline passed (the caller kills the worker)."""


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; absent elsewhere (musl, macOS)
    except (AttributeError, OSError):
        return None


def return_free_memory() -> None:
    """Collect Python's unreachable cycles, then hand the C heap's free pages back to the system.

    After a large job (a 1,000-page mailing, a case's build) glibc keeps the freed memory in its
    heap for the next allocation, so an idle process stays at the size of its largest job; over a
    day of cases of every size its RSS only grows. Called when a process has just gone idle, never
    in the middle of a build (a collection there walks the live object graph, see
    packet.pdf.builder.collector_paused)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def ready() -> bool:
    """A job that does nothing: its answer says the worker has started."""
    return True


def memory_limit() -> int | None:
    """A job that reports the address-space limit it runs under, in bytes (None: unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


# Variables a worker is not given, so that they do not make a kept worker look started under
# another environment: the service's settings (IMR_*), which its process has read into its
# configuration (a job carries what it needs), and pytest's note of the test and phase running now
# (new at every setup, call and teardown).
NOT_FOR_WORKERS = frozenset({"PYTEST_CURRENT_TEST"})
NOT_FOR_WORKERS_PREFIX = "IMR_"
PARENT_ENV = "PACKET_WORKER_PARENT"  # the pid of the process that started a worker (not IMR_*: those are settings)
PARENT_CHECK_SECONDS = 1.0


def worker_command(role: str) -> tuple[list[str], dict[str, str]]:
    """A fresh interpreter running the pool's worker side: no fork, no shared state. The role is
    on its command line only so that people (and tests) can tell the workers apart."""
    env = {name: value for name, value in os.environ.items()
           if name not in NOT_FOR_WORKERS and not name.startswith(NOT_FOR_WORKERS_PREFIX)}
    project_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONWARNINGS"] = "ignore"
    env[PARENT_ENV] = str(os.getpid())
    return [sys.executable, "-m", "packet.workers.pool", "--worker", role], env


def _environment_key(command: list[str], env: dict[str, str]) -> str:
    """Workers inherit PATH and the rest at start: one started under another environment (a
    test's fake soffice, a changed PATH) is not reused."""
    return hashlib.sha256(json.dumps([command, sorted(env.items())]).encode("utf-8")).hexdigest()


def status_mib(field: str, pid: int | str = "self") -> float | None:
    """A memory figure of this process (or of process `pid`) from /proc/PID/status, in MiB
    ("VmHWM": its peak, "VmRSS": now), or None where there is no such file. Linux carries getrusage's
    ru_maxrss across fork and exec, so a worker started by a large process would seem large from
    birth; these belong to the process's own address space."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def group_cpu_seconds(group: int) -> float | None:
    """CPU seconds of the processes in process group `group` (with their reaped children's)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, found = 0, False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 14 and int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ...
            found = True
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / ticks if found else None


class Worker:
    """The parent's side of one worker process: its pipes and the job it is doing now."""

    def __init__(self, role: str):
        command, env = worker_command(role)
        self.role = role
        self.key = _environment_key(command, env)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        self.pipe = self.process.stdout
        self._buffer = b""
        self._skip = 0  # answers still to come for jobs nobody waits for (a warm-up)
        self.job: Any = None  # the caller's note of the job in hand
        self.started = 0.0
        self.deadline = float("inf")
        self.rss_mib = 0.0  # its memory after the last job, as it reported
        self.retiring = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, target: str, args: tuple = (), kwargs: dict | None = None, *, timeout: float | None = None,
             memory_mib: int | None = None, retire_above_mib: float = 600.0, max_jobs: int = 500,
             wait_for_answer: bool = True, trim_above_mib: float | None = None,
             end_above_mib: float | None = None) -> bool:
        """Hand over one job; False when the worker is gone (the caller replaces it).
        `memory_mib` caps the worker's address space while the job runs. `trim_above_mib`: once it
        has answered, a worker whose RSS is above this returns its free memory to the system
        (`return_free_memory`; 0: after every job). `end_above_mib`: a worker whose RSS after the job
        is above this returns its free memory before it answers, and if it still holds more, answers
        and ends at once (retires): what a large job leaves in Python's memory arenas, a trim cannot
        give back, and an ended worker gives back all of it while its caller may still be at its own
        peak."""
        if target not in JOBS:
            raise ValueError(f"not a worker job: {target}")
        options = {"memory_mib": memory_mib, "retire_above_mib": retire_above_mib, "max_jobs": max_jobs,
                   "trim_above_mib": trim_above_mib, "end_above_mib": end_above_mib}
        payload = pickle.dumps((target, args, kwargs or {}, options), protocol=pickle.HIGHEST_PROTOCOL)
        self.started = time.monotonic()
        self.deadline = self.started + timeout if timeout is not None else float("inf")
        try:
            self.process.stdin.write(_HEADER.pack(len(payload)) + payload)
            self.process.stdin.flush()
        except (OSError, ValueError):
            return False
        if not wait_for_answer:
            self._skip += 1
        return True

    def poll(self) -> tuple[bool, tuple | None]:
        """After the pipe is readable: (still alive, the answer if a whole one has arrived).
        An answer is (status "ok" or "error", value, retire, rss_mib)."""
        try:
            data = os.read(self.pipe.fileno(), 1 << 20)
        except OSError:
            data = b""
        if not data:
            return False, None
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            length = _HEADER.unpack_from(self._buffer)[0]
            if len(self._buffer) < _HEADER.size + length:
                break
            frame = self._buffer[_HEADER.size:_HEADER.size + length]
            self._buffer = self._buffer[_HEADER.size + length:]
            try:
                answer = pickle.loads(frame)
            except Exception:  # noqa: BLE001 - garbage: the worker cannot be trusted any more
                return False, None
            if not (isinstance(answer, tuple) and len(answer) == 4 and answer[0] in ("ok", "error")):
                return False, None
            self.retiring = self.retiring or bool(answer[2])
            self.rss_mib = float(answer[3] or 0.0)
            if self._skip:
                self._skip -= 1
                continue
            return True, answer
        return True, None

    def wait(self, deadline: float | None = None) -> tuple | None:
        """Block until the answer of the job in hand; None when the worker ended without one."""
        deadline = self.deadline if deadline is None else deadline
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout()
            ready_now, _, _ = select.select([self.pipe], [], [], min(remaining, 3600.0))
            if not ready_now:
                continue
            alive, answer = self.poll()
            if answer is not None:
                return answer
            if not alive:
                return None

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the worker's process group: the worker, what it started and is
        still running (LibreOffice, pdftotext, qpdf) and what it has reaped. None where /proc is missing."""
        return group_cpu_seconds(self.process.pid)

    def stop(self, *, kill: bool) -> None:
        """End the worker: close its input (it exits when idle) or kill its whole process group
        (also anything it started that is still running, such as LibreOffice)."""
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.close()
        if not kill:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.pipe.close()


_idle: list[Worker] = []
_idle_lock = threading.Lock()


def take(role: str) -> Worker:
    """An idle worker of `role` started under this environment, else a new one."""
    command, env = worker_command(role)
    key = _environment_key(command, env)
    with _idle_lock:
        found = None
        for worker in list(_idle):
            if worker.role == role:
                _idle.remove(worker)
                if found is None and worker.key == key and worker.alive():
                    found = worker
                else:
                    worker.stop(kill=True)
    return found if found is not None else Worker(role)


def give_back(worker: Worker, *, keep_below_mib: float | None = None) -> bool:
    """Keep a worker for the next job of its role, if it is alive, not retiring, small enough and
    its role has room; else stop it. True when kept."""
    with _idle_lock:
        keep = (worker.alive() and not worker.retiring
                and (keep_below_mib is None or worker.rss_mib < keep_below_mib)
                and sum(1 for other in _idle if other.role == worker.role) < IDLE_PER_ROLE)
        if keep:
            worker.job = None
            _idle.append(worker)
    if not keep:
        worker.stop(kill=not worker.alive())
    return keep


def prestart(role: str, warm_target: str, *, wait: bool, count: int = IDLE_PER_ROLE,
             warm_timeout: float = 60.0) -> None:
    """Start idle workers of `role` (up to `count`, at most IDLE_PER_ROLE) and have each run
    `warm_target` (imports, fonts); with `wait`, only workers that answered are kept. Never fails."""
    with _idle_lock:
        missing = min(count, IDLE_PER_ROLE) - sum(1 for worker in _idle if worker.role == role and worker.alive())
    started = []
    for _ in range(max(0, missing)):
        with contextlib.suppress(OSError):
            worker = Worker(role)
            if worker.send(warm_target, wait_for_answer=wait):
                started.append(worker)
            else:
                worker.stop(kill=True)
    for worker in started:
        if wait:
            try:
                answer = worker.wait(time.monotonic() + warm_timeout)
            except WorkerTimeout:
                answer = None
            if answer is None or answer[0] != "ok":
                worker.stop(kill=True)
                continue
        give_back(worker)


def idle_pids(role: str | None = None) -> list[int]:
    """The process ids of the idle workers (of one role), for tests and the status board."""
    with _idle_lock:
        return [worker.process.pid for worker in _idle if role is None or worker.role == role]


_leaving: list[Worker] = []  # told to end by `let_go`, not yet waited for


def let_go(role: str | None = None) -> None:
    """Tell every idle worker (of `role`) to end now, without waiting for it: a command-line run that
    needs no more jobs, so that the workers end (their memory freed by the system, 0.03-0.05 s for a
    render worker after a large case) while the run writes its last files; or a build about to hold
    a large packet's objects (packet.pipeline.submission). `shutdown` then waits for them; workers
    let go earlier that have ended meanwhile are reaped here (a service lets go many over a day)."""
    _leave(_take_idle(lambda worker: role is None or worker.role == role))


def refresh_idle(role: str, warm_target: str, *, above_mib: float, warm_timeout: float = 60.0) -> int:
    """Replace the idle workers of `role` that hold more than `above_mib` now (their RSS, as the
    system counts it) with fresh ones warmed by `warm_target`; the number replaced. For a service
    that has gone idle: a worker keeps, for the rest of its life, the libraries its largest job
    imported and what that job left in Python's memory arenas (which neither a collection nor a
    trim gives back), while the next job needs only a fresh worker. The fresh ones are started and
    warmed first, so the role is never without a warm worker; then the grown ones are let go."""
    grown = _take_idle(lambda worker: worker.role == role
                       and (status_mib("VmRSS", worker.process.pid) or 0.0) > above_mib)
    if grown:
        try:
            prestart(role, warm_target, wait=True, count=len(grown), warm_timeout=warm_timeout)
        finally:
            _leave(grown)
        for worker in grown:  # an idle worker ends as soon as its input closes: reaped now, not left a zombie
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=1.0)
        _leave([])
    return len(grown)


def _take_idle(chosen: Callable[[Worker], bool]) -> list[Worker]:
    """The idle workers `chosen` picks, no longer idle (no job will be given them)."""
    with _idle_lock:
        taken = [worker for worker in _idle if chosen(worker)]
        _idle[:] = [worker for worker in _idle if worker not in taken]
    return taken


def _leave(leaving: list[Worker]) -> None:
    """Tell `leaving` to end (their input closed: each ends once idle) without waiting; reap the
    workers told earlier that have ended since."""
    with _idle_lock:
        ended = [worker for worker in _leaving if worker.process.poll() is not None]
        _leaving[:] = [worker for worker in _leaving if worker not in ended] + leaving
    for worker in leaving:
        with contextlib.suppress(OSError, ValueError):
            worker.process.stdin.close()
    for worker in ended:
        for pipe in (worker.process.stdin, worker.pipe):
            with contextlib.suppress(OSError, ValueError):
                pipe.close()


def shutdown(role: str | None = None) -> None:
    """Stop the idle workers (each also ends by itself when this process's end of its pipe closes)."""
    with _idle_lock:
        leaving = [worker for worker in _idle if role is None or worker.role == role]
        _idle[:] = [worker for worker in _idle if worker not in leaving]
        if role is None:
            leaving, _leaving[:] = leaving + _leaving, []
    for worker in leaving:  # all told at once: they end side by side, not one after another
        with contextlib.suppress(OSError, ValueError):
            worker.process.stdin.close()
    for worker in leaving:
        worker.stop(kill=False)


atexit.register(shutdown)


# --------------------------------------------------------------------------------------------
# Worker side


def _call(target: str, args: tuple, kwargs: dict) -> Any:
    if target not in JOBS:
        raise ValueError(f"not a worker job: {target}")
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)(*args, **kwargs)


def _read_exact(stream, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _set_address_space(limit_bytes: int | None, original: tuple[int, int]) -> None:
    soft, hard = original
    if limit_bytes is None:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    else:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes if hard == resource.RLIM_INFINITY
                                                else min(limit_bytes, hard), hard))


def _end_with_parent(parent: int) -> None:
    """In a worker, on a thread of its own: once the process that started it has died (kill -9 of a
    command-line build or of the service), the worker ends at once with every program its job
    started. Its job is nobody's any more, and a scan's OCR or a LibreOffice run would otherwise go
    on for minutes, using a core and writing into state/work/ after a restarted service swept it.
    `os.getppid()` is the process's parent whichever thread started it (a parent-death signal would
    follow the starting thread, and threads of the service start workers and end)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    if os.getpgrp() == os.getpid():  # the pool starts each worker leading its own group
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent() -> None:
    try:
        parent = int(os.environ.get(PARENT_ENV, ""))
    except ValueError:
        return  # not started by the pool (a person running the module): nothing to follow
    previous = threading.stack_size(256 * 1024)  # a small stack: a job's memory limit counts every byte mapped
    try:
        threading.Thread(target=_end_with_parent, args=(parent,), name="end-with-parent", daemon=True).start()
    finally:
        threading.stack_size(previous)


def _worker_main() -> int:
    """`python -m packet.workers.pool --worker`: answer jobs from standard input until it closes.

    Answers go back on the original standard output, which nothing else may write to: it is moved
    aside and fd 1 points to /dev/null, so a stray print from a library cannot garble an answer.
    """
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # library warnings may quote document text; never log them
    no_core_files(for_good=True)  # for this worker and every program a job starts (pdftotext, qpdf, ...)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = sys.stderr
    original_limit = resource.getrlimit(resource.RLIMIT_AS)
    _watch_parent()
    requests = sys.stdin.buffer
    done = 0
    while True:
        header = _read_exact(requests, _HEADER.size)
        if header is None:
            return 0
        frame = _read_exact(requests, _HEADER.unpack(header)[0])
        if frame is None:
            return 0
        target, args, kwargs, options = pickle.loads(frame)
        memory_mib = options.get("memory_mib")
        asked_to_retire = False
        try:
            _set_address_space(int(memory_mib) * _MIB if memory_mib else None, original_limit)
            outcome: tuple = ("ok", _call(target, args, kwargs))
        except MemoryError:
            asked_to_retire = True
            outcome = ("error", MemoryError(f"the job needed more than its {memory_mib} MiB memory limit"))
        except Exception as exc:  # noqa: BLE001 - the caller raises it, with this traceback as a note
            exc.add_note("raised in a pool worker:\n" + "".join(traceback.format_exception(exc)))
            outcome = ("error", exc)
        finally:
            _set_address_space(None, original_limit)
        if outcome[0] == "ok" and isinstance(outcome[1], dict) and outcome[1].get("retire"):
            asked_to_retire = True
        if target not in WARM_UPS:
            done += 1
        peak = status_mib("VmHWM") or 0.0
        now = status_mib("VmRSS")
        end_above, trimmed, ends = options.get("end_above_mib"), False, False
        if end_above is not None and target not in WARM_UPS and now is not None and now > float(end_above):
            # Above the bound: first what glibc's heap can give back (the caller waits for this one trim);
            # the worker ends only if what it still holds is above the bound.
            return_free_memory()
            trimmed, now = True, status_mib("VmRSS")
            ends = now is not None and now > float(end_above)
        retire = (asked_to_retire or done >= int(options.get("max_jobs") or 500)
                  or peak > float(options.get("retire_above_mib") or 600.0) or ends)
        try:
            payload = pickle.dumps((*outcome, retire, now if now is not None else 1e9),
                                   protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - a value that does not pickle: say what failed
            failed = outcome[1] if outcome[0] == "error" else None
            text = "".join(traceback.format_exception(failed)) if failed is not None else "unpicklable result"
            payload = pickle.dumps(("error", RuntimeError(f"worker job failed: {text}"), True, 1e9))
        replies.write(_HEADER.pack(len(payload)) + payload)
        if retire:
            return 0
        trim_above = options.get("trim_above_mib")
        if trim_above is not None and not trimmed and (now is None or now > float(trim_above)):
            return_free_memory()  # after the answer: the caller does not wait for it


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"] and len(sys.argv) <= 3:
        code = _worker_main()
        # Its answers are written (unbuffered) and each job removed what it made, so a worker ends at
        # once: tearing its interpreter down object by object took 0.03-0.15 s that its parent, a
        # command-line run about to exit, waited for.
        sys.stderr.flush()
        os._exit(code)
    sys.exit("usage: python -m packet.workers.pool --worker ROLE (started by the service, not by people)")
