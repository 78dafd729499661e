"""The text of every page of a submission's PDF outputs, for the checks of `verify`: poppler's
`pdftotext -raw` (C, about a third of pypdf's time), one bounded subprocess per file, all started
at once so that they run on the other core while verify does its other checks.

Owns: `PageTexts` (start, then collect each file's page texts) and `bounded_command` (a program
under an address-space limit, for the desk's page pictures too). Each `pdftotext` runs under an
address-space limit (`[limits] worker_memory_mib`, set by the shell's `ulimit -v` before `exec`:
no `preexec_fn` in a threaded process) and a time limit (`[limits] pdf_open_timeout_seconds`,
then its process group is killed); it reads the file on standard input (`fd://0`) and writes into
an unnamed temporary file (a pipe would stall it while nobody reads).
Must not: decide anything; mix extractors. `texts()` answers for every file or for none: a file
pdftotext cannot read (missing program, failure, timeout, a page count other than the PDF's, a form
feed inside a page) makes the caller read every file with pypdf, so that the withheld pages and the
recipient pages are always read by one extractor and their texts stay comparable.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# `ulimit -v` takes KiB; the limit reaches the program through exec, before it reads a byte.
_BOUNDED = 'ulimit -v "$1" || exit 125; shift; exec "$@"'


def bounded_command(argv: list[str], memory_mib: int) -> list[str] | None:
    """`argv` run under an address-space limit of `memory_mib` MiB, set by the shell before it execs
    the program (a threaded process must not use `preexec_fn`); None without a shell."""
    shell = shutil.which("sh")
    if shell is None:
        return None
    return [shell, "-c", _BOUNDED, "sh", str(int(memory_mib) * 1024), *argv]


@dataclass
class _Run:
    process: subprocess.Popen | None
    output: IO[bytes] | None
    started: float


class PageTexts:
    """`pdftotext` over `paths` (started now); `texts(pages_by_path)` collects them."""

    def __init__(self, paths: list[Path], *, timeout: float, memory_mib: int):
        self.timeout = timeout
        self.runs: dict[Path, _Run] = {}
        program = shutil.which("pdftotext")
        command = bounded_command([program, "-q", "-raw", "-enc", "UTF-8", "-eol", "unix", "fd://0", "-"],
                                  memory_mib) if program is not None else None
        for path in paths:
            self.runs[Path(path)] = self._start(Path(path), command)

    @staticmethod
    def _start(path: Path, command: list[str] | None) -> _Run:
        if command is None:
            return _Run(None, None, time.monotonic())
        output = tempfile.TemporaryFile()
        try:
            with open(path, "rb") as pdf:
                process = subprocess.Popen(command, stdin=pdf, stdout=output, stderr=subprocess.DEVNULL,
                                           start_new_session=True)
        except OSError:
            output.close()
            return _Run(None, None, time.monotonic())
        return _Run(process, output, time.monotonic())

    def _collect(self, run: _Run, pages: int) -> list[str] | None:
        if run.process is None or run.output is None:
            return None
        try:
            left = max(0.0, self.timeout - (time.monotonic() - run.started))
            try:
                returncode = run.process.wait(timeout=left)
            except subprocess.TimeoutExpired:
                _kill(run.process)
                return None
            if returncode != 0:
                return None
            run.output.seek(0)
            try:
                text = run.output.read().decode("utf-8")
            except UnicodeDecodeError:
                return None
        finally:
            run.output.close()
            run.output = None
        chunks = text.split("\f")
        if len(chunks) != pages + 1 or chunks[-1].strip():
            return None  # a form feed inside a page's text, or another page count
        return [chunk.rstrip("\n") for chunk in chunks[:pages]]

    def texts(self, pages: dict[Path, int]) -> dict[Path, list[str]] | None:
        """Each file's page texts (every file of `pages` must have been started), or None when any
        one could not be read as `pages[path]` pages. Ends every run either way."""
        try:
            found = {}
            for path, count in pages.items():
                run = self.runs.get(Path(path))
                texts = self._collect(run, count) if run is not None else None
                if texts is None:
                    return None
                found[Path(path)] = texts
            return found
        finally:
            self.close()

    def close(self) -> None:
        """Stop whatever still runs (an early return, an exception) and free the temporary files."""
        for run in self.runs.values():
            if run.process is not None and run.process.poll() is None:
                _kill(run.process)
            if run.output is not None:
                run.output.close()
                run.output = None


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
