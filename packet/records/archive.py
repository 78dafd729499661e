"""The archive of a sealed submission: archive/<CASE-ID>/submission-NN/ holds the originals,
case.toml, overrides.toml and `_sealed/` (documents.json: every decision, so the outputs can be
rebuilt from the archive alone; converted/: the conversions used; SHA256SUMS: every file's hash).

Owns: the snapshot's JSON encoding (values decode to equal values), reading the snapshot, writing
and checking SHA256SUMS. Must not: decide anything, or write outside the folder it is given.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import fields
from pathlib import Path

from packet.fsutil import atomic_write_text, sha256_file
from packet.model.models import Decision, Document
from packet.records.layout import HASHES, SEALED_DIR, SNAPSHOT


def _encode(value):
    """A Document field as JSON that decodes to an equal value (dates, decisions, tuples kept)."""
    if isinstance(value, Decision):
        return {"__decision__": {"value": _encode(value.value), "rule": value.rule, "evidence": value.evidence}}
    if isinstance(value, dt.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot archive a value of type {type(value).__name__}")


def _decode(raw):
    if isinstance(raw, dict):
        if "__decision__" in raw:
            inner = raw["__decision__"]
            return Decision(value=_decode(inner["value"]), rule=inner["rule"], evidence=inner.get("evidence", ""))
        if "__datetime__" in raw:
            return dt.datetime.fromisoformat(raw["__datetime__"])
        if "__date__" in raw:
            return dt.date.fromisoformat(raw["__date__"])
        if "__tuple__" in raw:
            return tuple(_decode(v) for v in raw["__tuple__"])
    if isinstance(raw, list):
        return [_decode(v) for v in raw]
    return raw


# Fields written only when set, so the snapshot of a document without them reads as before.
_ONLY_WHEN_SET = ("removed_pages", "removed_reason", "removed_by")


def document_json(document: Document, pdf_rel: str) -> dict:
    entry = {f.name: _encode(getattr(document, f.name)) for f in fields(Document)
             if f.name != "pdf_path" and not (f.name in _ONLY_WHEN_SET and not getattr(document, f.name))}
    entry["pdf"] = pdf_rel
    return entry


def document_from(entry: dict, archive_dir: Path) -> Document:
    known = {f.name for f in fields(Document)} - {"pdf_path"}
    values = {name: _decode(value) for name, value in entry.items() if name in known}
    return Document(pdf_path=archive_dir / entry["pdf"], **values)


def record_json(value) -> dict:
    """A frozen dataclass (Deadline, Rejected) as JSON, field by field."""
    return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}


def record_from(cls, raw: dict):
    known = {f.name for f in fields(cls)}
    return cls(**{name: _decode(value) for name, value in raw.items() if name in known})


def write_snapshot(stage: Path, snapshot: dict) -> None:
    atomic_write_text(stage / SEALED_DIR / SNAPSHOT, json.dumps(snapshot, indent=2, ensure_ascii=False) + "\n")


def read_snapshot(archive_dir: Path) -> dict:
    """documents.json of an archived submission (OSError / ValueError when unreadable)."""
    with open(Path(archive_dir) / SEALED_DIR / SNAPSHOT, encoding="utf-8") as handle:
        return json.load(handle)


def write_hashes(stage: Path) -> None:
    """SHA256SUMS of every file under `stage` (but itself), sorted by path."""
    lines = []
    for dirpath, _dirnames, filenames in os.walk(stage):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(stage).as_posix()
            if rel != f"{SEALED_DIR}/{HASHES}":
                lines.append(f"{sha256_file(path)}  {rel}")
    atomic_write_text(stage / SEALED_DIR / HASHES, "\n".join(sorted(lines, key=lambda l: l[66:])) + "\n")


def check_archive(archive_dir: Path) -> list[str]:
    """Problems with an archived submission: files altered, missing or added since sealing."""
    sums = archive_dir / SEALED_DIR / HASHES
    if not sums.is_file():
        return [f"{archive_dir}: the list of hashes ({SEALED_DIR}/{HASHES}) is missing"]
    problems = []
    listed = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, rel = line.split("  ", 1)
            listed[rel] = digest
    for rel, digest in sorted(listed.items()):
        path = archive_dir / rel
        if not path.is_file():
            problems.append(f'archived file "{rel}" is missing')
        elif sha256_file(path) != digest:
            problems.append(f'archived file "{rel}" was altered after sealing (its SHA-256 changed)')
    for dirpath, _dirnames, filenames in os.walk(archive_dir):
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(archive_dir).as_posix()
            if rel not in listed and rel != f"{SEALED_DIR}/{HASHES}":
                problems.append(f'archived file "{rel}" was added after sealing')
    return problems
