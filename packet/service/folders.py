"""What the watcher writes into the inbox besides `_STATUS.txt` notes of builds.

Owns: the note in a folder whose name is no case id, the `case.toml` template dropped into a new
case folder that lacks one (marked as not yet filled in, so it is refused until a person fills it
in: the legal clock never starts from a template), and sweeping the hidden temporary files a killed
atomic write leaves behind. Must not: change or remove any clerk's file, or overwrite a case.toml.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from pathlib import Path

from packet.config import Config
from packet.fsutil import atomic_write_text
from packet.log import log
from packet.model.case import case_template

# An atomic write (packet.fsutil) goes through a hidden ".tmp-*" file beside its target; kill -9
# in the middle leaves one behind. Hidden (a dot name; Samba hides dot files by default) and never a
# final name, but litter: the watcher removes those older than this, which no live write can be.
STALE_TEMP_SECONDS = 120.0
TEMP_PREFIX = ".tmp-"
CASE_TOML = "case.toml"
NOT_FILLED_IN = "# NOT YET FILLED IN"
INVALID_FOLDER_NOTE = """\
imr-packet cannot use this folder.

The name of this folder is not a valid case id, so nothing in it will be processed.
A case folder's name must be the case id: 1 to 64 letters, digits, '.', '_' or '-',
starting with a letter or a digit (for example IMR-2026-000417). No spaces.

What to do: rename the folder to the case id. Nothing in this folder has been changed.
"""
_TEMPLATE_HEADER = f"""\
{NOT_FILLED_IN}: the imr-packet service put this template here because the folder had no case.toml.
# Nothing in this case is processed until a person fills in every value below (including
# dmhc_notice_received, the time the plan received DMHC's notice: it starts the legal clock) and
# deletes these first four lines.
"""
_NOTICE_LINE = re.compile(r"^dmhc_notice_received\s*=.*$", re.MULTILINE)


def refuse_folder(name: str, path: Path, noted: set[str]) -> None:
    """A folder whose name is no case id: a note inside it, a log line without the name."""
    note = path / "_STATUS.txt"
    try:
        current = note.read_text(encoding="utf-8") if note.is_file() else None
        if current != INVALID_FOLDER_NOTE:
            atomic_write_text(note, INVALID_FOLDER_NOTE)
    except (OSError, UnicodeDecodeError):
        pass  # a read-only folder: the log line still says so
    if name not in noted:
        noted.add(name)
        log("case_folder_refused", level="warning", reason="invalid_case_id",
            folder=hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12])


def unfilled_template(case_id: str, now: dt.datetime) -> str:
    """The new-case template, marked as not filled in, with no notice time (a person enters it)."""
    text = _NOTICE_LINE.sub(
        "# dmhc_notice_received = 2026-12-01T09:00:00-08:00   # FILL IN, then remove the # at the start",
        case_template(case_id, now), count=1)
    return _TEMPLATE_HEADER + text


def has_case_toml(case_dir: Path) -> bool:
    """case.toml, or something a clerk meant as one (CASE.TOML, case.toml.txt ...)."""
    try:
        with os.scandir(case_dir) as entries:
            return any(entry.name.lower().startswith(CASE_TOML) for entry in entries)
    except OSError:
        return True  # cannot tell: write nothing


def drop_case_template(case_id: str, case_dir: Path, tz) -> bool:
    """Put an unfilled case.toml template into a case folder lacking one; never overwrite."""
    if has_case_toml(case_dir):
        return False
    path = case_dir / CASE_TOML
    temp = case_dir / f"{TEMP_PREFIX}{os.getpid()}-{CASE_TOML}"
    try:
        atomic_write_text(temp, unfilled_template(case_id, dt.datetime.now(tz)))
        os.link(temp, path)  # whole, and never over a case.toml that appeared meanwhile
    except OSError:
        return False
    finally:
        try:
            os.unlink(temp)
        except OSError:
            pass
    log("case_template_written", case=case_id)
    return True


def sweep_temp_files(config: Config, case_dirs: list[Path], *, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Remove temporary files abandoned by a killed atomic write; return how many.

    Only where the service writes single files: outbox/ (index.html), outbox/_board/,
    outbox/_print/, and each case folder (_STATUS.txt) with its _rejected/ (the refusal notes).
    Drafts and submissions are built in state/work/ and appear by os.replace, whole.
    """
    outbox = config.paths.outbox
    folders = [outbox, outbox / "_board", outbox / "_print"]
    for case_dir in case_dirs:
        folders += [case_dir, case_dir / "_rejected"]
    removed = 0
    limit = time.time() - older_than
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if (entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False)
                        and entry.stat(follow_symlinks=False).st_mtime < limit):
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    if removed:
        log("temp_files_removed", count=removed)
    return removed
