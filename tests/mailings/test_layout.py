"""Member and provider mailings (packet.mailings): templates, markup, layout, taglines, DOCX, and what must never leak."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from docx import Document as DocxDocument
from pypdf import PdfReader
from reportlab.lib.styles import ParagraphStyle

from helpers import MEMBER_NAME, make_config, write_case
from mailkit import (GENERATED, HS_1368_02B, MARKER_PRIV, MARKER_WITHHELD, REPRESENTATIVE, build_context,
                     make_document, pdf_text, poppler_text, render, squash, standard_documents)
from packet.config import PROJECT_ROOT
from packet.errors import TemplateError
from packet.mailings.annotated import list_rows
from packet.mailings.layout import render_mailings, submission_variables
from packet.mailings.markup import escape_markup, parse_markup
from packet.mailings.notice import notice_variables
from packet.mailings.templates import Templates
from packet.model.case import load_case
from packet.model.context import BuildContext
from packet.model.models import Deadline
from packet.model.pagelist import number_pages


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return render(tmp_path_factory.mktemp("en"))


def test_render_mailings_writes_the_five_outputs(english):
    _, _, paths = english
    assert sorted(paths) == ["annotated-list.csv", "annotated-list.pdf", "member-packet.pdf",
                             "notice-letter.docx", "provider-packet.pdf"]
    for path in paths.values():
        assert path.stat().st_size > 0
        assert path.stat().st_mode & 0o777 == 0o640


# --- templates -------------------------------------------------------------------------------

def template_names() -> list[str]:
    return sorted(p.name for p in (PROJECT_ROOT / "templates" / "en").glob("*.md.j2"))


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("name", template_names())
def test_every_template_renders_in_both_languages(tmp_path, language, name):
    ctx = build_context(tmp_path, language=language, extra=REPRESENTATIVE, dispute_type="experimental",
                        review_type="expedited")
    templates = Templates(ctx.config)
    page_list = number_pages(standard_documents(tmp_path / "docs"), case_id=ctx.facts.case_id, submission=1,
                             kind="initial", first_bates=1, front_pages=2, bates=ctx.config.bates)
    rows = list_rows(page_list, templates.labels(language))
    variables = submission_variables(page_list, ctx, rows, language)
    variables.update({"notice": notice_variables(ctx.config, ctx.facts, GENERATED.date(), language)["notice"]})
    blocks = templates.blocks(language, name, variables)
    assert blocks, f"{language}/{name} rendered nothing"
    assert "{{" not in "".join(b.text for b in blocks)


def test_spanish_and_english_have_the_same_templates():
    en = {p.name for p in (PROJECT_ROOT / "templates" / "en").iterdir()}
    es = {p.name for p in (PROJECT_ROOT / "templates" / "es").iterdir()}
    assert en == es


def test_missing_variable_fails_naming_template_and_variable(tmp_path):
    templates_dir = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates_dir)
    letter = templates_dir / "en" / "member-letter.md.j2"
    letter.write_text(letter.read_text() + "\nYour favourite colour: {{ member.favourite_colour }}\n")
    config = make_config(tmp_path, templates=templates_dir)
    with pytest.raises(TemplateError) as info:
        render(tmp_path, config=config)
    message = str(info.value)
    assert "member-letter.md.j2" in message
    assert "favourite_colour" in message


def test_missing_variable_in_an_included_template_names_the_included_one(tmp_path):
    templates_dir = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates_dir)
    statement = templates_dir / "es" / "hs-1368-02b.md.j2"
    statement.write_text(statement.read_text() + "{{ dmhc.pager }}\n")
    config = make_config(tmp_path, templates=templates_dir)
    with pytest.raises(TemplateError) as info:
        render(tmp_path, config=config, language="es")
    assert "es/hs-1368-02b.md.j2" in str(info.value)
    assert "pager" in str(info.value)


def test_missing_template_fails_loudly(tmp_path):
    templates_dir = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates_dir)
    (templates_dir / "es" / "copy-request.md.j2").unlink()
    config = make_config(tmp_path, templates=templates_dir)
    with pytest.raises(TemplateError, match="es/copy-request.md.j2"):
        render(tmp_path, config=config, language="es")


def test_markup_escaping_keeps_member_data_literal():
    hostile = "A**B | ::field x | y \\ # - *C*"
    blocks = parse_markup("Name: " + escape_markup(hostile) + "\n\n# " + escape_markup("#1 & <b>"))
    assert [b.kind for b in blocks] == ["p", "h1"]
    assert blocks[0].text == "Name: " + hostile
    assert not any(run.bold for run in blocks[0].runs)
    assert blocks[1].text == "#1 & <b>"


# --- the member packet -----------------------------------------------------------------------

def test_member_packet_has_the_statement_dmhc_contacts_taglines_and_nondiscrimination(english):
    ctx, _, paths = english
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert HS_1368_02B.format(phone=ctx.config.plan.phone) in text
    for number in ("1-888-466-2219", "1-877-688-9891", "www.dmhc.ca.gov", "www.HealthHelp.ca.gov",
                   "(916) 255-5241", "980 9th Street, Suite 500"):
        assert number in text
    assert "ATENCIÓN: Si habla español" in text
    assert "CHÚ Ý: Nếu bạn nói Tiếng Việt" in text
    assert "Nondiscrimination notice" in text
    assert "Copy Request Form" in text
    assert "IMR Organization designated by DMHC" in text  # who it was sent to
    assert "November 30, 2026" in text  # when


def test_statement_numbers_are_12_point_bold_in_regular_text(english):
    _, _, paths = english
    reader = PdfReader(str(paths["member-packet.pdf"]))
    seen: dict[str, set] = {}

    for page in reader.pages:
        def visit(text, cm, tm, font, size):
            if font is None or not text.strip():
                return
            scale = (tm[0] ** 2 + tm[1] ** 2) ** 0.5 * (cm[0] ** 2 + cm[1] ** 2) ** 0.5
            seen.setdefault(text.strip(), set()).add((str(font.get("/BaseFont")), round(size * scale, 1)))
        page.extract_text(visitor_text=visit)
    for value in ("1-888-466-2219", "1-877-688-9891", "www.dmhc.ca.gov", "1-800-555-0142"):
        styles = {style for key, style_set in seen.items() if value in key for style in style_set}
        assert any("Bold" in font and size == 12.0 for font, size in styles), (value, styles)
    body = {style for key, style_set in seen.items() if key.startswith("The California Department")
            for style in style_set}
    assert body and all("Bold" not in font for font, _ in body)


def test_docx_statement_numbers_are_12_point_bold(english):
    _, _, paths = english
    document = DocxDocument(str(paths["notice-letter.docx"]))
    runs = [run for paragraph in document.paragraphs for run in paragraph.runs]
    for value in ("1-888-466-2219", "1-877-688-9891", "www.dmhc.ca.gov"):
        matching = [run for run in runs if run.text == value]
        assert matching, value
        assert all(run.bold and run.font.size.pt == 12 for run in matching)
    text = squash(" ".join(p.text for p in document.paragraphs))
    assert HS_1368_02B.format(phone="1-800-555-0142") in text


def test_every_page_is_letter_and_says_page_x_of_y(english):
    _, _, paths = english
    for name in ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf"):
        reader = PdfReader(str(paths[name]))
        total = len(reader.pages)
        for index, page in enumerate(reader.pages, 1):
            assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (612, 792)
            assert f"Page {index} of {total}" in (page.extract_text() or ""), (name, index)


def test_each_part_starts_on_an_odd_page(english):
    _, _, paths = english
    reader = PdfReader(str(paths["member-packet.pdf"]))
    texts = [squash(page.extract_text() or "") for page in reader.pages]
    starts = {}
    for part, phrase in (("list", "Every document we sent is listed below"),
                         ("form", "Use this form to ask for free copies"),
                         ("records", "The law requires us to send you copies of the medical records"),
                         ("enclosure", "MRI lumbar spine report page 1")):
        starts[part] = next(i for i, t in enumerate(texts, 1) if phrase in t)
    assert all(page % 2 == 1 for page in starts.values()), starts
    blank = [i for i, t in enumerate(texts, 1) if "intentionally left blank" in t]
    assert blank, "this packet needs at least one blank back page"
    for index in blank:
        assert index % 2 == 0 and index + 1 in starts.values()
        assert texts[index - 1].replace("This page is intentionally left blank.", "").strip().startswith(
            "IMR-2026-000417 Page") or "Page" in texts[index - 1]


def test_member_address_sits_in_the_window(english):
    _, _, paths = english
    page = PdfReader(str(paths["member-packet.pdf"])).pages[0]
    positions = []

    def visit(text, cm, tm, font, size):
        if MEMBER_NAME in text or "1200 Poppy Lane" in text:
            x, y = tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]
            positions.append((x, y))
    page.extract_text(visitor_text=visit)
    window_left, window_top, window_bottom = 0.875 * 72, 792 - 2.0 * 72, 792 - 3.125 * 72
    in_header = [(x, y) for x, y in positions if y > 792 - 3.45 * 72]  # above the letter's body
    assert len(in_header) == 2  # the name and the street, once each
    for x, y in in_header:
        assert window_left <= x <= window_left + 4.5 * 72
        assert window_bottom <= y <= window_top


def test_no_withheld_or_privileged_text_in_any_output(english):
    _, _, paths = english
    for name, path in paths.items():
        if name.endswith(".pdf"):
            text = poppler_text(path) + pdf_text(path)
        elif name.endswith(".docx"):
            document = DocxDocument(str(path))
            text = "\n".join(p.text for p in document.paragraphs)
        else:
            text = path.read_text(encoding="utf-8")
        raw = path.read_bytes()
        for marker in (MARKER_PRIV, MARKER_WITHHELD):
            assert marker not in text, (name, marker)
            assert marker.encode() not in raw, (name, marker)


def test_annotated_list_has_one_row_per_document_matching_the_page_list(english):
    _, page_list, paths = english
    rows = list(csv.DictReader(io.StringIO(paths["annotated-list.csv"].read_text(encoding="utf-8"))))
    entries = page_list.entries
    assert len(rows) == len(entries) == 5
    for row, placed in zip(rows, entries):
        assert row["bates_first"] == placed.bates_first_label
        assert row["bates_last"] == placed.bates_last_label
        assert int(row["pages"]) == placed.document.pages
        assert row["category"] == placed.category
        assert row["privileged"] == str(placed.document.is_privileged).lower()
        assert row["copy_available"] == str(not placed.document.is_withheld).lower()
    privileged = next(r for r in rows if r["privileged"] == "true")
    # Issue 15 item 7: a neutral description (kind, author's role, legal reason), never the title.
    assert (privileged["title"], privileged["author"]) == ("Legal communication", "The plan's counsel")
    assert privileged["withheld_reason"].startswith("Legally privileged (attorney-client)")
    assert privileged["withheld_from_member"] == "true"  # like the manifest (Document.is_withheld)
    withheld = next(r for r in rows if r["withheld_from_member"] == "true" and r["privileged"] == "false")
    assert (withheld["title"], withheld["author"]) == ("Psychotherapy notes", "Treating therapist")
    assert withheld["withheld_reason"] == "Withheld by law (45 CFR 164.524(a)(1)(i))."
    assert withheld["date"] == "2026-08-14"
    released = next(r for r in rows if r["title"] == "MRI lumbar spine report")
    assert released["author"] == "Sacramento Imaging & <Radiology>"
    list_text = squash(poppler_text(paths["annotated-list.pdf"]))
    for placed in entries:
        assert placed.bates_first_label in list_text
    assert list_text.count("Copy available on request") + list_text.count("Copy enclosed") >= 3
    assert "Withheld: Legally privileged" in squash(pdf_text(paths["annotated-list.pdf"]))  # cell by cell


def test_withheld_title_set_by_a_person_is_listed(tmp_path):
    documents = [make_document(tmp_path / "docs", 1, "Behavioral health summary", "medical_records", 1,
                               withheld=True, title_rule="override"),
                 make_document(tmp_path / "docs", 2, "Denial letter", "correspondence", 1)]
    _, _, paths = render(tmp_path, documents=documents)
    rows = list(csv.DictReader(io.StringIO(paths["annotated-list.csv"].read_text(encoding="utf-8"))))
    assert rows[0]["title"] == "Behavioral health summary"
    assert rows[0]["copy_available"] == "false"


def test_provider_packet_has_cover_letter_and_the_same_list(english):
    _, page_list, paths = english
    text = squash(poppler_text(paths["provider-packet.pdf"]))
    assert "Dear Dr. Alan Spineworth" in text
    assert "Capitol Orthopedics" in text
    for placed in page_list.entries:
        assert placed.bates_first_label in text


def test_spanish_member_with_representative(tmp_path):
    _, _, paths = render(tmp_path, language="es", extra=REPRESENTATIVE)
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "Enviamos sus expedientes para su Revisión Médica Independiente" in text
    assert "Página 1 de" in text
    assert "Formulario de solicitud de copias" in text
    assert "Copia disponible si la solicita" in text
    assert "(1-888-466-2219)" in text and "(1-877-688-9891)" in text
    assert "cc: María José O'Connor-Núñez (madre)" in text
    assert "Aviso de no discriminación" in text
    document = DocxDocument(str(paths["notice-letter.docx"]))
    docx_text = "\n".join(p.text for p in document.paragraphs)
    assert "María José O'Connor-Núñez" in docx_text
    assert "Departamento de Atención Médica Administrada" in docx_text
    # The provider's packet stays in English.
    assert "Dear Dr. Alan Spineworth" in squash(poppler_text(paths["provider-packet.pdf"]))


def test_member_data_with_markup_characters_and_long_address(tmp_path):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    toml = (case_dir / "case.toml").read_text()
    toml = toml.replace(f'name = "{MEMBER_NAME}"', 'name = "Zoë D\'Angelo & <Partner> **Bold** | Jr."')
    toml = toml.replace('address = ["1200 Poppy Lane, Apt 3", "Sacramento, CA 95814"]',
                        'address = ["Apartment 1234, Building C, The Very Long Name Of A Residential Complex '
                        'Near The River", "1200 Poppy Lane", "Sacramento, CA 95814"]')
    (case_dir / "case.toml").write_text(toml)
    facts = load_case(case_dir)
    ctx = BuildContext(config=config, facts=facts,
                       deadline=Deadline("standard", facts.dmhc_notice_received, GENERATED, "rule", "cal"),
                       submission=1, kind="initial", generated_at=GENERATED)
    page_list = number_pages(standard_documents(tmp_path / "docs"), case_id=facts.case_id, submission=1,
                             kind="initial", first_bates=1, front_pages=2, bates=config.bates)
    paths = {p.name: p for p in render_mailings(page_list, ctx, tmp_path / "out")}
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "Dear Zoë D'Angelo & <Partner> **Bold** | Jr.:" in text
    assert "The Very Long Name Of A Residential" in text
    docx_text = "\n".join(p.text for p in DocxDocument(str(paths["notice-letter.docx"])).paragraphs)
    assert "Zoë D'Angelo & <Partner> **Bold** | Jr." in docx_text


def test_draft_watermark_on_every_page(tmp_path):
    _, _, paths = render(tmp_path, draft=True)
    for name in ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf"):
        for page in PdfReader(str(paths[name])).pages:
            assert "DRAFT" in (page.extract_text() or "")
    assert DocxDocument(str(paths["notice-letter.docx"])).sections[0].header.paragraphs[0].text == "DRAFT"
    _, _, sealed = render(tmp_path, out="sealed")
    assert "DRAFT" not in poppler_text(sealed["member-packet.pdf"])
    assert DocxDocument(str(sealed["notice-letter.docx"])).sections[0].header.paragraphs[0].text == ""


def test_supplement_says_so(tmp_path):
    _, _, paths = render(tmp_path, submission=2, kind="supplement")
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "supplemental submission number 2" in text


def test_rebuild_is_byte_identical(tmp_path):
    _, _, first = render(tmp_path / "a")
    _, _, second = render(tmp_path / "b")
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_copy_request_form_has_fillable_fields(english):
    _, _, paths = english
    fields = PdfReader(str(paths["member-packet.pdf"])).get_fields()
    assert fields["copy_request.member_name"]["/V"] == MEMBER_NAME
    assert fields["copy_request.provider_name"]["/V"] == "Dr. Alan Spineworth"
    assert fields["copy_request.personal_copy"]["/V"] == "/Off"


def test_case_without_provider_and_without_documents(tmp_path):
    config = make_config(tmp_path)
    case_dir = write_case(config.paths.inbox)
    toml = (case_dir / "case.toml").read_text()
    (case_dir / "case.toml").write_text(toml[:toml.index("[provider]")])
    facts = load_case(case_dir)
    assert facts.provider is None
    ctx = BuildContext(config=config, facts=facts,
                       deadline=Deadline("standard", facts.dmhc_notice_received, GENERATED, "rule", "cal"),
                       submission=1, kind="draft", generated_at=GENERATED, draft=True)
    page_list = number_pages([], case_id=facts.case_id, submission=1, kind="draft", first_bates=1,
                             front_pages=2, bates=config.bates)
    paths = {p.name: p for p in render_mailings(page_list, ctx, tmp_path / "out")}
    assert "The member's treating provider" in squash(poppler_text(paths["provider-packet.pdf"]))
    assert "No documents were sent." in squash(poppler_text(paths["annotated-list.pdf"]))
    assert paths["annotated-list.csv"].read_text(encoding="utf-8").count("\n") == 1  # the header only


# --- taglines in their own script ------------------------------------------------------------

def _native_script_fonts():
    from packet.mailings.taglines import SCRIPT_FONTS
    missing = sorted({spec.package for spec in SCRIPT_FONTS.values() if not Path(spec.path).is_file()})
    if missing:
        pytest.skip(f"font packages not installed (make setup installs them): {' '.join(missing)}")
    return SCRIPT_FONTS


# Words of each tagline that pdftotext gives back exactly. Shaped scripts (conjuncts, reordered
# vowel signs, stacked marks) draw glyphs with no single Unicode value, so their full text does
# not extract; these words come from the tagline's middle and are drawn only by the script's font.
NATIVE_WORDS = {
    "zh": ["注意：如果您使用繁體中文，您可以免費獲得語言援助服務。請致電 1-800-555-0142"],
    "ja": ["注意事項：日本語を話される場合、無料の言語支援をご利用いただけます。"],
    "ko": ["주의: 한국어를 사용하시는 경우, 언어 지원 서비스를 무료로 이용하실 수 있습니다."],
    "hi": ["भाषा सहायता", "बोलते"],
    "pa": ["ਪੰਜਾਬੀ ਬੋਲਦੇ", "ਸਹਾਇਤਾ"],
    "th": ["โทร 1-800-555-0142"],
    "km": ["ចូរ"],
}


def test_taglines_print_cjk_indic_thai_and_khmer_in_their_own_script(english):
    _native_script_fonts()
    ctx, _, paths = english
    text = squash(poppler_text(paths["member-packet.pdf"]))
    for code, words in NATIVE_WORDS.items():
        for word in words:
            assert word in text, (code, word)
        fallback = squash(Templates(ctx.config).taglines()[code]["fallback"].split(":")[0] + ": Free language")
        assert fallback not in text, code
    # Issue 15 item 6: Arabic and Persian print in their own script, shaped and right to left.
    assert "Arabic: Free language assistance is available." not in text
    assert "Persian (Farsi): Free language assistance is available." not in text
    assert "Thai: Free language assistance" not in text


def test_tagline_fonts_are_embedded_subsets(english):
    _native_script_fonts()
    _, _, paths = english
    fonts_out = subprocess.run(["pdffonts", str(paths["member-packet.pdf"])], check=True, capture_output=True,
                               text=True).stdout
    for family in ("WenQuanYiZenHei", "IPAGothic", "NanumGothic", "NotoSansDevanagari", "NotoSansGurmukhi",
                   "Loma", "KhmerOS"):
        lines = [line for line in fonts_out.splitlines() if family in line]
        assert lines, family
        for line in lines:
            name, rest = line.split(None, 1)
            assert re.match(r"[A-Z]{6}\+", name), line  # subset tag
            assert re.search(r"\byes\s+yes\b", rest), line  # embedded, subset


def test_native_taglines_do_not_depend_on_what_the_process_built_before(tmp_path):
    """A warm service process and a fresh `verify --rebuild` process write the same bytes."""
    import sys
    _native_script_fonts()
    # First a build whose Hindi and Khmer taglines meet the shaped glyphs in another order.
    templates = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates)
    toml = (templates / "taglines.toml").read_text(encoding="utf-8")
    for code in ("hi", "km", "th"):
        text = Templates(make_config(tmp_path / "t")).taglines()[code]["text"]
        toml = toml.replace(text, " ".join(reversed(text.split(" "))))
    (templates / "taglines.toml").write_text(toml, encoding="utf-8")
    render(tmp_path / "r", config=make_config(tmp_path / "r", templates=templates))
    _, _, warm = render(tmp_path / "a")
    tests_dir = Path(__file__).resolve().parents[1]
    script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
              "import mailkit; mailkit.render(Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", script, str(tests_dir), str(tmp_path / "b")], check=True,
                   cwd=str(PROJECT_ROOT), capture_output=True)
    cold = tmp_path / "b" / "out" / "member-packet.pdf"
    assert warm["member-packet.pdf"].read_bytes() == cold.read_bytes()


def test_a_shaped_scripts_font_is_fresh_on_every_call_and_the_first_looks_through_no_afm_file():
    """The first shaped font of a process is made without reportlab's search of its AFM files (the
    name is not registered yet); every call gives a new registered object, so no document's glyph
    codes depend on another's."""
    import sys
    fonts = _native_script_fonts()
    shaped = sorted(script for script, spec in fonts.items() if spec.shaped)
    script = (
        "import json, sys\n"
        "from reportlab.pdfbase import pdfmetrics\n"
        "from packet.mailings.taglines import SCRIPT_FONTS, script_font\n"
        "searched = []\n"
        "real = pdfmetrics.bruteForceSearchForAFM\n"
        "pdfmetrics.bruteForceSearchForAFM = lambda name: searched.append(name) or real(name)\n"
        "out = {}\n"
        "for script in sys.argv[1:]:\n"
        "    first, second = script_font(script), script_font(script)\n"
        "    name = second.fontName\n"
        "    out[script] = [first is not None, first is not second, pdfmetrics.getFont(name) is second,\n"
        "                   name.startswith(SCRIPT_FONTS[script].name + '-')]\n"
        "print(json.dumps({'searched': searched, 'fonts': out}))\n")
    done = subprocess.run([sys.executable, "-c", script, *shaped], cwd=str(PROJECT_ROOT), check=True,
                          capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout)
    assert report["searched"] == []
    assert report["fonts"] == {script: [True, True, True, True] for script in shaped}


def test_tagline_word_needing_two_fonts_falls_back_to_english(tmp_path):
    from packet.mailings.pages import styles
    from packet.mailings.taglines import ScriptFont, SCRIPT_FONTS, script_tagline
    _native_script_fonts()
    base = styles().small
    assert script_tagline("ਪੰਜਾਬੀ (TTY: 711)", "gurmukhi", base) is not None
    # A Gurmukhi word glued to Latin letters: reportlab would shape "TTY" with the Gurmukhi font.
    assert script_tagline("ਪੰਜਾਬੀTTY 711", "gurmukhi", base) is None
    assert script_tagline("ملحوظة: 711", "arabic", base) is None
    missing = ScriptFont("TaglineNone", "/nonexistent/font.ttf", "none")
    SCRIPT_FONTS["test-missing"] = missing
    try:
        assert script_tagline("x", "test-missing", base) is None
    finally:
        del SCRIPT_FONTS["test-missing"]


def test_docx_renders_form_blocks_as_labelled_lines():
    """Fields (also half-width ones), checkboxes and signatures become plain labelled lines in Word."""
    import datetime as _dt
    import io as _io

    from docx import Document as _Docx

    from packet.mailings.docx import build_docx
    from packet.mailings.markup import Block, Run

    blocks = (Block("h1", (Run("Form"),)), Block("field", (), ("city:half", "City", "Davis")),
              Block("field", (), ("zip:half", "ZIP", "")), Block("p", (Run("Sign below."),)),
              Block("signature", (), ("member_signature", "Signature of member")))
    data = build_docx(blocks, letterhead=None, taglines=[], created=_dt.datetime(2026, 11, 27, tzinfo=_dt.timezone.utc),
                      title="t", language="en")
    texts = [p.text for p in _Docx(_io.BytesIO(data)).paragraphs]
    assert "City: Davis" in texts and "ZIP: ____________________" in texts
    assert "Signature of member: ____________________" in texts


# --- page numbering (one layout pass; the labels are drawn when the page count is known) ------

def footer_runs(page) -> list[tuple[str, float, float, float]]:
    """Text drawn below the body (the footer band), as (text, x, y, size)."""
    runs = []

    def visit(text, cm, tm, font, size):
        x, y = tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]
        if text.strip() and y < 0.9 * 72:
            runs.append((text.strip(), x, y, size))
    page.extract_text(visitor_text=visit)
    return runs


@pytest.fixture(scope="module")
def long_packet(tmp_path_factory):
    """A member packet of ten pages or more (the total has more digits than the first page numbers)
    whose list part ends on an odd page, so a blank back page comes before the copy-request form.

    How many pages the list takes depends on the templates' wording; the first document count
    (of a few) that ends the list on an odd page is used.
    """
    for count in range(56, 66):
        tmp_path = tmp_path_factory.mktemp(f"long{count}")
        documents = [make_document(tmp_path / "docs", n, f"Progress note {n} from the orthopedic clinic",
                                   "correspondence", 1 + n % 3, author=f"Clinic {n}") for n in range(1, count + 1)]
        rendered = render(tmp_path, documents=documents)
        texts = [page.extract_text() or "" for page in PdfReader(str(rendered[2]["member-packet.pdf"])).pages]
        if len(texts) >= 10 and any("intentionally left blank" in text for text in texts[-3:]):
            return rendered
    pytest.fail("no document count between 56 and 65 gave a member packet with a blank page before the form")


def test_page_x_of_y_is_right_on_every_page_of_a_long_packet(long_packet):
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from packet.mailings.pages import fonts

    ctx, _, paths = long_packet
    for name in ("member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf"):
        reader = PdfReader(str(paths[name]))
        total = len(reader.pages)
        for index, page in enumerate(reader.pages, 1):
            runs = footer_runs(page)
            labels = [run for run in runs if re.fullmatch(r"Page \d+ of \d+", run[0])]
            assert [label[0] for label in labels] == [f"Page {index} of {total}"], (name, index, runs)
            text, x, y, size = labels[0]
            assert (y, size) == (36.0, 9.0), (name, index)
            # Centred for its own text (the final total), and clear of the case id at the left.
            width = stringWidth(text, fonts().regular, size)
            assert abs(x + width / 2 - 306) < 0.01, (name, index, x)
            case_id = [run for run in runs if run[0] == ctx.facts.case_id]
            assert len(case_id) == 1 and case_id[0][1:] == (54.0, 36.0, 9.0), (name, index, runs)
            assert x > 54 + stringWidth(ctx.facts.case_id, fonts().regular, size) + 12
    member = PdfReader(str(paths["member-packet.pdf"]))
    assert len(member.pages) >= 10
    texts = [squash(page.extract_text() or "") for page in member.pages]
    blank = [i for i, t in enumerate(texts, 1) if "This page is intentionally left blank." in t]
    form = next(i for i, t in enumerate(texts, 1) if "Use this form to ask for free copies" in t)
    assert form - 1 in blank and form % 2 == 1, (blank, form)  # the blank page before the form part


def test_form_fields_point_to_the_page_they_are_on(long_packet):
    """The pages are written only when the document ends; each widget's /P must still be its page."""
    _, _, paths = long_packet
    reader = PdfReader(str(paths["member-packet.pdf"]))
    seen = 0
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            widget = annotation.get_object()
            assert widget.raw_get("/P").idnum == page.indirect_reference.idnum, widget.get("/T")
            seen += 1
    assert seen >= 5
    assert set(reader.get_fields()) >= {"copy_request.member_name", "copy_request.personal_copy"}


def test_a_fresh_process_writes_the_same_bytes(tmp_path, english):
    """The same input gives the same bytes in a new process as in a process that built before."""
    import sys
    _, _, warm = english
    tests_dir = Path(__file__).resolve().parents[1]
    script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
              "import mailkit; mailkit.render(Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", script, str(tests_dir), str(tmp_path / "b")], check=True,
                   cwd=str(PROJECT_ROOT), capture_output=True)
    for name, path in warm.items():
        assert (tmp_path / "b" / "out" / name).read_bytes() == path.read_bytes(), name


def test_dmhc_case_number_is_printed_where_dmhcs_number_belongs(tmp_path):
    """Issue 15 item 8: DMHC's own number when case.toml gives it; the folder id is our reference."""
    _, _, paths = render(tmp_path / "with", top='dmhc_case_number = "IMR-DMHC-2026-98765"')
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "IMR case number (DMHC): IMR-DMHC-2026-98765" in text
    assert "Our reference: IMR-2026-000417" in text
    assert "write your IMR case number IMR-DMHC-2026-98765 on every page" in text
    provider = squash(poppler_text(paths["provider-packet.pdf"]))
    assert "IMR case number (DMHC): IMR-DMHC-2026-98765" in provider
    _, _, paths = render(tmp_path / "without")
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "IMR case number" not in text  # the folder id is never called DMHC's number
    assert "Our reference: IMR-2026-000417" in text and "write our reference IMR-2026-000417 on every page" in text


def _runs_with_sizes(page) -> list[tuple[str, float]]:
    runs = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            runs.append((text.strip(), size * (tm[3] or 1) * (cm[3] or 1)))
    page.extract_text(visitor_text=visit)
    return runs


def test_arabic_and_persian_taglines_are_shaped_and_in_right_to_left_order(english):
    """Each line is broken in logical order, then drawn in visual order with Arabic presentation
    forms (pypdf reads right-to-left runs back into logical order, so the PDF is compared in
    logical order and the laid-out paragraph in visual order)."""
    import arabic_reshaper

    from packet.mailings.pages import fonts
    from packet.mailings.rtl import RtlParagraph, visual_line

    ctx, _, paths = english
    drawn = " ".join(text for page in PdfReader(str(paths["member-packet.pdf"])).pages
                     for text, _ in _runs_with_sizes(page))
    config = ctx.config
    for code, first_word in (("fa", "توجه:"), ("ar", "ملحوظة:")):
        tagline = Templates(config).taglines()[code]["text"].replace("{phone}", config.plan.phone).replace(
            "{tty}", config.plan.tty)
        paragraph = RtlParagraph(tagline, ParagraphStyle("t", fontName=fonts().regular, fontSize=11))
        paragraph.wrap(7 * 72, 500)
        lines = paragraph.lines(7 * 72)
        assert len(lines) == 2 and lines[0].startswith(first_word)  # logical order: first words first
        laid_out = paragraph._para.text.split("<br/>")
        for line, visual in zip(lines, laid_out):
            assert visual == visual_line(line).replace("&", "&amp;")
            if line is lines[0]:  # the first (right-to-left) word of the line at its right end
                assert visual.split(" ")[-1] == visual_line(line.split(" ")[0])
            # Shaped: every letter is a presentation form (contextual shape), none a bare letter.
            assert not [c for c in visual if 0x0600 <= ord(c) <= 0x06FF and unicodedata.category(c) == "Lo"]
        shaped_first_line = arabic_reshaper.reshape(lines[0])
        assert shaped_first_line.split(" ")[0] in drawn  # the shaped words are in the PDF
    assert "0142-555-800-1" not in drawn


@pytest.mark.parametrize("logical, visual_order", [
    ("با 1-800-555-0142 (TTY: 711) تماس بگیرید.", [".ﺪﯾﺮﯿﮕﺑ", "ﺱﺎﻤﺗ", "1-800-555-0142", "(TTY:", "711)", "ﺎﺑ"]),
    ("اتصل برقم 1-800-555-0142 (رقم: 711).", [".(711", ":ﻢﻗﺭ)", "1-800-555-0142", "ﻢﻗﺮﺑ", "ﻞﺼﺗﺍ"]),
    ("(916) 255-5241 فاکس", ["ﺲﮐﺎﻓ", "(916)", "255-5241"]),
])
def test_right_to_left_lines_keep_numbers_and_brackets_right(logical, visual_order):
    from packet.mailings.rtl import visual_line

    assert visual_line(logical).split(" ") == visual_order


def test_taglines_are_at_least_body_size_and_the_list_at_least_10_point(english):
    _, _, paths = english
    sizes: dict[str, float] = {}
    for page in PdfReader(str(paths["member-packet.pdf"])).pages:
        for text, size in _runs_with_sizes(page):
            for marker in ("ATENCIÓN", "ВНИМАНИЕ", "PAUNAWA", "LUS CEEV", "ﻣﻠﺤﻮﻇﺔ", "MRI lumbar spine report"):
                if marker in text:
                    sizes[marker] = min(size, sizes.get(marker, size))
    assert len(sizes) == 6, sizes
    assert all(size >= 11 for marker, size in sizes.items() if marker != "MRI lumbar spine report"), sizes
    assert sizes["MRI lumbar spine report"] >= 10


def test_docx_taglines_are_body_size_and_right_to_left_for_arabic(english):
    ctx, _, paths = english
    document = DocxDocument(str(paths["notice-letter.docx"]))
    from packet.mailings.taglines import tagline_texts

    texts = set(tagline_texts(Templates(ctx.config), ctx.config))
    tagline_paragraphs = [p for p in document.paragraphs if p.text in texts]
    assert len(tagline_paragraphs) == len(texts) >= 10
    assert all(p.runs[0].font.size.pt >= 11 for p in tagline_paragraphs)
    arabic = [p for p in tagline_paragraphs if "ملحوظة" in p.text or "توجه" in p.text]
    assert len(arabic) == 2 and all(p._p.pPr.find(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}bidi") is not None for p in arabic)


def test_a_response_submission_names_the_request_it_answers(tmp_path):
    """Issue 15 item 1: a `response` submission's letter names the IMR organization's request."""
    request = '\n[[info_requests]]\nid = "PT-1"\nreceived = 2026-11-27T09:00:00-08:00\nwhat = "Physical therapy notes"\n'
    _, _, paths = render(tmp_path / "en", submission=2, kind="response", extra=request)
    text = squash(poppler_text(paths["member-packet.pdf"]))
    assert "We sent the information the IMR organization asked for" in text
    assert "asked us for: Physical therapy notes" in text
    assert "it was due December 4, 2026, 11:59 p.m." in text  # 5 business days (Thanksgiving Friday off)
    _, _, paths = render(tmp_path / "es", submission=2, kind="response", extra=request, language="es")
    assert "nos pidió: Physical therapy notes" in squash(poppler_text(paths["member-packet.pdf"]))


def test_compiled_templates_are_kept_for_the_process_and_an_edited_one_is_compiled_again(tmp_path, monkeypatch):
    import jinja2

    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    config = make_config(tmp_path / "c", templates=folder)
    compiled = []
    compile_source = jinja2.Environment.compile

    def counting(self, source, *args, **kwargs):
        compiled.append(args[0] if args else kwargs.get("name"))
        return compile_source(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    (folder / "en" / "probe.md.j2").write_text("First wording.\n", encoding="utf-8")
    assert Templates(config).render("en", "probe.md.j2", {}) == "First wording.\n"
    assert Templates(config).render("en", "probe.md.j2", {}) == "First wording.\n"  # the next build
    assert compiled == ["en/probe.md.j2"]
    (folder / "en" / "probe.md.j2").write_text("Second wording.\n", encoding="utf-8")
    assert Templates(config).render("en", "probe.md.j2", {}) == "Second wording.\n"
    assert compiled == ["en/probe.md.j2", "en/probe.md.j2"]
