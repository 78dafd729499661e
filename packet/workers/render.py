"""The mailings, rendered in a second process while this one assembles the IMR packet.

Owns: one long-lived render worker (a fresh interpreter running this module, like the conversion
workers: a threaded service is never forked) that imports the renderers and loads their fonts
before its first job; handing it one call at a time (a function named in JOBS and its arguments,
pickled, on the worker's standard input) and taking the answer back; replacing it when it dies,
hangs or has grown large.
Must not: decide or render anything itself. A job runs the very function the caller would run in
this process, on the same inputs, so the bytes are the same either way. When the worker cannot be
used (it cannot start, dies, or answers garbage) `Pending.result` runs the function here instead:
a worker failure costs time, never output. An exception raised by the function itself (a broken
template) is raised to the caller as it is.

Why a process and not a thread: reportlab and pypdf are pure Python, so two threads share one core;
the IMR packet (pypdf) and the mailings (reportlab) are independent once the pages are numbered, and
the machine has two cores.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
import traceback
import warnings
from typing import Any

from packet.intake.convert import status_mib, stop_worker_process, worker_command
from packet.log import log

# What a worker may be asked to run ("module:function"); anything else is refused on both sides.
JOBS = frozenset({"packet.mailings.layout:render_mailings", "packet.workers.render:ready"})
# A job that has not answered after this long is abandoned (its worker killed) and raised as an error.
JOB_TIMEOUT_SECONDS = 900.0
# A worker retires after this many jobs, or once its peak memory passes this many MiB.
WORKER_MAX_JOBS = 500
WORKER_MAX_RSS_MIB = 600

_HEADER = struct.Struct(">Q")


class RenderWorkerTimeout(Exception):
    """Raised in the caller when a job did not finish within JOB_TIMEOUT_SECONDS."""


def in_use(config) -> bool:
    """Whether builds under `config` use the render worker: only when a second process is allowed
    (`[limits] workers`, which also bounds the conversion workers)."""
    return config.limits.workers > 1


def ready() -> bool:
    """A job that does nothing: its answer says the worker has started and warmed up."""
    return True


def warm() -> None:
    """Start the worker if needed and wait until it has warmed up (a service's state after its first
    build; the benchmark calls this before its clock starts, as it imports the library first)."""
    submit("packet.workers.render:ready").result()


def _call(target: str, args: tuple, kwargs: dict) -> Any:
    if target not in JOBS:
        raise ValueError(f"not a render job: {target}")
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)(*args, **kwargs)


def _write_frame(stream, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(stream, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


class _Worker:
    """The parent's side of one worker process."""

    def __init__(self) -> None:
        command, env = worker_command("packet.workers.render")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, payload: bytes) -> bool:
        try:
            _write_frame(self.process.stdin, payload)
            return True
        except (OSError, ValueError):
            return False

    def receive(self, deadline: float) -> bytes | None:
        """One answer frame, or None when the worker ended without one. Raises RenderWorkerTimeout."""
        stdout = self.process.stdout
        buffer = b""
        needed = _HEADER.size
        length: int | None = None
        while True:
            if len(buffer) >= needed:
                if length is None:
                    length = _HEADER.unpack(buffer[:_HEADER.size])[0]
                    buffer = buffer[_HEADER.size:]
                    needed = length
                    continue
                return buffer[:length]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RenderWorkerTimeout()
            ready, _, _ = select.select([stdout], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(stdout.fileno(), max(65536, needed - len(buffer)))
            if not chunk:
                return None
            buffer += chunk

    def stop(self, *, kill: bool) -> None:
        stop_worker_process(self.process, kill=kill)
        with contextlib.suppress(OSError, ValueError):
            self.process.stdout.close()


_lock = threading.Lock()
_idle: _Worker | None = None  # the warm worker waiting for its next job


def prestart() -> None:
    """Start the worker now, if none is waiting, so it has imported and loaded fonts by the time a
    job comes. Never fails: without a worker, jobs run in the caller's process."""
    global _idle
    with _lock:
        if _idle is not None and _idle.alive():
            return
        if _idle is not None:  # it died while waiting: reap it
            _idle.stop(kill=True)
        try:
            _idle = _Worker()
        except OSError:
            _idle = None


def shutdown() -> None:
    """Stop the waiting worker (it also ends by itself when this process's end of its pipe closes)."""
    global _idle
    with _lock:
        worker, _idle = _idle, None
    if worker is not None:
        worker.stop(kill=False)


atexit.register(shutdown)


class Pending:
    """One job handed to the worker (or, when there is none, to be run by `result` here)."""

    def __init__(self, target: str, args: tuple, kwargs: dict, worker: _Worker | None):
        self.target, self.args, self.kwargs = target, args, kwargs
        self.worker = worker
        self.deadline = time.monotonic() + JOB_TIMEOUT_SECONDS

    def cancel(self) -> None:
        """The caller no longer wants the answer (its own part failed): end the worker's job."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop(kill=True)

    def result(self) -> Any:
        """The function's return value; its exception is raised here as it was raised there."""
        global _idle
        worker, self.worker = self.worker, None
        if worker is None:
            return _call(self.target, self.args, self.kwargs)
        try:
            frame = worker.receive(self.deadline)
        except RenderWorkerTimeout:
            worker.stop(kill=True)
            log("render_worker.timeout", level="error", seconds=JOB_TIMEOUT_SECONDS)
            raise
        except BaseException:  # interrupted while waiting: the worker's state is unknown
            worker.stop(kill=True)
            raise
        answer = None
        if frame is not None:
            with contextlib.suppress(Exception):
                answer = pickle.loads(frame)
        if not (isinstance(answer, tuple) and len(answer) == 3 and answer[0] in ("ok", "error")):
            worker.stop(kill=True)
            log("render_worker.failed", level="warning", exitcode=worker.process.poll())
            return _call(self.target, self.args, self.kwargs)
        status, value, retire = answer
        with _lock:
            if retire or not worker.alive() or (_idle is not None and _idle is not worker):
                keep = False
            else:
                keep = _idle is None
                if keep:
                    _idle = worker
        if not keep:
            worker.stop(kill=False)
        if status == "error":
            raise value
        return value


def submit(target: str, *args: Any, **kwargs: Any) -> Pending:
    """Hand `target(*args, **kwargs)` to the worker and return at once; `.result()` waits for it.

    The arguments must pickle (the project's frozen dataclasses and paths do); the function writes
    its files itself, so only its small return value travels back.
    """
    global _idle
    if target not in JOBS:
        raise ValueError(f"not a render job: {target}")
    try:
        payload = pickle.dumps((target, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an argument that cannot travel: run it here instead
        return Pending(target, args, kwargs, None)
    with _lock:
        worker, _idle = _idle, None
    for attempt in range(2):
        if worker is None or not worker.alive():
            if worker is not None:
                worker.stop(kill=True)
            try:
                worker = _Worker()
            except OSError:
                return Pending(target, args, kwargs, None)
        if worker.send(payload):
            return Pending(target, args, kwargs, worker)
        worker.stop(kill=True)
        worker = None
    return Pending(target, args, kwargs, None)


# --------------------------------------------------------------------------------------------
# Worker side


def _warm_up() -> None:
    """Import the renderers and load the fonts every mailing uses, before the first job asks."""
    with contextlib.suppress(Exception):
        from packet.mailings import layout as mailings

        mailings.warm_up()
        import docx  # noqa: F401 - the notice letter


def _worker_main() -> int:
    """`python -m packet.workers.render --worker`: answer jobs from standard input until it closes.

    Answers go back on the original standard output, which nothing else may write to: it is moved
    aside and fd 1 points to /dev/null, so a stray print from a library cannot garble a reply.
    Nothing here logs: the service log belongs to the parent.
    """
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = sys.stderr
    _warm_up()
    requests = sys.stdin.buffer
    done = 0
    while True:
        header = _read_exact(requests, _HEADER.size)
        if header is None:
            return 0
        frame = _read_exact(requests, _HEADER.unpack(header)[0])
        if frame is None:
            return 0
        target, args, kwargs = pickle.loads(frame)
        try:
            outcome: tuple = ("ok", _call(target, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - the caller raises it, with this traceback as a note
            exc.add_note("raised in the render worker:\n" + "".join(traceback.format_exception(exc)))
            outcome = ("error", exc)
        done += 1
        retire = done >= WORKER_MAX_JOBS or (status_mib("VmHWM") or 0.0) > WORKER_MAX_RSS_MIB
        try:
            payload = pickle.dumps((*outcome, retire), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - a value that does not pickle: say what failed
            failed = outcome[1] if outcome[0] == "error" else None
            text = "".join(traceback.format_exception(failed)) if failed is not None else "unpicklable result"
            payload = pickle.dumps(("error", RuntimeError(f"render job failed: {text}"), True))
        _write_frame(replies, payload)
        if retire:
            return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker_main())
    sys.exit("usage: python -m packet.workers.render --worker (started by the service, not by people)")
