"""Running Tesseract over a list of page images: one process, its models loaded once, many pages.

Owns: finding the `tesseract` program, the command lines (a reading in hOCR with automatic layout;
orientation detection, `--psm 0 -l osd`), the list file Tesseract reads the pages from, timing each
page by the "Page n" line Tesseract writes before it starts a page of a list, killing the process
when a page outlasts its own allowance or the run its deadline, and splitting the multi-page hOCR
and orientation output back into pages.
Must not: decide anything about a page, keep page images, or log or print document text.

A killed process leaves no usable output (Tesseract writes the hOCR document whole at the end): the
caller reads the pages that were not to blame again in a new run.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from packet.errors import OcrError

_PAGE_LINE = re.compile(rb"^Page \d+ : ")


def program() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise OcrError("tesseract is not installed (run `make setup`)", reason="ocr_missing")
    return path


def env() -> dict[str, str]:
    return dict(os.environ, OMP_THREAD_LIMIT="1")  # one core per process: processes run side by side


@dataclass
class Run:
    """How one Tesseract run over a list of pages ended."""

    started: int = 0  # pages of the list begun (in order) when the run ended
    finished: int = 0  # pages of the list done: all begun, or all but the last when Tesseract failed on it
    seconds: list[float] = field(default_factory=list)  # the time each finished page took
    killed_page: int | None = None  # the page killed for outlasting its own allowance
    out_of_time: bool = False  # killed because the run's deadline came
    returncode: int | None = None
    output: bytes = b""  # the output file (hOCR) or standard output (orientation)

    @property
    def complete(self) -> bool:
        return self.returncode == 0 and self.killed_page is None and not self.out_of_time


def run_list(images: list[Path], options: list[str], folder: Path, name: str, *,
             allowances: list[float], deadline: float) -> Run:
    """Tesseract over `images` (in this order), its output on standard output, with `options`.

    Page i may take `allowances[i]` seconds; the whole run ends by `deadline` (time.monotonic()).
    The output is kept when the process was not killed (also when Tesseract gave up on a page: the
    pages before it are in it).
    """
    listing = folder / f"{name}.txt"
    listing.write_text("".join(f"{image}\n" for image in images), encoding="utf-8")
    stdout_path = folder / f"{name}.stdout"
    run = Run()
    with open(stdout_path, "wb") as stdout:
        process = subprocess.Popen([program(), str(listing), "stdout", *options], stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.PIPE, env=env(), cwd=folder)
    try:
        _watch(process, run, allowances, deadline)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()
    run.returncode = process.returncode
    if run.killed_page is None and not run.out_of_time:
        run.finished = run.started if run.returncode == 0 else max(0, run.started - 1)
        run.output = stdout_path.read_bytes()
    return run


def _watch(process: subprocess.Popen, run: Run, allowances: list[float], deadline: float) -> None:
    """Follow the "Page n" lines on standard error until the process ends or is killed."""
    stream = process.stderr.fileno()
    current, started, pending = -1, time.monotonic(), b""  # -1: loading the models
    while True:
        ends = deadline if current < 0 else min(deadline, started + allowances[current])
        wait = ends - time.monotonic()
        ready = select.select([stream], [], [], max(0.0, wait))[0] if wait > 0 else []
        now = time.monotonic()
        if not ready:
            if now < ends:
                continue
            process.kill()
            if current >= 0 and started + allowances[current] < deadline:
                run.killed_page = current
            else:
                run.out_of_time = True
            return
        chunk = os.read(stream, 65536)
        if not chunk:  # the process closed its standard error: it has ended
            if current >= 0:
                run.seconds.append(now - started)
            run.started = current + 1
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if _PAGE_LINE.match(line) and current + 1 < len(allowances):
                if current >= 0:
                    run.seconds.append(now - started)
                current, started = current + 1, now
                run.started = current + 1


def orientation_output(output: bytes) -> list[int]:
    """The clockwise turn (0, 90, 180, 270) that makes each page upright, from `--psm 0` output,
    one entry per page it reported on (0 when it gave no usable answer)."""
    turns = []
    for block in re.split(rb"(?m)^Page number: ", output)[1:]:
        match = re.search(rb"(?m)^Rotate: (\d+)", block)
        clockwise = int(match.group(1)) % 360 if match else 0  # a page fed a quarter turn left says 90
        turns.append(clockwise if clockwise in (90, 180, 270) else 0)
    return turns
