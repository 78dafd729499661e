"""The tagline fonts' subsets (packet.mailings.fontsubset): made once, at set-up or by the first process
that needs them; every tagline drawn from a subset holding its characters, whether the subset came
from the disk, was just made, or was made in memory for want of a writable folder: the same bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont as ToolsFont

from helpers import make_config
from mailkit import poppler_text, render, squash
from packet.config import PROJECT_ROOT
from packet.mailings import fontsubset, taglines
from packet.mailings.pages import styles
from packet.mailings.taglines import SCRIPT_FONTS, script_characters, script_font, script_tagline
from packet.mailings.templates import Templates


def _fonts_or_skip():
    missing = sorted({spec.package for spec in SCRIPT_FONTS.values() if not Path(spec.path).is_file()})
    if missing:
        pytest.skip(f"font packages not installed (make setup installs them): {' '.join(missing)}")


@pytest.fixture
def subsets(tmp_path, monkeypatch):
    """An empty subset folder of this test's own, as on a machine before its set-up."""
    folder = tmp_path / "subsets"
    monkeypatch.setattr(fontsubset, "SUBSET_DIR", folder)
    monkeypatch.setattr(taglines, "_UNSHAPED", {})  # fonts an earlier test of this process loaded
    return folder


def _cmap(source) -> set[int]:
    font = ToolsFont(source)
    try:
        return set(font.getBestCmap())
    finally:
        font.close()


def test_a_subset_holds_the_characters_asked_for_and_little_else(subsets):
    _fonts_or_skip()
    spec = SCRIPT_FONTS["cjk-zh"]
    chars = frozenset("注意您可以免費獲得語言援助服務")
    source = fontsubset.subset_source(spec.path, spec.subfont, chars)
    assert Path(source).parent == subsets
    cmap = _cmap(source)
    assert {ord(c) for c in chars} <= cmap
    assert {ord(c) for c in "1-800-555 (TTY: 711)"} <= cmap  # printable ASCII is in every subset
    assert len(cmap) < 200
    assert Path(source).stat().st_size < Path(spec.path).stat().st_size / 100
    # The same font and characters: the same file; another character: another file.
    assert fontsubset.subset_source(spec.path, spec.subfont, chars) == source
    other = fontsubset.subset_source(spec.path, spec.subfont, chars | {"龍"})
    assert other != source and ord("龍") in _cmap(other)


def test_a_shaped_scripts_subset_keeps_the_glyphs_its_layout_features_reach(subsets):
    """Devanagari conjuncts and vowel signs are glyphs no character maps to: HarfBuzz reaches them
    through GSUB, so the subset must keep them, and shaping gives the same glyphs' outlines."""
    _fonts_or_skip()
    import uharfbuzz as hb

    spec = SCRIPT_FONTS["devanagari"]
    text = "क्षमा श्री हिन्दी सहायता"

    def shaped_outlines(path: str) -> list[bytes]:
        blob = hb.Blob.from_file_path(path)
        font = hb.Font(hb.Face(blob))
        buffer = hb.Buffer()
        buffer.add_str(text)
        buffer.guess_segment_properties()
        hb.shape(font, buffer, {})
        tools = ToolsFont(path)
        order, glyf = tools.getGlyphOrder(), tools["glyf"]
        out = []
        for info in buffer.glyph_infos:
            glyph = glyf[order[info.codepoint]]
            glyph.expand(glyf)
            out.append(glyph.compile(glyf))
        tools.close()
        return out

    source = fontsubset.subset_source(spec.path, spec.subfont, frozenset(text))
    whole = shaped_outlines(spec.path)
    assert len(whole) < len(text.replace(" ", ""))  # conjuncts: fewer glyphs than characters
    assert shaped_outlines(source) == whole


def test_every_tagline_is_drawn_from_a_subset_with_its_characters(tmp_path, subsets):
    _fonts_or_skip()
    config = make_config(tmp_path)
    data = Templates(config).taglines()
    for script in SCRIPT_FONTS:
        chars = script_characters(data, script, config)
        font = script_font(script, chars)
        assert font is not None, script
        assert font.fontName.startswith(SCRIPT_FONTS[script].name + "-")
        whole = _cmap(SCRIPT_FONTS[script].path) if not SCRIPT_FONTS[script].path.endswith(".ttc") else None
        for char in chars - {" "}:  # each character the whole font has, and only those
            expected = ord(char) in whole if whole is not None else True
            assert (ord(char) in font.face.charToGlyph) == expected, (script, char)
        assert len(font.face.charToGlyph) < 600, script  # not the whole font (42,286 characters in Zen Hei)
    assert len(list(subsets.glob("*.ttf"))) == len(SCRIPT_FONTS)


def test_the_same_bytes_from_a_kept_subset_a_new_one_and_one_made_in_memory(tmp_path, subsets):
    """A process that finds the subsets on disk, one that makes them, and one that cannot keep them
    (a read-only installation) write the same member packet."""
    _fonts_or_skip()
    script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
              "from packet.mailings import fontsubset; fontsubset.SUBSET_DIR = Path(sys.argv[3]); "
              "import mailkit; mailkit.render(Path(sys.argv[2]))")
    tests_dir = str(Path(__file__).resolve().parents[1])
    blocked = tmp_path / "a-file"  # a folder that cannot be made, whoever runs the test (root too)
    blocked.write_bytes(b"")
    outputs = []
    for name, folder in (("made", subsets), ("kept", subsets), ("memory", blocked / "fonts")):
        subprocess.run([sys.executable, "-c", script, tests_dir, str(tmp_path / name), str(folder)],
                       check=True, cwd=str(PROJECT_ROOT), capture_output=True, timeout=300)
        outputs.append((tmp_path / name / "out" / "member-packet.pdf").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(list(subsets.glob("*.ttf"))) == len(SCRIPT_FONTS)


def test_a_plans_own_tagline_with_new_characters_gets_its_own_subset(tmp_path, subsets):
    """A plan's taglines.toml that adds a character the package's taglines lack prints it natively,
    in the same process as a build of the package's own taglines: reportlab would give a second
    subset's name the first subset's object (the same typeface), which lacks the character."""
    _fonts_or_skip()
    _, _, before = render(tmp_path / "a")
    templates = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates)
    toml = (templates / "taglines.toml").read_text(encoding="utf-8")
    zh = Templates(make_config(tmp_path / "t")).taglines()["zh"]["text"]
    assert "龍" not in zh
    toml = toml.replace(zh, zh.replace("注意", "注意龍"))
    (templates / "taglines.toml").write_text(toml, encoding="utf-8")
    _, _, after = render(tmp_path / "b", config=make_config(tmp_path / "b", templates=templates))
    assert "注意龍" in squash(poppler_text(after["member-packet.pdf"]))
    assert "Chinese: Free language" not in squash(poppler_text(after["member-packet.pdf"]))
    assert "注意：" in squash(poppler_text(before["member-packet.pdf"]))


def test_a_damaged_font_prints_the_english_line(tmp_path, subsets, monkeypatch):
    _fonts_or_skip()
    damaged = tmp_path / "damaged.ttf"
    damaged.write_bytes(Path(SCRIPT_FONTS["cjk-ko"].path).read_bytes()[:5000])
    monkeypatch.setitem(SCRIPT_FONTS, "cjk-ko", taglines.ScriptFont("TaglineKo", str(damaged), "fonts-nanum"))
    assert script_tagline("주의: 한국어", "cjk-ko", styles().small) is None
    assert list(subsets.glob("*.ttf")) == []


def test_set_up_makes_every_subset_and_a_build_then_makes_none(tmp_path, subsets):
    """`make setup` (board.write_compiled) leaves a subset for every script; a fresh process drawing
    the taglines then never imports fontTools' subsetter, and prints nothing of fontTools'."""
    _fonts_or_skip()
    from packet.service import board

    done = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from packet.mailings import fontsubset; "
         "fontsubset.SUBSET_DIR = Path(sys.argv[1]); from packet.config import Config; "
         "from packet.service.board import write_compiled; write_compiled(Config())", str(subsets)],
        cwd=str(PROJECT_ROOT), capture_output=True, text=True, check=True, timeout=300)
    assert done.stderr == "" and done.stdout == ""
    assert len(list(subsets.glob("*.ttf"))) == len(SCRIPT_FONTS)
    del board
    script = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
              "from packet.mailings import fontsubset; fontsubset.SUBSET_DIR = Path(sys.argv[3]); "
              "import mailkit; mailkit.render(Path(sys.argv[2])); "
              "print(json.dumps('fontTools.subset' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).resolve().parents[1]),
                           str(tmp_path / "r"), str(subsets)], cwd=str(PROJECT_ROOT), capture_output=True,
                          text=True, check=True, timeout=300)
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False


def test_a_kept_subset_damaged_on_disk_is_made_again(tmp_path, subsets):
    """A subset file that no longer loads (a damaged disk, a truncated copy) is replaced, so the
    tagline still prints in its script and the bytes are what a fresh machine writes."""
    _fonts_or_skip()
    text = "주의: 한국어를 사용하시는 경우"
    first = script_tagline(text, "cjk-ko", styles().small)
    assert first is not None
    [kept] = subsets.glob("*.ttf")
    good = kept.read_bytes()
    kept.write_bytes(good[:300])
    taglines._UNSHAPED.clear()
    assert script_tagline(text, "cjk-ko", styles().small) is not None
    assert kept.read_bytes() == good
