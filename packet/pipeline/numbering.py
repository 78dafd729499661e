"""Numbering a submission: the one place the page list (`packet.model.pagelist.PageList`) is made.

Owns: `write_numbered_packet`, the recipe's step that numbers the documents once, settles how many
pages the cover and index take (the index shows packet page numbers, which depend on that count),
announces the page list to the mailings as soon as it is known, and has packet.pdf.assemble write
the IMR packet from it. Every writer (packet, mailings, annotated list, copy sets, manifest) reads
the page list returned here.
Must not: decide categories, order or Bates numbers (packet.model.pagelist does), or write PDF bytes
itself (packet.pdf does).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from packet.model.context import BuildContext
from packet.model.models import Document
from packet.model.pagelist import PageList, number_pages
from packet.pdf.assemble import AssemblyError, DraftPacket, assembly_work, write_org_packet
from packet.pdf.frontmatter import estimate_front_pages, render_front_matter

_FRONT_PAGES_SEEN: dict[tuple, int] = {}  # (case, submission, kind, draft) -> front pages of its last build


def number_submission(documents: list[Document], ctx: BuildContext, front_path: Path, *, first_bates: int,
                      on_page_list: Callable[[PageList], None] | None = None) -> PageList:
    """Number the pages and render the front matter into `front_path` with that numbering.

    The packet page numbers the index shows depend on how many pages the cover and index take.
    Start from a count (the previous build's in this process, else a layout of the index without
    drawing it), render with it and compare with the pages really made; render again until they
    agree. A wrong starting count costs a rendering, never the result: the kept rendering is always
    one made with the page numbers of its own page count. `on_page_list(page_list)` is called as
    soon as the pages are numbered (the mailings start from it meanwhile, in another process), and
    again with the corrected list in the rare case the count proves wrong."""
    case_id = ctx.facts.case_id

    def numbered(front_pages: int) -> PageList:
        return number_pages(documents, case_id=case_id, submission=ctx.submission, kind=ctx.kind,
                            first_bates=first_bates, front_pages=front_pages, bates=ctx.config.bates)

    memo_key = (case_id, ctx.submission, ctx.kind, ctx.draft)
    front_pages = _FRONT_PAGES_SEEN.get(memo_key)
    if front_pages is None:
        front_pages = estimate_front_pages(ctx, numbered(0))
    for _ in range(4):
        page_list = numbered(front_pages)
        if on_page_list is not None:
            on_page_list(page_list)
        rendered = render_front_matter(ctx, page_list, front_path).front_pages
        if rendered == front_pages:
            break
        front_pages = rendered
    else:
        raise AssemblyError("the index page count did not settle", reason="index_pages")
    if len(_FRONT_PAGES_SEEN) >= 1000:
        _FRONT_PAGES_SEEN.clear()
    _FRONT_PAGES_SEEN[memo_key] = front_pages
    return page_list


def write_numbered_packet(documents: list[Document], ctx: BuildContext, out_path: Path, *, first_bates: int,
                          on_page_list: Callable[[PageList], None] | None = None,
                          previous: DraftPacket | None = None) -> PageList:
    """Number the documents (`number_submission`) and write imr-org-packet.pdf from that page list
    (atomically); returns the page list every other writer must use. Excluded documents are left
    out; `needs_review` documents go in a last section "Needs review" (the release gate keeps them
    out of sealed submissions). `previous` (drafts only): the case's current draft packet and its
    record, so the new packet can be an update of it (packet.pdf.incremental)."""
    with assembly_work(ctx) as work:
        front_path = work / "front.pdf"
        page_list = number_submission(list(documents), ctx, front_path, first_bates=first_bates,
                                      on_page_list=on_page_list)
        write_org_packet(page_list, ctx, out_path, front_path=front_path, previous=previous)
    return page_list


def forget_front_page_counts() -> None:
    """Forget the front-matter page counts remembered from earlier builds in this process."""
    _FRONT_PAGES_SEEN.clear()
