"""The one recipe (gather -> draft / status note, or seal a snapshot), the layout owner, and the
service-level hardening of issue 13 items 8 and 11: an outbox on another file system, the
start-up sweep, and the clerk's note when a case is stuck."""

from __future__ import annotations

import ast
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import make_config, make_pdf
from sealkit import CASE_ID, NOW, sealable_case
from packet.errors import PacketError
from packet.pipeline import build as build_module
from packet.pipeline import seal as seal_module
from packet.pipeline.build import build_case
from packet.pipeline.gather import gather_case
from packet.pipeline.seal import recover, seal_case, seal_snapshot
from packet.pipeline.verify import verify_submission
from packet.records import layout

PROJECT = Path(__file__).resolve().parents[2]


# --- an outbox on another file system (issue 13 item 8) ------------------------------------------

@pytest.fixture
def outbox_on_tmpfs(tmp_path):
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system (tmpfs at /dev/shm) to put the outbox on")
    outbox = Path(tempfile.mkdtemp(prefix="imr-outbox-", dir="/dev/shm"))
    yield outbox
    shutil.rmtree(outbox, ignore_errors=True)


def test_outbox_on_another_file_system_builds_and_seals(tmp_path, outbox_on_tmpfs):
    config = make_config(tmp_path, outbox=outbox_on_tmpfs)
    assert os.stat(config.paths.outbox).st_dev != os.stat(config.paths.state).st_dev
    case_dir = sealable_case(config.paths.inbox)
    result = build_case(case_dir, config, now=NOW)
    assert result.draft_dir == layout.draft_dir(config, CASE_ID) and (result.draft_dir / "manifest.json").is_file()
    build_case(case_dir, config, now=NOW)  # a second build swaps the draft on that file system too
    submission = seal_case(config, CASE_ID, now=NOW, actor="clerk")
    assert verify_submission(submission, config, audit=False).ok
    assert not layout.draft_dir(config, CASE_ID).exists()
    assert sorted(p.name for p in (config.paths.outbox / CASE_ID).iterdir()) == ["submission-01"]


def test_a_rename_across_file_systems_is_staged_beside_the_target(config, monkeypatch):
    """EXDEV simulated: every rename between state/ and the outbox fails as across file systems."""
    real_replace = os.replace
    state, outbox = str(config.paths.state), str(config.paths.outbox)

    def replace(src, dst, *args, **kwargs):
        src, dst = os.fspath(src), os.fspath(dst)
        if (src.startswith(state) and dst.startswith(outbox)) or (src.startswith(outbox) and dst.startswith(state)):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    case_dir = sealable_case(config.paths.inbox)
    build_case(case_dir, config, now=NOW)
    build_case(case_dir, config, now=NOW)
    submission = seal_case(config, CASE_ID, now=NOW, actor="clerk")
    monkeypatch.setattr(os, "replace", real_replace)
    assert verify_submission(submission, config, audit=False).ok
    assert sorted(p.name for p in (config.paths.outbox / CASE_ID).iterdir()) == ["submission-01"]


# --- start-up sweep and the clerk's note when stuck (issue 13 item 11) ---------------------------

def test_start_up_sweeps_leftovers_of_interrupted_work(config):
    case_dir = sealable_case(config.paths.inbox)
    build_case(case_dir, config, now=NOW)
    leftovers = [config.work_dir / f"draft-{CASE_ID}-x1y2" / "member-packet.pdf",
                 config.work_dir / f"seal-{CASE_ID}-submission-01" / "imr-org-packet.pdf",
                 config.paths.outbox / CASE_ID / layout.STAGING_DIR / "old-draft-abc" / "old" / "manifest.json"]
    # Perhaps another writer's file in progress: the watcher removes such files once stale.
    in_progress = config.paths.outbox / "_print" / ".tmp-k2j3h4"
    leftovers.append(in_progress)
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    draft = sorted(str(p.relative_to(config.paths.outbox)) for p in layout.draft_dir(config, CASE_ID).rglob("*"))
    recover(config)
    assert [path for path in leftovers if path.exists()] == [in_progress]
    assert not list(config.work_dir.iterdir())
    assert sorted(str(p.relative_to(config.paths.outbox)) for p in layout.draft_dir(config, CASE_ID).rglob("*")) == draft
    assert (case_dir / "case.toml").is_file() and len(list(case_dir.rglob("*.pdf"))) == 3


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_a_build_tells_the_clerk(config, monkeypatch):
    case_dir = sealable_case(config.paths.inbox)
    monkeypatch.setattr(build_module, "build_outputs", _disk_full)
    with pytest.raises(OSError):
        build_case(case_dir, config, now=NOW)
    note = (case_dir / "_STATUS.txt").read_text()
    assert note.startswith(f"Case {CASE_ID}: STUCK: building the draft failed: the disk is full")
    assert "Nothing was lost" in note
    assert not layout.draft_dir(config, CASE_ID).exists()


def test_a_full_disk_during_a_seal_tells_the_clerk_and_seals_nothing(config, monkeypatch):
    case_dir = sealable_case(config.paths.inbox)
    (case_dir / "READY").touch()
    monkeypatch.setattr(seal_module, "build_outputs", _disk_full)
    with pytest.raises(OSError):
        seal_case(config, CASE_ID, now=NOW, actor="clerk")
    assert "STUCK: sealing failed: the disk is full" in (case_dir / "_STATUS.txt").read_text()
    assert not (config.paths.outbox / CASE_ID / "submission-01").exists() and (case_dir / "READY").exists()
    assert not list(config.work_dir.glob("seal-*"))


def test_a_stuck_note_is_written_in_place_when_even_the_note_cannot_be_replaced(config, monkeypatch):
    from packet.pipeline import statusnote

    case_dir = sealable_case(config.paths.inbox)
    (case_dir / "_STATUS.txt").write_text("Case X: draft ready\n" + "old words\n" * 50)
    monkeypatch.setattr(statusnote, "write", _disk_full)
    statusnote.write_error(case_dir, case_id=CASE_ID, now=NOW, tz=config.calendar.tz,
                           exc=OSError(errno.ENOSPC, "full"), doing="building the draft")
    text = (case_dir / "_STATUS.txt").read_text()
    assert text.startswith(f"Case {CASE_ID}: STUCK") and "old words" not in text


# --- one recipe: gather once, typed gate items, seal a snapshot --------------------------------------

def test_review_json_carries_typed_gate_items(config):
    case_dir = sealable_case(config.paths.inbox, grievance_response=False)
    make_pdf(case_dir / "scan 0001.pdf", ["lorem ipsum dolor sit amet"])
    result = build_case(case_dir, config, now=NOW)
    review = json.loads((result.draft_dir / "review.json").read_text())
    by_code = {item["code"]: item for item in review["items"]}
    assert set(by_code) == {"needs_review", "grievance_response_missing"}
    assert by_code["needs_review"]["document"] == "scan 0001.pdf"
    assert "overrides.toml" in by_code["needs_review"]["resolve"]
    assert by_code["grievance_response_missing"]["document"] is None
    assert review["blocks_sealing"] == [item["text"] for item in review["items"]] == list(result.blocking)
    assert [item.code for item in result.gate_items] == ["needs_review", "grievance_response_missing"]


def test_a_seal_builds_no_draft(config, monkeypatch):
    case_dir = sealable_case(config.paths.inbox)
    build_case(case_dir, config, now=NOW)
    monkeypatch.setattr(build_module, "write_draft", lambda *a, **k: pytest.fail("a seal wrote a draft"))
    seal_case(config, CASE_ID, now=NOW, actor="clerk")
    note = (case_dir / "_STATUS.txt").read_text()
    assert "submission 1 is sealed; files dropped here now start supplemental submission 2" in note


def test_seal_takes_a_snapshot_and_refuses_a_stale_one(config):
    case_dir = sealable_case(config.paths.inbox)
    snapshot = gather_case(case_dir, config, now=NOW)
    assert snapshot.gate_items == ()
    submission = seal_snapshot(config, snapshot, actor="clerk")
    assert submission.name == "submission-01"
    with pytest.raises(PacketError, match="sealed since it was gathered"):
        seal_snapshot(config, snapshot, actor="clerk")


def test_seal_does_not_import_build_and_the_rooms_have_no_import_circle():
    code = "import sys, packet.pipeline.seal; print('packet.pipeline.build' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT)
    assert out.stdout.strip() == "False"
    graph: dict[str, set[str]] = {}
    for room in ("pipeline", "records"):
        for path in (PROJECT / "packet" / room).glob("*.py"):
            module = f"packet.{room}.{path.stem}"
            tree = ast.parse(path.read_text())
            graph[module] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("packet."):
                    graph[module].add(node.module)
                    graph[module] |= {f"{node.module}.{alias.name}" for alias in node.names}
            late = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                    for inner in ast.walk(node) if isinstance(inner, ast.ImportFrom)
                    and (inner.module or "").startswith("packet")]
            if path.stem != "verify":  # packet/pipeline/verify.py is the pdf room's to tidy
                assert not late, f"{module} imports the project's modules inside a function"
    graph = {m: {d for d in deps if d in graph} for m, deps in graph.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for dep in graph[start]:
            if dep == goal or (dep not in seen and (seen.add(dep) or reaches(dep, goal, seen))):
                return True
        return False

    circles = [m for m in graph if reaches(m, m, set())]
    assert not circles, circles
    for module in graph:
        if module.startswith("packet.records"):
            assert not any(dep.startswith("packet.pipeline") for dep in graph[module]), module


def test_one_owner_of_the_layout_names():
    owners = {}
    for path in (PROJECT / "packet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                if node.value.value in ("manifest.json", "imr-org-packet.pdf", "draft", "_print", "/ImrStamp",
                                        "review.json", "documents.json", "SHA256SUMS"):
                    owners.setdefault(node.value.value, []).append(str(path.relative_to(PROJECT)))
    assert {name: paths for name, paths in owners.items() if len(paths) > 1} == {}
    assert owners["manifest.json"] == ["packet/records/layout.py"]
    assert owners["draft"] == ["packet/records/layout.py"]
