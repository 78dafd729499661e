"""Checking a submission (or a draft) against its manifest: what an auditor runs.

Owns: `verify_submission`, which checks, from the files alone,
- every output's SHA-256 and page count against the manifest's `outputs`, and that no file was
  added or removed;
- every object of every output PDF: no active content (JavaScript, Launch, SubmitForm,
  ImportData, GoToR/GoToE, RichMedia, embedded files, XFA, open and additional actions) and no
  stream that inflates past `[limits] max_stream_bytes` (`packet.pdf.inspect`);
- Bates continuity: the documents' Bates ranges have no gap or overlap, continue from the previous
  submission of the case, match their page counts and packet pages, and the PDF page labels of
  imr-org-packet.pdf equal the Bates numbers;
- the privileged mark on every page of every privileged document, and on no other page;
- that no page of a withheld document appears in any member or provider output
  (`packet.pipeline.leaks`);
- with `rebuild=True`, byte identity with a rebuild from the archived originals (packet.pipeline.seal).

Must not: change anything in the submission or the archive. It writes only the audit event
`verified` and a scratch folder under `state/work/` for a rebuild, which it removes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from packet.config import Config
from packet.errors import PacketError, UsageError
from packet.fsutil import ensure_dir, file_size, sha256_file
from packet.intake.convert.batch import STARVED_STEP, WORKER_KEEP_RSS_MIB, starved
from packet.intake.convert.limits import pypdf_bounds
from packet.model.models import PRIVILEGED_MARK
from packet.pdf.inspect import scan_outputs
from packet.pipeline.leaks import RECIPIENT_OUTPUTS, find_leaks, find_removed_pages, normalised, page_text, read_pdf
from packet.pipeline.pagetext import PageTexts
from packet.pipeline.rebuild import rebuild_submission
from packet.records import audit as audit_log
from packet.records.layout import MANIFEST, ORG_PACKET
from packet.records.register import sealed_submissions
from packet.workers import pool
from packet.workers import render as renderworker
from packet.workers.pool import WorkerTimeout



@dataclass(frozen=True)
class VerifyReport:
    submission_dir: Path
    case_id: str | None
    submission: int | None
    failures: tuple[str, ...]
    checks: tuple[str, ...] = ()  # what was checked and held, for the report
    rebuilt: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    def text(self) -> str:
        head = f"{self.submission_dir}"
        if self.case_id:
            head += f" (case {self.case_id}, submission {self.submission})"
        if self.ok:
            lines = [f"OK: {head}"] + [f"  ok: {check}" for check in self.checks]
        else:
            lines = [f"FAILED: {head}: {len(self.failures)} problem(s)"]
            lines += [f"  - {failure}" for failure in self.failures]
            lines += [f"  ok: {check}" for check in self.checks]
        return "\n".join(lines)


@dataclass
class _Checker:
    failures: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def passed(self, before: int, message: str) -> None:
        if len(self.failures) == before:
            self.checks.append(message)



def parse_bates(label: str | None, case_id: str, config: Config) -> int | None:
    """The number of a Bates label made with the configured prefix, or None."""
    if not isinstance(label, str):
        return None
    prefix = config.bates.prefix.format(case_id=case_id)
    if not label.startswith(prefix):
        return None
    rest = label[len(prefix):]
    return int(rest) if rest.isdigit() else None


def _load_manifest(submission_dir: Path) -> dict:
    path = submission_dir / MANIFEST
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{submission_dir}: no {MANIFEST}; this is not a submission folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PacketError(f"{path}: not valid JSON ({exc})", reason="bad_manifest") from exc



def _expected_first_bates(submission_dir: Path, manifest: dict, config: Config,
                          case_id: str) -> tuple[int, str]:
    """Where this submission's Bates numbers must start, and what says so."""
    number = manifest.get("submission")
    if not isinstance(number, int) or number <= 1:
        return 1, "the first submission starts at 1"
    previous = submission_dir.parent / f"submission-{number - 1:02d}" / MANIFEST
    if previous.is_file():
        with open(previous, encoding="utf-8") as handle:
            prev = json.load(handle)
        lasts = [parse_bates(d.get("bates_last"), case_id, config) for d in prev.get("documents", [])]
        lasts = [n for n in lasts if n is not None]
        if lasts:
            return max(lasts) + 1, f"submission {number - 1} ended at {max(lasts)}"
    for sealed in sealed_submissions(config, case_id):
        if sealed.number == number - 1:
            return sealed.next_bates, f"the register: submission {number - 1} ended at {sealed.next_bates - 1}"
    return 1, "no earlier submission was found"


def _check_outputs(submission_dir: Path, manifest: dict, check: _Checker) -> dict[str, dict]:
    before = len(check.failures)
    outputs = {}
    for entry in manifest.get("outputs", []):
        outputs[entry.get("file")] = entry
    present = {p.name for p in submission_dir.iterdir() if p.is_file()}
    allowed = {MANIFEST, "review.json"} if manifest.get("kind") == "draft" else {MANIFEST}
    for name in sorted(present - set(outputs) - allowed):
        check.fail(f"{name}: file is not listed in the manifest's outputs")
    for name, entry in sorted(outputs.items()):
        path = submission_dir / str(name)
        if not path.is_file():
            check.fail(f"{name}: listed in the manifest but missing")
            continue
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            check.fail(f"{name}: SHA-256 {actual[:16]}... does not match the manifest's "
                       f"{str(entry.get('sha256'))[:16]}... (the file was changed)")
        if path.suffix.lower() == ".pdf" and entry.get("pages") is not None:
            try:
                pages = len(read_pdf(path).pages)
            except Exception as exc:
                check.fail(f"{name}: cannot be read as a PDF ({type(exc).__name__})")
                continue
            if pages != entry.get("pages"):
                check.fail(f"{name}: has {pages} pages, the manifest says {entry.get('pages')}")
    if ORG_PACKET not in outputs:
        check.fail(f"{ORG_PACKET}: not listed in the manifest's outputs")
    check.passed(before, f"{len(outputs)} output file(s) match their SHA-256 and page counts")
    return outputs


def _check_bates(submission_dir: Path, manifest: dict, config: Config, case_id: str,
                 labels: list[str] | None, check: _Checker) -> None:
    before = len(check.failures)
    placed = []
    for doc in manifest.get("documents", []):
        pages = doc.get("packet_pages") or []
        if not pages:
            continue
        source = doc.get("source", "?")
        first = parse_bates(doc.get("bates_first"), case_id, config)
        last = parse_bates(doc.get("bates_last"), case_id, config)
        if first is None or last is None:
            check.fail(f'"{source}": Bates range {doc.get("bates_first")} - {doc.get("bates_last")} '
                       "is not in the configured form")
            continue
        count = last - first + 1
        if count != len(pages) or count != doc.get("pages"):
            check.fail(f'"{source}": Bates range has {count} numbers but the document has '
                       f'{doc.get("pages")} pages on {len(pages)} packet pages')
        if pages != list(range(pages[0], pages[0] + len(pages))):
            check.fail(f'"{source}": packet pages {pages} are not consecutive')
        placed.append((first, last, source, pages))
    placed.sort()
    expected, why = _expected_first_bates(submission_dir, manifest, config, case_id)
    if placed and placed[0][0] != expected:
        check.fail(f"Bates numbers start at {placed[0][0]} but must continue at {expected} ({why})")
    for (a_first, a_last, a_source, _), (b_first, _b_last, b_source, _) in zip(placed, placed[1:]):
        if b_first <= a_last:
            check.fail(f'Bates overlap: "{a_source}" ends at {a_last}, "{b_source}" starts at {b_first}')
        elif b_first != a_last + 1:
            check.fail(f'Bates gap: "{a_source}" ends at {a_last}, "{b_source}" starts at {b_first}')
    summary = manifest.get("bates")
    if isinstance(summary, dict) and placed:
        if summary.get("first") != placed[0][0] or summary.get("next") != placed[-1][1] + 1:
            check.fail(f"the manifest's Bates summary {summary} does not match its documents "
                       f"({placed[0][0]} to {placed[-1][1]})")
    if manifest.get("kind") != "draft" and placed:
        for sealed in sealed_submissions(config, case_id):
            if sealed.number == manifest.get("submission") and (
                    sealed.first_bates, sealed.next_bates) != (placed[0][0], placed[-1][1] + 1):
                check.fail(f"the Bates register says submission {sealed.number} used {sealed.first_bates} to "
                           f"{sealed.next_bates - 1}, the manifest says {placed[0][0]} to {placed[-1][1]}")
    # Packet order follows Bates order.
    by_page = sorted(placed, key=lambda p: p[3][0])
    if [p[0] for p in by_page] != [p[0] for p in placed]:
        check.fail("Bates numbers do not increase with the page order of the packet")
    if labels is not None:
        for first, _last, source, pages in placed:
            for offset, page in enumerate(pages):
                want = config.bates.label(case_id, first + offset)
                got = labels[page - 1] if 0 < page <= len(labels) else None
                if got != want:
                    check.fail(f'"{source}": packet page {page} has page label {got!r}, '
                               f"expected the Bates number {want}")
                    break
    check.passed(before, f"Bates numbers of {len(placed)} document(s) are continuous from "
                         f"{expected} ({why}) and equal the page labels")


class _ObjectScan:
    """Every object of every output PDF: no active content, no stream inflating past the bound.

    The outputs are read in a conversion worker (`packet.pdf.inspect.scan_outputs`), under its
    memory limit and a time limit (`pdf_open_timeout_seconds` a file), while this process checks
    the rest and rebuilds: an output may have been tampered with. Where no second process is
    allowed (`[limits] workers = 1`) or none can start, they are read here, as before; so are
    outputs of at most IN_PROCESS_BYTES together when no idle worker waits (starting one would
    take longer than reading them)."""

    ROLE = "convert"  # a worker that has pypdf imported (the command line starts one for verify)
    JOB = "packet.pdf.inspect:scan_outputs"
    IN_PROCESS_BYTES = 2 * 1024 * 1024

    def __init__(self, submission_dir: Path, outputs: dict[str, dict], config: Config):
        self.limit = config.limits.max_stream_bytes
        self.bound = max(config.limits.max_inflated_bytes, self.limit)
        self.names = [name for name in sorted(outputs) if str(name).lower().endswith(".pdf")
                      and (submission_dir / str(name)).is_file()]
        self.paths = [str(submission_dir / name) for name in self.names]
        self.worker: pool.Worker | None = None
        self.timeout = config.limits.pdf_open_timeout_seconds * max(1, len(self.names))
        if not self.names or not renderworker.in_use(config):
            return
        size = sum(file_size(path) for path in self.paths)
        if size <= self.IN_PROCESS_BYTES and not pool.idle_pids(self.ROLE):
            return
        try:
            worker = pool.take(self.ROLE)
        except OSError:
            return
        if worker.send(self.JOB, (self.paths, self.limit, self.bound), timeout=self.timeout,
                       memory_mib=config.limits.worker_memory_mib):
            self.worker = worker
        else:
            worker.stop(kill=True)

    def finish(self, check: _Checker) -> None:
        """Wait for the worker (or read the outputs here) and record the findings."""
        before = len(check.failures)
        results = self._from_worker()
        if results is None:
            results = scan_outputs(self.paths, self.limit, self.bound)
        for name, found in zip(self.names, results, strict=True):
            if "error" in found:
                check.fail(f"{name}: its objects cannot be read ({found['error']})")
                continue
            for finding in found["oversized"]:
                check.fail(f"{name}: stream over the size limit: {finding}")
            for finding in found["active"]:
                check.fail(f"{name}: active content: {finding}")
        check.passed(before, f"no active content and no stream over {self.limit} bytes in {len(self.names)} PDF output(s)")

    def _wait(self, worker: pool.Worker) -> tuple | None:
        """The worker's answer. At its deadline a worker starved of CPU by a busy machine (as when
        the service seals while it converts) waits on, by the conversions' rule (`starved`)."""
        deadline = worker.deadline
        while True:
            try:
                return worker.wait(deadline)
            except WorkerTimeout:
                if not starved(worker, self.timeout, time.monotonic()):
                    raise
                deadline = time.monotonic() + self.timeout * STARVED_STEP

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.stop(kill=True)
            self.worker = None

    def _from_worker(self) -> list[dict] | None:
        """The worker's findings; None when it could not run the job (then this process reads)."""
        worker, self.worker = self.worker, None
        if worker is None:
            return None
        try:
            answer = self._wait(worker)
        except WorkerTimeout:
            worker.stop(kill=True)
            return [{"error": f"not read within {self.timeout:g} s"}] * len(self.names)
        except BaseException:
            worker.stop(kill=True)
            raise
        if answer is None:  # it died: its memory limit, or killed
            worker.stop(kill=True)
            return [{"error": "reading them stopped the worker (its memory limit, or a kill)"}] * len(self.names)
        status, value, _retire, _rss = answer
        if status != "ok":
            worker.stop(kill=True)
            if isinstance(value, MemoryError):  # past the worker's memory limit
                return [{"error": "MemoryError"}] * len(self.names)
            return None
        pool.give_back(worker, keep_below_mib=WORKER_KEEP_RSS_MIB)  # as the conversion pool keeps its workers
        if not isinstance(value, list) or len(value) != len(self.names):
            return None
        return value


def _check_marks(manifest: dict, texts: list[str], check: _Checker) -> None:
    """The privileged mark on every page of every privileged document, and on no other page."""
    norm_mark = normalised(PRIVILEGED_MARK)
    privileged_pages: set[int] = set()
    for doc in manifest.get("documents", []):
        if doc.get("privileged"):
            privileged_pages.update(doc.get("packet_pages") or [])
    before = len(check.failures)
    for index, text in enumerate(texts, 1):
        marked = norm_mark in normalised(text)
        if index in privileged_pages and not marked:
            check.fail(f"{ORG_PACKET} page {index}: belongs to a privileged document but does not "
                       "carry the privileged mark")
        elif index not in privileged_pages and marked:
            check.fail(f"{ORG_PACKET} page {index}: carries the privileged mark but is not a page "
                       "of a privileged document")
    check.passed(before, f"the privileged mark is on all {len(privileged_pages)} privileged page(s) "
                         "and on no other page")


def _text_outputs(submission_dir: Path, manifest: dict) -> list[str]:
    """The PDF outputs whose page texts the checks read: the IMR packet and the recipients' PDFs."""
    listed = {entry.get("file") for entry in manifest.get("outputs", []) if isinstance(entry, dict)}
    withheld = any(isinstance(doc, dict) and (doc.get("privileged") or doc.get("withheld_from_member"))
                   for doc in manifest.get("documents", []))
    recipients = RECIPIENT_OUTPUTS if withheld else ()  # the leak detector reads them only then
    return [name for name in (ORG_PACKET, *recipients)
            if name.endswith(".pdf") and name in listed and (submission_dir / name).is_file()]


def _page_texts(submission_dir: Path, pages, started: PageTexts) -> tuple[list[str], dict[str, list[str]] | None]:
    """The IMR packet's page texts and the recipient PDFs' (by name): pdftotext's for all of them
    when it read every one, else pypdf's for all (None: the leak detector reads the recipients)."""
    counts: dict[Path, int] | None = {submission_dir / ORG_PACKET: len(pages)}
    for path in started.runs:
        if path.name != ORG_PACKET:
            try:
                counts[path] = len(read_pdf(path).pages)
            except Exception:  # noqa: BLE001 - the leak detector reports an unreadable output
                counts = None
                break
    found = started.texts(counts) if counts is not None and submission_dir / ORG_PACKET in started.runs else None
    if found is None:
        return [page_text(page) for page in pages], None
    return found[submission_dir / ORG_PACKET], {path.name: texts for path, texts in found.items()
                                                if path.name != ORG_PACKET}


def _check_pages(submission_dir: Path, manifest: dict, config: Config, case_id: str, reader,
                 outputs: dict[str, dict], check: _Checker, archive_dir: Path | None, started: PageTexts) -> None:
    """The privileged mark, and that no withheld page reached a member or provider output."""
    pages = reader.pages
    texts, recipient_texts = _page_texts(submission_dir, pages, started)
    _check_marks(manifest, texts, check)
    before = len(check.failures)
    leaks = find_leaks(submission_dir, manifest, config, case_id, pages, texts, outputs, archive_dir,
                       recipient_texts)
    for failure in leaks.failures:
        check.fail(failure)
    check.passed(before, f"no page of {leaks.withheld_documents} withheld document(s) appears in "
                         f"{', '.join(leaks.checked) or 'any recipient output'}")
    before = len(check.failures)
    removed = find_removed_pages(submission_dir, manifest, config, case_id, outputs, archive_dir)
    for failure in removed.failures:
        check.fail(failure)
    if removed.removed_pages:
        check.passed(before, f"none of the {removed.removed_pages} page(s) people removed appears in any output")


def _version_changes(sealed_manifest: Path, rebuilt_manifest: Path) -> list[str]:
    try:
        with open(sealed_manifest, encoding="utf-8") as a, open(rebuilt_manifest, encoding="utf-8") as b:
            then, now = json.load(a).get("versions") or {}, json.load(b).get("versions") or {}
    except (OSError, ValueError):
        return []
    return [f"{name} {then.get(name)} at sealing, {now.get(name)} now"
            for name in sorted(set(then) | set(now)) if then.get(name) != now.get(name)]


def _compare_rebuild(submission_dir: Path, config: Config, check: _Checker) -> None:
    before = len(check.failures)
    scratch = Path(tempfile.mkdtemp(prefix="verify-rebuild-", dir=ensure_dir(config.work_dir)))
    try:
        rebuilt = scratch / "rebuilt"
        try:
            rebuild_submission(submission_dir, config, rebuilt)
        except PacketError as exc:
            check.fail(f"rebuild from the archive failed: {exc.message}")
            return
        original = {p.name for p in submission_dir.iterdir() if p.is_file()}
        again = {p.name for p in rebuilt.iterdir() if p.is_file()}
        for name in sorted(original ^ again):
            where = "the submission" if name in original else "the rebuild"
            check.fail(f"rebuild: {name} exists only in {where}")
        for name in sorted(original & again):
            if (submission_dir / name).read_bytes() != (rebuilt / name).read_bytes():
                check.fail(f"rebuild: {name} differs from the rebuild from the archived originals")
        if any("differs from the rebuild" in f for f in check.failures[before:]):
            changed = _version_changes(submission_dir / MANIFEST, rebuilt / MANIFEST)
            if changed:
                check.fail("rebuild: the libraries that draw the outputs are not the versions used at "
                           "sealing (" + ", ".join(changed) + "); rebuild with those versions")
        check.passed(before, f"a rebuild from the archived originals is byte-identical ({len(again)} files)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def verify_submission(submission_dir: Path, config: Config, *, rebuild: bool = False,
                      audit: bool = True, archive_dir: Path | None = None) -> VerifyReport:
    """Check a submission (or draft) folder against its manifest; see the module docstring.

    `archive_dir` is where the submission's originals are archived (default: from the
    configuration); sealing passes its staging folder. `audit=False` skips the audit event (the
    seal's own check, recorded by its `sealed` event).
    """
    submission_dir = Path(submission_dir)
    if not submission_dir.is_dir():
        raise UsageError(f"{submission_dir}: no such submission folder")
    manifest = _load_manifest(submission_dir)
    check = _Checker()
    if manifest.get("schema") != "imr-packet/manifest@1":
        check.fail(f"{MANIFEST}: schema is {manifest.get('schema')!r}, expected imr-packet/manifest@1")
    if not isinstance(manifest.get("case_id"), str):
        check.fail(f"{MANIFEST}: case_id is missing")
    # pdftotext reads the pages on the other core while the hashes and objects are checked.
    started = PageTexts([submission_dir / name for name in _text_outputs(submission_dir, manifest)],
                        timeout=config.limits.pdf_open_timeout_seconds, memory_mib=config.limits.worker_memory_mib)
    # An output carries the clerks' content as it came (up to `max_inflated_bytes` a stream) and
    # streams of its own up to `max_stream_bytes`: pypdf decodes either without stopping short.
    limits = config.limits
    try:
        with pypdf_bounds(max(limits.max_inflated_bytes, limits.max_stream_bytes)):
            return _verify(submission_dir, config, manifest, check, started, rebuild=rebuild, audit=audit,
                           archive_dir=archive_dir)
    finally:
        started.close()


def _verify(submission_dir: Path, config: Config, manifest: dict, check: _Checker, started: PageTexts, *,
            rebuild: bool, audit: bool, archive_dir: Path | None) -> VerifyReport:
    case_id = manifest.get("case_id")
    number = manifest.get("submission")
    if not isinstance(case_id, str):
        case_id = submission_dir.parent.name
    outputs = _check_outputs(submission_dir, manifest, check)
    objects = _ObjectScan(submission_dir, outputs, config)  # read in a worker meanwhile
    slot = len(check.checks)  # its line keeps its place in the report
    try:
        _verify_rest(submission_dir, config, manifest, check, started, case_id, outputs, rebuild=rebuild,
                     archive_dir=archive_dir)
        after = check.checks[slot:]
        del check.checks[slot:]
        objects.finish(check)
        check.checks.extend(after)
    finally:
        objects.cancel()
    report = VerifyReport(submission_dir=submission_dir, case_id=case_id,
                          submission=number if isinstance(number, int) else None,
                          failures=tuple(check.failures), checks=tuple(check.checks), rebuilt=rebuild)
    if audit:
        audit_log.record(config, "verified", case=case_id, actor=audit_log.current_user(),
                         submission=report.submission, kind=manifest.get("kind"), ok=report.ok,
                         failures=len(report.failures), rebuild=rebuild)
    return report


def _verify_rest(submission_dir: Path, config: Config, manifest: dict, check: _Checker, started: PageTexts,
                 case_id: str, outputs: dict[str, dict], *, rebuild: bool, archive_dir: Path | None) -> None:
    number = manifest.get("submission")
    packet = submission_dir / ORG_PACKET
    reader = None
    if packet.is_file():
        try:
            reader = read_pdf(packet)
            labels = list(reader.page_labels)
        except Exception as exc:
            check.fail(f"{ORG_PACKET}: cannot be read ({type(exc).__name__})")
            labels = None
    else:
        labels = None
    _check_bates(submission_dir, manifest, config, case_id, labels, check)
    if reader is not None:
        _check_pages(submission_dir, manifest, config, case_id, reader, outputs, check, archive_dir, started)
    if archive_dir is None and manifest.get("kind") != "draft" and isinstance(number, int):
        for problem in audit_log.sealed_record_problems(config, submission_dir):  # the manifest's own hash
            check.fail(problem)
    if rebuild:
        _compare_rebuild(submission_dir, config, check)
