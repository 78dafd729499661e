"""Refusing a clerk's file: move it byte-for-byte into the case's `_rejected/` with a note beside it.

Owns: the only change the service ever makes to a clerk's file (a move into `_rejected/`, same
bytes, plus `<name>.why.txt`). Must not: delete or alter a file's content.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from packet.errors import RefusedFile
from packet.fsutil import atomic_write_text, ensure_dir, fsync_dir
from packet.model.models import Rejected, SourceFile

REJECTED_DIR = "_rejected"


NOTE_SUFFIX = ".why.txt"
# A name the file system can hold (255 bytes) must still fit with " (NN)" and ".why.txt" added.
MAX_NAME_BYTES = 255 - len(NOTE_SUFFIX) - len(" (99999)")


def safe_name(name: str) -> str:
    """`name` as a name the service can write: valid UTF-8, no control characters, short enough.

    A long name keeps its start and its extension and gets a short hash of the whole name, so two
    long names that share a start stay apart.
    """
    text = os.fsencode(name).decode("utf-8", "replace")
    text = "".join("_" if ord(ch) < 32 or 0x7f <= ord(ch) < 0xa0 else ch for ch in text).replace("/", "_")
    if text in ("", ".", ".."):
        text = "file"
    if len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    stem, suffix = os.path.splitext(text)
    if len(suffix.encode("utf-8")) > 16:
        stem, suffix = text, ""
    tag = "~" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    room = MAX_NAME_BYTES - len(tag) - len(suffix.encode("utf-8"))
    short = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{short}{tag}{suffix}"


def _free_name(folder: Path, name: str) -> Path:
    name = safe_name(name)
    target = folder / name
    stem, suffix = os.path.splitext(name)
    n = 2
    while os.path.lexists(target) or os.path.lexists(str(target) + NOTE_SUFFIX):
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


# Refusals of a file whose document is already in the packet or a sealed submission: another copy
# of it is not what the clerk needs.
ALREADY_SENT = frozenset({"duplicate", "sealed_without_flag"})


def why_text(source: SourceFile, error: RefusedFile) -> str:
    return (f"File: {os.fsencode(source.relpath).decode('utf-8', 'replace')}\n"
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
    atomic_write_text(Path(str(target) + NOTE_SUFFIX), why_text(source, error))
    os.rename(source.path, target)  # a rename keeps the bytes: never copy-and-delete
    fsync_dir(folder)
    fsync_dir(source.path.parent)
    return Rejected(source=source.relpath, sha256=sha256, reason=error.reason, message=error.message,
                    what_to_do=error.what_to_do, moved_to=target.relative_to(case_dir).as_posix())
