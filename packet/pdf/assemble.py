"""The IMR-organization packet, written: the one entry point of the pdf room for the pipeline.

Owns: `write_org_packet`, which numbers the pages (with `packet.model.pagelist`), settles the
front matter's page count, and has the packet built whole (`packet.pdf.builder`) or, for a draft,
as an update of the previous draft (`packet.pdf.incremental`); then writes it atomically.
Must not: decide order, categories, privilege or Bates numbers, or draw pages.

Public interface
----------------
``write_org_packet(documents, ctx, out_path, *, first_bates) -> PageList``
    Writes imr-org-packet.pdf atomically and returns the page list it used (the manifest and the
    mailings must use the same one). Excluded documents are left out; `needs_review` documents go
    in a last section "Needs review" (the release gate keeps them out of sealed submissions).
``write_record_copies(page_list, ctx, out_path, *, recipient)``
    Writes, atomically, copies of every document of `page_list` with their Bates numbers (the
    enclosure of medical records in a member or provider mailing). Every document must be one the
    recipient may have: a withheld or privileged one is refused, never copied.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from packet.fsutil import atomic_write_bytes
from packet.model.context import BuildContext
from packet.model.models import Document
from packet.model.pagelist import PageList, number_pages
from packet.pdf.builder import Builder, DraftPacket, build_org_packet, collector_paused, identity_of, scratch_dir
from packet.pdf.errors import AssemblyError
from packet.pdf.frontmatter import estimate_front_pages, render_front_matter
from packet.pdf.incremental import build_draft_packet

_FRONT_PAGES_SEEN: dict[tuple, int] = {}  # (case, submission, kind, draft) -> front pages of its last build


def write_org_packet(documents: list[Document], ctx: BuildContext, out_path: Path, *,
                     first_bates: int, on_page_list: Callable[[PageList], None] | None = None,
                     previous: DraftPacket | None = None) -> PageList:
    """Write imr-org-packet.pdf (atomically) and return the page list it used.

    `on_page_list(page_list)`, if given, is called as soon as the pages are numbered, before the
    front matter is rendered and the documents merged (the mailings start from it meanwhile, in
    another process); called again with the corrected list in the rare case the front matter
    takes another number of pages than counted, and the last call is the page list returned.
    `previous` (drafts only): the case's current draft packet and its record; when it can be
    updated (packet.pdf.incremental) the new packet is that file plus an incremental update, and
    the record is rewritten either way."""
    bates = ctx.config.bates
    case_id = ctx.facts.case_id

    def numbered(front_pages: int) -> PageList:
        return number_pages(documents, case_id=case_id, submission=ctx.submission, kind=ctx.kind,
                            first_bates=first_bates, front_pages=front_pages, bates=bates)

    with collector_paused(), scratch_dir(ctx) as work:
        front_path = work / "front.pdf"
        # The packet page numbers the index shows depend on how many pages the cover and index
        # take. Start from a count (the previous build's in this process, else a layout of the
        # index without drawing it), render with it and compare with the pages really made; render
        # again until they agree. A wrong starting count costs a rendering, never the result: the
        # kept rendering is always one made with the page numbers of its own page count.
        memo_key = (case_id, ctx.submission, ctx.kind, ctx.draft)
        front_pages = _FRONT_PAGES_SEEN.get(memo_key)
        if front_pages is None:
            front_pages = estimate_front_pages(ctx, numbered(0))
        for _ in range(4):
            page_list = numbered(front_pages)
            if on_page_list is not None:  # the mailings need not wait for the front matter
                on_page_list(page_list)  # (announced again only if the count proves wrong)
            rendered = render_front_matter(ctx, page_list, front_path).front_pages
            if rendered == front_pages:
                break
            front_pages = rendered
        else:
            raise AssemblyError("the index page count did not settle", reason="index_pages")
        if len(_FRONT_PAGES_SEEN) >= 1000:
            _FRONT_PAGES_SEEN.clear()
        _FRONT_PAGES_SEEN[memo_key] = front_pages
        if previous is None or not ctx.draft:
            data = build_org_packet(page_list, ctx, front_path)
        else:
            data = build_draft_packet(page_list, ctx, front_path, previous)
    atomic_write_bytes(Path(out_path), data)
    return page_list


def forget_front_page_counts() -> None:
    """Forget the front-matter page counts remembered from earlier builds in this process."""
    _FRONT_PAGES_SEEN.clear()


def write_record_copies(page_list: PageList, ctx: BuildContext, out_path: Path, *, recipient: str) -> None:
    """Copies of the documents of `page_list`, Bates-stamped as in the packet (see the module docstring)."""
    placed_documents = [placed for section in page_list.sections for placed in section.documents]
    if not placed_documents:
        raise AssemblyError("a copy set needs at least one document", reason="empty_copy_set")
    with collector_paused():
        builder = Builder(ctx)
        for placed in placed_documents:
            if placed.document.is_withheld:
                raise AssemblyError(f"document {placed.document.short} is withheld: it is never copied",
                                    reason="withheld_copy")
            at = builder.add_document(placed, privileged=False)
            builder.add_outline(str(placed.document.title.value), at)
        data = builder.finish(identity=identity_of(ctx, page_list, f"copy-set-{recipient}"),
                              title=f"Copies {ctx.facts.case_id} submission {ctx.submission} for {recipient}")
    atomic_write_bytes(Path(out_path), data)


__all__ = ["AssemblyError", "DraftPacket", "forget_front_page_counts", "write_org_packet", "write_record_copies"]
