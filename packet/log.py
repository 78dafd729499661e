"""The service log: one line per event on standard error, as JSON or as text, with no PHI.

Owns: the log format, its level, and the rule that keeps protected health information out of it.
Must not: receive member names, dates of birth, member ids, file names or document text. Callers
pass a case id and a document's short hash (`packet.fsutil.short_hash`); any other field must be a
number, a boolean, or a short code from a fixed vocabulary (a `reason` code, a state, a count).
Anything else is dropped, so a careless caller cannot leak a file name into the log.

The log never shares standard output with a command's answer: it goes to standard error. The
command line chooses the format (`json`, one object per line, for machines and the service; `text`
for a person at a terminal) and the level (`--quiet`: warnings and errors only; `--verbose`: debug).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from datetime import datetime, timezone
from typing import IO, Any

_CODE = re.compile(r"[a-z0-9_.:\-]{1,64}")  # codes are lower-case identifiers, never free text
_CASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FORMATS = ("json", "text")
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_lock = threading.Lock()
_stream: IO[str] | None = None
_format = "json"
_threshold = LEVELS["debug"]


def set_stream(stream: IO[str] | None) -> None:
    """Redirect the log (tests); None means standard error."""
    global _stream
    _stream = stream


def configure(*, fmt: str | None = None, level: str | None = None) -> None:
    """Choose the format ("json" | "text") and the lowest level written ("debug" ... "error")."""
    global _format, _threshold
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        _format = fmt
    if level is not None:
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
        _threshold = LEVELS[level]


def _safe(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _CODE.fullmatch(value):
        return value
    return "[redacted]"


def _text_line(record: dict[str, Any]) -> str:
    head = f"{record['ts'][11:19]} {record['level']:<7} {record['event']}"
    rest = " ".join(f"{key}={value}" for key, value in record.items()
                    if key not in ("ts", "level", "event") and value is not None)
    return f"{head} {rest}".rstrip()


def log(event: str, *, case: str | None = None, doc: str | None = None, level: str = "info", **fields: Any) -> None:
    """Write one log line. `case` is a case id; `doc` a document short hash."""
    if LEVELS.get(level, LEVELS["error"]) < _threshold:
        return
    record: dict[str, Any] = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "level": level if level in LEVELS else "error",
        "event": _safe(event),
    }
    if case is not None:
        # Case ids are validated (letters, digits, . _ -) before they reach the log.
        record["case"] = case if isinstance(case, str) and _CASE.fullmatch(case) else "[invalid]"
    if doc is not None:
        record["doc"] = _safe(doc)
    for key, value in fields.items():
        record[key] = _safe(value)
    line = _text_line(record) if _format == "text" else json.dumps(record, sort_keys=False)
    with _lock:
        stream = _stream or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # nobody reads the log any more (a closed pipe): the work goes on


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
