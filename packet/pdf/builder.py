"""The IMR-organization packet's bytes: pages merged in page-list order, stamped, cleaned, labelled.

Owns: `Builder` (collects the front matter's and the documents' pages into one pypdf writer with
the stamp each page gets, then stamps, sanitises and writes), `build_org_packet` (the packet's page
plan: cover, index, dividers, documents, bookmarks), PDF page labels, and byte-for-byte
determinism: a fixed /ID (sha256 of case, submission, kind, draft flag, generated_at and the
documents' hashes and numbers), /CreationDate and /ModDate from ctx.generated_at, and no set or
hash ordering anywhere.
Must not: decide order, categories, privilege or Bates numbers (`packet.model.pagelist` does),
draw pages (`packet.pdf.frontmatter`), or extract document text.

Where the time goes (1,000 pages): pypdf parsing, cloning and writing the objects is most of it.
Each page's stamp geometry is computed once; stamps share their resources and pages of one size
and placement share one content stream; the cyclic garbage collector is paused while the object
graph is built (`collector_paused`) and the graph is freed by breaking its cycles once written
(`Builder.release`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pypdf import PdfWriter
from pypdf.generic import ArrayObject, ByteStringObject, DictionaryObject, IndirectObject

from packet.fsutil import ensure_dir, read_plain_file
from packet.intake.convert.limits import pypdf_size_cap
from packet.model.context import BuildContext
from packet.model.models import CATEGORY_TITLES, Document
from packet.model.pagelist import PageList, PlacedDocument
from packet.pdf.errors import INFLATION_LIMIT, AssemblyError, StreamLimitError
from packet.pdf.geometry import PageGeometry
from packet.pdf.sanitize import drop_unreachable, sanitize
from packet.pdf.stamp import STAMP_XOBJECT, PageStamp, PageStampError, stamp_pages
from packet.pdfread import PdfReader

PRODUCER = "imr-packet"


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while one output is assembled.

    An assembly builds one graph of some hundred thousand pypdf objects that all stay alive until
    the file is written (the writer holds them); every automatic collection meanwhile walks the
    whole growing graph and frees nothing, which cost about a third of the assembly's CPU time.
    Reference counting still frees every temporary object at once; the graph itself is collected
    as usual once the collector runs again. The collector's state is restored, not forced on, so
    nested or concurrent assemblies leave it as they found it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class DraftPacket:
    """A case's current draft imr-org-packet.pdf (which may not exist yet) and the record of how
    it was written (state/cases/<ID>/draft-packet.json), so the next draft can update it."""

    pdf: Path
    record: Path



@contextlib.contextmanager
def scratch_dir(ctx: BuildContext) -> Iterator[Path]:
    """A private scratch folder under state/work, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="assemble-", dir=ensure_dir(ctx.config.work_dir)) as name:
        yield Path(name)


@dataclass(frozen=True)
class WrittenPage:
    """Where one page of a written packet lives: its object, its stamp form and the stamp's
    resources (object numbers of the file), so a draft can be updated (packet.pdf.incremental)."""

    page: int
    stamp: int | None
    stamp_resources: int | None
    width: float = 0.0  # the page's upright size and /UserUnit, as its stamp was made for
    height: float = 0.0
    user_unit: float = 1.0

    def to_json(self) -> list:
        return [self.page, self.stamp, self.stamp_resources, self.width, self.height, self.user_unit]



def written_page(page, geometry: PageGeometry) -> WrittenPage:
    """Where a page of the writer went: its object, its stamp form and the stamp's resources."""
    stamp = stamp_resources = None
    xobjects = page.get("/Resources", DictionaryObject()).get("/XObject", DictionaryObject())
    ref = xobjects.raw_get(STAMP_XOBJECT) if STAMP_XOBJECT in xobjects else None
    if isinstance(ref, IndirectObject):
        stamp = ref.idnum
        resources = ref.get_object().raw_get("/Resources")
        if isinstance(resources, IndirectObject):
            stamp_resources = resources.idnum
    return WrittenPage(page=page.indirect_reference.idnum, stamp=stamp, stamp_resources=stamp_resources,
                       width=geometry.width, height=geometry.height, user_unit=geometry.user_unit)


class Builder:
    """Collects pages into one writer, with the stamp each page gets, then stamps and writes.
    `packet.pdf.incremental.UpdateBuilder` plays the same plan into an incremental update."""

    def __init__(self, ctx: BuildContext):
        self.ctx = ctx
        self.writer = PdfWriter()
        self.readers: list[PdfReader] = []  # closed once the file is written (see `release`)
        self.stamps: list[PageStamp] = []
        self.labels: list[tuple[str, str | None, int | None]] = []  # (prefix, style, number)
        self.outline: list[tuple[str, int, int | None]] = []  # (title, page index, parent entry index)
        self._count = 0  # pages so far: pypdf recounts its page tree on every len(), so keep our own
        self.written_pages: list[WrittenPage] = []  # set by complete: where each page went in the file
        self.geometry: list[PageGeometry] = []  # set by prepare_pages: each writer page's geometry
        self.sources: list[Document | None] = []  # per writer page: the document it comes from

    @property
    def count(self) -> int:
        return self._count

    def add_generated(self, reader: PdfReader, index: int, label: str) -> int:
        """One page the service rendered (cover, index, divider)."""
        at = self.count
        if not any(known is reader for known in self.readers):
            self.readers.append(reader)
        self.writer.append(reader, pages=[index], import_outline=False)
        self._count += 1
        self.stamps.append(PageStamp())
        self.sources.append(None)
        self.labels.append((label, None, None))
        return at

    def add_document(self, placed: PlacedDocument, *, privileged: bool) -> int:
        document = placed.document
        reader = open_document(document)
        self.readers.append(reader)
        found = len(reader.pages)
        removed = set(document.removed_pages)
        if found != document.pages + len(removed) or any(not 1 <= n <= found for n in removed):
            raise AssemblyError(f"document {document.short} has {found} pages, expected "
                                f"{document.pages + len(removed)}: it changed since it was taken in",
                                reason="page_count", document=document.sha256)
        at = self.count
        first = len(self.stamps)  # pages in the writer so far (one stamp each)
        try:
            if removed:  # pages a person removed never enter the writer
                self.writer.append(reader, pages=[n - 1 for n in document.kept_pages], import_outline=False)
            else:
                self.writer.append(reader, import_outline=False)
        except Exception as exc:  # pypdf on a damaged file: its own errors, and asserts, index and recursion errors
            raise AssemblyError(f"document {document.short} could not be merged: {type(exc).__name__}",
                                reason=INFLATION_LIMIT if pypdf_size_cap(exc) else "merge",
                                document=document.sha256) from exc
        merged = len(self.writer.pages) - first  # the one real count per document
        if merged != document.pages:
            raise AssemblyError(f"document {document.short}: merged {merged} pages, expected "
                                f"{document.pages}", reason="page_count", document=document.sha256)
        self._forget_source(reader, first, merged)
        self._count += merged
        bates = self.ctx.config.bates
        for number in range(placed.bates_first, placed.bates_last + 1):
            self.stamps.append(PageStamp(bates=bates.label(self.ctx.facts.case_id, number),
                                          privileged=privileged, shrink=True))
            self.sources.append(document)
            self.labels.append(bates_label_parts(bates.prefix.format(case_id=self.ctx.facts.case_id),
                                                  bates.digits, number))
        return at

    def _forget_source(self, reader: PdfReader, first: int, merged: int) -> None:
        """Once a document's pages are merged, let go of what its reader parsed and of the file's
        bytes: the writer holds copies, and nothing reads the document again (a read would raise,
        `packet.pdfread.ReleasedFileError`). pypdf's merge leaves each new page an `original_page`
        (the source page, used by the merge alone), which would keep the source's page objects and
        what they reach alive; the reader itself stays in `self.readers`, so no later reader takes
        its id (pypdf keys the objects it has copied by the id of their reader)."""
        for index in range(first, first + merged):
            vars(self.writer.get_page(index)).pop("original_page", None)
        reader.release_file()

    def add_outline(self, title: str, page: int, parent: int | None = None) -> int:
        self.outline.append((title, page, parent))
        return len(self.outline) - 1

    def write(self, out: BinaryIO, *, identity: str, title: str) -> None:
        """Write the file into `out` as it is made (never held whole in memory), then `release`."""
        writer = self.complete(identity=identity, title=title)
        writer.write(out)
        self.release()

    def complete(self, *, identity: str, title: str) -> PdfWriter:
        """Everything `write` does but the writing: the pages stamped and cleaned, labels, outline
        and metadata in place (the writer's pages are what the written file would hold)."""
        writer = self.writer
        self.prepare_pages()
        self._write_labels()
        parents: list = []
        for title_text, page, parent in self.outline:
            parents.append(writer.add_outline_item(title=title_text, page_number=page,
                                                   parent=None if parent is None else parents[parent]))
        finalise(writer, self.ctx, identity=identity, title=title)
        self.written_pages = [written_page(writer.get_page(index), geo)
                              for index, geo in zip(range(self._count), self.geometry, strict=True)]
        return writer

    def prepare_pages(self) -> None:
        """Every page of the writer rebuilt with its stamp (self.stamps, one per writer page);
        then flattened fields, active content removed and every stream measured."""
        writer = self.writer
        if len(writer.pages) != len(self.stamps):
            raise AssemblyError(f"the packet has {len(writer.pages)} pages, expected {len(self.stamps)}",
                                reason="page_plan")
        pages = [writer.get_page(index) for index in range(len(self.stamps))]  # no recount per page
        try:
            self.geometry = stamp_pages(writer, pages, self.stamps, draft=self.ctx.draft)
        except PageStampError as exc:
            document = self.sources[exc.page] if exc.page < len(self.sources) else None
            if document is None:
                raise
            raise AssemblyError(f"document {document.short}: {exc}", reason=INFLATION_LIMIT if pypdf_size_cap(exc)
                                else "stamp", document=document.sha256) from exc
        limit = self.ctx.config.limits.max_stream_bytes
        try:
            sanitize(writer, max_stream_bytes=limit)
        except StreamLimitError as exc:
            document = self.sources[exc.page] if exc.page is not None else None
            if document is None:
                raise
            raise StreamLimitError(f"document {document.short} holds a stream that inflates to more than {limit} "
                                   "bytes ([limits] max_stream_bytes); it cannot go into a packet",
                                   page=exc.page, document=document.sha256) from exc

    def release(self) -> None:
        """Free the parsed and written objects now. Every pypdf object refers to its document
        through its indirect reference, and each document holds its objects, so these graphs are
        cycles that reference counting alone never frees; left to the cyclic collector, it has to
        walk some hundred thousand objects to find them (see `collector_paused`)."""
        for reader in self.readers:
            reader.close()  # drops its parsed objects and page list
        self.readers.clear()
        vars(self.writer).clear()  # the writer is done: drop its objects, pages and cross-references
        self.writer = None

    def _write_labels(self) -> None:
        for start, end, prefix, style, number in label_ranges(self.labels):
            if style is None:
                self.writer.set_page_label(start, end, prefix=prefix)
            else:
                self.writer.set_page_label(start, end, style=style, prefix=prefix or None, start=number)



def label_ranges(labels: list[tuple[str, str | None, int | None]]) -> list[tuple[int, int, str, str | None, int | None]]:
    """(first page, last page, prefix, style, first number) per range: consecutive pages with the
    same prefix and consecutive numbers form one range."""
    ranges = []
    start = 0
    for index in range(1, len(labels) + 1):
        if index < len(labels):
            prefix, style, number = labels[index]
            p_prefix, p_style, p_number = labels[index - 1]
            if (style is not None and prefix == p_prefix and style == p_style
                    and number == p_number + 1):
                continue
        prefix, style, number = labels[start]
        ranges.append((start, index - 1, prefix, style, number))
        start = index
    return ranges


def bates_label_parts(prefix: str, digits: int, number: int) -> tuple[str, str, int]:
    """A Bates label as a page-label range: /D style does not zero-pad, so the zeros go in the
    prefix; a range breaks where the number gains a digit (9 -> 10)."""
    text = str(number)
    return (prefix + "0" * max(digits - len(text), 0), "/D", number)


def build_org_packet(page_list: PageList, ctx: BuildContext, front_path: Path, out: BinaryIO,
                     builder: Builder | None = None) -> None:
    """Write the packet into `out`: `front_path` (cover, index pages, one divider per section) and
    the documents, in the page list's order, played into `builder` (a new `Builder` by default)."""
    builder = builder or Builder(ctx)
    front = PdfReader(front_path)  # cover, index pages, then one divider per section
    if len(front.pages) != page_list.front_pages + len(page_list.sections):
        raise AssemblyError("front matter page count changed", reason="index_pages")
    builder.add_generated(front, 0, "Cover")
    builder.add_outline("Cover sheet", 0)
    for index in range(1, page_list.front_pages):
        builder.add_generated(front, index, f"Index-{index}")
    if page_list.front_pages > 1:
        builder.add_outline("Index of documents", 1)
    for number, section in enumerate(page_list.sections):
        at = builder.add_generated(front, page_list.front_pages + number, f"Divider-{number + 1}")
        if at != section.divider_page - 1:
            raise AssemblyError("divider landed on the wrong page", reason="page_plan")
        parent = builder.add_outline(CATEGORY_TITLES.get(section.category, section.category), at)
        for placed in section.documents:
            at = builder.add_document(placed, privileged=placed.document.is_privileged)
            if at != placed.packet_first - 1:
                raise AssemblyError("a document landed on the wrong page", reason="page_plan")
            title = str(placed.document.title.value)
            if placed.document.is_privileged:
                title += " [PRIVILEGED]"
            builder.add_outline(title, at, parent)
    if builder.count != page_list.total_pages:
        raise AssemblyError(f"packet has {builder.count} pages, page list says {page_list.total_pages}",
                            reason="page_plan")
    builder.write(out, identity=identity_of(ctx, page_list, "imr-org-packet"),
                  title=f"IMR packet {ctx.facts.case_id} submission {ctx.submission}")


def open_document(document: Document) -> PdfReader:
    """The document's PDF, read from a descriptor opened without following a link and checked to
    be a plain file with one name (a clerk's PDF used as is could have been swapped since intake)."""
    try:
        reader = PdfReader(io.BytesIO(read_plain_file(document.pdf_path)))
        if reader.is_encrypted:
            reader.decrypt("")  # intake refuses files that need a password; this is an owner-only lock
        reader.pages  # noqa: B018 - force the page tree now, inside the try
        return reader
    except Exception as exc:  # pypdf on a damaged file: its own errors, and asserts, index and recursion errors
        raise AssemblyError(f"document {document.short} could not be opened: {type(exc).__name__}",
                            reason="open", document=document.sha256) from exc




def identity_of(ctx: BuildContext, page_list: PageList, what: str) -> str:
    """Everything that determines an output, hashed: the /ID of the file."""
    digest = hashlib.sha256()
    parts = [what, ctx.facts.case_id, str(ctx.submission), ctx.kind, str(ctx.draft),
             ctx.generated_at.isoformat(), str(page_list.first_bates), str(page_list.front_pages)]
    for placed in page_list.entries:
        parts += [placed.document.sha256, str(placed.bates_first), placed.category,
                  str(placed.document.is_privileged), str(placed.document.is_withheld)]
    for part in parts:
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def pdf_date(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    offset = moment.utcoffset() or dt.timedelta(0)
    sign = "+" if offset >= dt.timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"D:{moment:%Y%m%d%H%M%S}{sign}{minutes // 60:02d}'{minutes % 60:02d}'"


def finalise(writer: PdfWriter, ctx: BuildContext, *, identity: str, title: str) -> None:
    stamp = pdf_date(ctx.generated_at)
    writer.metadata = {"/Title": title, "/Author": ctx.config.plan.name, "/Creator": PRODUCER,
                       "/Producer": PRODUCER, "/CreationDate": stamp, "/ModDate": stamp}
    file_id = ByteStringObject(bytes.fromhex(identity[:32]))
    writer._ID = ArrayObject([file_id, file_id])  # noqa: SLF001 - fixed /ID: rebuilds are byte-identical
    writer.compress_identical_objects(remove_unreferenced=False)
    drop_unreachable(writer)


