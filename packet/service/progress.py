"""Feedback during long work: the interim `_STATUS.txt` notes the watcher writes while it works.

Owns: the wording of the notes that stand in for the full note while files are received, converted,
assembled or sealed ("converting 12 of 30 files", "reading page 140 of 400", "sealing..."), and
their timing: written at once when work starts, rewritten at least every `HEARTBEAT_SECONDS` while it
lasts, each atomically. The last full note the build wrote stays below an interim note, so nothing
a clerk needs (what blocks sealing, the due time) disappears while the service works.

The progress hook is a plain callable `progress(stage, done, total)`; the build calls it ("converting"
per file, "assembling", then "done" just before it writes the full note), and conversion may call it
with "reading_pages" (page `done` of `total`, for OCR). After "done" no interim note is written, so
an interim note never replaces the full one.
Must not: decide anything about a case, or put names of files or members in the service log.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import threading
import time
from pathlib import Path
from typing import Callable

from packet.log import log_exception
from packet.pipeline import statusnote

HEARTBEAT_SECONDS = 2.0  # an interim note is rewritten at least this often (the promise is 5 s)
MIN_WRITE_SECONDS = 0.5  # and at most this often, however fast the files convert
INTERIM_MARK = "--- The last full note, from before this work started ---"
WORKING = "working"  # the first word of every interim headline ("Case X: working: ...")


def when_text(moment: dt.datetime, tz) -> str:
    local = moment.astimezone(tz)
    hour = local.hour % 12 or 12
    return f"{local:%A %B} {local.day}, {local.year} at {hour}:{local:%M:%S %p %Z}"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"


def read_note(path: Path, limit: int = 1 << 20, errors: str = "strict") -> str:
    """A note's text, never through a symbolic link (a link could pull another case's note in)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return handle.read(limit).decode("utf-8", errors)


def last_full_note(case_dir: Path) -> str | None:
    """The note a build or seal wrote last (without any interim note above it), if any."""
    try:
        text = read_note(Path(case_dir) / statusnote.STATUS_FILE)
    except (OSError, UnicodeDecodeError):
        return None
    if INTERIM_MARK in text:
        return text.split(INTERIM_MARK, 1)[1].lstrip("\n") or None
    return text if text.startswith("Case ") else None


def interim_text(case_id: str, headline: str, lines: list[str], *, tz, now: dt.datetime | None = None,
                 previous: str | None = None) -> str:
    now = now or dt.datetime.now(tz)
    text = f"Case {case_id}: {WORKING}: {headline}\nUpdated {when_text(now, tz)}\n\n"
    text += "".join(f"{line}\n" for line in lines)
    if previous:
        text += f"\n{INTERIM_MARK}\n{previous}"
    return text


def write_interim(case_dir: Path, case_id: str, headline: str, lines: list[str], *, tz) -> str:
    """Write an interim note above the last full one; return the text written."""
    text = interim_text(case_id, headline, lines, tz=tz, previous=last_full_note(case_dir))
    statusnote.write(case_dir, text)
    return text


def received_lines(received: int, copying: int) -> tuple[str, list[str]]:
    """The headline and lines of the note written as soon as files arrive."""
    headline = f"{received} new file(s) received"
    if copying:
        headline += f"; {copying} still being copied"
    lines = ["The service has seen these files and will take them into the draft once they are",
             "complete. This note is replaced by the full one when the draft is ready."]
    return headline, lines


def stage_headline(stage: str, done: int, total: int) -> str:
    if stage == "converting":
        return f"converting {done} of {total} files"
    if stage == "reading_pages":
        return f"reading page {done} of {total}"
    if stage == "assembling":
        return f"assembling the draft ({total} document(s))"
    if stage == "sealing":
        return "sealing..."
    return f"{stage.replace('_', ' ')} {done} of {total}" if total else stage.replace("_", " ")


class WorkNote:
    """The interim note of one piece of work (a build or a seal); a context manager.

    Call it as the progress hook. With `stage` given, the note is written at once (sealing);
    otherwise at the first progress call. `on_update()` runs after each write (the board).
    """

    def __init__(self, case_dir: Path, case_id: str, tz, *, stage: str | None = None,
                 on_update: Callable[[], None] | None = None, heartbeat: float = HEARTBEAT_SECONDS):
        self.case_dir = Path(case_dir)
        self.case_id = case_id
        self.tz = tz
        self.on_update = on_update
        self.heartbeat = heartbeat
        self.started = time.monotonic()
        self.state: tuple[str, int, int] | None = (stage, 0, 0) if stage else None
        self.closed = False
        self.last_text: str | None = None
        self.last_write = float("-inf")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="status-note", daemon=True)

    def __enter__(self) -> WorkNote:
        if self.state is not None:
            with self._lock:
                self._write()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            if self.closed:
                return
            if stage == "done":
                self.closed = True  # the build writes the full note next: never overwrite it
                return
            self.state = (stage, done, total)
            if time.monotonic() - self.last_write >= MIN_WRITE_SECONDS:
                self._write()

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def clobbered(self) -> bool:
        """Is our interim note the one in the folder now (work that wrote its own note was overwritten)?"""
        if self.last_text is None:
            return False
        try:
            return read_note(self.case_dir / statusnote.STATUS_FILE) == self.last_text
        except (OSError, UnicodeDecodeError):
            return False

    def _tick(self) -> None:
        while not self._wake.wait(self.heartbeat / 2):
            with self._lock:
                if self.closed:
                    return
                if self.state is not None and time.monotonic() - self.last_write >= self.heartbeat:
                    self._write()

    def _write(self) -> None:
        stage, done, total = self.state
        elapsed = time.monotonic() - self.started
        lines = [f"Working for {_span(elapsed)}. This note is rewritten every few seconds while the",
                 "service works, and replaced by the full note when the work is done."]
        try:
            if not self.case_dir.is_dir():
                return
            self.last_text = write_interim(self.case_dir, self.case_id, stage_headline(stage, done, total),
                                           lines, tz=self.tz)
            self.last_write = time.monotonic()
        except OSError as exc:  # a note is feedback: a failure never stops the work
            log_exception("status_note_failed", exc, case=self.case_id)
            return
        if self.on_update is not None:
            try:
                self.on_update()
            except Exception as exc:
                log_exception("board_failed", exc)


def write_stuck(case_dir: Path, case_id: str, error: str, retry_in: float | None, *, tz) -> None:
    """After an error (a full disk, say): the clerk learns the case is stuck, and why.

    `retry_in` None: the service tries again only when something in the case folder changes.
    """
    now = dt.datetime.now(tz)
    when = (f"It tries again by itself in about {_span(retry_in)}." if retry_in is not None
            else "It tries again when something in this folder changes.")
    text = (f"Case {case_id}: NOT UPDATED: the service hit an error ({error}) while working on this case\n"
            f"Updated {when_text(now, tz)}\n\n"
            f"{when} If this note is still here later, tell\n"
            "the service's administrator (the service log says more, without any names).\n")
    previous = last_full_note(case_dir)
    if previous:
        text += f"\n{INTERIM_MARK}\n{previous}"
    try:
        if Path(case_dir).is_dir():
            statusnote.write(case_dir, text)
    except OSError as exc:
        log_exception("status_note_failed", exc, case=case_id)


def refused_text(case_id: str, items: list[str], *, tz) -> str:
    """The note after a refused seal, when the seal's own note was lost under "sealing..."."""
    now = dt.datetime.now(tz)
    lines = [f"Case {case_id}: NOT SEALED: {len(items)} thing(s) to fix first; READY stays, and sealing is "
             "tried again when the case changes", f"Updated {when_text(now, tz)}", "",
             "Before this case can be sealed:"] + [f"  - {item}" for item in items]
    return "\n".join(lines) + "\n"
