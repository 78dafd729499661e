"""Driving the real console script (`.venv/bin/imr-packet`) in a subprocess or a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "imr-packet"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without IMR_* variables (a test must not read the developer's setup)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMR_")}
    env.update(extra)
    return env


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(args: list[str], cwd: Path, *, timeout: float = 300, env: dict | None = None) -> Run:
    done = subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env or clean_env(), errors="replace")
    return Run(done.returncode, done.stdout, done.stderr)


def run_in_terminal(args: list[str], cwd: Path, *, timeout: float = 300) -> tuple[int, str]:
    """What a person sees: the command in a pseudo-terminal (stdout and stderr both the terminal)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the command
        try:
            os.chdir(cwd)
            os.execve(str(SCRIPT), [str(SCRIPT), *args], clean_env(TERM="xterm", COLUMNS="120"))
        finally:
            os._exit(127)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def tree(root: Path) -> set[str]:
    """Every path under root, to show that a command created nothing."""
    return {p.relative_to(root).as_posix() for p in Path(root).rglob("*")}
