"""The service: watch the inbox, and build, seal and supplement cases as clerks drop files.

Owns: turning file-system events into "this case changed"; deciding when a file is complete (its
size and modification time held for `settle_seconds`, seen by the watcher itself, never trusted
from the mtime alone: copy tools preserve old mtimes); per-case debouncing; calling the same
library functions a one-shot command calls (`packet.pipeline.build.build_case`, `packet.pipeline.seal.seal_case`);
retrying transient failures with growing delays before giving the file up (the build then refuses
it to `_rejected/`); the one-watcher-per-inbox lock; start-up recovery; signals.
Must not: convert, classify or write outputs itself (the library does), read document text, or
put names of any kind into the service log (case ids and short hashes only).

Design against the ways watched folders lose files:
- missed events (network shares, overflowing inotify queues): a full rescan at start-up and every
  `rescan_seconds`; on network file systems the polling observer (`polling = "auto"`);
- files taken half-copied: a file is offered to the build only after the watcher has itself seen
  the same size and mtime for `settle_seconds`; the build re-checks via the `settled` callback;
- the same file queued twice: events only mark a case dirty (a set), and a case is rebuilt only when
  the fingerprint of its complete files and control files changed;
- work redone or forgotten after a crash: per-file records and the last build's fingerprint in
  state/files/ (packet.records.filestate); outputs appear by os.replace, so a kill -9 leaves the old draft
  or the new one; `packet.pipeline.seal.recover` finishes or rolls back an interrupted seal at start-up;
- failures never retried or retried forever: a transient failure is retried after
  retry_base_seconds * 2**(n-1), at most retry_attempts times, then refused with its reason; a failed
  release gate is retried only when the case changes (or READY is dropped again); an unexpected
  error backs off exponentially (capped) and never stops the loop;
- litter after a kill: the hidden temporary files of interrupted atomic writes are swept once stale.

After changes (and at each rescan, since "time left" changes too) the case board
(`packet.service.board.write_board`, outbox/index.html) is regenerated, at most every few seconds.

Folders in the inbox whose names are not valid case ids are refused with a note: `_STATUS.txt`
inside that folder (it is in the inbox, where the clerk looks; nothing outside the inbox is ever
touched) and a log line with a reason code and the short hash of the name (never the name).
Folders starting with `_` or `.`, symbolic links and loose files at the top of the inbox are
ignored.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from packet import __version__
from packet.intake import convert
from packet.records import filestate
from packet.records.layout import BOARD_DIR, DRAFT_DIR, PRINT_DIR
from packet.workers import render as renderworker
from packet.model.case import valid_case_id
from packet.config import Config
from packet.errors import AlreadyRunning, CaseError, GateFailed, PacketError
from packet.fsutil import atomic_write_text, sha256_file, short_hash
from packet.intake.folder import CONTROL_FILES, is_ignored_dir, is_junk, scan
from packet.log import log, log_exception
from packet.model.models import SourceFile

# File-system types on which inotify does not see other machines' changes (packet "auto" polling).
NETWORK_FS_TYPES = frozenset({
    "cifs", "smb", "smb2", "smb3", "smbfs", "nfs", "nfs4", "ncpfs", "afs", "coda", "9p", "virtiofs",
    "vboxsf", "vmhgfs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "davfs", "fuse",
    "sshfs", "ocfs2", "gfs2", "orangefs"})

ERROR_BACKOFF_CAP_SECONDS = 600.0
# While files are still being copied the draft waits for them, but no longer than this: a long copy
# of one large file must not keep the other documents of the case out of the draft.
BUSY_LIMIT_SECONDS = 30.0
# An atomic write (packet.fsutil) goes through a hidden ".tmp-*" file beside its target; kill -9
# in the middle leaves one behind. Hidden (a dot name; Samba hides dot files by default) and never a
# final name, but litter: the watcher removes those older than this, which no live write can be.
STALE_TEMP_SECONDS = 120.0
TEMP_PREFIX = ".tmp-"
MIN_RECHECK_SECONDS = 0.05  # the shortest pause before a case is looked at again
BOARD_MIN_INTERVAL_SECONDS = 2.0  # the case board is rewritten at most this often during a burst
INVALID_FOLDER_NOTE = """\
imr-packet cannot use this folder.

The name of this folder is not a valid case id, so nothing in it will be processed.
A case folder's name must be the case id: 1 to 64 letters, digits, '.', '_' or '-',
starting with a letter or a digit (for example IMR-2026-000417). No spaces.

What to do: rename the folder to the case id. Nothing in this folder has been changed.
"""

_STOP = object()
_RESCAN = object()


# --- which observer -------------------------------------------------------------------------

def _unescape_mount(field_text: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    out, i = [], 0
    while i < len(field_text):
        if field_text[i] == "\\" and i + 4 <= len(field_text) and field_text[i + 1:i + 4].isdigit():
            out.append(chr(int(field_text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def filesystem_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the file system holding `path` (e.g. "ext4", "cifs"), from /proc/self/mountinfo."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        if len(fields) < 5 or not right.split():
            continue
        mount_point = _unescape_mount(fields[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):  # the last, deepest mount wins
            best, best_type = mount_point, right.split()[0]
    return best_type


def is_network_fs(fs_type: str | None) -> bool:
    if not fs_type:
        return False
    return fs_type in NETWORK_FS_TYPES or fs_type.startswith("fuse.") or fs_type.startswith("nfs")


def choose_polling(config: Config, mountinfo: str | None = None) -> tuple[bool, str]:
    """(use the polling observer?, why) per `[watch] polling` and the inbox's file system."""
    mode = config.watch.polling
    if mode == "always":
        return True, "configured"
    if mode == "never":
        return False, "configured"
    fs_type = filesystem_type(config.paths.inbox, mountinfo)
    if is_network_fs(fs_type):
        return True, "network_fs"
    return False, "local_fs"


# --- events ---------------------------------------------------------------------------------

def _make_handler(inbox: Path, events: queue.Queue):
    from watchdog.events import FileSystemEventHandler

    inbox_text = os.path.realpath(inbox)

    class _Handler(FileSystemEventHandler):
        """Turns any event into the name of the case folder it concerns (or a rescan request)."""

        def on_any_event(self, event) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return  # our own reads (hashing, converting) must not look like changes
            for raw in (event.src_path, getattr(event, "dest_path", "") or ""):
                if not raw:
                    continue
                path = os.fsdecode(raw)
                rel = os.path.relpath(path, inbox_text)
                if rel == ".":
                    events.put(_RESCAN)
                    continue
                if rel.startswith(".."):
                    continue
                parts = rel.split(os.sep)
                if is_ignored_dir(parts[0]):
                    continue
                if len(parts) > 1:
                    inner = parts[1:]
                    if any(is_ignored_dir(p) for p in inner[:-1]) or is_ignored_dir(inner[0]):
                        continue  # _rejected/, .git/ ...: the service's own or hidden folders
                    if inner[-1] == "_STATUS.txt" or (is_junk(inner[-1]) and event.event_type != "moved"):
                        continue
                events.put(parts[0])

    return _Handler()


# --- per-case memory (in this process) -------------------------------------------------------

@dataclass
class _Seen:
    """One file as this process has observed it (mutable, private to the loop)."""

    size: int
    mtime_ns: int
    since: float  # monotonic time this size+mtime was first observed
    settled: bool = False


@dataclass
class _Case:
    case_id: str
    path: Path
    record: filestate.CaseRecord
    seen: dict[str, _Seen] = field(default_factory=dict)
    control: tuple = ()
    ready: tuple | None = None
    last_change: float = 0.0
    due: float = 0.0  # monotonic time to look at this case again (inf: only on an event)
    idle: bool = False  # nothing left to do until something changes
    errors: int = 0  # unexpected failures in a row (exponential back-off)
    error_until: float = 0.0  # monotonic time before which the same inputs are not tried again
    busy_since: float | None = None  # since when some file of the case has been incomplete
    error_fingerprint: str | None = None
    dirty_record: bool = False


def _stat_key(path: Path) -> tuple | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class _Watcher:
    def __init__(self, config: Config, *, once: bool, stop_event: threading.Event):
        self.config = config
        self.once = once
        self.stop = stop_event
        self.events: queue.Queue = queue.Queue()
        self.cases: dict[str, _Case] = {}
        self.noted_invalid: set[str] = set()
        self.failures = 0  # seals refused and unexpected errors during this run (--once exit code)
        self.settle = config.watch.settle_seconds
        self.debounce = 0.0 if once else config.watch.debounce_seconds
        self.config_fingerprint = self._config_fingerprint()
        self.observer = None  # watchdog's observer (None with --once)
        self.board_dirty = True  # outbox/index.html is regenerated after changes (and each rescan)
        self.board_written = float("-inf")
        self.polling = False

    def _config_fingerprint(self) -> str:
        """What a draft depends on besides the case: the version, the configuration, the templates.

        A change (say, compliance staff edit a letter template) rebuilds every case's draft.
        """
        templates = []
        root = self.config.paths.templates
        try:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    st = path.stat()
                    templates.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
        except OSError:
            pass
        return filestate.fingerprint(__version__, repr(self.config), templates)

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
                    self._step(case)
            board_at = None
            if self.board_dirty:
                board_at = max(self.board_written + BOARD_MIN_INTERVAL_SECONDS, time.monotonic())
            if board_at is not None and board_at <= time.monotonic() and (
                    self.once or not any(c.due <= time.monotonic() for c in self.cases.values())):
                self._write_board()
                board_at = None
            if self.once and all(c.idle for c in self.cases.values()) and self.events.empty():
                if self.board_dirty:
                    self._write_board()
                break
            wake = min([c.due for c in self.cases.values()] + [next_rescan] + ([board_at] if board_at else []))
            timeout = min(max(wake - time.monotonic(), 0.0), 1.0)
            try:
                item = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
            except queue.Empty:
                continue
            self.events.put(item)  # handled by _drain at the top of the loop
        return 1 if (self.once and self.failures) else 0

    def _write_board(self) -> None:
        """The case board (packet.service.board, when present): time left changes even when no file does."""
        self.board_dirty = False
        self.board_written = time.monotonic()
        try:
            from packet.service.board import write_board
        except ImportError:
            return
        try:
            write_board(self.config)
        except Exception as exc:  # the board is a view: a failure never stops the service
            log_exception("board_failed", exc)

    def sweep_temp_files(self, *, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Remove temporary files abandoned by a killed atomic write; return how many.

        Only where the service writes single files: outbox/ (index.html), outbox/_board/,
        outbox/_print/, and each case folder (_STATUS.txt) with its _rejected/ (the refusal notes).
        Drafts and submissions are built in state/work/ and appear by os.replace, whole.
        """
        outbox = self.config.paths.outbox
        folders = [outbox, outbox / BOARD_DIR, outbox / PRINT_DIR]
        for case in self.cases.values():
            folders += [case.path, case.path / "_rejected"]
        removed = 0
        limit = time.time() - older_than
        for folder in folders:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if (entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False)
                            and entry.stat(follow_symlinks=False).st_mtime < limit):
                        os.unlink(entry.path)
                        removed += 1
                except OSError:
                    continue
        if removed:
            log("temp_files_removed", count=removed)
        return removed

    def _drain(self, now: float) -> None:
        while True:
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                self.stop.set()
            elif item is _RESCAN:
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
        self.board_dirty = True
        self.config_fingerprint = self._config_fingerprint()
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
                self.observer = _start_observer(self.config, self.events, self.polling)
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
            self._refuse_folder(name, path)
            return
        record = filestate.load(self.config, name)
        self.cases[name] = _Case(case_id=name, path=path, record=record, due=time.monotonic())

    def _drop(self, case: _Case) -> None:
        del self.cases[case.case_id]
        # An unmounted share looks like an empty inbox: keep the records until the inbox is back.
        if self.config.paths.inbox.is_dir() and not case.path.exists():
            filestate.forget(self.config, case.case_id)
            log("case_folder_removed", case=case.case_id)

    def _refuse_folder(self, name: str, path: Path) -> None:
        """A folder whose name is no case id: a note inside it, a log line without the name."""
        note = path / "_STATUS.txt"
        try:
            current = note.read_text(encoding="utf-8") if note.is_file() else None
            if current != INVALID_FOLDER_NOTE:
                atomic_write_text(note, INVALID_FOLDER_NOTE)
        except OSError:
            pass  # a read-only folder: the log line still says so
        if name not in self.noted_invalid:
            self.noted_invalid.add(name)
            log("case_folder_refused", level="warning", reason="invalid_case_id",
                folder=hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12])

    # --- one case ---

    def _step(self, case: _Case) -> None:
        try:
            self._look(case)
        except Exception as exc:  # a bad case never stops the loop
            log_exception("case_error", exc, case=case.case_id)
            self.failures += 1 if self.once else 0
            case.errors += 1
            case.error_until = time.monotonic() + min(
                self.config.watch.retry_base_seconds * 2 ** case.errors, ERROR_BACKOFF_CAP_SECONDS)
            case.due = case.error_until
            case.idle = self.once  # --once: an unexpected error is reported, not retried
        finally:
            if case.dirty_record:
                try:
                    filestate.save(self.config, case.record)
                except OSError as exc:
                    log_exception("state_write_failed", exc, case=case.case_id)
                case.dirty_record = False

    def _observe(self, case: _Case, now: float) -> list[SourceFile]:
        """Scan the folder; update what is settled. Returns the files found."""
        sources = scan(case.path)
        present = {s.relpath: s for s in sources}
        for relpath in list(case.seen):
            if relpath not in present:
                del case.seen[relpath]
                case.last_change = now
        stale = set(case.record.files) - set(present)
        if stale:
            case.record = case.record.without_files(stale)
            case.dirty_record = True
        for source in sources:
            seen = case.seen.get(source.relpath)
            if seen is None or (seen.size, seen.mtime_ns) != (source.size, source.mtime_ns):
                record = case.record.files.get(source.relpath)
                # Seen complete before (an earlier run): no need to wait again.
                known = record is not None and record.same_file(source.size, source.mtime_ns)
                case.seen[source.relpath] = _Seen(source.size, source.mtime_ns, now, settled=known)
                if not known:
                    case.last_change = now
                continue
            if not seen.settled and now - seen.since >= self.settle:
                self._settle(case, source, seen)
        control = tuple(_stat_key(case.path / name) for name in sorted(CONTROL_FILES - {"READY", "_STATUS.txt"}))
        if control != case.control:
            case.control = control
            case.last_change = now
        case.ready = _stat_key(case.path / "READY")
        return sources

    def _settle(self, case: _Case, source: SourceFile, seen: _Seen) -> None:
        try:
            sha = sha256_file(source.path)
        except FileNotFoundError:
            return  # vanished: the next look drops it
        except OSError:
            # Unreadable (permissions, a locked file on a share), yet unchanged for the settle
            # time: complete as far as anyone can tell. The build refuses it with its reason
            # rather than the case waiting for it forever.
            sha = None
        if _stat_key(source.path) != (seen.size, seen.mtime_ns):
            return  # changed while we read it
        seen.settled = True
        case.record = case.record.with_file(filestate.FileRecord(
            relpath=source.relpath, size=seen.size, mtime_ns=seen.mtime_ns, sha256=sha,
            outcome=filestate.SETTLED, first_seen=filestate.now_iso()))
        case.dirty_record = True
        log("file_settled", case=case.case_id, doc=short_hash(sha) if sha else None, size=seen.size,
            readable=sha is not None)

    @staticmethod
    def _seen_settled(case: _Case, record: filestate.FileRecord) -> bool:
        seen = case.seen.get(record.relpath)
        return bool(seen and seen.settled and record.same_file(seen.size, seen.mtime_ns))

    def _is_settled(self, case: _Case, source: SourceFile) -> bool:
        seen = case.seen.get(source.relpath)
        return bool(seen and seen.settled and (seen.size, seen.mtime_ns) == (source.size, source.mtime_ns))

    def _look(self, case: _Case) -> None:
        now = time.monotonic()
        if not case.path.is_dir() or case.path.is_symlink():
            self._drop(case)
            return
        self._observe(case, now)
        wall = time.time()
        unsettled = [s for s in case.seen.values() if not s.settled]
        records = case.record.files
        attempts_limit = max(self.config.watch.retry_attempts, 1)
        give_up = frozenset(r.relpath for r in records.values()
                            if r.outcome == filestate.TRANSIENT and r.attempts >= attempts_limit)
        retry_times = [r.next_try_at for r in records.values()
                       if r.outcome == filestate.TRANSIENT and r.attempts < attempts_limit
                       and r.next_try_at is not None and self._seen_settled(case, r)]
        retry_due = any(t <= wall for t in retry_times)
        settled_files = sorted((rel, s.size, s.mtime_ns) for rel, s in case.seen.items() if s.settled)
        build_fp = filestate.fingerprint(self.config_fingerprint, settled_files, case.control, sorted(give_up))
        draft_missing = (case.record.build_outcome == "built" and case.record.has_draft
                         and not (self.config.paths.outbox / case.case_id / DRAFT_DIR).is_dir())
        wants_build = build_fp != case.record.built_fingerprint or retry_due or draft_missing
        if build_fp != case.error_fingerprint:
            case.errors = 0
            case.error_until = 0.0

        wakes: list[float] = []
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

    def _build(self, case: _Case, build_fp: str, give_up: frozenset[str]) -> None:
        from packet.pipeline.build import build_case

        self.board_dirty = True
        try:
            result = build_case(case.path, self.config, settled=lambda s: self._is_settled(case, s),
                                give_up=give_up)
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
            return
        self._apply_result(case, result)
        case.record = replace(case.record, built_fingerprint=build_fp, build_outcome="built",
                              has_draft=result.draft_dir is not None)
        case.dirty_record = True
        case.errors = 0

    def _apply_result(self, case: _Case, result) -> None:
        """Record each file's outcome; schedule retries of transient failures."""
        wall = time.time()
        taken = {d.source for d in result.documents}
        refused = {r.source for r in result.newly_rejected}
        for relpath, record in list(case.record.files.items()):
            if relpath in result.transient:
                attempts = record.attempts + 1 if record.outcome == filestate.TRANSIENT else 1
                error = result.transient[relpath]
                if attempts >= max(self.config.watch.retry_attempts, 1):
                    # The next build gets it in `give_up` and refuses it to _rejected/ with its reason.
                    new = replace(record, outcome=filestate.TRANSIENT, attempts=attempts, next_try_at=None)
                    log("file_given_up", case=case.case_id, doc=short_hash(record.sha256 or ""), level="warning",
                        reason=error.reason, attempts=attempts)
                else:
                    delay = self.config.watch.retry_base_seconds * 2 ** (attempts - 1)
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

    def _seal(self, case: _Case, seal_fp: str) -> None:
        from packet.pipeline.seal import seal_case

        self.board_dirty = True
        # A file dropped between this look and the seal's own scan must not be sealed half-copied:
        # it fails the gate as "still being copied", and the seal is tried again once it is complete.
        try:
            submission = seal_case(self.config, case.case_id, settled=lambda s: self._is_settled(case, s))
        except GateFailed as exc:
            # READY stays and _STATUS.txt says why (packet.pipeline.seal); retry only when the case changes.
            case.record = replace(case.record, failed_seal_fingerprint=seal_fp, failed_seal_reason=exc.reason)
            case.dirty_record = True
            self.failures += 1
            log("seal_refused", case=case.case_id, level="warning", reason=exc.reason, items=len(exc.items))
            return
        except PacketError as exc:
            case.record = replace(case.record, failed_seal_fingerprint=seal_fp, failed_seal_reason=exc.reason)
            case.dirty_record = True
            self.failures += 1
            log("seal_refused", case=case.case_id, level="warning", reason=exc.reason)
            return
        case.record = replace(case.record, failed_seal_fingerprint=None, failed_seal_reason=None,
                              built_fingerprint=None)
        case.dirty_record = True
        del submission  # packet.pipeline.seal logs and audits the sealing itself


# --- start-up, lock, signals ----------------------------------------------------------------

def _inbox_lock_path(config: Config) -> Path:
    """A lock keyed by the inbox's real path, so two configurations cannot watch one inbox."""
    key = hashlib.sha256(os.path.realpath(config.paths.inbox).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"imr-packet-watch-{key}.lock"


def _acquire_locks(config: Config) -> list:
    from filelock import FileLock, Timeout

    locks = []
    for path in (config.paths.state / "watch.lock", _inbox_lock_path(config)):
        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            for held in locks:
                held.release()
            raise AlreadyRunning(
                f"another watcher is already running for the inbox {config.paths.inbox} "
                f"(lock {path}); stop it first, or run this one with its own inbox and state folders")
        except OSError:
            if path.parent == config.paths.state:
                raise
            continue  # the shared temp folder is not writable: the state lock still holds
        locks.append(lock)
    return locks


def _recover(config: Config) -> None:
    """Finish or roll back a seal a crash interrupted (packet.pipeline.seal.recover, when present)."""
    try:
        from packet.pipeline import seal
    except ImportError:
        return
    recover = getattr(seal, "recover", None)
    if recover is None:
        return
    try:
        recover(config)
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
    locks = _acquire_locks(config)
    watcher = _Watcher(config, once=once, stop_event=stop)
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
            watcher.observer = _start_observer(config, watcher.events, polling)
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
        for lock in reversed(locks):
            lock.release()


def _log_thread_error(args) -> None:
    if args.exc_type is SystemExit:
        return
    exc = args.exc_value if args.exc_value is not None else RuntimeError("thread error")
    log_exception("thread_error", exc)


def _start_observer(config: Config, events: queue.Queue, polling: bool):
    if polling:
        from watchdog.observers.polling import PollingObserver

        # Poll often enough to notice changes within the settle time, but not hammer a share.
        interval = min(max(config.watch.settle_seconds / 2, 0.25), 5.0)
        observer = PollingObserver(timeout=interval)
    else:
        from watchdog.observers import Observer

        observer = Observer()
    observer.schedule(_make_handler(config.paths.inbox, events), str(config.paths.inbox), recursive=True)
    observer.daemon = True
    try:
        observer.start()
    except OSError as exc:
        # e.g. the inotify watch limit: fall back to polling rather than missing changes.
        log("observer_fallback", level="warning", error=type(exc).__name__.lower(), reason="polling")
        from watchdog.observers.polling import PollingObserver

        observer = PollingObserver(timeout=min(max(config.watch.settle_seconds / 2, 0.25), 5.0))
        observer.schedule(_make_handler(config.paths.inbox, events), str(config.paths.inbox), recursive=True)
        observer.daemon = True
        observer.start()
    return observer
