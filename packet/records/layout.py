"""Where everything the service writes lives: the one owner of outbox/, archive/ and state/ paths
and file names, and of manifest.json reading and writing.

    outbox/<CASE-ID>/draft/                 the draft (manifest.json, review.json, the outputs)
    outbox/<CASE-ID>/submission-NN/         a sealed submission (manifest.json, the outputs)
    outbox/_print/                          mailings waiting for the mailroom
    archive/<CASE-ID>/submission-NN/        the originals of a sealed submission, and _sealed/
                                            (documents.json, SHA256SUMS, converted/)
    state/cases/<CASE-ID>/                  per-case memory, register, gate, seal journal
    state/work/                             work folders (swept at start-up)

Every other module asks this one for a path or a name. Must not: decide what goes into a file
(packet.records.manifest shapes the manifest) or build anything.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from packet.config import Config
from packet.fsutil import atomic_write_text, ensure_dir
from packet.model.case import check_case_id

# outbox/<CASE-ID>/<folder>/
MANIFEST = "manifest.json"
REVIEW = "review.json"  # the draft's list of what blocks sealing
ORG_PACKET = "imr-org-packet.pdf"
DRAFT_DIR = "draft"
PRINT_DIR = "_print"
BOARD_DIR = "_board"
# archive/<CASE-ID>/submission-NN/_sealed/
SEALED_DIR = "_sealed"
SNAPSHOT = "documents.json"
HASHES = "SHA256SUMS"
CONVERTED_DIR = "converted"
# state/
CASES_DIR = "cases"
INTAKE_MEMORY = "intake.json"  # in state/cases/<CASE-ID>/: when each document was first received, refusals
DRAFT_PACKET_RECORD = "draft-packet.json"  # in state/cases/<CASE-ID>/: how the draft packet was written

_SUBMISSION = re.compile(r"submission-(\d{2,})")


def submission_dirname(number: int) -> str:
    return f"submission-{number:02d}"


def submission_number(name: str) -> int | None:
    """The number of a `submission-NN` folder name; None for any other name."""
    match = _SUBMISSION.fullmatch(name)
    return int(match.group(1)) if match else None


def case_outbox(config: Config, case_id: str) -> Path:
    return config.paths.outbox / check_case_id(case_id)


def draft_dir(config: Config, case_id: str) -> Path:
    return case_outbox(config, case_id) / DRAFT_DIR


def submission_dir(config: Config, case_id: str, number: int) -> Path:
    return case_outbox(config, case_id) / submission_dirname(number)


def submission_dirs(config: Config, case_id: str) -> list[tuple[int, Path]]:
    """(number, folder) of every sealed submission folder in the outbox, oldest first."""
    folder = case_outbox(config, case_id)
    if not folder.is_dir():
        return []
    found = [(submission_number(child.name), child) for child in folder.iterdir() if child.is_dir()]
    return sorted((number, child) for number, child in found if number is not None)


def archive_case_dir(config: Config, case_id: str) -> Path:
    return config.paths.archive / check_case_id(case_id)


def archive_dir(config: Config, case_id: str, number: int) -> Path:
    return archive_case_dir(config, case_id) / submission_dirname(number)


def print_dir(config: Config) -> Path:
    return config.paths.outbox / PRINT_DIR


def case_state_dir(config: Config, case_id: str) -> Path:
    """state/cases/<CASE-ID>/ (not created here)."""
    return config.paths.state / CASES_DIR / check_case_id(case_id)


def cases_state_root(config: Config) -> Path:
    return config.paths.state / CASES_DIR


# Work folders on a destination's file system when state/ is on another one (names start with a
# dot: the service and the board ignore them; the start-up sweep removes leftovers).
STAGING_DIR = ".staging"


def staging_dir(config: Config, destination_parent: Path) -> Path:
    """Where to build something that will be renamed into `destination_parent`: state/work/ when
    it is on the same file system (a rename across file systems fails with EXDEV), else a hidden
    folder beside the destination. Created if needed."""
    work = ensure_dir(config.work_dir)
    destination_parent = ensure_dir(destination_parent)
    if os.stat(work).st_dev == os.stat(destination_parent).st_dev:
        return work
    return ensure_dir(destination_parent / STAGING_DIR)


def aside(target: Path) -> Path:
    """A fresh hidden path beside `target` (same file system) to rename it to before removing it."""
    folder = ensure_dir(Path(target).parent / STAGING_DIR)
    return Path(tempfile.mkdtemp(prefix=f"old-{Path(target).name}-", dir=folder)) / "old"


def tidy_staging(parent: Path) -> None:
    """Remove the staging folder beside a destination when nothing is left in it."""
    with contextlib.suppress(OSError):
        for child in (Path(parent) / STAGING_DIR).iterdir():
            if child.is_dir() and not any(child.iterdir()):
                child.rmdir()
        (Path(parent) / STAGING_DIR).rmdir()


def move_into_place(work: Path, target: Path) -> None:
    """Rename a finished work folder to `target` (which must not exist). Where the two turn out
    to be on different file systems (EXDEV: a bind mount, a changed mount), the work is copied
    into the staging folder beside `target` first, so the final rename is still atomic."""
    try:
        os.replace(work, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    staged = ensure_dir(Path(target).parent / STAGING_DIR) / f"{Path(target).name}-moving"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(work, staged, symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(staged):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as handle:
                os.fsync(handle.fileno())
    os.replace(staged, target)
    shutil.rmtree(work, ignore_errors=True)
    tidy_staging(Path(target).parent)


def sweep_work(config: Config, keep: set[Path] = frozenset()) -> list[Path]:
    """Remove leftovers of interrupted work (kill -9, power loss): everything in state/work/ and in
    the outbox's staging folders, except the paths in `keep` (an interrupted seal's folders, which
    its journal's recovery owns). Returns what was removed. Call at start-up, before any build."""
    keep = {Path(p).resolve() for p in keep}
    removed = []
    roots = [config.work_dir]
    outbox = config.paths.outbox
    if outbox.is_dir():
        roots += [case / STAGING_DIR for case in outbox.iterdir() if case.is_dir()]
    for root in roots:
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if child.resolve() in keep or any(k.is_relative_to(child.resolve()) for k in keep):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
            removed.append(child)
    return removed


# --- manifest.json --------------------------------------------------------------------------------

def manifest_path(folder: Path) -> Path:
    return Path(folder) / MANIFEST


def dumps_manifest(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def write_manifest(path: Path, manifest: dict) -> Path:
    """Write a manifest to `path` (a manifest.json file) atomically."""
    return atomic_write_text(Path(path), dumps_manifest(manifest))


def read_manifest(folder: Path) -> dict:
    """The manifest of a draft or submission folder (or of a manifest.json path given directly).

    Raises OSError when it cannot be read and ValueError when it is not a JSON object.
    """
    path = Path(folder)
    if path.name != MANIFEST:
        path = path / MANIFEST
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: not a JSON object")
    return manifest


def try_read_manifest(folder: Path) -> dict | None:
    """The manifest, or None when it is missing or unreadable."""
    try:
        return read_manifest(folder)
    except (OSError, ValueError):
        return None


def sealed_manifests(config: Config, case_id: str) -> Iterator[tuple[int, dict]]:
    """(number, manifest) of every readable sealed submission of the case, oldest first."""
    for number, folder in submission_dirs(config, case_id):
        manifest = try_read_manifest(folder)
        if manifest is not None:
            yield number, manifest


# --- the archive ----------------------------------------------------------------------------------

def archived_sources(config: Config, case_id: str) -> set[str]:
    """Relative paths of every original archived by a sealed submission of the case."""
    sources: set[str] = set()
    for snapshot in sorted(archive_case_dir(config, case_id).glob(f"submission-*/{SEALED_DIR}/{SNAPSHOT}")):
        try:
            with open(snapshot, encoding="utf-8") as handle:
                sources.update(entry["source"] for entry in json.load(handle)["documents"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sources
