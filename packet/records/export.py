"""The audit log as a spreadsheet: `export_csv` writes a period's events and sealed submissions.

Owns: the CSV columns (a stable interface for auditors' spreadsheets) and their spreadsheet-safe
values. Must not: write to the log, or export file names, document text or member data.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from typing import Any, TextIO

from packet.config import Config
from packet.errors import PacketError
from packet.records.audit import iter_entries
from packet.records.layout import MANIFEST, read_manifest

# The CSV columns, in order. A stable interface for auditors' spreadsheets: add at the end only.
EXPORT_COLUMNS = (
    "time_utc",     # when the event was recorded (ISO 8601, UTC) as in the log
    "local_time",   # the same moment in the plan's time zone ([calendar] timezone)
    "seq",          # the entry's number in the log (empty for a manifest-only row)
    "event",        # event code (audit.EVENTS)
    "case_id",
    "doc",          # document short hash (first 12 hex digits of its SHA-256)
    "actor",        # OS user or "service"
    "submission",   # sealed events: the submission number
    "kind",         # initial | supplement
    "documents",    # number of documents in the submission
    "due",          # the submission's due time
    "sealed_at",
    "on_time",      # true | false
    "source",       # "audit": from the log; "manifest": a sealed submission with no sealed event
    "details",      # the event's other fields as JSON (rule, reason, counts, ...)
)
_MAIN_KEYS = {"ts", "seq", "event", "case", "doc", "actor", "prev"}


def _local(moment: dt.datetime, config: Config) -> dt.datetime:
    return moment.astimezone(config.calendar.tz)


def _parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _sealed_manifests(config: Config) -> dict[tuple[str, int], dict]:
    out = {}
    outbox = config.paths.outbox
    if not outbox.is_dir():
        return out
    for manifest in sorted(outbox.glob(f"*/submission-*/{MANIFEST}")):
        try:
            data = read_manifest(manifest)
            out[(str(data.get("case_id") or manifest.parent.parent.name), int(data["submission"]))] = data
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _spreadsheet_safe(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection): quote it.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _submission_facts(manifest: dict) -> dict[str, Any]:
    deadline = manifest.get("deadline") if isinstance(manifest.get("deadline"), dict) else {}
    documents = manifest.get("documents")
    return {"submission": manifest.get("submission"), "kind": manifest.get("kind"),
            "documents": len(documents) if isinstance(documents, list) else None,
            "due": deadline.get("due"), "sealed_at": manifest.get("sealed_at"),
            "on_time": manifest.get("on_time")}


def export_csv(config: Config, date_from: dt.date, date_to: dt.date, out: TextIO) -> None:
    """The events and submissions from `date_from` to `date_to` (inclusive, plan time zone) as CSV.

    One row per event, columns `EXPORT_COLUMNS`. A `sealed` event's row carries its submission's
    manifest facts; a sealed submission of the period with no `sealed` event in the log gets a row
    of its own with source "manifest", so a gap in the log shows in the spreadsheet.
    """
    if date_to < date_from:
        raise PacketError(f"--to {date_to} is before --from {date_from}", reason="usage")
    manifests = _sealed_manifests(config)
    seen: set[tuple[str, int]] = set()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()

    def in_period(moment: dt.datetime | None) -> bool:
        return moment is not None and date_from <= _local(moment, config).date() <= date_to

    for entry in iter_entries(config):
        moment = _parse_time(entry.get("ts"))
        if not in_period(moment):
            continue
        row: dict[str, Any] = {
            "time_utc": entry.get("ts"), "local_time": _local(moment, config).isoformat(),
            "seq": entry.get("seq"), "event": entry.get("event"), "case_id": entry.get("case"),
            "doc": entry.get("doc"), "actor": entry.get("actor"), "source": "audit",
            "details": json.dumps({k: v for k, v in entry.items() if k not in _MAIN_KEYS},
                                  sort_keys=True, ensure_ascii=False),
        }
        if entry.get("event") == "sealed":
            try:
                key = (str(entry.get("case")), int(entry.get("submission")))
            except (TypeError, ValueError):
                key = (str(entry.get("case")), -1)
            manifest = manifests.get(key)
            if manifest is not None:
                row.update(_submission_facts(manifest))
                seen.add(key)
            else:
                row["submission"] = entry.get("submission")
        writer.writerow({k: _spreadsheet_safe(row.get(k)) for k in EXPORT_COLUMNS})

    for key, manifest in sorted(manifests.items()):
        sealed_at = _parse_time(manifest.get("sealed_at"))
        if key in seen or not in_period(sealed_at):
            continue
        row = {"time_utc": sealed_at.astimezone(dt.timezone.utc).isoformat(),
               "local_time": _local(sealed_at, config).isoformat(), "event": "sealed",
               "case_id": key[0], "source": "manifest", "details": "{}"}
        row.update(_submission_facts(manifest))
        writer.writerow({k: _spreadsheet_safe(row.get(k)) for k in EXPORT_COLUMNS})
