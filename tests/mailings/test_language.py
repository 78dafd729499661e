"""Spanish mailings carry no English (issue 15 item 9): names, relationship words, titles from file
names, plurals, and the check that fails the build on an English template string."""

from __future__ import annotations

import shutil

import pytest

from helpers import make_config, write_case
from mailkit import REPRESENTATIVE, make_document, poppler_text, render, squash, standard_documents
from packet.config import PROJECT_ROOT
from packet.errors import TemplateError
from packet.mailings.language import english_found, english_phrases
from packet.mailings.notice import write_notice

SPOUSE = """
[representative]
name = "Jorge Esposo"
relationship = "Spouse"
address = ["1 Calle Uno", "Fresno, CA 93701"]
"""


@pytest.fixture(scope="module")
def spanish(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("es")
    documents = standard_documents(tmp / "docs")
    documents.append(make_document(tmp / "docs", 9, "Pet/Ct Report", "medical_records", 1, title_rule="file-name"))
    return render(tmp, documents=documents, language="es", extra=REPRESENTATIVE)


def test_spanish_member_mailing_has_no_english_template_phrase(spanish):
    _, _, paths = spanish
    templates = PROJECT_ROOT / "templates"
    for name in ("member-packet.pdf", "annotated-list.pdf", "representative-packet.pdf"):
        text = squash(poppler_text(paths[name]))
        assert english_found([text], templates) == [], name


def test_configured_names_and_file_name_titles_read_in_spanish(spanish):
    _, _, paths = spanish
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "Unidad de Quejas y Apelaciones" in text and "Grievance and Appeals Unit" not in text
    assert "a la organización de IMR designada por el DMHC" in text and "IMR Organization designated" not in text
    listed = squash(poppler_text(paths["annotated-list.pdf"]))  # the list (the record's own pages are its text)
    assert "Pet/Ct Report" not in listed and "Expediente médico" in listed
    assert "6 documentos, con un total de 11 páginas" in text
    # The provider's packet is English (the provider's office language) and keeps the English names.
    provider = squash(poppler_text(paths["provider-packet.pdf"]))
    assert "Grievance and Appeals Unit" in provider and "Pet/Ct Report" in provider


def test_one_document_one_page_is_singular(tmp_path):
    documents = [make_document(tmp_path / "docs", 1, "Notice of action: denial", "correspondence", 1)]
    _, _, paths = render(tmp_path / "es", documents=documents, language="es")
    assert "1 documento, con un total de 1 página," in squash(poppler_text(paths["member-packet.pdf"]))
    _, _, paths = render(tmp_path / "en", documents=documents)
    assert "1 document, 1 page in all" in squash(poppler_text(paths["member-packet.pdf"]))


def test_relationship_words_are_translated(tmp_path):
    _, _, paths = render(tmp_path, language="es", extra=SPOUSE)
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "cc: Jorge Esposo (cónyuge)" in text and "Spouse" not in text


def _templates_with(tmp_path, name: str, addition: str):
    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    path = folder / "es" / name
    path.write_text(path.read_text(encoding="utf-8") + addition, encoding="utf-8")
    return folder


def test_an_english_sentence_in_a_spanish_template_fails_the_build(tmp_path):
    folder = _templates_with(tmp_path, "member-letter.md.j2",
                             "\nDoctors at the IMR organization who were not involved in our decision will review your case.\n")
    with pytest.raises(TemplateError) as caught:
        render(tmp_path, language="es", config=make_config(tmp_path, templates=folder))
    assert caught.value.reason == "english_in_spanish"
    assert "imr organization who" in str(caught.value)  # a five-word run of the sentence


def test_an_english_label_in_the_spanish_labels_fails_the_build(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    labels = folder / "es" / "labels.toml"
    labels.write_text(labels.read_text(encoding="utf-8").replace(
        'intro_member = "La ley nos exige', 'intro_member = "The law requires us to send you copies. La ley nos exige'),
        encoding="utf-8")
    with pytest.raises(TemplateError, match="english_in_spanish|English template text"):
        render(tmp_path, language="es", config=make_config(tmp_path, templates=folder))


def test_an_untranslated_configured_unit_name_fails_the_build(tmp_path):
    """A plan address line the Spanish [names] table does not translate, that the English letters use."""
    folder = _templates_with(tmp_path, "labels.toml", "")
    labels = folder / "es" / "labels.toml"
    labels.write_text(labels.read_text(encoding="utf-8").replace(
        '"Grievance and Appeals Unit" = "Unidad de Quejas y Apelaciones"\n', ""), encoding="utf-8")
    with pytest.raises(TemplateError, match="grievance and appeals"):
        render(tmp_path, language="es", config=make_config(tmp_path, templates=folder))


def test_spanish_notice_is_checked_too(tmp_path):
    folder = _templates_with(tmp_path, "notice-instructions.md.j2", "\nKeep a copy of everything you send.\n")
    config = make_config(tmp_path, templates=folder)
    write_case(config.paths.inbox, language="es")
    with pytest.raises(TemplateError, match="English template text"):
        write_notice(config, "IMR-2026-000417")


def test_english_phrases_are_phrases_of_three_words_or_more():
    phrases = english_phrases(str(PROJECT_ROOT / "templates"))
    short, runs = phrases
    assert ("copy", "available", "on", "request") in short and ("page",) not in short
    assert ("the", "law", "requires", "us", "to") in runs
    assert all(len(p) >= 3 for p in short) and all(len(r) == 5 for r in runs)
