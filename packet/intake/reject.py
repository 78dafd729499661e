"""Refusing a clerk's file: move it byte-for-byte into the case's `_rejected/` with a note beside it.

Owns: the only change the service ever makes to a clerk's file (a move into `_rejected/`, same
bytes, plus `<name>.why.txt`). Must not: delete or alter a file's content.
"""

from __future__ import annotations

import os
from pathlib import Path

from packet.errors import RefusedFile
from packet.fsutil import atomic_write_text, ensure_dir, fsync_dir
from packet.model.models import Rejected, SourceFile

REJECTED_DIR = "_rejected"


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix = os.path.splitext(name)
    n = 2
    while target.exists() or Path(str(target) + ".why.txt").exists():
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


# Refusals of a file whose document is already in the packet or a sealed submission: another copy
# of it is not what the clerk needs.
ALREADY_SENT = frozenset({"duplicate", "sealed_without_flag"})


def why_text(source: SourceFile, error: RefusedFile) -> str:
    return (f"File: {source.relpath}\n"
            f"Why it was not used: {error.message}\n"
            f"What to do: {error.what_to_do}\n"
            f"Reason code: {error.reason}\n"
            + ("The file above is unchanged.\n" if error.reason in ALREADY_SENT else
               "The file above is unchanged. Once you have a usable copy, drop it into the case folder again.\n"))


def refuse(case_dir: Path, source: SourceFile, error: RefusedFile, sha256: str | None) -> Rejected:
    """Move `source` to `<case>/_rejected/` (same bytes, same file system) and write the note."""
    folder = ensure_dir(Path(case_dir) / REJECTED_DIR)
    # Keep sub-folder names visible in the rejected name so two "scan.pdf" files stay apart.
    flat = source.relpath.replace("/", " - ")
    target = _free_name(folder, flat)
    atomic_write_text(Path(str(target) + ".why.txt"), why_text(source, error))
    os.rename(source.path, target)  # a rename keeps the bytes: never copy-and-delete
    fsync_dir(folder)
    fsync_dir(source.path.parent)
    return Rejected(source=source.relpath, sha256=sha256, reason=error.reason, message=error.message,
                    what_to_do=error.what_to_do, moved_to=target.relative_to(case_dir).as_posix())
