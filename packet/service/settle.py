"""When a clerk's file is complete: the watcher's own observation of every file of a case.

Owns: the per-case memory of this process (`CaseState`: each file's size and modification time and
since when they have held, the control files, READY) and the rules built on it:
- a file is *settled* (offered to the build) only after the watcher itself has seen the same size and
  mtime for `settle_seconds`; the mtime alone is never trusted (copy tools preserve old mtimes);
- a file that fails to parse while it is still *changing*, or that the watcher has seen unchanged
  for less than `stable_seconds`, is not refused: the failure is transient (a copy that stalled
  longer than the settle time and resumes later is not corrupt), and it is tried again once it has
  been stable.
Must not: read document content (only hashes it), write anything in the inbox, or log names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from packet.fsutil import sha256_file, short_hash
from packet.intake.folder import CONTROL_FILES, ready_markers, scan_folder
from packet.log import log
from packet.model.models import SourceFile
from packet.records import filestate


@dataclass
class Seen:
    """One file as this process has observed it (mutable, private to the loop)."""

    size: int
    mtime_ns: int
    since: float  # monotonic time this size+mtime was first observed
    settled: bool = False


@dataclass
class CaseState:
    """What the watcher knows of one case folder (in this process) besides its saved record."""

    case_id: str
    path: Path
    record: filestate.CaseRecord
    seen: dict[str, Seen] = field(default_factory=dict)
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
    discovered: float = field(default_factory=time.monotonic)
    noted: tuple | None = None  # (received, copying) of the last "files received" note
    template_checked: bool = False  # looked for a case.toml (and dropped a template if none)
    gone: bool = False  # the folder disappeared: the watcher forgets the case

    @property
    def unsettled(self) -> list[Seen]:
        return [s for s in self.seen.values() if not s.settled]


def stat_key(path: Path) -> tuple | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def observe(case: CaseState, now: float, settle_seconds: float) -> list[SourceFile]:
    """Scan the folder; update what is settled. Returns the files found."""
    found = scan_folder(case.path)
    sources = found.files
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
            case.seen[source.relpath] = Seen(source.size, source.mtime_ns, now, settled=known)
            if not known:
                case.last_change = now
            continue
        if not seen.settled and now - seen.since >= settle_seconds:
            _settle(case, source, seen)
    # Control files, and files refused whatever their content (links, names that are not UTF-8):
    # a change to either makes a build, which refuses the latter with a note.
    control = tuple(stat_key(case.path / name) for name in sorted(CONTROL_FILES - {"READY", "_STATUS.txt"}))
    control += tuple(sorted((s.relpath, s.size, s.mtime_ns) for s, _ in found.unusable))
    if control != case.control:
        case.control = control
        case.last_change = now
    case.ready = next((stat_key(path) for path in ready_markers(case.path)), None)
    return sources


def _settle(case: CaseState, source: SourceFile, seen: Seen) -> None:
    try:
        sha = sha256_file(source.path)
    except FileNotFoundError:
        return  # vanished: the next look drops it
    except OSError:
        # Unreadable (permissions, a locked file on a share), yet unchanged for the settle
        # time: complete as far as anyone can tell. The build refuses it with its reason
        # rather than the case waiting for it forever.
        sha = None
    if stat_key(source.path) != (seen.size, seen.mtime_ns):
        return  # changed while we read it
    seen.settled = True
    case.record = case.record.with_file(filestate.FileRecord(
        relpath=source.relpath, size=seen.size, mtime_ns=seen.mtime_ns, sha256=sha,
        outcome=filestate.SETTLED, first_seen=filestate.now_iso()))
    case.dirty_record = True
    log("file_settled", case=case.case_id, doc=short_hash(sha) if sha else None, size=seen.size,
        readable=sha is not None)


def seen_settled(case: CaseState, record: filestate.FileRecord) -> bool:
    seen = case.seen.get(record.relpath)
    return bool(seen and seen.settled and record.same_file(seen.size, seen.mtime_ns))


def is_settled(case: CaseState, source: SourceFile) -> bool:
    seen = case.seen.get(source.relpath)
    return bool(seen and seen.settled and (seen.size, seen.mtime_ns) == (source.size, source.mtime_ns))


def still_changing(case: CaseState, source: SourceFile, stable_seconds: float, now: float | None = None) -> bool:
    """Is this file perhaps still being written, as far as the watcher has seen?

    True when it changed since the build's scan or vanished, or when the watcher has seen its
    current size and mtime for less than `stable_seconds`. The watcher's own observation decides,
    not the mtime: copy tools preserve old mtimes, and a share's clock may run ahead.
    """
    now = time.monotonic() if now is None else now
    key = stat_key(source.path)
    seen = case.seen.get(source.relpath)
    if key is None or key != (source.size, source.mtime_ns) or seen is None:
        return True
    if (seen.size, seen.mtime_ns) != key:
        return True
    return now - seen.since < stable_seconds


def stable_in(case: CaseState, relpath: str, stable_seconds: float, now: float | None = None) -> float:
    """Seconds until the file counts as stable (0 when it already does, or is unknown)."""
    now = time.monotonic() if now is None else now
    seen = case.seen.get(relpath)
    return max(seen.since + stable_seconds - now, 0.0) if seen is not None else 0.0
