"""The conversion cache: what a file's content became, keyed by the SHA-256 of its bytes.

Owns: the layout of `state/cache/<sha256[:2]>/<sha256>/` and reading and writing its entries:
  result.json    what the conversion produced (kind, pages, title, which PDF to use); written last,
                 so its presence means the entry is complete
  texts.json     the text of each page, one string per page ("" for a page without a text layer)
  converted.pdf  the PDF made from a non-PDF file, or a repaired / decrypted copy of a PDF
  (result.json "confidence": per page, how sure OCR was of its text, 0..1, null for born-digital;
   "ocr": for a file with pages without a text layer, what their reading depended on (the engine
   version and the settings that change what a page reads as, or "off"): an entry made with other
   OCR settings is a miss, so the file is converted and its pages read again)
  refused.json   a permanent refusal (encrypted, corrupt, macros, ...), so the file is not tried again
Must not: parse documents or run converters (that is packet.intake.convert), or cache a refusal that can
change with the configuration or the machine's load (too_large, too_many_pages, timeout).
Every file is written atomically with the private mode (packet.fsutil). Only converted.pdf is synced
to disk: texts.json and result.json are not (four syncs a file were about a third of converting a
text PDF), and result.json holds the SHA-256 of texts.json ("texts_sha256"), so whatever a crash of
the machine leaves of either (nothing, an empty or torn file, an old one) reads as a miss and the
file is simply converted again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from packet.errors import RefusedFile
from packet.fsutil import atomic_write_bytes, atomic_write_text
from packet.model.models import Converted

# Bump when the meaning of an entry changes, so old entries are ignored. 2: page texts come from
# poppler's pdftotext (pypdf only as the fallback), which lays text out differently. 3: pages
# without a text layer are read by OCR (texts, a text layer in converted.pdf, "confidence"). 4: "ocr",
# the OCR settings an entry was made with (entries of 3 do not say). 5: LZW and run-length bounds, PDF
# image sizes given by reference (files taken before are read again). 6: a PDF pypdf reads only by
# searching it for objects is taken as qpdf's rewrite, or refused as damaged. 7: a PDF with more than
# 1,000 annotations on a page or 20,000 in all is refused (limits.check_annotations). 8: a page with
# a little text over a large picture (a fax header on a scan) is read by OCR too (convert.pdf.pictured_pages).
# 9: so is a page with a scan pasted into part of it, whatever its own text (convert.pdf._part_picture).
# 10: a filled form's text fields add "name: value" lines to their page's text (convert.pdf.field_lines).
CACHE_VERSION = 10
RESULT = "result.json"
TEXTS = "texts.json"
CONVERTED_PDF = "converted.pdf"
REFUSED = "refused.json"
ORIGINAL = "original"  # result.json "pdf": the original file is used as is

# Refusals that depend on the configuration or on the moment, never cached.
UNCACHEABLE_REASONS = frozenset({"too_large", "too_many_pages", "timeout", "link", "hard_link"})


def entry_dir(cache_dir: Path, sha256: str) -> Path:
    return Path(cache_dir) / sha256[:2] / sha256


def load(cache_dir: Path, sha256: str, original: Path,
         ocr_key: Callable[[], str | None] | None = None) -> Converted | RefusedFile | None:
    """The cached outcome for content `sha256`, or None when it has not been converted yet.

    `original` is where the file is now (a PDF used as is points there). A damaged or outdated
    entry counts as a miss, so the file is simply converted again. `ocr_key()` gives the current
    OCR settings' key (packet.intake.ocr.conversion_key; None when it cannot be told): an entry
    whose pages were read with other settings is a miss too.
    """
    folder = entry_dir(cache_dir, sha256)
    refused = _read_json(folder / REFUSED)
    if isinstance(refused, dict) and refused.get("version") == CACHE_VERSION:
        try:
            return RefusedFile(str(refused["reason"]), str(refused["message"]), str(refused["what_to_do"]))
        except KeyError:
            return None
    meta = _read_json(folder / RESULT)
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION or meta.get("sha256") != sha256:
        return None
    if meta.get("ocr") is not None and ocr_key is not None:
        current = ocr_key()
        if current is not None and current != meta["ocr"]:
            return None
    texts = _read_json(folder / TEXTS, meta.get("texts_sha256"))
    try:
        pages = int(meta["pages"])
        kind = str(meta["kind"])
        pdf_name = str(meta["pdf"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(texts, list) or len(texts) != pages or not all(isinstance(t, str) for t in texts):
        return None
    if pdf_name == ORIGINAL:
        pdf_path = Path(original)
    else:
        pdf_path = folder / pdf_name
        if not pdf_path.is_file():
            return None
    title = meta.get("title")
    confidence = meta.get("confidence") or []
    if not isinstance(confidence, list) or (confidence and len(confidence) != pages) or not all(
            value is None or (isinstance(value, (int, float)) and 0.0 <= value <= 1.0) for value in confidence):
        return None
    return Converted(sha256=sha256, pdf_path=pdf_path, pages=pages, page_texts=tuple(texts),
                     source_kind=kind, title=title if isinstance(title, str) and title else None,
                     page_confidence=tuple(None if value is None else float(value) for value in confidence))


def store_converted(cache_dir: Path, sha256: str, *, kind: str, page_texts: list[str],
                    title: str | None, pdf_bytes: bytes | None = None,
                    page_confidence: tuple[float | None, ...] = (), ocr: str | None = None) -> Path:
    """Record a successful conversion. `pdf_bytes` is None when the original PDF is used as is;
    `page_confidence` is empty when no page was read by OCR; `ocr` is the OCR settings' key when
    the file has pages without a text layer (read by OCR, or not because OCR is off)."""
    folder = entry_dir(cache_dir, sha256)
    if pdf_bytes is not None:
        atomic_write_bytes(folder / CONVERTED_PDF, pdf_bytes)  # synced: result.json is written after it
    texts = json.dumps(list(page_texts)).encode("utf-8")
    atomic_write_bytes(folder / TEXTS, texts, durable=False)  # checked against texts_sha256 when read
    meta = {"version": CACHE_VERSION, "sha256": sha256, "kind": kind, "pages": len(page_texts),
            "title": title, "pdf": CONVERTED_PDF if pdf_bytes is not None else ORIGINAL,
            "texts_sha256": hashlib.sha256(texts).hexdigest()}
    if page_confidence:
        meta["confidence"] = list(page_confidence)
    if ocr is not None:
        meta["ocr"] = ocr
    atomic_write_text(folder / RESULT, json.dumps(meta, indent=1), durable=False)  # last: marks the entry complete
    return folder


def store_refusal(cache_dir: Path, sha256: str, refused: RefusedFile) -> bool:
    """Record a permanent refusal; transient or configuration-dependent ones are not stored."""
    if refused.transient or refused.reason in UNCACHEABLE_REASONS:
        return False
    record = {"version": CACHE_VERSION, "sha256": sha256, "reason": refused.reason,
              "message": refused.message, "what_to_do": refused.what_to_do}
    # Not synced: a torn or lost refusal reads as a miss, and the file is tried again.
    atomic_write_text(entry_dir(cache_dir, sha256) / REFUSED, json.dumps(record, indent=1), durable=False)
    return True


def _read_json(path: Path, sha256: object = None) -> object:
    """The file's JSON value; None when it cannot be read, is not JSON, or (`sha256` given) its
    bytes do not have that hash."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            return None
        return json.loads(data)
    except (OSError, ValueError):
        return None
