"""Checking a submission (or a draft) against its manifest: what an auditor runs.

Owns: `verify_submission`, which checks, from the files alone,
- every output's SHA-256 and page count against the manifest's `outputs`, and that no file was
  added or removed;
- Bates continuity: the documents' Bates ranges have no gap or overlap, continue from the previous
  submission of the case, match their page counts and packet pages, and the PDF page labels of
  imr-org-packet.pdf equal the Bates numbers;
- the privileged mark on every page of every privileged document, and on no other page;
- that no page of a withheld (privileged or withheld-by-law) document appears in any member or
  provider output, by page content (text, images, and content streams of the archived source),
  not by file name;
- with `rebuild=True`, byte identity with a rebuild from the archived originals (packet.seal).

Must not: change anything in the submission or the archive. It writes only the audit event
`verified` and a scratch folder under `state/work/` for a rebuild, which it removes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .errors import PacketError, UsageError
from .fsutil import ensure_dir, sha256_file
from .models import PRIVILEGED_MARK

MANIFEST = "manifest.json"
ORG_PACKET = "imr-org-packet.pdf"
# Everything the member or the member's provider receives (spec.md "Outputs").
RECIPIENT_OUTPUTS = ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf",
                     "annotated-list.csv", "notice-letter.docx")
# A withheld page is compared by text only when its text (without its title and the service's
# stamps) is long enough to be its own: a short line ("Page 2") could appear anywhere. Shorter pages
# are still compared by content stream and images.
MIN_TEXT_CHARS = 80
MIN_IMAGE_BYTES = 2048
MIN_CONTENT_BYTES = 64
PAGE_XOBJECT = "/ImrPage"  # packet.assemble: the form holding a source page's own content
STAMP_XOBJECT = "/ImrStamp"  # packet.assemble: the form holding the service's stamps
_WS = re.compile(r"\s+")


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


def _norm(text: str) -> str:
    return _WS.sub("", text or "").lower()


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


def _pdf_reader(path: Path):
    from pypdf import PdfReader

    return PdfReader(str(path))


def _page_text(page) -> str:
    try:
        return page.extract_text() or ""
    except Exception:  # pypdf raises various errors on odd pages; an empty text fails safe
        return ""


def _xobject_blobs(resources, seen: set[int], out: set[str]) -> None:
    """Hashes of the sizeable images and form contents drawn by a page, also inside forms."""
    try:
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        xobjects = xobjects.get_object() if xobjects is not None else None
    except Exception:
        return
    if not xobjects:
        return
    for name in xobjects:
        if name == STAMP_XOBJECT:
            continue  # the service's own stamp: Bates label, privileged mark, DRAFT
        try:
            obj = xobjects[name].get_object()
        except Exception:
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        subtype = obj.get("/Subtype")
        if subtype == "/Image":
            data = getattr(obj, "_data", b"") or b""
            if len(data) >= MIN_IMAGE_BYTES:
                out.add("image:" + hashlib.sha256(data).hexdigest())
        elif subtype == "/Form":
            try:
                data = obj.get_data()
            except Exception:
                data = b""
            if len(data.strip()) >= MIN_CONTENT_BYTES:
                out.add("content:" + hashlib.sha256(data.strip()).hexdigest())
            _xobject_blobs(obj.get("/Resources"), seen, out)


def _page_blobs(page) -> set[str]:
    """Content fingerprints of a page: its images, its forms, and its own content stream unless
    that is only the service's wrapper (a page of imr-org-packet.pdf draws /ImrPage, which holds
    the source page's content)."""
    out: set[str] = set()
    try:
        resources = page.get("/Resources")
        _xobject_blobs(resources, set(), out)
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        wrapped = xobjects is not None and PAGE_XOBJECT in xobjects.get_object()
    except Exception:
        wrapped = False
    if not wrapped:
        content = _page_content(page).strip()
        if len(content) >= MIN_CONTENT_BYTES:
            out.add("content:" + hashlib.sha256(content).hexdigest())
    return out


def _page_content(page) -> bytes:
    try:
        contents = page.get_contents()
        return contents.get_data() if contents is not None else b""
    except Exception:
        return b""


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
    from .register import sealed_submissions

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
                pages = len(_pdf_reader(path).pages)
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
        from .register import sealed_submissions

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


def _withheld_sources(manifest: dict, config: Config, case_id: str, doc: dict,
                      archive_dir: Path | None) -> Path | None:
    """The archived PDF a withheld document's pages came from (for content-stream fingerprints)."""
    number = manifest.get("submission")
    if archive_dir is None:
        if not isinstance(number, int) or manifest.get("kind") == "draft":
            return None
        archive_dir = config.paths.archive / case_id / f"submission-{number:02d}"
    try:
        with open(archive_dir / "_sealed" / "documents.json", encoding="utf-8") as handle:
            docs = json.load(handle)["documents"]
    except (OSError, ValueError, KeyError):
        return None
    for entry in docs:
        if entry.get("source") == doc.get("source") and entry.get("pdf"):
            path = archive_dir / entry["pdf"]
            return path if path.is_file() else None
    return None


def _check_pages(submission_dir: Path, manifest: dict, config: Config, case_id: str,
                 reader, outputs: dict[str, dict], check: _Checker, archive_dir: Path | None) -> None:
    """The privileged mark, and that no withheld page reached a member or provider output."""
    pages = reader.pages
    texts = [_page_text(page) for page in pages]
    norm_mark = _norm(PRIVILEGED_MARK)
    privileged_pages: set[int] = set()
    withheld: list[tuple[str, int]] = []  # (source, packet page)
    withheld_docs = []
    for doc in manifest.get("documents", []):
        packet_pages = doc.get("packet_pages") or []
        if doc.get("privileged"):
            privileged_pages.update(packet_pages)
        if doc.get("privileged") or doc.get("withheld_from_member"):
            withheld.extend((doc.get("source", "?"), p) for p in packet_pages)
            withheld_docs.append(doc)

    before = len(check.failures)
    for index, text in enumerate(texts, 1):
        marked = norm_mark in _norm(text)
        if index in privileged_pages and not marked:
            check.fail(f"{ORG_PACKET} page {index}: belongs to a privileged document but does not "
                       "carry the privileged mark")
        elif index not in privileged_pages and marked:
            check.fail(f"{ORG_PACKET} page {index}: carries the privileged mark but is not a page "
                       "of a privileged document")
    check.passed(before, f"the privileged mark is on all {len(privileged_pages)} privileged page(s) "
                         "and on no other page")

    before = len(check.failures)
    bates_re = re.compile(re.escape(_norm(config.bates.prefix.format(case_id=case_id)))
                          + r"\d{%d}" % config.bates.digits)

    def body(text: str) -> str:
        # The page's own text: without the service's stamps (Bates number, privileged mark, DRAFT).
        text = _norm(text).replace(norm_mark, "").replace("draft", "")
        return bates_re.sub("", text)

    fingerprints = []  # (source, page, text body, content fingerprints)
    titles = {doc.get("source"): _norm(str(doc.get("title") or "")) for doc in withheld_docs}
    for source, page in withheld:
        if not 0 < page <= len(pages):
            continue
        text = body(texts[page - 1])
        # The annotated list names every withheld document by its title: a page that holds little
        # more than its title must not count as "found" there, so the title does not count.
        own = len(text) - (len(titles[source]) if titles.get(source) and titles[source] in text else 0)
        fingerprints.append((source, page, text if own >= MIN_TEXT_CHARS else "", _page_blobs(pages[page - 1])))
    streams = []  # (source, page of the document, decoded content stream of the archived source)
    for doc in withheld_docs:
        path = _withheld_sources(manifest, config, case_id, doc, archive_dir)
        if path is None:
            continue
        try:
            for number, page in enumerate(_pdf_reader(path).pages, 1):
                content = _page_content(page)
                if len(content.strip()) >= MIN_CONTENT_BYTES:
                    streams.append((doc.get("source", "?"), number, content))
        except Exception:
            continue

    checked = []
    for name in RECIPIENT_OUTPUTS:
        if name not in outputs or not (submission_dir / name).is_file():
            continue
        checked.append(name)
        path = submission_dir / name
        recipient_pages = _recipient_pages(path)
        for label, text, blobs, content in recipient_pages:
            normalized = body(text)
            for source, page, page_body, page_blobs in fingerprints:
                if page_body and page_body in normalized:
                    check.fail(f'{name} {label}: holds the text of withheld document "{source}" '
                               f"({ORG_PACKET} page {page})")
                elif page_blobs & blobs:
                    check.fail(f'{name} {label}: holds the page content or an image of withheld '
                               f'document "{source}" ({ORG_PACKET} page {page})')
            if content:
                for source, number, stream in streams:
                    if stream in content:
                        check.fail(f'{name} {label}: holds the page content of withheld document '
                                   f'"{source}" (its page {number})')
    check.passed(before, f"no page of {len(withheld_docs)} withheld document(s) appears in "
                         f"{', '.join(checked) or 'any recipient output'}")


def _recipient_pages(path: Path) -> list[tuple[str, str, set[str], bytes]]:
    """(label, text, content fingerprints, content stream) per page of a member/provider output."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        out = []
        try:
            reader = _pdf_reader(path)
            for number, page in enumerate(reader.pages, 1):
                out.append((f"page {number}", _page_text(page), _page_blobs(page), _page_content(page)))
        except Exception:
            return [("(unreadable)", "", set(), b"")]
        return out
    if suffix == ".docx":
        try:
            import docx

            document = docx.Document(str(path))
            text = "\n".join(p.text for p in document.paragraphs)
            for table in document.tables:
                for row in table.rows:
                    text += "\n" + " ".join(cell.text for cell in row.cells)
        except Exception:
            text = ""
        return [("(document)", text, set(), b"")]
    return [("(file)", path.read_text(encoding="utf-8", errors="replace"), set(), b"")]


def _version_changes(sealed_manifest: Path, rebuilt_manifest: Path) -> list[str]:
    try:
        with open(sealed_manifest, encoding="utf-8") as a, open(rebuilt_manifest, encoding="utf-8") as b:
            then, now = json.load(a).get("versions") or {}, json.load(b).get("versions") or {}
    except (OSError, ValueError):
        return []
    return [f"{name} {then.get(name)} at sealing, {now.get(name)} now"
            for name in sorted(set(then) | set(now)) if then.get(name) != now.get(name)]


def _compare_rebuild(submission_dir: Path, config: Config, check: _Checker) -> None:
    from .seal import rebuild_submission

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
    case_id = manifest.get("case_id")
    number = manifest.get("submission")
    check = _Checker()
    if manifest.get("schema") != "imr-packet/manifest@1":
        check.fail(f"{MANIFEST}: schema is {manifest.get('schema')!r}, expected imr-packet/manifest@1")
    if not isinstance(case_id, str):
        check.fail(f"{MANIFEST}: case_id is missing")
        case_id = submission_dir.parent.name
    outputs = _check_outputs(submission_dir, manifest, check)
    packet = submission_dir / ORG_PACKET
    reader = None
    if packet.is_file():
        try:
            reader = _pdf_reader(packet)
            labels = list(reader.page_labels)
        except Exception as exc:
            check.fail(f"{ORG_PACKET}: cannot be read ({type(exc).__name__})")
            labels = None
    else:
        labels = None
    _check_bates(submission_dir, manifest, config, case_id, labels, check)
    if reader is not None:
        _check_pages(submission_dir, manifest, config, case_id, reader, outputs, check, archive_dir)
    if rebuild:
        _compare_rebuild(submission_dir, config, check)
    report = VerifyReport(submission_dir=submission_dir, case_id=case_id,
                          submission=number if isinstance(number, int) else None,
                          failures=tuple(check.failures), checks=tuple(check.checks), rebuilt=rebuild)
    if audit:
        from . import audit as audit_log

        audit_log.record(config, "verified", case=case_id, actor=audit_log.current_user(),
                         submission=report.submission, kind=manifest.get("kind"), ok=report.ok,
                         failures=len(report.failures), rebuild=rebuild)
    return report
