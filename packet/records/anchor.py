"""Anchors for the audit trail: what ties a sealed submission to its audit entries, and what
catches a consistent rewrite of the log by someone who can write to state/, outbox/ and archive/.

Owns:
- The seal's cross-checks: a sealed submission's manifest.json hash must equal the one its
  `sealed` audit entry recorded and the one its archive snapshot recorded; the register records
  the chain position of the seal's last audit entry, which must still be in the chain.
- The audit key: an HMAC key the service may read but not write (a root-owned file named by
  `[audit] key_file`, or the systemd credential `imr-audit-key`). With it, every `sealed` entry
  carries a MAC of its case, submission, kind and manifest hash, and checkpoints are signed.
- Checkpoints (`imr-packet audit checkpoint`): the chain head (seq and hash), signed when a key is
  present, for an auditor to keep outside the server; `audit verify --checkpoint FILE` checks
  that the chain still holds that entry.
Must not: write the log (packet.records.audit does), or read document content.

What each catches, honestly: the cross-checks catch a changed manifest, mailing or archive and
deleted `sealed`/`print_queued` entries. A consistent rewrite of everything the service can write
(log, audit.head, register, manifest, archive) is caught only by the key (if the rewriter cannot
read it) or by a checkpoint kept elsewhere that covers the rewritten entries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from packet.config import Config
from packet.errors import PacketError
from packet.records.archive import read_snapshot
from packet.records.layout import MANIFEST, archive_dir, read_manifest, submission_dirs
from packet.records.register import sealed_submissions

KEY_CREDENTIAL = "imr-audit-key"  # systemd: LoadCredential=imr-audit-key:/etc/imr-packet/audit.key
MIN_KEY_BYTES = 16
CHECKPOINT_SCHEMA = "imr-packet/audit-checkpoint@1"


# --- the key ----------------------------------------------------------------------------------

def key_path(config: Config) -> Path | None:
    """The configured key file, else the systemd credential if present, else None."""
    configured = getattr(getattr(config, "audit", None), "key_file", "")
    if configured:
        return Path(configured)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / KEY_CREDENTIAL).is_file():
        return Path(credentials) / KEY_CREDENTIAL
    return None


def load_key(config: Config) -> bytes | None:
    """The audit key, or None when none is configured. A configured key that cannot be read or is
    too short is an error: sealing without the MAC the auditor expects would weaken the trail."""
    path = key_path(config)
    if path is None:
        return None
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise PacketError(f"the audit key {path} cannot be read ({exc.strerror})", reason="audit_key") from exc
    if len(key) < MIN_KEY_BYTES:
        raise PacketError(f"the audit key {path} is shorter than {MIN_KEY_BYTES} bytes", reason="audit_key")
    return key


def key_writable(config: Config) -> bool:
    """True when this process could change the key (then the key protects nothing against it)."""
    path = key_path(config)
    return path is not None and (os.access(path, os.W_OK) or os.access(path.parent, os.W_OK))


def mac(key: bytes, fields: dict) -> str:
    message = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_fields(*, case: str, submission: int, kind: str, manifest_sha256: str) -> dict:
    """What a `sealed` entry's MAC covers."""
    return {"case": case, "submission": submission, "kind": kind, "manifest_sha256": manifest_sha256}


# --- cross-checks of sealed submissions ----------------------------------------------------------

def sealed_entries(entries) -> dict[tuple[str, int], dict]:
    """The `sealed` audit entry of each (case, submission), from the log's entries."""
    found = {}
    for entry in entries:
        if entry.get("event") == "sealed" and isinstance(entry.get("submission"), int):
            found.setdefault((entry.get("case"), entry["submission"]), entry)
    return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def submission_problems(config: Config, submission_dir: Path, sealed: dict[tuple[str, int], dict],
                        key: bytes | None, anchored_seq: int = 0) -> list[str]:
    """A published submission against its `sealed` audit entry and its archive snapshot.
    `anchored_seq`: entries up to this one are anchored by a kept checkpoint (need no MAC)."""
    submission_dir = Path(submission_dir)
    where = f"{submission_dir.parent.name}/{submission_dir.name}"
    try:
        manifest = read_manifest(submission_dir)
        case_id, number = str(manifest["case_id"]), int(manifest["submission"])
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{where}: manifest.json cannot be read"]
    actual = _sha256(submission_dir / "manifest.json")
    problems = []
    entry = sealed.get((case_id, number))
    if entry is None:
        problems.append(f"{where}: the audit log has no `sealed` entry for it (removed, or the seal "
                         "was interrupted and not yet recovered)")
    else:
        if entry.get("manifest_sha256") != actual:
            problems.append(f"{where}: manifest.json was changed after sealing (its SHA-256 differs from "
                            "the one the `sealed` audit entry recorded)")
        if key is not None and "mac" in entry:
            expected = mac(key, seal_fields(case=case_id, submission=number, kind=str(entry.get("kind")),
                                            manifest_sha256=str(entry.get("manifest_sha256"))))
            if not hmac.compare_digest(str(entry["mac"]), expected):
                problems.append(f"{where}: the `sealed` audit entry's MAC does not match: it was rewritten "
                                "without the audit key")
        elif key is not None and not (isinstance(entry.get("seq"), int) and entry["seq"] <= anchored_seq):
            # Seals made before the key was set up carry none: a checkpoint taken then anchors them.
            problems.append(f"{where}: the `sealed` audit entry carries no MAC although an audit key is "
                            "configured (sealed before the key was set up: pass a checkpoint taken since "
                            "with --checkpoint; else its MAC was removed)")
    try:
        archived = read_snapshot(archive_dir(config, case_id, number)).get("manifest_sha256")
    except (OSError, ValueError):
        archived = None
        problems.append(f"{where}: its archive snapshot is missing or unreadable")
    if archived is not None and archived != actual:
        problems.append(f"{where}: manifest.json differs from the one recorded in its archive snapshot")
    return problems


def outbox_problems(config: Config, sealed: dict[tuple[str, int], dict], key: bytes | None,
                    anchored_seq: int = 0) -> tuple[list[str], int]:
    """`submission_problems` of every sealed submission in the outbox; and how many were checked."""
    problems, checked = [], 0
    outbox = config.paths.outbox
    if not outbox.is_dir():
        return problems, checked
    for case in sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        try:
            folders = submission_dirs(config, case.name)
        except PacketError:
            continue
        for _number, folder in folders:
            checked += 1
            problems += submission_problems(config, folder, sealed, key, anchored_seq)
    return problems, checked


def manifest_heads(config: Config) -> list[tuple[str, str]]:
    """(where, audit_head) of every sealed submission's manifest in the outbox."""
    out = []
    outbox = config.paths.outbox
    if not outbox.is_dir():
        return out
    for manifest in sorted(outbox.glob(f"*/submission-*/{MANIFEST}")):
        try:
            data = read_manifest(manifest)
        except (OSError, ValueError):
            continue
        value = data.get("audit_head")
        if isinstance(value, dict):
            value = value.get("hash")
        if isinstance(value, str) and value:
            where = f"{manifest.parent.parent.name}/{manifest.parent.name}"
            out.append((where, value))
    return out


def register_problems(config: Config, by_seq: dict[int, str]) -> list[str]:
    """Every seal's last audit entry, as its register recorded it, must still be in the chain."""
    problems = []
    root = config.paths.state / "cases"
    if not root.is_dir():
        return problems
    for case in sorted(p.name for p in root.iterdir() if p.is_dir()):
        try:
            submissions = sealed_submissions(config, case)
        except (PacketError, OSError, ValueError, TypeError):
            continue
        for sealed in submissions:
            if sealed.audit_seq and by_seq.get(sealed.audit_seq) != sealed.audit_hash:
                problems.append(f"{case}/{sealed.dirname}: the seal's last audit entry ({sealed.audit_seq}) "
                                "is not in the chain as it was recorded at sealing: entries were removed "
                                "or rewritten")
    return problems


# --- checkpoints ---------------------------------------------------------------------------------

def make_checkpoint(seq: int, head_hash: str, at: str, key: bytes | None) -> dict:
    checkpoint = {"schema": CHECKPOINT_SCHEMA, "seq": seq, "hash": head_hash, "at": at}
    if key is not None:
        checkpoint["mac"] = mac(key, {k: checkpoint[k] for k in ("seq", "hash", "at")})
    return checkpoint


def checkpoint_problems(checkpoint: dict, by_seq: dict[int, str], key: bytes | None) -> list[str]:
    """A kept checkpoint against the chain as it is now."""
    try:
        seq, head_hash = int(checkpoint["seq"]), str(checkpoint["hash"])
    except (KeyError, TypeError, ValueError):
        return ["a checkpoint is not readable (schema imr-packet/audit-checkpoint@1 expected)"]
    problems = []
    if key is not None and "mac" in checkpoint:
        expected = mac(key, {k: checkpoint.get(k) for k in ("seq", "hash", "at")})
        if not hmac.compare_digest(str(checkpoint["mac"]), expected):
            problems.append(f"checkpoint of entry {seq}: its MAC does not match (not written by this service)")
    if seq == 0:
        return problems
    if seq not in by_seq:
        problems.append(f"checkpoint of entry {seq} ({checkpoint.get('at')}): the log no longer reaches that "
                        "entry: it was truncated or rewritten")
    elif by_seq[seq] != head_hash:
        problems.append(f"checkpoint of entry {seq} ({checkpoint.get('at')}): that entry, or one before it, "
                        "was rewritten since the checkpoint")
    return problems


def read_checkpoints(path: Path) -> list[dict]:
    """Checkpoints kept in a file, one JSON object a line."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError:
                value = {}
            out.append(value if isinstance(value, dict) else {})
    return out
