"""The service: watch the inbox, and build, seal and supplement cases as clerks drop files.

Owns: the event loop (turning file-system events and periodic rescans into "look at this case"),
the cases this process knows, start-up (the one-watcher-per-inbox lock, recovery of interrupted
seals, warm workers), signals, and when the case board is rewritten. The parts live beside it:
packet.service.observer (inotify or polling), .lock (one watcher per inbox), .settle (when a file is
complete), .scheduler (when a case is built or sealed), .progress (interim notes while it works),
.folders (what the watcher writes in the inbox besides those notes).
Must not: convert, classify or write outputs itself (the library does), read document text, or
put names of any kind into the service log (case ids and short hashes only).

Design against the ways watched folders lose files:
- missed events (network shares, overflowing inotify queues): a full rescan at start-up and every
  `rescan_seconds`; on network file systems the polling observer (`polling = "auto"`);
- files taken half-copied: a file is offered to the build only after the watcher has itself seen
  the same size and mtime for `settle_seconds`; the build re-checks via the `settled` callback, and
  a file that fails to parse while it may still be written is retried, not refused;
- the same file queued twice: events only mark a case dirty (a set), and a case is rebuilt only when
  the fingerprint of its complete files and control files changed;
- work redone or forgotten after a crash: per-file records and the last build's fingerprint in
  state/files/ (packet.records.filestate); outputs appear by os.replace, so a kill -9 leaves the old
  draft or the new one; `packet.pipeline.seal.recover` finishes or rolls back an interrupted seal at
  start-up;
- failures never retried or retried forever: see packet.service.scheduler;
- litter after a kill: the hidden temporary files of interrupted atomic writes are swept once stale.

After changes (and at each rescan, since "time left" changes too) the case board
(`packet.service.board.write_board`, outbox/index.html) is regenerated, at most every few seconds,
and while a long build or seal runs, with its progress.

Folders in the inbox whose names are not valid case ids are refused with a note: `_STATUS.txt`
inside that folder (it is in the inbox, where the clerk looks; nothing outside the inbox is ever
touched) and a log line with a reason code and the short hash of the name (never the name).
Folders starting with `_` or `.`, symbolic links and loose files at the top of the inbox are
ignored.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time

from packet.config import Config
from packet.errors import PacketError
from packet.intake.convert import batch as convert
from packet.intake.folder import is_ignored_dir
from packet.log import log, log_exception
from packet.model.case import valid_case_id
from packet.pipeline import seal as seal_module
from packet.records import filestate
from packet.service.board import write_board
from packet.service.folders import refuse_folder, sweep_temp_files
from packet.service.lock import WatchLock
from packet.service.observer import RESCAN, choose_polling, start_observer
from packet.service.scheduler import Scheduler
from packet.service.settle import CaseState
from packet.workers import render as renderworker
from packet.workers.pool import return_free_memory

BOARD_MIN_INTERVAL_SECONDS = 2.0  # the case board is rewritten at most this often during a burst
BOARD_PROGRESS_SECONDS = 4.0  # and at most this often with the progress of a long build or seal

_STOP = object()


class _Watcher:
    def __init__(self, config: Config, *, once: bool, stop_event: threading.Event, lock: WatchLock | None = None):
        self.config = config
        self.once = once
        self.stop = stop_event
        self.lock = lock
        self.events: queue.Queue = queue.Queue()
        self.cases: dict[str, CaseState] = {}
        self.noted_invalid: set[str] = set()
        self.scheduler = Scheduler(config, once=once, stop=stop_event, on_progress=self._board_progress)
        self.observer = None  # watchdog's observer (None with --once)
        self.board_written = float("-inf")
        self.board_lock = threading.Lock()
        self.polling = False

    # --- the loop ---

    def run(self) -> int:
        self.rescan()
        next_rescan = time.monotonic() + self.config.watch.rescan_seconds
        while not self.stop.is_set():
            now = time.monotonic()
            self._drain(now)
            if now >= next_rescan:
                self.rescan()
                next_rescan = now + max(self.config.watch.rescan_seconds, 1.0)
            for case in sorted(self.cases.values(), key=lambda c: c.due):
                if self.stop.is_set():
                    break
                if case.due <= time.monotonic():
                    self.scheduler.step(case)
                    if case.gone:
                        self._drop(case)
            if self.scheduler.worked and not any(c.due <= time.monotonic() for c in self.cases.values()):
                self.scheduler.worked = False
                return_free_memory()  # idle after a build or seal: what it freed goes back to the system
                if not self.once:
                    convert.refresh_idle()  # a conversion worker that read a scan is replaced by a fresh one
            board_at = None
            if self.scheduler.board_dirty:
                board_at = max(self.board_written + BOARD_MIN_INTERVAL_SECONDS, time.monotonic())
            if board_at is not None and board_at <= time.monotonic() and (
                    self.once or not any(c.due <= time.monotonic() for c in self.cases.values())):
                self._write_board()
                board_at = None
            if self.once and all(c.idle for c in self.cases.values()) and self.events.empty():
                if self.scheduler.board_dirty:
                    self._write_board()
                break
            wake = min([c.due for c in self.cases.values()] + [next_rescan] + ([board_at] if board_at else []))
            timeout = min(max(wake - time.monotonic(), 0.0), 1.0)
            try:
                item = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
            except queue.Empty:
                continue
            self.events.put(item)  # handled by _drain at the top of the loop
        return 1 if (self.once and self.scheduler.failures) else 0

    def _write_board(self) -> None:
        """The case board: time left changes even when no file does."""
        self.scheduler.board_dirty = False
        with self.board_lock:
            self.board_written = time.monotonic()
            try:
                write_board(self.config)
            except Exception as exc:  # the board is a view: a failure never stops the service
                log_exception("board_failed", exc)

    def _board_progress(self) -> None:
        """Called from a progress note's thread while a build or seal runs."""
        if time.monotonic() - self.board_written >= BOARD_PROGRESS_SECONDS:
            self._write_board()
            self.scheduler.board_dirty = True  # and once more when the work is done

    def sweep_temp_files(self) -> int:
        return sweep_temp_files(self.config, [case.path for case in self.cases.values()])

    def _drain(self, now: float) -> None:
        while True:
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                self.stop.set()
            elif item is RESCAN:
                self.rescan()
            else:
                case = self.cases.get(item)
                if case is None:
                    self._discover(item)
                else:
                    case.due = min(case.due, now)
                    case.idle = False

    def rescan(self) -> None:
        """Look at every folder of the inbox: the safety net for missed events."""
        self.scheduler.board_dirty = True
        self.scheduler.refresh_fingerprint()
        if self.lock is not None and not self.lock.check():
            log("lock_lost", level="error", reason="already_running")
            self.stop.set()
            return
        inbox = self.config.paths.inbox
        names = set()
        try:
            entries = list(os.scandir(inbox))
        except OSError as exc:
            log("inbox_unreadable", level="error", error=type(exc).__name__.lower())
            return
        for entry in entries:
            names.add(entry.name)
            if entry.name in self.cases:
                case = self.cases[entry.name]
                case.due = min(case.due, time.monotonic())
                case.idle = False
            else:
                self._discover(entry.name)
        for gone in set(self.cases) - names:
            self._drop(self.cases[gone])
        self.sweep_temp_files()
        if self.observer is not None and not self.observer.is_alive():
            # The observer thread died (e.g. an unmounted share): rescans still see every change,
            # and a new observer brings the events back.
            log("observer_restarted", level="warning")
            try:
                self.observer = start_observer(self.config, self.events, self.polling)
            except Exception as exc:
                log_exception("observer_failed", exc)

    def _discover(self, name: str) -> None:
        path = self.config.paths.inbox / name
        if is_ignored_dir(name):
            return
        try:
            if path.is_symlink() or not path.is_dir():
                return  # loose files and links at the top of the inbox are not cases
        except OSError:
            return
        if not valid_case_id(name):
            refuse_folder(name, path, self.noted_invalid)
            return
        record = filestate.load(self.config, name)
        self.cases[name] = CaseState(case_id=name, path=path, record=record, due=time.monotonic())

    def _drop(self, case: CaseState) -> None:
        self.cases.pop(case.case_id, None)
        # An unmounted share looks like an empty inbox: keep the records until the inbox is back.
        if self.config.paths.inbox.is_dir() and not case.path.exists():
            filestate.forget(self.config, case.case_id)
            log("case_folder_removed", case=case.case_id)


# --- start-up, signals ----------------------------------------------------------------------

def _recover(config: Config) -> None:
    """Finish or roll back a seal a crash interrupted."""
    try:
        seal_module.recover(config)
    except PacketError as exc:
        log("recover_failed", level="error", reason=exc.reason)
    except Exception as exc:
        log_exception("recover_failed", exc)


def run_watcher(config: Config, *, once: bool = False, stop_event: threading.Event | None = None) -> int:
    """Run the service until SIGTERM/SIGINT (or `stop_event`); with `once`, process what is there.

    Returns the exit code: 0 done; with `once`, 1 when a seal was refused or a case failed.
    Raises AlreadyRunning (exit 2) when another watcher holds this inbox.
    """
    stop = stop_event or threading.Event()
    lock = WatchLock(config).acquire()
    watcher = _Watcher(config, once=once, stop_event=stop, lock=lock)
    previous: dict[int, object] = {}
    previous_hook = threading.excepthook
    # An error in the observer's thread would print a traceback naming files to stderr (the
    # journal): log its type instead. The rescans carry on without the observer (see rescan).
    threading.excepthook = _log_thread_error
    try:
        if threading.current_thread() is threading.main_thread():
            def _on_signal(signum, frame):  # finish the current step, then leave the loop
                stop.set()
                watcher.events.put(_STOP)

            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, _on_signal)
        _recover(config)
        if not once:  # a service keeps its workers warm, so its first draft does not wait for them
            convert.prestart(config)
            if renderworker.in_use(config):
                renderworker.prestart()
        polling, why = choose_polling(config)
        watcher.polling = polling
        if not once:
            watcher.observer = start_observer(config, watcher.events, polling)
        log("watch_started", mode="polling" if polling else "native", why=why, once=once,
            settle_seconds=config.watch.settle_seconds, debounce_seconds=config.watch.debounce_seconds,
            rescan_seconds=config.watch.rescan_seconds)
        code = watcher.run()
        log("watch_stopped", code=code, signal=stop.is_set())
        return code
    finally:
        threading.excepthook = previous_hook
        if watcher.observer is not None:
            watcher.observer.stop()
            watcher.observer.join(timeout=10)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        lock.release()


def _log_thread_error(args) -> None:
    if args.exc_type is SystemExit:
        return
    exc = args.exc_value if args.exc_value is not None else RuntimeError("thread error")
    log_exception("thread_error", exc)
