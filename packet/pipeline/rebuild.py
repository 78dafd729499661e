"""Rebuilding a sealed submission from its archive alone: the proof an auditor runs
(`verify --rebuild`), shared by sealing's own check and by verify.

Owns: `rebuild_submission`. Must not: write anywhere but the folder it is given, or read the
inbox, the state or the service's caches.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

from packet.config import Config
from packet.errors import CaseError, PacketError
from packet.model.case import parse_case
from packet.model.context import BuildContext, GateOverride
from packet.model.models import Deadline, Rejected
from packet.pipeline.submission import build_outputs
from packet.records.archive import check_archive, document_from, read_snapshot, record_from
from packet.records.layout import MANIFEST, archive_dir, read_manifest


def archive_dir_for(config: Config, manifest: dict) -> Path:
    return archive_dir(config, manifest["case_id"], int(manifest["submission"]))


def rebuild_submission(submission_dir: Path, config: Config, out_dir: Path) -> Path:
    """Build the submission's outputs again into `out_dir` from its archived originals alone.

    Raises PacketError when the archive is missing or was altered after sealing.
    """
    submission_dir = Path(submission_dir)
    try:
        manifest = read_manifest(submission_dir)
    except (OSError, ValueError) as exc:
        raise PacketError(f"{submission_dir}: no readable {MANIFEST}", reason="no_manifest") from exc
    if manifest.get("kind") == "draft":
        raise PacketError("a draft has no archive to rebuild from; seal it first", reason="draft")
    archived = archive_dir_for(config, manifest)
    if not archived.is_dir():
        raise PacketError(f"the archive {archived} is missing", reason="no_archive")
    problems = check_archive(archived)
    if problems:
        raise PacketError("; ".join(problems), reason="archive_altered")
    snapshot = read_snapshot(archived)
    case_id = snapshot["case_id"]
    try:
        with open(archived / "case.toml", "rb") as handle:
            facts = parse_case(tomllib.load(handle), case_id)
    except (OSError, tomllib.TOMLDecodeError, CaseError) as exc:
        raise PacketError(f"the archived case.toml cannot be read ({exc})", reason="archive_case") from exc
    documents = [document_from(entry, archived) for entry in snapshot["documents"]]
    rejected = [record_from(Rejected, r) for r in snapshot["rejected"]]
    sealed_at = dt.datetime.fromisoformat(snapshot["sealed_at"])
    ctx = BuildContext(config=config, facts=facts, deadline=record_from(Deadline, snapshot["deadline"]),
                       submission=snapshot["submission"], kind=snapshot["kind"], generated_at=sealed_at,
                       draft=False,
                       gate_overrides=tuple(GateOverride(**o) for o in snapshot["gate_overrides"]),
                       request_id=snapshot.get("request_id"),
                       info_requests=tuple(snapshot.get("info_requests") or ()))
    build_outputs(documents, rejected, ctx, out_dir, first_bates=snapshot["first_bates"],
                  sealed_at=sealed_at, audit_head=snapshot["audit_head"])
    return Path(out_dir)
