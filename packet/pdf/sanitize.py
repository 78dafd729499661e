"""The sanitiser: no output carries active content, an oversized stream, or an object it does not use.

Owns: `sanitize(writer, max_stream_bytes=...)`, run on every output before it is written, and
`drop_unreachable(writer)`. Must not: change what a page shows (content streams, images and fonts
are left as they are) or read a source file.

Exhaustive by construction: one walk visits every object of the writer (first everything the
document reaches from its catalog, then every other object it holds), each once, however deep
(a visited set, no depth limit: a /Next chain of any length is followed to its end), and names
given as indirect references are resolved before they are compared. It removes:
- actions that run code, open other files or send data (`ACTIVE_ACTIONS`, and links to script,
  file or data addresses, `UNSAFE_URI_PREFIXES`): each becomes an inert
  named action, wherever it hangs (an /OpenAction, a link's /A, the /Next of another action, a
  JavaScript name tree);
- additional actions (/AA) and open actions anywhere, /Names /JavaScript and /EmbeddedFiles,
  XFA forms, associated and embedded files (/EF, /RF, /AF, /Type /EmbeddedFile streams emptied),
  RichMedia content, and file-attachment and media annotations (`DROPPED_ANNOTATIONS`).
While walking what the document reaches, every stream is measured (`packet.pdf.streams`): one
that inflates past the bound stops the output (AssemblyError, reason `stream_limit`).
"""

from __future__ import annotations

from pypdf import PdfWriter
from pypdf.generic import (ArrayObject, DictionaryObject, FloatObject, IndirectObject, NameObject, NumberObject,
                           StreamObject)

from packet.pdf.errors import StreamLimitError
from packet.pdf.streams import inflated_beyond

# Actions that run code, open other files or send data (PDF 32000-1 12.6.4). URI, GoTo and Named
# actions stay: they only move within the document or show a web address.
ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE",
                            "/Rendition", "/RichMediaExecute", "/Sound", "/Movie", "/SetOCGState"})
# Annotations that carry embedded files or media players: dropped whole.
DROPPED_ANNOTATIONS = frozenset({"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"})
# Keys removed from every dictionary: triggers, scripts, forms with scripts, files inside the file.
DROPPED_KEYS = ("/AA", "/OpenAction", "/EF", "/RF", "/XFA", "/JavaScript", "/EmbeddedFiles", "/AF",
                "/RichMediaContent", "/RichMediaSettings")
# Addresses a link must not open: scripts, local or network files, inline data.
UNSAFE_URI_PREFIXES = ("javascript:", "vbscript:", "file:", "data:", "\\\\")
DEFAULT_MAX_STREAM_BYTES = 512 * 1024 * 1024
_CONTAINERS = (IndirectObject, DictionaryObject, ArrayObject)


def resolved(value):
    """A value with an indirect reference followed (names, too, may be given indirectly)."""
    try:
        return value.get_object() if isinstance(value, IndirectObject) else value
    except Exception:  # noqa: BLE001 - a dangling reference names nothing
        return None


def active_action_kind(obj: DictionaryObject) -> str | None:
    """What a dictionary would run, open or send as an action ("JavaScript", "Launch", "URI" for a
    script or file address, ...), or None when it is not an active action."""
    action = resolved(obj.get("/S"))
    if action in ACTIVE_ACTIONS:
        return str(action)[1:]
    if "/JS" in obj:
        return "JavaScript"
    if action == "/URI":
        address = resolved(obj.get("/URI"))
        if isinstance(address, (str, bytes)):
            text = (address.decode("latin-1") if isinstance(address, bytes) else address).strip().lower()
            if text.startswith(UNSAFE_URI_PREFIXES):
                return "URI"
    return None


def sanitize(writer: PdfWriter, *, max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES) -> None:
    """Remove active content from every object of `writer`; refuse an oversized stream."""
    root = writer._root_object  # noqa: SLF001 - pypdf has no public catalog accessor on a writer
    for page in writer.pages:
        annots = page.get("/Annots")
        if annots is None:
            continue
        kept = ArrayObject()
        for ref in annots.get_object():
            annot = resolved(ref)
            if isinstance(annot, DictionaryObject) and resolved(annot.get("/Subtype")) in DROPPED_ANNOTATIONS:
                continue
            kept.append(ref)
        page[NameObject("/Annots")] = kept
    objects = writer._objects  # noqa: SLF001 - there is no public iterator over a writer's objects
    seen: set[int] = set()
    # First what the document reaches, page by page (its streams are measured), then every other object.
    starts: list = [page.indirect_reference for page in writer.pages]
    starts += [root] + ([writer._info] if writer._info is not None else [])  # noqa: SLF001
    phases = [(index, [start]) for index, start in enumerate(starts)]
    phases.append((None, [o for o in reversed(objects) if o is not None]))
    pages = len(writer.pages)
    for index, stack in phases:
        reached = index is not None
        while stack:
            obj = stack.pop()
            if isinstance(obj, IndirectObject):
                if obj.pdf is not writer or not 0 < obj.idnum <= len(objects):
                    continue
                obj = objects[obj.idnum - 1]
            if id(obj) in seen or not isinstance(obj, (DictionaryObject, ArrayObject)):
                continue
            seen.add(id(obj))
            if isinstance(obj, DictionaryObject):
                if _clean_dictionary(obj):
                    continue
                if reached and isinstance(obj, StreamObject):
                    found = inflated_beyond(obj, max_stream_bytes)
                    if found is not None:
                        raise StreamLimitError(f"a stream inflates to more than {max_stream_bytes} bytes "
                                               "([limits] max_stream_bytes); the output was not written",
                                               page=index if index < pages else None)
                # (not up a /Parent: each page's walk stays on that page; the tree is reached from the catalog)
                stack.extend(value for key, value in obj.items() if key != "/Parent" and isinstance(value, _CONTAINERS))
            else:
                nul_names = False
                for value in obj:
                    if isinstance(value, _CONTAINERS):
                        stack.append(value)
                    elif isinstance(value, NameObject) and "\x00" in value:
                        nul_names = True
                if nul_names:
                    _split_nul_names(obj)


def _clean_dictionary(obj: DictionaryObject) -> bool:
    """Clean one dictionary in place; True when it became an inert action (nothing left inside)."""
    if active_action_kind(obj) is not None:
        for key in list(obj.keys()):
            if key != "/Type":
                del obj[key]
        obj[NameObject("/S")] = NameObject("/Named")
        obj[NameObject("/N")] = NameObject("/Nothing")  # an inert named action
        return True
    for key in DROPPED_KEYS:
        if key in obj:
            del obj[key]
    if resolved(obj.get("/Subtype")) in DROPPED_ANNOTATIONS:
        for key in ("/FS", "/Movie", "/Sound", "/3DD", "/A"):
            if key in obj:
                del obj[key]
    if isinstance(obj, StreamObject) and resolved(obj.get("/Type")) == "/EmbeddedFile":
        obj._data = b""  # noqa: SLF001 - pypdf has no public "raw bytes" setter
        obj.decoded_self = None
        for key in ("/Filter", "/DecodeParms", "/Params"):
            if key in obj:
                del obj[key]
    return False


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


def drop_unreachable(writer: PdfWriter) -> None:
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
