"""Robustness of conversion over the shared real-world corpus (../shared/corpus, read in place).

Every file either converts (at least one page, a readable PDF) or is refused with a stable reason
code and plain-language advice; nothing crashes and nothing hangs (each file has its time limit).
Expected outcomes come from the corpus's INDEX.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader

from corpuskit import corpus_sources, with_corpus_cache
from helpers import make_config
from packet.intake.convert import batch
from packet.intake.convert.batch import convert_many
from packet.intake.convert.refusals import REASONS
from packet.errors import RefusedFile
from packet.model.models import Converted

pytestmark = pytest.mark.slow  # every file of the shared corpus, converted

# pypdf page counts from INDEX.md (pdf/ and the readable files of broken/).
PAGES = {
    "pdf/irs-f1040nr.pdf": 5, "pdf/irs-i1040nr.pdf": 50, "pdf/ocrmypdf-c02-22.pdf": 1,
    "pdf/ocrmypdf-epson.pdf": 1, "pdf/ocrmypdf-hugemono.pdf": 1, "pdf/ocrmypdf-multipage.pdf": 6,
    "pdf/ocrmypdf-rotated_skew.pdf": 1, "pdf/pdfjs-operator-in-TJ-array.pdf": 1,
    "pdf/pdfjs-vertical.pdf": 3, "pdf/pdfjs-xfa_issue14315.pdf": 1, "pdf/pdfminer-jo.pdf": 1,
    "pdf/pypdf-AutoCad_Diagram.pdf": 1, "pdf/pypdf-Seige_of_Vicksburg_Sample_OCR.pdf": 6,
    "pdf/pypdf-indirect-rotation.pdf": 5, "pdf/qpdf-boxes.pdf": 8, "pdf/qpdf-digitally-signed.pdf": 1,
    "pdf/qpdf-fax-decode-parms.pdf": 10, "pdf/qpdf-form-filled-by-acrobat.pdf": 3, "pdf/qpdf-fxo-red-rotate.pdf": 16,
    "pdf/qpdf-incremental-1.pdf": 1, "pdf/qpdf-inherited-rotate.pdf": 1, "pdf/qpdf-rotated.pdf": 20,
    "pdf/sf-GeoTopo-komprimiert.pdf": 117, "pdf/sf-habibi-rotated.pdf": 4, "pdf/sf-minimal-document.pdf": 1,
    "pdf/sf-pdflatex-outline.pdf": 4, "pdf/sf-with-attachment.pdf": 1,
    "broken/qpdf-append-xref-loop.pdf": 30, "broken/pdfjs-empty_protected.pdf": 1,
    "broken/qpdf-leading-junk.pdf": 30, "images/pillow-total-pages-zero.tif": 3,
}
REFUSED = {
    # password needed to open: ask for an unlocked copy
    "broken/sf-libreoffice-writer-password.pdf": "encrypted", "broken/pdfminer-aes-256.pdf": "encrypted",
    "broken/qpdf-enc-XI-R6-V5-U_view-O_master.pdf": "encrypted", "broken/pdfjs-saslprep-r6.pdf": "encrypted",
    "broken/poi-bug53475-password-is-pass.docx": "encrypted", "broken/pdfjs-issue19484_2.pdf": "encrypted",
    # damaged beyond what pypdf (or a qpdf repair) can read
    "broken/pdfjs-bug1020226.pdf": "corrupt", "broken/qpdf-bad1.pdf": "corrupt",
    "broken/qpdf-pages-loop.pdf": "corrupt", "broken/qpdf-deep-pages.pdf": "corrupt",
    "broken/sf-unreadablemetadata.pdf": "corrupt", "broken/qpdffuzz-70306.pdf": "corrupt",
    "broken/pillow-truncated_image.png": "corrupt", "broken/pillow-truncated_jpeg.jpg": "corrupt",
    "broken/poi-truncated62886.docx": "corrupt", "broken/pdfjs-filled-background.pdf": "corrupt",
    "broken/zero-byte.pdf": "empty",
    "docx/poi-SimpleMacro.docm": "macros",
    # an XML external entity: never handed to LibreOffice
    "broken/poi-ExternalEntityInText.docx": "unsupported",
    # 32,768 links on its one page: pypdf would copy each in the build's own process (limits.check_annotations)
    "pdf/pdfjs-bug1978317.pdf": "too_many_annotations",
}
KINDS = {"pdf": "pdf", "docx": "docx", "docm": "docx", "doc": "doc", "tif": "tiff", "jpg": "jpeg", "png": "png",
         "txt": "txt"}
HAS_TEXT = ("pdf/irs-f1040nr.pdf", "pdf/sf-GeoTopo-komprimiert.pdf",
            "docx/poi-bug65649.docx", "docx/poi-simple.doc", "docx/pydocx-test.docx", "text/cn-sample-polish.txt",
            "text/bat-test_UTF-16LE-complicated.txt", "broken/qpdf-leading-junk.pdf")


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory, corpus_conversion):
    """Every corpus file's outcome. The conversion workers convert the whole corpus once in a test
    run (conftest's `corpus_conversion`, shared with the corpus builds); this module reads the
    outcomes back through a cache of its own that starts as that conversion's."""
    config = make_config(tmp_path_factory.mktemp("corpus"))
    with_corpus_cache(config, corpus_conversion)
    sources = corpus_sources()
    results = convert_many(sources, config)
    return config, sources, {s.relpath: r for s, r in zip(sources, results)}


def test_every_corpus_file_converts_or_is_refused_with_a_reason(corpus_results, corpus_conversion):
    config, sources, results = corpus_results
    assert len(results) == len(sources) > 70
    for relpath, result in results.items():
        if isinstance(result, RefusedFile):
            assert result.reason in REASONS, relpath
            assert result.message and result.what_to_do, relpath
            assert Path(relpath).name not in result.message
            assert not result.transient, f"{relpath}: {result.reason} (a timeout or crash on this machine?)"
        else:
            assert isinstance(result, Converted), relpath
            assert result.pages >= 1 and len(result.page_texts) == result.pages, relpath
            assert result.pdf_path.is_file(), relpath
    assert not any((corpus_conversion.work_dir / "convert").iterdir()), "scratch folders are removed"


def test_refusals_match_the_index(corpus_results):
    _, _, results = corpus_results
    outcome = {relpath: (r.reason if isinstance(r, RefusedFile) else "converted") for relpath, r in results.items()}
    assert {relpath: outcome[relpath] for relpath in REFUSED} == REFUSED
    links = results["pdf/pdfjs-bug1978317.pdf"]
    assert "page 1 carries 32,768 links" in links.message and "print it to PDF again" in links.what_to_do
    for relpath in REFUSED:
        if REFUSED[relpath] == "encrypted":
            assert results[relpath].what_to_do == ("ask the sender for an unlocked copy (no password) "
                                                   "and drop that in")
    unexpected = {relpath: reason for relpath, reason in outcome.items()
                  if relpath not in REFUSED and reason != "converted"}
    assert not unexpected, unexpected


def test_converted_files_have_the_right_kind_pages_and_text(corpus_results):
    _, _, results = corpus_results
    for relpath, pages in PAGES.items():
        assert results[relpath].pages == pages, relpath
    for relpath, result in results.items():
        if isinstance(result, Converted):
            assert result.source_kind == KINDS[relpath.rsplit(".", 1)[-1]], relpath
    for relpath in HAS_TEXT:
        assert results[relpath].has_text, relpath
    for relpath in ("pdf/ocrmypdf-c02-22.pdf", "images/pillow-pport_g4.tif"):
        # Scans without a text layer: their text now comes from OCR, with its confidence per page.
        converted = results[relpath]
        assert converted.page_confidence and any(c is not None for c in converted.page_confidence), relpath
    # pypdf's extract_text fails on this content stream (operators inside a TJ array); pdftotext reads it.
    assert "Grandes" in results["pdf/pdfjs-operator-in-TJ-array.pdf"].page_texts[0]
    # PDFs pypdf reads as they are are used in place; an empty-password one becomes a decrypted copy.
    assert results["pdf/irs-f1040nr.pdf"].pdf_path.name == "irs-f1040nr.pdf"
    protected = results["broken/pdfjs-empty_protected.pdf"]
    assert protected.pdf_path.name == "converted.pdf" and not PdfReader(protected.pdf_path).is_encrypted
    # The fax keeps its physical size: 1728 x 2156 pixels at 204 x 196 dpi.
    fax = PdfReader(results["images/pillow-total-pages-zero.tif"].pdf_path).pages[0]
    assert float(fax.mediabox.width) == pytest.approx(1728 / 204 * 72, abs=1)
    assert float(fax.mediabox.height) == pytest.approx(2156 / 196 * 72, abs=1)


def test_a_second_pass_is_answered_from_the_cache(corpus_results, monkeypatch):
    config, sources, results = corpus_results

    def no_worker(*args, **kwargs):
        raise AssertionError("a corpus file was converted twice")

    monkeypatch.setattr(batch, "run_jobs", no_worker)
    again = convert_many(sources, config)
    for source, result in zip(sources, again):
        first = results[source.relpath]
        if isinstance(first, RefusedFile):
            assert isinstance(result, RefusedFile) and result.reason == first.reason, source.relpath
        else:
            assert result == first, source.relpath
