"""manifest.json (schema "imr-packet/manifest@1"): what a submission or draft contains, and why.

Owns: the manifest's shape (spec.md, "manifest.json"). Reading and writing the file is
packet.records.layout's. Must not: decide anything; it records the decisions other stages made, with their reasons.
"""

from __future__ import annotations

import datetime as dt
from importlib import metadata

from packet.model.context import BuildContext
from packet.model.models import Deadline, Document, Rejected
from packet.model.pagelist import PageList, PlacedDocument

SCHEMA = "imr-packet/manifest@1"
# Library versions whose change could change output bytes: recorded so an auditor's rebuild
# (`verify --rebuild`) can be run with the same ones.
VERSIONED = ("imr-packet", "pypdf", "reportlab", "python-docx", "jinja2", "img2pdf", "pillow", "holidays",
             "python-bidi", "arabic-reshaper",  # Arabic and Persian taglines
             "fonttools")  # the tagline fonts' subsets (packet.mailings.fontsubset)


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def library_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def deadline_entry(deadline: Deadline | None) -> dict | None:
    if deadline is None:
        return None
    return {"review_type": deadline.review_type, "clock_start": _iso(deadline.clock_start),
            "due": _iso(deadline.due), "rule": deadline.rule, "calendar": deadline.calendar}


def document_entry(document: Document, placed: PlacedDocument | None) -> dict:
    entry = {
        "source": document.source,
        "sha256": document.sha256,
        "received_at": _iso(document.received_at),
        "title": document.title.value,
        "title_reason": document.title.reason,
        "date": _iso(document.date.value),
        "date_reason": document.date.reason,
        "author": document.author,
        "source_kind": document.source_kind,
        "category": document.category.value,
        "category_reason": document.category.reason,
        "privileged": document.is_privileged,
        "privilege_reason": document.privileged.reason if document.is_privileged else None,
        "withheld_from_member": document.is_withheld,
        "withheld_reason": document.withheld.reason if document.is_withheld else None,
        "identity": document.identity.value,
        "identity_reason": document.identity.reason,
        "other_person_pages": list(document.other_person_pages),  # 1-based pages naming another patient
        "pages": document.pages,
        # Per page, the confidence (0..1) of the text OCR read; null for born-digital pages, and
        # null for the whole document when no page was read by OCR.
        "ocr": list(document.ocr) if document.ocr is not None else None,
        "excluded": document.excluded,
    }
    if document.removed_pages:  # pages a person removed: in no output (original page numbers of the file)
        entry.update({"removed_pages": list(document.removed_pages), "removed_reason": document.removed_reason,
                      "removed_by": document.removed_by})
    if placed is not None:
        entry.update({"bates_first": placed.bates_first_label, "bates_last": placed.bates_last_label,
                      "packet_pages": placed.packet_pages})
    else:
        entry.update({"bates_first": None, "bates_last": None, "packet_pages": []})
    return entry


def rejected_entry(rejected: Rejected) -> dict:
    return {"source": rejected.source, "sha256": rejected.sha256, "reason": rejected.message,
            "reason_code": rejected.reason, "what_to_do": rejected.what_to_do, "moved_to": rejected.moved_to}


def make_manifest(ctx: BuildContext, documents: list[Document], rejected: list[Rejected],
                  page_list: PageList | None, outputs: list[dict], *, sealed_at: dt.datetime | None = None,
                  audit_head: str | None = None, extra: dict | None = None) -> dict:
    """The manifest dict. Documents appear in packet order; excluded ones follow, without Bates numbers."""
    placed = {p.document.source: p for p in page_list.entries} if page_list else {}
    ordered = [p.document for p in page_list.entries] if page_list else []
    ordered += sorted((d for d in documents if d.source not in placed), key=lambda d: d.source)
    manifest = {
        "schema": SCHEMA,
        "case_id": ctx.facts.case_id,
        "submission": ctx.submission,
        "kind": "draft" if ctx.draft else ctx.kind,
        "generated_at": _iso(ctx.generated_at),
        "deadline": deadline_entry(ctx.deadline),
        "sealed_at": _iso(sealed_at),
        "on_time": (sealed_at <= ctx.deadline.due) if sealed_at is not None else None,
        "overrides": [{"item": o.item, "reason": o.reason, "by": o.by} for o in ctx.gate_overrides],
        "bates": ({"first": page_list.first_bates, "last": page_list.next_bates - 1,
                   "next": page_list.next_bates} if page_list else None),
        "documents": [document_entry(d, placed.get(d.source)) for d in ordered],
        "rejected": [rejected_entry(r) for r in sorted(rejected, key=lambda r: r.source)],
        "outputs": outputs,
        "audit_head": audit_head,
        "versions": library_versions(),
    }
    if ctx.kind == "response" and ctx.request_id:
        manifest["request_id"] = ctx.request_id  # the [[info_requests]] id this submission answers
    if ctx.info_requests:  # each information request's clock (issue 15 item 1); absent without any
        manifest["info_requests"] = [dict(entry) for entry in ctx.info_requests]
    if extra:
        manifest.update(extra)
    return manifest
