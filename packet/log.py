"""The service log: one JSON object per line on standard output, with no PHI.

Owns: the log format and the rule that keeps protected health information out of it.
Must not: receive member names, dates of birth, member ids, file names or document text. Callers
pass a case id and a document's short hash (`packet.fsutil.short_hash`); any other field must be a
number, a boolean, or a short code from a fixed vocabulary (a `reason` code, a state, a count).
Anything else is dropped, so a careless caller cannot leak a file name into the log.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from datetime import datetime, timezone
from typing import IO, Any

_CODE = re.compile(r"^[a-z0-9_.:\-]{1,64}$")  # codes are lower-case identifiers, never free text
_lock = threading.Lock()
_stream: IO[str] | None = None


def set_stream(stream: IO[str] | None) -> None:
    """Redirect the log (tests); None means standard output."""
    global _stream
    _stream = stream


def _safe(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _CODE.match(value):
        return value
    return "[redacted]"


def log(event: str, *, case: str | None = None, doc: str | None = None, level: str = "info", **fields: Any) -> None:
    """Write one log line. `case` is a case id; `doc` a document short hash."""
    record: dict[str, Any] = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "level": level,
        "event": _safe(event),
    }
    if case is not None:
        # Case ids are validated (letters, digits, . _ -) before they reach the log.
        record["case"] = case if re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", case) else "[invalid]"
    if doc is not None:
        record["doc"] = _safe(doc)
    for key, value in fields.items():
        record[key] = _safe(value)
    line = json.dumps(record, sort_keys=False)
    with _lock:
        stream = _stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


def log_exception(event: str, exc: BaseException, *, case: str | None = None, doc: str | None = None) -> None:
    """Log an unexpected error by type and where it happened, never its message (it may hold PHI).

    The "where" field lists the innermost frames as module:function:line: code locations, which
    carry no member data, so a developer can find the failing line from the log alone.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        module = tb.tb_frame.f_globals.get("__name__", "?").rsplit(".", 1)[-1]
        frames.append(f"{module}:{code.co_name}:{tb.tb_lineno}")
        tb = tb.tb_next
    where = re.sub(r"[^a-z0-9_.:\-]", "", ".".join(frames[-3:]).lower())[-64:]
    log(event, case=case, doc=doc, level="error", error=type(exc).__name__.lower()[:64], where=where or None)
