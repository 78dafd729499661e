"""When each case is built or sealed: the per-case decisions of the watcher.

Owns: for one case at a time, deciding from the watcher's observation (packet.service.settle) and
the saved record (packet.records.filestate) whether to wait, build or seal; debouncing (one build
per burst of files, not one per file, yet never waiting longer than `BUSY_LIMIT_SECONDS` for a slow
copy); retrying transient failures after retry_base_seconds * 2**(n-1), at most retry_attempts
times, then giving the file up (the next build refuses it with its reason); holding back the refusal
of a file that may still be being written; retrying a failed release gate only when the case
changes (or READY is dropped again); backing off after unexpected errors (capped) without ever
stopping the loop; the interim `_STATUS.txt` notes while it works (packet.service.progress).
Calls the same library functions a one-shot command calls (`packet.pipeline.build.build_case`,
`packet.pipeline.seal.seal_case`).
Must not: convert, classify or write outputs itself, read document text, or log names of any kind.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable

from packet import __version__
from packet.config import Config
from packet.errors import CaseError, GateFailed, PacketError, RefusedFile
from packet.fsutil import short_hash
from packet.log import log, log_exception
from packet.model.models import SourceFile
from packet.pipeline import build as build_module
from packet.pipeline import seal as seal_module
from packet.pipeline import statusnote
from packet.records import filestate
from packet.service import progress
from packet.service.folders import drop_case_template
from packet.service.settle import CaseState, is_settled, observe, seen_settled, stable_in, still_changing

ERROR_BACKOFF_CAP_SECONDS = 600.0
# While files are still being copied the draft waits for them, but no longer than this: a long copy
# of one large file must not keep the other documents of the case out of the draft.
BUSY_LIMIT_SECONDS = 30.0
MIN_RECHECK_SECONDS = 0.05  # the shortest pause before a case is looked at again
# Refusals that a file still being written can produce: held back while the file may be changing.
MAY_BE_INCOMPLETE = frozenset({"corrupt", "empty", "unsupported", "conversion_failed", "encrypted"})
STILL_CHANGING = "still_changing"


def config_fingerprint(config: Config) -> str:
    """What a draft depends on besides the case: the version, the configuration, the templates.

    A change (say, compliance staff edit a letter template) rebuilds every case's draft.
    """
    templates = []
    root = config.paths.templates
    try:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                st = path.stat()
                templates.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    except OSError:
        pass
    return filestate.fingerprint(__version__, repr(config), templates)


class Scheduler:
    """The per-case steps of one watcher process."""

    def __init__(self, config: Config, *, once: bool, stop: threading.Event,
                 on_progress: Callable[[], None] | None = None):
        self.config = config
        self.once = once
        self.stop = stop
        self.on_progress = on_progress  # the board, while a long build or seal runs
        self.settle = config.watch.settle_seconds
        self.debounce = 0.0 if once else config.watch.debounce_seconds
        self.fingerprint = config_fingerprint(config)
        self.failures = 0  # seals refused and unexpected errors during this run (--once exit code)
        self.board_dirty = True
        self.worked = False  # a build or seal ran since the watcher last looked (it then returns freed memory)

    def refresh_fingerprint(self) -> None:
        self.fingerprint = config_fingerprint(self.config)

    def step(self, case: CaseState) -> None:
        """Look at one case and do what is due; a bad case never stops the loop."""
        try:
            self._look(case)
        except Exception as exc:
            log_exception("case_error", exc, case=case.case_id)
            self.failures += 1 if self.once else 0
            case.errors += 1
            delay = min(self.config.watch.retry_base_seconds * 2 ** case.errors, ERROR_BACKOFF_CAP_SECONDS)
            case.error_until = time.monotonic() + delay
            case.due = case.error_until
            case.idle = self.once  # --once: an unexpected error is reported, not retried
            progress.write_stuck(case.path, case.case_id, type(exc).__name__, delay, tz=self.config.calendar.tz)
            self.board_dirty = True
        finally:
            if case.dirty_record:
                try:
                    filestate.save(self.config, case.record)
                except OSError as exc:
                    log_exception("state_write_failed", exc, case=case.case_id)
                case.dirty_record = False

    def _look(self, case: CaseState) -> None:
        now = time.monotonic()
        if not case.path.is_dir() or case.path.is_symlink():
            case.gone = True
            return
        observe(case, now, self.settle)
        wall = time.time()
        wakes: list[float] = []
        if not case.template_checked:
            if now - case.discovered >= self.settle:  # a moment for the clerk's own case.toml to arrive
                case.template_checked = True
                drop_case_template(case.case_id, case.path, self.config.calendar.tz)
            else:
                wakes.append(case.discovered + self.settle)
        unsettled = case.unsettled
        records = case.record.files
        attempts_limit = max(self.config.watch.retry_attempts, 1)
        give_up = frozenset(r.relpath for r in records.values()
                            if r.outcome == filestate.TRANSIENT and r.attempts >= attempts_limit)
        retry_times = [r.next_try_at for r in records.values()
                       if r.outcome == filestate.TRANSIENT and r.attempts < attempts_limit
                       and r.next_try_at is not None and seen_settled(case, r)]
        retry_due = any(t <= wall for t in retry_times)
        settled_files = sorted((rel, s.size, s.mtime_ns) for rel, s in case.seen.items() if s.settled)
        build_fp = filestate.fingerprint(self.fingerprint, settled_files, case.control, sorted(give_up))
        draft_missing = (case.record.build_outcome == "built" and case.record.has_draft
                         and not (self.config.paths.outbox / case.case_id / "draft").is_dir())
        wants_build = build_fp != case.record.built_fingerprint or retry_due or draft_missing
        if build_fp != case.error_fingerprint:
            case.errors = 0
            case.error_until = 0.0
        if unsettled or wants_build:
            self._note_received(case)

        if unsettled:
            # (never in the past: a file that cannot be settled right now must not spin the loop)
            wakes.append(max(min(s.since for s in unsettled) + self.settle, now + MIN_RECHECK_SECONDS))
            if case.busy_since is None:
                case.busy_since = now
        else:
            case.busy_since = None
        if wants_build:
            quiet_at = max(case.last_change + self.debounce, case.error_until)
            if unsettled:
                # Files are arriving: build once they are complete (one build, not one per file).
                quiet_at = max(quiet_at, min(case.busy_since + max(BUSY_LIMIT_SECONDS, 5 * self.settle),
                                             max(s.since for s in unsettled) + self.settle))
            if now >= quiet_at and not (self.once and unsettled):
                case.error_fingerprint = build_fp
                self._build(case, build_fp, give_up)
                case.due = time.monotonic()  # look again at once: the build may have moved files
                case.idle = False
                return
            if not (self.once and unsettled):  # (--once builds when the files are complete)
                wakes.append(quiet_at)
        future_retries = [t for t in retry_times if t > wall]  # due ones made wants_build true
        if future_retries:
            wakes.append(now + (min(future_retries) - wall))

        seal_fp = filestate.fingerprint(build_fp, case.ready)
        seal_pending = (case.ready is not None and not unsettled and not retry_times and not wants_build
                        and case.record.build_outcome == "built"
                        and seal_fp != case.record.failed_seal_fingerprint)
        if seal_pending and now < case.error_until:
            wakes.append(case.error_until)
        elif seal_pending and not self.stop.is_set():
            case.error_fingerprint = build_fp
            self._seal(case, seal_fp)
            case.due = time.monotonic()
            case.idle = False
            return
        case.due = min(wakes) if wakes else float("inf")
        case.idle = not wakes

    def _note_received(self, case: CaseState) -> None:
        """Within moments of files arriving, the clerk reads that they were seen."""
        records = case.record.files
        received = sum(1 for rel, seen in case.seen.items()
                       if not seen.settled or (rel in records and records[rel].outcome == filestate.SETTLED))
        copying = len(case.unsettled)
        if not received or (received, copying) == case.noted:
            return
        case.noted = (received, copying)
        headline, lines = progress.received_lines(received, copying)
        try:
            progress.write_interim(case.path, case.case_id, headline, lines, tz=self.config.calendar.tz)
        except OSError as exc:
            log_exception("status_note_failed", exc, case=case.case_id)
        self.board_dirty = True

    def _hold(self, case: CaseState, source: SourceFile, error: RefusedFile) -> bool:
        """Is this failure perhaps only the file still being written? Then it is not refused yet."""
        if error.reason not in MAY_BE_INCOMPLETE and not error.transient:
            return False
        return still_changing(case, source, self.config.watch.stable_seconds)

    def _build(self, case: CaseState, build_fp: str, give_up: frozenset[str]) -> None:
        self.board_dirty = self.worked = True
        note = progress.WorkNote(case.path, case.case_id, self.config.calendar.tz, on_update=self.on_progress)
        try:
            with note:
                result = build_module.build_case(
                    case.path, self.config, settled=lambda s: is_settled(case, s), give_up=give_up,
                    hold=lambda source, error: self._hold(case, source, error), progress=note)
        except CaseError as exc:
            # build_case wrote _STATUS.txt naming the problem; the case waits for case.toml to change.
            case.record = replace(case.record, built_fingerprint=build_fp, build_outcome="waiting")
            case.dirty_record = True
            log("case_waiting", case=case.case_id, reason=exc.reason)
            return
        except PacketError as exc:
            case.record = replace(case.record, built_fingerprint=build_fp, build_outcome="failed")
            case.dirty_record = True
            self.failures += 1
            log("build_refused", case=case.case_id, level="warning", reason=exc.reason)
            if note.clobbered():  # the build stopped after our interim note: say it is stuck
                progress.write_stuck(case.path, case.case_id, exc.reason, None, tz=self.config.calendar.tz)
            return
        finally:
            case.noted = None
        self._apply_result(case, result)
        case.record = replace(case.record, built_fingerprint=build_fp, build_outcome="built",
                              has_draft=result.draft_dir is not None)
        case.dirty_record = True
        case.errors = 0

    def _apply_result(self, case: CaseState, result) -> None:
        """Record each file's outcome; schedule retries of transient failures."""
        wall = time.time()
        taken = {d.source for d in result.documents}
        refused = {r.source for r in result.newly_rejected}
        base = self.config.watch.retry_base_seconds
        for relpath, record in list(case.record.files.items()):
            if relpath in result.transient:
                error = result.transient[relpath]
                if error.reason == STILL_CHANGING:
                    # Not a try: looked at again once it has been stable (or as soon as it changes).
                    retry_at = wall + max(stable_in(case, relpath, self.config.watch.stable_seconds), base)
                    new = replace(record, outcome=filestate.TRANSIENT, next_try_at=retry_at)
                    log("file_still_changing", case=case.case_id, doc=short_hash(record.sha256 or ""),
                        delay_seconds=round(retry_at - wall, 3))
                    case.record = case.record.with_file(new)
                    continue
                attempts = record.attempts + 1 if record.outcome == filestate.TRANSIENT else 1
                if attempts >= max(self.config.watch.retry_attempts, 1):
                    # The next build gets it in `give_up` and refuses it to _rejected/ with its reason.
                    new = replace(record, outcome=filestate.TRANSIENT, attempts=attempts, next_try_at=None)
                    log("file_given_up", case=case.case_id, doc=short_hash(record.sha256 or ""), level="warning",
                        reason=error.reason, attempts=attempts)
                else:
                    delay = base * 2 ** (attempts - 1)
                    new = replace(record, outcome=filestate.TRANSIENT, attempts=attempts, next_try_at=wall + delay)
                    log("file_retry", case=case.case_id, doc=short_hash(record.sha256 or ""), level="warning",
                        reason=error.reason, attempt=attempts, delay_seconds=round(delay, 3))
            elif relpath in refused:
                new = replace(record, outcome=filestate.REFUSED, next_try_at=None)
            elif relpath in taken:
                new = replace(record, outcome=filestate.TAKEN, next_try_at=None)
            elif record.outcome == filestate.TRANSIENT and record.next_try_at is not None:
                # Not tried this time (it changed, or waits to settle): tried again once it is complete.
                new = replace(record, next_try_at=None)
            else:
                continue
            case.record = case.record.with_file(new)

    def _seal(self, case: CaseState, seal_fp: str) -> None:
        self.board_dirty = self.worked = True
        tz = self.config.calendar.tz
        # "sealing..." at once, and kept there while the seal runs.
        note = progress.WorkNote(case.path, case.case_id, tz, stage="sealing", on_update=self.on_progress)
        # A file dropped between this look and the seal's own scan must not be sealed half-copied:
        # it fails the gate as "still being copied", and the seal is tried again once it is complete.
        try:
            with note:
                seal_module.seal_case(self.config, case.case_id, settled=lambda s: is_settled(case, s))
        except PacketError as exc:
            # READY stays and _STATUS.txt says why (packet.pipeline.seal); retry only when the case changes.
            case.record = replace(case.record, failed_seal_fingerprint=seal_fp, failed_seal_reason=exc.reason)
            case.dirty_record = True
            self.failures += 1
            items = list(exc.items) if isinstance(exc, GateFailed) else [str(exc)]
            log("seal_refused", case=case.case_id, level="warning", reason=exc.reason, items=len(items))
            if note.clobbered():  # our "sealing..." landed on top of the seal's own note
                statusnote.write(case.path, progress.refused_text(case.case_id, items, tz=tz))
            return
        # The next look builds again (a new draft, or the "sealed" note with where everything is).
        case.record = replace(case.record, failed_seal_fingerprint=None, failed_seal_reason=None,
                              built_fingerprint=None)
        case.dirty_record = True
