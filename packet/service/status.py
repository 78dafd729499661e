"""`imr-packet status`: every case with its state, due time, time left and what blocks it.

Owns: reading what the service left behind (case.toml, the draft's manifest.json and review.json,
the sealed submissions in the register, READY, the last release-gate result in state/) into one
`CaseStatus` per case, and the table people read (overdue and due-within-24-hours cases stand out).
Must not: write anything, convert or read documents, or decide anything the build and seal did not
already decide; a status reflects the files, it never changes them.

States (spec.md / issue 5):
- waiting_for_case_toml: case.toml is missing or invalid (blocks name the keys);
- drafting: files are being copied or processed, or no draft covers them yet;
- needs_review: the draft (or the last sealing attempt's release gate) lists what blocks sealing;
- ready: the draft has no blockers; drop READY (or run `imr-packet seal`) to seal it;
- sealed: every submission is sealed and nothing new is in the case folder;
- supplement_open: files dropped after sealing wait to become the next submission;
- invalid_folder: a folder in the inbox whose name is not a valid case id.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from packet.model.case import load_case, valid_case_id
from packet.config import Config
from packet.model.deadlines import (InfoRequestClock, duration_text, info_request_clocks, packet_deadline,
                                    supplement_deadline)
from packet.errors import CaseError
from packet.intake.folder import is_ignored_dir, ready_markers, scan
from packet.records.layout import DRAFT_DIR, MANIFEST, REVIEW
from packet.records.register import load_gate_result, sealed_submissions

WAITING_FOR_CASE_TOML = "waiting_for_case_toml"
DRAFTING = "drafting"
NEEDS_REVIEW = "needs_review"
READY = "ready"
SEALED = "sealed"
SUPPLEMENT_OPEN = "supplement_open"
INVALID_FOLDER = "invalid_folder"
STATE_TEXT = {
    WAITING_FOR_CASE_TOML: "waiting for case.toml",
    DRAFTING: "drafting",
    NEEDS_REVIEW: "needs review",
    READY: "ready",
    SEALED: "sealed",
    SUPPLEMENT_OPEN: "supplement open",
    INVALID_FOLDER: "invalid folder name",
}
OPEN_STATES = (WAITING_FOR_CASE_TOML, DRAFTING, NEEDS_REVIEW, READY, SUPPLEMENT_OPEN)
DUE_SOON = dt.timedelta(hours=24)


@dataclass(frozen=True)
class CaseStatus:
    case_id: str
    state: str
    due: dt.datetime | None = None  # the open submission's due time (the last one's when sealed)
    due_rule: str | None = None
    blocks: tuple[str, ...] = ()  # what keeps the case from being sealed, in plain language
    ready_marker: bool = False  # READY is in the case folder
    submissions: int = 0  # sealed so far
    documents: int = 0  # in the current draft
    files_pending: int = 0  # in the case folder but not (yet) in the draft
    last_sealed_at: str | None = None
    on_time: bool | None = None  # of the last sealed submission
    info_requests: tuple[InfoRequestClock, ...] = ()  # the IMR organization's requests and their clocks

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def open_requests(self) -> list[InfoRequestClock]:
        """Information requests not answered yet by a sealed `response` submission."""
        return [c for c in self.info_requests if c.answered_at is None]

    def next_due(self) -> dt.datetime | None:
        """The earliest due time still running: the open submission's or an unanswered request's."""
        dues = [c.deadline.due for c in self.open_requests()]
        if self.due is not None and self.is_open:
            dues.append(self.due)
        return min(dues, key=lambda d: d.astimezone(dt.timezone.utc)) if dues else None

    def time_left(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.due is None else self.due - now

    def urgency(self, now: dt.datetime) -> str | None:
        """"overdue" or "due_soon" (within 24 hours) for a case still open; else None."""
        due = self.next_due()
        if due is None:
            return None
        left = due - now
        if left < dt.timedelta(0):
            return "overdue"
        if left <= DUE_SOON:
            return "due_soon"
        return None

    def to_json(self, now: dt.datetime | None = None) -> dict:
        now = now or dt.datetime.now(dt.timezone.utc)
        left = self.time_left(now)
        return {
            "case_id": self.case_id,
            "state": self.state,
            "state_text": STATE_TEXT.get(self.state, self.state),
            "due": self.due.isoformat() if self.due else None,
            "due_rule": self.due_rule,
            "time_left_seconds": int(left.total_seconds()) if left is not None else None,
            "time_left": _time_left_text(left) if left is not None else None,
            "urgency": self.urgency(now),
            "blocks": list(self.blocks),
            "ready_marker": self.ready_marker,
            "submissions": self.submissions,
            "documents": self.documents,
            "files_pending": self.files_pending,
            "last_sealed_at": self.last_sealed_at,
            "on_time": self.on_time,
            "info_requests": [_request_json(c, now) for c in self.info_requests],
        }


def _request_json(clock: InfoRequestClock, now: dt.datetime) -> dict:
    entry = clock.to_json()
    left = None if clock.answered_at is not None else clock.deadline.due - now
    entry.update(time_left_seconds=int(left.total_seconds()) if left is not None else None,
                 time_left=_time_left_text(left) if left is not None else None,
                 state_text=clock.state(now), overdue=clock.overdue(now))
    return entry


def _answered(sealed: list[dict]) -> dict[str, tuple[int, dt.datetime]]:
    """{request id: (submission, sealed_at)} from the sealed `response` submissions' manifests."""
    answered: dict[str, tuple[int, dt.datetime]] = {}
    for manifest in sealed:
        at = parse_time(manifest.get("sealed_at"))
        request_id, number = manifest.get("request_id"), manifest.get("submission")
        if manifest.get("kind") == "response" and isinstance(request_id, str) and at and isinstance(number, int):
            answered.setdefault(request_id, (number, at))
    return answered


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def parse_time(value: object) -> dt.datetime | None:
    """An aware datetime from a manifest's ISO text, or None (missing, malformed or naive)."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _case_ids(config: Config) -> tuple[list[str], list[str]]:
    """(valid case ids found in the inbox or outbox, invalid folder names in the inbox)."""
    valid: set[str] = set()
    invalid: list[str] = []
    inbox = config.paths.inbox
    if inbox.is_dir():
        for entry in sorted(inbox.iterdir()):
            if entry.is_symlink() or not entry.is_dir() or is_ignored_dir(entry.name):
                continue
            (valid.add(entry.name) if valid_case_id(entry.name) else invalid.append(entry.name))
    outbox = config.paths.outbox
    if outbox.is_dir():
        for entry in outbox.iterdir():
            if entry.is_dir() and not is_ignored_dir(entry.name) and valid_case_id(entry.name):
                valid.add(entry.name)
    return sorted(valid), invalid


def _sealed(config: Config, case_id: str) -> list[dict]:
    """Manifests of the sealed submissions, oldest first (the register, else the outbox)."""
    folder = config.paths.outbox / case_id
    manifests = []
    try:
        names = [s.dirname for s in sealed_submissions(config, case_id)]
    except (OSError, ValueError, TypeError, KeyError, CaseError):
        names = []
    if not names:
        names = sorted(p.parent.name for p in folder.glob(f"submission-*/{MANIFEST}"))
    for name in names:
        manifest = _read_json(folder / name / MANIFEST)
        if manifest is not None:
            manifests.append(manifest)
    return manifests


def _gate_blockers(config: Config, case_id: str) -> tuple[list[str], dt.datetime | None]:
    try:
        result = load_gate_result(config, case_id)
    except (OSError, ValueError, TypeError, KeyError, CaseError):
        return [], None
    if result is None:
        return [], None
    return [item.text for item in result.blocking], parse_time(result.checked_at)


def case_status(config: Config, case_id: str) -> CaseStatus:
    """The status of one case, from the files alone."""
    case_dir = config.paths.inbox / case_id
    sealed = _sealed(config, case_id)
    last = sealed[-1] if sealed else None
    sealed_common = {
        "submissions": len(sealed),
        "last_sealed_at": last.get("sealed_at") if last else None,
        "on_time": last.get("on_time") if last else None,
        "ready_marker": bool(ready_markers(case_dir)),
    }
    try:
        facts = load_case(case_dir)
    except CaseError as exc:
        if not case_dir.is_dir() and last is not None:  # the inbox folder was tidied away
            due = parse_time((last.get("deadline") or {}).get("due"))
            due = due.astimezone(config.calendar.tz) if due else None
            return CaseStatus(case_id=case_id, state=SEALED, due=due, **sealed_common)
        return CaseStatus(case_id=case_id, state=WAITING_FOR_CASE_TOML, blocks=tuple(exc.problems),
                          **sealed_common)

    files = scan(case_dir) if case_dir.is_dir() else []
    draft_dir = config.paths.outbox / case_id / DRAFT_DIR
    draft = _read_json(draft_dir / MANIFEST)
    review = _read_json(draft_dir / REVIEW) or {}
    next_number = len(sealed) + 1
    if draft is not None and draft.get("submission") != next_number:
        draft = None  # a draft of a submission that is already sealed
        review = {}
    in_draft = {d.get("source"): d for d in (draft or {}).get("documents", [])}
    generated = parse_time((draft or {}).get("generated_at"))
    pending = []
    for source in files:
        entry = in_draft.get(source.relpath)
        changed_after = generated is not None and source.mtime_ns / 1e9 > generated.timestamp()
        if entry is None or changed_after:
            pending.append(source)

    # The due time: the draft's (it knows the submission and its rule), else computed here.
    deadline_entry = (draft or {}).get("deadline") or {}
    due, rule = parse_time(deadline_entry.get("due")), deadline_entry.get("rule")
    if due is None and sealed and files:
        oldest = min(dt.datetime.fromtimestamp(f.mtime_ns / 1e9, dt.timezone.utc) for f in files)
        deadline = supplement_deadline(oldest, facts, config)
        due, rule = deadline.due, deadline.rule
    elif due is None and not sealed:
        deadline = packet_deadline(facts, config)
        due, rule = deadline.due, deadline.rule
    elif due is None and last is not None:
        due = parse_time((last.get("deadline") or {}).get("due"))
        rule = (last.get("deadline") or {}).get("rule")

    if due is not None:
        due = due.astimezone(config.calendar.tz)
    blocks = [b for b in review.get("blocks_sealing", []) if isinstance(b, str)]
    gate_items, gate_checked = _gate_blockers(config, case_id)
    if sealed_common["ready_marker"] and gate_items and (generated is None or gate_checked is None
                                                         or gate_checked >= generated):
        blocks += [f"sealing refused: {item}" for item in gate_items if item not in blocks]
    documents = len(in_draft)

    if sealed and not files:
        state = SEALED
        blocks = []
    elif sealed:
        state = SUPPLEMENT_OPEN
    elif pending or draft is None:
        state = DRAFTING
    elif blocks:
        state = NEEDS_REVIEW
    else:
        state = READY
    if pending:
        blocks = [f"{len(pending)} file(s) not yet in the draft (being copied or processed)"] + blocks
    elif state == DRAFTING and not files:
        blocks = ["no documents in the case folder yet"] + blocks
    clocks = tuple(info_request_clocks(facts, config, _answered(sealed)))
    return CaseStatus(case_id=case_id, state=state, due=due, due_rule=rule, blocks=tuple(blocks),
                      documents=documents, files_pending=len(pending), info_requests=clocks, **sealed_common)


def collect_status(config: Config) -> list[CaseStatus]:
    """Every case in the inbox or outbox, sorted by due time (cases without one last)."""
    valid, invalid = _case_ids(config)
    cases = [case_status(config, case_id) for case_id in valid]
    cases += [CaseStatus(case_id=name, state=INVALID_FOLDER,
                         blocks=("the folder name is not a valid case id: rename it to the case id",))
              for name in invalid]
    return sort_cases(cases)


def sort_cases(cases: list[CaseStatus]) -> list[CaseStatus]:
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    # Open cases first by due time, then sealed ones, then those without a due time.
    return sorted(cases, key=lambda c: (not (c.is_open or c.open_requests()), c.next_due() or c.due or far,
                                        c.case_id))


def _time_left_text(left: dt.timedelta) -> str:
    return f"{duration_text(left)} left" if left >= dt.timedelta(0) else f"OVERDUE by {duration_text(left)}"


def format_status(cases: list[CaseStatus], now: dt.datetime | None = None) -> str:
    """A table for people: one line per case, overdue and due-soon cases marked and first by due time."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if not cases:
        return "No cases in the inbox."
    rows = [("", "CASE", "STATE", "DUE", "TIME LEFT", "WHAT BLOCKS IT")]
    for case in sort_cases(cases):
        urgency = case.urgency(now)
        mark = {"overdue": "OVERDUE", "due_soon": "DUE SOON"}.get(urgency or "", "")
        due = case.due.strftime("%Y-%m-%d %H:%M %Z") if case.due else "-"
        if case.state == SEALED:
            left = "on time" if case.on_time else ("late" if case.on_time is False else "-")
        else:
            left = _time_left_text(case.time_left(now)) if case.due else "-"
        blocks = "-"
        if case.blocks:
            blocks = case.blocks[0] if len(case.blocks) == 1 else f"{case.blocks[0]} (+{len(case.blocks) - 1} more)"
        state = STATE_TEXT.get(case.state, case.state)
        if case.ready_marker and case.state not in (SEALED,):
            state += " (READY dropped)"
        if case.submissions and case.state != SEALED:
            state += f" [{case.submissions} sealed]"
        rows.append((mark, case.case_id, state, due, left, blocks))
        for clock in case.info_requests:  # each information request, counted like the packet deadline
            overdue = clock.overdue(now)
            if clock.answered_at is None:
                soon = clock.deadline.due - now <= DUE_SOON
                request_mark = "OVERDUE" if overdue else "DUE SOON" if soon else ""
                request_left = _time_left_text(clock.deadline.due - now)
            else:
                request_mark = ""
                request_left = "answered on time" if clock.on_time else "answered late"
            rows.append((request_mark, f"  info request {clock.request_id}", "requested information",
                         clock.deadline.due.strftime("%Y-%m-%d %H:%M %Z"), request_left,
                         f"answered by submission {clock.answered_by}" if clock.answered_by else
                         f"answer in responses/{clock.request_id}/"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        lines.append("  ".join(row[i].ljust(widths[i]) for i in range(5)) + "  " + row[5])
    overdue = sum(1 for c in cases if c.urgency(now) == "overdue")
    soon = sum(1 for c in cases if c.urgency(now) == "due_soon")
    lines.append("")
    lines.append(f"{len(cases)} case(s); {overdue} overdue; {soon} due within 24 hours.")
    return "\n".join(line.rstrip() for line in lines)
