"""Watcher latency: from a file's last write to a draft that lists it.

Owns: starting `imr-packet watch` in its own process on a generated case, waiting for its first
draft, then dropping one new 1-page document at a time and timing until the draft's manifest
lists it. Every wait is on a condition with a deadline; the watcher is stopped with SIGTERM (then
SIGKILL if it does not stop) before returning.
Must not: assert anything; it reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from .cases import GeneratedCase, add_one_page_document
from .measure import Series

FIRST_DRAFT_TIMEOUT = 120.0
UPDATE_TIMEOUT = 60.0


# The C chains read no scans, so neither do the measured builds: OCR has its own row (bench.ocrbench).
OCR_OFF = "[ocr]\nenabled = false\n"

def _draft_sources(manifest: Path) -> set[str] | None:
    try:
        with open(manifest, encoding="utf-8") as handle:
            return {d.get("source") for d in json.load(handle).get("documents", [])}
    except (OSError, ValueError):
        return None  # not there yet, or being replaced


def _wait_for(condition: Callable[[], bool], timeout: float, proc: subprocess.Popen, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"the watcher exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.02)
    raise TimeoutError(f"no {what} within {timeout:.0f}s")


def measure_watcher(case: GeneratedCase, root: Path, *, repeats: int, cap: float,
                    note: Callable[[str], None]) -> dict:
    from packet.config import Watch

    settings = Watch()
    root.mkdir(parents=True, exist_ok=True)
    inbox = case.case_dir.parent
    config_file = root / "imr.toml"
    config_file.write_text(
        "[paths]\n" + "".join(f'{key} = "{path}"\n' for key, path in (
            ("inbox", inbox), ("outbox", root / "outbox"), ("archive", root / "archive"),
            ("state", root / "state"))) + OCR_OFF, encoding="utf-8")
    manifest = root / "outbox" / case.case_dir.name / "draft" / "manifest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMR_")}
    log_path = root / "watch.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "packet.cli", "watch", "--config", str(config_file)],
                                cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        latency = Series()
        try:
            started = time.monotonic()
            expected = {f.relpath for f in case.files}
            _wait_for(lambda: expected <= (_draft_sources(manifest) or set()), FIRST_DRAFT_TIMEOUT, proc,
                      "first draft")
            note(f"watcher: first draft after {time.monotonic() - started:.1f}s")
            spent = 0.0
            while len(latency.runs) < repeats and (not latency.runs or spent < cap):
                t0 = time.monotonic()
                case = add_one_page_document(case, 100 + len(latency.runs))
                new = case.files[-1].relpath
                last_write = time.monotonic()  # the file is closed: this was its last write
                seen = _wait_for(lambda: new in (_draft_sources(manifest) or set()), UPDATE_TIMEOUT, proc,
                                 "updated draft")
                latency.add(seen - last_write)
                spent += time.monotonic() - t0
                note(f"watcher run {len(latency.runs)}: {latency.runs[-1]:.2f}s")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    limit = settings.settle_seconds + settings.debounce_seconds + 1.0
    return {"case": {"pages": case.pages - len(latency.runs), "documents": len(case.files) - len(latency.runs)},
            "latency": latency.to_json(), "settle_s": settings.settle_seconds,
            "debounce_s": settings.debounce_seconds, "limit_s": limit}
