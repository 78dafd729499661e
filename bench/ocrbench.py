"""The benchmark's OCR row: a fax case read by `packet.intake.ocr` against `ocrmypdf --jobs 2`.

Owns: the fax case (multi-page G4/G3 TIFFs of generated clinic notes, lab reports and Spanish
letters, a few tilted, speckled or upside down: the scans of `bench.ocr_eval`, cycled to the page
count), the two references (the goal's: `ocrmypdf --jobs 2 -l eng+spa FILE OUT.pdf`, one file after
another, as a person would run it over a case; and a stricter one, Tesseract alone: two
`tesseract FILE OUT -l eng+spa pdf` processes side by side over the same files, `OMP_THREAD_LIMIT=1`,
as ocrmypdf runs Tesseract but without its rasterising, PDF/A and optimising steps), and the measured engine side,
run as `python -m bench.ocrbench --out FILE [--cache DIR] FILE...` in a fresh process that imports
the library before the clock starts: `ocr_pages` over every page of every file with 2 jobs (the row
runs it over the case in a few parts, each followed by the reference on the same files); with
`--cache`, pages already read come from the cache (the cached rebuild, which reads nothing).
Must not: assert anything about speed, or write outside the folders it is given.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from packet.config import Ocr
from packet.intake import ocr

from . import measure, ocr_eval

LANGUAGES = "eng+spa"
# The case's mix of scans (kinds of bench.ocr_eval), cycled to the page count: mostly plain fax pages;
# 10% tilted, 10% speckled, 4% upside down, 2% sideways (an upside-down page costs about two plain
# pages: it is read, then read again turned; a sideways page too: orientation detection, then reading).
FAX_MIX = (["clean-fax-g3"] * 24 + ["skew-3-fax-g4"] * 5 + ["spanish-fax"] * 5 + ["signature-fax"] * 4
           + ["noisy-fax-g3"] * 5 + ["lab-2col-300"] * 4 + ["upside-down-fax"] * 2 + ["sideways-300"])
random.Random(7).shuffle(FAX_MIX)


def generate_fax_case(folder: Path, pages: int, *, per_file: int | None = None, distinct: int = len(FAX_MIX),
                      seed: int = 5) -> list[Path]:
    """`pages` fax pages in multi-page TIFFs of `per_file` pages (default: 10, fewer for a small case so
    that the two reference processes both have files), cycling `distinct` generated scans."""
    per_file = per_file or max(1, min(10, pages // 4))
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {kind.name: kind for kind in ocr_eval.KINDS}
    scans: list[Image.Image] = []
    with tempfile.TemporaryDirectory(prefix="imr-ocr-bench-") as work:
        for number in range(min(distinct, pages)):
            kind = kinds[FAX_MIX[number % len(FAX_MIX)]]
            rng = random.Random(f"{seed}-{number}")
            pdf, _truth = ocr_eval.CONTENT[kind.content](rng)
            path = ocr_eval.scan(pdf, kind, rng, Path(work), f"scan-{number}")
            with Image.open(path) as image:  # a fax case: every page 1-bit at 204 x 196 dpi
                scans.append(image.convert("1") if image.mode != "1" else image.copy())
    files = []
    for start in range(0, pages, per_file):
        frames = [scans[(start + offset) % len(scans)] for offset in range(min(per_file, pages - start))]
        path = folder / f"fax-{start // per_file + 1:03d}.tif"
        # Each file says its own name, so no two files share a content hash: the engine's cache must
        # not find a page of an earlier file in a cold run (the reference reads every page).
        frames[0].save(path, format="TIFF", compression="group4", save_all=True, append_images=frames[1:],
                       dpi=(204, 196), description=f"imr-packet OCR benchmark {path.name}")
        files.append(path)
    return files


@dataclass(frozen=True)
class ReferenceRun:
    seconds: float
    cpu_seconds: float  # the tesseract processes' user + system time
    failures: int


def reference(files: list[Path], work: Path, *, jobs: int = 2) -> ReferenceRun:
    """Two `tesseract` processes at a time, one per file, each writing a searchable PDF."""
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    cpu_before = _cpu(resource.RUSAGE_CHILDREN)
    pending = list(enumerate(files))
    running: list[subprocess.Popen] = []
    started = time.perf_counter()
    failures = 0
    while pending or running:
        while pending and len(running) < jobs:
            index, path = pending.pop(0)
            running.append(subprocess.Popen(["tesseract", str(path), str(work / f"ref-{index}"), "-l", LANGUAGES,
                                             "pdf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        finished = [process for process in running if process.poll() is not None]
        for process in finished:
            failures += process.returncode != 0
            running.remove(process)
        if not finished:
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    return ReferenceRun(seconds, _cpu(resource.RUSAGE_CHILDREN) - cpu_before, failures)


def ocrmypdf_available() -> bool:
    return shutil.which("ocrmypdf") is not None


def ocrmypdf_version() -> str | None:
    try:
        run = subprocess.run(["ocrmypdf", "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.strip() or None


def ocrmypdf_reference(files: list[Path], work: Path, *, jobs: int = 2, timeout: float = 3600.0) -> ReferenceRun:
    """`ocrmypdf --jobs 2 -l eng+spa FILE OUT.pdf` for each file, one after another (its defaults
    otherwise: a PDF/A output, as the issue's reference runs it). A run over `timeout` seconds is
    killed and counted as a failure."""
    work.mkdir(parents=True, exist_ok=True)
    cpu_before = _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    failures = 0
    for index, path in enumerate(files):
        process = subprocess.Popen(["ocrmypdf", "--jobs", str(jobs), "-l", LANGUAGES, str(path),
                                    str(work / f"ocrmypdf-{index}.pdf")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            failures += process.wait(timeout=timeout) != 0
        except subprocess.TimeoutExpired:  # its Tesseract and Ghostscript processes go with it
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            failures += 1
    seconds = time.perf_counter() - started
    return ReferenceRun(seconds, _cpu(resource.RUSAGE_CHILDREN) - cpu_before, failures)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def engine(files: list[Path], out: Path, *, cache: Path | None, timeout: float = 3600.0) -> dict:
    """The engine side in a fresh process; returns its report (seconds, pages, statuses)."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "bench.ocrbench", "--out", str(out)]
    if cache is not None:
        argv += ["--cache", str(cache)]
    run = subprocess.run(argv + [str(path) for path in files], capture_output=True, text=True, env=env,
                         timeout=timeout)
    if run.returncode != 0 or not out.is_file():
        return {"error": f"engine exited {run.returncode}: {run.stderr[-800:]}"}
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ocrbench")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)

    # Throughput is measured, not the limits: no page may time out on a busy machine.
    settings = Ocr(languages=LANGUAGES, page_timeout_seconds=3600.0, file_timeout_seconds=36000.0, max_pages=100000)
    ocr.engine_version(settings.languages)  # found once per process, before the clock
    cache = ocr.OcrCache(args.cache) if args.cache else None
    loaders, indexes, digests = [], [], []
    for path in args.files:  # every page of the case in one queue, so both jobs stay busy
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as probe:
            frames = getattr(probe, "n_frames", 1)
        digest = hashlib.sha256(data).hexdigest()
        for frame in range(frames):
            loaders.append(_frame_loader(data, frame))
            indexes.append(frame)
            digests.append(digest)
    hits = 0
    if cache is not None:
        hits = sum(cache.get(ocr.cache_key(d, i, settings)) is not None for d, i in zip(digests, indexes))
    started = time.perf_counter()  # the files are read and the cache counted before the clock
    cpu_before = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    result = ocr.ocr_pages(loaders, settings, jobs=args.jobs, indexes=indexes, content_sha256=digests,
                           cache=cache, capped=False)
    statuses: dict[str, int] = {}
    for page in result.pages:
        statuses[page.status] = statuses.get(page.status, 0) + 1
    pages = len(result.pages)
    seconds = time.perf_counter() - started
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu_before
    args.out.write_text(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "pages": pages, "statuses": statuses,
                                    "cache_hits_before": hits}), encoding="utf-8")
    return 0


def _frame_loader(data: bytes, frame: int):
    def load(_allowance: float):
        image = Image.open(io.BytesIO(data))
        image.seek(frame)
        image.load()
        return image, None, None
    return load


def split_in_turns(files: list[Path], rounds: int) -> list[list[Path]]:
    """The case in at most `rounds` parts of an even number of files where it can be (two reference
    processes then finish together: an odd last file would leave one core idle), each part a mix of
    the case (every k-th file)."""
    count = max(1, min(rounds, len(files)))
    while count > 1 and (len(files) % count or (len(files) // count) % 2):
        count -= 1
    return [files[start::count] for start in range(count)]


def run_row(work: Path, pages: int, *, repeats: int, cap: float, note, rounds: int = 5,
            with_ocrmypdf: bool | None = None) -> dict:
    """The OCR row: engine (cold, then from its cache) and the references, `repeats` times or until
    `cap` seconds are spent (the first run always happens). `with_ocrmypdf` (default: when it is
    installed) adds the goal's reference; without it only Tesseract alone is measured.

    Within a run the sides take turns over the case in `rounds` parts of a few files (engine, then
    each reference, on the same files): on a shared virtual machine the speed of the cores drifts by
    20-40% from one minute to the next (two runs of the same code: 198 s and 172 s), and a side
    measured in one stretch of minutes would carry that drift into the ratio. A run's time is the sum
    over its parts. The cached rebuild reads the whole case again with the cache the parts filled."""
    if with_ocrmypdf is None:
        with_ocrmypdf = ocrmypdf_available()
    files = generate_fax_case(work / "fax-case", pages)
    parts = split_in_turns(files, rounds)
    engine_runs, reference_runs, cached_runs = measure.Series(), measure.Series(), measure.Series()
    engine_cpu, reference_cpu = measure.Series(), measure.Series()
    ocrmypdf_runs, ocrmypdf_cpu, ocrmypdf_failures = measure.Series(), measure.Series(), 0
    spent, error, index = 0.0, None, 0
    while index < repeats and (index == 0 or spent * (index + 1) / index <= cap):
        t0 = time.monotonic()
        cache = work / f"ocr-cache-{index}"
        report = {"seconds": 0.0, "cpu_seconds": 0.0, "statuses": {}}
        ref = ReferenceRun(0.0, 0.0, 0)
        by_ocrmypdf = ReferenceRun(0.0, 0.0, 0)
        for number, part in enumerate(parts):
            read = engine(part, work / f"engine-{index}-{number}.json", cache=cache)
            if "error" in read:
                error = read["error"]
                break
            report["seconds"] += read["seconds"]
            report["cpu_seconds"] += read["cpu_seconds"]
            for status, count in read["statuses"].items():
                report["statuses"][status] = report["statuses"].get(status, 0) + count
            part_ref = reference(part, work / f"reference-{index}-{number}")
            ref = ReferenceRun(ref.seconds + part_ref.seconds, ref.cpu_seconds + part_ref.cpu_seconds,
                               ref.failures + part_ref.failures)
            if with_ocrmypdf:
                part_ocrmypdf = ocrmypdf_reference(part, work / f"ocrmypdf-{index}-{number}")
                by_ocrmypdf = ReferenceRun(by_ocrmypdf.seconds + part_ocrmypdf.seconds,
                                           by_ocrmypdf.cpu_seconds + part_ocrmypdf.cpu_seconds,
                                           by_ocrmypdf.failures + part_ocrmypdf.failures)
        if error:
            break
        engine_runs.add(report["seconds"])
        engine_cpu.add(report["cpu_seconds"])
        reference_runs.add(ref.seconds)
        reference_cpu.add(ref.cpu_seconds)
        if with_ocrmypdf:
            ocrmypdf_runs.add(by_ocrmypdf.seconds)
            ocrmypdf_cpu.add(by_ocrmypdf.cpu_seconds)
            ocrmypdf_failures += by_ocrmypdf.failures
        cached = engine(files, work / f"engine-cached-{index}.json", cache=cache)
        if "error" not in cached:
            cached_runs.add(cached["seconds"])
        shutil.rmtree(cache, ignore_errors=True)
        spent += time.monotonic() - t0
        index += 1
        note(f"ocr run {index}: engine {report['seconds']:.1f}s ({report['statuses']}), "
             f"cached {cached.get('seconds', float('nan')):.2f}s, "
             + (f"ocrmypdf --jobs 2 {by_ocrmypdf.seconds:.1f}s, " if with_ocrmypdf else "")
             + f"two tesseracts {ref.seconds:.1f}s (CPU: engine {report['cpu_seconds']:.1f}s, "
             + (f"ocrmypdf {by_ocrmypdf.cpu_seconds:.1f}s, " if with_ocrmypdf else "")
             + f"tesseracts {ref.cpu_seconds:.1f}s; {len(parts)} parts, taking turns)")
    entry: dict = {"pages": pages, "files": len(files), "engine": engine_runs.to_json(),
                   "engine_cached": cached_runs.to_json(), "two_tesseracts": reference_runs.to_json(),
                   # CPU seconds (process + children): steadier than wall time on a shared machine
                   "engine_cpu": engine_cpu.to_json(), "two_tesseracts_cpu": reference_cpu.to_json()}
    if engine_runs.median and reference_runs.median:
        entry["engine_pages_per_s"] = round(pages / engine_runs.median, 3)
        entry["reference_pages_per_s"] = round(pages / reference_runs.median, 3)
        entry["throughput_ratio"] = round(entry["engine_pages_per_s"] / entry["reference_pages_per_s"], 3)
    if engine_cpu.median and reference_cpu.median:
        entry["cpu_ratio"] = round(engine_cpu.median / reference_cpu.median, 3)
    if with_ocrmypdf:
        entry["ocrmypdf"] = ocrmypdf_runs.to_json()
        entry["ocrmypdf_cpu"] = ocrmypdf_cpu.to_json()
        entry["ocrmypdf_version"] = ocrmypdf_version()
        entry["ocrmypdf_failures"] = ocrmypdf_failures  # a failed file would make the reference look fast
        if engine_runs.median and ocrmypdf_runs.median:
            entry["ocrmypdf_pages_per_s"] = round(pages / ocrmypdf_runs.median, 3)
            entry["ocrmypdf_throughput_ratio"] = round(entry["engine_pages_per_s"] / entry["ocrmypdf_pages_per_s"], 3)
        if engine_cpu.median and ocrmypdf_cpu.median:
            entry["ocrmypdf_cpu_ratio"] = round(engine_cpu.median / ocrmypdf_cpu.median, 3)
    else:
        entry["ocrmypdf"] = {"skipped": "ocrmypdf is not installed (make bench installs it as root: apt-get "
                                        "install --no-install-recommends ocrmypdf)"}
    if cached_runs.median:
        entry["cached_pages_per_s"] = round(pages / cached_runs.median, 1)
    if error:
        entry["error"] = error
    return entry


if __name__ == "__main__":
    sys.exit(main())
