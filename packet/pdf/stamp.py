"""Stamping: every output page rebuilt as its original content (shrunk out of the stamp strips)
plus the service's stamp (Bates label, privileged mark, DRAFT), with form fields flattened.

Owns: the page XObjects /ImrPage, /ImrStamp and /ImrField<n> and what they hold; moving
annotations with the content; removing /AcroForm once every widget is drawn; the label a mailing
draws on its enclosed pages ("page x of y", `label_pages`).
Must not: decide what a stamp says (`packet.pdf.frontmatter.stamp_operators` draws it, from a
`StampSpec` the builder fills), remove active content (`packet.pdf.sanitize`), or write a file.

Every output page becomes: a form XObject /ImrPage holding the page's original content and
resources (so unbalanced q/Q in a source cannot leak), drawn through one matrix that removes the
page's /Rotate, moves its visible box to the origin and, on document pages, shrinks it slightly
(about 0.95-0.97) so the bottom strip (Bates label) and top strip (privileged mark) are free; then
a form XObject /ImrStamp holding that page's stamp operators. So a label never covers content,
whatever the source's margins (telling a narrow margin from a wide one would mean parsing or
rendering every page). No content stream is parsed. Form fields are flattened: each widget's
current appearance is drawn into the page (/ImrField1...) and the widget removed; a widget without
an appearance stays interactive.
"""

from __future__ import annotations

from dataclasses import dataclass

from pypdf import PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import (ArrayObject, ContentStream, DecodedStreamObject, DictionaryObject, EncodedStreamObject,
                           FloatObject, IndirectObject, NameObject, StreamObject)

from packet.pdf.errors import AssemblyError
from packet.pdf.frontmatter import (STAMP_FONT, STAMP_FONT_BOLD, STAMP_FONT_BOLD_RESOURCE, STAMP_FONT_RESOURCE,
                                    WATERMARK_ALPHA, WATERMARK_ALPHA_RESOURCE, WATERMARK_XOBJECT, StampSpec,
                                    corner_label_operators, stamp_operators, watermark_operators)
from packet.pdf.geometry import PageGeometry, apply, compose, num, page_geometry, rectangle

PAGE_XOBJECT = "/ImrPage"
STAMP_XOBJECT = "/ImrStamp"
WIDGET_XOBJECT = "/ImrField"


@dataclass(frozen=True)
class PageStamp:
    """What one output page gets: its Bates label, the privileged mark, and whether its content is
    shrunk out of the stamp strips (document pages)."""

    bates: str | None = None
    privileged: bool = False
    shrink: bool = False


def stamp_pages(writer: PdfWriter, pages: list, stamps: list[PageStamp], *, draft: bool) -> list[PageGeometry]:
    """Rebuild every page of `pages` (writer pages) with its stamp; flatten form fields. Returns
    each page's geometry as it was before (the size its stamp was made for)."""
    geometry = [page_geometry(page) for page in pages]
    specs = [StampSpec(width=g.width, height=g.height, bates=s.bates, privileged=s.privileged,
                       draft=draft, user_unit=g.user_unit)
             for g, s in zip(geometry, stamps, strict=True)]
    stamp_forms = StampForms(writer)
    page_streams: dict[bytes, IndirectObject] = {}
    for index, (page, geo, stamp, spec) in enumerate(zip(pages, geometry, stamps, specs, strict=True)):
        scale, dx, dy = 1.0, 0.0, 0.0
        if stamp.shrink:
            stamp_geo = spec.geometry
            scale = stamp_geo.scale(geo.height)
            dx = (geo.width - geo.width * scale) / 2
            dy = stamp_geo.bottom
        matrix = compose(geo.matrix, (scale, 0.0, 0.0, scale, dx, dy))
        stamp_form = None if spec.empty else stamp_forms.form(spec)
        try:
            _rebuild_page(writer, page, geo, matrix, stamp_form, page_streams)
        except Exception as exc:  # pypdf on a damaged page: unknown filters, broken streams, asserts
            raise PageStampError(f"page {index + 1} could not be stamped: {type(exc).__name__}", page=index) from exc
    _drop_empty_form(writer)
    return geometry


def label_pages(writer: PdfWriter, pages: list, texts: list[str]) -> None:
    """Draw texts[i] at the top right of pages[i] (writer pages): a mailing's "page x of y" on its
    enclosed pages (`packet.pdf.frontmatter.corner_label_operators`). No content stream is parsed
    or rewritten: the page's own content is wrapped in q/Q (whatever graphics state it leaves
    behind cannot move the label) and the label's stream follows; the stamp font joins the page's
    own fonts in a copy of its resources (a resources dictionary shared with another page is never
    changed)."""
    font = _stamp_font(writer, STAMP_FONT)
    save, restore = (writer._add_object(_plain_stream(data)) for data in (b"q\n", b"Q\n"))  # noqa: SLF001
    for page, text in zip(pages, texts, strict=True):
        box = page.mediabox
        label = writer._add_object(_plain_stream(corner_label_operators(  # noqa: SLF001
            text, float(box.left), float(box.bottom), float(box.width), float(box.height))))
        contents = page.get("/Contents")
        contents = contents.get_object() if contents is not None else None
        if isinstance(contents, ArrayObject):
            own = list(contents)
        elif contents is None:
            own = []
        else:
            reference = page.raw_get("/Contents")
            own = [reference if isinstance(reference, IndirectObject) else writer._add_object(contents)]  # noqa: SLF001
        page[NameObject("/Contents")] = ArrayObject([save, *own, restore, label])
        resources = page.get("/Resources")
        resources = DictionaryObject(resources.get_object() if resources is not None else {})
        fonts = resources.get("/Font")
        fonts = DictionaryObject(fonts.get_object() if fonts is not None else {})
        fonts[NameObject(STAMP_FONT_RESOURCE)] = font
        resources[NameObject("/Font")] = fonts
        page[NameObject("/Resources")] = resources


def _stamp_font(writer: PdfWriter, base: str) -> IndirectObject:
    return writer._add_object(DictionaryObject({  # noqa: SLF001
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/" + base), NameObject("/Encoding"): NameObject("/WinAnsiEncoding")}))


def _plain_stream(data: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    return stream


class PageStampError(AssemblyError):
    """A page of the output could not be rebuilt with its stamp; `page` is its 0-based index."""

    reason = "stamp"

    def __init__(self, message: str, *, page: int):
        super().__init__(message)
        self.page = page


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


class StampForms:
    """The stamp of each page as a form XObject in `writer` (see `packet.pdf.frontmatter.stamp_operators`).
    Every page's stamp differs (its Bates label), but what stamps draw with is shared: one
    resources dictionary (the two stamp fonts) for all stamps without a watermark, and per page
    size one DRAFT watermark form and one resources dictionary naming it."""

    def __init__(self, writer: PdfWriter):
        self.writer = writer
        fonts = DictionaryObject()
        for name, base in ((STAMP_FONT_RESOURCE, STAMP_FONT), (STAMP_FONT_BOLD_RESOURCE, STAMP_FONT_BOLD)):
            fonts[NameObject(name)] = _stamp_font(writer, base)
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


def _rebuild_page(writer: PdfWriter, page, geo: PageGeometry, matrix, stamp_form: IndirectObject | None,
                  page_streams: dict[bytes, IndirectObject]) -> None:
    """`page_streams`: the page content streams made so far, by their bytes. The stream only
    names the page's own XObjects (/ImrPage, /ImrStamp...), so pages of one size and placement
    share one stream, as `compress_identical_objects` would otherwise merge them afterwards."""
    content = _content_form(writer, page, geo.box)
    xobjects = DictionaryObject({NameObject(PAGE_XOBJECT): content})
    widgets = _flatten_widgets(writer, page)
    ops = f"q {' '.join(num(v) for v in matrix)} cm {PAGE_XOBJECT} Do\n"
    if widgets:
        x0, y0, x1, y1 = geo.box
        ops += f"{num(x0)} {num(y0)} {num(x1 - x0)} {num(y1 - y0)} re W n\n"
        for number, (appearance, placement) in enumerate(widgets, 1):
            name = f"{WIDGET_XOBJECT}{number}"
            xobjects[NameObject(name)] = appearance
            ops += f"q {' '.join(num(v) for v in placement)} cm {name} Do Q\n"
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
    rect = rectangle(annot.get("/Rect")) if "/Rect" in annot else None
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
    bbox = rectangle(normal.get("/BBox")) if "/BBox" in normal else None
    if bbox is None:
        return None
    try:
        form_matrix = tuple(float(v) for v in normal.get("/Matrix", (1, 0, 0, 1, 0, 0)))
    except (TypeError, ValueError):
        return None
    if len(form_matrix) != 6:
        return None
    corners = [apply(form_matrix, x, y) for x in (bbox[0], bbox[2]) for y in (bbox[1], bbox[3])]
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
        rect = rectangle(annot.get("/Rect")) if "/Rect" in annot else None
        if rect is not None:
            corners = [apply(matrix, x, y) for x in (rect[0], rect[2]) for y in (rect[1], rect[3])]
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
                moved.extend(apply(matrix, values[i], values[i + 1]))
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

