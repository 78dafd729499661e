"""End to end through `build_case`: a clerk's case folder becomes a draft and a status note."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
from pathlib import Path

import pytest

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_pdf, write_case
from packet import log as service_log
from packet.pipeline.build import build_case
from packet.cli import main
from packet.errors import CaseError

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
WHO = f"Patient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\nDOB: {MEMBER_DOB:%m/%d/%Y}"


def _standard_case(inbox: Path) -> Path:
    case_dir = write_case(inbox)
    make_pdf(case_dir / "medical-records" / "mri report.pdf",
             [f"MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026\n{WHO}\nFindings: disc protrusion at L4-L5."])
    make_pdf(case_dir / "correspondence" / "grievance resolution.pdf",
             [f"Grievance Resolution Letter\nDate: 10/02/2026\n{WHO}\nWe have upheld our decision to deny "
              "the requested lumbar fusion. This is our written response to your grievance."])
    make_pdf(case_dir / "plan-statements" / "medical director review.pdf",
             [f"Medical Director Review\nDate: 09/20/2026\n{WHO}\nCriteria applied; statement of reasons."])
    make_pdf(case_dir / "privileged" / "counsel memo.pdf",
             [f"PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION\nMemo from counsel\n{WHO}\n"
              "Prepared at the direction of counsel regarding litigation risk. UNIQUEPRIVMARKER"])
    return case_dir


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_writes_draft_manifest_and_status(config):
    case_dir = _standard_case(config.paths.inbox)
    result = build_case(case_dir, config, now=NOW)
    manifest = json.loads((config.paths.outbox / case_dir.name / "draft" / "manifest.json").read_text())
    assert manifest["schema"] == "imr-packet/manifest@1" and manifest["kind"] == "draft"
    by_source = {d["source"]: d for d in manifest["documents"]}
    assert by_source["medical-records/mri report.pdf"]["category"] == "medical_records"
    assert by_source["medical-records/mri report.pdf"]["category_reason"].startswith("folder")
    assert by_source["privileged/counsel memo.pdf"]["privileged"] is True
    assert by_source["privileged/counsel memo.pdf"]["withheld_from_member"] is True
    assert all(d["identity"] == "confirmed" for d in manifest["documents"])
    assert manifest["deadline"]["due"].startswith("2026-12-02T23:59:59")
    assert "calendar" in manifest["deadline"]
    status = (case_dir / "_STATUS.txt").read_text()
    assert "Due:" in status and "mri report.pdf" in status and "PRIVILEGED" in status
    assert result.blocking == ()


def test_refused_files_move_whole_and_nothing_else_changes(config):
    case_dir = _standard_case(config.paths.inbox)
    (case_dir / "empty.pdf").write_bytes(b"")
    (case_dir / "notes.xyz").write_bytes(b"\x00\x01binary stuff")
    (case_dir / "~$lock.docx").write_bytes(b"owner file")
    truncated = make_pdf(case_dir / "labs.pdf", ["Lab results\n" + WHO]).read_bytes()[:300]
    (case_dir / "labs.pdf").write_bytes(truncated)
    before = _tree(case_dir)
    result = build_case(case_dir, config, now=NOW)
    after = _tree(case_dir)
    reasons = {r.source: r.reason for r in result.newly_rejected}
    assert reasons == {"empty.pdf": "empty", "notes.xyz": "unsupported", "labs.pdf": "corrupt"}
    for source in reasons:
        moved = [k for k in after if k.startswith("_rejected/") and k.endswith(source) ]
        assert moved, source
        assert after[moved[0]] == before[source], "moved byte-for-byte"
        why = after[moved[0] + ".why.txt"].decode()
        assert "What to do:" in why
    untouched = {k: v for k, v in before.items() if k not in reasons}
    assert {k: after[k] for k in untouched} == untouched, "no other file changed"
    assert set(after) - set(before) - {"_STATUS.txt"} == {k for k in after if k.startswith("_rejected/")}
    status = (case_dir / "_STATUS.txt").read_text()
    assert "empty.pdf" in status and "what to do" in status


def test_duplicate_content_is_refused_once(config):
    case_dir = _standard_case(config.paths.inbox)
    (case_dir / "copy of mri.pdf").write_bytes((case_dir / "medical-records" / "mri report.pdf").read_bytes())
    result = build_case(case_dir, config, now=NOW)
    assert [r.reason for r in result.newly_rejected] == ["duplicate"]
    assert len(result.documents) == 4


def test_invalid_case_toml_waits_with_a_note(config):
    case_dir = write_case(config.paths.inbox)
    (case_dir / "case.toml").write_text('review_type = "whenever"\n')
    make_pdf(case_dir / "a.pdf", ["x"])
    with pytest.raises(CaseError):
        build_case(case_dir, config, now=NOW)
    status = (case_dir / "_STATUS.txt").read_text()
    assert "review_type" in status and "waiting for a valid case.toml" in status
    assert (case_dir / "a.pdf").exists()
    assert not (config.paths.outbox / case_dir.name / "draft").exists()


def test_received_at_is_remembered_across_builds(config):
    case_dir = _standard_case(config.paths.inbox)
    first = build_case(case_dir, config, now=NOW)
    later = build_case(case_dir, config, now=NOW + dt.timedelta(hours=5))
    assert {d.received_at for d in first.documents} == {d.received_at for d in later.documents} == {NOW}


def test_unsettled_files_wait(config):
    case_dir = _standard_case(config.paths.inbox)
    result = build_case(case_dir, config, now=NOW, settled=lambda s: "mri" not in s.relpath)
    assert result.waiting == ("medical-records/mri report.pdf",)
    assert "mri report.pdf" in (case_dir / "_STATUS.txt").read_text()
    assert len(result.documents) == 3


def test_override_beats_rules_and_exclude(config):
    case_dir = _standard_case(config.paths.inbox)
    (case_dir / "overrides.toml").write_text(
        '["medical-records/mri report.pdf"]\ncategory = "plan_statements"\ntitle = "MRI"\n'
        '["plan-statements/medical director review.pdf"]\nexclude = "sent by mistake"\n')
    result = build_case(case_dir, config, now=NOW)
    docs = {d.source: d for d in result.documents}
    assert docs["medical-records/mri report.pdf"].category.value == "plan_statements"
    assert docs["medical-records/mri report.pdf"].category.rule == "override"
    assert docs["plan-statements/medical director review.pdf"].excluded == "sent by mistake"
    manifest = json.loads((config.paths.outbox / case_dir.name / "draft" / "manifest.json").read_text())
    excluded = [d for d in manifest["documents"] if d["excluded"]]
    assert excluded and excluded[0]["packet_pages"] == []


def test_identity_mismatch_blocks_sealing_and_is_loud(config):
    case_dir = _standard_case(config.paths.inbox)
    make_pdf(case_dir / "medical-records" / "faxed notes.pdf",
             [f"Progress note\n{WHO}", "Progress note\nPatient: Somebody Else\nMember ID: M111222333\nDOB: 02/03/1950"])
    result = build_case(case_dir, config, now=NOW)
    docs = {d.source: d for d in result.documents}
    assert docs["medical-records/faxed notes.pdf"].identity.value == "mismatch"
    assert any("ANOTHER member" in b for b in result.blocking)
    status = (case_dir / "_STATUS.txt").read_text()
    assert "ANOTHER MEMBER" in status
    assert "M111222333" not in status


def test_missing_grievance_response_blocks(config):
    case_dir = _standard_case(config.paths.inbox)
    (case_dir / "correspondence" / "grievance resolution.pdf").unlink()
    result = build_case(case_dir, config, now=NOW)
    assert any("grievance response" in b for b in result.blocking)


def test_no_phi_in_the_service_log_and_private_modes(config):
    stream = io.StringIO()
    service_log.set_stream(stream)
    old_umask = os.umask(0o022)  # even under a lax umask the service's files stay private
    try:
        case_dir = _standard_case(config.paths.inbox)
        (case_dir / "empty.pdf").write_bytes(b"")
        build_case(case_dir, config, now=NOW)
    finally:
        os.umask(old_umask)
        service_log.set_stream(None)
    text = stream.getvalue()
    assert text.strip(), "the build logged something"
    for secret in (MEMBER_NAME, "Testmember", MEMBER_ID, "1961", "04/09", "mri report", "counsel memo",
                   "empty.pdf", "UNIQUEPRIVMARKER", "Findings"):
        assert secret not in text, secret
    for line in text.splitlines():
        json.loads(line)
    written = [p for p in (config.paths.outbox.rglob("*"))] + [case_dir / "_STATUS.txt"]
    written += list((case_dir / "_rejected").rglob("*.why.txt"))
    written += [p for p in config.paths.state.rglob("*") if "cache" not in p.parts]
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o007 == 0, f"{path} is world-accessible ({oct(mode)})"


def test_cli_build_exit_codes(config, tmp_path):
    conf = tmp_path / "imr.toml"
    conf.write_text("[paths]\n" + "".join(f'{k} = "{getattr(config.paths, k)}"\n'
                                          for k in ("inbox", "outbox", "archive", "state")))
    case_dir = _standard_case(config.paths.inbox)
    assert main(["build", str(case_dir), "--config", str(conf)]) == 0
    (case_dir / "case.toml").write_text("nonsense = [")
    assert main(["build", str(case_dir), "--config", str(conf)]) == 3
    assert main(["build", str(tmp_path / "nope"), "--config", str(conf)]) == 3  # no such case: an input
