"""The kinds of file accepted, the refusal codes and their plain-language wording.

Owns: KINDS and their names for people, the reason codes (encrypted, corrupt, empty, unsupported,
too_large, too_many_pages, too_many_annotations, macros, conversion_failed, timeout) and the standard
message and "what to do" of each. Must not: read files. A refusal names the file's problem, never its name or text.
"""

from __future__ import annotations

from packet.errors import RefusedFile

PDF = "pdf"
LIBREOFFICE_KINDS = ("docx", "doc", "rtf", "odt")
IMAGE_KINDS = ("tiff", "jpeg", "png")
TEXT = "txt"
KINDS = (PDF, *LIBREOFFICE_KINDS, *IMAGE_KINDS, TEXT)

KIND_NAMES = {PDF: "PDF", "docx": "Word (.docx)", "doc": "Word (.doc)", "rtf": "RTF", "odt": "ODT",
              "tiff": "TIFF image", "jpeg": "JPEG image", "png": "PNG image", TEXT: "text"}
ACCEPTED = "PDF, Word (.docx, .doc), RTF, ODT, TIFF, JPEG, PNG and plain text (.txt)"

_MESSAGES = {
    "encrypted": ("the file is protected with a password, so it cannot be opened",
                  "ask the sender for an unlocked copy (no password) and drop that in"),
    "corrupt": ("the file is damaged or incomplete and cannot be read",
                "the file is damaged or incomplete; ask for a new copy or re-scan it"),
    "empty": ("the file is empty: it holds no content",
              "check that the file was saved or scanned completely, then drop in a complete copy"),
    "unsupported": (f"this kind of file is not accepted (accepted: {ACCEPTED})",
                    "save or print it as a PDF and drop that in"),
    "too_large": ("the file is larger than the size limit",
                  "ask for a smaller copy (split it into parts, or scan at a lower resolution) and drop that in"),
    "too_many_pages": ("the document has more pages than the limit for one document",
                       "split it into smaller documents and drop those in"),
    "too_many_annotations": ("the document carries more links, comments or form fields than a packet takes",
                             "print it to PDF again (the pages look the same; the links and comments are left "
                             "out), or ask the sender for an ordinary copy, and drop that in"),
    "macros": ("the file contains macros (small programs), which the service never opens",
               "ask the sender for a copy saved as an ordinary Word document (.docx) or as a PDF, "
               "without macros, and drop that in"),
    "conversion_failed": ("LibreOffice could not turn the file into a PDF",
                          "open it in Word (or another editor), save it as a PDF and drop that in"),
    "timeout": ("reading the file took longer than the time limit",
                "save it as a PDF (or split it into smaller files) and drop that in; if an ordinary "
                "file keeps hitting the limit, ask the administrator to check the service's limits"),
}
REASONS = tuple(_MESSAGES)

# What a clerk is told to do when a file hits one of the resource limits (the file is refused for good).
LIMIT_WHAT_TO_DO = ("ask for an ordinary copy (saved again as a PDF, or scanned at a normal resolution) and "
                    "drop that in; if an ordinary file hits this limit, ask the administrator to raise it")


def refusal(reason: str, message: str | None = None, what_to_do: str | None = None, *,
            transient: bool = False) -> RefusedFile:
    """A RefusedFile with the standard wording for `reason` unless a more precise one is given."""
    default_message, default_what = _MESSAGES[reason]
    return RefusedFile(reason, message or default_message, what_to_do or default_what, transient=transient)


def limit_refusal(what: str) -> RefusedFile:
    """A final refusal for a file that hit a resource limit; `what` names the limit and its value."""
    return refusal("too_large", what, LIMIT_WHAT_TO_DO)


def timeout_refusal(seconds: float) -> RefusedFile:
    """A file whose reading outlasted its time limit: final, never retried as if the machine were busy."""
    return refusal("timeout", f"reading the file took longer than the {seconds:g}-second time limit")


def too_many_pages(pages: int | None, max_pages: int) -> RefusedFile:
    count = f"{pages} pages" if pages is not None else f"more than {max_pages} pages"
    return refusal("too_many_pages", f"the document has {count}; the limit for one document is {max_pages} pages")


def changed_while_reading() -> RefusedFile:
    return refusal("corrupt", "the file changed while it was being read (it may still have been copying)",
                   "nothing for now: the service will try again once the file stops changing", transient=True)


# A clerk's file that is a link, or not the file the folder walk found (packet.fsutil.NotPlainFile):
# the wording of the note, by reason. Not tied to the file's content, so never cached by it.
LINK_NOTE = ("This file is a link to another file (a shortcut), not a file of its own. The service never "
             "follows links: they could bring in another patient's records.",
             "Copy the document itself into the case folder (not a shortcut or link to it).")
HARD_LINK_NOTE = ("This file is shared with another place on the disk (a hard link), so it could change "
                  "without anyone touching this case.",
                  "Put a copy of its own into the case folder (copy it, do not link it).")


def not_plain_refusal(why: str) -> RefusedFile:
    """The refusal of a file found not to be the plain file the walk found, by NotPlainFile.why."""
    if why == "link":
        return RefusedFile("link", *LINK_NOTE)
    if why == "hard_link":
        return RefusedFile("hard_link", *HARD_LINK_NOTE)
    if why == "not_regular":
        return refusal("unsupported", "the name no longer holds an ordinary file (it is a folder, a pipe or "
                                      "a device)")
    return changed_while_reading()  # replaced by another file since the walk: read that one next time


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")
