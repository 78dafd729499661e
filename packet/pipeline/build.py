"""Building a case: a clerk's case folder gathered, then its draft and status note written.

Owns: `build_case`, the recipe a build runs: `gather_case` (packet.pipeline.gather) -> the draft
in outbox/<CASE-ID>/draft/ (with review.json, the gate items) -> `_STATUS.txt`; and `new_case`.
Must not: touch PDFs or templates directly, decide anything the snapshot already decided, or
change a clerk's file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from packet.config import Config
from packet.errors import CaseError, RefusedFile, UsageError
from packet.fsutil import atomic_write_text, ensure_dir
from packet.log import log
from packet.model.case import CaseFacts, case_template, check_case_id
from packet.model.context import BuildContext
from packet.model.models import Deadline, Document, Rejected, SourceFile
from packet.pdf.assemble import DraftPacket
from packet.pipeline import statusnote
from packet.pipeline.gather import CaseSnapshot, case_now, case_state_dir, gather_case, refuse_damaged
from packet.pdf.errors import AssemblyError
from packet.pipeline.submission import build_outputs
from packet.records import audit
from packet.records.layout import (DRAFT_PACKET_RECORD, ORG_PACKET, REVIEW, aside, draft_dir, move_into_place,
                                   staging_dir, tidy_staging)
from packet.records.register import GateItem


MAX_DAMAGED_PER_BUILD = 20  # documents a build may refuse because the packet cannot carry them

@dataclass(frozen=True)
class BuildResult:
    case_id: str
    case_dir: Path
    facts: CaseFacts | None
    documents: tuple[Document, ...] = ()
    rejected: tuple[Rejected, ...] = ()  # every file refused in this case so far
    newly_rejected: tuple[Rejected, ...] = ()
    transient: dict[str, RefusedFile] = field(default_factory=dict)  # relpath -> failure worth retrying
    waiting: tuple[str, ...] = ()  # relpaths still being copied (not settled)
    deadline: Deadline | None = None
    blocking: tuple[str, ...] = ()  # the draft's gate items, in plain language
    draft_dir: Path | None = None
    submission: int = 1
    kind: str = "initial"
    gate_items: tuple[GateItem, ...] = ()  # every gate item, typed (also those only a seal checks)

    def summary(self) -> str:
        lines = [f"{self.case_id}: {len(self.documents)} document(s), {len(self.newly_rejected)} refused now, "
                 f"draft of {self.kind} submission {self.submission} in {self.draft_dir}"]
        if self.deadline is not None:
            lines.append(f"due {self.deadline.due.isoformat()} ({self.deadline.rule})")
        lines += [f"blocks sealing: {b}" for b in self.blocking]
        lines += [f"refused: {r.source}: {r.message}" for r in self.newly_rejected]
        lines += [f"will retry: {p}" for p in self.transient]
        return "\n".join(lines)


def review_json(snapshot: CaseSnapshot) -> str:
    """review.json: what blocks sealing this draft, with each item's code, document and remedy."""
    items = snapshot.blocking
    review = {"case_id": snapshot.case_id, "generated_at": snapshot.now.isoformat(),
              "blocks_sealing": [item.text for item in items],
              "items": [{"code": i.code, "text": i.text, "document": i.document, "pages": list(i.pages),
                         "resolve": i.resolve, "overridable": i.overridable} for i in items]}
    return json.dumps(review, indent=2, ensure_ascii=False) + "\n"


def write_draft(config: Config, snapshot: CaseSnapshot) -> Path:
    """Build every output into a work folder, then swap it into outbox/<CASE-ID>/draft/ at once.

    The work folder is on the outbox's file system (packet.records.layout.staging_dir), so both
    renames are atomic whatever file system state/ is on.
    """
    case_id = snapshot.case_id
    target = draft_dir(config, case_id)
    staging = staging_dir(config, ensure_dir(target.parent))
    work = Path(tempfile.mkdtemp(prefix=f"draft-{case_id}-", dir=staging))
    old = None
    try:
        previous = DraftPacket(pdf=target / ORG_PACKET, record=case_state_dir(config, case_id) / DRAFT_PACKET_RECORD)
        ctx = BuildContext(config=config, facts=snapshot.facts, deadline=snapshot.deadline,
                           submission=snapshot.submission, kind=snapshot.kind, generated_at=snapshot.now, draft=True,
                           request_id=snapshot.request_id,
                           info_requests=tuple(clock.to_json() for clock in snapshot.info_clocks))
        build_outputs(list(snapshot.documents), list(snapshot.rejected), ctx, work, first_bates=snapshot.first_bates,
                      previous=previous)
        atomic_write_text(work / REVIEW, review_json(snapshot))
        os.chmod(work, 0o750)
        # Swap: the old draft is renamed aside, the new one renamed in; a crash leaves one whole draft
        # (and a hidden leftover that the start-up sweep removes).
        if target.exists():
            old = aside(target)
            os.replace(target, old)
        move_into_place(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
            tidy_staging(target.parent)
    return target


def build_case(case_dir: Path, config: Config, *, settled: Callable[[SourceFile], bool] | None = None,
               give_up: frozenset[str] = frozenset(), now: dt.datetime | None = None,
               hold: Callable[[SourceFile, RefusedFile], bool] | None = None,
               progress: Callable[[str, int, int], None] | None = None) -> BuildResult:
    """The recipe: gather, write the draft, write the status note.

    Raises CaseError (after writing `_STATUS.txt`) when case.toml is missing or invalid.
    `progress(stage, done, total)`, if given, is called as the work advances ("converting" per file,
    then "assembling", then "done"; "reading_pages" is for OCR), always before `_STATUS.txt` is written.
    """
    case_dir = Path(case_dir).resolve()
    case_id = check_case_id(case_dir.name)
    now = case_now(config, now)
    tz = config.calendar.tz
    try:
        def gather() -> CaseSnapshot:
            return gather_case(case_dir, config, settled=settled, give_up=give_up, now=now, hold=hold,
                               progress=progress)

        snapshot = gather()
    except CaseError as exc:
        problems = exc.problems
        in_inbox = case_dir.parent == Path(config.paths.inbox).resolve()
        if exc.reason == "case_toml_missing" and in_inbox and drop_case_template(case_dir, case_id):
            # A clerk needs no shell: the template is in the folder, marked FILL IN where a person must write.
            problems = ["case.toml was missing: a template is now in the case folder; open it and replace "
                        "every FILL IN value (the time DMHC's notice was received among them)"]
        statusnote.write(case_dir, statusnote.render(
            case_id=case_id, now=now, tz=tz, headline="waiting for a valid case.toml", case_problems=problems))
        log("case_waiting", case=case_id, reason=exc.reason)
        raise
    except Exception as exc:  # a full disk, an unreadable folder...: the clerk must learn the case is stuck
        statusnote.write_error(case_dir, case_id=case_id, now=now, tz=tz, exc=exc, doing="taking the files in")
        raise
    written = None
    try:
        if progress is not None:
            progress("assembling", len(snapshot.documents), len(snapshot.documents))
        for attempt in range(MAX_DAMAGED_PER_BUILD + 1):
            if not snapshot.documents:
                break
            try:
                written = write_draft(config, snapshot)
                break
            except AssemblyError as exc:
                # One document the packet cannot carry is refused, not the whole case stuck.
                if (exc.document is None or attempt == MAX_DAMAGED_PER_BUILD
                        or not refuse_damaged(config, snapshot, exc.document, exc.reason)):
                    raise
                snapshot = gather()
        if snapshot.documents:
            audit.record(config, "draft_built", case=case_id, documents=len(snapshot.documents),
                         submission=snapshot.submission)
        if progress is not None:
            progress("done", len(snapshot.documents), len(snapshot.documents))
        statusnote.write(case_dir, statusnote.for_snapshot(snapshot, config))
    except Exception as exc:
        statusnote.write_error(case_dir, case_id=case_id, now=now, tz=tz, exc=exc, doing="building the draft")
        raise
    blocking = tuple(item.text for item in snapshot.blocking)
    log("case_built", case=case_id, documents=len(snapshot.documents), refused=len(snapshot.newly_rejected),
        waiting=len(snapshot.waiting), retrying=len(snapshot.transient), blocking=len(blocking),
        submission=snapshot.submission)
    return BuildResult(case_id=case_id, case_dir=case_dir, facts=snapshot.facts, documents=snapshot.documents,
                       rejected=snapshot.rejected, newly_rejected=snapshot.newly_rejected,
                       transient=snapshot.transient, waiting=snapshot.waiting, deadline=snapshot.deadline,
                       blocking=blocking, draft_dir=written, submission=snapshot.submission, kind=snapshot.kind,
                       gate_items=snapshot.gate_items)


def drop_case_template(case_dir: Path, case_id: str) -> bool:
    """Put the case.toml template into a case folder that has none; never overwrite or follow a link.
    True when the template was written."""
    path = Path(case_dir) / "case.toml"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o660)
    except OSError:
        return False  # it appeared meanwhile, is a dangling link, or the folder is read-only
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(case_template(case_id))
    return True


def new_case(config: Config, case_id: str, *, now: dt.datetime | None = None) -> Path:
    """Create inbox/<CASE-ID>/ with a commented case.toml template; never overwrite."""
    check_case_id(case_id)
    case_dir = config.paths.inbox / case_id
    path = case_dir / "case.toml"
    if path.exists():
        raise UsageError(f"{path} already exists; edit it instead")
    case_dir.mkdir(parents=True, exist_ok=True)
    for hint in ("medical-records", "correspondence", "plan-statements", "privileged"):
        (case_dir / hint).mkdir(exist_ok=True)
    now = now or dt.datetime.now(config.calendar.tz)
    atomic_write_text(path, case_template(case_id, now))
    return path
