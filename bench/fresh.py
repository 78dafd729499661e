"""Fresh-process measurements (issue 17): the command line as a clerk, supervisor or auditor runs it.

Owns: running `imr-packet build CASE-DIR` and `imr-packet verify SUBMISSION --rebuild` as
subprocesses (interpreter start, imports and worker start-up inside the clock), with a folder of
their own (imr.toml, outbox/archive/state), and sealing a case once so that it can be verified.
Must not: import the service (everything goes through the command line), assert anything.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from . import measure

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEAL_REASON = "benchmark: synthetic case without a grievance resolution letter"


# The C chains read no scans, so neither do the measured builds: OCR has its own row (bench.ocrbench).
OCR_OFF = "[ocr]\nenabled = false\n"

def command() -> list[str]:
    """The installed console script beside this interpreter (as `make setup` installs it), else
    `python -m packet.cli` (the same code, one module lookup more)."""
    script = Path(sys.executable).with_name("imr-packet")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "packet.cli"]


def environment() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMR_")}  # our folders, not the caller's
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
    return env


def make_root(root: Path, inbox: Path) -> Path:
    """A configuration of its own under `root`; returns the imr.toml path."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("outbox", "archive", "state"):
        (root / name).mkdir(exist_ok=True)
    config = root / "imr.toml"
    config.write_text("[paths]\n" + "".join(
        f'{key} = "{path}"\n' for key, path in (("inbox", inbox), ("outbox", root / "outbox"),
                                               ("archive", root / "archive"), ("state", root / "state"))) + OCR_OFF,
        encoding="utf-8")
    return config


def cli(args: list[str], config: Path, *, sample_tree: bool = False) -> measure.Run:
    return measure.run([*command(), *args, "--config", str(config), "-q"], cwd=config.parent,
                       env=environment(), sample_tree=sample_tree, check=False, timeout=1800.0)


def build(case_dir: Path, root: Path, *, sample_tree: bool = False) -> measure.Run:
    """`imr-packet build CASE-DIR` in a fresh process with a fresh state/ under `root`."""
    if root.exists():
        shutil.rmtree(root)
    config = make_root(root, case_dir.parent)
    return cli(["build", str(case_dir)], config, sample_tree=sample_tree)


def seal(case_dir: Path, root: Path) -> Path:
    """Build and seal a copy of the case once (with a recorded override: the generated cases hold no
    grievance resolution letter); returns the submission folder. A seal moves the originals into the
    archive, so it works on a copy under `root/inbox`: the case itself stays for the C chain."""
    inbox = root / "inbox"
    shutil.copytree(case_dir, inbox / case_dir.name)
    config = make_root(root, inbox)
    result = cli(["seal", case_dir.name, "--override", SEAL_REASON], config)
    if result.returncode != 0:
        raise RuntimeError(f"seal exited {result.returncode}: {result.stderr_tail[-500:]}")
    submissions = sorted((root / "outbox" / case_dir.name).glob("submission-*"))
    if not submissions:
        raise RuntimeError("seal reported success but wrote no submission folder")
    return submissions[-1]


def verify_rebuild(submission: Path, root: Path) -> measure.Run:
    """`imr-packet verify SUBMISSION --rebuild` in a fresh process (exit 0: every check held)."""
    return cli(["verify", str(submission), "--rebuild"], root / "imr.toml")
