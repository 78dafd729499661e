"""Every output of one submission (or draft), written into one folder, manifest last.

Owns: `build_outputs`, the single function both the draft build (packet.pipeline.build) and sealing
(packet.pipeline.seal) call, so a draft and a submission cannot differ except for the DRAFT mark and the
kind. packet.pipeline.numbering numbers the pages once and announces the page list; from that one list the
render worker (packet.workers.render) lays out the mailing with the records' copies while this
process merges imr-org-packet.pdf, and the other mailings (packet.mailings.layout) are written by
whichever of the two is free first (claimed one by one in a private folder); manifest.json comes
last, with the SHA-256 and page count of every other file.
Must not: decide anything about documents, move clerks' files, or publish into the outbox; the
caller gives it a work folder and moves the result into place.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pypdf.generic import NumberObject

from packet.fsutil import ensure_dir, make_private_tree, sha256_file
from packet.intake.convert import batch as conversion
from packet.intake.convert.limits import pypdf_bounds
from packet.mailings.layout import MAILING_FILES, render_mailings
from packet.model.context import BuildContext
from packet.model.models import Document, Rejected
from packet.model.pagelist import PageList
from packet.pdf.assemble import DraftPacket
from packet.pdfread import PdfReader
from packet.pipeline.numbering import write_numbered_packet
from packet.records.layout import MANIFEST, ORG_PACKET, REVIEW, write_manifest
from packet.records.manifest import make_manifest
from packet.workers import render as renderworker

# Files a caller may add beside the outputs after build_outputs (the draft's review list).
NOT_OUTPUTS = {MANIFEST, REVIEW}
# From this many pages, pypdf's objects of the packet (about 13 KB a page in this process, as much again in
# the render worker's mailing with the records) are the peak of the process tree, and an idle conversion
# worker adds 45-50 MB to it while the build, its documents taken in, needs none: it is let go for the
# assembly; the next conversion starts a new one (about 0.3 s of CPU, after a build of this size).
LET_GO_CONVERSION_FROM_PAGES = 2000


@dataclass(frozen=True)
class OutputFile:
    file: str
    sha256: str
    pages: int | None  # PDFs only

    def to_json(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "pages": self.pages}


@dataclass(frozen=True)
class SubmissionResult:
    out_dir: Path
    page_list: PageList
    outputs: tuple[OutputFile, ...]
    manifest: dict

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST


def pdf_pages(path: Path) -> int:
    """The page count of a PDF this build wrote: its page tree's /Count (reading every page object
    of a thousand-page member packet to count them cost about 0.1 s of CPU on every build), or the
    pages counted one by one when the tree does not state a plain count."""
    reader = PdfReader(str(path))
    try:
        count = reader.trailer["/Root"]["/Pages"]["/Count"]
    except (KeyError, TypeError, AttributeError):
        count = None
    if isinstance(count, NumberObject) and count >= 0:
        return int(count)
    return len(reader.pages)


def worker_mailings(facts) -> tuple[str, ...]:
    """The mailing the render worker lays out while this process merges the IMR packet: the one
    that carries the copies of the medical records (by far the largest; the member's, with the
    representative's that comes with it, unless case.toml sends the records to the provider).
    The others (`shared_mailings`) go to whichever process is free first."""
    return ("provider-packet.pdf",) if facts.records_to == "provider" else ("member-packet.pdf",)


def shared_mailings(facts) -> tuple[str, ...]:
    """The mailings after `worker_mailings`, in the order the render worker takes them (this process
    takes them from the back once its packet is written; see render_mailings' `then`)."""
    return tuple(name for name in MAILING_FILES if name not in worker_mailings(facts))


@dataclass
class _MailingsJob:
    """The render worker's job and the folder where it and this process claim the shared mailings."""

    pending: renderworker.Pending
    claims: Path


def _start_mailings(page_list: PageList, ctx: BuildContext, out_dir: Path) -> _MailingsJob | None:
    """Hand `worker_mailings`, then the shared ones it can claim, to the render worker when the
    configuration allows a second process and a worker is waiting or the case is large enough to be
    worth starting one; else nothing (this process renders every mailing afterwards). Either way the
    same function makes the same bytes."""
    if renderworker.in_use(ctx.config) and (renderworker.waiting() or
                                            renderworker.worth_starting(ctx.config, pages=page_list.total_pages)):
        claims = Path(tempfile.mkdtemp(prefix="claims-", dir=ensure_dir(ctx.config.work_dir)))
        pending = renderworker.submit("packet.mailings.layout:render_mailings", page_list, ctx, out_dir,
                                      worker_mailings(ctx.facts), shared=claims, then=shared_mailings(ctx.facts))
        return _MailingsJob(pending, claims)
    return None


def output_entries(out_dir: Path, known_pages: dict[str, int] | None = None) -> tuple[OutputFile, ...]:
    """SHA-256 and page count of every file in `out_dir` except the manifest, sorted by name.

    `known_pages` gives counts the caller already has (the packet's page list), so a
    thousand-page packet is not parsed again just to count it.
    """
    known_pages = known_pages or {}
    entries = []
    for path in sorted(Path(out_dir).iterdir(), key=lambda p: p.name):
        if not path.is_file() or path.name in NOT_OUTPUTS or path.name.startswith("."):
            continue
        pages = known_pages.get(path.name)
        if pages is None and path.suffix.lower() == ".pdf":
            pages = pdf_pages(path)
        entries.append(OutputFile(file=path.name, sha256=sha256_file(path), pages=pages))
    return tuple(entries)


def build_outputs(documents: list[Document], rejected: list[Rejected], ctx: BuildContext, out_dir: Path,
                  *, first_bates: int, sealed_at: dt.datetime | None = None,
                  audit_head: str | None = None, extra: dict | None = None,
                  previous: DraftPacket | None = None) -> SubmissionResult:
    """Write imr-org-packet.pdf, the mailings and manifest.json into `out_dir` (created if needed).

    `sealed_at` defaults to `ctx.generated_at` for a submission and is None for a draft;
    `audit_head` (the audit chain head at sealing) is passed again by a rebuild so the manifest
    comes out byte-identical. `previous` (drafts): the current draft packet and its record, so the
    new one can be an update of it (packet.pdf.incremental).
    """
    out_dir = ensure_dir(Path(out_dir))
    if sum(document.pages for document in documents) >= LET_GO_CONVERSION_FROM_PAGES:
        conversion.let_go_idle()
    worker: list[_MailingsJob | None] = []  # the render worker's job, started as soon as the pages are numbered

    def start_mailings(numbered: PageList) -> None:
        for stale in worker:  # the page count changed: that job's numbers are wrong
            if stale is not None:
                stale.pending.cancel()  # its worker is ended; a file it was writing may be left half-named
                shutil.rmtree(stale.claims, ignore_errors=True)
                for leftover in out_dir.glob(".tmp-*"):
                    leftover.unlink(missing_ok=True)
        worker[:] = [_start_mailings(numbered, ctx, out_dir)]

    try:
        # The clerks' PDFs are read again here: pypdf decodes what the conversion took, up to the same bound.
        with pypdf_bounds(ctx.config.limits.max_inflated_bytes):
            page_list = write_numbered_packet(list(documents), ctx, out_dir / ORG_PACKET, first_bates=first_bates,
                                              on_page_list=start_mailings, previous=previous)
        job = worker[0] if worker else None
        if job is None:
            render_mailings(page_list, ctx, out_dir)
        else:
            shared = shared_mailings(ctx.facts)
            mine = {path.name for path in render_mailings(page_list, ctx, out_dir, (), shared=job.claims,
                                                          then=tuple(reversed(shared)))}
            left = [name for name in MAILING_FILES if name not in mine]  # if the worker cannot answer
            job.pending.result(instead=lambda: render_mailings(page_list, ctx, out_dir, left))
    except BaseException:
        for job in worker:
            if job is not None:
                job.pending.cancel()  # a finished job: nothing to cancel; else its worker is ended
        raise
    finally:
        for job in worker:
            if job is not None:
                shutil.rmtree(job.claims, ignore_errors=True)
    make_private_tree(out_dir)
    outputs = output_entries(out_dir, {ORG_PACKET: page_list.total_pages})
    if sealed_at is None and not ctx.draft:
        sealed_at = ctx.generated_at
    manifest = make_manifest(ctx, list(documents), list(rejected), page_list,
                             [o.to_json() for o in outputs], sealed_at=sealed_at,
                             audit_head=audit_head, extra=extra)
    write_manifest(out_dir / MANIFEST, manifest)
    return SubmissionResult(out_dir=out_dir, page_list=page_list, outputs=outputs, manifest=manifest)
