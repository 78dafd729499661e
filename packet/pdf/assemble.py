"""Assembly of the IMR-organization packet and of copy sets (pypdf only).

Owns: merging the rendered front matter, dividers and the clerks' documents into one PDF in
page-list order; bookmarks; PDF page labels; stamping (Bates label, privileged mark, DRAFT) with
the content operators `packet.pdf.frontmatter` makes for each page; moving page content out of the stamp
strips; removing active content; byte-for-byte deterministic output; and `pdf_summary`, the normalised
view of a written PDF that tests and `verify` compare.
Must not: decide order, categories, privilege or Bates numbers (`packet.model.pagelist` does, from the
documents' decisions), draw pages (`packet.pdf.frontmatter`), or extract document text.

Public interface
----------------
``write_org_packet(documents, ctx, out_path, *, first_bates) -> PageList``
    Writes imr-org-packet.pdf atomically and returns the page list it used (the manifest and the
    mailings must use the same one). Excluded documents are left out; `needs_review` documents go
    in a last section "Needs review" (the release gate keeps them out of sealed submissions).

``write_copy_set(page_list, ctx, out_path, *, recipient, withheld_reason=None) -> list[CopyItem]``
    A copy set for `recipient` ("member" or "provider"): every page of every document the
    recipient may have, in page-list order, each page Bates-stamped as in the packet; each
    withheld document (privileged, withheld by law, or not yet classified) is replaced by ONE
    slip sheet stamped with its Bates range that says "Withheld: <reason>" and shows only the Bates
    range, the page count and the category. No page of a withheld document is ever read.
    `withheld_reason(document) -> str` lets the caller use the same wording as the annotated list.
    Returns what went in, item by item.

``copy_set_items(page_list, withheld_reason=None) -> list[CopyItem]``
    The same decision without writing anything (verify, annotated list).

``pdf_summary(path) -> dict``
    {"pages", "page_labels", "page_sizes", "outline": [{"title", "page" (1-based), "children"}],
    "stamps": [[text, ...] per page], "active_content": [finding, ...]}.

How stamping works (fast: no content stream is parsed)
-------------------------------------------------------
Every output page becomes: a form XObject /ImrPage holding the page's original content and
resources (so unbalanced q/Q in a source cannot leak), drawn through one matrix that removes the
page's /Rotate, moves its visible box to the origin and, on document pages, shrinks it slightly
(about 0.95-0.97) so the bottom strip (Bates label) and top strip (privileged mark) are free; then
a form XObject /ImrStamp holding that page's stamp operators. So a label never covers content,
whatever the source's margins (the shrink is applied to every document page: telling a narrow
margin from a wide one would mean parsing or rendering every page). Annotation rectangles are
moved with the content. Form fields are flattened: each widget's current appearance is drawn into
the page (/ImrField1...) and the widget removed; /AcroForm goes when no widget is left (a widget
without an appearance stays interactive).

Active content: catalog /OpenAction and /AA, /Names /JavaScript and /EmbeddedFiles, XFA, page and
annotation /AA, JavaScript/Launch/SubmitForm/ImportData/GoToR/GoToE/Rendition/... actions
(neutralised to an inert named action), file-attachment/media annotations, and /EF of file
specifications are removed; then every object the document no longer reaches is left out.
Determinism: fixed /ID (sha256 of case, submission, kind, draft flag, generated_at and the
documents' hashes and numbers), /CreationDate and /ModDate from ctx.generated_at, reportlab
`invariant=1`, and no set or hash ordering anywhere; tested across processes.

Where the time goes (1,000 pages): pypdf parsing, cloning and writing the objects is most of it.
Around that, nothing is done twice: the front matter is rendered once (its page count comes from
laying the index out without drawing it, `packet.pdf.frontmatter.estimate_front_pages`); each page's stamp
geometry is computed once; stamps share their resources and pages of one size and placement
share one content stream; the cyclic garbage collector is paused while the object graph is built
(`_collector_paused`) and the graph is freed by breaking its cycles once written (`_Builder._release`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import io
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError, PyPdfError
from pypdf.generic import (ArrayObject, ByteStringObject, ContentStream, DecodedStreamObject, DictionaryObject,
                           EncodedStreamObject, FloatObject, IndirectObject, NameObject, NumberObject,
                           StreamObject, TextStringObject)

from packet.model.context import BuildContext
from packet.errors import PacketError
from packet.fsutil import atomic_write_bytes, ensure_dir
from packet.model.models import CATEGORY_TITLES, NEEDS_REVIEW, Document
from packet.model.pagelist import PageList, PlacedDocument, number_pages
from packet.pdf.frontmatter import (STAMP_FONT, STAMP_FONT_BOLD, STAMP_FONT_BOLD_RESOURCE, STAMP_FONT_RESOURCE, WATERMARK_ALPHA,
                     WATERMARK_ALPHA_RESOURCE, WATERMARK_XOBJECT, SlipSheet, StampSpec, estimate_front_pages,
                     render_front_matter, render_slip_sheets, stamp_operators, watermark_operators)

PAGE_XOBJECT = "/ImrPage"
STAMP_XOBJECT = "/ImrStamp"
WIDGET_XOBJECT = "/ImrField"
PRODUCER = "imr-packet"

# Actions that run code, open other files or send data (PDF 32000-1 12.6.4). URI, GoTo and Named
# actions stay: they only move within the document or show a web address.
DANGEROUS_ACTIONS = frozenset({"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE",
                               "/Rendition", "/RichMediaExecute", "/Sound", "/Movie", "/SetOCGState"})
# Annotations that carry embedded files or media players: dropped whole.
DROPPED_ANNOTATIONS = frozenset({"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"})


class AssemblyError(PacketError):
    """A document could not be merged (it changed since intake, or pypdf cannot read it)."""

    reason = "assembly"


# --- the page plan -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _PageStamp:
    bates: str | None = None
    privileged: bool = False
    shrink: bool = False  # document pages: shrink content out of the stamp strips


@dataclass(frozen=True)
class CopyItem:
    """One entry of a copy set: the document's pages, or a slip sheet in its place."""

    placed: PlacedDocument
    withheld: bool
    reason: str | None  # why it is withheld (None when included)


def default_withheld_reason(document: Document) -> str:
    """Wording that never quotes the document (a decision's evidence may hold its text)."""
    if document.category.value == NEEDS_REVIEW:
        return "not yet reviewed"
    if document.is_privileged:
        return "legally privileged or proprietary (H&S 1374.30(n))"
    return "withheld from the enrollee as required by law"


def copy_set_items(page_list: PageList,
                   withheld_reason: Callable[[Document], str] | None = None) -> list[CopyItem]:
    reason_of = withheld_reason or default_withheld_reason
    items = []
    for placed in page_list.entries:
        document = placed.document
        # Unclassified documents may turn out privileged: never copy them (drafts only).
        withheld = document.is_withheld or document.category.value == NEEDS_REVIEW
        items.append(CopyItem(placed=placed, withheld=withheld, reason=reason_of(document) if withheld else None))
    return items


# --- public entry points -----------------------------------------------------------------------
_FRONT_PAGES_SEEN: dict[tuple, int] = {}  # (case, submission, kind, draft) -> front pages of its last build


def write_org_packet(documents: list[Document], ctx: BuildContext, out_path: Path, *,
                     first_bates: int, on_page_list: Callable[[PageList], None] | None = None,
                     previous: DraftPacket | None = None) -> PageList:
    """Write imr-org-packet.pdf (atomically) and return the page list it used.

    `on_page_list(page_list)`, if given, is called as soon as the pages are numbered, before the
    front matter is rendered and the documents merged (the mailings start from it meanwhile, in
    another process); called again with the corrected list in the rare case the front matter
    takes another number of pages than counted, and the last call is the page list returned.
    `previous` (drafts only): the case's current draft packet and its record; when it can be
    updated (packet.pdf.incremental) the new packet is that file plus an incremental update, and
    the record is rewritten either way."""
    bates = ctx.config.bates
    case_id = ctx.facts.case_id

    def numbered(front_pages: int) -> PageList:
        return number_pages(documents, case_id=case_id, submission=ctx.submission, kind=ctx.kind,
                            first_bates=first_bates, front_pages=front_pages, bates=bates)

    with _collector_paused(), _work_dir(ctx) as work:
        front_path = work / "front.pdf"
        # The packet page numbers the index shows depend on how many pages the cover and index
        # take. Start from a count (the previous build's in this process, else a layout of the
        # index without drawing it), render with it and compare with the pages really made; render
        # again until they agree. A wrong starting count costs a rendering, never the result: the
        # kept rendering is always one made with the page numbers of its own page count.
        memo_key = (case_id, ctx.submission, ctx.kind, ctx.draft)
        front_pages = _FRONT_PAGES_SEEN.get(memo_key)
        if front_pages is None:
            front_pages = estimate_front_pages(ctx, numbered(0))
        for _ in range(4):
            page_list = numbered(front_pages)
            if on_page_list is not None:  # the mailings need not wait for the front matter
                on_page_list(page_list)  # (announced again only if the count proves wrong)
            rendered = render_front_matter(ctx, page_list, front_path).front_pages
            if rendered == front_pages:
                break
            front_pages = rendered
        else:
            raise AssemblyError("the index page count did not settle", reason="index_pages")
        if len(_FRONT_PAGES_SEEN) >= 1000:
            _FRONT_PAGES_SEEN.clear()
        _FRONT_PAGES_SEEN[memo_key] = front_pages
        if previous is None or not ctx.draft:
            data = _build_org_packet(page_list, ctx, front_path, work)
        else:
            from packet.pdf.incremental import build_draft_packet

            data = build_draft_packet(page_list, ctx, front_path, work, previous)
    atomic_write_bytes(Path(out_path), data)
    return page_list


def write_copy_set(page_list: PageList, ctx: BuildContext, out_path: Path, *, recipient: str,
                   withheld_reason: Callable[[Document], str] | None = None) -> list[CopyItem]:
    """Write a copy set for `recipient` (atomically); see the module docstring."""
    items = copy_set_items(page_list, withheld_reason)
    with _collector_paused(), _work_dir(ctx) as work:
        slips = [SlipSheet(bates_range=item.placed.bates_range, pages=item.placed.document.pages,
                           category=item.placed.category, reason=item.reason or "")
                 for item in items if item.withheld]
        slips_path = work / "slips.pdf"
        render_slip_sheets(ctx, slips, slips_path)
        data = _build_copy_set(items, ctx, slips_path, work, recipient=recipient, page_list=page_list)
    atomic_write_bytes(Path(out_path), data)
    return items


@contextlib.contextmanager
def _collector_paused():
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


class _work_dir:
    """A private scratch folder under state/work, removed afterwards."""

    def __init__(self, ctx: BuildContext):
        self._ctx = ctx

    def __enter__(self) -> Path:
        self._tmp = tempfile.TemporaryDirectory(prefix="assemble-", dir=ensure_dir(self._ctx.config.work_dir))
        return Path(self._tmp.name)

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()


# --- building ----------------------------------------------------------------------------------
class _Builder:
    """Collects pages into one writer, with the stamp each page gets, then stamps and writes."""

    def __init__(self, ctx: BuildContext):
        self.ctx = ctx
        self.writer = PdfWriter()
        self.readers: list[PdfReader] = []  # closed once the file is written (see `_release`)
        self.stamps: list[_PageStamp] = []
        self.labels: list[tuple[str, str | None, int | None]] = []  # (prefix, style, number)
        self.outline: list[tuple[str, int, int | None]] = []  # (title, page index, parent entry index)
        self._count = 0  # pages so far: pypdf recounts its page tree on every len(), so keep our own
        self.written_pages: list[WrittenPage] = []  # set by finish: where each page went in the file
        self.geometry: list = []  # set by _prepare_pages: each writer page's _Geometry

    @property
    def count(self) -> int:
        return self._count

    def add_generated(self, reader: PdfReader, index: int, label: str) -> int:
        """One page the service rendered (cover, index, divider, slip sheet)."""
        at = self.count
        if not any(known is reader for known in self.readers):
            self.readers.append(reader)
        self.writer.append(reader, pages=[index], import_outline=False)
        self._count += 1
        self.stamps.append(_PageStamp())
        self.labels.append((label, None, None))
        return at

    def add_document(self, placed: PlacedDocument, *, privileged: bool) -> int:
        document = placed.document
        reader = _open_document(document)
        self.readers.append(reader)
        found = len(reader.pages)
        if found != document.pages:
            raise AssemblyError(f"document {document.short} has {found} pages, expected "
                                f"{document.pages}: it changed since it was taken in", reason="page_count")
        at = self.count
        first = len(self.stamps)  # pages in the writer so far (one stamp each)
        try:
            self.writer.append(reader, import_outline=False)
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AssemblyError(f"document {document.short} could not be merged: {type(exc).__name__}",
                                reason="merge") from exc
        merged = len(self.writer.pages) - first  # the one real count per document
        if merged != document.pages:
            raise AssemblyError(f"document {document.short}: merged {merged} pages, expected "
                                f"{document.pages}", reason="page_count")
        self._count += merged
        bates = self.ctx.config.bates
        for number in range(placed.bates_first, placed.bates_last + 1):
            self.stamps.append(_PageStamp(bates=bates.label(self.ctx.facts.case_id, number),
                                          privileged=privileged, shrink=True))
            self.labels.append(_bates_label_parts(bates.prefix.format(case_id=self.ctx.facts.case_id),
                                                  bates.digits, number))
        return at

    def add_outline(self, title: str, page: int, parent: int | None = None) -> int:
        self.outline.append((title, page, parent))
        return len(self.outline) - 1

    def finish(self, work: Path, *, identity: str, title: str) -> bytes:
        writer = self.writer
        self._prepare_pages()
        self._write_labels()
        parents: list = []
        for title_text, page, parent in self.outline:
            parents.append(writer.add_outline_item(title=title_text, page_number=page,
                                                   parent=None if parent is None else parents[parent]))
        _finalise(writer, self.ctx, identity=identity, title=title)
        self.written_pages = [_written_page(writer.get_page(index), geo)
                              for index, geo in zip(range(self._count), self.geometry, strict=True)]
        buffer = io.BytesIO()
        writer.write(buffer)
        self._release()
        return buffer.getvalue()

    def _prepare_pages(self) -> None:
        """Every page of the writer rebuilt with its stamp (self.stamps, one per writer page);
        then flattened fields and active content removed."""
        writer = self.writer
        if len(writer.pages) != len(self.stamps):
            raise AssemblyError(f"the packet has {len(writer.pages)} pages, expected {len(self.stamps)}",
                                reason="page_plan")
        pages = [writer.get_page(index) for index in range(len(self.stamps))]  # no recount per page
        geometry = self.geometry = [_page_geometry(page) for page in pages]
        specs = [StampSpec(width=g.width, height=g.height, bates=s.bates, privileged=s.privileged,
                           draft=self.ctx.draft, user_unit=g.user_unit)
                 for g, s in zip(geometry, self.stamps, strict=True)]
        stamp_forms = _StampForms(writer)
        page_streams: dict[bytes, IndirectObject] = {}
        for page, geo, stamp, spec in zip(pages, geometry, self.stamps, specs, strict=True):
            scale, dx, dy = 1.0, 0.0, 0.0
            if stamp.shrink:
                stamp_geo = spec.geometry
                scale = stamp_geo.scale(geo.height)
                dx = (geo.width - geo.width * scale) / 2
                dy = stamp_geo.bottom
            matrix = _compose(geo.matrix, (scale, 0.0, 0.0, scale, dx, dy))
            stamp_form = None if spec.empty else stamp_forms.form(spec)
            _rebuild_page(writer, page, geo, matrix, stamp_form, page_streams)
        _drop_empty_form(writer)
        _remove_active_content(writer)

    def _release(self) -> None:
        """Free the parsed and written objects now. Every pypdf object refers to its document
        through its indirect reference, and each document holds its objects, so these graphs are
        cycles that reference counting alone never frees; left to the cyclic collector, it has to
        walk some hundred thousand objects to find them (see `_collector_paused`)."""
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


def _written_page(page, geometry: "_Geometry | None" = None) -> WrittenPage:
    stamp = stamp_resources = None
    xobjects = page.get("/Resources", DictionaryObject()).get("/XObject", DictionaryObject())
    ref = xobjects.raw_get(STAMP_XOBJECT) if STAMP_XOBJECT in xobjects else None
    if isinstance(ref, IndirectObject):
        stamp = ref.idnum
        resources = ref.get_object().raw_get("/Resources")
        if isinstance(resources, IndirectObject):
            stamp_resources = resources.idnum
    if geometry is None:
        return WrittenPage(page=page.indirect_reference.idnum, stamp=stamp, stamp_resources=stamp_resources)
    return WrittenPage(page=page.indirect_reference.idnum, stamp=stamp, stamp_resources=stamp_resources,
                       width=geometry.width, height=geometry.height, user_unit=geometry.user_unit)


def _bates_label_parts(prefix: str, digits: int, number: int) -> tuple[str, str, int]:
    """A Bates label as a page-label range: /D style does not zero-pad, so the zeros go in the
    prefix; a range breaks where the number gains a digit (9 -> 10)."""
    text = str(number)
    return (prefix + "0" * max(digits - len(text), 0), "/D", number)


def _build_org_packet(page_list: PageList, ctx: BuildContext, front_path: Path, work: Path,
                      builder: _Builder | None = None) -> bytes:
    builder = builder or _Builder(ctx)
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
    return builder.finish(work, identity=_identity(ctx, page_list, "imr-org-packet"),
                          title=f"IMR packet {ctx.facts.case_id} submission {ctx.submission}")


def _build_copy_set(items: list[CopyItem], ctx: BuildContext, slips_path: Path, work: Path, *,
                    recipient: str, page_list: PageList) -> bytes:
    builder = _Builder(ctx)
    slips = PdfReader(slips_path)
    slip_index = 0
    for item in items:
        placed = item.placed
        if item.withheld:
            at = builder.add_generated(slips, slip_index, placed.bates_range)
            builder.stamps[at] = _PageStamp(bates=placed.bates_range)
            slip_index += 1
            builder.add_outline(f"Withheld: {placed.bates_range}", at)
        else:
            assert not placed.document.is_withheld  # copy_set_items decided; never copy a withheld page
            at = builder.add_document(placed, privileged=False)
            builder.add_outline(str(placed.document.title.value), at)
    if not items:
        raise AssemblyError("a copy set needs at least one document", reason="empty_copy_set")
    return builder.finish(work, identity=_identity(ctx, page_list, f"copy-set-{recipient}"),
                          title=f"Copies {ctx.facts.case_id} submission {ctx.submission} for {recipient}")


def _open_document(document: Document) -> PdfReader:
    try:
        reader = PdfReader(document.pdf_path)
        if reader.is_encrypted:
            reader.decrypt("")  # intake refuses files that need a password; this is an owner-only lock
        reader.pages  # noqa: B018 - force the page tree now, inside the try
        return reader
    except (OSError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise AssemblyError(f"document {document.short} could not be opened: {type(exc).__name__}",
                            reason="open") from exc


# --- page geometry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geometry:
    box: tuple[float, float, float, float]  # the visible box in the page's own user space
    rotation: int  # 0, 90, 180, 270 (clockwise, as displayed)
    width: float  # displayed (upright) size
    height: float
    matrix: tuple[float, float, float, float, float, float]  # user space -> upright, origin at 0,0
    user_unit: float = 1.0


def _rect(value) -> tuple[float, float, float, float] | None:
    try:
        values = [float(v) for v in value.get_object()]
    except (TypeError, ValueError, AttributeError):
        return None
    if len(values) != 4:
        return None
    x0, y0, x1, y1 = values
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _page_geometry(page) -> _Geometry:
    media = _rect(page.get("/MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = _rect(page.get("/CropBox")) if "/CropBox" in page else None
    box = media
    if crop is not None:  # the visible area is the crop box clipped to the media box
        clipped = (max(media[0], crop[0]), max(media[1], crop[1]), min(media[2], crop[2]), min(media[3], crop[3]))
        if clipped[2] - clipped[0] > 1 and clipped[3] - clipped[1] > 1:
            box = clipped
    try:
        rotate = page.get("/Rotate", 0)
        rotate = int(rotate.get_object() if hasattr(rotate, "get_object") else rotate)
    except (TypeError, ValueError):
        rotate = 0
    rotation = ((rotate + 45) // 90 * 90) % 360
    x0, y0, x1, y1 = box
    if rotation == 90:
        matrix = (0.0, -1.0, 1.0, 0.0, -y0, x1)
    elif rotation == 180:
        matrix = (-1.0, 0.0, 0.0, -1.0, x1, y1)
    elif rotation == 270:
        matrix = (0.0, 1.0, -1.0, 0.0, y1, -x0)
    else:
        matrix = (1.0, 0.0, 0.0, 1.0, -x0, -y0)
    width, height = (y1 - y0, x1 - x0) if rotation in (90, 270) else (x1 - x0, y1 - y0)
    try:
        user_unit = float(page.get("/UserUnit", 1.0))
    except (TypeError, ValueError):
        user_unit = 1.0
    return _Geometry(box=box, rotation=rotation, width=width, height=height, matrix=matrix,
                     user_unit=user_unit if user_unit > 0 else 1.0)


def _compose(first, then) -> tuple[float, ...]:
    """The matrix applying `first`, then `then` (PDF row-vector convention)."""
    a1, b1, c1, d1, e1, f1 = first
    a2, b2, c2, d2, e2, f2 = then
    return (a1 * a2 + b1 * c2, a1 * b2 + b1 * d2, c1 * a2 + d1 * c2, c1 * b2 + d1 * d2,
            e1 * a2 + f1 * c2 + e2, e1 * b2 + f1 * d2 + f2)


def _apply(matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = matrix
    return (a * x + c * y + e, b * x + d * y + f)


def _num(value: float) -> str:
    text = f"{value:.5f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- rebuilding a page -------------------------------------------------------------------------
def _content_form(writer: PdfWriter, page, box) -> IndirectObject:
    """The page's content and resources as one form XObject (isolates its graphics state)."""
    contents = page.get("/Contents")
    contents = contents.get_object() if contents is not None else None
    form: StreamObject
    if isinstance(contents, StreamObject) and not isinstance(contents, ContentStream):
        # One stream: reuse its encoded bytes as they are (no decoding).
        form = EncodedStreamObject() if "/Filter" in contents else DecodedStreamObject()
        form._data = contents._data  # noqa: SLF001 - pypdf has no public "raw bytes" setter
        for key in ("/Filter", "/DecodeParms"):
            if key in contents:
                form[NameObject(key)] = contents[key]
    else:
        parts: list[bytes] = []
        if isinstance(contents, ContentStream):
            parts.append(contents.get_data())
        elif isinstance(contents, ArrayObject):
            for item in contents:
                stream = item.get_object()
                if isinstance(stream, StreamObject):
                    try:
                        parts.append(stream.get_data())
                    except (PyPdfError, ValueError, OSError) as exc:
                        raise AssemblyError(f"a content stream could not be decoded ({type(exc).__name__})",
                                            reason="content") from exc
        plain = DecodedStreamObject()
        plain.set_data(b"\n".join(parts))
        form = plain.flate_encode()
    form[NameObject("/Type")] = NameObject("/XObject")
    form[NameObject("/Subtype")] = NameObject("/Form")
    form[NameObject("/BBox")] = ArrayObject(FloatObject(v) for v in box)
    resources = page.get("/Resources")
    form[NameObject("/Resources")] = resources if resources is not None else DictionaryObject()
    if "/Group" in page:  # keep a transparency group with the content it describes
        form[NameObject("/Group")] = page["/Group"]
    return writer._add_object(form)  # noqa: SLF001 - pypdf's documented way to add an object is private


class _StampForms:
    """The stamp of each page as a form XObject in `writer` (see `packet.pdf.frontmatter.stamp_operators`).
    Every page's stamp differs (its Bates label), but what stamps draw with is shared: one
    resources dictionary (the two stamp fonts) for all stamps without a watermark, and per page
    size one DRAFT watermark form and one resources dictionary naming it."""

    def __init__(self, writer: PdfWriter):
        self.writer = writer
        fonts = DictionaryObject()
        for name, base in ((STAMP_FONT_RESOURCE, STAMP_FONT), (STAMP_FONT_BOLD_RESOURCE, STAMP_FONT_BOLD)):
            fonts[NameObject(name)] = writer._add_object(DictionaryObject({  # noqa: SLF001
                NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/" + base),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding")}))
        self.fonts = writer._add_object(fonts)  # noqa: SLF001
        self.alpha = writer._add_object(DictionaryObject({  # noqa: SLF001
            NameObject(WATERMARK_ALPHA_RESOURCE): DictionaryObject({
                NameObject("/Type"): NameObject("/ExtGState"), NameObject("/CA"): FloatObject(WATERMARK_ALPHA)})}))
        self.plain_resources = writer._add_object(DictionaryObject({NameObject("/Font"): self.fonts}))  # noqa: SLF001
        self.draft_resources: dict[tuple[float, float], IndirectObject] = {}  # page size -> resources

    def _form(self, data: bytes, width: float, height: float, resources) -> IndirectObject:
        plain = DecodedStreamObject()
        plain.set_data(data)
        form = plain.flate_encode()
        form[NameObject("/Type")] = NameObject("/XObject")
        form[NameObject("/Subtype")] = NameObject("/Form")
        form[NameObject("/BBox")] = ArrayObject(FloatObject(v) for v in (0, 0, width, height))
        form[NameObject("/Resources")] = resources
        return self.writer._add_object(form)  # noqa: SLF001

    def form(self, spec: StampSpec) -> IndirectObject:
        resources = self.plain_resources
        if spec.draft:
            size = (spec.width, spec.height)
            resources = self.draft_resources.get(size)
            if resources is None:
                watermark = self._form(watermark_operators(*size), *size,
                                       DictionaryObject({NameObject("/ExtGState"): self.alpha}))
                resources = self.draft_resources[size] = self.writer._add_object(DictionaryObject({  # noqa: SLF001
                    NameObject("/Font"): self.fonts,
                    NameObject("/XObject"): DictionaryObject({NameObject(WATERMARK_XOBJECT): watermark})}))
        return self._form(stamp_operators(spec), spec.width, spec.height, resources)


def _rebuild_page(writer: PdfWriter, page, geo: _Geometry, matrix, stamp_form: IndirectObject | None,
                  page_streams: dict[bytes, IndirectObject]) -> None:
    """`page_streams`: the page content streams made so far, by their bytes. The stream only
    names the page's own XObjects (/ImrPage, /ImrStamp...), so pages of one size and placement
    share one stream, as `compress_identical_objects` would otherwise merge them afterwards."""
    content = _content_form(writer, page, geo.box)
    xobjects = DictionaryObject({NameObject(PAGE_XOBJECT): content})
    widgets = _flatten_widgets(writer, page)
    ops = f"q {' '.join(_num(v) for v in matrix)} cm {PAGE_XOBJECT} Do\n"
    if widgets:
        x0, y0, x1, y1 = geo.box
        ops += f"{_num(x0)} {_num(y0)} {_num(x1 - x0)} {_num(y1 - y0)} re W n\n"
        for number, (appearance, placement) in enumerate(widgets, 1):
            name = f"{WIDGET_XOBJECT}{number}"
            xobjects[NameObject(name)] = appearance
            ops += f"q {' '.join(_num(v) for v in placement)} cm {name} Do Q\n"
    ops += "Q\n"
    if stamp_form is not None:
        xobjects[NameObject(STAMP_XOBJECT)] = stamp_form
        ops += f"q {STAMP_XOBJECT} Do Q\n"
    data = ops.encode("ascii")
    contents = page_streams.get(data)
    if contents is None:
        stream = DecodedStreamObject()
        stream.set_data(data)
        contents = page_streams[data] = writer._add_object(stream)  # noqa: SLF001
    page[NameObject("/Contents")] = contents
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"): xobjects})
    page[NameObject("/MediaBox")] = ArrayObject(FloatObject(v) for v in (0, 0, geo.width, geo.height))
    for key in ("/CropBox", "/TrimBox", "/BleedBox", "/ArtBox", "/Rotate", "/Group"):
        if key in page:
            del page[key]
    if matrix != (1.0, 0.0, 0.0, 1.0, 0.0, 0.0):
        _move_annotations(page, matrix)


def _flatten_widgets(writer: PdfWriter, page) -> list[tuple[IndirectObject, tuple[float, ...]]]:
    """Form fields become part of the page: each widget's current appearance is drawn where the
    widget was (PDF 32000-1 12.5.5: appearance BBox through its Matrix, fitted to /Rect) and the
    widget is removed. Fields of different documents can share a name and would be merged by a
    viewer; a submitted record must not change when someone clicks it. Widgets without an
    appearance stay interactive (the viewer draws them); hidden ones are dropped."""
    annots = page.get("/Annots")
    if annots is None:
        return []
    kept = ArrayObject()
    drawn: list[tuple[IndirectObject, tuple[float, ...]]] = []
    for ref in annots.get_object():
        annot = ref.get_object()
        if not isinstance(annot, DictionaryObject) or annot.get("/Subtype") != "/Widget":
            kept.append(ref)
            continue
        try:
            flags = int(annot.get("/F", 0))
        except (TypeError, ValueError):
            flags = 0
        if flags & (2 | 32):  # Hidden, NoView: nothing to draw
            continue
        found = _appearance(writer, annot)
        if found is None:
            kept.append(ref)
            continue
        appearance, placement = found
        if appearance is not None:
            drawn.append((appearance, placement))
    page[NameObject("/Annots")] = kept
    return drawn


def _appearance(writer: PdfWriter, annot: DictionaryObject):
    """(form XObject or None for an "off" state without a drawing, placement matrix), or None
    when the widget has no usable normal appearance."""
    rect = _rect(annot.get("/Rect")) if "/Rect" in annot else None
    ap = annot.get("/AP")
    if rect is None or ap is None:
        return None
    ap = ap.get_object()
    if not isinstance(ap, DictionaryObject) or "/N" not in ap:
        return None
    normal_ref = ap.raw_get("/N")
    normal = normal_ref.get_object()
    if isinstance(normal, DictionaryObject) and not isinstance(normal, StreamObject):
        state = annot.get("/AS")
        if state is None or state not in normal:
            return (None, ())  # a check box or radio button in a state with no drawing: draw nothing
        normal_ref = normal.raw_get(state)
        normal = normal_ref.get_object()
    if not isinstance(normal, StreamObject):
        return None
    bbox = _rect(normal.get("/BBox")) if "/BBox" in normal else None
    if bbox is None:
        return None
    try:
        form_matrix = tuple(float(v) for v in normal.get("/Matrix", (1, 0, 0, 1, 0, 0)))
    except (TypeError, ValueError):
        return None
    if len(form_matrix) != 6:
        return None
    corners = [_apply(form_matrix, x, y) for x in (bbox[0], bbox[2]) for y in (bbox[1], bbox[3])]
    tx0, ty0 = min(p[0] for p in corners), min(p[1] for p in corners)
    tx1, ty1 = max(p[0] for p in corners), max(p[1] for p in corners)
    if tx1 - tx0 <= 0 or ty1 - ty0 <= 0:
        return (None, ())
    sx = (rect[2] - rect[0]) / (tx1 - tx0)
    sy = (rect[3] - rect[1]) / (ty1 - ty0)
    placement = (sx, 0.0, 0.0, sy, rect[0] - sx * tx0, rect[1] - sy * ty0)
    if "/Type" not in normal:
        normal[NameObject("/Type")] = NameObject("/XObject")
    if "/Subtype" not in normal:
        normal[NameObject("/Subtype")] = NameObject("/Form")
    reference = normal_ref if isinstance(normal_ref, IndirectObject) else writer._add_object(normal)  # noqa: SLF001
    return (reference, placement)


def _move_annotations(page, matrix) -> None:
    annots = page.get("/Annots")
    if annots is None:
        return
    for ref in annots.get_object():
        annot = ref.get_object()
        if not isinstance(annot, DictionaryObject):
            continue
        rect = _rect(annot.get("/Rect")) if "/Rect" in annot else None
        if rect is not None:
            corners = [_apply(matrix, x, y) for x in (rect[0], rect[2]) for y in (rect[1], rect[3])]
            xs, ys = [p[0] for p in corners], [p[1] for p in corners]
            annot[NameObject("/Rect")] = ArrayObject(FloatObject(v) for v in (min(xs), min(ys), max(xs), max(ys)))
        quads = annot.get("/QuadPoints")
        if quads is not None:
            try:
                values = [float(v) for v in quads.get_object()]
            except (TypeError, ValueError):
                continue
            moved: list[float] = []
            for i in range(0, len(values) - 1, 2):
                moved.extend(_apply(matrix, values[i], values[i + 1]))
            annot[NameObject("/QuadPoints")] = ArrayObject(FloatObject(v) for v in moved)


def _drop_empty_form(writer: PdfWriter) -> None:
    """Remove /AcroForm once every widget has been flattened into its page."""
    root = writer._root_object  # noqa: SLF001
    if "/AcroForm" not in root:
        return
    for page in writer.pages:
        for ref in page.get("/Annots", ()) or ():
            annot = ref.get_object()
            if isinstance(annot, DictionaryObject) and annot.get("/Subtype") == "/Widget":
                return
    del root["/AcroForm"]


# --- active content ----------------------------------------------------------------------------
def _remove_active_content(writer: PdfWriter) -> None:
    """Remove JavaScript, open/launch/submit actions, additional actions and embedded files."""
    root = writer._root_object  # noqa: SLF001
    for key in ("/OpenAction", "/AA", "/JavaScript"):
        if key in root:
            del root[key]
    names = root.get("/Names")
    if names is not None:
        names = names.get_object()
        for key in ("/JavaScript", "/EmbeddedFiles"):
            if key in names:
                del names[key]
    form = root.get("/AcroForm")
    if form is not None:
        form = form.get_object()
        if "/XFA" in form:  # XFA forms carry scripts; the AcroForm appearance stays
            del form["/XFA"]
    for page in writer.pages:
        if "/AA" in page:
            del page["/AA"]
        annots = page.get("/Annots")
        if annots is None:
            continue
        kept = ArrayObject()
        for ref in annots.get_object():
            annot = ref.get_object()
            if isinstance(annot, DictionaryObject) and annot.get("/Subtype") in DROPPED_ANNOTATIONS:
                continue
            kept.append(ref)
        page[NameObject("/Annots")] = kept
    # Everything else (form fields, annotations, nested /Next actions): sweep every object.
    for obj in list(writer._objects):  # noqa: SLF001 - there is no public iterator over a writer's objects
        if obj is not None:
            _sweep(obj)


def _sweep(obj, depth: int = 0) -> None:
    if depth > 40:
        return
    if isinstance(obj, DictionaryObject):
        action = obj.get("/S")
        if action in DANGEROUS_ACTIONS or "/JS" in obj:
            for key in list(obj.keys()):
                if key not in ("/Type",):
                    del obj[key]
            obj[NameObject("/S")] = NameObject("/Named")
            obj[NameObject("/N")] = NameObject("/Nothing")  # an inert named action
            return
        for key in ("/AA", "/OpenAction", "/EF", "/RF"):
            if key in obj:
                del obj[key]
        if obj.get("/Type") == "/EmbeddedFile" and isinstance(obj, StreamObject):
            obj._data = b""  # noqa: SLF001
            obj.decoded_self = None
            for key in ("/Filter", "/DecodeParms", "/Params"):
                if key in obj:
                    del obj[key]
        for value in obj.values():  # nested direct objects (indirect ones are swept on their own)
            if isinstance(value, (DictionaryObject, ArrayObject)):
                _sweep(value, depth + 1)
    elif isinstance(obj, ArrayObject):
        nul_names = False
        for value in obj:
            if isinstance(value, (DictionaryObject, ArrayObject)):
                _sweep(value, depth + 1)
            elif isinstance(value, NameObject) and "\x00" in value:
                nul_names = True
        if nul_names:
            _split_nul_names(obj)


def _split_nul_names(array: ArrayObject) -> None:
    """A NUL byte is white space in PDF, but pypdf reads it into a name ("/DeviceRGB\x00255") and
    writes "#00", which breaks the array (qpdf warns; an indexed colour space loses its hival)."""
    fixed: list = []
    for value in array:
        if isinstance(value, NameObject) and "\x00" in value:
            head, *rest = [part for part in str(value).split("\x00")]
            fixed.append(NameObject(head))
            for part in filter(None, rest):
                try:
                    fixed.append(NumberObject(int(part)))
                except ValueError:
                    try:
                        fixed.append(FloatObject(part))
                    except ValueError:
                        fixed.append(NameObject(part if part.startswith("/") else "/" + part))
        else:
            fixed.append(value)
    array[:] = fixed


# --- determinism -------------------------------------------------------------------------------
def _identity(ctx: BuildContext, page_list: PageList, what: str) -> str:
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


def _pdf_date(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    offset = moment.utcoffset() or dt.timedelta(0)
    sign = "+" if offset >= dt.timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"D:{moment:%Y%m%d%H%M%S}{sign}{minutes // 60:02d}'{minutes % 60:02d}'"


def _finalise(writer: PdfWriter, ctx: BuildContext, *, identity: str, title: str) -> None:
    stamp = _pdf_date(ctx.generated_at)
    writer.metadata = {"/Title": title, "/Author": ctx.config.plan.name, "/Creator": PRODUCER,
                       "/Producer": PRODUCER, "/CreationDate": stamp, "/ModDate": stamp}
    file_id = ByteStringObject(bytes.fromhex(identity[:32]))
    writer._ID = ArrayObject([file_id, file_id])  # noqa: SLF001 - fixed /ID: rebuilds are byte-identical
    writer.compress_identical_objects(remove_unreferenced=False)
    _drop_unreachable(writer)


def _drop_unreachable(writer: PdfWriter) -> None:
    """Leave out every object the document no longer reaches (removed scripts, embedded files,
    flattened fields, replaced content). pypdf's own pass keeps chains of orphans that refer to
    each other, such as an old form dictionary and its fields."""
    objects = writer._objects  # noqa: SLF001
    reachable = [False] * len(objects)
    stack: list = [writer._root_object]  # noqa: SLF001
    if writer._info is not None:  # noqa: SLF001
        stack.append(writer._info)  # noqa: SLF001
    for start in stack:
        ref = getattr(start, "indirect_reference", None)
        if ref is not None and ref.pdf is writer:
            reachable[ref.idnum - 1] = True
    while stack:
        obj = stack.pop()
        if isinstance(obj, DictionaryObject):
            values = obj.values()
        elif isinstance(obj, ArrayObject):
            values = obj
        else:
            continue
        for value in values:
            if isinstance(value, IndirectObject):
                if value.pdf is not writer or not 0 < value.idnum <= len(objects):
                    continue
                if not reachable[value.idnum - 1]:
                    reachable[value.idnum - 1] = True
                    target = objects[value.idnum - 1]
                    if target is not None:
                        stack.append(target)
            elif isinstance(value, (DictionaryObject, ArrayObject)):
                stack.append(value)
    for index, keep in enumerate(reachable):
        if not keep:
            objects[index] = None


# --- reading back ------------------------------------------------------------------------------
def pdf_summary(path: Path) -> dict:
    """A normalised view of a PDF for tests and verify (no document text, only the stamps)."""
    reader = PdfReader(path)
    pages = reader.pages
    def outline(items: Iterable) -> list[dict]:
        out: list[dict] = []
        for item in items:
            if isinstance(item, list):
                if out:
                    out[-1]["children"] = outline(item)
                continue
            page = reader.get_destination_page_number(item)
            out.append({"title": str(item.title), "page": page + 1 if page is not None and page >= 0 else None,
                        "children": []})
        return out

    stamps = [_stamp_text(page) for page in pages]
    sizes = []
    for page in pages:
        box = _rect(page.get("/MediaBox")) or (0, 0, 0, 0)
        sizes.append([round(box[2] - box[0], 2), round(box[3] - box[1], 2)])
    return {
        "pages": len(pages),
        "page_labels": list(reader.page_labels),
        "page_sizes": sizes,
        "outline": outline(reader.outline),
        "stamps": stamps,
        "active_content": find_active_content(reader),
    }


def _stamp_text(page) -> list[str]:
    """The text of the page's /ImrStamp overlay (Bates label, privileged mark, DRAFT)."""
    resources = page.get("/Resources")
    if resources is None:
        return []
    xobjects = resources.get_object().get("/XObject")
    if xobjects is None or STAMP_XOBJECT not in xobjects.get_object():
        return []
    form = xobjects.get_object()[STAMP_XOBJECT].get_object()
    texts: list[str] = []
    try:
        operations = ContentStream(form, page.pdf).operations
    except (PdfReadError, PyPdfError, ValueError):
        return ["<unreadable stamp>"]
    for operands, operator in operations:
        if operator == b"Tj" and operands:
            value = operands[0]
            texts.append(value.original_bytes.decode("latin-1") if hasattr(value, "original_bytes") else str(value))
        elif operator == b"TJ" and operands:
            texts.append("".join(str(v) for v in operands[0] if isinstance(v, (TextStringObject, ByteStringObject))))
    return texts


def find_active_content(reader: PdfReader) -> list[str]:
    """Every JavaScript, dangerous action, additional action or embedded file left in a PDF."""
    findings: list[str] = []
    root = reader.trailer["/Root"].get_object()
    for key in ("/OpenAction", "/AA"):
        if key in root:
            findings.append(f"catalog {key}")
    names = root.get("/Names")
    if names is not None:
        for key in ("/JavaScript", "/EmbeddedFiles"):
            if key in names.get_object():
                findings.append(f"catalog /Names {key}")
    for number, page in enumerate(reader.pages, 1):
        if "/AA" in page:
            findings.append(f"page {number} /AA")
        for ref in page.get("/Annots", ArrayObject()) or ():
            annot = ref.get_object()
            if not isinstance(annot, DictionaryObject):
                continue
            if annot.get("/Subtype") in DROPPED_ANNOTATIONS:
                findings.append(f"page {number} {annot.get('/Subtype')} annotation")
            if "/AA" in annot:
                findings.append(f"page {number} annotation /AA")
            action = annot.get("/A")
            if action is not None and action.get_object().get("/S") in DANGEROUS_ACTIONS:
                findings.append(f"page {number} annotation action {action.get_object().get('/S')}")
    idnums = set(reader.xref_objStm)
    for table in reader.xref.values():
        idnums.update(table)
    for idnum in sorted(idnums):
        try:
            obj = reader.get_object(idnum)
        except (PdfReadError, PyPdfError, ValueError, KeyError, IndexError):
            continue
        if isinstance(obj, DictionaryObject):
            if obj.get("/S") in DANGEROUS_ACTIONS or "/JS" in obj:
                findings.append(f"object {idnum} action {obj.get('/S')}")
            if obj.get("/Type") == "/EmbeddedFile" and isinstance(obj, StreamObject) and obj.get_data():
                findings.append(f"object {idnum} embedded file")
            if "/EF" in obj:
                findings.append(f"object {idnum} /EF")
    return sorted(set(findings))


__all__ = ["AssemblyError", "CopyItem", "copy_set_items", "default_withheld_reason", "find_active_content",
           "pdf_summary", "write_copy_set", "write_org_packet"]
