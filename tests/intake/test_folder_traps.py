"""Clerk traps in the case folder (issue 14) and hostile names and links (issue 13 items 4-5)."""

from __future__ import annotations

import json
import os
import pwd

import pytest

from helpers import make_pdf, write_case
from packet.errors import CaseError, RefusedFile
from packet.intake.folder import (audit_value, is_ready_marker, load_overrides, read_case_folder, ready_markers,
                                  record_override_decisions, scan, scan_folder)
from packet.intake.reject import MAX_NAME_BYTES, refuse, safe_name
from packet.model.case import load_case
from packet.model.models import SourceFile
from packet.pipeline.build import build_case
from packet.records import audit


# --- READY in any spelling ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["READY", "ready", "Ready", "READY.txt", "ready.TXT", "READY.docx", "READY.txt.txt",
                                  "READY.rtf", "READY "])
def test_ready_in_any_case_with_any_extension_is_the_marker(tmp_path, name):
    case_dir = write_case(tmp_path)
    (case_dir / name).write_text("")
    make_pdf(case_dir / "sub" / "READY.txt.pdf", ["a document in a sub-folder"])
    assert is_ready_marker(name)
    assert [p.name for p in ready_markers(case_dir)] == [name]
    assert [f.relpath for f in scan(case_dir)] == ["sub/READY.txt.pdf"]  # never a document


@pytest.mark.parametrize("name", ["READYNESS.pdf", "not READY.txt", "READY-2.pdf", "_READY", "READY.pdf.x" * 10])
def test_other_names_are_documents(name):
    assert not is_ready_marker(name)


# --- overrides.toml as clerks write it ------------------------------------------------------------

def _overrides(case_dir, text: str):
    (case_dir / "overrides.toml").write_text(text, encoding="utf-8")
    return load_overrides(case_dir)


def test_windows_paths_are_accepted(tmp_path):
    case_dir = write_case(tmp_path)
    overrides, problems = _overrides(case_dir, '["scans\\fax 0412.tif"]\ncategory = "correspondence"\n'
                                               '["scans\\\\new\\\\labs.pdf"]\nexclude = "sent twice"\n'
                                               "['C:\\Users\\clerk\\..\\memo.pdf']\nprivileged = \"counsel\"\n"
                                               '[plain.pdf]\ntitle = "Denial letter"\n')
    assert problems == []
    assert overrides["scans/fax 0412.tif"].category == "correspondence"  # "\f" is not a form feed
    assert overrides["scans/new/labs.pdf"].exclude == "sent twice"
    assert overrides["plain.pdf"].title == "Denial letter"  # a bare name is the file, not a TOML table
    assert not any("\f" in key for key in overrides)


def test_each_bad_entry_is_reported_alone_and_good_ones_are_kept(tmp_path):
    case_dir = write_case(tmp_path)
    for name in ("a.pdf", "b.pdf", "c.pdf", "d.pdf"):
        make_pdf(case_dir / name, ["x"])
    overrides, problems = _overrides(case_dir, "\n".join([
        '"e.pdf" = { exclude = "scan\\of e" }',                    # an inline entry with a backslash
        'this line means nothing',
        '["a.pdf"]', 'category = "correspondence"',
        '["b.pdf"]', 'category = "letters"',                      # a bad value
        'exclude = "dup\\ of a"',                                  # a stray backslash: kept as written
        '["c.pdf"]', 'title = "unterminated',                      # a line TOML cannot read
        'date = 2026-08-14',
        '["d.pdf" .x]',                                            # not one path
        'category = "medical_records"',                           # skipped with its entry
    ]) + "\n")
    assert overrides["a.pdf"].category == "correspondence"
    assert overrides["b.pdf"].category is None and overrides["b.pdf"].exclude == "dup\\ of a"
    assert overrides["c.pdf"].date.isoformat() == "2026-08-14" and overrides["c.pdf"].title is None
    assert overrides["e.pdf"].exclude == "scan\\of e"
    assert "d.pdf" not in overrides
    assert len(problems) == 4, problems
    assert any("b.pdf" in p and "category" in p for p in problems)
    assert any("line 2 " in p for p in problems)  # the line that means nothing
    assert any("line 9 " in p for p in problems)  # the unterminated title
    assert any("line 11:" in p for p in problems)  # the dotted header


def test_a_form_feed_escape_in_a_reason_is_read_as_written(tmp_path):
    case_dir = write_case(tmp_path)
    overrides, problems = _overrides(case_dir, '["a.pdf"]\nexclude = "see scans\\fax"\n')
    assert overrides["a.pdf"].exclude == "see scans\\fax" and problems == []


def test_unreadable_overrides_file_is_reported_not_fatal(tmp_path):
    case_dir = write_case(tmp_path)
    (case_dir / "overrides.toml").write_bytes(b'["a.pdf"]\ntitle = "\xff\xfe"\n')
    overrides, problems = load_overrides(case_dir)
    assert overrides == {} and "UTF-8" in problems[0]


# --- links and names ------------------------------------------------------------------------------

def test_control_files_that_are_links_are_refused(tmp_path):
    other = write_case(tmp_path / "other-inbox", "IMR-OTHER")
    case_dir = write_case(tmp_path / "inbox", "IMR-1")
    (case_dir / "case.toml").unlink()
    (case_dir / "case.toml").symlink_to(other / "case.toml")
    with pytest.raises(CaseError, match="link") as caught:
        load_case(case_dir)
    assert caught.value.reason == "case_toml_link"
    (case_dir / "case.toml").unlink()
    os.link(other / "case.toml", case_dir / "case.toml")
    with pytest.raises(CaseError, match="hard link"):
        load_case(case_dir)
    (other / "overrides.toml").write_text('["a.pdf"]\nprivileged = "x"\n')
    (case_dir / "overrides.toml").symlink_to(other / "overrides.toml")
    overrides, problems = load_overrides(case_dir)
    assert overrides == {} and "link" in problems[0]


def _bad_name(case_dir) -> bytes:
    name = b"scan \xff\xfe caf\xe9.pdf"  # Latin-1 bytes: not UTF-8
    with open(os.path.join(os.fsencode(case_dir), name), "wb") as handle:
        handle.write(b"%PDF-1.4 not really")
    return name


def test_links_hard_links_and_unreadable_names_are_refused_with_a_note(tmp_path, config):
    case_dir = write_case(config.paths.inbox, "IMR-1")
    outside = make_pdf(tmp_path / "elsewhere" / "other patient.pdf", ["Another patient's record"])
    (case_dir / "link.pdf").symlink_to(outside)
    (case_dir / "medical-records").mkdir()
    (case_dir / "medical-records" / "inside link.pdf").symlink_to(case_dir / "case.toml")
    os.link(outside, case_dir / "hard.pdf")
    _bad_name(case_dir)
    long_name = ("é" * 120) + ".pdf"  # 244 bytes: fine on disk, too long with ".why.txt"
    (case_dir / long_name).symlink_to(outside)
    (case_dir / "correspondence").symlink_to(outside.parent, target_is_directory=True)  # a linked folder
    odd_folder = os.path.join(os.fsencode(case_dir), b"Scans \xe9t\xe9")
    os.mkdir(odd_folder)
    with open(os.path.join(odd_folder, b"fax.pdf"), "wb") as handle:
        handle.write(b"%PDF-1.4")
    found = scan_folder(case_dir)
    assert found.files == []
    assert sorted(error.reason for _, error in found.unusable) == ["hard_link", "link", "link", "link", "link",
                                                                   "unreadable_name", "unreadable_name"]

    result = build_case(case_dir, config)  # never crashes
    assert len(result.newly_rejected) == 7
    rejected = case_dir / "_rejected"
    notes = sorted(p for p in rejected.iterdir() if p.name.endswith(".why.txt"))
    assert len(notes) == 7
    for note in notes:
        text = note.read_text(encoding="utf-8")  # valid UTF-8, whatever the name was
        assert "Why it was not used" in text and "Reason code" in text
        assert len(os.fsencode(note.name)) <= 255
    assert outside.read_bytes().startswith(b"%PDF")  # the file a link pointed to is untouched
    assert os.stat(outside).st_nlink == 2  # the hard link was moved, not copied or deleted
    assert not any(os.path.lexists(case_dir / n) for n in ("link.pdf", "hard.pdf", long_name))
    status = (case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    assert "link" in status and "\ufffd" in status  # the unreadable name, shown safely
    state = (config.paths.state / "cases" / "IMR-1" / "intake.json").read_text(encoding="utf-8")
    assert "\\udc" not in state


def test_long_names_are_shortened_safely(tmp_path):
    for name in ["a" * 300 + ".pdf", "é" * 200, "x" * 240 + ".verylongextension", "plain.pdf", "a\nb.pdf", ".."]:
        safe = safe_name(name)
        assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES and "\n" not in safe and "/" not in safe
        assert safe not in (".", "..", "")
        if name == "plain.pdf":
            assert safe == name
    assert safe_name("a" * 300 + ".pdf").endswith(".pdf")
    assert safe_name("a" * 300 + "1.pdf") != safe_name("a" * 300 + "2.pdf")
    case_dir = tmp_path / "IMR-1"
    case_dir.mkdir()
    name = "b" * 250 + ".pdf"
    (case_dir / name).write_bytes(b"")
    source = SourceFile(relpath=name, path=case_dir / name, size=0, mtime_ns=0)
    for _ in range(2):  # a second refusal of the same long name gets a " (2)" name that still fits
        (case_dir / name).write_bytes(b"")
        moved = refuse(case_dir, source, RefusedFile("empty", "The file is empty.", "Copy it again."), None)
        assert (case_dir / moved.moved_to).is_file()
        assert (case_dir / (moved.moved_to + ".why.txt")).is_file()


# --- who decided what ---------------------------------------------------------------------------

def _events(config, prefix="override_"):
    return [e for e in audit.iter_entries(config) if e["event"].startswith(prefix)]


def test_every_override_decision_is_an_audit_event_with_its_author(config):
    case_dir = write_case(config.paths.inbox, "IMR-1")
    make_pdf(case_dir / "a.pdf", ["x"])
    owner = pwd.getpwuid(os.getuid()).pw_name
    (case_dir / "overrides.toml").write_text('["a.pdf"]\ncategory = "correspondence"\n'
                                             '["b.pdf"]\nidentity_confirmed = "parent\'s DOB on the page"\n')
    record_override_decisions(config, "IMR-1", case_dir, read_case_folder(case_dir).overrides)
    added = _events(config)
    assert [(e["event"], e["decision"], e["old"], e["new"]) for e in added] == [
        ("override_added", "category", None, "correspondence"),
        ("override_added", "identity_confirmed", None, audit_value("identity_confirmed", "parent's DOB on the page"))]
    assert "DOB on the page" not in json.dumps(added), "a person's text is recorded as its fingerprint"
    assert all(e["actor"] == owner and e["file_written_at"] for e in added)
    assert added[0]["doc"] is not None and "a.pdf" not in json.dumps(added)  # the hash, never the name
    assert record_override_decisions(config, "IMR-1", case_dir, read_case_folder(case_dir).overrides) == []

    (case_dir / "overrides.toml").write_text('["a.pdf"]\ncategory = "medical_records"\nexclude = "sent twice"\n')
    record_override_decisions(config, "IMR-1", case_dir, read_case_folder(case_dir).overrides)
    later = _events(config)[2:]
    assert sorted((e["event"], e["decision"], e["old"], e["new"]) for e in later) == [
        ("override_added", "exclude", None, audit_value("exclude", "sent twice")),
        ("override_changed", "category", "correspondence", "medical_records"),
        ("override_removed", "identity_confirmed", audit_value("identity_confirmed", "parent's DOB on the page"), None)]

    (case_dir / "overrides.toml").unlink()
    build_case(case_dir, config)  # the build records the decisions too
    removed = _events(config)[5:]
    assert {(e["event"], e["decision"]) for e in removed} == {("override_removed", "category"),
                                                              ("override_removed", "exclude")}
    assert audit.verify_chain(config).ok


def test_a_case_folder_without_case_toml_gets_the_template_never_overwritten(config):
    case_dir = config.paths.inbox / "IMR-7"
    make_pdf(case_dir / "a.pdf", ["x"])
    with pytest.raises(CaseError):
        build_case(case_dir, config)
    template = (case_dir / "case.toml").read_text(encoding="utf-8")
    assert 'case_id = "IMR-7"' in template and "FILL IN" in template
    assert "FILL IN" in (case_dir / "_STATUS.txt").read_text(encoding="utf-8")
    (case_dir / "case.toml").write_text(template.replace('case_id = "IMR-7"', 'case_id = "IMR-7"  # edited'))
    with pytest.raises(CaseError) as caught:
        build_case(case_dir, config)  # now the placeholders are what is missing
    assert any("dmhc_notice_received" in p for p in caught.value.problems)
    assert "# edited" in (case_dir / "case.toml").read_text(encoding="utf-8")
    assert (case_dir / "a.pdf").is_file()
    other = config.paths.inbox / "IMR-8"
    other.mkdir()
    (other / "case.toml").symlink_to(config.paths.state / "nowhere.toml")  # a dangling link is not followed
    with pytest.raises(CaseError):
        build_case(other, config)
    assert not (config.paths.state / "nowhere.toml").exists()


def test_a_folder_outside_the_inbox_gets_no_template(config, tmp_path):
    desk = tmp_path / "desk" / "IMR-9"
    make_pdf(desk / "a.pdf", ["x"])
    with pytest.raises(CaseError):
        build_case(desk, config)
    assert not (desk / "case.toml").exists()
