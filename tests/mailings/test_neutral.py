"""Issue 15 items 7 and 2: withheld and privileged documents keep a neutral description (kind of
document, author's role, date, legal reason) on the annotated list, the CSV, the slip sheets and
the copy sets, without their title or author's name; slip sheets are in the mailing's language and
the Spanish-string check reads them."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import shutil

import pytest
from pypdf import PdfReader

from helpers import make_config, make_pdf, write_case
from mailkit import make_document, poppler_text, render, squash
from packet.config import PROJECT_ROOT
from packet.errors import TemplateError
from packet.mailings.copies import write_copies
from packet.model.models import Decision

SECRET_TITLE = "custody dispute with ex-husband"
SECRET_AUTHOR = "Dr. Zelda Quimby LCSW"
SECRET_MEMO = "settlement exposure for Quimby"
PST = dt.timezone(dt.timedelta(hours=-8))
CASE_ID = "IMR-2026-000417"


def documents(folder):
    """A progress note withheld as psychotherapy notes, a peer-review record (privileged), an MRI
    report (released), a letter no rule could classify (drafts only)."""
    note = make_document(folder, 1, f"Progress note: {SECRET_TITLE}", "medical_records", 3, withheld=True,
                         author=SECRET_AUTHOR, date=dt.date(2026, 3, 4), text=f"Session {SECRET_TITLE}")
    note = dataclasses.replace(
        note, category=Decision("medical_records", "rule:progress-note", 'phrase "progress note" on page 1'),
        withheld=Decision(True, "rule:psychotherapy-notes", f'phrase "{SECRET_TITLE}" on page 1'))
    review = make_document(folder, 2, f"QI committee: {SECRET_MEMO}", "medical_records", 1, privileged=True,
                           author="Dr. Peer Reviewer", date=dt.date(2026, 5, 1), text=SECRET_MEMO)
    review = dataclasses.replace(review, privileged=Decision(True, "rule:peer-review", "Evidence Code 1157"))
    mri = make_document(folder, 3, "MRI lumbar spine report", "medical_records", 1, author="Valley Imaging")
    return [note, review, mri]


def page_texts(path) -> list[str]:
    return [squash(page.extract_text() or "") for page in PdfReader(str(path)).pages]


def assert_no_secret(text: str):
    for secret in (SECRET_TITLE, SECRET_AUTHOR, "Quimby", SECRET_MEMO, "QI committee", "Peer Reviewer"):
        assert secret not in text, secret


def test_list_and_csv_describe_withheld_documents_neutrally(tmp_path):
    _, _, paths = render(tmp_path, documents=documents(tmp_path / "docs"))
    rows = list(csv.DictReader(io.StringIO(paths["annotated-list.csv"].read_text(encoding="utf-8"))))
    note, review, mri = rows
    assert (note["title"], note["author"], note["date"]) == ("Progress note", "Treating therapist", "2026-03-04")
    assert note["withheld_reason"] == "Withheld by law (45 CFR 164.524(a)(1)(i))."
    assert (review["title"], review["author"], review["date"]) == (
        "Quality-of-care review record", "Peer review committee", "2026-05-01")
    assert "Evidence Code 1157" in review["withheld_reason"]
    assert (mri["title"], mri["author"]) == ("MRI lumbar spine report", "Valley Imaging")
    # Every entry: a description, the date, the category (and "From" when known).
    assert all(row["title"] and row["date"] and row["category"] and row["author"] for row in rows)
    for name in ("annotated-list.csv", "annotated-list.pdf", "member-packet.pdf", "provider-packet.pdf"):
        raw = paths[name].read_bytes()
        text = raw.decode("utf-8") if name.endswith(".csv") else squash(poppler_text(paths[name]))
        assert_no_secret(text)
    listed = squash(poppler_text(paths["annotated-list.pdf"]))
    assert "Progress note From: Treating therapist Date: 03/04/2026" in listed


def test_slip_sheet_names_the_kind_role_and_date(tmp_path):
    _, page_list, paths = render(tmp_path, documents=documents(tmp_path / "docs"))
    slips = [t for t in page_texts(paths["member-packet.pdf"]) if t.startswith("Withheld:")]
    assert len(slips) == 2
    note = page_list.entries[0] if page_list.entries[0].document.pages == 3 else page_list.entries[1]
    slip = next(s for s in slips if note.bates_first_label in s)
    for words in ("Document: Progress note", "From: Treating therapist", "Date: 03/04/2026",
                  "Reason: Withheld by law (45 CFR 164.524(a)(1)(i))"):
        assert words in slip
    assert_no_secret(" ".join(slips))


def test_spanish_slip_sheets_and_list(tmp_path):
    _, _, paths = render(tmp_path, documents=documents(tmp_path / "docs"), language="es")
    texts = page_texts(paths["member-packet.pdf"])
    slips = [t for t in texts if t.startswith("Retenido:")]
    assert len(slips) == 2
    joined = " ".join(slips)
    for words in ("Documento: Nota de progreso", "De: Terapeuta tratante", "Fecha: 4 mar 2026",
                  "Razón: Retenido por ley (45 CFR 164.524(a)(1)(i))", "Comité de revisión de pares"):
        assert words in joined
    assert "Withheld" not in joined and "Treating" not in joined
    assert_no_secret(" ".join(texts))


def _spanish_templates(tmp_path, key: str, english: str):
    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    labels = folder / "es" / "labels.toml"
    text = labels.read_text(encoding="utf-8")
    start = text.index(f"\n{key} = ") + 1
    end = text.index("\n", start)
    labels.write_text(text[:start] + f'{key} = "{english}"' + text[end:], encoding="utf-8")
    return folder


def test_an_english_slip_sheet_word_fails_the_spanish_build(tmp_path):
    folder = _spanish_templates(tmp_path, "slip_note",
                                "This sheet takes the place of a document you may not receive a copy of.")
    with pytest.raises(TemplateError, match="English template text"):
        render(tmp_path, documents=documents(tmp_path / "docs"), language="es",
               config=make_config(tmp_path, templates=folder))


def test_an_english_neutral_description_fails_the_spanish_build(tmp_path):
    folder = _spanish_templates(tmp_path, "psychotherapy-notes", "Withheld by law (45 CFR 164.524(a)(1)(i)).")
    with pytest.raises(TemplateError, match="English template text"):
        render(tmp_path, documents=documents(tmp_path / "docs"), language="es",
               config=make_config(tmp_path, templates=folder))


def _sealed_copy_source(config):
    """A sealed submission whose manifest says which rules decided (copy sets read only that)."""
    folder = config.paths.outbox / CASE_ID / "submission-01"
    pages = ["COVER SHEET", "INDEX", f"MRI REPORT page 1\n{CASE_ID}-000001",
             f"NOTES {SECRET_TITLE} page 1\n{CASE_ID}-000002", f"NOTES {SECRET_TITLE} page 2\n{CASE_ID}-000003"]
    make_pdf(folder / "imr-org-packet.pdf", pages)
    common = {"sha256": "0" * 64, "received_at": "2026-11-25T10:00:00-08:00", "identity": "confirmed",
              "category": "medical_records", "privileged": False, "privilege_reason": None}
    documents = [
        {**common, "source": "docs/mri.pdf", "title": "MRI report", "date": "2026-08-14",
         "category_reason": "folder", "withheld_from_member": False, "withheld_reason": None, "pages": 1,
         "bates_first": f"{CASE_ID}-000001", "bates_last": f"{CASE_ID}-000001", "packet_pages": [3]},
        {**common, "source": f"docs/{SECRET_TITLE}.pdf", "title": f"Progress note {SECRET_TITLE}",
         "author": SECRET_AUTHOR, "date": "2026-03-04", "category_reason": 'rule:progress-note: phrase "progress note"',
         "withheld_from_member": True, "withheld_reason": f'rule:psychotherapy-notes: phrase "{SECRET_TITLE}"',
         "pages": 2, "bates_first": f"{CASE_ID}-000002", "bates_last": f"{CASE_ID}-000003", "packet_pages": [4, 5]}]
    manifest = {"schema": "imr-packet/manifest@1", "case_id": CASE_ID, "submission": 1, "kind": "initial",
                "documents": documents}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("language", ["en", "es"])
def test_copy_set_cover_and_slips_are_neutral_and_in_the_members_language(tmp_path, language):
    config = make_config(tmp_path)
    write_case(config.paths.inbox, CASE_ID, language=language)
    _sealed_copy_source(config)
    pages = page_texts(write_copies(config, CASE_ID, "member",
                                    now=dt.datetime(2026, 12, 2, 14, 30, tzinfo=PST)))
    joined = " ".join(pages)
    assert_no_secret(joined)
    kind, role = ("Progress note", "Treating therapist") if language == "en" else ("Nota de progreso",
                                                                                  "Terapeuta tratante")
    assert f"{kind}" in pages[0] and role in pages[0]  # the cover's list
    slip = next(t for t in pages if t.startswith("Withheld:" if language == "en" else "Retenido:"))
    assert kind in slip and role in slip


def test_an_english_slip_word_fails_a_spanish_copy_set(tmp_path):
    folder = _spanish_templates(tmp_path, "slip_note", "The IMR organization received the document.")
    config = make_config(tmp_path, templates=folder)
    write_case(config.paths.inbox, CASE_ID, language="es")
    _sealed_copy_source(config)
    with pytest.raises(TemplateError, match="English template text"):
        write_copies(config, CASE_ID, "member", now=dt.datetime(2026, 12, 2, 14, 30, tzinfo=PST))
