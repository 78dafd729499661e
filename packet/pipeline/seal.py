"""Sealing a case: the release gate, the atomic submission, the archive of originals, supplements,
and recovery after a crash.

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
Seal takes a snapshot (packet.pipeline.gather): the gate is the snapshot's typed items, the
submission is built from its documents, and after the seal the status note is written from it; no
draft is built inside a seal. The rebuild an auditor uses is packet.pipeline.rebuild's.

Must not: classify, convert or draw anything (packet.pipeline.gather, packet.pipeline.submission do),
print, or touch a case folder beyond removing sealed originals, READY and writing `_STATUS.txt`.

Print-folder names start with the sealing time in UTC (`20261130T180211Z-...`), so they sort oldest
first even across a daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from filelock import Timeout

from packet.intake.folder import ready_markers
from packet.config import Config
from packet.errors import AlreadyRunning, CaseError, GateFailed, PacketError, UsageError
from packet.fsutil import NotPlainFile, ensure_dir, fsync_dir, make_private_tree, open_plain_file, sha256_file
from packet.log import log, log_exception
from packet.model.case import check_case_id
from packet.model.context import BuildContext, GateOverride
from packet.model.models import SourceFile
from packet.pipeline import gate as gate_rules
from packet.pipeline import statusnote
from packet.pipeline.gather import CaseSnapshot, case_now, gather_case
from packet.pipeline.submission import build_outputs
from packet.pipeline import verify
from packet.records import anchor, audit, layout
from packet.records.archive import document_json, record_json, write_hashes, write_snapshot
from packet.records.layout import CONVERTED_DIR, SEALED_DIR, manifest_path, submission_dirname
from packet.records.register import (GateResult, SealedSubmission, cases_with_journal, clear_journal,
                                     next_submission_info, read_journal, record_audit_position, record_sealed,
                                     save_gate_result, seal_lock, write_journal)

__all__ = ["seal_case", "seal_snapshot", "recover", "recover_case"]

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


# --- the release gate ---------------------------------------------------------------------------

def _fail_gate(config: Config, result: GateResult, *, snapshot: CaseSnapshot | None = None,
               case_problems: list[str] | None = None) -> GateFailed:
    """Record a refused seal (state, _STATUS.txt, logs) and return the error to raise."""
    save_gate_result(config, result)
    codes = ",".join(sorted({i.code for i in result.blocking}))[:64]
    log("seal_refused", case=result.case_id, reason="gate", items=len(result.blocking), codes=codes)
    audit.record(config, "seal_refused", case=result.case_id, items=[i.code for i in result.blocking])
    messages = []
    for item in result.blocking:
        suffix = "" if item.overridable else " (cannot be overridden)"
        messages.append(item.text + suffix)
    _write_refusal_status(config, result, messages, snapshot=snapshot, case_problems=case_problems)
    return GateFailed(messages)


def _write_refusal_status(config: Config, result: GateResult, messages: list[str], *,
                          snapshot: CaseSnapshot | None, case_problems: list[str] | None) -> None:
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
    if snapshot is None:
        text = statusnote.render(case_id=result.case_id, now=now, tz=tz, headline=headline,
                                 case_problems=case_problems or [], blocking=messages)
    else:
        text = statusnote.render(case_id=result.case_id, now=now, tz=tz, headline=headline,
                                 deadline=snapshot.deadline, documents=list(snapshot.documents),
                                 rejected=list(snapshot.rejected), blocking=messages,
                                 attention=snapshot.attention(), info_clocks=list(snapshot.info_clocks))
    statusnote.write(case_dir, text)


# --- small file helpers --------------------------------------------------------------------------

def _copy_synced(src: Path, dst: Path, *, clerks: bool = False) -> str:
    """Copy bytes, fsync, return the SHA-256 of what was written. A clerk's file (`clerks`) is
    read without following a link and only when it has a single name (NotPlainFile otherwise)."""
    ensure_dir(dst.parent)
    digest = hashlib.sha256()
    source = os.fdopen(open_plain_file(src), "rb") if clerks else open(src, "rb")
    with source as reader, open(dst, "wb") as writer:
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

def _write_archive(stage: Path, snapshot: CaseSnapshot, ctx: BuildContext, *, first_bates: int,
                   audit_head: str, manifest_sha256: str) -> list[dict]:
    """Copy originals, case files and conversions into `stage`, with a snapshot and hashes.

    Returns [{"source", "sha256"}] of the originals archived (the inbox copies to remove later).
    """
    ensure_dir(stage)
    originals = []
    entries = []
    for document in sorted(snapshot.documents, key=lambda d: d.source):
        src = snapshot.case_dir / document.source
        try:
            copied = _copy_synced(src, stage / document.source, clerks=True)
        except (FileNotFoundError, NotPlainFile):
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
        entries.append(document_json(document, pdf_rel))
    for name in ("case.toml", "overrides.toml"):
        if os.path.lexists(snapshot.case_dir / name):
            try:
                _copy_synced(snapshot.case_dir / name, stage / name, clerks=True)
            except NotPlainFile as exc:  # never archive what a link points to (another case, another patient)
                raise PacketError(f"{name} is a link or has a second name (a hard link); nothing was sealed. "
                                  "Put the file itself in the case folder and seal again.",
                                  reason="changed_while_sealing") from exc
    record = {
        "schema": "imr-packet/sealed@1", "case_id": ctx.facts.case_id, "submission": ctx.submission,
        "kind": ctx.kind, "sealed_at": ctx.generated_at.isoformat(), "first_bates": first_bates,
        "audit_head": audit_head, "manifest_sha256": manifest_sha256, "deadline": record_json(ctx.deadline),
        "gate_overrides": [{"item": o.item, "reason": o.reason, "by": o.by} for o in ctx.gate_overrides],
        "documents": entries,
        "rejected": [record_json(r) for r in snapshot.rejected],
    }
    if ctx.request_id:
        record["request_id"] = ctx.request_id
    if ctx.info_requests:  # as the manifest records them, so a rebuild gives the same manifest
        record["info_requests"] = [dict(entry) for entry in ctx.info_requests]
    write_snapshot(stage, record)
    write_hashes(stage)
    make_private_tree(stage)
    return originals



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
    outbox_case = ensure_dir(layout.case_outbox(config, case_id))
    archive_case = ensure_dir(layout.archive_case_dir(config, case_id))
    # Built on the outbox's file system (state/work/ when it is the same one), so the final
    # os.replace is atomic; the archive is staged beside its target for the same reason.
    sub_work = layout.staging_dir(config, outbox_case) / f"seal-{case_id}-{name}"
    return {"sub_work": str(sub_work), "sub_final": str(outbox_case / name),
            "arch_work": str(archive_case / f".sealing-{name}"), "arch_final": str(archive_case / name)}


def seal_case(config: Config, case_id: str, *, override_reason: str | None = None,
              actor: str | None = None, now: dt.datetime | None = None,
              settled: Callable[[SourceFile], bool] | None = None) -> Path:
    """Seal the case's next submission; return outbox/<CASE-ID>/submission-NN/.

    Gathers the case (packet.pipeline.gather) and seals that snapshot (`seal_snapshot`).
    Raises GateFailed (nothing sealed, READY stays) with every failed gate item in plain language.
    `override_reason` passes the overridable items and is recorded with the user in the manifest
    and the audit log. `settled` (the watcher's test) keeps files still being copied out: they
    fail the gate as "still being copied" instead of being sealed half-written.
    """
    check_case_id(case_id)
    if override_reason is not None and not override_reason.strip():
        raise UsageError("--override needs a reason (the words are recorded in the manifest)")
    actor = actor or audit.current_user()
    with _locked(config, case_id):
        recover_case(config, case_id)
        case_dir = config.paths.inbox / case_id
        if not case_dir.is_dir():
            raise UsageError(f"no case folder {case_dir}")
        now = case_now(config, now)
        try:
            snapshot = gather_case(case_dir, config, now=now, settled=settled)
        except CaseError as exc:
            items = [gate_rules.case_toml_item(exc.problems)]
            raise _fail_gate(config, gate_rules.decide(case_id, now, items, override_reason),
                             case_problems=exc.problems) from exc
        except Exception as exc:
            _stuck(config, case_id, now, exc)
            raise
        return _seal_locked(config, snapshot, override_reason=override_reason, actor=actor)


def _stuck(config: Config, case_id: str, now: dt.datetime, exc: Exception) -> None:
    """A seal that failed for another reason than its gate (a full disk, a file changed while
    sealing...): nothing was sealed; the clerk learns why in _STATUS.txt."""
    case_dir = config.paths.inbox / case_id
    if case_dir.is_dir():
        statusnote.write_error(case_dir, case_id=case_id, now=now, tz=config.calendar.tz, exc=exc, doing="sealing")


def seal_snapshot(config: Config, snapshot: CaseSnapshot, *, override_reason: str | None = None,
                  actor: str | None = None) -> Path:
    """Seal a case already gathered (its snapshot is the submission: nothing is gathered again).

    The snapshot must be of the case's next submission (a seal since it was gathered refuses it).
    """
    if override_reason is not None and not override_reason.strip():
        raise UsageError("--override needs a reason (the words are recorded in the manifest)")
    with _locked(config, snapshot.case_id):
        recover_case(config, snapshot.case_id)
        return _seal_locked(config, snapshot, override_reason=override_reason,
                            actor=actor or audit.current_user())


def _seal_locked(config: Config, snapshot: CaseSnapshot, *, override_reason: str | None, actor: str) -> Path:
    case_id, now = snapshot.case_id, snapshot.now
    number, kind, first_bates = next_submission_info(config, case_id)
    if kind == "supplement" and snapshot.kind == "response":
        kind = "response"  # a supplement answering an information request (packet.pipeline.gather)
    if (number, kind, first_bates) != (snapshot.submission, snapshot.kind, snapshot.first_bates):
        raise PacketError(f"case {case_id} was sealed since it was gathered; gather it again",
                          reason="stale_snapshot")
    result = gate_rules.decide(case_id, now, list(snapshot.gate_items), override_reason)
    if not result.ok:
        raise _fail_gate(config, result, snapshot=snapshot)
    overrides = tuple(GateOverride(item=i.text, reason=override_reason, by=actor)
                      for i in result.items if i.overridden)
    ctx = BuildContext(config=config, facts=snapshot.facts, deadline=snapshot.deadline, submission=number,
                       kind=kind, generated_at=now, draft=False, gate_overrides=overrides,
                       request_id=snapshot.request_id,
                       info_requests=tuple(clock.to_json() for clock in snapshot.info_clocks_if_sealed(config, now)))
    try:
        submission = _seal(config, case_id, snapshot, ctx, result, first_bates=first_bates, actor=actor)
    except GateFailed:
        raise
    except Exception as exc:
        _stuck(config, case_id, now, exc)
        raise
    _after_seal(config, snapshot)
    return submission


def _after_seal(config: Config, snapshot: CaseSnapshot) -> None:
    """The draft showed what is now sealed: remove it, and tell the clerk in _STATUS.txt (from the
    snapshot: its documents have left the case folder; files dropped since are taken in by the next
    build). Best effort: the submission is already safe."""
    case_id = snapshot.case_id
    try:
        draft = layout.draft_dir(config, case_id)
        if draft.is_dir():
            old = layout.aside(draft)
            os.replace(draft, old)
            _rmtree(old.parent)
            layout.tidy_staging(draft.parent)
        if snapshot.case_dir.is_dir():
            statusnote.write(snapshot.case_dir, statusnote.for_snapshot(snapshot, config, sealed=True))
    except PacketError as exc:
        log("status_refresh_failed", case=case_id, reason=exc.reason, level="warning")
    except Exception as exc:  # the seal succeeded; a failed refresh must not report it as failed
        log_exception("status_refresh_failed", exc, case=case_id)


def _seal(config: Config, case_id: str, snapshot: CaseSnapshot, ctx: BuildContext, gate: GateResult, *,
          first_bates: int, actor: str) -> Path:
    number = ctx.submission
    paths = _paths(config, case_id, number)
    sub_work, arch_work = Path(paths["sub_work"]), Path(paths["arch_work"])
    sub_final = Path(paths["sub_final"])
    if sub_final.exists() or Path(paths["arch_final"]).exists():
        raise PacketError(f"{sub_final} already exists but the register does not list it; "
                          "refusing to overwrite a sealed submission", reason="register")
    key = anchor.load_key(config)  # a configured key that cannot be read stops the seal before it starts
    journal = {"case_id": case_id, "submission": number, "phase": "building", **paths}
    write_journal(config, case_id, journal)
    _checkpoint("journal building")
    try:
        _rmtree(sub_work)
        _rmtree(arch_work)
        audit_head = audit.head(config)
        built = build_outputs(list(snapshot.documents), list(snapshot.rejected), ctx, sub_work,
                              first_bates=first_bates, sealed_at=ctx.generated_at, audit_head=audit_head)
        _checkpoint("outputs built")
        manifest_sha = sha256_file(manifest_path(sub_work))
        originals = _write_archive(arch_work, snapshot, ctx, first_bates=first_bates, audit_head=audit_head,
                                   manifest_sha256=manifest_sha)
        _checkpoint("archive staged")
        _fsync_tree(sub_work)
        _fsync_tree(arch_work)
        _checkpoint("fsynced")
        report = verify.verify_submission(sub_work, config, audit=False, archive_dir=arch_work)
        if not report.ok:
            items = list(gate.items) + [gate_rules.verify_item(f) for f in report.failures]
            raise _fail_gate(config, GateResult(case_id=case_id, checked_at=gate.checked_at, items=tuple(items),
                                                override_reason=gate.override_reason), snapshot=snapshot)
    except BaseException:
        _rollback(config, case_id, journal)
        raise
    prints = _print_names(ctx, built.outputs)
    journal.update({
        "phase": "publishing", "originals": originals, "prints": prints, "actor": actor,
        "sealed": {"number": number, "kind": ctx.kind, "sealed_at": ctx.generated_at.isoformat(),
                   "first_bates": first_bates, "next_bates": built.page_list.next_bates,
                   "manifest_sha256": manifest_sha},
        "audit": {"documents": len([d for d in snapshot.documents if d.excluded is None]),
                  "pages": built.page_list.total_pages, "on_time": built.manifest.get("on_time"),
                  # Codes, not the items' words: those name files, and the audit log holds no file names.
                  "overrides": [{"item": i.code, "reason": gate.override_reason, "by": actor}
                                for i in gate.items if i.overridden]},
    })
    if key is not None:
        journal["sealed_mac"] = anchor.mac(key, anchor.seal_fields(case=case_id, submission=number, kind=ctx.kind,
                                                                   manifest_sha256=manifest_sha))
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


def _print_audited(config: Config, case_id: str, number: int, print_name: str) -> bool:
    return any(entry.get("event") == "print_queued" and entry.get("case") == case_id
               and entry.get("submission") == number and entry.get("print_name") == print_name
               for entry in audit.iter_entries(config))


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
            layout.move_into_place(work, final)
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
    print_dir = ensure_dir(layout.print_dir(config))
    number = journal["submission"]
    for item in journal.get("prints", []):
        target = print_dir / item["print_name"]
        # A partial copy has a name this journal knows, so a recovery removes exactly it (and no
        # other writer's temporary file).
        partial = print_dir / f".tmp-seal-{item['print_name']}"
        partial.unlink(missing_ok=True)
        if not target.exists():
            _copy_synced(sub_final / item["file"], partial)
            os.replace(partial, target)
            fsync_dir(print_dir)
            audit.record(config, "print_queued", case=case_id, submission=number, print_name=item["print_name"])
            _checkpoint(f"printed {item['print_name']}")
        elif not _print_audited(config, case_id, number, item["print_name"]):  # a crash between the two
            audit.record(config, "print_queued", case=case_id, submission=number, print_name=item["print_name"])
    # 5. READY has done its job.
    readies = ready_markers(case_dir)  # READY, READY.txt, ready.docx, ...
    for ready in readies:
        ready.unlink()
    if readies:
        fsync_dir(case_dir)
        _checkpoint("READY removed")
    # 6. The audit log and the service log.
    if not _already_audited(config, case_id, number):
        sealed = journal["sealed"]
        facts = journal.get("audit", {})
        signed = {"mac": journal["sealed_mac"]} if journal.get("sealed_mac") else {}
        events = [("sealed", dict(case=case_id, actor=journal.get("actor", "service"), submission=number,
                                  kind=sealed["kind"], manifest_sha256=sealed["manifest_sha256"],
                                  bates_first=sealed["first_bates"], bates_next=sealed["next_bates"],
                                  documents=facts.get("documents"), pages=facts.get("pages"),
                                  on_time=facts.get("on_time"), overrides=len(facts.get("overrides", [])),
                                  **signed))]
        events += [("overridden", dict(case=case_id, actor=override["by"], submission=number,
                                       item=override["item"], reason=override["reason"]))
                   for override in facts.get("overrides", [])]
        last = audit.record_many(config, events)[-1]  # one append: the seal's entries stand or fall together
        _checkpoint("audited")
        position = (last["seq"], audit.entry_hash(last))
    else:
        position = audit.find_last(config, case=case_id, submission=number, events={"sealed", "overridden"})
    # 7. Where the seal's last audit entry sits in the chain: `audit verify` checks it is still there
    # (the manifest can only hold the head from before the seal's own entries).
    if position is not None:
        record_audit_position(config, case_id, number, *position)
        _checkpoint("audit position recorded")
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
    """Recover every case with an interrupted seal, then sweep what other interrupted work left in
    state/work/, the outbox's staging folders and the print folder (the watcher calls this at
    start-up, before it builds anything)."""
    done = {}
    for case_id in cases_with_journal(config):
        with _locked(config, case_id):
            outcome = recover_case(config, case_id)
        if outcome:
            done[case_id] = outcome
    keep = set()
    for case_id in cases_with_journal(config):  # a journal whose recovery failed keeps its folders
        journal = read_journal(config, case_id) or {}
        keep |= {Path(journal[k]) for k in ("sub_work", "arch_work") if journal.get(k)}
    swept = layout.sweep_work(config, keep)
    if swept:
        log("work_swept", items=len(swept))
    return done
