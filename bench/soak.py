"""The soak (issue 17): the watcher runs for a long time while realistic cases arrive at a steady rate.

Run as `python -m bench.soak [--quick] [--minutes M] [--cases N] [--out FILE]`, or from `make bench`.
Owns: generating the cases before the clock (mixed text and scanned PDFs, fax TIFFs, DOCX letters,
5-300 pages each, a grievance resolution letter in each), starting `imr-packet watch` in its own
process, copying one case at a time into its inbox at a steady rate, and measuring:
- from a case's last document write to a draft whose manifest lists every document (p50/p95);
- on half of the cases, READY (the plain name the watcher looks for) is written once the draft is there: from that write (the last one)
  to a sealed submission folder (p50/p95);
- on some sealed cases, a supplement (a new document) after the seal: write -> updated draft;
- the summed RSS of the watcher's process tree every second: peak, warm-up peak, final, growth, and the
  low and the final by role (the watcher, each kind of pool worker, programs it runs);
- open file descriptors of the watcher and its child processes, at warm-up and at the end;
- errors: error lines of the service log, cases that never got a draft or a submission in time,
  and a watcher that exits.
The watcher is stopped with SIGTERM (then SIGKILL) before returning.
Must not: assert anything (it reports; the caller decides); leave files outside its work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import fresh, measure
from .cases import (GeneratedCase, GeneratedFile, new_case_folder, write_docx, write_fax_tiff,
                    write_pdf)

RSS_GROWTH_GOAL = 1.10  # final-phase peak / warm-up peak
WAIT_AFTER_DROPS = 300.0  # seconds to let the last cases finish after the last drop
SUPPLEMENT_AFTER = 3.0  # seconds between a seal and the supplement that follows it


@dataclass(frozen=True)
class SoakSettings:
    minutes: float
    cases: int
    max_pages: int
    seed: int = 17

    @classmethod
    def full(cls) -> "SoakSettings":
        return cls(minutes=20.0, cases=200, max_pages=300)

    @classmethod
    def quick(cls) -> "SoakSettings":
        return cls(minutes=2.0, cases=8, max_pages=60)


@dataclass
class Dropped:
    case: GeneratedCase
    ready: bool
    supplement: bool
    last_write: float = 0.0
    draft_at: float | None = None
    ready_at: float | None = None
    sealed_at: float | None = None
    supplement_name: str | None = None
    supplement_at: float | None = None
    supplement_draft_at: float | None = None


def generate(staging: Path, index: int, rng: random.Random, max_pages: int) -> GeneratedCase:
    """One realistic case: 5..max_pages pages in 2..8 documents of mixed kinds, a resolution letter."""
    name = f"SOAK-{index:04d}"
    case_dir = new_case_folder(staging, name)
    total = rng.randint(5, max_pages)
    files: list[GeneratedFile] = []
    letter = "correspondence/Grievance resolution letter.pdf"
    write_pdf(case_dir / letter, 1, rng, title="Grievance resolution letter", header="GRIEVANCE RESOLUTION")
    files.append(GeneratedFile(letter, 1, "pdf-text"))
    left = total - 1
    number = 0
    while left > 0:
        number += 1
        kind = rng.choices(("pdf-text", "pdf-scanned", "tiff", "docx"), weights=(6, 1, 2, 1))[0]
        if kind == "tiff":
            pages = min(left, rng.randint(1, 3))
            relpath = f"medical-records/Fax {number:03d}.tif"
            write_fax_tiff(case_dir / relpath, pages, rng)
        elif kind == "docx":
            pages = min(left, rng.randint(1, 2))
            relpath = f"correspondence/Letter of medical necessity {number:03d}.docx"
            write_docx(case_dir / relpath, pages, rng, title="Letter of medical necessity")
        else:
            pages = left if number >= 7 else min(left, max(1, rng.randint(1, max(1, total // 3))))
            if kind == "pdf-scanned":
                pages = min(pages, 6)  # page-sized images are slow to make and large
            relpath = f"medical-records/Progress notes {number:03d}.pdf"
            write_pdf(case_dir / relpath, pages, rng, title="Progress notes", scanned=kind == "pdf-scanned")
        files.append(GeneratedFile(relpath, pages, kind))
        left -= pages
    return GeneratedCase(case_dir=case_dir, files=tuple(files))


def _manifest_sources(path: Path) -> set[str] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return {d.get("source") for d in json.load(handle).get("documents", [])}
    except (OSError, ValueError):
        return None


def _descendants(pid: int) -> list[int]:
    return measure.descendants(measure._process_table(), pid)


def _open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50_s": None, "p95_s": None, "max_s": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"count": len(ordered), "p50_s": round(statistics.median(ordered), 2), "p95_s": round(p95, 2),
            "max_s": round(ordered[-1], 2)}


def _log_errors(log_path: Path) -> list[str]:
    """Error lines of the watcher's JSON log (their event names only: the log holds no PHI anyway)."""
    errors = []
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ["the watcher log could not be read"]
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                errors.append("traceback in the watcher log")
            continue
        if str(record.get("level", "")).lower() in ("error", "critical"):
            errors.append(str(record.get("event") or record.get("msg") or record.get("message") or "error"))
    return errors


def _role(pid: int, root: int) -> str:
    """What a process of the watcher's tree is: the watcher, a pool worker by its role, or a program's name."""
    if pid == root:
        return "watcher"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return "gone"
    if "--worker" in argv[:-1]:
        return f"{argv[argv.index('--worker') + 1]} worker"
    return Path(argv[0]).name or "unknown"


def roles_rss_kb(root: int) -> dict[str, int]:
    """RSS of the watcher's tree by role (several processes of one role are summed)."""
    table = measure._process_table()
    by_role: dict[str, int] = {}
    for pid in measure.tree_pids(table, root):  # a child not yet in its own program is its parent's memory
        role = _role(pid, root)
        by_role[role] = by_role.get(role, 0) + table[pid].rss_pages * measure.PAGE_SIZE // 1024
    return by_role


@dataclass
class _Sampler:
    """Every second: the tree's RSS by role (the tree's sum is their total)."""
    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    roles: list[dict[str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            by_role = roles_rss_kb(self.pid)
            self.samples.append((time.monotonic(), sum(by_role.values())))
            self.roles.append(by_role)


def run_soak(settings: SoakSettings, work: Path, *, note: Callable[[str], None] = lambda text: None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(settings.seed)
    staging, inbox = work / "staging", work / "inbox"
    staging.mkdir(exist_ok=True)
    inbox.mkdir(exist_ok=True)
    note(f"soak: generating {settings.cases} cases of 5-{settings.max_pages} pages")
    cases = [generate(staging, i + 1, rng, settings.max_pages) for i in range(settings.cases)]
    plan = [Dropped(case, ready=i % 2 == 0, supplement=i % 6 == 0) for i, case in enumerate(cases)]
    config = fresh.make_root(work, inbox)
    log_path = work / "watch.log"
    span = settings.minutes * 60.0
    interval = span / max(1, settings.cases)
    errors: list[str] = []
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([*fresh.command(), "watch", "--config", str(config)], cwd=work,
                                env=fresh.environment(), stdout=log_file, stderr=subprocess.STDOUT)
        sampler = _Sampler(proc.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        started = time.monotonic()
        warm: dict = {}
        try:
            next_drop, dropped = started, 0
            deadline = started + settings.minutes * 60.0 + WAIT_AFTER_DROPS
            while time.monotonic() < deadline:
                now = time.monotonic()
                if proc.poll() is not None:
                    errors.append(f"the watcher exited ({proc.returncode})")
                    break
                if dropped < len(plan) and now >= next_drop:
                    _drop(plan[dropped], inbox)
                    note(f"soak: dropped {plan[dropped].case.case_dir.name} ({plan[dropped].case.pages} pages), "
                         f"{sum(d.draft_at is not None for d in plan)} drafts and "
                         f"{sum(d.sealed_at is not None for d in plan)} seals so far")
                    dropped += 1
                    next_drop += interval
                if not warm and now - started >= span * 0.25 and any(d.draft_at for d in plan[:dropped]):
                    warm = {"at_s": round(now - started, 1), "open_fds": _open_fds(proc.pid),
                            "children": len(_descendants(proc.pid))}
                _poll(plan[:dropped], settings, work, inbox)
                if dropped == len(plan) and all(_finished(d) for d in plan):
                    break
                time.sleep(0.1)
            time.sleep(3.0)  # idle: let the pool settle before the end figures
            end_roles = roles_rss_kb(proc.pid)
            end = {"open_fds": _open_fds(proc.pid), "children": len(_descendants(proc.pid)),
                   "rss_mb": round(sum(end_roles.values()) / 1024, 1), "roles": end_roles}
        finally:
            sampler.stop.set()
            thread.join()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                errors.append("the watcher did not stop on SIGTERM within 60 s")
        elapsed = time.monotonic() - started
    errors += _log_errors(log_path)
    for d in plan:
        name = d.case.case_dir.name
        if d.last_write and d.draft_at is None:
            errors.append(f"{name}: no draft")
        if d.ready_at and d.sealed_at is None:
            errors.append(f"{name}: not sealed")
        if d.supplement_at and d.supplement_draft_at is None:
            errors.append(f"{name}: supplement not in a draft")
    if not warm:
        warm = {"at_s": None, "open_fds": None, "children": None}
    return _report(settings, plan, sampler, started, elapsed, warm, end, errors, log_path)


def _drop(d: Dropped, inbox: Path) -> None:
    """Copy the case's documents into the inbox as a clerk would (case.toml first)."""
    target = inbox / d.case.case_dir.name
    target.mkdir()
    shutil.copy2(d.case.case_dir / "case.toml", target / "case.toml")
    for f in d.case.files:
        (target / f.relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(d.case.case_dir / f.relpath, target / f.relpath)
    d.last_write = time.monotonic()


def _poll(dropped: list[Dropped], settings: SoakSettings, work: Path, inbox: Path) -> None:
    for d in dropped:
        if _finished(d):
            continue
        name = d.case.case_dir.name
        case_out = work / "outbox" / name
        if d.draft_at is None:
            sources = _manifest_sources(case_out / "draft" / "manifest.json") or set()
            if {f.relpath for f in d.case.files} <= sources:
                d.draft_at = time.monotonic()
                if d.ready:
                    (inbox / name / "READY").write_text("ready\n", encoding="utf-8")
                    d.ready_at = time.monotonic()
        elif d.ready and d.sealed_at is None:
            # sealed: the submission is published and READY is gone (the seal's last step in the inbox)
            if not (inbox / name / "READY").exists() and any(
                    p.is_dir() and (p / "manifest.json").is_file() for p in case_out.glob("submission-*")):
                d.sealed_at = time.monotonic()
        elif d.supplement and d.supplement_at is None and time.monotonic() - d.sealed_at >= SUPPLEMENT_AFTER:
            d.supplement_name = "medical-records/Supplemental record.pdf"
            write_pdf(inbox / name / d.supplement_name, 2, random.Random(len(name)), title="Supplement")
            d.supplement_at = time.monotonic()
        elif d.supplement_at is not None and d.supplement_draft_at is None:
            if d.supplement_name in (_manifest_sources(case_out / "draft" / "manifest.json") or set()):
                d.supplement_draft_at = time.monotonic()


def _finished(d: Dropped) -> bool:
    if not d.last_write or d.draft_at is None:
        return False
    if d.ready and d.sealed_at is None:
        return False
    return not (d.supplement and d.ready) or d.supplement_draft_at is not None


def _report(settings: SoakSettings, plan: list[Dropped], sampler: _Sampler, started: float,
            elapsed: float, warm: dict, end: dict, errors: list[str], log_path: Path) -> dict:
    span = settings.minutes * 60.0
    samples = sampler.samples
    # Peaks follow the size of the case being built at that moment, so growth is measured on the low-water
    # mark (what the tree keeps between builds): the lowest sample of the second quarter (after the
    # first quarter's warm-up: imports, worker start, fonts) against the tree when idle at the end.
    warm_low = min((kb for t, kb in samples if span * 0.25 <= t - started < span * 0.5), default=0)
    warm_peak = max((kb for t, kb in samples if span * 0.25 <= t - started < span * 0.5), default=0)
    late_peak = max((kb for t, kb in samples if t - started >= span * 0.5), default=0)
    peak = max((kb for _, kb in samples), default=0)
    final_kb = (end.get("rss_mb") or 0) * 1024
    # The same two moments by role: which process holds what the tree kept
    low_at = min((i for i, (t, _) in enumerate(samples) if span * 0.25 <= t - started < span * 0.5),
                 key=lambda i: samples[i][1], default=None)
    low_roles = sampler.roles[low_at] if low_at is not None else {}
    end_roles = end.get("roles") or {}
    by_role = {role: {"warm_low": round(low_roles.get(role, 0) / 1024, 1),
                      "final": round(end_roles.get(role, 0) / 1024, 1)}
               for role in sorted(set(low_roles) | set(end_roles))}
    growth = round(final_kb / warm_low, 3) if warm_low and final_kb else None
    kinds: dict[str, int] = {}
    for d in plan:
        for f in d.case.files:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
    dropped = [d for d in plan if d.last_write]
    return {
        "minutes": settings.minutes, "seconds_total": round(elapsed, 1), "cases_dropped": len(dropped),
        "cases_planned": len(plan), "interval_s": round(span / max(1, len(plan)), 2),
        "pages": sum(d.case.pages for d in dropped), "files_by_kind": kinds,
        "ready_cases": sum(d.ready for d in dropped), "supplements": sum(d.supplement_at is not None for d in plan),
        "draft_latency": _percentiles([d.draft_at - d.last_write for d in dropped if d.draft_at]),
        "seal_latency": _percentiles([d.sealed_at - d.ready_at for d in plan if d.sealed_at and d.ready_at]),
        "supplement_latency": _percentiles([d.supplement_draft_at - d.supplement_at for d in plan
                                            if d.supplement_draft_at and d.supplement_at]),
        "rss_mb": {"peak": round(peak / 1024, 1), "warm_peak": round(warm_peak / 1024, 1),
                   "warm_low": round(warm_low / 1024, 1), "late_peak": round(late_peak / 1024, 1),
                   "final": end.get("rss_mb"), "by_role": by_role},
        "rss_growth": {"ratio": growth, "ratio_of": "tree RSS idle at the end / lowest tree RSS of the second "
                                                    "quarter of the drops (after warm-up)",
                       "goal": RSS_GROWTH_GOAL, "met": None if growth is None else growth <= RSS_GROWTH_GOAL},
        "warm": warm, "end": {k: end.get(k) for k in ("open_fds", "children")},
        "errors": len(errors), "error_list": errors[:50],
        "method": "cases generated before the clock, copied into the inbox one every interval; "
                  "draft: last document write -> draft manifest lists every document; sealed: READY "
                  "written (the last write) -> submission-NN/manifest.json; RSS summed over the watcher's "
                  "process tree every second",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about two minutes, 8 small cases")
    parser.add_argument("--minutes", type=float, help="drop phase length (default 20, quick 2)")
    parser.add_argument("--cases", type=int, help="cases dropped at a steady rate (default 200, quick 8)")
    parser.add_argument("--max-pages", type=int, help="largest case (default 300, quick 60)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    base = SoakSettings.quick() if args.quick else SoakSettings.full()
    settings = SoakSettings(minutes=args.minutes or base.minutes, cases=args.cases or base.cases,
                            max_pages=args.max_pages or base.max_pages)
    if settings.cases < 1 or settings.minutes <= 0 or settings.max_pages < 5:
        parser.error("--cases >= 1, --minutes > 0 and --max-pages >= 5")
    work = args.keep or Path(tempfile.mkdtemp(prefix="imr-soak-"))
    started = time.monotonic()

    def note(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    try:
        entry = run_soak(settings, work, note=note)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(entry, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 1 if entry["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
