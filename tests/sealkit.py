"""Builders shared by tests/pipeline/test_seal.py, tests/test_verify.py and tests/records/test_trail.py:
sealable case folders in code, and a consistent rewrite of a sealed submission's records."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_pdf, write_case

CASE_ID = "IMR-2026-000417"
PST = dt.timezone(dt.timedelta(hours=-8))
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=PST)
WHO = f"Patient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\nDOB: {MEMBER_DOB:%m/%d/%Y}"
PRIVILEGED_TEXT = "Prepared at the direction of counsel regarding litigation risk of this appeal."


def sealable_case(inbox: Path, case_id: str = CASE_ID, *, grievance_response: bool = True,
                  dispute_type: str = "medical_necessity", privileged: bool = True) -> Path:
    """A case that passes the release gate: a medical record, the grievance response, a privileged memo."""
    case_dir = write_case(inbox, case_id, dispute_type=dispute_type)
    make_pdf(case_dir / "medical-records" / "mri report.pdf",
             [f"MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026\n{WHO}\nFindings: disc protrusion at L4-L5.",
              f"MRI LUMBAR SPINE REPORT page two\n{WHO}\nImpression: moderate stenosis."])
    if grievance_response:
        make_pdf(case_dir / "correspondence" / "grievance resolution.pdf",
                 [f"Grievance Resolution Letter\nDate: 10/02/2026\n{WHO}\nWe have upheld our decision to deny "
                  "the requested lumbar fusion. This is our written response to your grievance."])
    if privileged:
        make_pdf(case_dir / "privileged" / "counsel memo.pdf",
                 [f"PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION\nMemo from counsel\n{WHO}\n"
                  + PRIVILEGED_TEXT, f"Memo from counsel, page two\n{WHO}\nRecommendation: uphold the denial."])
        (case_dir / "overrides.toml").write_text('["privileged/counsel memo.pdf"]\ncategory = "plan_statements"\n')
    return case_dir


def add_record(case_dir: Path, name: str = "medical-records/pt note.pdf", pages: int = 1) -> Path:
    return make_pdf(case_dir / name, [f"PHYSICAL THERAPY NOTE {n}\nVisit date: 11/20/2026\n{WHO}\n"
                                      "Range of motion limited." for n in range(1, pages + 1)])


def tree(folder: Path) -> dict[str, str]:
    """relative path -> SHA-256 of every file under `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- rewriting a sealed submission's records consistently (what someone with write access to
# state/, outbox/ and archive/ can do; only the anchors of packet.records.anchor catch it) ---------

def audit_entries(config) -> list[dict]:
    return [json.loads(line) for line in config.audit_log.read_text(encoding="utf-8").splitlines() if line]


def rewrite_audit_log(config, entries: list[dict]) -> None:
    """Renumber, re-chain and write audit.head to match."""
    from packet.records import audit

    prev, lines = audit.GENESIS, []
    for seq, entry in enumerate(entries, 1):
        line = json.dumps(dict(entry, seq=seq, prev=prev), sort_keys=True, ensure_ascii=False)
        lines.append(line)
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
    config.audit_log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    head = {"schema": audit.HEAD_SCHEMA, "seq": len(lines), "hash": prev,
            "size": config.audit_log.stat().st_size, "rotated": 0}
    audit.head_record_path(config).write_text(json.dumps(head, sort_keys=True) + "\n", encoding="utf-8")


def reseal_records(config, submission: Path) -> None:
    """Make the archive snapshot, SHA256SUMS, the `sealed` audit entry (re-chaining the log) and
    the register agree with a changed manifest.json of `submission`."""
    manifest = json.loads((submission / "manifest.json").read_text(encoding="utf-8"))
    case_id, number = manifest["case_id"], int(manifest["submission"])
    digest = hashlib.sha256((submission / "manifest.json").read_bytes()).hexdigest()
    sealed_dir = config.paths.archive / case_id / submission.name / "_sealed"
    snapshot = json.loads((sealed_dir / "documents.json").read_text(encoding="utf-8"))
    snapshot["manifest_sha256"] = digest
    (sealed_dir / "documents.json").write_text(json.dumps(snapshot, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
    new_sum = hashlib.sha256((sealed_dir / "documents.json").read_bytes()).hexdigest()
    sums = [f"{new_sum}  _sealed/documents.json" if line.endswith("  _sealed/documents.json") else line
            for line in (sealed_dir / "SHA256SUMS").read_text(encoding="utf-8").splitlines() if line]
    (sealed_dir / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    entries = audit_entries(config)
    for entry in entries:
        if entry.get("event") == "sealed" and entry.get("case") == case_id and entry.get("submission") == number:
            entry["manifest_sha256"] = digest
    rewrite_audit_log(config, entries)
    register = config.paths.state / "cases" / case_id / "register.json"
    raw = json.loads(register.read_text(encoding="utf-8"))
    lines = config.audit_log.read_text(encoding="utf-8").splitlines()
    for item in raw["submissions"]:
        if item["number"] == number and item.get("audit_seq"):
            line = lines[item["audit_seq"] - 1]
            item["audit_hash"] = hashlib.sha256(line.encode("utf-8")).hexdigest()
    register.write_text(json.dumps(raw, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
