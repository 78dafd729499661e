"""Per-case records the service keeps in `state/cases/<CASE-ID>/`: what was sealed and when.

Owns:
- the Bates register (`register.json`): every sealed submission of a case with its number, kind,
  sealing time and Bates range, so numbering continues across submissions;
- the last release-gate result (`gate.json`), so `_STATUS.txt` and `status` can say what blocks a
  case;
- the sealing journal (`seal-journal.json`), written and read by packet.pipeline.seal only;
- the per-case seal lock (`seal.lock`).
Receipt times of documents are kept by packet.pipeline.build (`intake.json`) and archived with each sealed
submission by packet.pipeline.seal (`archive/<CASE-ID>/submission-NN/_sealed/documents.json`).

Must not: read documents, build outputs or decide anything. Every write is atomic (fsutil), so a
crash leaves the old record or the new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from packet.config import Config
from packet.records.layout import case_state_dir, cases_state_root, submission_dirname
from packet.fsutil import atomic_write_text, ensure_dir, fsync_dir

REGISTER = "register.json"
GATE = "gate.json"
JOURNAL = "seal-journal.json"


@dataclass(frozen=True)
class SealedSubmission:
    """One sealed submission of a case, as the register keeps it."""

    number: int
    kind: str  # initial | supplement
    sealed_at: str  # ISO time
    first_bates: int
    next_bates: int  # the first number the next submission uses
    manifest_sha256: str = ""
    audit_seq: int = 0  # the seal's last audit entry (its position in the chain), 0 if not recorded
    audit_hash: str = ""

    @property
    def dirname(self) -> str:
        return submission_dirname(self.number)


@dataclass(frozen=True)
class GateItem:
    """One item of the release gate that does not hold (the one gate item type: drafts list them in
    review.json and _STATUS.txt, sealing refuses on them and keeps the last result here).

    Matched and sorted by `code` and `document`, never by `text`.
    """

    code: str  # stable: needs_review, identity_mismatch, grievance_response_missing, no_documents,
    #            overrides_toml, retrying, waiting, case_toml, verify
    text: str  # plain language for the clerk (never document text or another patient's data)
    document: str | None = None  # the case-folder path of the document concerned, if one
    pages: tuple[int, ...] = ()  # that document's pages concerned (empty: the whole document)
    resolve: str = ""  # what would resolve it, in plain language
    overridable: bool = True
    overridden: bool = False

    def to_json(self) -> dict:
        return {"code": self.code, "text": self.text, "document": self.document, "pages": list(self.pages),
                "resolve": self.resolve, "overridable": self.overridable, "overridden": self.overridden}

    @classmethod
    def from_json(cls, raw: dict) -> GateItem:
        # gate.json files written before the one GateItem named the fields id/message.
        return cls(code=raw.get("code", raw.get("id", "")), text=raw.get("text", raw.get("message", "")),
                   document=raw.get("document"), pages=tuple(raw.get("pages") or ()),
                   resolve=raw.get("resolve", ""), overridable=raw.get("overridable", True),
                   overridden=raw.get("overridden", False))


@dataclass(frozen=True)
class GateResult:
    case_id: str
    checked_at: str
    items: tuple[GateItem, ...]
    override_reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when every failed item was passed by an override."""
        return all(item.overridden for item in self.items)

    @property
    def blocking(self) -> tuple[GateItem, ...]:
        return tuple(item for item in self.items if not item.overridden)


def _lock(config: Config, case_id: str) -> FileLock:
    folder = ensure_dir(case_state_dir(config, case_id))
    return FileLock(str(folder / "register.lock"))


def seal_lock(config: Config, case_id: str, *, timeout: float = 600) -> FileLock:
    """The lock one sealing of a case holds from its gate to its last step (packet.pipeline.seal)."""
    folder = ensure_dir(case_state_dir(config, case_id))
    return FileLock(str(folder / "seal.lock"), timeout=timeout)


def _read_json(path: Path, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# --- the Bates register -------------------------------------------------------------------------

def sealed_submissions(config: Config, case_id: str) -> tuple[SealedSubmission, ...]:
    """Every sealed submission of the case, oldest first."""
    raw = _read_json(case_state_dir(config, case_id) / REGISTER, {"submissions": []})
    return tuple(sorted((SealedSubmission(**entry) for entry in raw.get("submissions", [])),
                        key=lambda s: s.number))


def last_sealed(config: Config, case_id: str) -> SealedSubmission | None:
    submissions = sealed_submissions(config, case_id)
    return submissions[-1] if submissions else None


def next_submission_info(config: Config, case_id: str) -> tuple[int, str, int]:
    """(number, kind, first_bates) of the case's next submission (or of its draft).

    The first submission is "initial" and starts at Bates number 1; every later one is a
    "supplement" and continues where the last sealed submission ended.
    """
    last = last_sealed(config, case_id)
    if last is None:
        return 1, "initial", 1
    return last.number + 1, "supplement", last.next_bates


def record_sealed(config: Config, case_id: str, submission: SealedSubmission) -> None:
    """Add a sealed submission to the register (idempotent: the same number is recorded once)."""
    with _lock(config, case_id):
        path = case_state_dir(config, case_id) / REGISTER
        raw = _read_json(path, {"case_id": case_id, "submissions": []})
        entries = [e for e in raw.get("submissions", []) if e.get("number") != submission.number]
        entries.append(asdict(submission))
        entries.sort(key=lambda e: e["number"])
        raw["case_id"] = case_id
        raw["submissions"] = entries
        _write_json(path, raw)


def record_audit_position(config: Config, case_id: str, number: int, seq: int, entry_hash: str) -> None:
    """Record where a sealed submission's last audit entry sits in the chain (idempotent)."""
    with _lock(config, case_id):
        path = case_state_dir(config, case_id) / REGISTER
        raw = _read_json(path, {"case_id": case_id, "submissions": []})
        for entry in raw.get("submissions", []):
            if entry.get("number") == number:
                entry["audit_seq"], entry["audit_hash"] = seq, entry_hash
        _write_json(path, raw)


# --- the last release-gate result ---------------------------------------------------------------

def save_gate_result(config: Config, result: GateResult) -> None:
    ensure_dir(case_state_dir(config, result.case_id))
    _write_json(case_state_dir(config, result.case_id) / GATE,
                {"case_id": result.case_id, "checked_at": result.checked_at, "ok": result.ok,
                 "override_reason": result.override_reason,
                 "items": [item.to_json() for item in result.items]})


def load_gate_result(config: Config, case_id: str) -> GateResult | None:
    """The last release-gate result of the case (None if it was never checked)."""
    raw = _read_json(case_state_dir(config, case_id) / GATE, None)
    if raw is None:
        return None
    return GateResult(case_id=raw["case_id"], checked_at=raw["checked_at"],
                      items=tuple(GateItem.from_json(item) for item in raw.get("items", [])),
                      override_reason=raw.get("override_reason"))


def gate_blockers(config: Config, case_id: str) -> list[str]:
    """What blocked the last sealing attempt, in plain language (for `_STATUS.txt` / status)."""
    result = load_gate_result(config, case_id)
    return [item.text for item in result.blocking] if result else []


# --- the sealing journal (packet.pipeline.seal) ----------------------------------------------------------

def journal_path(config: Config, case_id: str) -> Path:
    return case_state_dir(config, case_id) / JOURNAL


def read_journal(config: Config, case_id: str) -> dict | None:
    return _read_json(journal_path(config, case_id), None)


def write_journal(config: Config, case_id: str, journal: dict) -> None:
    ensure_dir(case_state_dir(config, case_id))
    _write_json(journal_path(config, case_id), journal)


def clear_journal(config: Config, case_id: str) -> None:
    path = journal_path(config, case_id)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def cases_with_journal(config: Config) -> list[str]:
    root = cases_state_root(config)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{JOURNAL}"))
