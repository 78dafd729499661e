"""Building a case: from a clerk's case folder to classified documents and a draft in the outbox.

Owns: the recipe (`build_case`): read the case, take files in, convert, classify, compute the
deadline, refuse what cannot be used, build the draft, write the status note. Each stage is a
plain function in its own module; this one only orders them and keeps per-case memory (when each
document was first received, which files were refused) in `state/cases/<CASE-ID>/`.
Must not: touch PDFs or templates directly, or change a clerk's file other than moving a refused
one into `_rejected/` (packet.intake.reject).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from packet.records import audit
from packet.workers import render as renderworker
from packet.pipeline import statusnote
from packet.model.case import CaseFacts, case_template, check_case_id, load_case
from packet.classify.cache import open_cache as open_classification_cache
from packet.classify.rules import needs_attention
from packet.config import Config
from packet.model.context import BuildContext
from packet.intake.convert.batch import convert_many
from packet.model.deadlines import packet_deadline, supplement_deadline
from packet.errors import CaseError, RefusedFile, UsageError
from packet.fsutil import atomic_write_text, ensure_dir, sha256_file, short_hash
from packet.pipeline.gate import document_items
from packet.intake.folder import read_case_folder, record_override_decisions
from packet.log import log
from packet.model.models import Converted, Deadline, Document, Rejected, SourceFile

DRAFT_DIR = "draft"
DRAFT_PACKET_RECORD = "draft-packet.json"  # in state/cases/<ID>/: how the draft packet was written (packet.pdf.incremental)


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
    blocking: tuple[str, ...] = ()
    draft_dir: Path | None = None
    submission: int = 1
    kind: str = "initial"

    def summary(self) -> str:
        lines = [f"{self.case_id}: {len(self.documents)} document(s), {len(self.newly_rejected)} refused now, "
                 f"draft of {self.kind} submission {self.submission} in {self.draft_dir}"]
        if self.deadline is not None:
            lines.append(f"due {self.deadline.due.isoformat()} ({self.deadline.rule})")
        lines += [f"blocks sealing: {b}" for b in self.blocking]
        lines += [f"refused: {r.source}: {r.message}" for r in self.newly_rejected]
        lines += [f"will retry: {p}" for p in self.transient]
        return "\n".join(lines)


# --- per-case memory in state/ ---------------------------------------------------------------

def case_state_dir(config: Config, case_id: str) -> Path:
    return ensure_dir(config.paths.state / "cases" / case_id)


def _load_memory(config: Config, case_id: str) -> dict:
    path = case_state_dir(config, case_id) / "intake.json"
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    return {"received": {}, "rejected": []}


def _save_memory(config: Config, case_id: str, memory: dict) -> None:
    atomic_write_text(case_state_dir(config, case_id) / "intake.json", json.dumps(memory, indent=1, sort_keys=True))


def _rejected_from(entry: dict) -> Rejected:
    return Rejected(**entry)


# --- stages ---------------------------------------------------------------------------------

def _sealed_documents(config: Config, case_id: str) -> dict[str, int]:
    """Documents already sent in a sealed submission (a re-dropped copy is a duplicate), by hash,
    with the strictness they were sent with (see `_strictness`: 2 privileged, 1 withheld, 0 neither)."""
    sent: dict[str, int] = {}
    for manifest_path in sorted((config.paths.outbox / case_id).glob("submission-*/manifest.json")):
        try:
            with open(manifest_path, encoding="utf-8") as handle:
                for entry in json.load(handle).get("documents", []):
                    level = 2 if entry.get("privileged") else 1 if entry.get("withheld_from_member") else 0
                    sent[entry["sha256"]] = max(level, sent.get(entry["sha256"], 0))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return sent


def _next_submission(config: Config, case_id: str) -> tuple[int, str, int]:
    from packet.pipeline.seal import next_submission_info

    return next_submission_info(config, case_id)


def take_files(case_dir: Path, facts: CaseFacts, config: Config, sources: list[SourceFile], overrides: dict,
               memory: dict, *, give_up: frozenset[str], now: dt.datetime,
               hold: Callable[[SourceFile, RefusedFile], bool] | None = None,
               progress: Callable[[str, int, int], None] | None = None):
    """Convert and describe every settled file; refuse what cannot be used.

    `hold(source, error)` (the watcher's) says a failure may be the file still being written: it
    is reported as transient ("still_changing") instead of being refused. `progress(stage, done,
    total)` hears of every file converted.
    """
    case_id = facts.case_id
    documents: list[Document] = []
    newly_rejected: list[Rejected] = []
    transient: dict[str, RefusedFile] = {}
    sealed = _sealed_documents(config, case_id)
    seen: dict[str, str] = {}
    classified = open_classification_cache(case_state_dir(config, case_id))  # decisions by content + inputs

    converted = 0

    def classify_early(index: int, result) -> None:
        """Classify each converted file while the workers still extract the others' text (both
        cores busy); the loop below then finds the decisions in `classified`."""
        nonlocal converted
        converted += 1
        if progress is not None:
            progress("converting", converted, len(sources))
        if isinstance(result, Converted) and result.sha256 not in sealed:
            first_seen = memory["received"].get(result.sha256)
            received_at = dt.datetime.fromisoformat(first_seen) if first_seen is not None else now
            source = sources[index]
            classified.describe(source, result, facts, overrides.get(source.relpath), config, received_at)

    if progress is not None:
        progress("converting", 0, len(sources))
    results = convert_many(sources, config, on_result=classify_early)
    audit_batch = audit.Batch(config)  # the per-document events: one lock and one fsync for all
    # Identical bytes filed twice (say in privileged/ and in medical-records/) become one document:
    # the copy a person flagged most strictly is the one kept, so a duplicate can never release
    # what the other copy withholds. Documents keep the folder order otherwise.
    order = {source.relpath: index for index, source in enumerate(sources)}
    pairs = sorted(zip(sources, results), key=lambda pair: (-_strictness(pair[0], overrides), order[pair[0].relpath]))
    for source, result in pairs:
        if isinstance(result, RefusedFile):
            if hold is not None and hold(source, result):
                transient[source.relpath] = RefusedFile(
                    "still_changing", "This file could not be read while it was still changing.",
                    "Nothing to do: it is read again once it has stopped changing.", transient=True)
                continue
            if result.transient and source.relpath not in give_up:
                transient[source.relpath] = result
                continue
            sha = _hash_or_none(source)
            newly_rejected.append(_refuse(case_dir, case_id, source, result, sha, config))
            continue
        sha = result.sha256
        duplicate_of = seen.get(sha)
        if duplicate_of is None and sha in sealed and _strictness(source, overrides) > sealed[sha]:
            # A person now flags a document that already went out without that flag: it cannot be
            # taken back from a sealed submission, and saying "duplicate" would hide that.
            flag = "privileged" if _strictness(source, overrides) == 2 else "withheld from the member"
            error = RefusedFile(
                "sealed_without_flag",
                f"This file is a copy of a document already sent in a sealed submission, where it was not "
                f"marked {flag} as this copy is.",
                "A sealed submission cannot be changed. Tell your compliance lead today: the IMR "
                "organization has the document without the mark, and the member's list of documents "
                "may offer a copy of it.")
            newly_rejected.append(_refuse(case_dir, case_id, source, error, sha, config))
            continue
        if duplicate_of is not None or sha in sealed:
            what = (f'it has the same content as "{duplicate_of}"' if duplicate_of
                    else "the same document was already sent in a sealed submission")
            error = RefusedFile("duplicate", f"This file is a duplicate: {what}.",
                                "Nothing to do; the document is already in the packet.")
            newly_rejected.append(_refuse(case_dir, case_id, source, error, sha, config))
            continue
        seen[sha] = source.relpath
        first_seen = memory["received"].get(sha)
        if first_seen is None:
            memory["received"][sha] = now.isoformat()
            received_at = now
        else:
            received_at = dt.datetime.fromisoformat(first_seen)
        document = classified.describe(source, result, facts, overrides.get(source.relpath), config, received_at)
        if first_seen is None:
            _audit_new_document(audit_batch, case_id, document)
        documents.append(document)
    documents.sort(key=lambda d: order[d.source])
    newly_rejected.sort(key=lambda r: order.get(r.source, len(order)))
    classified.save()
    audit_batch.flush()
    return documents, newly_rejected, transient


def _strictness(source: SourceFile, overrides: dict) -> int:
    """How strictly a person flagged this file: 2 privileged, 1 withheld from the member, 0 neither."""
    override = overrides.get(source.relpath)
    if source.in_privileged_folder or (override is not None and override.privileged):
        return 2
    if override is not None and override.withhold_from_member:
        return 1
    return 0


def _hash_or_none(source: SourceFile) -> str | None:
    try:
        return sha256_file(source.path)
    except OSError:
        return None


def _refuse(case_dir: Path, case_id: str, source: SourceFile, error: RefusedFile, sha: str | None,
            config: Config) -> Rejected:
    from packet.intake.reject import refuse

    rejected = refuse(case_dir, source, error, sha)
    log("file_refused", case=case_id, doc=short_hash(sha) if sha else None, reason=error.reason)
    audit.record(config, "refused", case=case_id, doc=sha, reason=error.reason)
    return rejected


def _audit_new_document(batch: audit.Batch, case_id: str, document: Document) -> None:
    log("file_taken", case=case_id, doc=document.short, pages=document.pages,
        category=document.category.value, privileged=document.is_privileged, withheld=document.is_withheld,
        identity=document.identity.value)
    batch.record("taken", case=case_id, doc=document.sha256, pages=document.pages)
    batch.record("classified", case=case_id, doc=document.sha256, category=document.category.value,
                 rule=document.category.rule, privileged=document.is_privileged,
                 withheld=document.is_withheld, identity=document.identity.value)
    for kind, decision in (("overridden", document.category),):
        if decision.rule == "override":
            batch.record(kind, case=case_id, doc=document.sha256, item="category")


def write_draft(config: Config, case_id: str, documents: list[Document], rejected: list[Rejected],
                ctx: BuildContext, first_bates: int, blocking: list[str]) -> Path:
    """Build every output into a work folder, then swap it into outbox/<CASE-ID>/draft/ at once."""
    from packet.pdf.assemble import DraftPacket
    from packet.pipeline.submission import ORG_PACKET, build_outputs

    target = config.paths.outbox / case_id / DRAFT_DIR
    ensure_dir(target.parent)
    work = Path(tempfile.mkdtemp(prefix=f"draft-{case_id}-", dir=ensure_dir(config.work_dir)))
    try:
        previous = DraftPacket(pdf=target / ORG_PACKET, record=case_state_dir(config, case_id) / DRAFT_PACKET_RECORD)
        build_outputs(documents, rejected, ctx, work, first_bates=first_bates, previous=previous)
        review = {"case_id": case_id, "generated_at": ctx.generated_at.isoformat(), "blocks_sealing": blocking}
        atomic_write_text(work / "review.json", json.dumps(review, indent=2, ensure_ascii=False) + "\n")
        os.chmod(work, 0o750)
        # Swap: the old draft is renamed aside, the new one renamed in; a crash leaves one whole draft.
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f"old-{case_id}-", dir=config.work_dir))
            os.replace(target, old / DRAFT_DIR)
        os.replace(work, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def build_case(case_dir: Path, config: Config, *, settled: Callable[[SourceFile], bool] | None = None,
               give_up: frozenset[str] = frozenset(), now: dt.datetime | None = None,
               hold: Callable[[SourceFile, RefusedFile], bool] | None = None,
               progress: Callable[[str, int, int], None] | None = None) -> BuildResult:
    """The recipe. Raises CaseError (after writing `_STATUS.txt`) when case.toml is missing or invalid.

    `progress(stage, done, total)`, if given, is called as the work advances ("converting" per file,
    then "assembling"; "reading_pages" is for OCR), always before `_STATUS.txt` is written.
    """
    case_dir = Path(case_dir).resolve()
    case_id = check_case_id(case_dir.name)
    tz = config.calendar.tz
    # Whole seconds: receipt times and supplement due times are read by people and auditors.
    now = (now or dt.datetime.now(tz)).astimezone(tz).replace(microsecond=0)

    # 1. The case facts: without a valid case.toml the case waits.
    try:
        facts = load_case(case_dir)
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

    # The render worker imports and loads its fonts while the files are taken in (packet.pipeline.submission).
    if renderworker.in_use(config):
        renderworker.prestart()

    # 2. Take files in: the folder contract, then only files that have finished copying.
    intake = read_case_folder(case_dir)
    record_override_decisions(config, case_id, case_dir, intake.overrides)
    unusable = [_refuse(case_dir, case_id, source, error, None, config) for source, error in intake.unusable]
    sources = list(intake.files)
    waiting = [s.relpath for s in sources if settled is not None and not settled(s)]
    sources = [s for s in sources if settled is None or settled(s)]
    memory = _load_memory(config, case_id)

    # 3. Convert, classify, flag, check identity; refuse what cannot be used.
    documents, newly_rejected, transient = take_files(case_dir, facts, config, sources, intake.overrides, memory,
                                                      give_up=give_up, now=now, hold=hold, progress=progress)
    newly_rejected = unusable + newly_rejected
    memory["rejected"] = memory.get("rejected", []) + [asdict(r) for r in newly_rejected]
    _save_memory(config, case_id, memory)
    rejected = [_rejected_from(r) for r in memory["rejected"]]

    # 4. Which submission this draft would become, and its deadline.
    submission, kind, first_bates = _next_submission(config, case_id)
    if kind == "supplement" and documents:
        deadline = supplement_deadline(max(d.received_at for d in documents), facts, config)
    else:
        deadline = packet_deadline(facts, config)

    # 5. What blocks sealing, and the draft itself.
    blocking = [item.text for item in document_items(facts, documents, supplement=kind == "supplement")]
    blocking += _override_problems(config, case_id, intake.override_problems)
    attention = {d.source: needs_attention(d) for d in documents}
    ctx = BuildContext(config=config, facts=facts, deadline=deadline, submission=submission, kind=kind,
                       generated_at=now, draft=True)
    draft_dir = None
    if progress is not None:
        progress("assembling", len(documents), len(documents))
    if documents:
        draft_dir = write_draft(config, case_id, documents, rejected, ctx, first_bates, blocking)
        audit.record(config, "draft_built", case=case_id, documents=len(documents), submission=submission)

    # 6. The note for the clerk.
    shown_deadline, shown_blocking = deadline, blocking
    if not documents and kind == "supplement":
        headline = (f"submission {submission - 1} is sealed; files dropped here now start "
                    f"supplemental submission {submission}")
        # Nothing is pending: the sealed submission's deadline is met and "no documents" blocks
        # nothing a clerk must do. Say when it was sealed instead.
        shown_deadline, shown_blocking = None, []
    elif not documents:
        headline = "waiting for documents"
    elif blocking:
        headline = f"draft ready; {len(blocking)} thing(s) to fix before sealing"
    else:
        headline = "draft ready; drop a file named READY (READY.txt works too) to seal it"
    submission_note = (f"Supplemental submission {submission}: new records are due 1 day after they arrive."
                       if kind == "supplement" else None)
    if not documents and kind == "supplement":
        sealed_note = _sealed_note(config, case_id, submission - 1, tz)
        if sealed_note:
            submission_note = f"{sealed_note}\n{submission_note}"
    if progress is not None:
        progress("done", len(documents), len(documents))
    statusnote.write(case_dir, statusnote.render(
        case_id=case_id, now=now, tz=tz, headline=headline, deadline=shown_deadline, documents=documents,
        rejected=rejected, waiting=waiting, retrying=sorted(transient), blocking=shown_blocking,
        attention=attention, submission_note=submission_note))
    log("case_built", case=case_id, documents=len(documents), refused=len(newly_rejected),
        waiting=len(waiting), retrying=len(transient), blocking=len(blocking), submission=submission)
    return BuildResult(case_id=case_id, case_dir=case_dir, facts=facts, documents=tuple(documents),
                       rejected=tuple(rejected), newly_rejected=tuple(newly_rejected), transient=transient,
                       waiting=tuple(waiting), deadline=deadline, blocking=tuple(blocking), draft_dir=draft_dir,
                       submission=submission, kind=kind)


def _override_problems(config: Config, case_id: str, problems: tuple[str, ...]) -> list[str]:
    """overrides.toml stays in the inbox after sealing, so it may name files now in the archive:
    that entry applied to an earlier submission and is not a problem (as packet.pipeline.seal judges it)."""
    from packet.pipeline.seal import archived_sources

    sealed = archived_sources(config, case_id)
    return [text for text in problems
            if not ("not in the case folder" in text and any(f'"{source}"' in text for source in sealed))]


def _sealed_note(config: Config, case_id: str, number: int, tz) -> str | None:
    """'Submission N was sealed on <time> (on time).' from that submission's manifest."""
    from packet.records.register import submission_dirname

    path = config.paths.outbox / case_id / submission_dirname(number) / "manifest.json"
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        sealed_at = dt.datetime.fromisoformat(manifest["sealed_at"]).astimezone(tz)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    when = statusnote.when_text(sealed_at, tz)
    timing = {True: " (on time)", False: " (LATE: after the due time)"}.get(manifest.get("on_time"), "")
    lines = [f"Submission {number} was sealed on {when}{timing}.", f"  The submission: {path.parent}"]
    outputs = {o.get("file"): o for o in manifest.get("outputs") or [] if isinstance(o, dict)}
    pages = (outputs.get("imr-org-packet.pdf") or {}).get("pages")
    if isinstance(pages, int):
        lines.append(f"  The packet for the IMR organization (imr-org-packet.pdf): {pages} page(s).")
    print_dir = config.paths.outbox / "_print"
    marker = f"-{case_id}-s{number:02d}-"
    try:
        prints = sorted(p.name for p in print_dir.iterdir() if marker in p.name and not p.name.startswith("."))
    except OSError:
        prints = []
    if prints:
        lines.append(f"  In the mailroom's print folder {print_dir}:")
        lines += [f"    - {name}" for name in prints]
    else:
        lines.append(f"  No mailing of this submission is in the print folder {print_dir} now.")
    return "\n".join(lines)


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
