"""A copy that stalls longer than the settle time is not refused as corrupt (issue 13 item 10).

A file that fails to parse while it may still be written (it changed, or was modified within
`stable_seconds`) is held: tried again once it has been stable, refused only then.
"""

from __future__ import annotations

import os
import time

from helpers import make_pdf, write_case
from watchkit import Service, document_text, grievance_letter, pace, sha, wait_for


def _events(service: Service, name: str, case_id: str) -> list[dict]:
    return [e for e in service.events() if e.get("event") == name and e.get("case") == case_id]


def test_a_copy_that_stalls_longer_than_the_settle_time_is_held_then_taken_whole(tmp_path):
    service = Service(tmp_path, settle_seconds=0.4, debounce_seconds=0.2, stable_seconds=60.0)  # the default
    try:
        case_id = "CASE-STALL"
        case_dir = write_case(service.inbox, case_id)
        service.drop(case_dir / "correspondence" / "letter.txt", grievance_letter(case_id).encode())
        proc = service.start()
        service.started(proc)
        data = make_pdf(tmp_path / "source.pdf",
                        [document_text(case_id, i, "MRI report page") for i in range(40)]).read_bytes()
        target = case_dir / "medical-records" / "MRI report.pdf"
        service.file_names.update({target.name, target.stem})
        target.parent.mkdir(parents=True)
        with open(target, "wb") as handle:
            handle.write(data[:len(data) // 2])
            handle.flush()
            # The copy stalls: the half file settles, is tried, fails to parse, and is held.
            wait_for(lambda: _events(service, "file_still_changing", case_id), timeout=90,
                     what="the half-copied file to be held", service=service)
            assert not (case_dir / "_rejected").exists()
            assert target.is_file()
            assert "Could not be read yet" in (case_dir / "_STATUS.txt").read_text()
            pace(1.0)  # the stall goes on, several settle times long
            assert not (case_dir / "_rejected").exists()
            handle.write(data[len(data) // 2:])
        wait_for(lambda: sha(data) in service.draft_shas(case_id), timeout=120,
                 what="the whole PDF in the draft", service=service)
        assert not (case_dir / "_rejected").exists()
        assert not [e for e in service.events() if e.get("event") in ("file_retry", "file_given_up")]
        assert service.terminate(proc) == 0
    finally:
        service.close()
    service.assert_log_clean()


def test_a_damaged_file_is_refused_once_it_has_been_stable(tmp_path):
    stable = 4.0
    service = Service(tmp_path, settle_seconds=0.4, debounce_seconds=0.2, stable_seconds=stable)
    try:
        case_id = "CASE-BROKEN"
        case_dir = write_case(service.inbox, case_id)
        proc = service.start()
        service.started(proc)
        dropped = time.monotonic()
        # Dated in the future (a share whose clock runs ahead): the watcher's own observation decides.
        broken = service.drop(case_dir / "medical-records" / "broken scan.pdf", b"%PDF-1.4 this is not a PDF")
        later = time.time() + 3600
        os.utime(broken, (later, later))
        wait_for(lambda: _events(service, "file_still_changing", case_id), timeout=90,
                 what="the fresh damaged file to be held", service=service)
        assert broken.is_file() and not (case_dir / "_rejected").exists()
        wait_for(lambda: not broken.exists() and (case_dir / "_rejected").is_dir(), timeout=90,
                 what="the damaged file to be refused", service=service)
        assert time.monotonic() - dropped >= stable  # never before it has been stable that long
        notes = list((case_dir / "_rejected").rglob("*.why.txt"))
        assert notes and "damaged" in notes[0].read_text()
        assert not [e for e in service.events() if e.get("event") in ("file_retry", "file_given_up")]
        assert service.terminate(proc) == 0
    finally:
        service.close()
    service.assert_log_clean()
