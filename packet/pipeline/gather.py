"""Gathering a case: from a clerk's case folder to a `CaseSnapshot`, the one input of every writer.

Owns: `gather_case`, the recipe's first half: read the case, take files in, convert, classify,
flag, compute the deadline, refuse what cannot be used, and list what blocks sealing (typed gate
items). Keeps per-case memory (when each document was first received, which files were refused) in
`state/cases/<CASE-ID>/`. The writers (packet.pipeline.build: the draft and the status note;
packet.pipeline.seal: a submission) take the snapshot and decide nothing again.
Must not: touch PDFs or templates, write into the outbox, or change a clerk's file other than
moving a refused one into `_rejected/` (packet.intake.reject).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from packet.classify.cache import open_cache as open_classification_cache
from packet.classify.rules import needs_attention, removal_problem
from packet.config import Config
from packet.errors import RefusedFile
from packet.fsutil import atomic_write_text, ensure_dir, sha256_file, short_hash
from packet.intake.convert.batch import convert_many
from packet.intake.convert.limits import pypdf_limit_refusal
from packet.intake.folder import decision_authors, read_case_folder, record_override_decisions
from packet.intake.reject import refuse
from packet.log import log
from packet.model.case import CaseFacts, check_case_id, load_case
from packet.model.deadlines import (DROPPED, InfoRequestClock, info_request_clocks, info_request_deadline,
                                    packet_deadline, record_receipt, request_ids, supplement_deadline)
from packet.model.models import Converted, Deadline, Document, Rejected, SourceFile
from packet.pdf.errors import INFLATION_LIMIT
from packet.pipeline import gate
from packet.records import audit
from packet.records.layout import INTAKE_MEMORY, archived_sources, case_state_dir as _state_dir, sealed_manifests
from packet.records.register import GateItem, next_submission_info
from packet.workers import render as renderworker


@dataclass(frozen=True)
class CaseSnapshot:
    """A case as gathered at one moment: everything a draft, a status note or a seal needs."""

    case_id: str
    case_dir: Path
    facts: CaseFacts
    now: dt.datetime  # whole seconds, the plan's time zone
    documents: tuple[Document, ...] = ()
    rejected: tuple[Rejected, ...] = ()  # every file refused in this case so far
    newly_rejected: tuple[Rejected, ...] = ()
    transient: dict[str, RefusedFile] = field(default_factory=dict)  # relpath -> failure worth retrying
    waiting: tuple[str, ...] = ()  # relpaths still being copied (not settled)
    deadline: Deadline | None = None
    submission: int = 1
    kind: str = "initial"
    first_bates: int = 1
    gate_items: tuple[GateItem, ...] = ()  # everything that blocks sealing now (packet.pipeline.gate)
    request_id: str | None = None  # kind "response": the [[info_requests]] id this submission answers
    info_clocks: tuple[InfoRequestClock, ...] = ()  # each information request's clock (sealed answers)
    answered: dict[str, tuple[int, dt.datetime]] = field(default_factory=dict)  # id -> (submission, sealed_at)
    # Files in responses/<request-id>/ before the first seal: they answer an information request,
    # so they wait for a `response` submission after the initial one (never in the initial packet).
    held: tuple[str, ...] = ()

    def info_clocks_if_sealed(self, config: Config, sealed_at: dt.datetime) -> tuple[InfoRequestClock, ...]:
        """The clocks as they stand once this snapshot is sealed at `sealed_at` (a response answers
        its request then); the snapshot's own clocks otherwise."""
        if self.kind != "response" or self.request_id is None:
            return self.info_clocks
        answered = dict(self.answered)
        answered.setdefault(self.request_id, (self.submission, sealed_at))
        return tuple(info_request_clocks(self.facts, config, answered))

    @property
    def supplement(self) -> bool:
        return self.kind in ("supplement", "response")

    @property
    def blocking(self) -> tuple[GateItem, ...]:
        """The items a draft lists as things to fix (files still copying or retried are listed apart)."""
        return tuple(gate.draft_items(self.gate_items))

    def attention(self) -> dict[str, list[str]]:
        return {d.source: needs_attention(d) for d in self.documents}


def case_state_dir(config: Config, case_id: str) -> Path:
    """state/cases/<CASE-ID>/, created if needed."""
    return ensure_dir(_state_dir(config, case_id))


def case_now(config: Config, now: dt.datetime | None) -> dt.datetime:
    """`now` in the plan's time zone, in whole seconds: receipt times and due times are read by
    people and auditors."""
    tz = config.calendar.tz
    return (now or dt.datetime.now(tz)).astimezone(tz).replace(microsecond=0)


def gather_case(case_dir: Path, config: Config, *, settled: Callable[[SourceFile], bool] | None = None,
                give_up: frozenset[str] = frozenset(), now: dt.datetime | None = None,
                hold: Callable[[SourceFile, RefusedFile], bool] | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> CaseSnapshot:
    """The case folder as a snapshot. Raises CaseError when case.toml is missing or invalid.

    `hold(source, error)` (the watcher's) says a failure may be the file still being written;
    `progress(stage, done, total)` hears of every file converted.
    """
    case_dir = Path(case_dir).resolve()
    case_id = check_case_id(case_dir.name)
    now = case_now(config, now)
    facts = load_case(case_dir)
    # Take files in: the folder contract, then only files that have finished copying.
    intake = read_case_folder(case_dir)
    # For a large case the render worker imports and loads its fonts while the files are taken in
    # (packet.pipeline.submission); a small one renders its mailings in this process.
    if renderworker.worth_starting(config, case_bytes=sum(source.size for source in intake.files)):
        renderworker.prestart()
    record_override_decisions(config, case_id, case_dir, intake.overrides)
    unusable = [_refuse(case_dir, case_id, source, error, None, config) for source, error in intake.unusable]
    sources = list(intake.files)
    waiting = [s.relpath for s in sources if settled is not None and not settled(s)]
    sources = [s for s in sources if settled is None or settled(s)]
    memory = _load_memory(config, case_id)

    # Convert, classify, flag, check identity; refuse what cannot be used.
    documents, newly_rejected, transient = take_files(case_dir, facts, config, sources, intake.overrides, memory,
                                                      give_up=give_up, now=now, hold=hold, progress=progress)
    newly_rejected = unusable + newly_rejected
    documents, removal_problems = _page_removals(config, case_id, documents, intake.overrides)
    memory["rejected"] = memory.get("rejected", []) + [asdict(r) for r in newly_rejected]
    _save_memory(config, case_id, memory)
    rejected = [_rejected_from(r) for r in memory["rejected"]]

    # Which submission this would become, and its deadline.
    submission, kind, first_bates = next_submission_info(config, case_id)
    held: list[str] = []
    if kind == "initial":
        # spec.md: files in responses/<request-id>/ "are sealed as a `response` submission", and the
        # IMR organization asks for information about the packet it has: they never ride in the
        # initial packet. They stay in the case folder (said in _STATUS.txt) and, once the initial
        # submission is sealed, make the response submission that answers their request.
        held = sorted({d.source for d in documents if responded_request(d.source) is not None}
                      | {relpath for relpath in waiting if responded_request(relpath) is not None})
        documents = [d for d in documents if responded_request(d.source) is None]
        waiting = [relpath for relpath in waiting if responded_request(relpath) is None]
    answered = answered_requests(config, case_id)
    request_id, response_problem = None, None
    if kind == "supplement":
        request_id, response_problem, later = next_answer(facts, documents, config)
        held = list(later)
        documents = [d for d in documents if d.source not in set(later)]
    if request_id is not None:
        kind = "response"
        deadline = info_request_deadline(facts.info_requests[request_ids(facts).index(request_id)], facts, config)
    elif kind == "supplement" and documents:
        # Each new record is due 1 day after the plan received it: the earliest receipt binds.
        taken = [d for d in documents if d.excluded is None] or documents
        deadline = supplement_deadline(min(d.received_at for d in taken), facts, config)
    else:
        deadline = packet_deadline(facts, config)

    # What blocks sealing.
    items = gate.document_items(facts, documents, supplement=kind != "initial")
    items += gate.representative_items(facts)
    items += gate.overrides_items(_override_problems(config, case_id, intake.override_problems) + removal_problems)
    items += gate.file_items(transient=list(transient), waiting=waiting)
    if response_problem:
        problem, resolve = response_problem
        items.append(GateItem(code="response_unknown_request", text=f"{problem}: {resolve}", resolve=resolve,
                              overridable=False))
    return CaseSnapshot(case_id=case_id, case_dir=case_dir, facts=facts, now=now, documents=tuple(documents),
                        rejected=tuple(rejected), newly_rejected=tuple(newly_rejected), transient=transient,
                        waiting=tuple(waiting), deadline=deadline, submission=submission, kind=kind,
                        first_bates=first_bates, gate_items=tuple(items), request_id=request_id,
                        info_clocks=tuple(info_request_clocks(facts, config, answered)), answered=answered,
                        held=tuple(held))


# --- information requests of the IMR organization (issue 15 item 1) -------------------------------

RESPONSES = "responses"


def responded_request(relpath: str) -> str | None:
    """The request id of a file dropped in responses/<request-id>/ (spec.md), else None."""
    parts = relpath.split("/")
    if len(parts) >= 3 and parts[0].lower() == RESPONSES:
        return parts[1]
    return None


def next_answer(facts: CaseFacts, documents: list[Document],
                config: Config) -> tuple[str | None, tuple[str, str] | None, tuple[str, ...]]:
    """What the next submission after the first answers: (request id, None, held) for a `response`
    to that request, (None, None, held) for an ordinary supplement, (None, (problem, resolve), ())
    when a responses/ folder names no declared request.

    New files fall into groups: the ordinary supplement (files outside responses/) and one group
    per request answered (responses/<request-id>/). A submission answers one group, so its cover,
    its clock and its manifest's `request_id` name one request (spec.md: "with its own cover naming
    the request"): the group due first is sealed now, the others are held in the case folder
    (listed in _STATUS.txt) and make the next submissions, each numbered on."""
    groups: dict[str | None, list[Document]] = {}
    for document in documents:
        groups.setdefault(responded_request(document.source), []).append(document)
    if set(groups) <= {None}:
        return None, None, ()
    declared = request_ids(facts)
    unknown = sorted(i for i in groups if i is not None and i not in declared)
    if unknown:
        return None, (f"responses/{unknown[0]}/ answers no request in case.toml",
                      f'declare it there as [[info_requests]] with id = "{unknown[0]}", or move its files '
                      "into the right responses/<request-id>/ folder"), ()

    def due(group: str | None) -> dt.datetime:
        if group is None:
            taken = [d for d in groups[None] if d.excluded is None] or groups[None]
            return supplement_deadline(min(d.received_at for d in taken), facts, config).due
        return info_request_deadline(facts.info_requests[declared.index(group)], facts, config).due

    # A group whose files a person all excluded is sent nowhere: it rides along (as excluded) with
    # whichever group is sealed, and is never chosen itself.
    candidates = [group for group, docs in groups.items() if any(d.excluded is None for d in docs)]
    if not candidates:
        return None, None, ()
    chosen = min(candidates, key=lambda group: (due(group).astimezone(dt.timezone.utc), group or ""))
    held = tuple(sorted(d.source for group, docs in groups.items() if group != chosen and group in candidates
                        for d in docs))
    return chosen, None, held


def answered_requests(config: Config, case_id: str) -> dict[str, tuple[int, dt.datetime]]:
    """{request id: (submission number, sealed_at)} of every sealed `response` submission."""
    answered: dict[str, tuple[int, dt.datetime]] = {}
    for number, manifest in sealed_manifests(config, case_id):
        try:
            if manifest.get("kind") == "response" and manifest.get("request_id"):
                at = dt.datetime.fromisoformat(manifest["sealed_at"])
                answered.setdefault(str(manifest["request_id"]), (number, at))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return answered


def refuse_damaged(config: Config, snapshot: CaseSnapshot, sha256: str, reason: str) -> bool:
    """Refuse the document with this content because the packet cannot be assembled with it (pypdf
    cannot merge its pages, or one of its streams inflates past the bound): the file moves to
    `_rejected/` with a note, like any refusal, and the next gather leaves it out. False when no file
    of the case holds that content any more."""
    documents = [d for d in snapshot.documents if d.sha256 == sha256]
    if not documents:
        return False
    sources = {s.relpath: s for s in read_case_folder(snapshot.case_dir).files}
    if reason == INFLATION_LIMIT:  # not damaged: it unpacks past the configured bound
        error = pypdf_limit_refusal(config.limits.max_inflated_bytes)
    else:
        error = RefusedFile(
            reason, "This file is damaged in a way the packet cannot include (its pages could not be put "
            "into the packet, or it holds more data than a packet may carry).",
            "Ask the sender for a new copy (or print it to PDF again) and drop that in.")
    memory = _load_memory(config, snapshot.case_id)
    refused = False
    for document in documents:
        source = sources.get(document.source)
        if source is None:
            continue
        rejected = _refuse(snapshot.case_dir, snapshot.case_id, source, error, sha256, config)
        memory["rejected"] = memory.get("rejected", []) + [asdict(rejected)]
        refused = True
    _save_memory(config, snapshot.case_id, memory)
    return refused


# --- per-case memory in state/ ---------------------------------------------------------------

def _load_memory(config: Config, case_id: str) -> dict:
    path = case_state_dir(config, case_id) / INTAKE_MEMORY
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    return {"received": {}, "rejected": []}


def _save_memory(config: Config, case_id: str, memory: dict) -> None:
    atomic_write_text(case_state_dir(config, case_id) / INTAKE_MEMORY, json.dumps(memory, indent=1, sort_keys=True))


def _rejected_from(entry: dict) -> Rejected:
    return Rejected(**entry)


# --- stages ---------------------------------------------------------------------------------

def _sealed_documents(config: Config, case_id: str) -> dict[str, int]:
    """Documents already sent in a sealed submission (a re-dropped copy is a duplicate), by hash,
    with the strictness they were sent with (see `_strictness`: 2 privileged, 1 withheld, 0 neither)."""
    sent: dict[str, int] = {}
    for _number, manifest in sealed_manifests(config, case_id):
        try:
            for entry in manifest.get("documents", []):
                level = 2 if entry.get("privileged") else 1 if entry.get("withheld_from_member") else 0
                sent[entry["sha256"]] = max(level, sent.get(entry["sha256"], 0))
        except (KeyError, TypeError, AttributeError):
            continue
    return sent


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
            dropped_at = dt.datetime.fromisoformat(first_seen) if first_seen is not None else now
            source = sources[index]
            classified.describe(source, result, facts, overrides.get(source.relpath), config, dropped_at)

    if progress is not None:
        progress("converting", 0, len(sources))
    def reading_pages(done: int, total: int) -> None:
        if progress is not None:
            progress("reading_pages", done, total)

    results = convert_many(sources, config, on_result=classify_early,
                           on_pages=reading_pages if progress is not None else None)
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
            dropped_at = now
        else:
            dropped_at = dt.datetime.fromisoformat(first_seen)
        # Classified as of when the service first saw the file (the date rules' "not in the future"
        # pivot, unchanged by a receipt); the receipt itself starts the supplement clock.
        document = classified.describe(source, result, facts, overrides.get(source.relpath), config, dropped_at)
        receipt = _receipt(source, dropped_at, overrides, config)
        if receipt.how != DROPPED:
            document = replace(document, received_at=receipt.at, received_how=receipt.how)
        if result.page_confidence and any(value is not None for value in result.page_confidence):
            confidence = tuple(result.page_confidence)
            if document.removed_pages:  # one entry per page kept, like `pages`
                confidence = tuple(confidence[n - 1] if n <= len(confidence) else None for n in document.kept_pages)
            document = replace(document, ocr=confidence)
        if first_seen is None:
            _audit_new_document(audit_batch, case_id, document)
        documents.append(document)
    documents.sort(key=lambda d: order[d.source])
    newly_rejected.sort(key=lambda r: order.get(r.source, len(order)))
    classified.save()
    audit_batch.flush()
    return documents, newly_rejected, transient


def _page_removals(config: Config, case_id: str, documents: list[Document],
                   overrides: dict) -> tuple[list[Document], list[str]]:
    """Who removed each document's removed pages (the audit log's actor of that decision), and a
    problem for every removal that names a page beyond its file (not applied; the file's other
    decisions stand)."""
    authors = decision_authors(config, case_id)
    problems = []
    out = []
    for document in documents:
        problem = removal_problem(overrides.get(document.source), document.pages + len(document.removed_pages))
        if problem:
            problems.append(f'overrides.toml ["{document.source}"] {problem}')
        if document.removed_pages:
            decided = authors.get(document.source, {}).get("exclude_pages") or {}
            document = replace(document, removed_by=str(decided.get("by") or "") or None)
        out.append(document)
    return out, problems


def _receipt(source: SourceFile, dropped_at: dt.datetime, overrides: dict, config: Config):
    """When the plan received this file (issue 15 item 2): `received` in overrides.toml, else a dated
    folder the file sits in (e.g. "received-2026-12-01/"), else the time the service first saw it."""
    override = overrides.get(source.relpath)
    folder = source.relpath.rpartition("/")[0] or None
    return record_receipt(dropped_at, config, stated=override.received if override is not None else None,
                          folder=folder)


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



def _override_problems(config: Config, case_id: str, problems: tuple[str, ...]) -> list[str]:
    """overrides.toml stays in the inbox after sealing, so it may name files now in the archive:
    that entry applied to an earlier submission and is not a problem (as packet.pipeline.seal judges it)."""
    sealed = archived_sources(config, case_id)
    return [text for text in problems
            if not ("not in the case folder" in text and any(f'"{source}"' in text for source in sealed))]
