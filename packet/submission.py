"""Every output of one submission (or draft), written into one folder, manifest last.

Owns: `build_outputs`, the single function both the draft build (packet.build) and sealing
(packet.seal) call, so a draft and a submission cannot differ except for the DRAFT mark and the
kind. packet.assemble numbers the pages and announces the page list; from that one list the
mailings (packet.mailings) are rendered in the render worker (packet.renderworker) while this
process merges imr-org-packet.pdf; manifest.json comes last, with the SHA-256 and page count of
every other file.
Must not: decide anything about documents, move clerks' files, or publish into the outbox; the
caller gives it a work folder and moves the result into place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .context import BuildContext
from .fsutil import ensure_dir, make_private_tree, sha256_file
from .models import Document, Rejected
from .pagelist import PageList

ORG_PACKET = "imr-org-packet.pdf"
MANIFEST = "manifest.json"
# Files a caller may add beside the outputs after build_outputs (the draft's review list).
NOT_OUTPUTS = {MANIFEST, "review.json"}


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
    from pypdf import PdfReader

    return len(PdfReader(str(path)).pages)


def _start_mailings(page_list: PageList, ctx: BuildContext, out_dir: Path):
    """Render the mailings into `out_dir`: in the render worker when the configuration allows a
    second process (the caller assembles the IMR packet meanwhile), else here when asked for the
    result. Either way the same function makes the same bytes."""
    from . import renderworker

    target = "packet.mailings:render_mailings"
    if ctx.config.limits.workers > 1:
        return renderworker.submit(target, page_list, ctx, out_dir)
    return renderworker.Pending(target, (page_list, ctx, out_dir), {}, None)


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
                  audit_head: str | None = None, extra: dict | None = None) -> SubmissionResult:
    """Write imr-org-packet.pdf, the mailings and manifest.json into `out_dir` (created if needed).

    `sealed_at` defaults to `ctx.generated_at` for a submission and is None for a draft;
    `audit_head` (the audit chain head at sealing) is passed again by a rebuild so the manifest
    comes out byte-identical.
    """
    from .assemble import write_org_packet
    from .manifest import make_manifest, write_manifest

    out_dir = ensure_dir(Path(out_dir))
    mailings = []  # the mailings start as soon as the pages are numbered, while the packet is merged

    def start_mailings(numbered: PageList) -> None:
        mailings.append(_start_mailings(numbered, ctx, out_dir))

    try:
        page_list = write_org_packet(list(documents), ctx, out_dir / ORG_PACKET, first_bates=first_bates,
                                     on_page_list=start_mailings)
    except BaseException:
        for pending in mailings:
            pending.cancel()
        raise
    if not mailings:  # cannot happen: write_org_packet numbers the pages before it merges them
        raise RuntimeError("the page list was never announced")
    mailings[0].result()
    make_private_tree(out_dir)
    outputs = output_entries(out_dir, {ORG_PACKET: page_list.total_pages})
    if sealed_at is None and not ctx.draft:
        sealed_at = ctx.generated_at
    manifest = make_manifest(ctx, list(documents), list(rejected), page_list,
                             [o.to_json() for o in outputs], sealed_at=sealed_at,
                             audit_head=audit_head, extra=extra)
    write_manifest(out_dir / MANIFEST, manifest)
    return SubmissionResult(out_dir=out_dir, page_list=page_list, outputs=outputs, manifest=manifest)
