"""What the desk shows: cases, their documents and the items waiting for a person, read from the
files the service writes (the draft's manifest.json and review.json, the status of each case).

Documents are named in URLs by a short hash of their content, never by file name; pages are looked
up through the draft manifest, never through a path the browser sends.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packet.config import Config
from packet.fsutil import atomic_write_bytes, ensure_dir
from packet.model.case import check_case_id
from packet.pipeline.pagetext import bounded_command
from packet.errors import CaseError
from packet.service.status import CaseStatus, case_status, collect_status, parse_time

DOC_KEY_RE = re.compile(r"[0-9a-f]{12}")
CATEGORY_NAMES = {
    "medical_records": "Medical records",
    "correspondence": "Provided to or submitted by the enrollee",
    "plan_statements": "Plan documents and statements of reasons",
    "needs_review": "Needs a category",
}
THUMB_DPI = 60
PAGE_DPI = 110
PICTURE_SECONDS = 60  # one page picture; pdftoppm is killed after this


@dataclass(frozen=True)
class DeskDocument:
    key: str  # first 12 hex characters of the content's SHA-256: the document's name in URLs
    sha256: str
    source: str
    title: str
    date: str | None
    category: str
    category_reason: str
    privileged: bool
    privilege_reason: str | None
    withheld: bool
    withheld_reason: str | None
    identity: str
    identity_reason: str
    pages: int
    bates: str
    packet_pages: tuple[int, ...]
    excluded: str | None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def category_name(self) -> str:
        return CATEGORY_NAMES.get(self.category, self.category)

    @property
    def removed_pages(self) -> tuple[int, ...]:
        """Pages of the file (1-based) a person removed: in no output, so in no page image here."""
        pages = self.raw.get("removed_pages")
        return tuple(sorted({p for p in pages if isinstance(p, int)})) if isinstance(pages, list) else ()

    @property
    def original_pages(self) -> int:
        """How many pages the file itself has (the kept ones and the removed ones)."""
        return self.pages + len(self.removed_pages)

    @property
    def page_numbers(self) -> tuple[int, ...]:
        """The file's page number of each page image (1-based), in packet order: removed pages skipped."""
        removed = set(self.removed_pages)
        return tuple(n for n in range(1, self.original_pages + 1) if n not in removed)

    @property
    def flagged_pages(self) -> tuple[int, ...]:
        """Pages (1-based, of the document) that the identity check names, if any."""
        pages = self.raw.get("other_person_pages")
        if isinstance(pages, list):
            return tuple(sorted({int(p) for p in pages if isinstance(p, int)}))
        if self.identity != "mismatch":
            return ()
        return tuple(sorted({int(n) for n in re.findall(r"pages? (\d+)", self.identity_reason or "")}))


@dataclass(frozen=True)
class ReviewItem:
    case_id: str
    code: str
    text: str
    blocking: bool
    document: DeskDocument | None
    due: dt.datetime | None

    @property
    def key(self) -> str:
        return f"{self.code}.{self.document.key if self.document else 'case'}"


@dataclass(frozen=True)
class CaseDetail:
    status: CaseStatus
    documents: tuple[DeskDocument, ...]
    rejected: tuple[dict, ...]
    items: tuple[ReviewItem, ...]
    draft_generated: dt.datetime | None
    sealed: tuple[str, ...]


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _own_folder(base: Path, folder: Path) -> bool:
    """A real folder (not a link) inside `base`."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    return folder.resolve().parent == base.resolve()


def draft_dir(config: Config, case_id: str) -> Path:
    return config.paths.outbox / case_id / "draft"


def _document(entry: dict) -> DeskDocument | None:
    sha = str(entry.get("sha256") or "")
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        return None
    first, last = entry.get("bates_first"), entry.get("bates_last")
    return DeskDocument(
        key=sha[:12], sha256=sha, source=str(entry.get("source") or ""), title=str(entry.get("title") or ""),
        date=entry.get("date"), category=str(entry.get("category") or ""),
        category_reason=str(entry.get("category_reason") or ""), privileged=bool(entry.get("privileged")),
        privilege_reason=entry.get("privilege_reason"), withheld=bool(entry.get("withheld_from_member")),
        withheld_reason=entry.get("withheld_reason"), identity=str(entry.get("identity") or ""),
        identity_reason=str(entry.get("identity_reason") or ""), pages=int(entry.get("pages") or 0),
        bates=f"{first} - {last}" if first and last and first != last else str(first or ""),
        packet_pages=tuple(int(p) for p in entry.get("packet_pages") or () if isinstance(p, int)),
        excluded=entry.get("excluded"), raw=entry)


def _items(case_id: str, documents: list[DeskDocument], review: dict, due: dt.datetime | None) -> list[ReviewItem]:
    by_source = {d.source: d for d in documents}
    items: list[ReviewItem] = []
    seen: set[tuple[str, str]] = set()
    for entry in review.get("blocks_sealing", []):
        if isinstance(entry, dict) and entry.get("code"):
            document = by_source.get(entry.get("source") or entry.get("document") or "")
            code = str(entry["code"])
            items.append(ReviewItem(case_id, code, str(entry.get("text") or entry.get("message") or code),
                                    True, document, due))
            seen.add((code, document.key if document else ""))
    for document in documents:
        if document.excluded:
            continue
        derived = []
        if document.category == "needs_review":
            derived.append(("needs_review", "No rule could tell which of the three categories this is.", True))
        if document.identity == "mismatch":
            pages = ", ".join(str(p) for p in document.flagged_pages) or "see the document"
            derived.append(("identity_mismatch", f"Another person appears as the patient (pages {pages}).", True))
        if document.identity == "not_found":
            derived.append(("identity_not_found", "The member's name, id or birth date was not found in it.", False))
        for code, text, blocking in derived:
            if (code, document.key) not in seen:
                items.append(ReviewItem(case_id, code, text, blocking, document, due))
                seen.add((code, document.key))
    for entry in review.get("blocks_sealing", []):
        if isinstance(entry, str) and not documents:
            items.append(ReviewItem(case_id, "case", entry, True, None, due))
    return items


def case_detail(config: Config, case_id: str) -> CaseDetail | None:
    """Everything the case page shows, or None when there is no such case."""
    try:
        check_case_id(case_id)
    except CaseError:
        return None
    inbox, outbox = config.paths.inbox / case_id, config.paths.outbox / case_id
    if not _own_folder(config.paths.inbox, inbox) and not _own_folder(config.paths.outbox, outbox):
        return None
    if outbox.is_symlink() or (outbox / "draft").is_symlink():
        return None
    status = case_status(config, case_id)
    manifest = _read_json(draft_dir(config, case_id) / "manifest.json") or {}
    review = _read_json(draft_dir(config, case_id) / "review.json") or {}
    documents = [d for d in (_document(e) for e in manifest.get("documents", []) if isinstance(e, dict)) if d]
    sealed = tuple(sorted(p.name for p in (config.paths.outbox / case_id).glob("submission-*") if p.is_dir()))
    return CaseDetail(status=status, documents=tuple(documents),
                      rejected=tuple(r for r in manifest.get("rejected", []) if isinstance(r, dict)),
                      items=tuple(_items(case_id, documents, review, status.due)),
                      draft_generated=parse_time(manifest.get("generated_at")), sealed=sealed)


def all_cases(config: Config) -> list[CaseStatus]:
    return collect_status(config)


def review_queue(config: Config) -> list[ReviewItem]:
    """Every item waiting for a person across cases, oldest deadline first, blocking items first."""
    items: list[ReviewItem] = []
    for status in collect_status(config):
        detail = case_detail(config, status.case_id)
        if detail is not None:
            items.extend(detail.items)
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return sorted(items, key=lambda i: (not i.blocking, i.due or far, i.case_id, i.code))


def find_document(detail: CaseDetail, key: str) -> DeskDocument | None:
    if not DOC_KEY_RE.fullmatch(key or ""):
        return None
    return next((d for d in detail.documents if d.key == key), None)


def page_image(config: Config, case_id: str, document: DeskDocument, page: int, *, thumb: bool) -> bytes | None:
    """PNG of one page of a document, as it appears in the draft IMR packet; rendered with pdftoppm
    once and cached under state/desk/pages/ (keyed by the packet's content, so a rebuilt draft gets
    new images)."""
    if not 1 <= page <= len(document.packet_pages):
        return None
    packet = draft_dir(config, case_id) / "imr-org-packet.pdf"
    if packet.is_symlink() or not packet.resolve().is_relative_to(config.paths.outbox.resolve()):
        return None
    try:
        stat = packet.stat()
    except OSError:
        return None
    packet_page = document.packet_pages[page - 1]
    dpi = THUMB_DPI if thumb else PAGE_DPI
    stamp = f"{stat.st_size:x}-{stat.st_mtime_ns:x}"
    cache = config.paths.state / "desk" / "pages" / case_id / f"{stamp}-{packet_page}-{dpi}.png"
    cached = cache.read_bytes() if cache.is_file() else b""
    if cached.startswith(b"\x89PNG"):
        return cached
    ensure_dir(cache.parent)
    with tempfile.TemporaryDirectory(dir=cache.parent) as tmp:
        # The packet holds the clerks' pages: pdftoppm draws them under the workers' memory limit
        # and a time limit, in the desk's threaded process (so the limit is set by a shell).
        command = bounded_command(["pdftoppm", "-png", "-r", str(dpi), "-f", str(packet_page), "-l",
                                   str(packet_page), "-singlefile", str(packet), str(Path(tmp) / "page")],
                                  config.limits.worker_memory_mib)
        if command is None:
            return None
        try:
            subprocess.run(command, capture_output=True, timeout=PICTURE_SECONDS, check=True)
            image = (Path(tmp) / "page.png").read_bytes()
        except (OSError, subprocess.SubprocessError):
            return None
    if not image.startswith(b"\x89PNG"):
        return None
    for old in cache.parent.glob("*.png") if cache.parent.is_dir() else ():
        if not old.name.startswith(stamp):
            old.unlink(missing_ok=True)
    atomic_write_bytes(cache, image)
    return image
