"""Telling a file's kind by its content: magic bytes, then the inside of ZIP and OLE containers.

Owns: the signatures of accepted and common foreign files, the checks a container allows before any
converter sees it (password, macros, external entities, declared size and part count), and the
suffix tie-breaks. OLE compound files (.doc, encrypted OOXML) are read with olefile and
msoffcrypto-tool. Must not: convert, or decompress more than a few KiB of any part.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

from packet.intake.convert.refusals import ACCEPTED, KIND_NAMES, PDF, TEXT, limit_refusal, megabytes, refusal

TEXT_SUFFIXES = (".txt", ".text")
# What a file's name says it is, used only when its content has no recognisable signature.
SUFFIX_KINDS = {".pdf": PDF, ".docx": "docx", ".docm": "docx", ".dotx": "docx", ".dotm": "docx",
                ".doc": "doc", ".dot": "doc", ".rtf": "rtf", ".odt": "odt", ".ott": "odt",
                ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg",
                ".png": "png", ".txt": TEXT, ".text": TEXT}
MACRO_SUFFIXES = (".docm", ".dotm")

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: .doc, and encrypted OOXML
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# Signatures of common files that are not accepted inputs, so they get a clear "unsupported".
FOREIGN_SIGNATURES = ((b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"BM", "a BMP image"),
                      (b"%!PS", "a PostScript file"), (b"\x1f\x8b", "a compressed (gzip) file"),
                      (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
                      (b"\x00\x00\x01\x00", "an icon file"), (b"MZ", "a program"),
                      (b"\x7fELF", "a program"))


def guess_is_office(head: bytes) -> bool:
    """Whether a file starting with `head` will go to LibreOffice (it then gets the longer time limit)."""
    return head.startswith((b"PK\x03\x04", b"{\\rtf")) or head[:8] == CFB_MAGIC


def sniff(path: Path, suffix: str = "", *, max_unpacked_bytes: int = 1 << 31, max_parts: int = 1 << 20) -> str:
    """The kind of file at `path`, told by its content (the name's suffix only breaks ties).

    Returns one of KINDS or raises RefusedFile (encrypted, macros, unsupported, corrupt, too_large)
    when the container itself already says the file cannot be used.
    """
    path = Path(path)
    suffix = (suffix or path.suffix).lower()
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if not head:
        raise refusal("empty")
    if head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024] and suffix not in TEXT_SUFFIXES):
        return PDF  # junk before the header is common (mail gateways, scanners); viewers accept it
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(ZIP_MAGICS):
        return _sniff_zip(path, suffix, max_unpacked_bytes, max_parts)
    if head.startswith(CFB_MAGIC):
        return _sniff_ole(path)
    for signature, what in FOREIGN_SIGNATURES:
        if head.startswith(signature) and suffix not in TEXT_SUFFIXES:
            raise refusal("unsupported", f"the file is {what}, which is not an accepted kind of file "
                                         f"(accepted: {ACCEPTED})")
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        raise refusal("unsupported", f"the file is a HEIC/AVIF photo, which is not accepted (accepted: {ACCEPTED})",
                      "save or export it as JPEG or PDF and drop that in")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        raise refusal("unsupported", f"the file is a WebP image, which is not accepted (accepted: {ACCEPTED})",
                      "save or export it as JPEG, PNG or PDF and drop that in")
    if suffix in TEXT_SUFFIXES:
        return TEXT
    if suffix == ".pdf":
        return PDF  # no header in the first KiB: let the PDF reader try, it refuses damaged files
    if suffix in SUFFIX_KINDS:
        raise refusal("corrupt", f"the file is named like a {KIND_NAMES[SUFFIX_KINDS[suffix]]} file, but its "
                                 "content is not one: it is damaged or incomplete")
    raise refusal("unsupported")


# --- ZIP: DOCX / ODT -----------------------------------------------------------------------------


def _sniff_zip(path: Path, suffix: str, max_unpacked_bytes: int, max_parts: int) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            return _inspect_zip(archive, suffix, max_unpacked_bytes, max_parts)
    except RuntimeError as exc:  # zipfile: a member is encrypted and needs a password
        raise refusal("encrypted") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, NotImplementedError,
            struct.error) as exc:
        raise refusal("corrupt", "the file is damaged or incomplete (its internal archive cannot be "
                                 "read)") from exc


def _inspect_zip(archive: zipfile.ZipFile, suffix: str, max_unpacked_bytes: int, max_parts: int) -> str:
    infos = archive.infolist()
    if len(infos) > max_parts:
        raise limit_refusal(f"the file holds {len(infos)} internal parts, more than the limit of {max_parts} "
                            "parts for one document")
    declared = sum(info.file_size for info in infos)
    if declared > max_unpacked_bytes:
        raise limit_refusal(f"the file unpacks to {megabytes(declared)} MB, more than the "
                            f"{megabytes(max_unpacked_bytes)} MB limit for an unpacked document")
    names = {info.filename.lower(): info for info in infos}
    content_types = _read_member(archive, names.get("[content_types].xml"), 1 << 20)
    if (suffix in MACRO_SUFFIXES or any(name.endswith("vbaproject.bin") for name in names)
            or b"macroenabled" in content_types.lower()):
        raise refusal("macros")
    mimetype = _read_member(archive, names.get("mimetype"), 200).strip()
    if mimetype.startswith(b"application/vnd.oasis.opendocument.text"):
        manifest = _read_member(archive, names.get("meta-inf/manifest.xml"), 4 << 20)
        if b"encryption-data" in manifest:
            raise refusal("encrypted")
        if any((name.startswith("basic/") and name.endswith(".xml")
                and not name.endswith(("script-lc.xml", "script-lb.xml", "dialog-lc.xml", "dialog-lb.xml")))
               or (name.startswith("scripts/") and not name.endswith("/")) for name in names):
            raise refusal("macros")
        kind = "odt"
    elif "word/document.xml" in names or b"wordprocessingml" in content_types:
        kind = "docx"
    elif mimetype.startswith(b"application/vnd.oasis.opendocument"):
        raise refusal("unsupported", "the file is an OpenDocument spreadsheet, presentation or drawing, "
                                     f"not a text document (accepted: {ACCEPTED})")
    elif b"spreadsheetml" in content_types or b"presentationml" in content_types:
        raise refusal("unsupported", "the file is an Excel or PowerPoint file, not a Word document "
                                     f"(accepted: {ACCEPTED})")
    else:
        raise refusal("unsupported", f"the file is a ZIP archive, not a document (accepted: {ACCEPTED})",
                      "unpack it and drop the documents inside it in one by one")
    # Word and OpenDocument never use a DTD; one here means a crafted file (XML external entities
    # can make a reader fetch URLs or local files). Such files are never handed to LibreOffice.
    for info in infos[:2000]:
        if info.filename.lower().endswith((".xml", ".rels")):
            head = _read_member(archive, info, 8192)
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                raise refusal("unsupported", "the file contains unusual internal markup (an external "
                                             "entity reference) that the service does not open, for safety",
                              "open it in Word, save it as a new .docx or as a PDF, and drop that in")
    return kind


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None, limit: int) -> bytes:
    if info is None:
        return b""
    with archive.open(info) as handle:
        return handle.read(limit)


def unpacked_size(path: Path, limit: int) -> int:
    """The real uncompressed size of a ZIP file's parts, counted by inflating them in small pieces
    (a part's header may understate it) and stopping as soon as it passes `limit`."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as handle:
                while block := handle.read(1 << 20):
                    total += len(block)
                    if total > limit:
                        return total
    return total


# --- OLE compound files: DOC, encrypted OOXML ------------------------------------------------------


def _sniff_ole(path: Path) -> str:
    import msoffcrypto
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            entries = {part for entry in ole.listdir(streams=True, storages=True) for part in entry}
    except OSError as exc:  # olefile: not a valid compound file
        raise refusal("corrupt") from exc
    except Exception as exc:  # noqa: BLE001 - olefile raises many types on crafted files
        raise refusal("corrupt") from exc
    if "EncryptedPackage" in entries:
        raise refusal("encrypted")
    if "WordDocument" not in entries:
        what = ("an Excel file" if {"Workbook", "Book"} & entries
                else "a PowerPoint file" if "PowerPoint Document" in entries
                else "an older Office file that is not a Word document")
        raise refusal("unsupported", f"the file is {what} (accepted: {ACCEPTED})")
    if "_VBA_PROJECT" in entries or "Macros" in entries:
        raise refusal("macros")
    try:
        with open(path, "rb") as handle:
            encrypted = msoffcrypto.OfficeFile(handle).is_encrypted()
    except Exception:  # noqa: BLE001 - a header msoffcrypto cannot read: let LibreOffice judge the file
        encrypted = False
    if encrypted:
        raise refusal("encrypted")
    return "doc"
