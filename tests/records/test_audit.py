"""The audit log: chained entries, tamper detection, rotation, the head record and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import stat
import threading
from pathlib import Path

import pytest

from packet.records import audit, export
from packet.cli import main

CASE = "IMR-2026-000417"
DOC = hashlib.sha256(b"a document").hexdigest()


def lines_of(path):
    return path.read_bytes().decode("utf-8").splitlines()


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def fill(config, count=6):
    for number in range(count):
        audit.record(config, "classified", case=CASE, doc=DOC, rule=f"rule-{number}")


def seal_manifest(config, case=CASE, submission=1, **extra):
    folder = config.paths.outbox / case / f"submission-{submission:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "schema": "imr-packet/manifest@1", "case_id": case, "submission": submission,
        "kind": "initial" if submission == 1 else "supplement",
        "generated_at": "2026-11-27T10:02:11-08:00",
        "deadline": {"review_type": "standard", "clock_start": "2026-11-25T16:10:00-08:00",
                     "due": "2026-12-01T23:59:59-08:00", "rule": "3 business days"},
        "sealed_at": "2026-11-27T10:02:11-08:00", "on_time": True, "overrides": [],
        "documents": [{"source": "a.pdf", "sha256": DOC}, {"source": "b.pdf", "sha256": "1" * 64}],
        "rejected": [], "outputs": [],
    }
    manifest.update(extra)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    # The archive snapshot records the manifest's hash, as a seal writes it.
    archived = config.paths.archive / case / f"submission-{submission:02d}" / "_sealed"
    archived.mkdir(parents=True, exist_ok=True)
    (archived / "documents.json").write_text(json.dumps({"manifest_sha256": manifest_sha(config, case, submission)}),
                                             encoding="utf-8")
    return manifest


def manifest_sha(config, case=CASE, submission=1):
    path = config.paths.outbox / case / f"submission-{submission:02d}" / "manifest.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_sealed(config, case=CASE, submission=1):
    """The `sealed` entry a seal writes for a manifest already in the outbox."""
    return audit.record(config, "sealed", case=case, submission=submission, kind="initial",
                        manifest_sha256=manifest_sha(config, case, submission))


# --- writing ----------------------------------------------------------------------------------

def test_entries_chain_and_head_matches_last_line(config):
    first = audit.record(config, "file_taken", case=CASE, doc=DOC, actor="clerk1")
    second = audit.record(config, "classified", case=CASE, doc=DOC, rule="folder", category="medical_records")
    lines = lines_of(config.audit_log)
    assert len(lines) == 2
    assert first["prev"] == audit.GENESIS and first["seq"] == 1
    assert second["prev"] == hashlib.sha256(lines[0].encode()).hexdigest() and second["seq"] == 2
    assert audit.head(config) == hashlib.sha256(lines[1].encode()).hexdigest()
    entry = json.loads(lines[0])
    assert entry["doc"] == DOC[:12] and entry["actor"] == "clerk1" and entry["case"] == CASE
    assert entry["ts"].endswith("+00:00")
    head_record = json.loads(audit.head_record_path(config).read_text())
    assert head_record["seq"] == 2 and head_record["hash"] == audit.head(config)
    assert stat.S_IMODE(config.audit_log.stat().st_mode) == 0o640
    assert stat.S_IMODE(audit.head_record_path(config).stat().st_mode) == 0o640


def test_empty_log_head_is_genesis_and_verifies(config):
    assert audit.head(config) == audit.GENESIS
    report = audit.verify_chain(config)
    assert report.ok and report.entries == 0


def test_no_file_names_or_member_data_reach_the_log(config):
    audit.record(config, "file_taken", case=CASE, doc=DOC, source="medical-records/Rosalind MRI.pdf",
                 name="Rosalind Q. Testmember", member_id="M998877665", pages=3)
    audit.record(config, "file_taken", case="../etc/passwd", doc="not a hash")
    text = config.audit_log.read_text()
    assert "Rosalind" not in text and "M998877665" not in text and "MRI" not in text
    assert "../etc" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert entries[0]["source"] == "[redacted]" and entries[0]["pages"] == 3
    assert entries[1]["case"] == "[invalid]" and entries[1]["doc"] == "[invalid]"
    with pytest.raises(ValueError):
        audit.record(config, "classified", prev="x")
    with pytest.raises(ValueError):
        audit.record(config, "Not A Code")


def test_record_does_not_reread_the_log(config, monkeypatch):
    fill(config, 3)

    def forbidden(*args, **kwargs):
        raise AssertionError("record() must use the head record, not scan the log")

    monkeypatch.setattr(audit, "_iter_lines", forbidden)
    monkeypatch.setattr(audit, "_state_from_log", forbidden)
    monkeypatch.setattr(audit, "_last_line", forbidden)
    audit.record(config, "sealed", case=CASE, submission=1)
    monkeypatch.undo()
    assert audit.verify_chain(config).ok


def test_concurrent_writers_keep_one_chain(config):
    def worker(number):
        for index in range(15):
            audit.record(config, "classified", case=CASE, doc=DOC, worker=number, index=index)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = audit.verify_chain(config)
    assert report.ok, report.text()
    assert report.entries == 60
    assert [json.loads(line)["seq"] for line in lines_of(config.audit_log)] == list(range(1, 61))


def test_two_processes_keep_one_chain(config):
    import subprocess
    import sys

    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from helpers import make_config; from pathlib import Path;"
        "from packet.records import audit; config = make_config(Path(sys.argv[2]));"
        "[audit.record(config, 'classified', case='IMR-1', worker=sys.argv[3], index=i) for i in range(20)]"
    )
    tests_dir = str(Path(__file__).resolve().parents[1])
    root = str(config.paths.state.parent)
    workers = [subprocess.Popen([sys.executable, "-c", script, tests_dir, root, str(n)]) for n in range(2)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    report = audit.verify_chain(config)
    assert report.ok, report.text()
    assert report.entries == 40


# --- verify: the untouched log passes, every kind of tampering is caught ---------------------

def test_untouched_log_passes(config):
    fill(config)
    seal_manifest(config, audit_head=audit.head(config))
    record_sealed(config)
    report = audit.verify_chain(config)
    assert report.ok, report.text()
    assert report.entries == 7 and report.manifest_heads_checked == 1
    assert "OK" in report.text() and report.head == audit.head(config)


def _edit_middle(lines):
    entry = json.loads(lines[2])
    entry["rule"] = "rule-forged"
    lines[2] = json.dumps(entry, sort_keys=True)
    return lines


def _delete_middle(lines):
    del lines[2]
    return lines


def _reorder(lines):
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def _truncate(lines):
    return lines[:-2]


def _edit_last(lines):
    entry = json.loads(lines[-1])
    entry["rule"] = "rule-forged"
    lines[-1] = json.dumps(entry, sort_keys=True)
    return lines


def _garble(lines):
    lines[1] = lines[1][:20]
    return lines


@pytest.mark.parametrize("tamper, line, words", [
    (_edit_middle, 4, "changed"),
    (_delete_middle, 3, "entry 3 was deleted"),
    (_reorder, 3, "deleted or moved"),
    (_truncate, 4, "truncated"),
    (_edit_last, 6, "changed"),
    (_garble, 2, "not a valid audit entry"),
])
def test_tampering_is_caught(config, tamper, line, words):
    fill(config, 6)
    assert audit.verify_chain(config).ok
    write_lines(config.audit_log, tamper(lines_of(config.audit_log)))
    report = audit.verify_chain(config)
    assert not report.ok
    first = report.first_break
    assert first.file == "audit.jsonl" and first.line == line, report.text()
    assert words in first.problem
    assert "BROKEN" in report.text() and f"audit.jsonl line {line}" in report.text()


def test_truncation_caught_by_sealed_head_even_without_head_record(config):
    fill(config, 4)
    seal_manifest(config, audit_head=audit.head(config))
    fill(config, 2)
    # Cut the log back to before the seal and remove the side-record too.
    write_lines(config.audit_log, lines_of(config.audit_log)[:2])
    audit.head_record_path(config).unlink()
    report = audit.verify_chain(config)
    assert not report.ok
    problems = " ".join(item.problem for item in report.breaks)
    assert f"{CASE}/submission-01 was sealed" in problems
    assert "state/audit.head" in report.text()


def test_truncation_of_everything_caught_by_head_record(config):
    fill(config, 3)
    config.audit_log.write_text("")
    report = audit.verify_chain(config)
    assert not report.ok and "entries 1-3 were removed (truncated)" in report.first_break.problem


def test_appending_after_tampering_keeps_the_evidence(config):
    fill(config, 5)
    write_lines(config.audit_log, lines_of(config.audit_log)[:-1])  # drop the last entry
    audit.record(config, "draft_built", case=CASE)  # the service goes on writing
    report = audit.verify_chain(config)
    assert not report.ok
    assert "entry 5 was deleted" in report.first_break.problem


def test_crash_between_append_and_head_update_is_not_a_break(config):
    fill(config, 3)
    stale = audit.head_record_path(config).read_text()
    audit.record(config, "draft_built", case=CASE)
    audit.head_record_path(config).write_text(stale)  # as if the service died before the update
    report = audit.verify_chain(config)
    assert report.ok, report.text()
    assert "lags 1" in report.text()
    audit.record(config, "sealed", case=CASE, submission=1)  # the next append adopts the line
    entries = [json.loads(line) for line in lines_of(config.audit_log)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    report = audit.verify_chain(config)
    assert report.ok and not report.notes


def test_torn_write_is_one_break_and_does_not_swallow_the_next_entry(config):
    fill(config, 2)
    with open(config.audit_log, "ab") as handle:
        handle.write(b'{"actor": "service", "ev')  # a crash mid-line
    audit.record(config, "draft_built", case=CASE)
    lines = lines_of(config.audit_log)
    assert len(lines) == 4 and json.loads(lines[3])["event"] == "draft_built"
    report = audit.verify_chain(config)
    assert len(report.breaks) == 1 and report.first_break.line == 3


# --- rotation -----------------------------------------------------------------------------------

def test_rotation_keeps_the_chain_across_files(config, monkeypatch):
    monkeypatch.setattr(audit, "MAX_LOG_BYTES", 1200)
    fill(config, 20)
    files = audit.log_files(config)
    assert len(files) >= 3 and files[0].name == "audit-000001.jsonl" and files[-1] == config.audit_log
    for earlier, later in zip(files, files[1:]):
        first = json.loads(lines_of(later)[0])
        assert first["event"] == "log_rotated" and first["previous_file"] == earlier.name
        assert first["prev"] == hashlib.sha256(lines_of(earlier)[-1].encode()).hexdigest()
    seqs = [json.loads(line)["seq"] for path in files for line in lines_of(path)]
    assert seqs == list(range(1, len(seqs) + 1))
    report = audit.verify_chain(config)
    assert report.ok, report.text()
    assert report.files == tuple(path.name for path in files)

    # Removing a rotated file breaks the chain where the next file starts.
    files[1].unlink()
    report = audit.verify_chain(config)
    assert not report.ok and report.first_break.file == files[2].name and report.first_break.line == 1


def test_rotate_on_demand(config):
    assert audit.rotate(config) is None  # nothing to rotate
    fill(config, 2)
    rotated = audit.rotate(config)
    assert rotated.name == "audit-000001.jsonl" and len(lines_of(rotated)) == 2
    fill(config, 1)
    assert audit.verify_chain(config).ok
    assert len(lines_of(config.audit_log)) == 2  # log_rotated + the new entry


# --- export -----------------------------------------------------------------------------------

def test_export_round_trips(config, monkeypatch):
    times = iter([
        "2026-11-26T12:00:00.000000+00:00",  # Nov 26 local: before the period
        "2026-11-27T17:00:00.000000+00:00",  # Nov 27 09:00 local
        "2026-11-27T18:00:00.000000+00:00",
        "2026-11-28T07:30:00.000000+00:00",  # Nov 27 23:30 local: still in the period
        "2026-11-28T09:00:00.000000+00:00",  # Nov 28 01:00 local: after
    ])
    monkeypatch.setattr(audit, "_now", lambda: next(times))
    audit.record(config, "file_taken", case=CASE, doc=DOC)
    audit.record(config, "classified", case=CASE, doc=DOC, rule="folder", category="medical_records")
    audit.record(config, "overridden", case=CASE, actor="jdoe", item="grievance response",
                 reason="=HYPERLINK(evil) faxed separately")
    audit.record(config, "sealed", case=CASE, submission=1)
    audit.record(config, "copies_made", case=CASE)
    seal_manifest(config)
    # A sealed submission of the period with no sealed event in the log still shows.
    seal_manifest(config, case="IMR-2026-000500", submission=2, sealed_at="2026-11-27T12:00:00-08:00")

    out = io.StringIO()
    export.export_csv(config, dt.date(2026, 11, 27), dt.date(2026, 11, 27), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0].keys()) == export.EXPORT_COLUMNS
    assert [row["event"] for row in rows] == ["classified", "overridden", "sealed", "sealed"]
    classified, overridden, sealed, manifest_only = rows
    assert classified["time_utc"] == "2026-11-27T17:00:00.000000+00:00"
    assert classified["local_time"] == "2026-11-27T09:00:00-08:00"
    assert classified["seq"] == "2" and classified["case_id"] == CASE and classified["doc"] == DOC[:12]
    assert json.loads(classified["details"]) == {"rule": "folder", "category": "medical_records"}
    assert overridden["actor"] == "jdoe"
    assert json.loads(overridden["details"])["reason"] == "=HYPERLINK(evil) faxed separately"
    assert sealed["local_time"] == "2026-11-27T23:30:00-08:00"
    assert (sealed["submission"], sealed["kind"], sealed["documents"], sealed["on_time"]) == (
        "1", "initial", "2", "true")
    assert sealed["due"] == "2026-12-01T23:59:59-08:00" and sealed["source"] == "audit"
    assert manifest_only["source"] == "manifest" and manifest_only["case_id"] == "IMR-2026-000500"
    assert manifest_only["submission"] == "2" and manifest_only["seq"] == ""


def test_export_neutralises_spreadsheet_formulas(config):
    audit.record(config, "overridden", case=CASE, actor="=cmd|' /C calc'!A0")
    out = io.StringIO()
    today = dt.datetime.now(config.calendar.tz).date()
    export.export_csv(config, today - dt.timedelta(days=1), today + dt.timedelta(days=1), out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["actor"].startswith("'=")


# --- the command line ---------------------------------------------------------------------------

def test_cli_audit_verify_exit_codes(config, monkeypatch, capsys):
    monkeypatch.setenv("IMR_STATE", str(config.paths.state))
    monkeypatch.setenv("IMR_ARCHIVE", str(config.paths.archive))
    flags = ["--inbox", str(config.paths.inbox), "--outbox", str(config.paths.outbox)]
    fill(config, 3)
    assert main(["audit", "verify", *flags]) == 0
    assert "Audit log OK" in capsys.readouterr().out
    write_lines(config.audit_log, _delete_middle(lines_of(config.audit_log)))
    assert main(["audit", "verify", *flags]) == 1
    assert "BROKEN" in capsys.readouterr().out
