"""The tamper-evident audit log: state/audit.jsonl, each entry chained to the one before it.

Owns: appending events (append + fsync, under a file lock; several at once with `record_many` /
`Batch`, one lock and one fsync for the per-document events of a build), rotating the log, checking the chain
(`verify_chain`, with the cross-checks and checkpoints of packet.records.anchor) and writing
checkpoints. The CSV export is packet.records.export's. Must not: hold document text or file
names; member data only as needed to identify the case (the case id). Documents are named by the
short form of their SHA-256 (`doc`), people by their operating-system user name (`actor`).

An entry is one JSON object on one line:

    {"actor": "service", "case": "IMR-2026-000417", "doc": "3f2a9c01d4e5", "event": "classified",
     "prev": "<sha256 of the previous line>", "seq": 17, "ts": "2026-11-27T18:02:11.123456+00:00",
     ...event fields...}

`prev` is the SHA-256 of the exact bytes of the previous line (without its newline); the first
entry ever written has `prev` = 64 zeros. `seq` counts entries from 1 across every file of the log.

Rotation: when state/audit.jsonl reaches `MAX_LOG_BYTES`, it is renamed to the next
state/audit-NNNNNN.jsonl and a new audit.jsonl starts with a `log_rotated` entry whose `prev` is the
hash of the old file's last line, so the chain runs unbroken from audit-000001.jsonl to audit.jsonl.

Truncation: a hash chain alone cannot tell a log that ends early from one that was cut, so two
records of the chain head live outside the log: `state/audit.head` (rewritten atomically after every
append: seq, hash, size) and `audit_head` in every sealed submission's manifest.json (written at
sealing from `head(config)`). `verify_chain` checks the log against both.

A consistent rewrite of the log and audit.head is caught only by the anchors of
packet.records.anchor (the audit key, kept checkpoints); its docstring and the README say what
each catches. Appending forged entries at the end cannot be told from real ones.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from packet.config import Config
from packet.errors import PacketError
from packet.fsutil import FILE_MODE, atomic_write_text, ensure_dir, fsync_dir
from packet.records import anchor

GENESIS = "0" * 64
HEAD_SCHEMA = "imr-packet/audit-head@1"
MAX_LOG_BYTES = 16 * 1024 * 1024  # rotate state/audit.jsonl when it reaches this size
LOCK_TIMEOUT_SECONDS = 120.0
MAX_TEXT_CHARS = 500  # a free-text field (an override's reason) is cut to this length

# The events the service records (spec.md "Logs and records"). Callers may add others; these are
# the ones an auditor can expect to find.
EVENTS = {
    "taken": "a clerk's file was accepted into a case",
    "refused": "a file was refused and moved to _rejected/ (reason code)",
    "classified": "a document's category, flags and identity result (with the rule that fired)",
    "flagged": "a document was flagged privileged or withheld (with the reason)",
    "overridden": "a person's decision (overrides.toml or seal --override) beat a rule or the gate",
    "draft_built": "the case's draft was rebuilt",
    "seal_refused": "sealing was asked for but the release gate did not hold",
    "sealed": "a submission was sealed",
    "print_queued": "a mailing was placed in the print folder",
    "copies_made": "a copy set was written on request",
    "verify_run": "a submission was verified",
    "log_rotated": "the audit log was rotated; this entry starts the new file",
}

_RESERVED = {"ts", "event", "case", "doc", "actor", "seq", "prev"}
# Keys that would carry file names, document text or member data: never stored, even by mistake.
_FORBIDDEN = {"source", "path", "file", "filename", "file_name", "name", "text", "title", "member",
              "member_name", "member_id", "date_of_birth", "dob", "address", "content"}
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_.:\-]{0,63}\Z")
_HEX_RE = re.compile(r"^[0-9a-f]{12,64}\Z")
_CASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_ROTATED_RE = re.compile(r"^audit-(\d{6,})\.jsonl\Z")


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name (container without passwd entry)
        return str(os.getuid())


def _entry_hash(line: str | bytes) -> str:
    data = line.encode("utf-8") if isinstance(line, str) else line
    return hashlib.sha256(data).hexdigest()


def head_record_path(config: Config) -> Path:
    """state/audit.head: the last entry's seq and hash, kept outside the log (truncation check)."""
    return config.paths.state / "audit.head"


def log_files(config: Config) -> list[Path]:
    """Every file of the log in chain order: audit-000001.jsonl, ..., then audit.jsonl."""
    current = config.audit_log
    rotated = []
    if current.parent.is_dir():
        for child in current.parent.iterdir():
            match = _ROTATED_RE.match(child.name)
            if match and child.is_file():
                rotated.append((int(match.group(1)), child))
    files = [path for _, path in sorted(rotated)]
    if current.is_file():
        files.append(current)
    return files


# --- the head side-record ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str
    size: int  # size of state/audit.jsonl after the last append
    rotated: int  # how many rotated files exist (the next one is rotated + 1)

    def to_json(self) -> str:
        return json.dumps({"schema": HEAD_SCHEMA, "seq": self.seq, "hash": self.hash,
                           "size": self.size, "rotated": self.rotated}, sort_keys=True) + "\n"


def _read_head(config: Config) -> _Head | None:
    try:
        raw = json.loads(head_record_path(config).read_text(encoding="utf-8"))
        return _Head(seq=int(raw["seq"]), hash=str(raw["hash"]), size=int(raw["size"]),
                     rotated=int(raw.get("rotated", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _last_line(path: Path) -> bytes | None:
    """The last non-empty line of `path`, read backwards (never the whole file)."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        data = b""
        position = end
        while position > 0:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
            stripped = data.rstrip(b"\n")
            if b"\n" in stripped or position == 0:
                break
        stripped = data.rstrip(b"\n")
        if not stripped:
            return None
        return stripped.rsplit(b"\n", 1)[-1]


def _state_from_log(config: Config) -> _Head:
    """Rebuild the head from the log itself (no side-record yet): read only the last line."""
    files = log_files(config)
    rotated = sum(1 for f in files if f != config.audit_log)
    size = config.audit_log.stat().st_size if config.audit_log.is_file() else 0
    for path in reversed(files):
        line = _last_line(path)
        if line is None:
            continue
        try:
            seq = int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            seq = 0  # unreadable tail: verify_chain reports it; keep counting from here
        return _Head(seq=seq, hash=_entry_hash(line), size=size, rotated=rotated)
    return _Head(seq=0, hash=GENESIS, size=size, rotated=rotated)


def _current_state(config: Config) -> _Head:
    """What the next entry chains to. Cheap: the side-record, checked against the log's size.

    If the log grew past the recorded size and the extra lines chain from the recorded head, the
    service crashed between an append and the head update: adopt them. In every other mismatch
    (the log is shorter, or was changed) keep the recorded head, so the next entry's `prev` shows
    the break to `verify_chain` instead of papering over it.
    """
    head = _read_head(config)
    if head is None:
        return _state_from_log(config)
    path = config.audit_log
    size = path.stat().st_size if path.is_file() else 0
    if size == head.size or size < head.size:
        return head
    with open(path, "rb") as handle:
        handle.seek(head.size)
        extra = handle.read()
    seq, prev = head.seq, head.hash
    if not extra.endswith(b"\n"):
        return head
    for line in extra[:-1].split(b"\n"):
        try:
            entry = json.loads(line)
            if entry["prev"] != prev or entry["seq"] != seq + 1:
                return head
        except (ValueError, KeyError, TypeError):
            return head
        seq, prev = seq + 1, _entry_hash(line)
    return _Head(seq=seq, hash=prev, size=size, rotated=head.rotated)


# --- writing ----------------------------------------------------------------------------------

def _clean_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS]
    if isinstance(value, (list, tuple)):
        return [_clean_value(item) for item in value if not isinstance(item, (list, tuple, dict))]
    return "[unsupported]"


def _clean_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _RESERVED:
            raise ValueError(f"audit field {key!r} is reserved")
        # A file name or document text must never reach the audit log, even by mistake.
        out[key] = "[redacted]" if key.lower() in _FORBIDDEN else _clean_value(value)
    return out


def _append(path: Path, line: bytes) -> int:
    """Append one line and fsync it; returns the file's size afterwards."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        # A torn earlier write (crash mid-line) must not swallow this entry: end that line first.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line + b"\n")
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _lock(config: Config) -> FileLock:
    return FileLock(str(config.audit_log) + ".lock", timeout=LOCK_TIMEOUT_SECONDS, mode=FILE_MODE)


def _write_locked(config: Config, state: _Head, entry: dict) -> tuple[dict, _Head]:
    entry["seq"] = state.seq + 1
    entry["prev"] = state.hash
    line = json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    size = _append(config.audit_log, line)
    new_state = _Head(seq=entry["seq"], hash=_entry_hash(line), size=size, rotated=state.rotated)
    atomic_write_text(head_record_path(config), new_state.to_json())
    return entry, new_state


def _rotate_locked(config: Config, state: _Head) -> _Head:
    current = config.audit_log
    number = state.rotated + 1
    target = current.with_name(f"audit-{number:06d}.jsonl")
    while target.exists():  # never overwrite a rotated file (a head record from an older state/)
        number += 1
        target = current.with_name(f"audit-{number:06d}.jsonl")
    os.replace(current, target)
    fsync_dir(current.parent)
    state = _Head(seq=state.seq, hash=state.hash, size=0, rotated=number)
    entry = {"ts": _now(), "event": "log_rotated", "case": None, "doc": None, "actor": "service",
             "previous_file": target.name, "previous_last_seq": state.seq}
    _, state = _write_locked(config, state, entry)
    return state


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def record(config: Config, event: str, *, case: str | None = None, doc: str | None = None,
           actor: str = "service", **fields: Any) -> dict:
    """Append one event; returns the entry written (with its `seq` and `prev` hash).

    `case` is a case id, `doc` a document's SHA-256 (stored as its 12-character short form),
    `actor` the OS user who asked (`current_user()`) or "service". `fields` are the event's facts:
    numbers, booleans, short text (a rule id, an override's reason), or lists of those; keys that
    would carry a file name or member data (source, path, name, title, text, ...) are redacted.
    Cheap: reads the small head record, not the log.
    """
    entry = _new_entry(event, case=case, doc=doc, actor=actor, fields=fields)
    path = config.audit_log
    ensure_dir(path.parent)
    try:
        with _lock(config):
            state = _current_state(config)
            if state.size >= MAX_LOG_BYTES:
                state = _rotate_locked(config, state)
            entry, _ = _write_locked(config, state, entry)
    except Timeout as exc:
        raise PacketError("the audit log is locked by another process for too long",
                          reason="audit_locked") from exc
    return entry


def _new_entry(event: str, *, case: str | None, doc: str | None, actor: str, fields: dict[str, Any]) -> dict:
    if not _EVENT_RE.match(event or ""):
        raise ValueError(f"audit event must be a lower-case code, not {event!r}")
    entry: dict[str, Any] = {
        "ts": _now(), "event": event,
        "case": case if case is None or _CASE_RE.match(case) else "[invalid]",
        "doc": None if doc is None else (doc.lower()[:12] if _HEX_RE.match(doc.lower()) else "[invalid]"),
        "actor": str(actor or current_user())[:64],
    }
    entry.update(_clean_fields(fields))
    return entry


def record_many(config: Config, events: list[tuple[str, dict[str, Any]]]) -> list[dict]:
    """Append several events at once: one lock, one write and one fsync, one head update.

    Each item is (event, keyword arguments of `record`: case, doc, actor and the event's fields).
    The entries are exactly those `record` would write one by one (same fields, chained in order,
    rotating at MAX_LOG_BYTES in between if needed); only the disk work is shared. A crash between
    the append and the head update is recovered like a single entry's (see `_current_state`).
    """
    entries = []
    for event, arguments in events:
        arguments = dict(arguments)
        case, doc = arguments.pop("case", None), arguments.pop("doc", None)
        actor = arguments.pop("actor", "service")
        entries.append(_new_entry(event, case=case, doc=doc, actor=actor, fields=arguments))
    if not entries:
        return []
    ensure_dir(config.audit_log.parent)
    try:
        with _lock(config):
            state = _current_state(config)
            lines: list[bytes] = []
            for entry in entries:
                if state.size + sum(len(line) + 1 for line in lines) >= MAX_LOG_BYTES:
                    state = _flush_locked(config, state, lines)
                    lines = []
                    state = _rotate_locked(config, state)
                entry["seq"] = state.seq + len(lines) + 1
                entry["prev"] = state.hash if not lines else _entry_hash(lines[-1])
                lines.append(json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
            _flush_locked(config, state, lines)
    except Timeout as exc:
        raise PacketError("the audit log is locked by another process for too long",
                          reason="audit_locked") from exc
    return entries


def _flush_locked(config: Config, state: _Head, lines: list[bytes]) -> _Head:
    """Append already chained lines with one write and one fsync, then record the new head."""
    if not lines:
        return state
    size = _append(config.audit_log, b"\n".join(lines))
    new_state = _Head(seq=state.seq + len(lines), hash=_entry_hash(lines[-1]), size=size, rotated=state.rotated)
    atomic_write_text(head_record_path(config), new_state.to_json())
    return new_state


class Batch:
    """Events collected during one step of a build and appended together by `flush` (record_many).

    For the per-document events of a build: `batch.record(event, case=..., doc=..., **fields)`
    takes the same arguments as `record` without the configuration. Nothing is written until
    `flush`; an event that cannot be recorded raises there, as `record` would.
    """

    def __init__(self, config: Config):
        self.config = config
        self.events: list[tuple[str, dict[str, Any]]] = []

    def record(self, event: str, **arguments: Any) -> None:
        _new_entry(event, case=arguments.get("case"), doc=arguments.get("doc"), actor="service",
                   fields={k: v for k, v in arguments.items() if k not in ("case", "doc", "actor")})  # check now
        self.events.append((event, arguments))

    def flush(self) -> list[dict]:
        events, self.events = self.events, []
        return record_many(self.config, events)


def rotate(config: Config) -> Path | None:
    """Rotate now (normally automatic at MAX_LOG_BYTES); returns the rotated file, or None if empty."""
    ensure_dir(config.audit_log.parent)
    with _lock(config):
        state = _current_state(config)
        if not config.audit_log.is_file() or config.audit_log.stat().st_size == 0:
            return None
        state = _rotate_locked(config, state)
    return config.audit_log.with_name(f"audit-{state.rotated:06d}.jsonl")


def entry_hash(entry: dict) -> str:
    """The chain hash of an entry as `record` / `record_many` returned it (with its seq and prev)."""
    return _entry_hash(json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))


def find_last(config: Config, *, case: str, submission: int, events: set[str]) -> tuple[int, str] | None:
    """(seq, hash) of the last entry of `events` for a case's submission (a seal's recovery)."""
    found = None
    for line in _iter_lines(config):
        entry = line.entry
        if (entry and entry.get("event") in events and entry.get("case") == case
                and entry.get("submission") == submission and isinstance(entry.get("seq"), int)):
            found = (entry["seq"], line.hash)
    return found


def sealed_record_problems(config: Config, submission_dir: Path) -> list[str]:
    """A published submission's manifest hash against its `sealed` entry and its archive snapshot."""
    try:
        key = anchor.load_key(config)
    except PacketError as exc:
        return [f"the audit key cannot be used: {exc.message}"]
    return anchor.submission_problems(config, submission_dir, anchor.sealed_entries(iter_entries(config)), key)


def checkpoint(config: Config) -> dict:
    """The chain head as a checkpoint for an auditor to keep (signed when the audit key is set)."""
    with _lock(config):
        state = _current_state(config)
    return anchor.make_checkpoint(state.seq, state.hash, _now(), anchor.load_key(config))


def head(config: Config) -> str:
    """The hash of the last entry (recorded in each manifest at sealing); 64 zeros when empty."""
    path = config.audit_log
    if not path.parent.is_dir():
        return GENESIS
    with _lock(config):
        return _current_state(config).hash


# --- reading and checking ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Line:
    file: Path
    line_no: int  # 1-based within its file
    raw: bytes
    entry: dict | None  # None: not a JSON object
    hash: str


def _iter_lines(config: Config) -> Iterator[_Line]:
    for path in log_files(config):
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, 1):
                raw = raw[:-1] if raw.endswith(b"\n") else raw
                if not raw:
                    continue
                try:
                    entry = json.loads(raw)
                except ValueError:
                    entry = None
                if not isinstance(entry, dict):
                    entry = None
                yield _Line(path, line_no, raw, entry, _entry_hash(raw))


def iter_entries(config: Config) -> Iterator[dict]:
    """Every readable entry of the log in chain order (for the board and the export)."""
    for line in _iter_lines(config):
        if line.entry is not None:
            yield line.entry


@dataclass(frozen=True)
class AuditBreak:
    """One place where the chain does not hold. `line` is 1-based within `file`."""

    file: str
    line: int | None
    seq: int | None
    problem: str

    def text(self) -> str:
        where = f"{self.file} line {self.line}" if self.line is not None else self.file
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    files: tuple[str, ...]
    head: str  # hash of the last line
    breaks: tuple[AuditBreak, ...] = ()
    notes: tuple[str, ...] = ()
    manifest_heads_checked: int = 0

    @property
    def first_break(self) -> AuditBreak | None:
        return self.breaks[0] if self.breaks else None

    def text(self) -> str:
        lines = []
        if self.ok:
            lines.append(f"Audit log OK: {self.entries} entries in {len(self.files)} file(s), chain intact.")
        else:
            lines.append(f"Audit log BROKEN: {len(self.breaks)} problem(s); the first is at "
                         f"{self.breaks[0].text()}")
            for item in self.breaks[1:20]:
                lines.append(f"  also: {item.text()}")
            if len(self.breaks) > 20:
                lines.append(f"  ... and {len(self.breaks) - 20} more")
        lines.append(f"Chain head: {self.head} (note it in your own records to detect later rewrites).")
        lines.append(f"Checked against state/audit.head and {self.manifest_heads_checked} sealed "
                     "manifest head(s).")
        lines.extend(self.notes)
        return "\n".join(lines)


def verify_chain(config: Config, checkpoints: list[dict] = ()) -> AuditReport:
    """Recompute the chain across every file; check it against audit.head, the sealed heads, the
    sealed submissions, their registers and any checkpoints an auditor kept.

    Catches an edited line (the next entry's `prev` no longer matches, or for the last line the
    head record), a deleted or moved line (`prev` and `seq` do not follow), truncation (the log
    ends before the entry recorded in state/audit.head or in a sealed manifest), a missing or
    rewritten `sealed` entry (against the submission's manifest hash and the chain position its
    register recorded), and, with the audit key or kept checkpoints, a consistent rewrite
    (packet.records.anchor). Read-only.
    """
    breaks: list[AuditBreak] = []
    notes: list[str] = []
    prev_hash, expected_seq = GENESIS, 1
    by_seq: dict[int, str] = {}
    hashes: set[str] = {GENESIS}
    count = 0
    last: _Line | None = None
    for line in _iter_lines(config):
        count += 1
        name = line.file.name
        entry = line.entry
        if entry is None or not isinstance(entry.get("seq"), int) or not isinstance(entry.get("prev"), str):
            # Keep chaining from the last good entry: a torn write (crash mid-line) then shows
            # as this one break, an edited line also as the gap it leaves in `seq`.
            breaks.append(AuditBreak(name, line.line_no, None,
                                     "not a valid audit entry (changed by hand, or a torn write)"))
            continue
        seq = entry["seq"]
        if seq != expected_seq:
            if seq > expected_seq:
                problem = (f"entry {seq} follows entry {expected_seq - 1}: "
                           f"{_entries(expected_seq, seq - 1)} deleted or moved")
            else:
                problem = f"entry {seq} appears after entry {expected_seq - 1}: entries reordered or copied"
            breaks.append(AuditBreak(name, line.line_no, seq, problem))
        elif entry["prev"] != prev_hash:
            previous = f"{last.file.name} line {last.line_no}" if last else "the start"
            breaks.append(AuditBreak(name, line.line_no, seq,
                                     f"entry {seq} does not chain to the entry before it ({previous}): "
                                     "that entry was changed after it was written"))
        prev_hash, expected_seq, last = line.hash, seq + 1, line
        by_seq.setdefault(seq, line.hash)
        hashes.add(line.hash)

    recorded = _read_head(config)
    last_seq = expected_seq - 1
    head_file = "state/audit.head"
    if recorded is None:
        if count:
            breaks.append(AuditBreak(head_file, None, None,
                                     "missing or unreadable: the end of the log cannot be checked"))
    elif recorded.seq > last_seq:
        where = last.file.name if last else config.audit_log.name
        breaks.append(AuditBreak(where, last.line_no if last else None, last_seq or None,
                                 f"the log ends at entry {last_seq} but entry {recorded.seq} was "
                                 f"written: {_entries(last_seq + 1, recorded.seq)} removed (truncated)"))
    elif by_seq.get(recorded.seq) != recorded.hash:
        where = last.file.name if last else config.audit_log.name
        breaks.append(AuditBreak(where, last.line_no if last else None, recorded.seq,
                                 f"entry {recorded.seq} differs from the one recorded in {head_file}: "
                                 "changed after it was written"))
    elif recorded.seq < last_seq:
        notes.append(f"Note: {head_file} lags {last_seq - recorded.seq} entry(ies) behind the log "
                     "(the service stopped between an append and the head update); not a break.")

    manifest_heads = anchor.manifest_heads(config)
    for where, value in manifest_heads:
        if value not in hashes:
            breaks.append(AuditBreak(config.audit_log.name, None, None,
                                     f"the chain head recorded when {where} was sealed "
                                     f"({value[:12]}...) is not in the log: entries up to that seal "
                                     "were removed or rewritten"))
    key = anchor.load_key(config)
    if key is not None and anchor.key_writable(config):
        notes.append("Note: the audit key is writable by this user, so it cannot show that this user did not "
                     "rewrite the log; keep it root-owned and read-only (README, 'Audit trail').")
    anchored_seq = 0
    for checkpoint in checkpoints:
        problems = anchor.checkpoint_problems(checkpoint, by_seq, key)
        breaks += [AuditBreak(config.audit_log.name, None, None, problem) for problem in problems]
        if not problems and isinstance(checkpoint.get("seq"), int):
            anchored_seq = max(anchored_seq, checkpoint["seq"])
    sealed, _ = anchor.outbox_problems(config, anchor.sealed_entries(iter_entries(config)), key, anchored_seq)
    for problem in sealed + anchor.register_problems(config, by_seq):
        breaks.append(AuditBreak(config.audit_log.name, None, None, problem))
    files = tuple(path.name for path in log_files(config))
    return AuditReport(ok=not breaks, entries=count, files=files,
                       head=last.hash if last else GENESIS, breaks=tuple(breaks), notes=tuple(notes),
                       manifest_heads_checked=len(manifest_heads))


def _entries(first: int, last: int) -> str:
    return f"entry {first} was" if first == last else f"entries {first}-{last} were"
