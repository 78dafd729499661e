"""Sealing a case: the release gate, the atomic submission, the archive of originals, supplements,
recovery after a crash, and the rebuild an auditor uses to prove a submission.

Owns:
- `seal_case`: gate -> build every output into a work folder -> archive copies of the originals
  (with case.toml, overrides.toml, the conversions used and a snapshot of every decision) into a
  staging folder -> verify -> *commit* -> publish both folders with `os.replace` -> record the
  Bates register -> remove the originals from the inbox -> copy the mailings into outbox/_print/
  -> remove READY -> audit `sealed`.
- The journal (`state/cases/<CASE-ID>/seal-journal.json`) that makes this crash-safe. Before the
  commit (journal phase "building") nothing outside the work and staging folders has changed, so
  recovery deletes them: no submission, the originals untouched, READY still there. From the
  commit (phase "publishing") both folders are complete and fsynced, so recovery finishes every
  remaining step; each step is idempotent. Originals are copied, fsynced and hash-checked into the
  archive before the inbox copy is removed, so no crash can lose one.
- `rebuild_submission`: the outputs again from `archive/<CASE-ID>/submission-NN/` alone.
- `next_submission_info` (re-exported from packet.records.register) for the draft build.

Must not: classify, convert or draw anything (packet.pipeline.build, packet.pipeline.submission do), print, or touch
a case folder beyond removing sealed originals and READY.

Print-folder names start with the sealing time in UTC (`20261130T180211Z-...`), so they sort oldest
first even across a daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

from filelock import Timeout

from packet.records import audit
from packet.model.case import CaseFacts, check_case_id, load_case, parse_case
from packet.config import Config
from packet.model.context import BuildContext, GateOverride
from packet.intake.folder import ready_markers
from packet.errors import AlreadyRunning, CaseError, GateFailed, PacketError, UsageError
from packet.fsutil import (atomic_write_bytes, atomic_write_text, ensure_dir, fsync_dir, make_private_tree,
                     sha256_file)
from packet.log import log, log_exception
from packet.model.models import Deadline, Decision, Document, Rejected, SourceFile
from packet.records.register import (GateItem, GateResult, SealedSubmission, clear_journal, next_submission_info,
                       read_journal, record_sealed, save_gate_result, seal_lock, submission_dirname,
                       write_journal)

__all__ = ["seal_case", "recover", "recover_case", "rebuild_submission", "next_submission_info",
           "SealInputs", "check_gate"]

SEALED_DIR = "_sealed"  # inside archive/<CASE-ID>/submission-NN/: the service's own records
SNAPSHOT = "documents.json"
HASHES = "SHA256SUMS"
CONVERTED_DIR = "converted"
MAILINGS_TO_PRINT = (("member-packet.pdf", "member"), ("provider-packet.pdf", "provider"),
                     ("representative-packet.pdf", "representative"))  # the letter's "cc" (issue 15 item 4)
CRASH_ENV = "IMR_SEAL_CRASH_AT"  # tests: os._exit at the Nth checkpoint of a seal or recovery
CHECKPOINT_LOG_ENV = "IMR_SEAL_CHECKPOINT_LOG"  # tests: append each checkpoint's name to this file

_checkpoints_passed = 0


def _checkpoint(name: str) -> None:
    """A point where a test may kill the process (os._exit, like kill -9: no cleanup runs)."""
    global _checkpoints_passed
    _checkpoints_passed += 1
    log_path = os.environ.get(CHECKPOINT_LOG_ENV)
    if log_path:
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{_checkpoints_passed} {name}\n")
    crash_at = os.environ.get(CRASH_ENV)
    if crash_at and int(crash_at) == _checkpoints_passed:
        os._exit(137)


@dataclass(frozen=True)
class SealInputs:
    """What the gate and the build of one submission need, gathered from the case folder."""

    case_dir: Path
    facts: CaseFacts
    documents: tuple[Document, ...]
    rejected: tuple[Rejected, ...]
    deadline: Deadline
    problems: tuple[GateItem, ...] = ()  # gate items found while gathering (overrides.toml, retries)


# --- gathering the documents ----------------------------------------------------------------------

def collect(config: Config, case_id: str, case_dir: Path, now: dt.datetime, *,
            settled: Callable[[SourceFile], bool] | None = None) -> SealInputs:
    """The case's documents as a build sees them (packet.pipeline.build refreshes the draft and status too)."""
    from packet.pipeline.build import build_case
    from packet.pipeline.gate import document_items

    result = build_case(case_dir, config, now=now, settled=settled)
    supplement = result.kind == "supplement"
    document_texts = {item.text for item in document_items(result.facts, list(result.documents),
                                                            supplement=supplement)}
    # build_case already leaves out overrides.toml entries for files archived by earlier submissions.
    problems = [GateItem("overrides_toml", text) for text in result.blocking if text not in document_texts]
    for relpath in sorted(result.transient):
        problems.append(GateItem("retrying", f'"{relpath}" could not be read yet and is being retried; '
                                             "wait for it, or remove it from the case folder"))
    for relpath in result.waiting:
        problems.append(GateItem("waiting", f'"{relpath}" is still being copied; wait for it'))
    return SealInputs(case_dir=case_dir, facts=result.facts, documents=result.documents,
                      rejected=result.rejected, deadline=result.deadline, problems=tuple(problems))


def archived_sources(config: Config, case_id: str) -> set[str]:
    """Relative paths of every original archived by an earlier submission of the case."""
    sources: set[str] = set()
    for snapshot in sorted((config.paths.archive / case_id).glob(f"submission-*/{SEALED_DIR}/{SNAPSHOT}")):
        try:
            with open(snapshot, encoding="utf-8") as handle:
                sources.update(entry["source"] for entry in json.load(handle)["documents"])
        except (OSError, ValueError, KeyError):
            continue
    return sources


# --- the release gate ---------------------------------------------------------------------------

# Another member's pages in a mailing are a breach: a blanket `--override` (given for some other
# item) must never release them. A person decides per file in overrides.toml instead
# (`exclude = "..."`, or `identity_confirmed = "..."` for a false positive).
# Correspondence a rule would withhold from the member is decided per file too (release_to_member or
# withhold_from_member), never by a blanket override.
NOT_OVERRIDABLE = {"case_toml", "no_documents", "verify", "identity_mismatch", "withheld_correspondence"}


def check_gate(inputs: SealInputs, *, supplement: bool) -> list[GateItem]:
    """Every gate item that fails before building (spec.md "Lifecycle" 2), in plain language."""
    from packet.pipeline.gate import document_items

    items = [GateItem(item.code, item.text, overridable=item.code not in NOT_OVERRIDABLE)
             for item in document_items(inputs.facts, list(inputs.documents), supplement=supplement)]
    return items + list(inputs.problems)


def _gate_result(case_id: str, now: dt.datetime, items: list[GateItem], override_reason: str | None) -> GateResult:
    marked = tuple(GateItem(i.id, i.message, i.overridable, bool(override_reason) and i.overridable)
                   for i in items)
    return GateResult(case_id=case_id, checked_at=now.isoformat(), items=marked,
                      override_reason=override_reason)


def _fail_gate(config: Config, result: GateResult, *, inputs: SealInputs | None = None,
               case_problems: list[str] | None = None) -> GateFailed:
    """Record a refused seal (state, _STATUS.txt, logs) and return the error to raise."""
    save_gate_result(config, result)
    codes = ",".join(sorted({i.id for i in result.blocking}))[:64]
    log("seal_refused", case=result.case_id, reason="gate", items=len(result.blocking), codes=codes)
    audit.record(config, "seal_refused", case=result.case_id, items=[i.id for i in result.blocking])
    messages = []
    for item in result.blocking:
        suffix = "" if item.overridable else " (cannot be overridden)"
        messages.append(item.message + suffix)
    _write_refusal_status(config, result, messages, inputs=inputs, case_problems=case_problems)
    return GateFailed(messages)


def _write_refusal_status(config: Config, result: GateResult, messages: list[str], *,
                          inputs: SealInputs | None, case_problems: list[str] | None) -> None:
    from packet.pipeline import statusnote

    case_dir = config.paths.inbox / result.case_id
    if not case_dir.is_dir():
        return
    tz = config.calendar.tz
    now = dt.datetime.fromisoformat(result.checked_at)
    headline = (f"NOT SEALED: {len(messages)} thing(s) to fix first; READY stays, and sealing is tried "
                "again when the case changes")
    if all(item.overridable for item in result.blocking):
        headline += (f" (a supervisor may instead run: imr-packet seal {result.case_id} "
                     '--override "the reason")')
    if inputs is None:
        text = statusnote.render(case_id=result.case_id, now=now, tz=tz, headline=headline,
                                 case_problems=case_problems or [], blocking=messages)
    else:
        from packet.classify.rules import needs_attention

        text = statusnote.render(case_id=result.case_id, now=now, tz=tz, headline=headline,
                                 deadline=inputs.deadline, documents=list(inputs.documents),
                                 rejected=list(inputs.rejected), blocking=messages,
                                 attention={d.source: needs_attention(d) for d in inputs.documents})
    statusnote.write(case_dir, text)


# --- small file helpers --------------------------------------------------------------------------

def _copy_synced(src: Path, dst: Path) -> str:
    """Copy bytes, fsync, return the SHA-256 of what was written."""
    import hashlib

    ensure_dir(dst.parent)
    digest = hashlib.sha256()
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        while block := reader.read(1 << 20):
            digest.update(block)
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())
    os.chmod(dst, 0o640)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def _rmtree(path: Path | None) -> None:
    if path is not None and Path(path).exists():
        shutil.rmtree(path)


def _same_device(a: Path, b: Path) -> bool:
    return os.stat(ensure_dir(a)).st_dev == os.stat(ensure_dir(b)).st_dev


# --- the archive snapshot ------------------------------------------------------------------------

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


def _document_json(document: Document, pdf_rel: str) -> dict:
    entry = {f.name: _encode(getattr(document, f.name)) for f in fields(Document) if f.name != "pdf_path"}
    entry["pdf"] = pdf_rel
    return entry


def _document_from(entry: dict, archive_dir: Path) -> Document:
    known = {f.name for f in fields(Document)} - {"pdf_path"}
    values = {name: _decode(value) for name, value in entry.items() if name in known}
    return Document(pdf_path=archive_dir / entry["pdf"], **values)


def _record_json(value) -> dict:
    """A frozen dataclass (Deadline, Rejected) as JSON, field by field."""
    return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}


def _record_from(cls, raw: dict):
    known = {f.name for f in fields(cls)}
    return cls(**{name: _decode(value) for name, value in raw.items() if name in known})


def _write_archive(stage: Path, inputs: SealInputs, ctx: BuildContext, *, first_bates: int,
                   audit_head: str) -> list[dict]:
    """Copy originals, case files and conversions into `stage`, with a snapshot and hashes.

    Returns [{"source", "sha256"}] of the originals archived (the inbox copies to remove later).
    """
    ensure_dir(stage)
    originals = []
    entries = []
    for document in sorted(inputs.documents, key=lambda d: d.source):
        src = inputs.case_dir / document.source
        try:
            copied = _copy_synced(src, stage / document.source)
        except FileNotFoundError:
            copied = None
        if copied != document.sha256:
            raise PacketError(f'"{document.source}" changed or disappeared while it was being sealed; nothing '
                              "was sealed. Seal again once the case folder is complete.",
                              reason="changed_while_sealing")
        _checkpoint(f"archived {document.source}")
        if document.pdf_path.resolve() == src.resolve() or sha256_file(document.pdf_path) == document.sha256:
            pdf_rel = document.source
        else:
            pdf_rel = f"{SEALED_DIR}/{CONVERTED_DIR}/{document.sha256}.pdf"
            _copy_synced(document.pdf_path, stage / pdf_rel)
        originals.append({"source": document.source, "sha256": document.sha256})
        entries.append(_document_json(document, pdf_rel))
    for name in ("case.toml", "overrides.toml"):
        if (inputs.case_dir / name).is_file():
            _copy_synced(inputs.case_dir / name, stage / name)
    snapshot = {
        "schema": "imr-packet/sealed@1", "case_id": ctx.facts.case_id, "submission": ctx.submission,
        "kind": ctx.kind, "sealed_at": ctx.generated_at.isoformat(), "first_bates": first_bates,
        "audit_head": audit_head, "deadline": _record_json(ctx.deadline),
        "gate_overrides": [{"item": o.item, "reason": o.reason, "by": o.by} for o in ctx.gate_overrides],
        "documents": entries,
        "rejected": [_record_json(r) for r in inputs.rejected],
    }
    atomic_write_text(stage / SEALED_DIR / SNAPSHOT, json.dumps(snapshot, indent=2, ensure_ascii=False) + "\n")
    lines = []
    for dirpath, _dirnames, filenames in os.walk(stage):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(stage).as_posix()
            if rel != f"{SEALED_DIR}/{HASHES}":
                lines.append(f"{sha256_file(path)}  {rel}")
    atomic_write_text(stage / SEALED_DIR / HASHES, "\n".join(sorted(lines, key=lambda l: l[66:])) + "\n")
    make_private_tree(stage)
    return originals


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


# --- sealing ------------------------------------------------------------------------------------

@contextmanager
def _locked(config: Config, case_id: str):
    lock = seal_lock(config, case_id)
    try:
        lock.acquire()
    except Timeout:
        raise AlreadyRunning(f"another seal of case {case_id} is still running") from None
    try:
        yield
    finally:
        lock.release()


def _paths(config: Config, case_id: str, number: int) -> dict[str, str]:
    name = submission_dirname(number)
    outbox_case = ensure_dir(config.paths.outbox / case_id)
    archive_case = ensure_dir(config.paths.archive / case_id)
    work = ensure_dir(config.work_dir)
    # Build in state/work/ (style.md); where state/ is on another file system than the outbox,
    # stage beside the target so the final os.replace stays atomic.
    sub_work = (work / f"seal-{case_id}-{name}" if _same_device(work, outbox_case)
                else outbox_case / f".sealing-{name}")
    return {"sub_work": str(sub_work), "sub_final": str(outbox_case / name),
            "arch_work": str(archive_case / f".sealing-{name}"), "arch_final": str(archive_case / name)}


def seal_case(config: Config, case_id: str, *, override_reason: str | None = None,
              actor: str | None = None, now: dt.datetime | None = None,
              settled: Callable[[SourceFile], bool] | None = None) -> Path:
    """Seal the case's next submission; return outbox/<CASE-ID>/submission-NN/.

    Raises GateFailed (nothing sealed, READY stays) with every failed gate item in plain language.
    `override_reason` passes the overridable items and is recorded with the user in the manifest
    and the audit log. `settled` (the watcher's test) keeps files still being copied out: they
    fail the gate as "still being copied" instead of being sealed half-written.
    """
    check_case_id(case_id)
    if override_reason is not None and not override_reason.strip():
        raise UsageError("--override needs a reason (the words are recorded in the manifest)")
    actor = actor or audit.current_user()
    tz = config.calendar.tz
    with _locked(config, case_id):
        recover_case(config, case_id)
        case_dir = config.paths.inbox / case_id
        if not case_dir.is_dir():
            raise UsageError(f"no case folder {case_dir}")
        now = (now or dt.datetime.now(tz)).astimezone(tz).replace(microsecond=0)
        number, kind, first_bates = next_submission_info(config, case_id)
        try:
            load_case(case_dir)
        except CaseError as exc:
            items = [GateItem("case_toml", "case.toml is not valid: " + "; ".join(exc.problems), overridable=False)]
            raise _fail_gate(config, _gate_result(case_id, now, items, override_reason),
                             case_problems=exc.problems) from exc
        inputs = collect(config, case_id, case_dir, now, settled=settled)
        items = check_gate(inputs, supplement=kind == "supplement")
        result = _gate_result(case_id, now, items, override_reason)
        if not result.ok:
            raise _fail_gate(config, result, inputs=inputs)
        overrides = tuple(GateOverride(item=i.message, reason=override_reason, by=actor)
                          for i in result.items if i.overridden)
        ctx = BuildContext(config=config, facts=inputs.facts, deadline=inputs.deadline, submission=number,
                           kind=kind, generated_at=now, draft=False, gate_overrides=overrides)
        submission = _seal(config, case_id, inputs, ctx, result, first_bates=first_bates, actor=actor)
        _after_seal(config, case_id, case_dir, now)
        return submission


def _after_seal(config: Config, case_id: str, case_dir: Path, now: dt.datetime) -> None:
    """The draft showed what is now sealed: remove it, and refresh _STATUS.txt (and a draft of any
    file dropped meanwhile) with a build. Best effort: the submission is already safe."""
    from packet.pipeline.build import DRAFT_DIR, build_case

    try:
        draft = config.paths.outbox / case_id / DRAFT_DIR
        if draft.is_dir():
            aside = ensure_dir(config.work_dir) / f"sealed-draft-{case_id}"
            _rmtree(aside)
            os.replace(draft, aside)
            _rmtree(aside)
        build_case(case_dir, config, now=now)
    except PacketError as exc:
        log("status_refresh_failed", case=case_id, reason=exc.reason, level="warning")
    except Exception as exc:  # the seal succeeded; a failed refresh must not report it as failed
        log_exception("status_refresh_failed", exc, case=case_id)


def _seal(config: Config, case_id: str, inputs: SealInputs, ctx: BuildContext, gate: GateResult, *,
          first_bates: int, actor: str) -> Path:
    from packet.pipeline.submission import build_outputs
    from packet.pipeline.verify import verify_submission

    number = ctx.submission
    paths = _paths(config, case_id, number)
    sub_work, arch_work = Path(paths["sub_work"]), Path(paths["arch_work"])
    sub_final = Path(paths["sub_final"])
    if sub_final.exists() or Path(paths["arch_final"]).exists():
        raise PacketError(f"{sub_final} already exists but the register does not list it; "
                          "refusing to overwrite a sealed submission", reason="register")
    journal = {"case_id": case_id, "submission": number, "phase": "building", **paths}
    write_journal(config, case_id, journal)
    _checkpoint("journal building")
    try:
        _rmtree(sub_work)
        _rmtree(arch_work)
        audit_head = audit.head(config)
        built = build_outputs(list(inputs.documents), list(inputs.rejected), ctx, sub_work,
                              first_bates=first_bates, sealed_at=ctx.generated_at, audit_head=audit_head)
        _checkpoint("outputs built")
        originals = _write_archive(arch_work, inputs, ctx, first_bates=first_bates, audit_head=audit_head)
        _checkpoint("archive staged")
        _fsync_tree(sub_work)
        _fsync_tree(arch_work)
        _checkpoint("fsynced")
        report = verify_submission(sub_work, config, audit=False, archive_dir=arch_work)
        if not report.ok:
            items = list(gate.items) + [GateItem("verify", "the built submission does not pass verify: " + f,
                                                 overridable=False) for f in report.failures]
            raise _fail_gate(config, GateResult(case_id=case_id, checked_at=gate.checked_at, items=tuple(items),
                                                override_reason=gate.override_reason), inputs=inputs)
    except BaseException:
        _rollback(config, case_id, journal)
        raise
    manifest_sha = sha256_file(sub_work / "manifest.json")
    prints = _print_names(ctx, built.outputs)
    journal.update({
        "phase": "publishing", "originals": originals, "prints": prints, "actor": actor,
        "sealed": {"number": number, "kind": ctx.kind, "sealed_at": ctx.generated_at.isoformat(),
                   "first_bates": first_bates, "next_bates": built.page_list.next_bates,
                   "manifest_sha256": manifest_sha},
        "audit": {"documents": len([d for d in inputs.documents if d.excluded is None]),
                  "pages": built.page_list.total_pages, "on_time": built.manifest.get("on_time"),
                  # Codes, not the items' words: those name files, and the audit log holds no file names.
                  "overrides": [{"item": i.id, "reason": gate.override_reason, "by": actor}
                                for i in gate.items if i.overridden]},
    })
    write_journal(config, case_id, journal)  # the commit point: from here recovery rolls forward
    _checkpoint("journal publishing")
    save_gate_result(config, gate)
    _publish(config, case_id, journal)
    return sub_final


def _print_names(ctx: BuildContext, outputs) -> list[dict]:
    stamp = ctx.generated_at.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    by_name = {o.file: o for o in outputs}
    names = []
    for file, recipient in MAILINGS_TO_PRINT:
        output = by_name.get(file)
        if output is None:
            continue
        names.append({"file": file, "print_name": f"{stamp}-{ctx.facts.case_id}-s{ctx.submission:02d}-"
                                                  f"{recipient}-{output.pages}p.pdf"})
    return names


def _rollback(config: Config, case_id: str, journal: dict) -> None:
    """Undo a seal that did not reach its commit point: only work and staging folders existed."""
    _rmtree(Path(journal["sub_work"]))
    _rmtree(Path(journal["arch_work"]))
    clear_journal(config, case_id)


def _already_audited(config: Config, case_id: str, number: int) -> bool:
    # Across rotated log files too: recovery must not record the same seal twice.
    return any(entry.get("event") == "sealed" and entry.get("case") == case_id and entry.get("submission") == number
               for entry in audit.iter_entries(config))


def _publish(config: Config, case_id: str, journal: dict) -> None:
    """Every step after the commit point; each is idempotent, so recovery simply runs it again."""
    sub_work, sub_final = Path(journal["sub_work"]), Path(journal["sub_final"])
    arch_work, arch_final = Path(journal["arch_work"]), Path(journal["arch_final"])
    # 1. The archive, then the submission, move into place whole.
    for work, final, label in ((arch_work, arch_final, "archive"), (sub_work, sub_final, "submission")):
        if work.exists() and not final.exists():
            os.replace(work, final)
            fsync_dir(final.parent)
            _checkpoint(f"{label} published")
        elif work.exists():
            _rmtree(work)  # the final one is already in place (a crash after the replace)
    # 2. The Bates register.
    record_sealed(config, case_id, SealedSubmission(**journal["sealed"]))
    _checkpoint("register recorded")
    # 3. The originals leave the inbox only now, and only if the archive holds the same bytes.
    case_dir = config.paths.inbox / case_id
    for original in journal.get("originals", []):
        path = case_dir / original["source"]
        archived = arch_final / original["source"]
        if (path.is_file() and archived.is_file() and sha256_file(path) == original["sha256"]
                and sha256_file(archived) == original["sha256"]):
            path.unlink()
            fsync_dir(path.parent)
            _checkpoint(f"original removed {original['source']}")
    # 4. Mailings into the print folder.
    print_dir = ensure_dir(config.paths.outbox / "_print")
    number = journal["submission"]
    for item in journal.get("prints", []):
        target = print_dir / item["print_name"]
        if not target.exists():
            atomic_write_bytes(target, (sub_final / item["file"]).read_bytes())
            audit.record(config, "print_queued", case=case_id, submission=number, print_name=item["print_name"])
            _checkpoint(f"printed {item['print_name']}")
    # 5. READY has done its job.
    for ready in ready_markers(case_dir):  # READY, READY.txt, ready.docx, ...
        ready.unlink()
        fsync_dir(case_dir)
        _checkpoint("READY removed")
    # 6. The audit log and the service log.
    if not _already_audited(config, case_id, number):
        sealed = journal["sealed"]
        facts = journal.get("audit", {})
        audit.record(config, "sealed", case=case_id, actor=journal.get("actor", "service"), submission=number,
                     kind=sealed["kind"], manifest_sha256=sealed["manifest_sha256"],
                     bates_first=sealed["first_bates"], bates_next=sealed["next_bates"],
                     documents=facts.get("documents"), pages=facts.get("pages"), on_time=facts.get("on_time"),
                     overrides=len(facts.get("overrides", [])))
        for override in facts.get("overrides", []):
            audit.record(config, "overridden", case=case_id, actor=override["by"], submission=number,
                         item=override["item"], reason=override["reason"])
        _checkpoint("audited")
    log("sealed", case=case_id, submission=number, kind=journal["sealed"]["kind"],
        on_time=journal.get("audit", {}).get("on_time"))
    clear_journal(config, case_id)
    _checkpoint("journal cleared")


# --- recovery -----------------------------------------------------------------------------------

def recover_case(config: Config, case_id: str) -> str | None:
    """Complete or roll back an interrupted seal of the case. Returns what was done, or None.

    Call with the case's seal lock held (seal_case does); `recover` takes it itself.
    """
    journal = read_journal(config, case_id)
    if journal is None:
        return None
    if journal.get("phase") == "publishing":
        _publish(config, case_id, journal)
        log("seal_recovered", case=case_id, submission=journal.get("submission"), outcome="completed")
        return "completed"
    _rollback(config, case_id, journal)
    log("seal_recovered", case=case_id, submission=journal.get("submission"), outcome="rolled_back")
    return "rolled_back"


def recover(config: Config) -> dict[str, str]:
    """Recover every case with an interrupted seal (the watcher calls this at start-up)."""
    from packet.records.register import cases_with_journal

    done = {}
    for case_id in cases_with_journal(config):
        with _locked(config, case_id):
            outcome = recover_case(config, case_id)
        if outcome:
            done[case_id] = outcome
    return done


# --- rebuilding from the archive ----------------------------------------------------------------

def archive_dir_for(config: Config, manifest: dict) -> Path:
    return config.paths.archive / manifest["case_id"] / submission_dirname(int(manifest["submission"]))


def rebuild_submission(submission_dir: Path, config: Config, out_dir: Path) -> Path:
    """Build the submission's outputs again into `out_dir` from its archived originals alone.

    Raises PacketError when the archive is missing or was altered after sealing.
    """
    from packet.pipeline.submission import build_outputs

    submission_dir = Path(submission_dir)
    try:
        with open(submission_dir / "manifest.json", encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        raise PacketError(f"{submission_dir}: no readable manifest.json", reason="no_manifest") from exc
    if manifest.get("kind") == "draft":
        raise PacketError("a draft has no archive to rebuild from; seal it first", reason="draft")
    archive_dir = archive_dir_for(config, manifest)
    if not archive_dir.is_dir():
        raise PacketError(f"the archive {archive_dir} is missing", reason="no_archive")
    problems = check_archive(archive_dir)
    if problems:
        raise PacketError("; ".join(problems), reason="archive_altered")
    with open(archive_dir / SEALED_DIR / SNAPSHOT, encoding="utf-8") as handle:
        snapshot = json.load(handle)
    case_id = snapshot["case_id"]
    try:
        with open(archive_dir / "case.toml", "rb") as handle:
            facts = parse_case(tomllib.load(handle), case_id)
    except (OSError, tomllib.TOMLDecodeError, CaseError) as exc:
        raise PacketError(f"the archived case.toml cannot be read ({exc})", reason="archive_case") from exc
    documents = [_document_from(entry, archive_dir) for entry in snapshot["documents"]]
    rejected = [_record_from(Rejected, r) for r in snapshot["rejected"]]
    sealed_at = dt.datetime.fromisoformat(snapshot["sealed_at"])
    ctx = BuildContext(config=config, facts=facts, deadline=_record_from(Deadline, snapshot["deadline"]),
                       submission=snapshot["submission"], kind=snapshot["kind"], generated_at=sealed_at,
                       draft=False,
                       gate_overrides=tuple(GateOverride(**o) for o in snapshot["gate_overrides"]))
    build_outputs(documents, rejected, ctx, out_dir, first_bates=snapshot["first_bates"],
                  sealed_at=sealed_at, audit_head=snapshot["audit_head"])
    return Path(out_dir)
