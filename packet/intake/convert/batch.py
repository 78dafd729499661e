"""Converting a case's files: the public entry (convert, convert_many), in the service's process.

Owns: hashing each file (memoised by its stat), answering unchanged files from the cache, the file
size limit, scheduling one job per distinct content on the "convert" workers of packet.workers.pool
(longest first, each with a deadline), and the refusals of jobs whose worker timed out or died.
Must not: open a file's content beyond hashing it (every parse runs in a worker, under the memory
and time limits), log file names or text.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import tempfile
import time
from collections import deque
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from packet.config import Config
from packet.errors import OcrError, RefusedFile
from packet.fsutil import NotPlainFile, ensure_dir, file_size, open_plain_file, short_hash
from packet.intake import cache
from packet.intake.convert.job import Job, make_job
from packet.intake.convert.ocr_hook import read_progress
from packet.intake.convert.refusals import megabytes, not_plain_refusal, refusal, timeout_refusal, too_many_pages
from packet.intake.convert.worker import hash_handle
from packet.intake.ocr import conversion_key
from packet.log import log
from packet.model.models import Converted, SourceFile
from packet.workers import pool

ROLE = "convert"
JOB = "packet.intake.convert.worker:run_job"
WARM_UP = "packet.intake.convert.worker:warm"
# A worker takes job after job; it retires (and a fresh one takes its place) after this many jobs
# or once its peak memory passes this many MiB, so one huge file does not pin memory for the rest.
WORKER_MAX_JOBS = 200
WORKER_MAX_RSS_MIB = 400
# A job at its deadline that has used less than this share of it in CPU while the machine is
# overloaded gets STARVED_STEP more of its limit, up to STARVED_MAX times the limit in all.
STARVED_CPU_SHARE = 0.5
STARVED_STEP = 0.5
STARVED_MAX = 3.0
# Idle workers stay for the next build while their memory now is below this (see pool.IDLE_PER_ROLE).
WORKER_KEEP_RSS_MIB = 150
# A worker above this once it has answered (an OCR'd scan, a large file; idle it holds about 45 MiB)
# hands its freed memory back (packet.workers.pool.return_free_memory), not after every small file:
# a collection costs a few milliseconds the next job would wait for.
WORKER_TRIM_ABOVE_MIB = 64
# A service gone idle replaces an idle worker above this (`refresh_idle`): one that has read a scan
# holds 72-77 MiB for the rest of its life (the imaging libraries it imported, what the pages left in
# Python's arenas), a fresh one about 45 MiB, one that has converted only text PDFs and DOCX about 47.
WORKER_REFRESH_ABOVE_MIB = 64
REFRESH_WARM_SECONDS = 10.0  # the watcher waits for the fresh one's warm-up (0.3-0.5 s), at most this long
PROGRESS_SECONDS = 1.0  # how often OCR's page progress is looked at while jobs run (when asked for)
# A worker started beside a running one is a fresh interpreter (about 0.2 s of CPU before its first
# file), more than a few small text PDFs take together. It is started when no idle worker is kept
# and the files still waiting hold at least EXTRA_WORKER_BYTES, or once a job has been with its
# worker for EXTRA_WORKER_AFTER seconds (a slow or hanging file never holds up the others for long;
# the clock starts when the job is handed over, so it includes a fresh worker's own start).
EXTRA_WORKER_BYTES = 512 * 1024
EXTRA_WORKER_AFTER = 1.0


def convert(source: SourceFile, config: Config) -> Converted:
    """Convert one file (in a worker process, under the limits); raise RefusedFile if unusable."""
    result = convert_many([source], config)[0]
    if isinstance(result, RefusedFile):
        raise result
    return result


def convert_many(sources: list[SourceFile], config: Config, *,
                 on_result: Callable[[int, Converted | RefusedFile], None] | None = None,
                 on_pages: Callable[[int, int], None] | None = None) -> list[Converted | RefusedFile]:
    """Convert files in parallel (up to `config.limits.workers` processes), in input order.

    A file already seen (same bytes) is answered from the cache without being parsed again. A file
    whose worker exceeds its time limit is refused as "timeout" (final) and its worker killed.
    `on_result(index, result)`, if given, is called once per source in this process as soon as its
    result is known, while the workers go on with the other files (a build classifies documents
    then, so that work overlaps with text extraction); an exception from it stops the conversion.
    `on_pages(done, total)`, if given, hears how many pages OCR has read (or found in its cache) of
    the pages it has to read in the files being converted, about once a second while it reads.
    """
    limits = config.limits
    results: list[Converted | RefusedFile | None] = [None] * len(sources)
    waiting: dict[str, list[int]] = {}  # sha256 -> indexes of sources with that content
    jobs: list[Job] = []
    announce: deque[int] = deque()  # indexes whose result is known but not yet given to on_result
    ocr_key = _ocr_key(config)
    for index, source in enumerate(sources):
        try:
            sha256 = check_and_hash(source, limits.max_file_bytes)
            cached = cache.load(config.cache_dir, sha256, source.path, ocr_key)
            if cached is None:
                if sha256 not in waiting:
                    waiting[sha256] = []
                    jobs.append(make_job(source, sha256, config))
                waiting[sha256].append(index)
                continue
            results[index] = _apply_limits(cached, limits.max_pages)
        except RefusedFile as refused:
            results[index] = refused
        announce.append(index)

    settled: set[str] = set()

    def settle(job: Job, outcome: dict | RefusedFile) -> None:
        settled.add(job.sha256)
        if isinstance(outcome, RefusedFile):
            with contextlib.suppress(OSError):  # not cached: the file is simply tried again next time
                cache.store_refusal(config.cache_dir, job.sha256, outcome)
            log("convert.refused", doc=short_hash(job.sha256), reason=outcome.reason,
                transient=outcome.transient)
        for index in waiting[job.sha256]:
            source = sources[index]
            announce.append(index)
            if isinstance(outcome, RefusedFile):
                results[index] = outcome
                continue
            loaded = cache.load(config.cache_dir, job.sha256, source.path, ocr_key)
            if not isinstance(loaded, Converted):  # the entry vanished under us: try again later
                results[index] = refusal("conversion_failed", "the converted copy could not be read back "
                                         "from the cache", "nothing for now: the service will try again",
                                         transient=True)
                continue
            results[index] = _apply_limits(loaded, limits.max_pages)
        if not isinstance(outcome, RefusedFile):
            log("convert.done", doc=short_hash(job.sha256), kind=outcome.get("kind"),
                pages=outcome.get("pages"), seconds=outcome.get("seconds"))

    def give_one() -> bool:
        """Hand one known result to on_result; True while more are waiting."""
        if on_result is None:
            announce.clear()
            return False
        if announce:
            index = announce.popleft()
            on_result(index, results[index])
        return bool(announce)

    if jobs:
        outcomes = run_jobs(jobs, max(1, limits.workers), on_outcome=settle, on_idle=give_one,
                            on_pages=on_pages)
        for job in jobs:
            if job.sha256 not in settled:
                settle(job, outcomes[job.sha256])
    while give_one():
        pass
    return [r for r in results if r is not None]


def _ocr_key(config: Config) -> Callable[[], str | None]:
    """The current OCR settings' key for the cache, found once and only when a cached entry asks
    (it runs `tesseract --version` and reads the language data); None when the engine is missing:
    pages already read stay as read, since nothing could read them again."""
    found: list[str | None] = []

    def key() -> str | None:
        if not found:
            try:
                found.append(conversion_key(config.ocr))
            except OcrError:
                found.append(None)
        return found[0]
    return key


def prestart(config: Config) -> None:
    """Start the conversion workers a service keeps between builds and wait until each has imported
    its libraries (a service does this once; the benchmark before its clock starts). Never fails."""
    pool.prestart(ROLE, WARM_UP, wait=True, count=max(1, config.limits.workers))


def let_go_idle() -> None:
    """End the idle conversion workers now, without waiting for them: a build about to assemble a
    large packet (packet.pipeline.submission) has nothing left to convert, and an idle worker holds
    45-50 MB meanwhile. The next conversion starts a new worker."""
    pool.let_go(ROLE)


def refresh_idle() -> int:
    """For a service gone idle: replace the idle conversion workers that grew past
    WORKER_REFRESH_ABOVE_MIB with fresh ones (each warmed before the grown one goes: about 0.3 s,
    while nothing is due; a fresh worker not warm within REFRESH_WARM_SECONDS is stopped, and the next
    conversion starts one); how many were replaced."""
    return pool.refresh_idle(ROLE, WARM_UP, above_mib=WORKER_REFRESH_ABOVE_MIB, warm_timeout=REFRESH_WARM_SECONDS)


def shutdown_pool() -> None:
    """Stop the idle conversion workers."""
    pool.shutdown(ROLE)


_HASH_MEMO: dict[tuple, str] = {}  # (path, size, mtime, inode, ctime) -> sha256, for long-running services
_HASH_MEMO_MAX = 20000


def check_and_hash(source: SourceFile, max_file_bytes: int) -> str:
    """The file's SHA-256, after the checks that need no parsing (it is the plain file the walk
    found, not a link; it is not empty, not too large), read from that checked descriptor."""
    try:
        fd = open_plain_file(source.path, source.identity)
    except NotPlainFile as exc:
        raise not_plain_refusal(exc.why) from exc
    except OSError as exc:
        raise _unreadable() from exc
    with os.fdopen(fd, "rb") as handle:
        stat = os.fstat(handle.fileno())
        if stat.st_size == 0:
            raise refusal("empty")
        if stat.st_size > max_file_bytes:
            raise refusal("too_large", f"the file is {megabytes(stat.st_size)} MB, larger than the "
                                       f"{megabytes(max_file_bytes)} MB limit for one file")
        key = (str(source.path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
        sha256 = _HASH_MEMO.get(key)
        if sha256 is None:
            try:
                sha256 = hash_handle(handle)
            except OSError as exc:
                raise _unreadable() from exc
            if len(_HASH_MEMO) >= _HASH_MEMO_MAX:
                _HASH_MEMO.clear()
            _HASH_MEMO[key] = sha256
    return sha256


def _unreadable() -> RefusedFile:
    return refusal("conversion_failed", "the file could not be read (it was moved, deleted or locked "
                                        "while the service was reading it)",
                   "nothing for now: the service will try again", transient=True)


def _apply_limits(converted: Converted | RefusedFile, max_pages: int) -> Converted | RefusedFile:
    if isinstance(converted, Converted) and converted.pages > max_pages:
        return too_many_pages(converted.pages, max_pages)
    return converted


def _send(worker: pool.Worker, job: Job) -> bool:
    worker.job = job
    return worker.send(JOB, (asdict(job),), timeout=job.timeout, memory_mib=job.memory_mib,
                       retire_above_mib=WORKER_MAX_RSS_MIB, max_jobs=WORKER_MAX_JOBS,
                       trim_above_mib=WORKER_TRIM_ABOVE_MIB)


def run_jobs(jobs: list[Job], workers: int, *,
             on_outcome: Callable[[Job, dict | RefusedFile], None] | None = None,
             on_idle: Callable[[], bool] | None = None,
             on_pages: Callable[[int, int], None] | None = None) -> dict[str, dict | RefusedFile]:
    """Run the jobs on at most `workers` pool workers, each job with a deadline and a memory limit.

    A worker takes one job at a time (file paths never appear in the process list), converts it and
    answers; then it takes the next job. A job past its deadline gets its worker killed together
    with any LibreOffice it started and the file is refused as "timeout" (final: the same file would
    hit the same limit again); a fresh worker takes the next job. A job whose worker died is tried
    once more in a fresh worker; dying twice refuses the file for good.
    `on_outcome(job, outcome)` is called as each job ends; `on_idle()` while workers are busy (a
    small piece of the caller's own work; it returns True when it has more, so the wait is short).
    `on_pages(done, total)`: the pages OCR has read of those it has to read, summed over the jobs
    (running jobs report through a progress file in their scratch folder), whenever that changes.
    """
    # Longest first (LibreOffice, then big files), so one slow file does not finish last alone.
    size_of = {job.sha256: file_size(job.path) for job in jobs}
    pending = sorted(jobs, key=lambda job: (-job.timeout, -size_of[job.sha256]))
    idle: list[pool.Worker] = []
    busy: dict = {}  # output pipe of a worker -> the worker
    outcomes: dict[str, dict | RefusedFile] = {}

    # One private folder for this run; a job's scratch folder inside it is only named here and
    # made by the worker if the job needs one (LibreOffice, qpdf): most PDFs need none.
    run_dir: Path | None = None
    serial = 0
    pages_finished = 0  # pages read by OCR in jobs that have ended
    reading: set[int] = set()  # workers whose deadline was extended when their job began OCR
    last_pages = (0, 0)

    def report_pages() -> None:
        nonlocal last_pages
        if on_pages is None:
            return
        running = [read_progress(Path(worker.job.work_dir)) for worker in busy.values() if worker.job is not None]
        now_pages = (pages_finished + sum(done for done, _ in running), pages_finished + sum(total for _, total in running))
        if now_pages != last_pages and now_pages[1]:
            last_pages = now_pages
            on_pages(*now_pages)

    def finish(job: Job, started: float, outcome: dict | RefusedFile, now: float) -> None:
        nonlocal pages_finished
        if isinstance(outcome, dict) and isinstance(outcome.get("ocr_pages"), int):
            pages_finished += outcome["ocr_pages"]
        if os.path.isdir(job.work_dir):
            shutil.rmtree(job.work_dir, ignore_errors=True)
        if isinstance(outcome, dict):
            outcome["seconds"] = round(now - started, 2)
        outcomes[job.sha256] = outcome
        if on_outcome is not None:
            on_outcome(job, outcome)

    def another_worker(now: float) -> bool:
        """Whether to start a worker beside the busy ones (see EXTRA_WORKER_BYTES)."""
        if not busy or idle or pool.idle_pids(ROLE):
            return True
        return (sum(size_of.get(job.sha256, 0) for job in pending) >= EXTRA_WORKER_BYTES
                or any(now - worker.started >= EXTRA_WORKER_AFTER for worker in busy.values()))

    try:
        while pending or busy:
            held_back = False
            while pending and len(busy) < workers:
                if not another_worker(time.monotonic()):
                    held_back = True
                    break
                job = pending.pop(0)
                if run_dir is None:
                    run_dir = Path(tempfile.mkdtemp(prefix="convert-", dir=ensure_dir(Path(job.work_root))))
                serial += 1
                job = replace(job, work_dir=str(run_dir / f"job-{serial}"))
                worker = idle.pop() if idle else pool.take(ROLE)
                if not _send(worker, job):  # an idle worker died meanwhile: one fresh try
                    worker.stop(kill=True)
                    worker = pool.Worker(ROLE)
                    _send(worker, job)  # if this fails too, its end of file reads as "stopped unexpectedly"
                busy[worker.pipe] = worker
            more = on_idle() if on_idle is not None else False
            nearest = min(worker.deadline for worker in busy.values())
            if held_back:  # look again when the longest-running job has had EXTRA_WORKER_AFTER
                nearest = min(nearest, min(worker.started for worker in busy.values()) + EXTRA_WORKER_AFTER)
            wait = 0.0 if more else max(0.0, nearest - time.monotonic())
            if on_pages is not None:
                report_pages()
                wait = min(wait, PROGRESS_SECONDS)
            ready = set(_wait_readable(list(busy), wait))
            now = time.monotonic()
            for pipe in list(busy):
                worker = busy[pipe]
                job = worker.job
                if pipe in ready:
                    alive, answer = worker.poll()
                    if alive and answer is None:
                        continue  # part of an answer: the rest follows
                    del busy[pipe]
                    reading.discard(id(worker))
                    outcome = _outcome_from_answer(answer)
                    if alive and not worker.retiring:
                        idle.append(worker)
                    else:
                        worker.stop(kill=not alive)
                    if outcome is None:
                        log("convert.worker_died", doc=short_hash(job.sha256), exitcode=worker.process.poll(),
                            attempt=job.attempt, level="error")
                        if job.attempt == 0:
                            shutil.rmtree(job.work_dir, ignore_errors=True)
                            pending.insert(0, replace(job, attempt=1))
                            continue
                        outcome = refusal("conversion_failed", "reading the file stopped the converter twice "
                                          f"(it may need more than the {job.memory_mib} MB memory limit)",
                                          "save it again as a PDF (or split it) and drop that in")
                    finish(job, worker.started, outcome, now)  # last: on_outcome may raise, the worker is accounted for
                elif now >= worker.deadline:
                    if job.ocr_seconds and id(worker) not in reading and read_progress(Path(job.work_dir))[1]:
                        reading.add(id(worker))  # the job is reading pages by OCR: its own limits apply
                        worker.deadline += job.ocr_seconds
                        continue
                    if starved(worker, job.timeout, now):
                        worker.deadline = now + job.timeout * STARVED_STEP
                        continue
                    del busy[pipe]
                    worker.stop(kill=True)
                    limit = job.timeout + (job.ocr_seconds if id(worker) in reading else 0.0)
                    reading.discard(id(worker))
                    finish(job, worker.started, timeout_refusal(limit), now)
        report_pages()
    finally:  # an interrupt must not leave workers or LibreOffice behind
        for worker in busy.values():
            worker.stop(kill=True)
            if worker.job is not None:
                shutil.rmtree(worker.job.work_dir, ignore_errors=True)
        for worker in idle:  # kept for the next run when small, else ended
            pool.give_back(worker, keep_below_mib=WORKER_KEEP_RSS_MIB)
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
    return outcomes


def starved(worker: pool.Worker, timeout: float, now: float) -> bool:
    """Whether a worker's job at its deadline (`timeout` its limit) has had too little CPU to be
    judged (a machine busy with other work): it then gets STARVED_STEP more of its limit, up to
    STARVED_MAX times the limit. A file that used its time is refused for good; one that waits
    without computing (a hung converter) is only given the extra time once the machine was busy,
    never forever. (`packet.pipeline.verify`'s object scan waits by the same rule.)"""
    if now - worker.started >= timeout * STARVED_MAX:
        return False
    used = worker.cpu_seconds()
    return used is not None and used < timeout * STARVED_CPU_SHARE and os.getloadavg()[0] > (os.cpu_count() or 1)


def _wait_readable(pipes: list, timeout: float) -> list:
    readable, _, _ = select.select(pipes, [], [], timeout)
    return readable


def _outcome_from_answer(answer: tuple | None) -> dict | RefusedFile | None:
    if answer is None or answer[0] != "ok" or not isinstance(answer[1], dict):
        return None
    message = answer[1]
    if message.get("status") == "ok":
        return message
    try:
        return RefusedFile(str(message["reason"]), str(message["message"]), str(message["what_to_do"]),
                           transient=bool(message.get("transient")))
    except KeyError:
        return None
