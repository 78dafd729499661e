"""The leak detector: no page of a withheld document reaches the member or the provider.

Owns: `find_leaks`, which checks, by page content, not by file name, that no page of a withheld
(privileged or withheld-by-law) document appears in any member or provider output: its text (the
whole page, or runs of its own words however short: word shingles that are not boilerplate the
submission may show anyway), its images (by their bytes, and by what they show: a re-encoded or
rescaled scan is recognised by a grey thumbnail's correlation), and the content streams of the
archived source. Content that a releasable page of the submission has too (a shared letterhead,
another scan of a releasable record) proves nothing and is not a failure.
Must not: change anything; decide what is withheld (the manifest says); check hashes, Bates
numbers or marks (`packet.pipeline.verify`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tomllib
from array import array
from dataclasses import dataclass, fields
from pathlib import Path

import docx
from PIL import Image

from packet.config import Config
from packet.model.case import parse_case
from packet.model.models import PRIVILEGED_MARK
from packet.pdf.stamp import PAGE_XOBJECT, STAMP_XOBJECT
from packet.pdfread import PdfReader
from packet.records.layout import ORG_PACKET

# Everything the member or the member's provider receives (spec.md "Outputs").
RECIPIENT_OUTPUTS = ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf",
                     "annotated-list.csv", "notice-letter.docx", "representative-packet.pdf")
# A withheld page is compared as a whole by text only when its text (without its title and the
# service's stamps) is long enough to be its own: a short line ("Page 2") could appear anywhere.
# Shorter pages are still compared by their own word shingles, content stream and images.
MIN_TEXT_CHARS = 80
MIN_IMAGE_BYTES = 2048
MIN_CONTENT_BYTES = 64
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class LeakReport:
    failures: tuple[str, ...]  # one per leaked page found, naming the output, its page and the source
    checked: tuple[str, ...]  # the recipient outputs that were looked at
    withheld_documents: int


def normalised(text: str) -> str:
    """Text without white space, lower case: what the mark and whole-page checks compare."""
    return _WS.sub("", text or "").lower()


def read_pdf(path: Path) -> PdfReader:
    return PdfReader(str(path))


def page_text(page) -> str:
    try:
        return page.extract_text() or ""
    except Exception:  # pypdf raises various errors on odd pages; an empty text fails safe
        return ""


def _xobjects(resources, path: tuple[str, ...] = (), seen: set[int] | None = None):
    """(name path, object) of every image and form a page draws, also inside forms, each once.

    The service's own stamp (Bates label, privileged mark, DRAFT) is skipped: it is on every page.
    """
    seen = set() if seen is None else seen
    try:
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        xobjects = xobjects.get_object() if xobjects is not None else None
    except Exception:
        return
    if not xobjects:
        return
    for name in xobjects:
        if name == STAMP_XOBJECT:
            continue
        try:
            obj = xobjects[name].get_object()
        except Exception:
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        subtype = obj.get("/Subtype")
        if subtype in ("/Image", "/Form"):
            yield path + (str(name),), obj
        if subtype == "/Form":
            yield from _xobjects(obj.get("/Resources"), path + (str(name),), seen)


def _xobject_blobs(resources, out: set[str]) -> None:
    """Hashes of the sizeable images and form contents drawn by a page, also inside forms."""
    for _, obj in _xobjects(resources):
        if obj.get("/Subtype") == "/Image":
            data = getattr(obj, "_data", b"") or b""
            if len(data) >= MIN_IMAGE_BYTES:
                out.add("image:" + hashlib.sha256(data).hexdigest())
        else:
            try:
                data = obj.get_data()
            except Exception:
                data = b""
            if len(data.strip()) >= MIN_CONTENT_BYTES:
                out.add("content:" + hashlib.sha256(data.strip()).hexdigest())


def _page_blobs(page) -> set[str]:
    """Content fingerprints of a page: its images, its forms, and its own content stream unless
    that is only the service's wrapper (a page of imr-org-packet.pdf draws /ImrPage, which holds
    the source page's content)."""
    out: set[str] = set()
    try:
        resources = page.get("/Resources")
        _xobject_blobs(resources, out)
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


# --- Pictures: an image compared by what it shows, not by how it is encoded ----------------------
# A scanned withheld page may reach a mailing re-encoded (other compression, re-saved, another
# resolution). Each sizeable image is decoded once (cached by the SHA-256 of its stream), reduced
# to a grey THUMB x THUMB thumbnail (box averages: robust to re-compression and rescaling) and
# compared by correlation. Pictures without structure at that scale (pure noise) are recognised
# only when re-encoded losslessly or lightly; their exact bytes are compared as before.
THUMB = 32
MIN_IMAGE_PX = 64  # smaller images (logos, rules, check boxes) are not compared by pixels
MIN_PIXEL_STD = 4.0  # a near-uniform image (a blank page, a grey box) is not compared
MIN_THUMB_STD = 1.0
# Correlation of thumbnails: the same scan re-encoded (JPEG down to quality 20, a fifth to twice
# the size) scores above 0.98; different text pages of one layout (one clinic's faxes) below 0.9.
PICTURE_MATCH = 0.95
# Two re-encodings of one picture differ in likeness by ~0.002: a picture within this of a
# releasable picture is taken for that one (counsel's file may hold a second scan of a record).
PICTURE_MARGIN = 0.01
MAX_ASPECT_RATIO = 1.12  # the same picture keeps its shape
_PICTURE_CACHE: dict[str, _Picture | None] = {}
_PICTURE_CACHE_MAX = 4096


@dataclass(frozen=True, eq=False)
class _Picture:
    """A decoded image in normalised form: its shape and unit-norm grey thumbnail.

    The thumbnail is a packed array of doubles (8 KB): as a tuple of Python floats it took 33 KB,
    and a long-running service keeps up to _PICTURE_CACHE_MAX of them (135 MB as tuples)."""

    aspect: float
    thumb: array  # array("d"), THUMB * THUMB values

    def likeness(self, other: _Picture) -> float:
        """The thumbnails' correlation (1.0: the same pixels) for a same-shaped picture; else 0."""
        ratio = self.aspect / other.aspect if other.aspect else 0.0
        if not 1 / MAX_ASPECT_RATIO <= ratio <= MAX_ASPECT_RATIO:
            return 0.0
        return sum(a * b for a, b in zip(self.thumb, other.thumb))


def _float_values(image) -> list[float]:
    return list(array("f", image.tobytes()))


def _picture_of(pil_image) -> _Picture | None:
    """The normalised form of a decoded image, or None for a tiny or near-uniform one."""
    width, height = pil_image.size
    if min(width, height) < MIN_IMAGE_PX:
        return None
    factor = min(width, height) // (THUMB * 8)
    if pil_image.mode not in ("L", "RGB"):
        pil_image = pil_image.convert("RGB" if pil_image.mode in ("CMYK", "P", "RGBA", "LA") else "L")
    if factor > 1:
        pil_image = pil_image.reduce(factor)  # box averages: cheap, and what the thumbnail does anyway
    grey = pil_image.convert("L")
    sample = _float_values(grey.resize((64, 64), Image.NEAREST).convert("F"))
    if _std(sample) < MIN_PIXEL_STD:
        return None
    values = _float_values(grey.convert("F").resize((THUMB, THUMB), Image.BOX))
    mean = sum(values) / len(values)
    centred = [v - mean for v in values]
    norm = sum(v * v for v in centred) ** 0.5
    if norm / len(values) ** 0.5 < MIN_THUMB_STD:
        return None
    return _Picture(aspect=width / height, thumb=array("d", (v / norm for v in centred)))


def _decode_image(page, path: tuple[str, ...], obj, width: int, height: int):
    """A PIL image of an image XObject. The common scans (8-bit grey or RGB, 1-bit grey; Flate or
    DCT) are decoded directly, a JPEG at a reduced scale; anything else through pypdf."""
    filters = obj.get("/Filter")
    filters = [] if filters is None else [str(f) for f in filters] if isinstance(filters, list) else [str(filters)]
    colorspace = obj.get("/ColorSpace")
    mode = {"/DeviceGray": "L", "/DeviceRGB": "RGB"}.get(colorspace) if isinstance(colorspace, str) else None
    bits = obj.get("/BitsPerComponent")
    if mode and "/Decode" not in obj and "/ImageMask" not in obj:
        if filters == ["/DCTDecode"] and bits == 8:
            image = Image.open(io.BytesIO(getattr(obj, "_data", b"") or b""))
            scale = min(width, height) / (THUMB * 8)
            if scale > 1:
                image.draft("L", (int(width / scale), int(height / scale)))
            image.load()
            if image.mode in ("L", "RGB"):
                return image
        elif set(filters) <= {"/FlateDecode", "/LZWDecode"} and bits in (1, 8):
            data = obj.get_data()
            if bits == 1 and mode == "L":
                if len(data) >= (width + 7) // 8 * height:
                    return Image.frombytes("1", (width, height), data)
            elif len(data) >= width * height * len(mode):
                return Image.frombytes(mode, (width, height), data)
    return page.images[list(path)].image


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


def _page_pictures(page) -> list[_Picture]:
    """The normalised pictures of a page's sizeable images; each stream is decoded once."""
    try:
        found = [(path, obj) for path, obj in _xobjects(page.get("/Resources")) if obj.get("/Subtype") == "/Image"]
    except Exception:
        return []
    pictures = []
    for path, obj in found:
        try:
            width, height = int(obj.get("/Width", 0)), int(obj.get("/Height", 0))
        except (TypeError, ValueError):
            continue
        if min(width, height) < MIN_IMAGE_PX:
            continue
        digest = hashlib.sha256(getattr(obj, "_data", b"") or b"")
        digest.update(repr((width, height, obj.get("/Filter"), obj.get("/ColorSpace"), obj.get("/Decode"),
                            obj.get("/DecodeParms"), obj.get("/BitsPerComponent"))).encode())
        key = digest.hexdigest()
        if key not in _PICTURE_CACHE:
            try:
                image = _decode_image(page, path, obj, width, height)
                picture = _picture_of(image) if image is not None else None
            except Exception:  # an image pypdf or Pillow cannot decode: the byte hash still holds
                picture = None
            if len(_PICTURE_CACHE) >= _PICTURE_CACHE_MAX:
                _PICTURE_CACHE.clear()
            _PICTURE_CACHE[key] = picture
        if _PICTURE_CACHE[key] is not None:
            pictures.append(_PICTURE_CACHE[key])
    return pictures


# --- Text shingles: a withheld page's own words, however short, however laid out ------------------
# A withheld page is "in" a recipient page when they share runs of SHINGLE_WORDS words that are
# the withheld page's own: not boilerplate (what the submission may legitimately show a member:
# the text of its releasable pages, cover and index, the mailing templates, the case facts) and
# covering at least MIN_SHARED_CHARS letters and digits that are not case facts (names, ids,
# dates, addresses appear everywhere).
SHINGLE_WORDS = 5
MIN_SHARED_CHARS = 24
_WORD = re.compile(r"[a-z0-9]+")
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def _tokens(text: str) -> list[str]:
    return _WORD.findall((text or "").lower())


def _drop_runs(tokens: list[str], runs: list[list[str]], number_digits: int | None = None) -> list[str]:
    """`tokens` without each occurrence of a run (with `number_digits`: a run followed by a number
    of that many digits, i.e. a Bates label)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for run in runs:
            if run and tokens[i:i + len(run)] == run:
                end = i + len(run)
                if number_digits is not None:
                    if end < len(tokens) and tokens[end].isdigit() and len(tokens[end]) == number_digits:
                        i = end + 1
                        break
                    continue
                i = end
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _shingles(tokens: list[str]) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + SHINGLE_WORDS]) for i in range(len(tokens) - SHINGLE_WORDS + 1)]


def _template_texts(config: Config) -> list[str]:
    """The mailing templates' own words (the variables left out): what every mailing says."""
    folder = Path(config.paths.templates)
    texts = []
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_size < 1_000_000)
    except OSError:
        return []
    for path in files:
        try:
            texts.append(_JINJA.sub(" | ", path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return texts


def _case_fact_texts(config: Config, case_id: str, manifest: dict, archive_dir: Path | None) -> list[str]:
    """The case facts (member, provider, representative, service, ids) from the archived case.toml,
    or the inbox's for a draft; [] when neither can be read."""
    number = manifest.get("submission")
    candidates = []
    if archive_dir is not None:
        candidates.append(Path(archive_dir) / "case.toml")
    if isinstance(number, int) and manifest.get("kind") != "draft":
        candidates.append(config.paths.archive / case_id / f"submission-{number:02d}" / "case.toml")
    candidates.append(config.paths.inbox / case_id / "case.toml")
    for path in candidates:
        try:
            with open(path, "rb") as handle:
                facts = parse_case(tomllib.load(handle), case_id)
        except Exception:  # unreadable or invalid: the facts just do not count as boilerplate
            continue
        texts = [facts.case_id, facts.disputed_service, facts.grievance_number or ""]
        for person in (facts.member, facts.provider, facts.representative):
            if person is None:
                continue
            for value in (getattr(person, f.name) for f in fields(person)):
                if isinstance(value, (list, tuple)):
                    texts.extend(str(v) for v in value)
                elif value is not None:
                    texts.append(str(value))
                    if hasattr(value, "strftime"):
                        texts += [f"{value:%m/%d/%Y}", f"{value:%B} {value.day}, {value.year}"]
        return texts
    return []


def _withheld_sources(manifest: dict, config: Config, case_id: str, doc: dict,
                      archive_dir: Path | None) -> Path | None:
    """The archived PDF a document's pages came from (for content-stream fingerprints)."""
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


def find_leaks(submission_dir: Path, manifest: dict, config: Config, case_id: str, pages, texts: list[str],
               outputs: dict[str, dict], archive_dir: Path | None,
               recipient_texts: dict[str, list[str]] | None = None) -> LeakReport:
    """Look for every withheld page of imr-org-packet.pdf (`pages`, with their `texts`) in the
    member and provider outputs of `submission_dir` listed in `outputs`; see the module docstring.

    `recipient_texts` (output name -> page texts) are the recipient PDFs' texts read by the same
    extractor as `texts` (`packet.pipeline.pagetext`); without them pypdf reads those pages."""
    failures: list[str] = []
    norm_mark = normalised(PRIVILEGED_MARK)
    withheld: list[tuple[str, int]] = []  # (source, packet page)
    withheld_docs = []
    for doc in manifest.get("documents", []):
        if doc.get("privileged") or doc.get("withheld_from_member"):
            withheld.extend((doc.get("source", "?"), p) for p in doc.get("packet_pages") or [])
            withheld_docs.append(doc)

    if not withheld_docs:  # nothing to look for: the outputs are listed as checked, not read
        checked = tuple(name for name in RECIPIENT_OUTPUTS
                        if name in outputs and (submission_dir / name).is_file())
        return LeakReport(failures=(), checked=checked, withheld_documents=0)
    bates_re = re.compile(re.escape(normalised(config.bates.prefix.format(case_id=case_id)))
                          + r"\d{%d}" % config.bates.digits)
    prefix_tokens = _tokens(config.bates.prefix.format(case_id=case_id))
    stamp_runs = [_tokens(PRIVILEGED_MARK), ["draft"]]

    def body(text: str) -> str:
        # The page's own text: without the service's stamps (Bates number, privileged mark, DRAFT).
        text = normalised(text).replace(norm_mark, "").replace("draft", "")
        return bates_re.sub("", text)

    def words(text: str) -> list[str]:
        # The page's own words, without the service's stamps.
        tokens = _tokens(text)
        if prefix_tokens:
            tokens = _drop_runs(tokens, [prefix_tokens], config.bates.digits)
        return _drop_runs(tokens, stamp_runs)

    withheld_numbers = {page for _source, page in withheld}
    releasable = [n for n in range(1, len(pages) + 1) if n not in withheld_numbers]
    # What the submission may show anyone: a withheld page's content that also occurs on a
    # releasable page (a shared letterhead, the same drawing of an image-only page) proves nothing.
    releasable_blobs: set[str] = set()
    for number in releasable:
        releasable_blobs |= _page_blobs(pages[number - 1])
    boilerplate: set[tuple[str, ...]] = set()
    for number in releasable:  # cover sheet, index, dividers, releasable documents
        boilerplate.update(_shingles(words(texts[number - 1])))
    for text in _template_texts(config):
        boilerplate.update(_shingles(_tokens(text)))
    facts = _case_fact_texts(config, case_id, manifest, archive_dir)
    fact_tokens = set(prefix_tokens)
    for text in facts:
        fact_tokens.update(_tokens(text))

    fingerprints = []  # (source, page, text body, content fingerprints, own words, pictures)
    titles = {doc.get("source"): normalised(str(doc.get("title") or "")) for doc in withheld_docs}
    shingle_index: dict[tuple[str, ...], list[tuple[int, int]]] = {}
    for source, page in withheld:
        if not 0 < page <= len(pages):
            continue
        text = body(texts[page - 1])
        # The annotated list names every withheld document by its title: a page that holds little
        # more than its title must not count as "found" there, so the title does not count.
        own = len(text) - (len(titles[source]) if titles.get(source) and titles[source] in text else 0)
        tokens = words(texts[page - 1])
        for position, shingle in enumerate(_shingles(tokens)):
            if shingle not in boilerplate:
                shingle_index.setdefault(shingle, []).append((len(fingerprints), position))
        fingerprints.append((source, page, text if own >= MIN_TEXT_CHARS else "",
                             _page_blobs(pages[page - 1]) - releasable_blobs, tokens,
                             _page_pictures(pages[page - 1])))
    streams = []  # (source, page of the document, decoded content stream of the archived source)
    for doc in withheld_docs:
        path = _withheld_sources(manifest, config, case_id, doc, archive_dir)
        if path is None:
            continue
        try:
            for number, page in enumerate(read_pdf(path).pages, 1):
                content = _page_content(page)
                if (len(content.strip()) >= MIN_CONTENT_BYTES
                        and "content:" + hashlib.sha256(content.strip()).hexdigest() not in releasable_blobs):
                    streams.append((doc.get("source", "?"), number, content))
        except Exception:
            continue

    releasable_pictures: list[_Picture] | None = None

    def releasable_likeness(picture: _Picture) -> float:
        # Decoded only when a recipient picture looks like a withheld one: clean mailings hold no scans.
        nonlocal releasable_pictures
        if releasable_pictures is None:
            releasable_pictures = [p for n in releasable for p in _page_pictures(pages[n - 1])]
        return max((picture.likeness(p) for p in releasable_pictures), default=0.0)

    def shared_words(hits: list[int], tokens: list[str]) -> int:
        covered = set()
        for position in hits:
            covered.update(range(position, position + SHINGLE_WORDS))
        return sum(len(tokens[i]) for i in covered if tokens[i] not in fact_tokens)

    checked = []
    for name in RECIPIENT_OUTPUTS:
        if name not in outputs or not (submission_dir / name).is_file():
            continue
        checked.append(name)
        path = submission_dir / name
        given = recipient_texts.get(name) if recipient_texts is not None else None
        for label, text, blobs, content, pictures in _recipient_pages(path, given):
            normalized = body(text)
            hits: dict[int, list[int]] = {}
            for shingle in set(_shingles(words(text))):
                for index, position in shingle_index.get(shingle, ()):
                    hits.setdefault(index, []).append(position)
            for index, (source, page, page_body, page_blobs, tokens, page_pictures) in enumerate(fingerprints):
                if (page_body and page_body in normalized) or (
                        index in hits and shared_words(hits[index], tokens) >= MIN_SHARED_CHARS):
                    failures.append(f'{name} {label}: holds the text of withheld document "{source}" '
                               f"({ORG_PACKET} page {page})")
                elif page_blobs & blobs:
                    failures.append(f'{name} {label}: holds the page content or an image of withheld '
                               f'document "{source}" ({ORG_PACKET} page {page})')
                elif any(_picture_leaked(picture, page_pictures, releasable_likeness) for picture in pictures):
                    failures.append(f'{name} {label}: holds an image of withheld document "{source}" '
                               f"({ORG_PACKET} page {page}), re-encoded")
            if content:
                for source, number, stream in streams:
                    if stream in content:
                        failures.append(f'{name} {label}: holds the page content of withheld document '
                                   f'"{source}" (its page {number})')
    return LeakReport(failures=tuple(failures), checked=tuple(checked), withheld_documents=len(withheld_docs))


@dataclass(frozen=True)
class RemovedReport:
    failures: tuple[str, ...]  # one per removed page found in an output, naming the output and the page
    checked: tuple[str, ...]  # the outputs looked at
    removed_pages: int  # pages people removed, over all documents


def find_removed_pages(submission_dir: Path, manifest: dict, config: Config, case_id: str,
                       outputs: dict[str, dict], archive_dir: Path | None) -> RemovedReport:
    """Look for every page a person removed (a document's `removed_pages`: another patient's, say) in
    EVERY output of the submission, the IMR packet included: by its own words (shingles that no kept
    page of any archived document and no template has), its images and forms (by their bytes) and
    its content stream, read from the archived file the document's pages came from. A sealed
    document whose archived file cannot be read fails the check; a draft (no archive) is skipped."""
    docs = [d for d in manifest.get("documents", []) if d.get("removed_pages")]
    if not docs:
        return RemovedReport((), (), 0)
    failures: list[str] = []
    bates_prefix = _tokens(config.bates.prefix.format(case_id=case_id))
    stamp_runs = [_tokens(PRIVILEGED_MARK), ["draft"]]

    def words(text: str) -> list[str]:
        tokens = _drop_runs(_tokens(text), [bates_prefix], config.bates.digits) if bates_prefix else _tokens(text)
        return _drop_runs(tokens, stamp_runs)

    boilerplate: set[tuple[str, ...]] = set()
    for text in _template_texts(config):
        boilerplate.update(_shingles(_tokens(text)))
    fact_tokens = set(bates_prefix)
    for text in _case_fact_texts(config, case_id, manifest, archive_dir):
        fact_tokens.update(_tokens(text))
    removed: list[tuple[str, int, object]] = []  # (source, page of the file, page)
    count = 0
    for doc in manifest.get("documents", []):
        path = _withheld_sources(manifest, config, case_id, doc, archive_dir)
        gone = {int(n) for n in doc.get("removed_pages") or [] if isinstance(n, int)}
        count += len(gone)
        if path is None:
            if gone and manifest.get("kind") != "draft":
                failures.append(f'"{doc.get("source", "?")}": its archived file cannot be read to check that '
                                "its removed pages are in no output")
            continue
        try:
            pages = read_pdf(path).pages
            for number, page in enumerate(pages, 1):
                if number in gone:
                    removed.append((doc.get("source", "?"), number, page))
                else:  # what a kept page says may appear anywhere
                    boilerplate.update(_shingles(words(page_text(page))))
        except Exception:
            if gone:
                failures.append(f'"{doc.get("source", "?")}": its archived file cannot be read to check that '
                                "its removed pages are in no output")
    prints = []  # (source, page, own shingles, tokens, blobs, content stream)
    for source, number, page in removed:
        tokens = words(page_text(page))
        own = {shingle: position for position, shingle in enumerate(_shingles(tokens)) if shingle not in boilerplate}
        content = _page_content(page).strip()
        prints.append((source, number, own, tokens, _page_blobs(page),
                       content if len(content) >= MIN_CONTENT_BYTES else b""))
    checked = []
    for name in sorted(outputs):
        path = submission_dir / name
        if not path.is_file() or path.suffix.lower() not in (".pdf", ".docx", ".csv", ".txt"):
            continue
        checked.append(name)
        for label, text, blobs, content, _pictures in _recipient_pages(path):
            shingles = set(_shingles(words(text)))
            for source, number, own, tokens, page_blobs, stream in prints:
                covered: set[int] = set()
                for shingle in shingles & own.keys():
                    covered.update(range(own[shingle], own[shingle] + SHINGLE_WORDS))
                shared = sum(len(tokens[i]) for i in covered if tokens[i] not in fact_tokens)
                if shared >= MIN_SHARED_CHARS:
                    failures.append(f'{name} {label}: holds the text of page {number} of "{source}", '
                                    "which a person removed")
                elif page_blobs & blobs:
                    failures.append(f'{name} {label}: holds an image or form of page {number} of "{source}", '
                                    "which a person removed")
                elif stream and content and stream in content:
                    failures.append(f'{name} {label}: holds the page content of page {number} of "{source}", '
                                    "which a person removed")
    return RemovedReport(failures=tuple(failures), checked=tuple(checked), removed_pages=count)


def _picture_leaked(picture: _Picture, withheld: list[_Picture], releasable_likeness) -> bool:
    """Whether a recipient's picture is one of a withheld page's pictures and not (as far as the
    thumbnails can tell) a releasable one: a copy set shows releasable scans, and a withheld
    document may hold another scan of a releasable record."""
    best = max((picture.likeness(w) for w in withheld), default=0.0)
    return best >= PICTURE_MATCH and releasable_likeness(picture) < best - PICTURE_MARGIN


def _recipient_pages(path: Path, texts: list[str] | None = None) -> list[tuple[str, str, set[str], bytes, list[_Picture]]]:
    """(label, text, content fingerprints, content stream, pictures) per page of a member/provider
    output; a PDF's page texts are `texts` when given for exactly its pages, else pypdf's."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        out = []
        try:
            reader = read_pdf(path)
            pages = reader.pages
            if texts is not None and len(texts) != len(pages):
                texts = None
            for number, page in enumerate(pages, 1):
                text = texts[number - 1] if texts is not None else page_text(page)
                out.append((f"page {number}", text, _page_blobs(page), _page_content(page),
                            _page_pictures(page)))
        except Exception:
            return [("(unreadable)", "", set(), b"", [])]
        return out
    if suffix == ".docx":
        try:
            document = docx.Document(str(path))
            text = "\n".join(p.text for p in document.paragraphs)
            for table in document.tables:
                for row in table.rows:
                    text += "\n" + " ".join(cell.text for cell in row.cells)
        except Exception:
            text = ""
        return [("(document)", text, set(), b"", [])]
    return [("(file)", path.read_text(encoding="utf-8", errors="replace"), set(), b"", [])]

