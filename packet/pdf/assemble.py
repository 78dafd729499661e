"""The IMR-organization packet, written: the one entry point of the pdf room for the pipeline.

Owns: writing imr-org-packet.pdf from a numbered page list and its rendered front matter, whole
(`packet.pdf.builder`) or, for a draft, as an update of the previous draft
(`packet.pdf.incremental`), atomically; and the record copies of a mailing.
Must not: number pages (the recipe does: packet.pipeline.numbering), decide order, categories,
privilege or Bates numbers, or draw pages.

Public interface
----------------
``write_org_packet(page_list, ctx, out_path, *, front_path, previous=None)``
    Writes imr-org-packet.pdf atomically from `page_list` and the cover, index and dividers
    already rendered into `front_path` for that page list.
``assembly_work(ctx)``
    A scratch folder for one assembly, with Python's cyclic collector paused meanwhile.
``write_record_copies(page_list, ctx, out_path, *, recipient)``
    Writes, atomically, copies of every document of `page_list` with their Bates numbers (the
    enclosure of medical records in a member or provider mailing). Every document must be one the
    recipient may have: a withheld or privileged one is refused, never copied.
``record_copies_writer(page_list, ctx, *, recipient)``
    The same copies' pages, stamped and cleaned, in a writer of their own (a context manager): the
    mailing's enclosure is assembled and written in that writer, without the file being written and
    parsed again or its objects cloned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pypdf import PdfWriter

from packet.fsutil import atomic_writer
from packet.model.context import BuildContext
from packet.model.pagelist import PageList
from packet.pdf.builder import Builder, DraftPacket, build_org_packet, collector_paused, identity_of, scratch_dir
from packet.pdf.errors import AssemblyError
from packet.pdf.incremental import write_draft_packet


@contextmanager
def assembly_work(ctx: BuildContext) -> Iterator[Path]:
    """A private scratch folder for one assembly (removed afterwards), with the cyclic collector
    paused meanwhile (`packet.pdf.builder.collector_paused`)."""
    with collector_paused(), scratch_dir(ctx) as work:
        yield work


def write_org_packet(page_list: PageList, ctx: BuildContext, out_path: Path, *, front_path: Path,
                     previous: DraftPacket | None = None) -> None:
    """Write imr-org-packet.pdf (atomically) from `page_list` and its rendered front matter.

    `previous` (drafts only): the case's current draft packet and its record; when it can be
    updated (packet.pdf.incremental) the new packet is that file plus an incremental update, and
    the record is rewritten either way."""
    with collector_paused():
        if previous is None or not ctx.draft:
            with atomic_writer(Path(out_path)) as out:
                build_org_packet(page_list, ctx, front_path, out)
        else:
            write_draft_packet(page_list, ctx, front_path, previous, Path(out_path))


def write_record_copies(page_list: PageList, ctx: BuildContext, out_path: Path, *, recipient: str) -> None:
    """Copies of the documents of `page_list`, Bates-stamped as in the packet (see the module docstring)."""
    with collector_paused(), atomic_writer(Path(out_path)) as out:
        builder = _record_copies(page_list, ctx, recipient)
        builder.write(out, identity=identity_of(ctx, page_list, f"copy-set-{recipient}"),
                      title=f"Copies {ctx.facts.case_id} submission {ctx.submission} for {recipient}")


@contextmanager
def record_copies_writer(page_list: PageList, ctx: BuildContext, *, recipient: str) -> Iterator[PdfWriter]:
    """The pages `write_record_copies` writes (the same objects, stamped and cleaned), in a writer that
    holds them and nothing else yet: a mailing's enclosure (packet.pdf.copyset.EnclosureWriter) puts
    its slip sheets among them and the letter in front, and writes that writer as the mailing, so
    the copies' objects are never cloned again. The cyclic collector stays paused and the objects
    are freed when the block ends."""
    with collector_paused():
        builder = _record_copies(page_list, ctx, recipient)
        try:
            builder.prepare_pages()
            yield builder.writer
        finally:
            builder.release()


def _record_copies(page_list: PageList, ctx: BuildContext, recipient: str) -> Builder:
    placed_documents = [placed for section in page_list.sections for placed in section.documents]
    if not placed_documents:
        raise AssemblyError("a copy set needs at least one document", reason="empty_copy_set")
    builder = Builder(ctx)
    for placed in placed_documents:
        if placed.document.is_withheld:
            raise AssemblyError(f"document {placed.document.short} is withheld: it is never copied",
                                reason="withheld_copy")
        at = builder.add_document(placed, privileged=False)
        builder.add_outline(str(placed.document.title.value), at)
    return builder


__all__ = ["AssemblyError", "DraftPacket", "assembly_work", "record_copies_writer", "write_org_packet",
           "write_record_copies"]
