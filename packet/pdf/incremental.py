"""A draft's IMR packet updated instead of rebuilt: the previous draft's bytes, unchanged, then one
PDF incremental update (ISO 32000-1 7.5.6) holding only what changed.

Owns: deciding whether the previous draft packet can be updated, writing the update, and the
record of every draft packet (state/cases/<ID>/draft-packet.json: the file's hash, its cross-
reference position, and per document page the objects of the page and of its stamp) that makes the
next update possible.

An update is used only when documents were added (otherwise a full build, which makes the same
bytes from the same inputs) and it changes nothing but what a rebuild would change: same case,
submission, kind, Bates settings and program version; the previous file is exactly the one recorded;
every document of it is still in the packet (a removed one must not linger in the file, even
unreachable) with the same content hash, page count and privilege flag, so its pages (content,
shrink, privileged mark) are as a rebuild would make them. Then the update holds the new
front matter (cover, index, dividers), the new documents' pages (rebuilt, stamped and cleaned of
active content by packet.pdf.builder exactly as in a full build), a new stamp for each kept page whose
Bates number moved (the stamp object is redefined, so the page itself is untouched), and a new page
tree, outline, page labels, catalog and document information. Anything else, or any error, means a
full rebuild; after MAX_UPDATES updates, or once the file has grown past MAX_GROWTH times its last
full size (replaced objects stay in the file), the next draft is rebuilt whole.
Must not: be used for sealed submissions (always built whole, so a rebuild from the archive is
byte-identical); read any kept document's file (that is the point: they are not re-read).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import BinaryIO

from pypdf.generic import (ArrayObject, ByteStringObject, DecodedStreamObject, DictionaryObject, FloatObject,
                           IndirectObject, NameObject, NumberObject, StreamObject, TextStringObject)

from packet import __version__
from packet.fsutil import atomic_write_text, atomic_writer, sha256_file
from packet.log import log, log_exception
from packet.model.context import BuildContext
from packet.model.pagelist import PageList, PlacedDocument
from packet.model.models import Document
from packet.pdf.builder import (PRODUCER, Builder, DraftPacket, WrittenPage, bates_label_parts, build_org_packet,
                                label_ranges, pdf_date)
from packet.pdf.errors import AssemblyError
from packet.pdf.frontmatter import StampSpec, stamp_operators
from packet.pdf.stamp import STAMP_XOBJECT
from packet.pdfread import PdfReader

RECORD_VERSION = 2  # 2: kept pages were cleaned by the exhaustive sanitiser; older drafts are rebuilt whole
MAX_UPDATES = 20
MAX_GROWTH = 2.0


class _NotUpdatable(Exception):
    """The previous draft cannot be updated; the message is a short code for the service log."""


def write_draft_packet(page_list: PageList, ctx: BuildContext, front_path: Path, previous: DraftPacket,
                       out_path: Path) -> None:
    """Write the new draft packet to `out_path` (atomically): an update of `previous.pdf` when
    possible, else a full build. Writes the record of the result to `previous.record` (a stale
    record is harmless: it names the hash of the file it describes)."""
    record: dict | None = None
    builder: Builder | None = None
    try:
        builder = UpdateBuilder(ctx, _usable_record(ctx, previous), page_list)
        with atomic_writer(out_path) as out:  # nothing is written (and the file is left) unless updatable
            build_org_packet(page_list, ctx, front_path, out, builder)
        record = builder.new_record
        log("draft_packet.updated", case=ctx.facts.case_id, kept_pages=builder.kept_pages,
            new_pages=builder.new_pages, moved_stamps=builder.moved_stamps)
    except _NotUpdatable as why:
        log("draft_packet.rebuilt", case=ctx.facts.case_id, why=str(why))
    except AssemblyError:
        raise  # a new document that cannot be merged: a full build would say the same
    except Exception as exc:  # noqa: BLE001 - an update that fails costs a full build, never a draft
        log_exception("draft_packet.update_failed", exc, case=ctx.facts.case_id)
    if record is None:
        if builder is not None and builder.writer is not None:
            builder.release()  # the abandoned update's readers and objects, now
        builder = Builder(ctx)
        with atomic_writer(out_path) as out:
            build_org_packet(page_list, ctx, front_path, out, builder)
        startxref, size, root, info, id0 = trailer_facts(out_path)
        record = {"updates": 0, "full_size": os.stat(out_path).st_size, "id0": id0,
                  "documents": _documents_record(page_list, builder.written_pages),
                  "startxref": startxref, "size": size, "root": root, "info": info}
    record.update({"version": RECORD_VERSION, "key": _key(ctx),
                   "file": {"sha256": sha256_file(out_path), "size": os.stat(out_path).st_size}})
    atomic_write_text(previous.record, json.dumps(record, separators=(",", ":")) + "\n")


# --- the record ----------------------------------------------------------------------------------
def _key(ctx: BuildContext) -> str:
    """Everything besides the documents that shapes a kept page."""
    bates = ctx.config.bates
    parts = [RECORD_VERSION, __version__, ctx.facts.case_id, ctx.submission, ctx.kind, ctx.draft,
             bates.prefix, bates.digits]
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


def doc_key(document: Document) -> str:
    """A document's key in the draft record: its content, and the pages a person removed from it (a
    document whose removed pages changed is another document: its old pages must leave the file)."""
    if not document.removed_pages:
        return document.sha256
    return document.sha256 + ":-" + ",".join(str(n) for n in document.removed_pages)


def _documents_record(page_list: PageList, written: list[WrittenPage]) -> dict:
    documents = {}
    for placed in page_list.entries:
        first = placed.packet_first - 1
        documents[doc_key(placed.document)] = {
            "privileged": placed.document.is_privileged, "bates_first": placed.bates_first,
            "pages": [w.to_json() for w in written[first:first + placed.document.pages]]}
    return documents


def _usable_record(ctx: BuildContext, previous: DraftPacket) -> dict:
    try:
        record = json.loads(previous.record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _NotUpdatable("no_record") from exc
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION or record.get("key") != _key(ctx):
        raise _NotUpdatable("settings_changed")
    if record.get("updates", 0) >= MAX_UPDATES:
        raise _NotUpdatable("many_updates")
    try:
        size = os.stat(previous.pdf).st_size
    except OSError as exc:
        raise _NotUpdatable("no_previous_packet") from exc
    if size != record["file"]["size"]:
        raise _NotUpdatable("file_changed")
    if size > MAX_GROWTH * record["full_size"]:
        raise _NotUpdatable("grown")
    data = previous.pdf.read_bytes()
    if hashlib.sha256(data).hexdigest() != record["file"]["sha256"]:
        raise _NotUpdatable("file_changed")
    record["_data"] = data
    return record


_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")


def trailer_facts(path: Path) -> tuple[int, int, int, int, str]:
    """(startxref, /Size, /Root object, /Info object, first /ID as hex) of the last trailer of the
    PDF at `path` (a full build's: an update knows what it wrote)."""
    with open(path, "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - 64))
        found = _STARTXREF.search(handle.read())
        if found is None:
            raise AssemblyError("the packet has no cross-reference position", reason="pdf_structure")
        handle.seek(0)
        trailer = PdfReader(handle).trailer
        ids = trailer.get("/ID")
        first = ids[0] if ids else b""  # pypdf reads a hex string that decodes as text as a text string
        id0 = (first.original_bytes if isinstance(first, TextStringObject) else bytes(first)).hex()
        return (int(found.group(1)), int(trailer["/Size"]), trailer.raw_get("/Root").idnum,
                trailer.raw_get("/Info").idnum, id0)


# --- the update ----------------------------------------------------------------------------------
class UpdateBuilder(Builder):
    """Plays the same page plan as a full build (packet.pdf.builder.build_org_packet): a kept
    document only takes its place in the plan; generated pages and new documents go into this
    builder's writer, as in a full build; `write` writes the previous bytes plus the update."""

    def __init__(self, ctx: BuildContext, record: dict, page_list: PageList):
        super().__init__(ctx)
        self.record = record
        self.page_list = page_list
        self.slots: list[tuple] = []  # per packet page: ("new", writer index) or ("kept", page record)
        self.kept: list[tuple[PlacedDocument, dict]] = []
        self.new_record: dict = {}
        self.kept_pages = self.new_pages = self.moved_stamps = self.added_documents = 0

    @property
    def count(self) -> int:
        return len(self.slots)

    def add_generated(self, reader: PdfReader, index: int, label: str) -> int:
        at, writer_index = self.count, len(self.stamps)
        super().add_generated(reader, index, label)
        self.slots.append(("new", writer_index))
        return at

    def add_document(self, placed: PlacedDocument, *, privileged: bool) -> int:
        document = placed.document
        kept = self.record["documents"].get(doc_key(document))
        if kept is None:  # a new document: merged and stamped as in a full build
            self.added_documents += 1
            at, writer_index = self.count, len(self.stamps)
            super().add_document(placed, privileged=privileged)
            self.slots.extend(("new", writer_index + offset) for offset in range(document.pages))
            return at
        if kept["privileged"] != privileged or len(kept["pages"]) != document.pages:
            raise _NotUpdatable("document_changed")
        if any(page[1] is None or page[2] is None for page in kept["pages"]):
            raise _NotUpdatable("unstamped_page")
        at = self.count
        bates = self.ctx.config.bates
        prefix = bates.prefix.format(case_id=self.ctx.facts.case_id)
        for offset, page in enumerate(kept["pages"]):
            self.slots.append(("kept", page))
            self.labels.append(bates_label_parts(prefix, bates.digits, placed.bates_first + offset))
        self.kept.append((placed, kept))
        return at

    def write(self, out: BinaryIO, *, identity: str, title: str) -> None:
        """The previous file's bytes, then the update, into `out`; raises _NotUpdatable (having
        written nothing) when a full build is needed."""
        if not self.added_documents:  # the same documents again: a full build gives the same bytes as before
            raise _NotUpdatable("no_new_document")
        present = {doc_key(placed.document) for placed in self.page_list.entries}
        if set(self.record["documents"]) - present:
            # A removed or excluded document (say, another member's record) must not stay in the
            # file even unreachable: only a full build leaves it out.
            raise _NotUpdatable("document_removed")
        self.prepare_pages()  # the new pages: rebuilt, stamped, cleaned, exactly as in a full build
        writer = self.writer
        if "/AcroForm" in writer._root_object:  # noqa: SLF001 - a field stayed interactive: rebuild
            raise _NotUpdatable("interactive_fields")
        old = self.record["_data"]
        delta = UpdateWriter(first_number=self.record["size"])
        pages_root = _pages_root_number(old, self.record["root"])

        # 1. New pages and everything they reach, numbered after the previous file's objects.
        new_numbers = delta.take_pages([writer.get_page(i) for i in range(len(self.stamps))], writer, pages_root)
        self.new_pages = len(new_numbers)

        # 2. Kept pages stay as they are; where their Bates number moved, the stamp object is redefined.
        kids: list[int] = []
        written: list[WrittenPage] = []
        for kind, value in self.slots:
            if kind == "new":
                kids.append(new_numbers[value])
                written.append(delta.written_page(new_numbers[value], self.geometry[value]))
            else:
                kids.append(value[0])
                written.append(WrittenPage(*value))
                self.kept_pages += 1
        for placed, kept in self.kept:
            if placed.bates_first != kept["bates_first"]:
                for offset, page in enumerate(kept["pages"]):
                    delta.define(page[1], self._moved_stamp(placed, kept["bates_first"] + offset,
                                                            placed.bates_first + offset, WrittenPage(*page)))
                    self.moved_stamps += 1

        # 3. Page tree, outline, page labels, catalog and document information: all new.
        delta.define(pages_root, DictionaryObject({
            NameObject("/Type"): NameObject("/Pages"), NameObject("/Count"): NumberObject(len(kids)),
            NameObject("/Kids"): ArrayObject(_ref(n) for n in kids)}))
        catalog = DictionaryObject({NameObject("/Type"): NameObject("/Catalog"), NameObject("/Pages"): _ref(pages_root),
                                    NameObject("/PageLabels"): _page_labels(self.labels)})
        if self.outline:
            catalog[NameObject("/Outlines")] = delta.outline(self.outline, kids)
        delta.define(self.record["root"], catalog)
        moment = pdf_date(self.ctx.generated_at)
        delta.define(self.record["info"], DictionaryObject({
            NameObject(key): TextStringObject(value) for key, value in (
                ("/Title", title), ("/Author", self.ctx.config.plan.name), ("/Creator", PRODUCER),
                ("/Producer", PRODUCER), ("/CreationDate", moment), ("/ModDate", moment))}))
        update, xref_at, size = delta.update(len(old), root=self.record["root"], info=self.record["info"],
                                             previous_xref=self.record["startxref"],
                                             ids=(self.record["id0"], identity[:32]))
        self.new_record = {"updates": self.record.get("updates", 0) + 1, "full_size": self.record["full_size"],
                           "id0": self.record["id0"], "documents": _documents_record(self.page_list, written),
                           "startxref": xref_at, "size": size, "root": self.record["root"],
                           "info": self.record["info"]}
        self.release()
        out.write(old)
        out.write(update)

    def _moved_stamp(self, placed: PlacedDocument, old_number: int, new_number: int,
                     page: WrittenPage) -> StreamObject:
        """The stamp form of a kept page whose Bates number moved; the page's content placement
        must stay exactly as it is (it depends on the stamp's geometry)."""
        case_id, bates, privileged = self.ctx.facts.case_id, self.ctx.config.bates, placed.document.is_privileged

        def spec(number: int) -> StampSpec:
            return StampSpec(width=page.width, height=page.height, bates=bates.label(case_id, number),
                             privileged=privileged, draft=self.ctx.draft, user_unit=page.user_unit)

        new = spec(new_number)
        if new.geometry != spec(old_number).geometry:
            raise _NotUpdatable("stamp_geometry")
        plain = DecodedStreamObject()
        plain.set_data(stamp_operators(new))
        form = plain.flate_encode()
        form[NameObject("/Type")] = NameObject("/XObject")
        form[NameObject("/Subtype")] = NameObject("/Form")
        form[NameObject("/BBox")] = ArrayObject(FloatObject(v) for v in (0, 0, page.width, page.height))
        form[NameObject("/Resources")] = _ref(page.stamp_resources)
        return form


def _ref(number: int) -> IndirectObject:
    return IndirectObject(number, 0, None)


# What the catalog of a packet holds; an update writes a new one with these entries only.
CATALOG_ENTRIES = frozenset({"/Type", "/Pages", "/Outlines", "/PageLabels"})


def _pages_root_number(data: bytes, root: int) -> int:
    catalog = PdfReader(io.BytesIO(data)).get_object(root)
    if set(catalog) - CATALOG_ENTRIES:  # e.g. /AcroForm for a field left interactive
        raise _NotUpdatable("catalog_entries")
    return catalog.raw_get("/Pages").idnum


def _page_labels(labels: list) -> DictionaryObject:
    nums = ArrayObject()
    for start, _, prefix, style, number in label_ranges(labels):
        entry = DictionaryObject()
        if style is not None:
            entry[NameObject("/S")] = NameObject(style)
            if number is not None and number != 1:
                entry[NameObject("/St")] = NumberObject(number)
        if prefix:
            entry[NameObject("/P")] = TextStringObject(prefix)
        nums.extend([NumberObject(start), entry])
    return DictionaryObject({NameObject("/Nums"): nums})


class UpdateWriter:
    """The objects of one incremental update, by number, and their serialisation."""

    def __init__(self, first_number: int):
        self.next_number = first_number
        self.objects: dict[int, object] = {}

    def define(self, number: int, obj) -> None:
        self.objects[number] = obj

    def new(self, obj) -> IndirectObject:
        number = self.next_number
        self.next_number += 1
        self.objects[number] = obj
        return _ref(number)

    def take_pages(self, pages: list, writer, pages_root: int) -> list[int]:
        """Number the pages and every object they reach (not their /Parent: the page tree is new),
        in a fixed order; rewrite their references to those numbers. Returns the pages' numbers."""
        numbers: dict[int, int] = {}  # writer object number -> number in the file
        order: list = []
        stack: list = []

        def number_of(ref: IndirectObject) -> int:
            if ref.pdf is not writer:
                raise _NotUpdatable("foreign_reference")
            if ref.idnum not in numbers:
                numbers[ref.idnum] = self.next_number
                self.next_number += 1
                target = writer.get_object(ref.idnum)
                order.append((numbers[ref.idnum], target))
                stack.append(target)
            return numbers[ref.idnum]

        page_numbers = [number_of(page.indirect_reference) for page in pages]
        seen: set[int] = set()
        while stack:
            item = stack.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, DictionaryObject):
                for key in list(item.keys()):
                    value = item.raw_get(key)
                    if key == "/Parent" and item.get("/Type") == "/Page":
                        item[NameObject(key)] = _ref(pages_root)
                    elif isinstance(value, IndirectObject):
                        item[NameObject(key)] = _ref(number_of(value))
                    elif isinstance(value, (DictionaryObject, ArrayObject)):
                        stack.append(value)
            elif isinstance(item, ArrayObject):
                for index, value in enumerate(item):
                    if isinstance(value, IndirectObject):
                        item[index] = _ref(number_of(value))
                    elif isinstance(value, (DictionaryObject, ArrayObject)):
                        stack.append(value)
        for number, target in order:
            self.objects[number] = target
        return page_numbers

    def written_page(self, number: int, geometry) -> WrittenPage:
        page = self.objects[number]
        stamp = stamp_resources = None
        xobjects = page.get("/Resources", DictionaryObject()).get("/XObject", DictionaryObject())
        ref = xobjects.raw_get(STAMP_XOBJECT) if STAMP_XOBJECT in xobjects else None
        if isinstance(ref, IndirectObject):
            stamp = ref.idnum
            resources = self.objects[stamp].raw_get("/Resources")
            if isinstance(resources, IndirectObject):
                stamp_resources = resources.idnum
        return WrittenPage(page=number, stamp=stamp, stamp_resources=stamp_resources, width=geometry.width,
                           height=geometry.height, user_unit=geometry.user_unit)

    def outline(self, entries: list[tuple[str, int, int | None]], kids: list[int]) -> IndirectObject:
        """The bookmarks (title, packet page index, parent entry index) as outline dictionaries."""
        root = DictionaryObject({NameObject("/Type"): NameObject("/Outlines")})
        root_ref = self.new(root)
        items: list[tuple[DictionaryObject, IndirectObject]] = []
        children: dict[int | None, list[int]] = {}
        for index, (title, page, parent) in enumerate(entries):
            item = DictionaryObject({NameObject("/Title"): TextStringObject(title),
                                     NameObject("/Dest"): ArrayObject([_ref(kids[page]), NameObject("/Fit")])})
            items.append((item, self.new(item)))
            children.setdefault(parent, []).append(index)
        for parent, members in children.items():
            holder, holder_ref = (root, root_ref) if parent is None else items[parent]
            holder[NameObject("/First")] = items[members[0]][1]
            holder[NameObject("/Last")] = items[members[-1]][1]
            holder[NameObject("/Count")] = NumberObject(len(members))
            for position, member in enumerate(members):
                item = items[member][0]
                item[NameObject("/Parent")] = holder_ref
                if position:
                    item[NameObject("/Prev")] = items[members[position - 1]][1]
                if position + 1 < len(members):
                    item[NameObject("/Next")] = items[members[position + 1]][1]
        total = len(entries)
        root[NameObject("/Count")] = NumberObject(total)
        return root_ref

    def update(self, offset: int, *, root: int, info: int, previous_xref: int,
               ids: tuple[str, str]) -> tuple[bytes, int, int]:
        """The update's bytes (every object, a cross-reference section and the trailer), where its
        cross-reference section starts in the file, and the trailer's /Size."""
        out = io.BytesIO()
        out.write(b"\n")
        offsets: dict[int, int] = {}
        for number in sorted(self.objects):
            offsets[number] = offset + out.tell()
            out.write(f"{number} 0 obj\n".encode("ascii"))
            self.objects[number].write_to_stream(out)
            out.write(b"\nendobj\n")
        xref_at = offset + out.tell()
        out.write(b"xref\n")
        numbers = sorted(offsets)
        run_start = 0
        for index in range(1, len(numbers) + 1):
            if index < len(numbers) and numbers[index] == numbers[index - 1] + 1:
                continue
            run = numbers[run_start:index]
            out.write(f"{run[0]} {len(run)}\n".encode("ascii"))
            for number in run:
                out.write(f"{offsets[number]:010d} 00000 n \n".encode("ascii"))
            run_start = index
        size = max(self.next_number, max(numbers) + 1)
        trailer = DictionaryObject({
            NameObject("/Size"): NumberObject(size),
            NameObject("/Root"): _ref(root), NameObject("/Info"): _ref(info),
            NameObject("/Prev"): NumberObject(previous_xref),
            NameObject("/ID"): ArrayObject([ByteStringObject(bytes.fromhex(ids[0])),
                                            ByteStringObject(bytes.fromhex(ids[1]))])})
        out.write(b"trailer\n")
        trailer.write_to_stream(out)
        out.write(f"\nstartxref\n{xref_at}\n%%EOF\n".encode("ascii"))
        return out.getvalue(), xref_at, size
