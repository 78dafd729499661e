"""The watcher's per-file records: what it has seen of every clerk's file, and what came of it.

Owns: `state/files/<CASE-ID>.json`, one record per file of a case folder (relative path, size,
modification time, SHA-256, outcome, retry count and next retry time) plus the fingerprint of the
last draft built and of the last seal that failed its gate. With these the watcher never queues a
file twice, never reprocesses an unchanged case after a restart, never forgets a file, and never
retries a failed seal in a loop. Written atomically (packet.fsutil), so a crash leaves the old
record or the new one.
Must not: read documents, touch the inbox or outbox, or log. The records hold file names, so they
stay in state/ (owner and group only) and never reach the service log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from packet.config import Config
from packet.fsutil import atomic_write_text, ensure_dir

SCHEMA = "imr-packet/filestate@1"

# Outcomes of a file, in the order a file usually passes through them.
SETTLED = "settled"  # complete (size and mtime held for settle_seconds); not yet built
TAKEN = "taken"  # in the case's draft as a document
TRANSIENT = "transient"  # failed in a way worth retrying; `attempts` and `next_try_at` say when
REFUSED = "refused"  # moved to _rejected/ by the build
OUTCOMES = (SETTLED, TAKEN, TRANSIENT, REFUSED)


@dataclass(frozen=True)
class FileRecord:
    relpath: str
    size: int
    mtime_ns: int
    sha256: str | None
    outcome: str
    attempts: int = 0  # transient failures so far (reset when the file changes)
    next_try_at: float | None = None  # wall-clock seconds (survives a restart)
    first_seen: str = ""  # ISO time the watcher first found the file complete

    def same_file(self, size: int, mtime_ns: int) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns


@dataclass(frozen=True)
class CaseRecord:
    case_id: str
    files: dict[str, FileRecord] = field(default_factory=dict)
    built_fingerprint: str | None = None  # inputs of the last build that ran to its end
    build_outcome: str | None = None  # built | waiting (case.toml) | failed
    has_draft: bool = False  # the last build wrote outbox/<CASE-ID>/draft/
    failed_seal_fingerprint: str | None = None  # inputs (and READY) of the last failed seal
    failed_seal_reason: str | None = None  # a reason code, e.g. "gate"

    def with_file(self, record: FileRecord) -> CaseRecord:
        files = dict(self.files)
        files[record.relpath] = record
        return replace(self, files=files)

    def without_files(self, relpaths: set[str]) -> CaseRecord:
        if not relpaths & set(self.files):
            return self
        return replace(self, files={k: v for k, v in self.files.items() if k not in relpaths})

    def to_json(self) -> dict:
        data = asdict(self)
        data["schema"] = SCHEMA
        data["files"] = {k: asdict(v) for k, v in sorted(self.files.items())}
        return data

    @classmethod
    def from_json(cls, data: dict) -> CaseRecord:
        files = {}
        for relpath, raw in (data.get("files") or {}).items():
            files[relpath] = FileRecord(**raw)
        return cls(case_id=data["case_id"], files=files, built_fingerprint=data.get("built_fingerprint"),
                   build_outcome=data.get("build_outcome"), has_draft=bool(data.get("has_draft")),
                   failed_seal_fingerprint=data.get("failed_seal_fingerprint"),
                   failed_seal_reason=data.get("failed_seal_reason"))


def records_dir(config: Config) -> Path:
    return config.paths.state / "files"


def record_path(config: Config, case_id: str) -> Path:
    # Case ids are validated (packet.model.case.valid_case_id) before they get here: safe file names.
    return records_dir(config) / f"{case_id}.json"


def load(config: Config, case_id: str) -> CaseRecord:
    """The case's records; an empty record when there is none or it cannot be read.

    An unreadable record costs nothing but time: the watcher settles and builds the case again,
    and the build is idempotent (conversions are cached by content hash).
    """
    path = record_path(config, case_id)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("schema") != SCHEMA or data.get("case_id") != case_id:
            return CaseRecord(case_id=case_id)
        return CaseRecord.from_json(data)
    except (OSError, ValueError, TypeError, KeyError):
        return CaseRecord(case_id=case_id)


def save(config: Config, record: CaseRecord) -> None:
    ensure_dir(records_dir(config))
    atomic_write_text(record_path(config, record.case_id),
                      json.dumps(record.to_json(), indent=1, sort_keys=True) + "\n")


def forget(config: Config, case_id: str) -> None:
    """Drop the records of a case folder that no longer exists."""
    try:
        record_path(config, case_id).unlink()
    except FileNotFoundError:
        pass


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def fingerprint(*parts: object) -> str:
    """A stable digest of build inputs (JSON of `parts`), to tell "changed" from "unchanged"."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
