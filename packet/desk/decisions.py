"""A person's decision, written where the service reads decisions: the case's `overrides.toml`.

The file stays readable and keeps its comments (tomlkit edits it in place). The decision is recorded
as the same audit event a hand edit of the file gives (`override_added` / `_changed` / `_removed`,
packet.intake.folder.record_override_decisions), with the signed-in user as its actor. The watcher
sees the file change and rebuilds the draft, exactly as when a clerk edits the file by hand.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from packet.config import Config
from packet.errors import UsageError
from packet.fsutil import atomic_write_text
from packet.intake.folder import decisions_lock, load_overrides, received_problem, record_override_decisions
from packet.model.models import CATEGORY_ORDER

OVERRIDES = "overrides.toml"
HEADER = "Decisions by a person, keyed by the file's path in this case folder. They beat every rule."
REASON_FIELDS = ("privileged", "withhold_from_member", "release_to_member", "exclude", "identity_confirmed")
FIELDS = ("category", "title", "date", "received") + REASON_FIELDS
# Decisions that may name some pages of the file only (`{ reason = "...", pages = "2, 5-6" }`):
# identity_confirmed vouches for those pages, exclude removes them from every output.
PAGE_FIELDS = ("identity_confirmed", "exclude")
PAGES_RE = re.compile(r"\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?")
MAX_TEXT = 500


@dataclass(frozen=True)
class Decision:
    field: str  # one of FIELDS
    value: object  # None removes the decision
    pages: str | None = None  # identity_confirmed, exclude: "2" or "2, 5-6" (the file's pages); else the whole file


def _clean_text(value: str, what: str) -> str:
    text = " ".join(str(value).split())
    if not text:
        raise UsageError(f"{what}: write the reason (it is recorded with your name)")
    if len(text) > MAX_TEXT:
        raise UsageError(f"{what}: at most {MAX_TEXT} characters")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise UsageError(f"{what}: control characters are not allowed")
    return text


def validate(decision: Decision, document_pages: int) -> object:
    """The TOML value of a decision, or UsageError saying what is wrong with it."""
    field, value = decision.field, decision.value
    if field not in FIELDS:
        raise UsageError(f"{field!r} is not a decision the desk can record")
    if value is None:
        return None
    if field == "category":
        if value not in CATEGORY_ORDER or value == "needs_review":
            raise UsageError("category must be medical_records, correspondence or plan_statements")
        return value
    if field in REASON_FIELDS or field == "title":
        return _clean_text(str(value), field.replace("_", " "))
    if field == "date":
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise UsageError("date must look like 2026-08-14") from None
    if field == "received":
        return parse_received(str(value))
    raise UsageError(f"{field!r} is not a decision the desk can record")


def parse_received(text: str) -> dt.datetime | dt.date:
    """When the plan received the file, as overrides.toml's `received` holds it (the same value a
    clerk writes by hand): a date (the start of that day in the plan's time zone), a local time
    (2026-11-25T16:10 or "2026-11-25 16:10", the plan's time zone) or a time with its offset."""
    text = text.strip()
    try:
        value: dt.datetime | dt.date = (dt.date.fromisoformat(text) if len(text) == 10
                                        else dt.datetime.fromisoformat(text.replace(" ", "T", 1)))
    except ValueError:
        raise UsageError("received must look like 2026-11-25 or 2026-11-25T16:10 "
                         "(or with its offset, 2026-11-25T16:10:00-08:00)") from None
    if isinstance(value, dt.datetime) and value.microsecond:
        value = value.replace(microsecond=0)
    problem = received_problem(value)
    if problem:
        raise UsageError(f"received {problem}")
    return value


def check_pages(pages: str | None, document_pages: int) -> str | None:
    if not pages or not pages.strip():
        return None
    parts = []
    for part in pages.split(","):
        match = PAGES_RE.fullmatch(part)
        if not match:
            raise UsageError('pages must be page numbers and ranges, like "2, 5-6"')
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= first <= last <= max(document_pages, 1):
            raise UsageError(f"pages must be within 1-{document_pages}")
        parts.append(f"{first}-{last}" if last != first else str(first))
    return ", ".join(parts)


def _every_page(pages: str, document_pages: int) -> bool:
    covered: set[int] = set()
    for part in pages.split(","):
        low, _, high = part.strip().partition("-")
        covered.update(range(int(low), int(high or low) + 1))
    return covered >= set(range(1, document_pages + 1))


def apply(config: Config, case_id: str, source: str, sha256: str, decision: Decision, *, actor: str,
          document_pages: int = 1) -> tuple[object, object]:
    """Write one decision for the file `source` of the case; returns (old, new) values."""
    value = validate(decision, document_pages)
    pages = check_pages(decision.pages, document_pages) if decision.field in PAGE_FIELDS else None
    if decision.field == "exclude" and pages and value is not None and _every_page(pages, document_pages):
        pages = None  # every page removed: the whole file is excluded, and says so
    case_dir = config.paths.inbox / case_id
    if not case_dir.is_dir():
        raise UsageError("the case folder is no longer in the inbox")
    if not source or source.startswith("/") or ".." in Path(source).parts:
        raise UsageError("the document's path is not usable")
    path = case_dir / OVERRIDES
    if path.is_symlink():
        raise UsageError("overrides.toml is a link; replace it with a plain file first")
    with decisions_lock(config, case_id):
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        try:
            document = tomlkit.parse(text) if text.strip() else tomlkit.document()
        except tomlkit.exceptions.ParseError as exc:
            raise UsageError(f"overrides.toml cannot be read ({exc}); fix it by hand first") from exc
        if not text.strip():
            document.add(tomlkit.comment(HEADER))
        table = document.get(source)
        if table is None and value is None:
            return None, None
        if table is None:
            table = tomlkit.table()
            document.add(source, table)
        old = table.get(decision.field)
        old = old.unwrap() if hasattr(old, "unwrap") else old
        if value is None:
            table.pop(decision.field, None)
            if not table:
                document.pop(source)
        elif decision.field in PAGE_FIELDS and pages:
            vouch = tomlkit.inline_table()
            vouch.update({"reason": value, "pages": pages})
            table[decision.field] = vouch
        else:
            table[decision.field] = value
        atomic_write_text(path, tomlkit.dumps(document))
        try:
            os.chmod(path, 0o660)
        except OSError:
            pass
        overrides, _ = load_overrides(case_dir)
        record_override_decisions(config, case_id, case_dir, overrides, actor=actor, via="desk")
    return old, value
