"""The mailings, rendered in a pool worker (packet.workers.pool) while this process assembles the IMR packet.

Owns: handing the render job to a warm worker of the "render" role (it has imported the renderers
and loaded their fonts before its first job) and taking the answer back; replacing the worker when
it dies, hangs or has grown large.
Must not: decide or render anything itself. A job runs the very function the caller would run in
this process, on the same inputs, so the bytes are the same either way. When the worker cannot be
used (it cannot start, dies, or answers garbage) `Pending.result` runs the function here instead,
or what the caller says is left of it: a worker failure costs time, never output. An exception
raised by the function itself (a broken template) is raised to the caller as it is.

Why a process and not a thread: reportlab and pypdf are pure Python, so two threads share one core;
the IMR packet (pypdf) and the mailings (reportlab) are independent once the pages are numbered, and
the machine has two cores.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Callable

from packet.log import log
from packet.workers import pool

ROLE = "render"
# What a render job may be (a subset of the pool's JOBS).
JOBS = frozenset({"packet.mailings.layout:render_mailings", "packet.workers.pool:ready"})
# A job that has not answered after this long is abandoned (its worker killed) and raised as an error.
JOB_TIMEOUT_SECONDS = 900.0
# A worker retires after this many jobs, or once its peak memory passes this many MiB.
WORKER_MAX_JOBS = 500
WORKER_MAX_RSS_MIB = 600
# A worker that a job left above this many MiB once it has returned its free memory ends as soon as it has
# answered (75 MiB after its warm-up; 86-90 after a 1,000-page case or a day of cases of up to 300 pages;
# 127-143 after the mailing of a 5,000-page case, most of it freed objects that Python's arenas keep and a
# trim cannot give back). It ends at once, while the build's process may still be writing its packet, the
# tree's other peak; the next large case starts another (START_FOR_PAGES), and smaller ones render in the
# build's process meanwhile.
WORKER_END_ABOVE_MIB = 112

RenderWorkerTimeout = pool.WorkerTimeout


# Starting a render worker is a fresh interpreter importing the renderers and loading their fonts:
# about 0.6 s of CPU before its first job. A worker already waiting is used for any case; a new one
# is started only for a case whose mailings take longer than that to render, known from its pages
# once they are numbered, or guessed from its files' bytes before they are read (a bench case of
# 1,020 pages holds 2.3 MB; a case of a few short letters renders in about 0.1 s in the build's process).
START_FOR_PAGES = 600
START_FOR_BYTES = 1 << 20


def in_use(config) -> bool:
    """Whether builds under `config` may use the render worker: only when a second process is
    allowed (`[limits] workers`, which also bounds the conversion workers)."""
    return config.limits.workers > 1


def worth_starting(config, *, pages: int | None = None, case_bytes: int | None = None) -> bool:
    """Whether a case of `pages` numbered pages (or, before they are known, of files holding
    `case_bytes`) is worth a render worker started for it (see START_FOR_PAGES)."""
    if not in_use(config):
        return False
    if pages is not None:
        return pages >= START_FOR_PAGES
    return case_bytes is not None and case_bytes >= START_FOR_BYTES


def waiting() -> bool:
    """Whether a render worker is waiting for a job (started early, or kept from an earlier build)."""
    return bool(pool.idle_pids(ROLE))


def load_fonts() -> None:
    """In a worker: import the renderers and load the fonts every mailing uses, before the first
    job asks. Never fails (a job loads what is missing itself)."""
    with contextlib.suppress(Exception):
        importlib.import_module("packet.mailings.layout").warm_up()
        importlib.import_module("docx")  # the notice letter


def prestart() -> None:
    """Start the render worker now, if none is waiting, so it has imported and loaded fonts by the
    time a job comes. Never fails: without a worker, jobs run in the caller's process."""
    pool.prestart(ROLE, "packet.workers.render:load_fonts", wait=False)


def warm() -> None:
    """Start the worker if needed and wait until it has warmed up (a service's state after its first
    build; the benchmark calls this before its clock starts, as it imports the library first)."""
    pool.prestart(ROLE, "packet.workers.render:load_fonts", wait=True)


def shutdown() -> None:
    """Stop the waiting render worker."""
    pool.shutdown(ROLE)


def _call(target: str, args: tuple, kwargs: dict) -> Any:
    if target not in JOBS:
        raise ValueError(f"not a render job: {target}")
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)(*args, **kwargs)


class Pending:
    """One job handed to the worker (or, when there is none, to be run by `result` here)."""

    def __init__(self, target: str, args: tuple, kwargs: dict, worker: pool.Worker | None):
        self.target, self.args, self.kwargs = target, args, kwargs
        self.worker = worker

    def cancel(self) -> None:
        """The caller no longer wants the answer (its own part failed): end the worker's job."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop(kill=True)

    def result(self, instead: Callable[[], Any] | None = None) -> Any:
        """The function's return value; its exception is raised here as it was raised there.
        When the worker cannot answer (none was started, it died), `instead()` runs here, by default
        the job itself: a caller that shared the job's work with the worker (claims) says what is
        left to do."""
        worker, self.worker = self.worker, None
        here = instead or (lambda: _call(self.target, self.args, self.kwargs))
        if worker is None:
            return here()
        try:
            answer = worker.wait()
        except pool.WorkerTimeout:
            worker.stop(kill=True)
            log("render_worker.timeout", level="error", seconds=JOB_TIMEOUT_SECONDS)
            raise
        except BaseException:  # interrupted while waiting: the worker's state is unknown
            worker.stop(kill=True)
            raise
        if answer is None:
            worker.stop(kill=True)
            log("render_worker.failed", level="warning", exitcode=worker.process.poll())
            return here()
        status, value, _retire, _rss = answer
        pool.give_back(worker)
        if status == "error":
            raise value
        return value


def submit(target: str, *args: Any, **kwargs: Any) -> Pending:
    """Hand `target(*args, **kwargs)` to the worker and return at once; `.result()` waits for it.

    The arguments must pickle (the project's frozen dataclasses and paths do); the function writes
    its files itself, so only its small return value travels back.
    """
    if target not in JOBS:
        raise ValueError(f"not a render job: {target}")
    for _ in range(2):
        try:
            worker = pool.take(ROLE)
        except OSError:
            return Pending(target, args, kwargs, None)
        try:
            # trim: a mailing with a case's records is the largest thing a worker holds, and the
            # worker idles between builds (packet.workers.pool.return_free_memory)
            sent = worker.send(target, args, kwargs, timeout=JOB_TIMEOUT_SECONDS,
                               retire_above_mib=WORKER_MAX_RSS_MIB, max_jobs=WORKER_MAX_JOBS, trim_above_mib=0,
                               end_above_mib=WORKER_END_ABOVE_MIB)
        except Exception:  # noqa: BLE001 - an argument that cannot travel (pickle): run it here instead
            pool.give_back(worker)
            return Pending(target, args, kwargs, None)
        if sent:
            return Pending(target, args, kwargs, worker)
        worker.stop(kill=True)
    return Pending(target, args, kwargs, None)
