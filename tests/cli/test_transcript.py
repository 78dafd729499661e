"""What a person sees in a terminal (a scripted pseudo-terminal) for build, seal, status and a
failing verify: human text, no JSON, no traceback (issue 14). Also: `build` and `seal` take a case
id or a case folder, and READY.txt is the seal marker, never a refused document."""

from __future__ import annotations

import re
import shutil

from clikit import run, run_in_terminal, tree
from sealkit import sealable_case

JSON_LINE = re.compile(r'^\s*\{"', re.M)


def _human(text: str) -> None:
    assert not JSON_LINE.search(text), text
    assert "Traceback" not in text, text
    assert "[redacted]" not in text


def test_terminal_transcript_of_build_seal_status_and_a_failing_verify(tmp_path):
    config = tmp_path / "imr.toml"
    config.write_text("[paths]\n" + "".join(f'{k} = "{tmp_path / "srv" / k}"\n'
                                            for k in ("inbox", "outbox", "archive", "state")))
    assert run(["new-case", "SCRATCH", "--config", str(config)], cwd=tmp_path).code == 0
    case_dir = sealable_case(tmp_path / "srv" / "inbox", "IMR-2026-000417")
    (case_dir / "READY.txt").write_text("")  # what Explorer's New > Text Document makes
    transcript = []

    code, seen = run_in_terminal(["build", "srv/inbox/IMR-2026-000417", "--config", str(config)], cwd=tmp_path)
    transcript.append(seen)
    assert code == 0, seen
    _human(seen)
    assert "IMR-2026-000417: 3 document(s), 0 refused now" in seen
    assert re.search(r"\d\d:\d\d:\d\d info\s+case_built", seen)  # the log, as text on a terminal
    assert not (case_dir / "_rejected").exists()  # READY.txt is not a document

    code, seen = run_in_terminal(["--config", str(config), "seal", str(case_dir)], cwd=tmp_path)  # a folder
    transcript.append(seen)
    assert code == 0, seen
    _human(seen)
    submission = tmp_path / "srv" / "outbox" / "IMR-2026-000417" / "submission-01"
    assert f"Sealed {submission}" in seen
    assert not (case_dir / "READY.txt").exists()  # READY in any spelling has done its job

    code, seen = run_in_terminal(["status", "--config", str(config)], cwd=tmp_path)
    transcript.append(seen)
    assert code == 0
    _human(seen)
    assert "IMR-2026-000417" in seen and "CASE" in seen

    copy = tmp_path / "copy-of-submission"
    shutil.copytree(submission, copy)
    packet = next(p for p in copy.iterdir() if p.suffix == ".pdf")
    packet.write_bytes(packet.read_bytes() + b"\n% tampered\n")
    code, seen = run_in_terminal(["verify", str(copy), "--config", str(config)], cwd=tmp_path)
    transcript.append(seen)
    assert code == 1, seen
    _human(seen)
    assert "FAILED" in seen

    # The same submission by id and by folder: a second seal of the same case finds nothing new.
    by_id = run(["seal", "IMR-2026-000417", "--config", str(config)], cwd=tmp_path)
    assert by_id.code in (1, 3) and "Traceback" not in by_id.err
    print("\n$ ...\n".join(transcript))  # shown with pytest -s: the transcript a person sees


def test_seal_refuses_a_folder_outside_the_inbox(tmp_path):
    config = tmp_path / "imr.toml"
    config.write_text("[paths]\n" + "".join(f'{k} = "{tmp_path / "srv" / k}"\n'
                                            for k in ("inbox", "outbox", "archive", "state")))
    assert run(["new-case", "SCRATCH", "--config", str(config)], cwd=tmp_path).code == 0
    stray = sealable_case(tmp_path / "desk", "IMR-2026-000999")
    before = tree(tmp_path / "srv")
    done = run(["seal", str(stray), "--config", str(config)], cwd=tmp_path)
    assert done.code == 2 and "not a case folder of the inbox" in done.err
    assert tree(tmp_path / "srv") == before
