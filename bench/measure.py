"""Running one command and measuring it: wall time, peak RSS of its biggest process, peak RSS of its tree.

Owns: how the benchmark times and weighs a child process. `os.wait4` gives the child's own
resource usage (the largest max RSS among the child and the descendants it waited for), which is
exact per run, unlike RUSAGE_CHILDREN, which accumulates over the whole benchmark. A sampling thread
adds up the RSS of the whole process tree (the service's worker processes run at the same time as
its main process), so the tree figure is the memory the machine really had to find.
Must not: know what it runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_kb: int  # the largest single process (wait4)
    tree_peak_kb: int  # the largest sum over the process tree at one sample (0 when not sampled)
    returncode: int
    stderr_tail: str = ""


@dataclass
class Series:
    """Several runs of one measurement."""

    runs: list[float] = field(default_factory=list)
    max_rss_kb: int = 0
    tree_peak_kb: int = 0

    def add(self, seconds: float, run: Run | None = None) -> None:
        self.runs.append(seconds)
        if run is not None:
            self.max_rss_kb = max(self.max_rss_kb, run.max_rss_kb)
            self.tree_peak_kb = max(self.tree_peak_kb, run.tree_peak_kb)

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    def to_json(self) -> dict:
        return {"median_s": _round(self.median), "runs_s": [_round(r) for r in self.runs],
                "max_rss_mb": round(self.max_rss_kb / 1024, 1) if self.max_rss_kb else None,
                "tree_peak_rss_mb": round(self.tree_peak_kb / 1024, 1) if self.tree_peak_kb else None}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class CommandFailed(RuntimeError):
    pass


class Proc(NamedTuple):
    parent: int
    rss_pages: int
    image: tuple[int, ...]  # virtual size and where its program and stack start and end: its address space


def _process_table() -> dict[int, Proc]:
    """pid -> Proc, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = raw.rsplit(")", 1)[-1].split()  # fields from the third (state) on
        try:
            table[int(entry)] = Proc(int(fields[1]), int(fields[21]),
                                     (int(fields[20]), int(fields[23]), int(fields[24]), int(fields[25])))
        except (IndexError, ValueError):
            continue
    return table


def own_memory(table: dict[int, Proc], pid: int) -> bool:
    """Whether `pid` has an address space of its own. A child between its (v)fork and its exec has
    its parent's: the same size, program and stack addresses (a started program, even the same one,
    is placed elsewhere). Its RSS is its parent's pages (vfork shares them, fork until written);
    summed, a sample that falls in that moment would count the parent twice."""
    proc = table[pid]
    parent = table.get(proc.parent)
    return parent is None or parent.image != proc.image


def descendants(table: dict[int, Proc], root_pid: int) -> list[int]:
    """Every process below `root_pid`, however deep."""
    children: dict[int, list[int]] = {}
    for pid, proc in table.items():
        children.setdefault(proc.parent, []).append(pid)
    found, stack = [], list(children.get(root_pid, ()))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def tree_pids(table: dict[int, Proc], root_pid: int) -> list[int]:
    """`root_pid` and its descendants, each of which has memory of its own (`own_memory`)."""
    root = [root_pid] if root_pid in table else []
    return root + [pid for pid in descendants(table, root_pid) if own_memory(table, pid)]


def tree_rss_kb(root_pid: int) -> int:
    table = _process_table()
    return sum(table[pid].rss_pages for pid in tree_pids(table, root_pid)) * PAGE_SIZE // 1024


def run(argv: list[str], *, cwd: Path | None = None, env: dict | None = None, sample_tree: bool = False,
        interval: float = 0.05, check: bool = True, timeout: float = 900.0) -> Run:
    """Run `argv`, wait for it with wait4, and return its time and memory."""
    with open(os.devnull, "wb") as devnull, _Tail() as tail:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=devnull, stderr=tail.handle)
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(interval):
                peak = max(peak, tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True) if sample_tree else None
        if sampler:
            peak = tree_rss_kb(proc.pid)
            sampler.start()
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
            stop.set()
            if sampler:
                sampler.join()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        result = Run(seconds=seconds, max_rss_kb=int(usage.ru_maxrss), tree_peak_kb=peak,
                     returncode=proc.returncode, stderr_tail=tail.text())
    if check and result.returncode != 0:
        raise CommandFailed(f"{Path(argv[0]).name} exited {result.returncode}: {result.stderr_tail}")
    return result


class _Tail:
    """Standard error of a child, kept in a temporary file; the last lines are reported."""

    def __enter__(self) -> "_Tail":
        import tempfile

        self.handle = tempfile.TemporaryFile()
        return self

    def text(self, limit: int = 2000) -> str:
        self.handle.flush()
        self.handle.seek(0, os.SEEK_END)
        size = self.handle.tell()
        self.handle.seek(max(0, size - limit))
        return self.handle.read().decode("utf-8", "replace").strip()

    def __exit__(self, *exc) -> None:
        self.handle.close()
