"""`make bench` / `python -m bench`: the service against the C tools, on cases generated here and now.

Owns: the measurements of issues 7 and 17, their order, the time budget, `bench/results.json` and the table.
Every measurement runs several times, Python side and C side interleaved in the same loop so machine
noise hits both, and is reported as a median and as a ratio against the C tools:
- cold: `packet.pipeline.build.build_case` on a 1,000-page / 60-document case with a fresh `state/`, vs
  pdftotext over every file + `qpdf --empty --pages` merge + `qpdf --overlay` stamping;
- incremental: the same built case plus one new 1-page document, vs the bare qpdf merge;
- large: a 5,000-page / 200-document case, time (against the cold time: linear is 5x) and peak
  memory (the whole process tree of the build, against qpdf's biggest process);
- mixed: fax TIFFs and DOCX letters (conversion cost), vs tiff2pdf/img2pdf + LibreOffice + the chain;
- ocr: a 200-page fax case (multi-page TIFFs) read by `packet.intake.ocr` with 2 jobs, vs
  `ocrmypdf --jobs 2` over the same files (the goal's reference; `make bench` installs it as root) and,
  stricter, two parallel `tesseract ... pdf` processes (Tesseract alone, as ocrmypdf runs it), and the
  same case read again from the engine's cache (a cached rebuild reads nothing); see `bench.ocrbench`;
- watcher (only when `packet.service.watch.run_watcher` exists): from a file's last write to a draft that
  lists it, for a 100-page case, against settle + debounce + 1 s;
- cli / verify (issue 17, bench.fresh): `imr-packet build` and `imr-packet verify --rebuild` as fresh
  subprocesses, start-up included, vs the C chain on the cold case;
- soak (issue 17, bench.soak): the watcher for 20 minutes under a steady drop of 200 realistic cases
  (not bound by the time budget; `--quick`: about two minutes).
The measured builds read no scans ([ocr] enabled = false: the C chains read none; OCR has its own
row). The Python side runs in a fresh process (`bench.runner`) that, before the clock starts, is
brought to where a running service is after its first build (library imported, workers started,
the mailings' fonts loaded); the process's own start-up is reported beside it but not in the ratio.
Must not: assert anything about speed (this is a report, not a test); leave files outside its
temporary folder other than `bench/results.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import ctools, fresh, measure, ocrbench
from .cases import CaseSpec, GeneratedCase, add_one_page_document, generate_mixed_case, generate_pdf_case

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"

FULL = {"cold": CaseSpec("BENCH-1000", 1000, 60), "large": CaseSpec("BENCH-5000", 5000, 200, seed=8),
        "mixed": {"tiffs": 10, "tiff_pages": 4, "docx": 6, "docx_pages": 2},
        "watch": CaseSpec("BENCH-WATCH", 100, 10, seed=9), "ocr": 200}
QUICK = {"cold": CaseSpec("BENCH-200", 200, 12), "large": CaseSpec("BENCH-600", 600, 30, seed=8),
         "mixed": {"tiffs": 2, "tiff_pages": 2, "docx": 1, "docx_pages": 1},
         "watch": CaseSpec("BENCH-WATCH", 20, 4, seed=9), "ocr": 10}

# Soft caps per measurement (seconds, Python and C sides together): more runs stop once passed,
# so no row runs far past its cap on a slow hour (the Makefile's `bench` comment gives the whole
# run's length, the soak included).
CAPS = {"cold": 150, "incremental": 60, "large": 260, "mixed": 90, "watch": 45, "cli": 150, "verify": 150,
        "ocr": 600}  # one OCR run (200 pages: the engine, ocrmypdf and two tesseracts) takes about 5 minutes, quiet

GOALS = {  # issues 7 and 17, ratios on this 2-core machine
    "cold": ("python (warm service) / C chain", 1.0),
    "cli": ("imr-packet build in a fresh process / C chain", 1.5),
    "verify": ("imr-packet verify --rebuild in a fresh process / C chain", 2.0),
    "incremental": ("python / bare qpdf merge", 1.0),
    "large_time": ("large python / cold python (linear = the page ratio)", 5.0),  # the page ratio
    "large_rss": ("python tree peak RSS / qpdf peak RSS", 1.5),
    "watch": ("latency / (settle + debounce + 1 s)", 1.0),
    "ocr": ("engine seconds / ocrmypdf --jobs 2 seconds (throughput >= 0.9x)", round(1 / 0.9, 3)),
}


METHOD = {
    "python": "build_case(case_dir, config) in a fresh process that imported the library first and "
              "started its conversion and render workers (as a running service has); "
              "seconds of the call only (process start-up is in python_process_wall for the cold build)",
    "c_chain": "pdftotext per file, one after another + qpdf --empty --pages (merge) + qpdf --overlay "
               "(one overlay page per page, made before the clock starts)",
    "incremental": "one new 1-page PDF added to the built case (same state/), vs qpdf merge of all its files",
    "memory": "python: peak of the summed RSS of the build's process tree, sampled every 50 ms (a child "
              "between its fork and its exec is its parent's memory, counted once); "
              "qpdf: max RSS (wait4) of the merge and the overlay",
    "ocr": "packet.intake.ocr.ocr_pages over every page of the fax case, 2 jobs, in a fresh process that "
           "imported the library first; reference (the goal's): `ocrmypdf --jobs 2 -l eng+spa FILE OUT.pdf` "
           "for each file, one after another, its defaults otherwise; stricter reference: two "
           "`tesseract FILE OUT -l eng+spa pdf` at a time, one per file, OMP_THREAD_LIMIT=1; the sides take "
           "turns over the case in parts of an even number of files (engine, then each reference, on the "
           "same files; times summed); cached: the engine again over the whole case with the cache the "
           "parts filled",
    "cli": "imr-packet build CASE-DIR as a subprocess (interpreter start, imports, worker start-up and exit "
           "inside the clock; a fresh state/ each run), interleaved with the C chain",
    "verify": "imr-packet verify SUBMISSION --rebuild as a subprocess on a submission sealed once before "
              "the clock (seal with a recorded override), interleaved with the C chain",
    "watch": "imr-packet watch in its own process; a new 1-page PDF is written and closed, then the "
             "draft manifest is polled every 20 ms until it lists the file",
}


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.started = time.monotonic()
        self.results: dict = {"schema": "imr-packet/bench@1", "machine": machine(),
                              "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                              "target": args.target, "repeats": args.repeats, "quick": args.quick,
                              "method": METHOD,
                              "measurements": {}}
        self.failed = False

    # --- helpers ---------------------------------------------------------------------------

    def note(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def budget_left(self) -> float:
        return self.args.budget - (time.monotonic() - self.started)

    def python_build(self, case: GeneratedCase, root: Path, *, sample_tree: bool = False) -> tuple[dict, measure.Run]:
        root.mkdir(parents=True, exist_ok=True)
        out = root / "runner.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
        for key in [k for k in env if k.startswith("IMR_")]:
            del env[key]  # the benchmark's folders, not the caller's
        run = measure.run([sys.executable, "-m", "bench.runner", "--case-dir", str(case.case_dir),
                           "--root", str(root), "--out", str(out), "--target", self.args.target],
                          cwd=root, env=env, sample_tree=sample_tree, check=False)
        report = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {
            "error": f"runner exited {run.returncode}: {run.stderr_tail[-500:]}"}
        if "error" in report:
            self.failed = True
            raise BuildFailed(report["error"], report.get("traceback", ""))
        return report, run

    def record(self, name: str, entry: dict) -> None:
        self.results["measurements"][name] = entry

    def runs_wanted(self, name: str, done: int, spent: float) -> bool:
        """Another run only if it is expected to end within the measurement's cap and the budget.

        The first run always happens (while any budget is left), so every measurement has a figure;
        a faster build gets more runs automatically.
        """
        if done >= self.args.repeats:
            return False
        if done == 0:
            return self.budget_left() > 0
        per_run = spent / done
        return spent + per_run <= CAPS[name] * self.args.cap_scale and per_run <= self.budget_left()

    # --- measurements ------------------------------------------------------------------------

    def cold(self, case: GeneratedCase) -> tuple[measure.Series, Path | None]:
        python, wall, chain = measure.Series(), measure.Series(), measure.Series()
        overlay = ctools.make_overlay(self.work / "overlay-cold.pdf", case.pages)
        steps: list[dict] = []
        spent, last_root, error, documents = 0.0, None, None, None
        while self.runs_wanted("cold", len(chain.runs), spent):
            t0 = time.monotonic()
            index = len(chain.runs)
            if error is None:
                root = self.work / f"cold-{index}"
                try:
                    report, run = self.python_build(case, root)
                    python.add(report["seconds"], run)
                    wall.add(run.seconds)
                    documents = report.get("documents")
                    last_root = root
                except BuildFailed as exc:
                    error = exc
            c = ctools.pdf_chain(case.paths, overlay, self.work / f"chain-cold-{index}")
            chain.add(c.seconds)
            steps.append(c.steps)
            spent += time.monotonic() - t0
            self.note(f"cold run {index + 1}: python {fmt(python.runs[-1] if python.runs and error is None else None)}"
                      f", C chain {fmt(c.seconds)}")
        self.record("cold", {
            "case": describe(case), "python": python.to_json(), "python_process_wall": wall.to_json(),
            "documents_taken": documents, "c_chain": chain.to_json(), "c_steps": steps,
            **ratio_entry("cold", python.median, chain.median), **error_entry(error)})
        return python, last_root

    def incremental(self, case: GeneratedCase, root: Path) -> None:
        python, merge = measure.Series(), measure.Series()
        spent, error = 0.0, None
        while self.runs_wanted("incremental", len(merge.runs), spent):
            t0 = time.monotonic()
            case = add_one_page_document(case, len(merge.runs) + 1)
            try:
                report, run = self.python_build(case, root)
                python.add(report["seconds"], run)
            except BuildFailed as exc:
                error = exc
            m = ctools.qpdf_merge(case.paths, self.work / f"merge-incr-{len(merge.runs)}.pdf")
            merge.add(m.seconds)
            spent += time.monotonic() - t0
            self.note(f"incremental run {len(merge.runs)}: python {fmt(python.runs[-1] if python.runs else None)}"
                      f", qpdf merge {fmt(m.seconds)}")
            if error:
                break
        self.record("incremental", {
            "case": describe(case), "python": python.to_json(), "qpdf_merge": merge.to_json(),
            **ratio_entry("incremental", python.median, merge.median), **error_entry(error)})

    def large(self, case: GeneratedCase, cold_python: measure.Series, cold_pages: int) -> None:
        python, chain = measure.Series(), measure.Series()
        overlay = ctools.make_overlay(self.work / "overlay-large.pdf", case.pages)
        qpdf_rss, spent, error = 0, 0.0, None
        steps: list[dict] = []
        while self.runs_wanted("large", len(chain.runs), spent):
            t0 = time.monotonic()
            index = len(chain.runs)
            if error is None:
                try:
                    report, run = self.python_build(case, self.work / f"large-{index}", sample_tree=True)
                    python.add(report["seconds"], run)
                except BuildFailed as exc:
                    error = exc
                shutil.rmtree(self.work / f"large-{index}", ignore_errors=True)
            c = ctools.pdf_chain(case.paths, overlay, self.work / f"chain-large-{index}")
            shutil.rmtree(self.work / f"chain-large-{index}", ignore_errors=True)
            chain.add(c.seconds)
            steps.append(c.steps)
            qpdf_rss = max(qpdf_rss, c.max_rss_kb["qpdf_merge"], c.max_rss_kb["qpdf_overlay"])
            spent += time.monotonic() - t0
            self.note(f"large run {index + 1}: python {fmt(python.runs[-1] if python.runs and error is None else None)}"
                      f" (tree peak {python.tree_peak_kb // 1024} MB), C chain {fmt(c.seconds)}"
                      f" (qpdf peak {qpdf_rss // 1024} MB)")
        entry = {"case": describe(case), "python": python.to_json(), "c_chain": chain.to_json(),
                 "c_steps": steps, "qpdf_peak_rss_mb": round(qpdf_rss / 1024, 1),
                 "python_vs_c_chain": safe_ratio(python.median, chain.median), **error_entry(error)}
        # Linear scaling is the page ratio (5.0 for 5,000 against 1,000 pages), the goal of issue 17.
        entry["time"] = ratio_entry("large_time", python.median, cold_python.median,
                                    goal_value=round(case.pages / cold_pages, 2))
        entry["rss"] = ratio_entry("large_rss", python.tree_peak_kb or None, qpdf_rss or None)
        self.record("large", entry)

    def mixed(self, case: GeneratedCase) -> None:
        python, chain = measure.Series(), measure.Series()
        tiffs = [case.case_dir / f.relpath for f in case.files if f.kind == "tiff"]
        docx = [case.case_dir / f.relpath for f in case.files if f.kind == "docx"]
        spent, error = 0.0, None
        steps: list[dict] = []
        while self.runs_wanted("mixed", len(chain.runs), spent):
            t0 = time.monotonic()
            index = len(chain.runs)
            if error is None:
                try:
                    report, run = self.python_build(case, self.work / f"mixed-{index}")
                    python.add(report["seconds"], run)
                except BuildFailed as exc:
                    error = exc
            c = ctools.convert_chain(tiffs, docx, case.pages, self.work / f"chain-mixed-{index}")
            chain.add(c.seconds)
            steps.append(c.steps)
            spent += time.monotonic() - t0
            self.note(f"mixed run {index + 1}: python {fmt(python.runs[-1] if python.runs and error is None else None)}"
                      f", C tools {fmt(c.seconds)}")
        self.record("mixed", {"case": describe(case), "python": python.to_json(), "c_tools": chain.to_json(),
                              "c_steps": steps, "tiff_tool": ctools.tiff_tool(),
                              **ratio_entry("mixed", python.median, chain.median), **error_entry(error)})

    def watch(self, case: GeneratedCase) -> None:
        from .watchlatency import measure_watcher

        try:
            entry = measure_watcher(case, self.work / "watch", repeats=self.args.repeats, cap=CAPS["watch"],
                                    note=self.note)
        except Exception as exc:  # report, do not crash the benchmark
            self.failed = True
            entry = {"error": f"{type(exc).__name__}: {exc}"}
        if "latency" in entry and entry.get("limit_s"):
            entry.update(ratio_entry("watch", entry["latency"]["median_s"], entry["limit_s"]))
        self.record("watch", entry)


    def ocr(self, pages: int) -> None:
        if shutil.which("tesseract") is None:
            self.record("ocr", {"skipped": "tesseract is not installed (make setup)"})
            return
        entry = ocrbench.run_row(self.work / "ocr", pages, repeats=self.args.repeats,
                                 cap=CAPS["ocr"] * self.args.cap_scale, note=self.note)
        if entry.get("error"):
            self.failed = True
        entry.update(ocr_ratios(entry))
        if entry.get("ocrmypdf_failures"):
            self.failed = True
        self.record("ocr", entry)

    def fresh_rows(self, case: GeneratedCase, which: set[str]) -> None:
        """`imr-packet build` and `imr-packet verify --rebuild` in fresh processes vs the C chain."""
        overlay = ctools.make_overlay(self.work / "overlay-fresh.pdf", case.pages)
        submission = None
        if "verify" in which:
            try:
                self.note("sealing the case once for verify --rebuild")
                submission = fresh.seal(case.case_dir, self.work / "sealed")
            except (RuntimeError, measure.CommandFailed) as exc:
                self.failed = True
                self.record("verify", {"case": describe(case), "error": str(exc)})
        for name in ("cli", "verify"):
            if name not in which or (name == "verify" and submission is None):
                continue
            python, chain, spent, error = measure.Series(), measure.Series(), 0.0, None
            while self.runs_wanted(name, len(chain.runs), spent):
                t0 = time.monotonic()
                index = len(chain.runs)
                if error is None:
                    run = (fresh.build(case.case_dir, self.work / f"fresh-{index}") if name == "cli"
                           else fresh.verify_rebuild(submission, self.work / "sealed"))
                    shutil.rmtree(self.work / f"fresh-{index}", ignore_errors=True)
                    if run.returncode != 0:
                        error = BuildFailed(f"{name} exited {run.returncode}", run.stderr_tail[-800:])
                        self.failed = True
                    else:
                        python.add(run.seconds, run)
                c = ctools.pdf_chain(case.paths, overlay, self.work / f"chain-{name}-{index}")
                shutil.rmtree(self.work / f"chain-{name}-{index}", ignore_errors=True)
                chain.add(c.seconds)
                spent += time.monotonic() - t0
                self.note(f"{name} run {index + 1}: python {fmt(python.runs[-1] if python.runs and error is None else None)}"
                          f", C chain {fmt(c.seconds)}")
            self.record(name, {"case": describe(case), "python": python.to_json(), "c_chain": chain.to_json(),
                               **ratio_entry(name, python.median, chain.median), **error_entry(error)})


class BuildFailed(RuntimeError):
    def __init__(self, message: str, traceback_text: str):
        super().__init__(message)
        self.traceback_text = traceback_text


def fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}s"


def safe_ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 3)


def ocr_ratios(entry: dict) -> dict:
    """The OCR row's goal against `ocrmypdf --jobs 2` (not measured without it, or when it failed on a
    file: a reference that skipped work would look fast), and the stricter ratio against Tesseract
    alone, which has no goal."""
    strict = {"tesseract_ratio": safe_ratio(entry["engine"].get("median_s"),
                                            entry["two_tesseracts"].get("median_s"))}
    reference = entry.get("ocrmypdf", {})
    if "median_s" not in reference or entry.get("ocrmypdf_failures"):
        why = reference.get("skipped") or f"ocrmypdf failed on {entry.get('ocrmypdf_failures')} file(s)"
        return {**ratio_entry("ocr", None, None), "not_measured": why, **strict}
    return {**ratio_entry("ocr", entry["engine"].get("median_s"), reference["median_s"]), **strict}


def ratio_entry(goal_key: str, value: float | None, reference: float | None, *,
                goal_value: float | None = None) -> dict:
    ratio = safe_ratio(value, reference)
    goal = GOALS.get(goal_key)
    if goal and goal_value is not None:
        goal = (goal[0], goal_value)
    entry: dict = {"ratio": ratio}
    if goal:
        entry["ratio_of"], entry["goal"] = goal
        entry["met"] = None if ratio is None else ratio <= goal[1]
    return entry


def error_entry(error: BuildFailed | None) -> dict:
    return {"error": str(error), "error_traceback": error.traceback_text} if error else {}


def describe(case: GeneratedCase) -> dict:
    kinds: dict[str, int] = {}
    for f in case.files:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    size = sum((case.case_dir / f.relpath).stat().st_size for f in case.files)
    return {"pages": case.pages, "documents": len(case.files), "kinds": kinds, "bytes": size}


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import pypdf

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory, "os": platform.platform(),
            "python": platform.python_version(), "pypdf": pypdf.__version__,
            "qpdf": _version(["qpdf", "--version"]), "pdftotext": _version(["pdftotext", "-v"]),
            "soffice": _version(["soffice", "--version"])}


def table(results: dict) -> str:
    rows = [("measurement", "python (median)", "reference (median)", "ratio", "goal", "met")]
    m = results["measurements"]

    def med(series: dict | None) -> str:
        return fmt(series.get("median_s")) if series else "n/a"

    def goal(entry: dict) -> str:
        return f"<= {entry['goal']}" if "goal" in entry else "-"

    def met(entry: dict) -> str:
        return {True: "yes", False: "NO", None: "n/a"}.get(entry.get("met"), "-")

    if "cold" in m:
        e = m["cold"]
        rows.append((f"cold build, {e['case']['pages']} pages / {e['case']['documents']} docs",
                     med(e["python"]), med(e["c_chain"]) + " C chain", str(e["ratio"]), goal(e), met(e)))
    for key, label in (("cli", "imr-packet build, fresh process"), ("verify", "verify --rebuild, fresh process")):
        if key in m and "python" in m[key]:
            e = m[key]
            rows.append((f"{label}, {e['case']['pages']} pages", med(e["python"]), med(e["c_chain"]) + " C chain",
                         str(e["ratio"]), goal(e), met(e)))
    if "incremental" in m:
        e = m["incremental"]
        rows.append(("incremental, +1 page", med(e["python"]), med(e["qpdf_merge"]) + " qpdf merge",
                     str(e["ratio"]), goal(e), met(e)))
    if "large" in m:
        e = m["large"]
        rows.append((f"large, {e['case']['pages']} pages / {e['case']['documents']} docs: time",
                     med(e["python"]), med(e["c_chain"]) + " C chain",
                     f"{e['time']['ratio']} x cold", goal(e["time"]), met(e["time"])))
        rows.append(("large: peak memory", f"{e['python'].get('tree_peak_rss_mb')} MB tree",
                     f"{e['qpdf_peak_rss_mb']} MB qpdf", str(e["rss"]["ratio"]), goal(e["rss"]), met(e["rss"])))
    if "mixed" in m:
        e = m["mixed"]
        rows.append((f"mixed TIFF/DOCX, {e['case']['pages']} pages", med(e["python"]),
                     med(e["c_tools"]) + f" {e['tiff_tool']}+soffice+chain", str(e["ratio"]), "-", "-"))
    if "ocr" in m and "engine" in m["ocr"]:
        e = m["ocr"]
        reference = (med(e["ocrmypdf"]) + f" ocrmypdf --jobs 2 ({e.get('ocrmypdf_pages_per_s')} p/s)"
                     if "median_s" in e["ocrmypdf"] else f"not measured: {e.get('not_measured')}")
        rows.append((f"OCR, {e['pages']} fax pages", med(e["engine"]) + f" ({e.get('engine_pages_per_s')} p/s)",
                     reference, str(e["ratio"]), goal(e), met(e)))
        rows.append(("OCR against Tesseract alone", med(e["engine"]),
                     med(e["two_tesseracts"]) + f" 2 tesseracts ({e.get('reference_pages_per_s')} p/s)",
                     str(e.get("tesseract_ratio")), "-", "-"))
        if "median_s" in e.get("ocrmypdf_cpu", {}):
            rows.append(("OCR: CPU seconds", med(e["engine_cpu"]), med(e["ocrmypdf_cpu"]) + " ocrmypdf",
                         str(e.get("ocrmypdf_cpu_ratio")), "-", "-"))
        rows.append(("OCR: CPU seconds, Tesseract alone", med(e["engine_cpu"]),
                     med(e["two_tesseracts_cpu"]) + " 2 tesseracts", str(e.get("cpu_ratio")), "-", "-"))
        rows.append(("OCR, cached rebuild", med(e["engine_cached"]), "-", "-", "-", "-"))
    if "watch" in m:
        e = m["watch"]
        rows.append(("watcher: last write -> draft", med(e.get("latency")),
                     f"{e.get('limit_s', 'n/a')}s settle+debounce+1", str(e.get("ratio")), goal(e), met(e)))
    if "soak" in m and "draft_latency" in m["soak"]:
        e = m["soak"]
        rows.append((f"soak {e['minutes']} min, {e['cases_dropped']} cases: write -> draft p50/p95",
                     f"{e['draft_latency']['p50_s']}s / {e['draft_latency']['p95_s']}s", "-", "-", "-", "-"))
        rows.append(("soak: READY -> sealed p50/p95", f"{e['seal_latency']['p50_s']}s / {e['seal_latency']['p95_s']}s",
                     "-", "-", "-", "-"))
        rows.append(("soak: tree RSS growth after warm-up",
                     f"peak {e['rss_mb']['peak']} MB, final {e['rss_mb']['final']} MB",
                     f"{e['rss_mb']['warm_low']} MB after warm-up (low)", str(e["rss_growth"]["ratio"]),
                     goal(e["rss_growth"]), met(e["rss_growth"])))
        rows.append(("soak: errors / fds / children at end", str(e["errors"]),
                     f"{e['end']['open_fds']} fds, {e['end']['children']} children "
                     f"(warm-up {e['warm']['open_fds']}, {e['warm']['children']})", "-", "0 errors",
                     "yes" if not e["errors"] else "NO"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for name, entry in m.items():
        if entry.get("error"):
            lines.append(f"{name}: the Python side failed: {entry['error']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--only", default="cold,cli,verify,incremental,large,mixed,ocr,watch,soak",
                        help="comma-separated measurements to run")
    parser.add_argument("--quick", action="store_true", help="small cases, for a smoke run")
    parser.add_argument("--budget", type=float, default=540.0,
                        help="seconds after which no new run starts (default 540)")
    parser.add_argument("--cap-scale", type=float, default=1.0,
                        help="multiply every measurement's time cap (e.g. 3 for more runs on a long night)")
    parser.add_argument("--target", default="packet.pipeline.build:build_case", help="module:function to measure")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    return args


def missing_tools() -> list[str]:
    return [tool for tool in ("pdftotext", "qpdf", "soffice") if shutil.which(tool) is None]


def watcher_available() -> bool:
    if importlib.util.find_spec("packet.service.watch") is None:
        return False
    try:
        module = importlib.import_module("packet.service.watch")
    except Exception:
        return False
    return callable(getattr(module, "run_watcher", None))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"Error: the benchmark needs {', '.join(missing)} (run `make setup`)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = args.keep or Path(tempfile.mkdtemp(prefix="imr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    specs = QUICK if args.quick else FULL
    bench = Bench(args, work)
    try:
        cases_root = work / "inbox"
        cases_root.mkdir(exist_ok=True)
        cold_python, cold_root = measure.Series(), None
        cold_pages = specs["cold"].pages
        if args.only & {"cold", "cli", "verify", "incremental", "large"}:
            bench.note(f"generating {specs['cold'].pages} pages in {specs['cold'].documents} documents")
            cold_case = generate_pdf_case(cases_root, specs["cold"])
            if args.only & {"cold", "incremental", "large"}:
                cold_python, cold_root = bench.cold(cold_case)
            if args.only & {"cli", "verify"}:
                bench.fresh_rows(cold_case, args.only & {"cli", "verify"})
            if "incremental" in args.only and cold_root is not None:
                bench.incremental(cold_case, cold_root)
        if "large" in args.only:
            bench.note(f"generating {specs['large'].pages} pages in {specs['large'].documents} documents")
            bench.large(generate_pdf_case(cases_root, specs["large"]), cold_python, cold_pages)
        if "mixed" in args.only:
            bench.note("generating the mixed TIFF/DOCX case")
            bench.mixed(generate_mixed_case(cases_root, "BENCH-MIXED", **specs["mixed"]))
        if "ocr" in args.only:
            bench.note(f"generating the {specs['ocr']}-page fax case and reading it")
            bench.ocr(specs["ocr"])
        if "watch" in args.only:
            if watcher_available():
                watch_root = work / "watch-inbox"
                watch_root.mkdir(exist_ok=True)
                bench.watch(generate_pdf_case(watch_root, specs["watch"]))
            else:
                bench.record("watch", {"skipped": "packet.service.watch.run_watcher does not exist yet"})
        if "soak" in args.only:
            from .soak import SoakSettings, run_soak

            bench.note("soak: the watcher under a steady drop of realistic cases")
            try:
                entry = run_soak(SoakSettings.quick() if args.quick else SoakSettings.full(), work / "soak",
                                 note=bench.note)
            except Exception as exc:  # report, do not crash the benchmark
                entry = {"error": f"{type(exc).__name__}: {exc}", "errors": 1}
            bench.failed |= bool(entry.get("errors"))
            bench.record("soak", entry)
    finally:
        bench.results["seconds_total"] = round(time.monotonic() - bench.started, 1)
        bench.results["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(bench.results, indent=2) + "\n", encoding="utf-8")
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(bench.results))
    print(f"\nmachine: {bench.results['machine']['cpu']}, {bench.results['machine']['cores']} cores, "
          f"{bench.results['machine']['memory_gib']} GiB; total {bench.results['seconds_total']}s; "
          f"results in {args.out}")
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())
