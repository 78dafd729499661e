"""Feedback during long work (issue 14): interim `_STATUS.txt` notes, sealing, the board meanwhile.

Waits are conditions with deadlines. The pauses inside the paced fake build are the input of the
test (a conversion that takes a while), not waits for a result.
"""

from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

from helpers import make_pdf, write_case
from watchkit import Service, document_text, grievance_letter, pace, service, wait_for  # noqa: F401

from packet import log as service_log
from packet.pipeline import build as build_module
from packet.pipeline import statusnote
from packet.service.progress import INTERIM_MARK, WorkNote, last_full_note
from packet.service.watch import run_watcher

UPDATED = re.compile(r"^Updated (.*)$", re.MULTILINE)


class NoteRecorder:
    """Every distinct content of a file, with the monotonic time it was first seen (polled)."""

    def __init__(self, *paths):
        self.paths = paths
        self.seen: list[tuple[float, str, str]] = []  # (time, path name, text)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        last = {}
        while True:
            stopping = self.stop.is_set()
            for path in self.paths:
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                if last.get(path) != text:
                    last[path] = text
                    self.seen.append((time.monotonic(), path.name, text))
            if stopping:  # one last look after the work ended: a change in its last 20 ms is seen too
                return
            self.stop.wait(0.02)  # the polling interval of this recorder

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)

    def texts(self, name="_STATUS.txt"):
        return [text for _, n, text in self.seen if n == name]

    def first(self, pattern, name="_STATUS.txt"):
        return next((t for t, n, text in self.seen if n == name and re.search(pattern, text)), None)


def test_a_long_build_reports_its_progress_every_few_seconds_and_never_hides_the_full_note(config, monkeypatch):
    config = replace(config, watch=replace(config.watch, settle_seconds=0.1, debounce_seconds=0.1))
    case_dir = write_case(config.paths.inbox, "CASE-LONG")
    for index in range(3):
        (case_dir / f"scan-{index}.txt").write_text(f"page {index}")
    statusnote.write(case_dir, "Case CASE-LONG: draft ready; 1 thing(s) to fix before sealing\nUpdated then\n\n"
                               "Before this case can be sealed:\n  - the grievance letter is missing\n")
    final = "Case CASE-LONG: draft ready; drop an empty file named READY to seal it\nUpdated now\n"

    def paced_build(case_dir, config, *, settled=None, give_up=frozenset(), now=None, hold=None, progress=None):
        for index in range(3):
            progress("converting", index, 3)
            pace(0.6)  # longer than the shortest pause between two notes
        progress("reading_pages", 140, 400)
        pace(6.5)  # one page takes long: the note must still be rewritten in between
        progress("converting", 3, 3)
        progress("assembling", 3, 3)
        progress("done", 3, 3)
        statusnote.write(case_dir, final)
        return SimpleNamespace(documents=[], newly_rejected=[], transient={}, draft_dir=None)

    monkeypatch.setattr(build_module, "build_case", paced_build)
    status, index = case_dir / "_STATUS.txt", config.paths.outbox / "index.html"
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        with NoteRecorder(status, index) as notes:
            assert run_watcher(config, once=True) == 0
    finally:
        service_log.set_stream(None)
    texts = notes.texts()
    headlines = [text.splitlines()[0] for text in texts]
    assert any(h.startswith("Case CASE-LONG: working: 3 new file(s) received") for h in headlines)
    assert "Case CASE-LONG: working: converting 1 of 3 files" in headlines
    assert "Case CASE-LONG: working: reading page 140 of 400" in headlines
    # While it worked, the note was rewritten at least every 5 s (each time with a new "Updated").
    working = [(t, text) for t, name, text in notes.seen if name == "_STATUS.txt" and ": working:" in text]
    stamps = [t for t, _ in working]
    assert len(stamps) >= 6 and max(b - a for a, b in zip(stamps, stamps[1:])) < 5.0
    assert len({UPDATED.search(text).group(1) for _, text in working}) >= 4  # (to the second)
    # The full note stays readable below every interim note, and the last word is the build's.
    assert all(INTERIM_MARK in text and "the grievance letter is missing" in text for _, text in working)
    assert status.read_text() == final and texts[-1] == final
    # The board showed the progress while the build ran.
    assert any("reading page 140 of 400" in text for text in notes.texts("index.html"))
    assert "CASE-LONG" in stream.getvalue() and "scan-" not in stream.getvalue()


def test_an_interim_note_never_lands_after_done(tmp_path):
    from zoneinfo import ZoneInfo

    case_dir = tmp_path / "C-1"
    case_dir.mkdir()
    writes = []
    with WorkNote(case_dir, "C-1", ZoneInfo("UTC"), heartbeat=0.05, on_update=lambda: writes.append(1)) as note:
        assert not (case_dir / "_STATUS.txt").exists()  # nothing until the work reports progress
        note("converting", 0, 2)
        wait_for(lambda: len(writes) >= 3, timeout=30, what="heartbeat rewrites")
        note("done", 2, 2)
        count = len(writes)
        statusnote.write(case_dir, "Case C-1: draft ready\n")
        pace(0.3)  # several heartbeats in which the ticker must stay silent
        note("converting", 1, 2)  # a late progress call changes nothing either
        note.close()
    assert (case_dir / "_STATUS.txt").read_text() == "Case C-1: draft ready\n"
    assert len(writes) == count
    assert last_full_note(case_dir) == "Case C-1: draft ready\n"


def test_files_received_sealing_and_sealed_as_a_clerk_sees_them(service):
    case_id = "CASE-FEED"
    case_dir = write_case(service.inbox, case_id)
    proc = service.start()
    service.started(proc)
    status, index = case_dir / "_STATUS.txt", service.outbox / "index.html"
    with NoteRecorder(status, index) as notes:
        dropped = time.monotonic()
        service.drop(case_dir / "correspondence" / "grievance letter.txt", grievance_letter(case_id).encode())
        for number in range(1, 6):
            service.drop(case_dir / "medical-records" / f"visit {number}.txt",
                         document_text(case_id, number).encode())
        make_pdf(case_dir / "medical-records" / "imaging.pdf", [document_text(case_id, 9)])
        service.file_names.add("imaging.pdf")
        # Within 2 s the clerk reads that the files were received.
        wait_for(lambda: notes.first(r"^Case CASE-FEED: working: \d+ new file\(s\) received"), timeout=10,
                 what="the received note", service=service)
        assert notes.first(r"^Case CASE-FEED: working: \d+ new file\(s\) received") - dropped < 2.0
        wait_for(lambda: "draft ready" in status.read_text(), timeout=180, what="the draft", service=service)
        assert notes.first(r"working: (converting|assembling)")
        wait_for(lambda: "CASE-FEED: draft ready" in index.read_text() or "draft ready" in index.read_text(),
                 timeout=30, what="the board to show the draft's note", service=service)

        ready = time.monotonic()
        (case_dir / "READY").write_text("")
        wait_for(lambda: notes.first(r"^Case CASE-FEED: working: sealing\.\.\."), timeout=10,
                 what="sealing...", service=service)
        assert notes.first(r"^Case CASE-FEED: working: sealing\.\.\.") - ready < 2.0
        wait_for(lambda: "was sealed on" in status.read_text(), timeout=240, what="the sealed note",
                 service=service)
    text = status.read_text()
    submission = service.outbox / case_id / "submission-01"
    assert f"The submission: {submission}" in text
    pages = re.search(r"imr-org-packet\.pdf\): (\d+) page\(s\)", text)
    assert pages and int(pages.group(1)) >= 7
    prints = sorted(p.name for p in (service.outbox / "_print").iterdir() if case_id in p.name)
    assert prints and all(f"    - {name}" in text for name in prints)
    assert str(service.outbox / "_print") in text
    assert INTERIM_MARK not in text and ": working:" not in text
    wait_for(lambda: "sealed" in index.read_text().split(case_id, 1)[-1][:2000], timeout=30,
             what="the board to show the sealed case", service=service)
    assert service.terminate(proc) == 0


def test_a_new_case_folder_gets_an_unfilled_case_toml_that_starts_no_clock(service):
    proc = service.start()
    service.started(proc)
    case_dir = service.inbox / "CASE-NEW"
    case_dir.mkdir()
    service.drop(case_dir / "letter.txt", grievance_letter("CASE-NEW").encode())
    template = case_dir / "case.toml"
    wait_for(template.is_file, timeout=30, what="the case.toml template", service=service)
    text = template.read_text()
    assert text.startswith("# NOT YET FILLED IN")
    assert re.search(r"^dmhc_notice_received\s*=", text, re.MULTILINE) is None  # a person enters it
    wait_for(lambda: (case_dir / "_STATUS.txt").is_file()
             and "dmhc_notice_received" in (case_dir / "_STATUS.txt").read_text(),
             timeout=60, what="the note naming what to fill in", service=service)
    assert "waiting for a valid case.toml" in (case_dir / "_STATUS.txt").read_text()
    assert not (service.outbox / "CASE-NEW" / "draft").exists()
    # A clerk's own case.toml (even one Windows named case.toml.txt) is never joined by a template.
    other = service.inbox / "CASE-OWN"
    other.mkdir()
    service.drop(other / "case.toml.txt", b"review_type = 'standard'\n")
    service.drop(other / "note.txt", grievance_letter("CASE-OWN").encode())
    wait_for(lambda: (other / "_STATUS.txt").is_file(), timeout=60, what="the other case's note", service=service)
    assert sorted(p.name for p in other.iterdir()) == ["_STATUS.txt", "case.toml.txt", "note.txt"]
    assert service.terminate(proc) == 0


def test_a_case_error_leaves_a_note_saying_the_case_is_stuck(config, monkeypatch):
    config = replace(config, watch=replace(config.watch, settle_seconds=0.05, debounce_seconds=0.05))
    case_dir = write_case(config.paths.inbox, "CASE-FULL")
    (case_dir / "a.txt").write_text("a")
    statusnote.write(case_dir, "Case CASE-FULL: draft ready; drop an empty file named READY to seal it\n")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build_module, "build_case", disk_full)
    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        assert run_watcher(config, once=True) == 1
    finally:
        service_log.set_stream(None)
    note = (case_dir / "_STATUS.txt").read_text()
    assert note.startswith("Case CASE-FULL: NOT UPDATED: the service hit an error (OSError)")
    assert "tries again by itself" in note
    assert note.endswith(f"{INTERIM_MARK}\nCase CASE-FULL: draft ready; drop an empty file named READY to seal it\n")


def test_a_status_note_that_is_a_link_is_never_followed(tmp_path, config):
    other = tmp_path / "other-note.txt"
    other.write_text("Case OTHER: draft ready\n  - privileged/their memo.pdf\n")
    case_dir = write_case(config.paths.inbox, "CASE-LINK")
    (case_dir / "_STATUS.txt").symlink_to(other)
    assert last_full_note(case_dir) is None
    from zoneinfo import ZoneInfo

    from packet.service.progress import write_interim

    write_interim(case_dir, "CASE-LINK", "1 new file(s) received", [], tz=ZoneInfo("UTC"))
    assert "their memo" not in (case_dir / "_STATUS.txt").read_text()
    assert not (case_dir / "_STATUS.txt").is_symlink() and other.read_text().startswith("Case OTHER")


def test_build_case_reports_each_file_converted_then_done_before_its_note(config):
    case_dir = write_case(config.paths.inbox, "CASE-HOOK")
    (case_dir / "correspondence").mkdir(exist_ok=True)
    (case_dir / "correspondence" / "letter.txt").write_text(grievance_letter("CASE-HOOK"))
    for number in range(1, 4):
        (case_dir / f"visit {number}.txt").write_text(document_text("CASE-HOOK", number))
    calls, notes_at_call = [], []

    def hook(stage, done, total):
        calls.append((stage, done, total))
        status = case_dir / "_STATUS.txt"
        notes_at_call.append(status.read_text() if status.exists() else None)

    build_module.build_case(case_dir, config, progress=hook)
    converting = [c for c in calls if c[0] == "converting"]
    assert converting[0] == ("converting", 0, 4) and converting[-1] == ("converting", 4, 4)
    assert [done for _, done, _ in converting] == list(range(5))
    assert [c[0] for c in calls[-2:]] == ["assembling", "done"]
    assert notes_at_call[-1] is None  # "done" comes before the build writes its note
    assert (case_dir / "_STATUS.txt").read_text().startswith("Case CASE-HOOK: draft ready")
