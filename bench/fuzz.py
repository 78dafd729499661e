"""Fuzzing the intake and the assembly: mutated PDFs and images through a whole case build.

    python -m bench.fuzz [--count 2000] [--seed 7] [--batch 40] [--json bench/fuzz.json]

Seeds are the real-world PDFs and images of ../shared/corpus (read in place) and small files made
here; each mutant is a seeded mix of byte flips, truncation, a duplicated or spliced chunk, and a PDF
number (a /Length, /Count, /Width, ...) made huge or negative. Mutants go into case folders, `--batch`
at a time, and each case is built by `imr-packet build` in a fresh process (conversion in the worker
pool under its memory and time limits, then classification, the IMR packet and the mailings), with
a wall-clock limit per batch and the peak memory of the whole process tree sampled from /proc.

A run passes when no build crashes (exit 0, or the documented refusal exits) or hangs, every mutant is
either taken (in the draft manifest) or refused (in `_rejected/` with its note), and the peak memory
of the process tree stays under `--memory-mib`. Exit 1 otherwise, naming the batch and the seed, so
any failure can be replayed with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
CASE_TOML = """\
case_id = "{case_id}"
review_type = "standard"
dispute_type = "medical_necessity"
dmhc_notice_received = 2026-11-25T16:10:00-08:00
disputed_service = "Lumbar spinal fusion L4-L5"
language = "en"

[member]
name = "Rosalind Q. Testmember"
member_id = "M998877665"
date_of_birth = 1961-04-09
address = ["1200 Poppy Lane, Apt 3", "Sacramento, CA 95814"]

[provider]
name = "Dr. Alan Spineworth"
address = ["Capitol Orthopedics", "55 J Street", "Sacramento, CA 95814"]
"""
SUFFIX = {b"%PDF": ".pdf", b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"II*\x00": ".tif", b"MM\x00*": ".tif"}
NUMBER_KEYS = re.compile(rb"/(Length|Count|Width|Height|BitsPerComponent|Columns|Rows|N|Size|Prev|First)\s+(\d+)")


def made_seeds() -> list[bytes]:
    """Small files made here, so a run works without the corpus."""
    import io

    from PIL import Image, ImageDraw
    from reportlab.pdfgen import canvas

    seeds = []
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer)
    for page in range(3):
        c.drawString(72, 720, f"Progress note page {page + 1} Rosalind Q. Testmember M998877665")
        c.showPage()
    c.save()
    seeds.append(buffer.getvalue())
    image = Image.new("L", (850, 1100), 255)
    ImageDraw.Draw(image).text((60, 60), "Laboratory report Rosalind Q. Testmember", fill=0)
    for fmt, kwargs in (("PNG", {}), ("JPEG", {"quality": 70}), ("TIFF", {"compression": "group4"})):
        out = io.BytesIO()
        (image.convert("1") if fmt == "TIFF" else image).save(out, fmt, **kwargs)
        seeds.append(out.getvalue())
    return seeds


def corpus_seeds(limit_bytes: int = 3 * 1024 * 1024) -> list[bytes]:
    seeds = []
    for folder in ("pdf", "images"):
        for path in sorted((CORPUS / folder).glob("*")) if (CORPUS / folder).is_dir() else ():
            if path.is_file() and path.stat().st_size <= limit_bytes:
                seeds.append(path.read_bytes())
    return seeds


def mutate(data: bytes, rng: random.Random, other: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("flip", "flip", "truncate", "duplicate", "splice", "number", "insert"))
        if not out:
            out = bytearray(other[:64])
        if kind == "flip":
            for _ in range(rng.randint(1, 16)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == "truncate" and len(out) > 16:
            del out[rng.randrange(8, len(out)):]
        elif kind == "duplicate":
            start = rng.randrange(len(out))
            chunk = out[start:start + rng.randint(1, 4096)]
            at = rng.randrange(len(out))
            out[at:at] = chunk * rng.randint(1, 8)
        elif kind == "splice" and other:
            start = rng.randrange(len(other))
            out[rng.randrange(len(out)):] = other[start:start + rng.randint(16, 65536)]
        elif kind == "number":
            matches = list(NUMBER_KEYS.finditer(bytes(out)))
            if matches:
                match = rng.choice(matches)
                value = rng.choice((b"0", b"-1", b"2147483648", b"99999999999", b"65535"))
                out[match.start(2):match.end(2)] = value
        elif kind == "insert":
            at = rng.randrange(len(out))
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(out)


def suffix_of(data: bytes, original: bytes) -> str:
    for magic, suffix in SUFFIX.items():
        if original.startswith(magic):
            return suffix
    return ".pdf"


class TreeMemory:
    """Peak resident memory of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                children.setdefault(int(fields[1]), []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_batch(root: Path, number: int, files: list[tuple[str, bytes]], timeout: float,
              open_timeout: float | None = None, ocr_dpi: int | None = None) -> dict:
    inbox = root / "inbox"
    case_id = f"FUZZ-{number:04d}"
    case_dir = inbox / case_id
    (case_dir / "medical-records").mkdir(parents=True)
    (case_dir / "case.toml").write_text(CASE_TOML.format(case_id=case_id))
    for name, data in files:
        (case_dir / "medical-records" / name).write_bytes(data)
    config = root / "imr.toml"
    config.write_text("[paths]\n" + "".join(f'{k} = "{root / k}"\n' for k in ("inbox", "outbox", "archive", "state"))
                      + "[watch]\nretry_attempts = 1\n" + (f"[ocr]\npdf_dpi = {ocr_dpi}\n" if ocr_dpi else "")
                      + (f"[limits]\npdf_open_timeout_seconds = {open_timeout:g}\n" if open_timeout else ""))
    for folder in ("outbox", "archive", "state"):
        (root / folder).mkdir(exist_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "packet.cli", "--config", str(config), "--log-format", "json",
                             "build", str(case_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=root, start_new_session=True)
    memory = TreeMemory(proc.pid)
    try:
        _, err = proc.communicate(timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, err = proc.communicate()
        hung = True
    peak = memory.stop()
    manifest_path = root / "outbox" / case_id / "draft" / "manifest.json"
    taken = set()
    if manifest_path.is_file():
        taken = {Path(d["source"]).name for d in json.loads(manifest_path.read_text())["documents"]}
    rejected_dir = case_dir / "_rejected"
    # A refused file keeps its name, after its folder ("medical-records - fuzz-00001.pdf"), with a note beside it.
    notes = {p.name[:-len(".why.txt")] for p in rejected_dir.glob("*.why.txt")} if rejected_dir.is_dir() else set()
    refused = {name for name, _ in files if any(note == name or note.endswith(" - " + name) for note in notes)
               and not (case_dir / "medical-records" / name).exists()}
    # A file whose failure may be passing (a worker that died once, a time limit on a loaded
    # machine) is retried by the watcher before it is refused: the status note lists it.
    note = (case_dir / "_STATUS.txt").read_text(encoding="utf-8", errors="replace") if (case_dir / "_STATUS.txt").is_file() else ""
    retrying_part = note.split("Could not be read yet; the service will try again:", 1)[1] if "will try again:" in note else ""
    retrying = {name for name, _ in files if f"/{name}" in retrying_part.split("\n\n", 1)[0]}
    unaccounted = sorted({name for name, _ in files} - taken - refused - retrying)
    crashed = proc.returncode not in (0, 1, 3) or b"Traceback" in err
    return {"batch": number, "files": len(files), "taken": len(taken & {n for n, _ in files}),
            "refused": len(refused), "retrying": len(retrying), "unaccounted": unaccounted, "hung": hung, "crashed": crashed,
            "exit": proc.returncode, "seconds": round(time.monotonic() - started, 1),
            "peak_tree_mib": round(peak / 2**20, 1),
            "stderr_tail": err.decode("utf-8", "replace")[-600:] if crashed or hung else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="mutants in all")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=40, help="mutants per case build")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one batch may take")
    parser.add_argument("--open-timeout", type=float,
                        help="the service's per-file parsing limit ([limits] pdf_open_timeout_seconds) for these builds; "
                             "default: the service's own. A mutant that hits it is refused with the timeout reason")
    parser.add_argument("--ocr-dpi", type=int,
                        help="the resolution scanned PDF pages are read at ([ocr] pdf_dpi; the service's default "
                             "otherwise): what a mutant does to the parsers is the same at a lower one, read sooner")
    parser.add_argument("--memory-mib", type=float, default=6144, help="bound on the process tree's peak memory")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the case folders")
    parser.add_argument("--only-batch", type=int, help="build only this batch (the mutants are made as in a full run)")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    seeds = corpus_seeds() + made_seeds()
    work = Path(tempfile.mkdtemp(prefix="imr-fuzz-"))
    batches, started = [], time.monotonic()
    try:
        made = 0
        number = 0
        while made < args.count:
            number += 1
            files = []
            for _ in range(min(args.batch, args.count - made)):
                original = rng.choice(seeds)
                data = mutate(original, rng, rng.choice(seeds))
                files.append((f"fuzz-{made:05d}{suffix_of(data, original)}", data))
                made += 1
            if args.only_batch is not None and number != args.only_batch:
                continue
            result = run_batch(work / f"b{number:04d}", number, files, args.timeout, args.open_timeout, args.ocr_dpi)
            batches.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "stderr_tail"}), flush=True)
            if args.json:  # after every batch: a run stopped early leaves what it measured, marked incomplete
                write_figures(args.json, summarize(batches, args, started, complete=False), batches)
            if not args.keep:
                shutil.rmtree(work / f"b{number:04d}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarize(batches, args, started, complete=True)
    failed = [b for b in batches if b["batch"] in summary["failed_batches"]]
    print(json.dumps(summary))
    for b in failed:
        print(f"batch {b['batch']} (seed {args.seed}): exit {b['exit']}, hung {b['hung']}, unaccounted "
              f"{b['unaccounted'][:5]}\n{b['stderr_tail']}", file=sys.stderr)
    if args.json:
        write_figures(args.json, summary, batches)
    return 1 if failed else 0


def summarize(batches: list[dict], args, started: float, *, complete: bool) -> dict:
    """The run's figures; `complete` is False while (or when) the run has not built every batch."""
    summary = {
        "complete": complete and args.only_batch is None, "planned_mutants": args.count,
        "mutants": sum(b["files"] for b in batches), "seed": args.seed, "batches": len(batches),
        "taken": sum(b["taken"] for b in batches), "refused": sum(b["refused"] for b in batches),
        "retrying": sum(b.get("retrying", 0) for b in batches),
        "unaccounted": sum(len(b["unaccounted"]) for b in batches),
        "crashes": sum(b["crashed"] for b in batches), "hangs": sum(b["hung"] for b in batches),
        "peak_tree_mib": max((b["peak_tree_mib"] for b in batches), default=0),
        "memory_bound_mib": args.memory_mib, "seconds": round(time.monotonic() - started, 1),
    }
    summary["failed_batches"] = [b["batch"] for b in batches if b["crashed"] or b["hung"] or b["unaccounted"]
                                 or b["peak_tree_mib"] > args.memory_mib]
    return summary


def write_figures(path: Path, summary: dict, batches: list[dict]) -> None:
    path.write_text(json.dumps({"summary": summary, "batches": batches}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
