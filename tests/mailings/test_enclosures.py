"""Copies of the medical records in the member's or provider's mailing (H&S 1374.30(n)(1)(B)),
and the representative's own mailing (issue 15 items 3 and 4)."""

from __future__ import annotations

import contextlib
import re

import pytest
from pypdf import PdfReader

from mailkit import (MARKER_PRIV, MARKER_WITHHELD, REPRESENTATIVE, make_document, render, squash,
                     standard_documents)
from packet.model.models import PRIVILEGED_MARK


def page_texts(path) -> list[str]:
    return [squash(page.extract_text() or "") for page in PdfReader(str(path)).pages]


def record_pages(texts: list[str]) -> list[int]:
    return [i for i, text in enumerate(texts, 1) if re.search(r"MRI lumbar spine report page \d", text)]


@pytest.fixture(scope="module")
def to_member(tmp_path_factory):
    return render(tmp_path_factory.mktemp("member"))


def test_member_packet_carries_the_releasable_medical_records_with_bates_numbers(to_member):
    _, page_list, paths = to_member
    texts = page_texts(paths["member-packet.pdf"])
    pages = record_pages(texts)
    assert len(pages) == 2 and pages[0] % 2 == 1  # both pages, starting on a front page
    mri = next(p for p in page_list.entries if p.document.title.value == "MRI lumbar spine report")
    assert mri.bates_first_label in texts[pages[0] - 1] and mri.bates_last_label in texts[pages[1] - 1]
    # The provider gets the list, not the records (records_to = "member" is the default).
    assert record_pages(page_texts(paths["provider-packet.pdf"])) == []


def test_withheld_medical_records_get_a_slip_sheet_and_nothing_leaks(to_member):
    _, page_list, paths = to_member
    texts = page_texts(paths["member-packet.pdf"])
    joined = " ".join(texts)
    assert MARKER_WITHHELD not in joined and MARKER_PRIV not in joined and PRIVILEGED_MARK not in joined
    notes = next(p for p in page_list.entries if p.document.is_withheld and p.category == "medical_records")
    slips = [t for t in texts if t.startswith("Withheld: withheld by law")]
    assert len(slips) == 1 and f"{notes.bates_first_label} - {notes.bates_last_label}" in slips[0]
    # Correspondence and plan statements are offered (copy on request), not enclosed.
    assert not any("Notice of action: denial page" in t or "Grievance resolution letter page" in t for t in texts)


def test_every_page_counts_the_enclosure_and_the_list_says_copy_enclosed(to_member):
    _, _, paths = to_member
    texts = page_texts(paths["member-packet.pdf"])
    total = len(texts)
    for index, text in enumerate(texts, 1):
        assert f"Page {index} of {total}" in text, (index, text[-80:])
    list_text = next(t for t in texts if "Every document we sent is listed below" in t)
    mri_row = list_text[list_text.index("MRI lumbar spine report"):list_text.index("Notice of action")]
    assert "Copy enclosed" in mri_row and "Copy available on request" not in mri_row
    assert "Copy available on request" in list_text[list_text.index("Notice of action"):]
    letter = " ".join(texts[:3])
    assert "copies of your medical records at the same time" in letter
    assert "Copies of your medical records." in letter  # the enclosures line


def test_records_to_provider_sends_them_to_the_provider_only(tmp_path):
    _, _, paths = render(tmp_path, top='records_to = "provider"')
    member = page_texts(paths["member-packet.pdf"])
    provider = page_texts(paths["provider-packet.pdf"])
    assert record_pages(member) == [] and len(record_pages(provider)) == 2
    assert any(t.startswith("Withheld: withheld by law") for t in provider)
    assert not any(t.startswith("Withheld:") for t in member)
    assert "we sent copies of your medical records to your provider, Dr. Alan Spineworth" in " ".join(member)
    joined = " ".join(provider)
    assert MARKER_WITHHELD not in joined and MARKER_PRIV not in joined
    assert "Your patient asked us to send you the copies of their medical records" in joined
    total = len(provider)
    assert all(f"Page {i} of {total}" in t for i, t in enumerate(provider, 1))


def test_a_privileged_medical_record_is_never_enclosed(tmp_path):
    docs = standard_documents(tmp_path / "docs")
    docs.append(make_document(tmp_path / "docs", 6, f"Peer review {MARKER_PRIV}X", "medical_records", 2,
                              privileged=True, text=f"Quality review {MARKER_PRIV}X"))
    _, _, paths = render(tmp_path, documents=docs)
    texts = page_texts(paths["member-packet.pdf"])
    assert MARKER_PRIV not in " ".join(texts)
    assert sum(t.startswith("Withheld: legally privileged") for t in texts) == 1


def test_a_supplement_encloses_its_new_records(tmp_path):
    docs = [make_document(tmp_path / "docs", 7, "PT progress note", "medical_records", 1)]
    _, _, paths = render(tmp_path, documents=docs, submission=2, kind="supplement")
    texts = page_texts(paths["member-packet.pdf"])
    assert any("PT progress note page 1" in t for t in texts)


def test_no_medical_records_no_enclosure(tmp_path):
    docs = [make_document(tmp_path / "docs", 2, "Notice of action: denial", "correspondence", 1)]
    _, _, paths = render(tmp_path, documents=docs)
    texts = page_texts(paths["member-packet.pdf"])
    assert not any("Copies of the medical records sent to the IMR organization" in t for t in texts)
    assert "copies of your medical records at the same time" not in " ".join(texts)


def test_draft_enclosure_pages_carry_the_watermark(tmp_path):
    _, _, paths = render(tmp_path, draft=True)
    for page in PdfReader(str(paths["member-packet.pdf"])).pages:
        assert "DRAFT" in (page.extract_text() or "")


def test_representative_gets_their_own_mailing_in_spanish(tmp_path):
    """The letter copies the representative ("cc"): they are mailed the letter, list and form. A
    mother of an adult member is a helper, not an authorized representative: no records."""
    _, _, paths = render(tmp_path, language="es", extra=REPRESENTATIVE)
    rep = paths["representative-packet.pdf"]
    texts = page_texts(rep)
    first = texts[0]
    assert "María José O'Connor-Núñez" in first and "77 Calle Larga" in first
    assert "cc: María José O'Connor-Núñez (madre)" in " ".join(texts)
    assert record_pages(texts) == [] and not any(t.startswith("Retenido") for t in texts)
    assert "Formulario de solicitud de copias" in " ".join(texts)
    member = page_texts(paths["member-packet.pdf"])
    assert len(record_pages(member)) == 2  # the member still gets the records
    assert any(t.startswith("Retenido: retenido por ley") for t in member)  # a Spanish slip sheet


def test_authorized_representative_also_gets_the_records(tmp_path):
    extra = REPRESENTATIVE.replace('relationship = "madre"', 'relationship = "madre"\nauthorized = true')
    _, _, paths = render(tmp_path, language="es", extra=extra)
    texts = page_texts(paths["representative-packet.pdf"])
    assert len(record_pages(texts)) == 2
    assert "representante autorizado" in " ".join(texts)
    assert MARKER_WITHHELD not in " ".join(texts)


def test_representative_without_address_gets_no_mailing(tmp_path):
    extra = '\n[representative]\nname = "Phone Only"\nrelationship = "friend"\n'
    _, _, paths = render(tmp_path, extra=extra)
    assert "representative-packet.pdf" not in paths


def _grey_pages(path, tmp_path, tag: str) -> list:
    import subprocess

    from PIL import Image

    subprocess.run(["pdftoppm", "-q", "-r", "40", "-gray", str(path), str(tmp_path / tag)], check=True)
    pages = []
    for png in sorted(tmp_path.glob(f"{tag}-*.pgm")):
        with Image.open(png) as image:
            pages.append(image.copy())
    return pages


def test_the_enclosure_is_made_in_the_copies_writer_and_shows_what_the_copies_file_shows(tmp_path, monkeypatch):
    """The mailing is written from the writer that holds the records' copies, slip sheets placed among
    them and the letter put in front, never cloned page by page. Each enclosed copy shows what the
    copies file (`write_record_copies`, the same pages written alone) shows, but for its "page x of y";
    an authorized representative's mailing gets an enclosure of its own, the same pages; nothing of
    the copied documents but their pages comes along (no outline, page labels or names), and the
    letter's form fields still work."""
    from PIL import ImageChops
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, TextStringObject

    from packet.mailings import enclosures
    from packet.pdf.assemble import write_record_copies

    made: list = []
    real = enclosures.record_copies_writer

    @contextlib.contextmanager
    def also_written_alone(page_list, ctx, *, recipient):
        out = tmp_path / f"copies-{len(made)}.pdf"
        write_record_copies(page_list, ctx, out, recipient=recipient)
        with real(page_list, ctx, recipient=recipient) as writer:
            made.append((out, id(writer)))
            yield writer

    monkeypatch.setattr(enclosures, "record_copies_writer", also_written_alone)
    documents = standard_documents(tmp_path / "docs")
    mri = documents[0].pdf_path  # a record with a document outline, a named place, page labels, a language
    with_extras = PdfWriter(clone_from=str(mri))
    with_extras.add_outline_item(title="MRI outline entry", page_number=0)
    with_extras.add_named_destination(title="mri-findings", page_number=1)
    with_extras.set_page_label(0, 1, prefix="MRI-")
    with_extras._root_object[NameObject("/Lang")] = TextStringObject("en-US")  # noqa: SLF001
    with_extras.write(str(mri))
    extra = REPRESENTATIVE.replace('relationship = "madre"', 'relationship = "madre"\nauthorized = true')
    _, _, paths = render(tmp_path, documents=documents, language="es", extra=extra)
    assert len(made) == 2, "the member's and the representative's mailings: one enclosure each"
    copies_file = made[0][0]
    copies = _grey_pages(copies_file, tmp_path, "copies")
    copies_texts = page_texts(copies_file)
    enclosed_images = {}
    for name in ("member-packet.pdf", "representative-packet.pdf"):
        reader = PdfReader(str(paths[name]))
        texts = page_texts(paths[name])
        first = record_pages(texts)[0] - 1  # the first copied page; the withheld record's slip comes after
        assert [i - 1 for i in record_pages(texts)] == [first, first + 1]
        for offset, copy_text in enumerate(copies_texts):
            assert texts[first + offset].startswith(copy_text[:40]) or copy_text[:40] in texts[first + offset]
            assert f"Página {first + offset + 1} de {len(texts)}" in texts[first + offset]
        images = _grey_pages(paths[name], tmp_path, name.split("-")[0])
        for offset, copy in enumerate(copies):
            page = images[first + offset]
            width, height = page.size
            body = (0, height // 12, width, height)  # all but the top strip, where "page x of y" goes
            assert ImageChops.difference(page.crop(body), copy.crop(body)).getextrema()[1] < 64, (name, offset)
        enclosed_images[name] = [image.tobytes() for image in images[first:]]
        root = reader.trailer["/Root"]
        assert not {"/PageLabels", "/Names", "/Lang"} & set(root.keys())
        assert len(reader.outline) == 0 and reader.named_destinations == {}
        fields = reader.get_fields() or {}
        assert fields and len(fields) == len(PdfReader(str(paths["member-packet.pdf"])).get_fields())
    assert enclosed_images["member-packet.pdf"] == enclosed_images["representative-packet.pdf"]


def test_an_enclosure_places_every_copied_page_in_order_and_is_written_once():
    """The enclosure is assembled where the copies are: a copied page taken out of order, copies left
    unplaced, or a second mailing from the same enclosure is an error, never a mailing that carries a
    page nobody placed or lacks one."""
    import io

    from pypdf import PdfWriter

    from packet.pdf.copyset import EnclosureWriter
    from packet.pdf.errors import AssemblyError

    def copies(pages: int) -> PdfWriter:
        writer = PdfWriter()
        for _ in range(pages):
            writer.add_blank_page(612, 792)
        return writer

    def head() -> bytes:
        buffer = io.BytesIO()
        copies(2).write(buffer)
        return buffer.getvalue()

    writer = EnclosureWriter(copies(3))
    with pytest.raises(AssemblyError, match="copied page 2 where page 1"):
        writer.add_copied(1)
    writer.add_copied(0)
    assert not writer.complete
    with pytest.raises(AssemblyError, match="placed 1 of the 3 copied pages"):
        writer.finish(head(), lambda number, total: f"{number}/{total}", identity=b"x", out=io.BytesIO())
    writer.add_rendered(head())  # a two-page slip sheet between the first and the second copy
    writer.add_copied(1)
    writer.add_copied(2)
    with pytest.raises(AssemblyError, match="copied page 4 where page 4 of 3"):
        writer.add_copied(3)
    assert writer.complete and writer.pages == 5
    written = io.BytesIO()
    writer.finish(head(), lambda number, total: f"{number}/{total}", identity=b"x", out=written)
    mailing = PdfReader(io.BytesIO(written.getvalue()))
    assert len(mailing.pages) == 7
    assert [squash(page.extract_text() or "") for page in mailing.pages][2:] == ["3/7", "4/7", "5/7", "6/7", "7/7"]
    with pytest.raises(AssemblyError, match="one mailing only"):
        writer.finish(head(), lambda number, total: f"{number}/{total}", identity=b"x", out=io.BytesIO())


def test_a_page_label_the_enclosed_pages_cannot_print_is_refused_naming_labels_toml(tmp_path):
    """The enclosed pages carry "page x of y" in the Bates numbers' font (WinAnsi: English and
    Spanish). A plan's labels.toml whose page_of has letters outside it fails the build as a template
    error naming the file and the key, instead of printing question marks on the member's copies."""
    import shutil

    from helpers import make_config

    from packet.config import PROJECT_ROOT
    from packet.errors import TemplateError

    templates = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates)
    labels = templates / "en" / "labels.toml"
    labels.write_text(labels.read_text(encoding="utf-8").replace('page_of = "Page {page} of {total}"',
                                                                 'page_of = "Страница {page} из {total}"'),
                      encoding="utf-8")
    config = make_config(tmp_path / "cfg", templates=templates)
    with pytest.raises(TemplateError, match=r"labels\.toml: page_of .*Latin letters only"):
        render(tmp_path, config=config)
