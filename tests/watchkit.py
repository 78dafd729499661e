"""The watch service driven as clerks drive it: a temporary installation and its watcher processes.

Shared by the tests of packet.service (test_watch, test_progress, test_lock, ...). Every wait is a
condition with a deadline (`wait_for`), never a bare sleep.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import clikit
import pytest
from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME

SETTLE = 0.4
DEBOUNCE = 0.3
# A file that fails to parse is retried until the watcher has seen it unchanged this long (the
# service's default is 60 s): the cases here hold an empty "scan", refused only once it is stable.
STABLE = 3.0
PHI = (MEMBER_NAME, MEMBER_ID, MEMBER_DOB.isoformat(), "Rosalind", "Testmember")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_for(condition, *, timeout: float, what: str, service: "Service | None" = None):
    """Poll `condition` until it returns a true value or the deadline passes (then fail, saying what)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if service is not None:
            service.check_alive()
        if time.monotonic() > deadline:
            detail = service.diagnostics() if service is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail}")
        time.sleep(0.05)  # the polling interval of this condition wait


def document_text(case_id: str, index: int, kind: str = "Progress note") -> str:
    return (f"{kind} {index} for case {case_id}\nPatient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\n"
            f"Date of birth: {MEMBER_DOB.isoformat()}\nVisit {index}: lumbar pain reviewed; plan unchanged.\n")


def grievance_letter(case_id: str) -> str:
    return (f"Grievance resolution letter\nCase {case_id}\nDear {MEMBER_NAME}, member id {MEMBER_ID}.\n"
            "We reviewed your grievance. We uphold the denial of the requested lumbar fusion.\n")


class Service:
    """A temporary installation (imr.toml + folders) and the watcher processes started on it."""

    def __init__(self, root: Path, **watch):
        self.root = root
        self.inbox = root / "inbox"
        self.outbox = root / "outbox"
        self.archive = root / "archive"
        self.state = root / "state"
        settings = {"settle_seconds": SETTLE, "debounce_seconds": DEBOUNCE, "stable_seconds": STABLE, "rescan_seconds": 3,
                    "retry_attempts": 2, "retry_base_seconds": 0.2}
        settings.update(watch)
        lines = ["[paths]"] + [f'{key} = "{root / key}"' for key in ("inbox", "outbox", "archive", "state")]
        lines.append("[watch]")
        for key, value in settings.items():
            lines.append(f"{key} = {json.dumps(value)}")
        self.config_file = root / "imr.toml"
        self.config_file.write_text("\n".join(lines) + "\n")
        self.inbox.mkdir(exist_ok=True)
        self.runs: list[tuple[subprocess.Popen, Path, Path]] = []
        self.file_names: set[str] = set()  # names the log must never show

    def start(self, *args: str, config_file: Path | None = None, env: dict | None = None) -> subprocess.Popen:
        """A watcher process: forked from tests/clikit.py's server (which imported the service once;
        the child runs what the console script runs), or a fresh interpreter when `env` adds to the
        environment (an interpreter reads some variables only at start)."""
        index = len(self.runs)
        out, err = self.root / f"watch-{index}.out", self.root / f"watch-{index}.err"
        command = ["watch", "--config", str(config_file or self.config_file), *args]
        environment = clikit.clean_env(**(env or {}))
        proc = clikit.start(command, self.root, out, err, env=environment)
        if proc is None:
            with open(out, "wb") as stdout, open(err, "wb") as stderr:
                proc = subprocess.Popen([sys.executable, "-m", "packet.cli", *command],
                                        stdout=stdout, stderr=stderr, cwd=self.root, env=environment)
        self.runs.append((proc, out, err))
        return proc

    @property
    def proc(self) -> subprocess.Popen:
        return self.runs[-1][0]

    def started(self, proc: subprocess.Popen | None = None) -> None:
        proc = proc or self.proc
        index = next(i for i, run in enumerate(self.runs) if run[0] is proc)
        wait_for(lambda: any(e.get("event") == "watch_started" for e in self.events(index)), timeout=60,
                 what="the watcher to start", service=self)

    def events(self, index: int | None = None) -> list[dict]:
        """Every log line of every run (or of one run), parsed; a line that is not JSON fails the test."""
        out = []
        runs = self.runs if index is None else [self.runs[index]]
        for _, _, path in runs:  # the log is on standard error (issue 14), JSON for the service
            text = path.read_text(encoding="utf-8", errors="replace")
            complete = text.rsplit("\n", 1)[0] if not text.endswith("\n") else text
            for line in complete.splitlines():
                if line.strip() and not line.startswith("Error: "):  # the command line's one human line
                    out.append(json.loads(line))
        return out

    def check_alive(self) -> None:
        proc = self.proc
        if proc.poll() is not None and proc.returncode not in (0, -signal.SIGKILL):
            raise AssertionError(f"the watcher exited with {proc.returncode}\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        _, out, err = self.runs[-1]
        return ("--- stdout (tail) ---\n" + out.read_text(errors="replace")[-3000:] +
                "\n--- stderr (tail) ---\n" + err.read_text(errors="replace")[-3000:])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, proc: subprocess.Popen | None = None) -> int:
        proc = proc or self.proc
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Say where it was (its log and the threads of its process tree) before failing the test.
            raise AssertionError(f"the watcher did not stop within 120 s of SIGTERM\n{self.diagnostics()}\n"
                                 f"{_stacks(proc.pid)}") from None

    def close(self) -> None:
        for proc, _, _ in self.runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)

    def assert_log_clean(self) -> None:
        """The service log holds no member data and no file names (spec.md, "Logs and records")."""
        for _, out, err in self.runs:
            text = err.read_text(encoding="utf-8", errors="replace")
            for line in text.split("\n")[:-1]:  # (a line cut by kill -9 has no newline yet)
                if line.strip() and not line.startswith("Error: "):  # the command line's one human line
                    json.loads(line)  # JSON lines only
            text += out.read_text(encoding="utf-8", errors="replace")
            for secret in PHI:
                assert secret not in text, f"member data {secret!r} in the service log"
            for name in self.file_names:
                assert name not in text, f"file name {name!r} in the service log"

    # --- the case folders ---

    def drop(self, path: Path, data: bytes) -> Path:
        """A clerk's file, written at once (the name is remembered for the log check)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.file_names.add(path.name)
        self.file_names.add(path.stem)
        return path

    def draft(self, case_id: str) -> dict | None:
        try:
            return json.loads((self.outbox / case_id / "draft" / "manifest.json").read_text())
        except (OSError, ValueError):
            return None

    def draft_shas(self, case_id: str) -> list[str]:
        draft = self.draft(case_id)
        return sorted(d["sha256"] for d in draft["documents"]) if draft else []

    def submissions(self, case_id: str) -> list[dict]:
        out = []
        for path in sorted((self.outbox / case_id).glob("submission-*/manifest.json")):
            out.append(json.loads(path.read_text()))
        return out

    def rejected_shas(self, case_id: str) -> list[str]:
        folder = self.inbox / case_id / "_rejected"
        if not folder.is_dir():
            return []
        # (hidden ".tmp-*" files are what a killed atomic write leaves; the watcher sweeps them)
        return sorted(sha(p.read_bytes()) for p in folder.rglob("*")
                      if p.is_file() and not p.name.endswith(".why.txt") and not p.name.startswith("."))


@pytest.fixture
def service(tmp_path):
    svc = Service(tmp_path)
    yield svc
    svc.close()
    svc.assert_log_clean()


def pace(seconds: float) -> None:
    """The pause between chunks of a simulated slow copy (an input of the test, not a wait)."""
    threading.Event().wait(seconds)


def _stacks(pid: int) -> str:
    """What a stuck process and its children are doing, from /proc (no debugger needed)."""
    out = []
    for task in sorted(Path("/proc").glob("[0-9]*")):
        try:
            stat = (task / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if int(task.name) != pid and parent != pid:
                continue
            command = (task / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
            wchan = (task / "wchan").read_text() if (task / "wchan").exists() else "?"
            out.append(f"{task.name} {stat.rsplit(')', 1)[1].split()[0]} wchan={wchan} {command}")
        except (OSError, ValueError, IndexError):
            continue
    return "--- processes ---\n" + "\n".join(out)

