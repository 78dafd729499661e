"""The classification cache: a document's decisions, remembered until something they depend on changes.

Owns: `state/cases/<CASE-ID>/classified.json` and the fingerprint that decides whether a remembered
set of decisions still holds. A fingerprint covers everything `packet.classify.rules.describe` reads:
the content (SHA-256, and the conversion cache's version, which fixes what the text is), the
conversion's page count and metadata title, the source's relative path, hint folder and
privileged folder, the person's override for that file, the rule tables and the plan's name and
address (heading titles), the people of case.toml (identity checks and titles), when the document
was first received (date plausibility), and the code of the classify modules themselves. When any of these
changes the document is simply classified again: a stale decision is never served.
Must not: decide anything itself (that is packet.classify.rules), hold anything but the decisions about
documents of its own case, or log. A damaged or outdated file counts as empty.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

from packet.intake import cache as conversion_cache
from packet.classify import dates, fields, identity, meaning, namewords, patterns, text, titles
from packet.classify import rules as classify
from packet.intake import folder as intake
from packet.model.case import CaseFacts
from packet.config import Config
from packet.fsutil import atomic_write_text
from packet.model.models import Converted, Decision, Document, Override, SourceFile

SCHEMA = "imr-packet/classified@1"
FILE_NAME = "classified.json"
_DECISIONS = ("title", "date", "category", "privileged", "withheld", "identity")


def _code_version() -> str:
    """A hash of the classifier's source: any change to it invalidates every remembered decision."""
    digest = hashlib.sha256(SCHEMA.encode("utf-8"))
    for module in (classify, dates, fields, identity, meaning, namewords, patterns, text, titles, intake,
                   conversion_cache):
        try:
            digest.update(Path(module.__file__).read_bytes())
        except (OSError, TypeError):
            digest.update(repr(module).encode("utf-8"))
    return digest.hexdigest()


_CODE_VERSION = _code_version()


def _plain(value: object) -> object:
    """A JSON-able rendering of configuration and case facts, for hashing only."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _config_part(config: Config, facts: CaseFacts | None) -> str:
    people = None
    if facts is not None:
        people = [_plain(facts.member), _plain(getattr(facts, "representative", None)), _plain(facts.provider)]
    shared = {"code": _CODE_VERSION, "conversion": conversion_cache.CACHE_VERSION, "rules": _plain(config.rules),
              "plan": [config.plan.name, list(config.plan.address)], "people": people}
    return hashlib.sha256(json.dumps(shared, sort_keys=True).encode("utf-8")).hexdigest()


def fingerprint(source: SourceFile, converted: Converted, facts: CaseFacts | None, override: Override | None,
                config: Config, received_at: dt.datetime, *, shared: str | None = None) -> str:
    """The key under which `describe`'s result for this document is remembered."""
    own = {"shared": shared or _config_part(config, facts), "sha256": converted.sha256,
           "pages": converted.pages, "title": converted.title, "kind": converted.source_kind,
           "relpath": source.relpath, "hint": source.hint_category, "privileged_folder": source.in_privileged_folder,
           "override": _plain(override), "received_at": received_at.isoformat()}
    if converted.page_confidence:  # OCR'd pages: how sure it was decides what the text may prove
        own["confidence"] = list(converted.page_confidence)
        own["min_confidence"] = config.ocr.min_confidence  # the threshold the confidence is held against
    return hashlib.sha256(json.dumps(own, sort_keys=True).encode("utf-8")).hexdigest()


def _encode_value(value: object) -> object:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return {"date": value.isoformat()}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError("unexpected decision value")


def _decode_value(value: object) -> object:
    if isinstance(value, dict):
        return dt.date.fromisoformat(value["date"])
    return value


def _encode(document: Document) -> dict:
    out = {name: [_encode_value(d.value), d.rule, d.evidence]
           for name, d in ((n, getattr(document, n)) for n in _DECISIONS)}
    out.update(excluded=document.excluded, author=document.author, tags=list(document.tags),
               other_person_pages=list(document.other_person_pages))
    if document.removed_pages:
        out.update(removed_pages=list(document.removed_pages), removed_reason=document.removed_reason)
    return out


def _decode(record: dict, source: SourceFile, converted: Converted, received_at: dt.datetime) -> Document:
    decisions = {}
    for name in _DECISIONS:
        value, rule, evidence = record[name]
        decisions[name] = Decision(_decode_value(value), str(rule), str(evidence))
    tags = record.get("tags") or []
    removed = tuple(int(page) for page in record.get("removed_pages") or ())
    return Document(source=source.relpath, sha256=converted.sha256, received_at=received_at,
                    pages=converted.pages - len(removed), removed_pages=removed,
                    removed_reason=record.get("removed_reason") if removed else None, pdf_path=converted.pdf_path, source_kind=converted.source_kind,
                    excluded=record.get("excluded"), author=record.get("author"),
                    tags=tuple(str(tag) for tag in tags),
                    other_person_pages=tuple(int(page) for page in record.get("other_person_pages") or ()),
                    **decisions)


class ClassificationCache:
    """The remembered decisions of one case (loaded once per build, saved once at its end)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._entries: dict[str, dict] = {}
        self._used: set[str] = set()
        self._changed = False
        self._shared: dict[tuple[int, int], str] = {}
        self._fresh: dict[tuple[str, str], Document] = {}  # (relpath, key) -> decided in this build
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(raw, dict) and raw.get("schema") == SCHEMA and isinstance(raw.get("entries"), dict):
                self._entries = {str(k): v for k, v in raw["entries"].items() if isinstance(v, dict)}
        except (OSError, ValueError):
            self._entries = {}

    def describe(self, source: SourceFile, converted: Converted, facts: CaseFacts | None,
                 override: Override | None, config: Config, received_at: dt.datetime) -> Document:
        """`packet.classify.rules.describe`, answered from the cache when nothing it reads has changed."""
        shared_key = (id(config), id(facts))
        shared = self._shared.get(shared_key)
        if shared is None:
            shared = self._shared[shared_key] = _config_part(config, facts)
        key = fingerprint(source, converted, facts, override, config, received_at, shared=shared)
        self._used.add(source.relpath)
        fresh = self._fresh.get((source.relpath, key))
        if fresh is not None and fresh.pdf_path == converted.pdf_path:
            return fresh
        entry = self._entries.get(source.relpath)
        if entry is not None and entry.get("key") == key:
            try:
                return _decode(entry["document"], source, converted, received_at)
            except (KeyError, TypeError, ValueError):
                pass  # damaged entry: classify again
        document = classify.describe(source, converted, facts, override, config, received_at)
        self._fresh[(source.relpath, key)] = document
        try:
            self._entries[source.relpath] = {"key": key, "document": _encode(document)}
            self._changed = True
        except TypeError:
            self._entries.pop(source.relpath, None)
        return document

    def save(self) -> None:
        """Write the decisions of this build's documents (entries of files no longer here are dropped)."""
        stale = set(self._entries) - self._used
        if not self._changed and not stale:
            return
        entries = {k: v for k, v in sorted(self._entries.items()) if k in self._used}
        atomic_write_text(self.path, json.dumps({"schema": SCHEMA, "entries": entries}, ensure_ascii=False))


def open_cache(case_state_dir: Path) -> ClassificationCache:
    return ClassificationCache(Path(case_state_dir) / FILE_NAME)
