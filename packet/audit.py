"""The tamper-evident audit log: state/audit.jsonl, each entry chained to the one before it.

Owns: appending events (with fsync) and checking the chain. Must not: hold document text or file
names; member data only as needed to identify the case (the case id).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from typing import Any

from filelock import FileLock

from .config import Config
from .fsutil import FILE_MODE, ensure_dir

GENESIS = "0" * 64


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name (container without passwd entry)
        return str(os.getuid())


def _entry_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _last_hash(path) -> str:
    if not path.exists():
        return GENESIS
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        block = min(size, 65536)
        handle.seek(size - block)
        tail = handle.read().decode("utf-8", "replace").rstrip("\n").split("\n")
    last = tail[-1] if tail and tail[-1] else ""
    return _entry_hash(last) if last else GENESIS


def record(config: Config, event: str, *, case: str | None = None, doc: str | None = None,
           actor: str = "service", **fields: Any) -> dict:
    """Append one event; returns the entry written (with its `prev` hash)."""
    path = config.audit_log
    ensure_dir(path.parent)
    with FileLock(str(path) + ".lock"):
        entry = {"ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
                 "event": event, "case": case, "doc": doc, "actor": actor}
        entry.update(fields)
        entry["prev"] = _last_hash(path)
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    return entry


def head(config: Config) -> str:
    """The hash of the last entry (recorded in each manifest at sealing)."""
    return _last_hash(config.audit_log)
