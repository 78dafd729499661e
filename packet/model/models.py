"""The project's own types, shared by every stage of a build. Frozen dataclasses only.

Owns: the vocabulary (a source file, a converted document, a decision with its reason, a document
with its category and flags). Must not: import pypdf, reportlab or any other third-party library.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

MEDICAL_RECORDS = "medical_records"
CORRESPONDENCE = "correspondence"
PLAN_STATEMENTS = "plan_statements"
NEEDS_REVIEW = "needs_review"
CATEGORY_ORDER = (MEDICAL_RECORDS, CORRESPONDENCE, PLAN_STATEMENTS)

# Statutory descriptions (H&S 1374.30(n)), used on divider pages, lists and status notes.
CATEGORY_TITLES = {
    MEDICAL_RECORDS: "Medical records",
    CORRESPONDENCE: "Documents provided to or submitted by the enrollee",
    PLAN_STATEMENTS: "Plan documents and statements of reasons",
    NEEDS_REVIEW: "Needs review",
}
CATEGORY_DESCRIPTIONS = {
    MEDICAL_RECORDS: (
        "H&S 1374.30(n)(1): all medical records in the possession of the plan or its contracting "
        "providers relevant to the enrollee's medical condition, the health care services being "
        "provided by the plan and its contracting providers for the condition, and the disputed "
        "health care services requested by the enrollee."),
    CORRESPONDENCE: (
        "H&S 1374.30(n)(2): all information provided to the enrollee by the plan and any of its "
        "contracting providers concerning plan and provider decisions regarding the enrollee's "
        "condition and care, including a copy of the plan's written response to the enrollee's "
        "grievance, and any materials the enrollee or the enrollee's provider submitted in "
        "support of the request for disputed health care services."),
    PLAN_STATEMENTS: (
        "H&S 1374.30(n)(3): any other relevant documents or information used by the plan or its "
        "contracting providers in determining whether disputed health care services should have "
        "been provided, and any statements by the plan and its contracting providers explaining "
        "the reasons for the decision to deny, modify, or delay disputed health care services."),
}

IDENTITY_CONFIRMED = "confirmed"
IDENTITY_NOT_FOUND = "not_found"
IDENTITY_MISMATCH = "mismatch"

PRIVILEGED_MARK = "CONFIDENTIAL - LEGALLY PRIVILEGED / PROPRIETARY - NOT FOR RELEASE TO ENROLLEE"


@dataclass(frozen=True)
class SourceFile:
    """A clerk's file found in a case folder (not yet read)."""

    relpath: str  # POSIX path relative to the case folder: the manifest's "source"
    path: Path  # absolute path on disk
    size: int
    mtime_ns: int
    hint_category: str | None = None  # from a hint folder (medical-records/, ...)
    in_privileged_folder: bool = False  # inside privileged/
    # (st_dev, st_ino) when the folder walk found it: every later open must find the same file
    # (packet.fsutil.open_plain_file), so nothing swapped in after the walk is ever read.
    identity: tuple[int, int] | None = None

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


@dataclass(frozen=True)
class Converted:
    """A source file turned into a PDF with its text, cached by content hash."""

    sha256: str  # of the original bytes
    pdf_path: Path  # the original if it was a PDF, else the cached conversion
    pages: int
    page_texts: tuple[str, ...]  # one entry per page ("" for a page without a text layer)
    source_kind: str  # pdf | docx | doc | rtf | odt | tiff | jpeg | png | txt
    title: str | None = None  # from document metadata, when present and sensible
    # Per page, how sure OCR was of its text (0..1); None (or no entry) for born-digital text.
    # Low-confidence text never confirms identity nor decides a category alone (packet.classify).
    page_confidence: tuple[float | None, ...] = ()

    @property
    def has_text(self) -> bool:
        return any(text.strip() for text in self.page_texts)


@dataclass(frozen=True)
class Decision:
    """A value together with the rule that produced it and its evidence, for people to read."""

    value: object
    rule: str  # e.g. "folder", "override", "rule:denial-letter", "default"
    evidence: str = ""  # e.g. 'phrase "notice of action" on page 1'

    @property
    def reason(self) -> str:
        return f"{self.rule}: {self.evidence}" if self.evidence else self.rule


@dataclass(frozen=True)
class Override:
    """A person's decisions about one file (overrides.toml). Overrides beat every rule."""

    category: str | None = None
    privileged: str | None = None  # reason text
    withhold_from_member: str | None = None  # reason text
    title: str | None = None
    date: dt.date | None = None
    exclude: str | None = None  # reason text
    # Only these pages (1-based, of the file) are removed, not the whole file: `exclude = { reason =
    # "...", pages = "2, 5-6" }`. Empty: `exclude` (when given) excludes the whole file.
    exclude_pages: tuple[int, ...] = ()
    # A person confirms the pages are the member's although the text seems to name another
    # member (a false positive: e.g. a parent's date of birth on a child's record). Reason text.
    identity_confirmed: str | None = None
    identity_confirmed_pages: tuple[int, ...] = ()  # only these pages (1-based); empty: the whole file
    # A person decides that a rule's privilege or withholding flag does not apply (e.g. the member's
    # own correspondence that merely mentions psychotherapy notes). Reason text.
    release_to_member: str | None = None
    # When the plan received the file (issue 15 item 2): a time with its offset, a local time, or a
    # date (the start of that day in the plan's time zone). The supplement clock starts here.
    received: dt.datetime | dt.date | None = None


@dataclass(frozen=True)
class Document:
    """One accepted document with every decision made about it."""

    source: str  # relpath in the case folder
    sha256: str
    received_at: dt.datetime
    title: Decision  # value: str
    date: Decision  # value: dt.date | None
    category: Decision  # value: one of CATEGORY_ORDER or NEEDS_REVIEW
    privileged: Decision  # value: bool
    withheld: Decision  # value: bool (withheld from the member and provider)
    identity: Decision  # value: confirmed | not_found | mismatch
    pages: int
    pdf_path: Path
    source_kind: str = "pdf"
    excluded: str | None = None  # an override's reason when a person excluded the document
    author: str | None = None  # source/author when it can be told (letterhead, sender)
    tags: tuple[str, ...] = ()  # facts recognised by tagged rules, e.g. "grievance_response"
    other_person_pages: tuple[int, ...] = ()  # 1-based pages naming another person as the patient
    # How `received_at` is known (issue 15 item 2): recorded in overrides.toml, a dated folder, or
    # "" when no receipt was recorded and the time the service first saw the file is used.
    received_how: str = ""
    # Per page, how sure OCR was of the text it read (0..1; None for a page with its own text layer);
    # None when no page of the document was read by OCR (born-digital). From Converted.page_confidence.
    ocr: tuple[float | None, ...] | None = None
    # Pages of the file (1-based, original numbering) a person removed (overrides.toml `exclude` with
    # `pages`): they reach no output, and no rule read them. `pages` counts the pages kept.
    removed_pages: tuple[int, ...] = ()
    removed_reason: str | None = None
    removed_by: str | None = None  # who decided (the audit log's actor)

    @property
    def kept_pages(self) -> tuple[int, ...]:
        """The pages of the file (1-based, original numbering) that go into the outputs, in order."""
        removed = set(self.removed_pages)
        return tuple(n for n in range(1, self.pages + len(removed) + 1) if n not in removed)

    @property
    def short(self) -> str:
        return self.sha256[:12]

    @property
    def is_privileged(self) -> bool:
        return bool(self.privileged.value)

    @property
    def is_withheld(self) -> bool:
        """Withheld from the member and provider: privileged or withheld by law."""
        return bool(self.withheld.value) or self.is_privileged


@dataclass(frozen=True)
class Rejected:
    """A file the service could not use, and what the clerk should do about it."""

    source: str
    sha256: str | None
    reason: str  # stable code, e.g. "encrypted"
    message: str  # plain language
    what_to_do: str
    moved_to: str | None = None  # relpath inside the case folder (under _rejected/)


@dataclass(frozen=True)
class Deadline:
    review_type: str
    clock_start: dt.datetime
    due: dt.datetime
    rule: str  # e.g. "3 business days after the plan received DMHC's notice"
    calendar: str  # e.g. "holidays US-CA 0.109 + 2 extra, -1 removed (America/Los_Angeles)"

    def time_left(self, now: dt.datetime) -> dt.timedelta:
        # Elapsed time, not wall-clock difference: correct across a daylight-saving change.
        return self.due.astimezone(dt.timezone.utc) - now.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Intake:
    """What a case folder holds right now: its files, overrides, and what was ignored."""

    files: tuple[SourceFile, ...]
    overrides: dict[str, Override] = field(default_factory=dict)
    override_problems: tuple[str, ...] = ()
    # Files refused whatever their content (links, unreadable names): (SourceFile, RefusedFile) pairs.
    unusable: tuple = ()
