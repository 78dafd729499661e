"""Driving the real console script (`.venv/bin/imr-packet`) in a subprocess or a pseudo-terminal.

`run` starts each command as a process of its own, forked from one server process per test
process that imported the command line and the libraries once (as tests/pipeline/test_seal.py's
crash tests do): the child sets the environment, folder, arguments and standard streams a fresh
process would have and runs what the console script runs (`packet.cli.entry()`), so its
exit code, output and files are a real process's. A fresh interpreter costs 0.15 s for a refused
command and about 1 s more for one that builds (the pipeline's imports). `run(..., fresh=True)`
starts the console script itself, for the tests of the entry point; a command with an environment
of its own (`env=`) always does, since an interpreter reads some variables only at start.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "imr-packet"

# The fork server: reads one request per line (JSON: what to do, folder, environment, stdout and
# stderr files, arguments). "run" answers the child's pid, then its exit code
# (os.waitstatus_to_exitcode); "start" answers the pid at once and leaves the child running (a
# watcher), and "poll" answers its exit code once it has ended, else null. It imports what the
# commands import and never runs one itself, so every child starts from the state a fresh process
# has after its imports (no thread either: the server has none to fork). The child runs on this
# script's top level: an exception it does not catch ends it as it ends the console script (a
# traceback, exit code 1).
FORK_SERVER = r"""
import json, os, sys, threading
script = sys.argv[1]
sys.path[0] = os.path.dirname(script)  # the console script's folder, not the current one
import packet.cli
import packet.demo, packet.mailings.copies, packet.mailings.notice, packet.pipeline.build, packet.pipeline.seal
import packet.pipeline.verify, packet.records.export, packet.service.board, packet.service.status
import packet.service.watch
import holidays.countries  # what the first deadline a command computes imports
import gc
gc.freeze()  # the imported objects stay out of the children's collections (Python's advice for a pre-fork server):
             # without it each child's exit touched, and so copied, the whole inherited heap (0.17 s -> 0.05 s)
assert threading.active_count() == 1, "a fork server must hold no thread"
requests = os.fdopen(os.dup(0), "r")
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
for line in requests:
    request = json.loads(line)
    if request["op"] == "poll":
        pid, status = os.waitpid(request["pid"], os.WNOHANG)
        print(json.dumps(os.waitstatus_to_exitcode(status) if pid else None), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        requests.close()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, name in ((1, request["out"]), (2, request["err"])):
            os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), fd)
        sys.argv = [script, *request["args"]]
        packet.cli.entry()
    print(pid, flush=True)
    if request["op"] == "run":
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without IMR_* variables (a test must not read the developer's setup) and
    without pytest's note of the test and phase running now, which changes at every setup, call and
    teardown: with it, no command of a later test matched the fork server's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMR_") and k != "PYTEST_CURRENT_TEST"}
    env.update(extra)
    return env


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(args: list[str], cwd: Path, *, timeout: float = 300, env: dict | None = None, fresh: bool = False) -> Run:
    if not fresh and env is None and _Forks.can_fork(clean_env()):
        return _Forks.run(args, cwd, timeout)
    done = subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env or clean_env(), errors="replace")
    return Run(done.returncode, done.stdout, done.stderr)


def start(args: list[str], cwd: Path, stdout: Path, stderr: Path, *, env: dict[str, str]):
    """A long-running command (a watcher) forked from the server, its output in two files: a handle
    with what the tests use of a Popen (pid, poll, wait, send_signal, kill, returncode); None when
    it must start fresh (`env` is not the one the server started under)."""
    if not _Forks.can_fork(env):
        return None
    return _Forks.start(args, cwd, stdout, stderr, env)


class Forked:
    """A child of the fork server (not of this process): its exit status comes from the server,
    which keeps it unreaped, and so its pid reserved, until a poll sees it ended."""

    def __init__(self, args: list[str], pid: int):
        self.args = args
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = _Forks.poll(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.02)  # the polling interval of this wait for the process to end
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class _Forks:
    """This test process's fork server, started at its first use, under the environment the test
    process had then; a command asked under another environment starts fresh instead."""

    process: subprocess.Popen | None = None
    pending = b""  # what the server wrote that no answer has taken yet
    started_with: dict[str, str] | None = None
    lock = threading.RLock()  # one request and its answers at a time (a test may poll from a thread)

    @classmethod
    def can_fork(cls, env: dict[str, str]) -> bool:
        if cls.started_with is None:
            cls.started_with = clean_env()
        return env == cls.started_with

    @classmethod
    def _request(cls, request: dict) -> None:
        if cls.process is None or cls.process.poll() is not None:
            cls.process = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(SCRIPT)], env=cls.started_with,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            cls.pending = b""
        cls.process.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
        cls.process.stdin.flush()

    @classmethod
    def run(cls, args: list[str], cwd: Path, timeout: float) -> Run:
        with cls.lock, tempfile.TemporaryDirectory(prefix="imr-cli-") as folder:
            out, err = Path(folder) / "out", Path(folder) / "err"
            cls._request({"op": "run", "cwd": os.path.abspath(cwd), "env": clean_env(), "out": str(out),
                          "err": str(err), "args": [str(arg) for arg in args]})
            pid = int(cls._answer())
            if not cls._answered_within(timeout):
                with contextlib.suppress(ProcessLookupError):  # it ended just now: its code comes all the same
                    os.kill(pid, signal.SIGKILL)
                cls._answer()
                raise subprocess.TimeoutExpired([str(SCRIPT), *args], timeout)
            code = int(cls._answer())
            return Run(code, out.read_text(errors="replace"), err.read_text(errors="replace"))

    @classmethod
    def start(cls, args: list[str], cwd: Path, stdout: Path, stderr: Path, env: dict[str, str]) -> Forked:
        for path in (stdout, stderr):  # there at once, as a Popen's are (the child opens them again)
            Path(path).write_bytes(b"")
        with cls.lock:
            cls._request({"op": "start", "cwd": os.path.abspath(cwd), "env": env, "out": str(stdout),
                          "err": str(stderr), "args": [str(arg) for arg in args]})
            return Forked([str(SCRIPT), *args], int(cls._answer()))

    @classmethod
    def poll(cls, pid: int) -> int | None:
        with cls.lock:
            cls._request({"op": "poll", "pid": pid})
            return json.loads(cls._answer())

    @classmethod
    def _answered_within(cls, timeout: float | None) -> bool:
        """Whether the server's next answer is there, or comes within `timeout` seconds. The answers are
        read from the pipe's descriptor into `pending` (not through a buffered file, which may already
        hold the next line when the child ended at once: a `select` on the pipe would then wait for
        nothing, and the answers would fall out of step with the requests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in cls.pending:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and (left <= 0 or not select.select([cls.process.stdout.fileno()], [], [], left)[0]):
                return False
            chunk = os.read(cls.process.stdout.fileno(), 65536)
            assert chunk, "the fork server ended"
            cls.pending += chunk
        return True

    @classmethod
    def _answer(cls) -> str:
        cls._answered_within(None)  # blocks until a whole line is there (or asserts the server ended)
        line, cls.pending = cls.pending.split(b"\n", 1)
        return line.decode("utf-8")

    @classmethod
    def stop(cls) -> None:
        """End the server when the test process ends (it leaves once its input closes), so no
        process or pipe is left for the interpreter to warn about."""
        process, cls.process = cls.process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


atexit.register(_Forks.stop)


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
