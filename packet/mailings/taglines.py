"""Language-assistance taglines and the nondiscrimination notice of every member mailing.

Owns: each tagline printed in its own script when a TrueType font for it is installed
(SCRIPT_FONTS: CJK, Devanagari, Gurmukhi, Thai, Khmer; embedded as subsets, never reportlab's
unembedded CID fonts). Indic, Thai and Khmer are shaped by reportlab with uharfbuzz. Arabic and
Persian are shaped and put in right-to-left order by `packet.mailings.rtl` and drawn in the body
font (DejaVu Sans holds the Arabic presentation forms). A tagline falls back to the language's
English name and the plan's number when its font is missing, a glyph is missing or a word needs
two fonts: an unshaped or misordered line would be wrong text. Every tagline is printed at least
at the size of the letter's body text. The DOCX letter carries every tagline in its own script.
Must not: decide which languages a plan lists (configuration) or what they say (taglines.toml).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph

from packet.config import Config
from packet.errors import TemplateError
from packet.mailings.fontsubset import subset_key, subset_source
from packet.mailings.markup import Block, escape_markup, parse_markup
from packet.mailings.pages import BODY_SIZE, fonts, styles, text_xml
from packet.mailings.rtl import RtlParagraph, rtl_drawable
from packet.mailings.templates import Templates

# Scripts the embedded DejaVu Sans draws without shaping.
PRINTABLE_SCRIPTS = ("latin", "cyrillic", "armenian", "greek")
# Right-to-left scripts, shaped and reordered by packet.mailings.rtl, drawn in DejaVu Sans.
RTL_SCRIPTS = ("arabic",)


@dataclass(frozen=True)
class ScriptFont:
    """A TrueType font (embedded as a subset) that draws one script's tagline.

    `shaped` scripts (Indic, Thai, Khmer) need reportlab's HarfBuzz shaping (uharfbuzz) for
    conjuncts, vowel signs before the consonant and stacked marks; CJK needs only the glyphs and
    line breaks between ideographs (`cjk_wrap`). The Debian package is named for the Makefile.
    """

    name: str  # reportlab font name
    path: str
    package: str
    subfont: int = 0
    shaped: bool = False
    cjk_wrap: bool = False
    size: float = BODY_SIZE  # a tagline is never smaller than the letter's body text


_NOTO = "/usr/share/fonts/truetype/noto/"
# TrueType only: reportlab cannot embed CFF-outline OpenType (fonts-noto-cjk), and its CID fonts
# are not embedded at all. Arabic and Persian are absent on purpose: they need the bidi algorithm
# (right-to-left words around left-to-right numbers), which reportlab does only with `rlbidi`, a
# package not published on PyPI; they keep their English fallback line.
SCRIPT_FONTS: dict[str, ScriptFont] = {
    "cjk-zh": ScriptFont("TaglineZh", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei",
                         cjk_wrap=True),
    "cjk-ja": ScriptFont("TaglineJa", "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
                         "fonts-ipafont-gothic", cjk_wrap=True),
    "cjk-ko": ScriptFont("TaglineKo", "/usr/share/fonts/truetype/nanum/NanumGothic.ttf", "fonts-nanum"),
    "devanagari": ScriptFont("TaglineDeva", _NOTO + "NotoSansDevanagari-Regular.ttf", "fonts-noto-core",
                             shaped=True),
    "gurmukhi": ScriptFont("TaglineGuru", _NOTO + "NotoSansGurmukhi-Regular.ttf", "fonts-noto-core",
                           shaped=True),
    # Loma and Khmer OS, not Noto: Noto Sans Thai/Khmer have no ASCII digits or colon, and a word
    # that mixes two fonts ("เรียน:", "711)។") cannot be shaped by reportlab.
    "thai": ScriptFont("TaglineThai", "/usr/share/fonts/truetype/tlwg/Loma.ttf", "fonts-tlwg-loma-ttf",
                       shaped=True),
    "khmer": ScriptFont("TaglineKhmer", "/usr/share/fonts/truetype/khmeros/KhmerOS.ttf", "fonts-khmeros",
                        shaped=True),
}


def _shaping_available() -> bool:
    try:
        import uharfbuzz  # noqa: F401  (reportlab shapes with it when importable)
    except ImportError:
        return False
    return True


# Unshaped scripts' fonts, one object per subset for the life of the process (their glyph codes are
# their Unicode values, so sharing one between documents changes nothing).
_UNSHAPED: dict[str, TTFont] = {}


def script_font(script: str, chars: frozenset[str] = frozenset()) -> TTFont | None:
    """The registered font that draws `chars` of `script`'s taglines, or None (print the fallback
    line). The font is a subset holding `chars` and printable ASCII (packet.mailings.fontsubset),
    registered under a name of its own per subset, so two character sets in one process never
    share a font object.

    A shaped script's font is registered afresh on every call: reportlab gives glyphs without a
    Unicode value (conjuncts, positioned marks) private-use codes in the order it first meets
    them and keeps them on the font object, so one font object shared by builds would make a
    document's bytes depend on what the process built before it.
    """
    spec = SCRIPT_FONTS.get(script)
    if spec is None or fonts().regular == "Helvetica" or not Path(spec.path).is_file():
        return None
    if spec.shaped and not _shaping_available():
        return None
    try:
        name = f"{spec.name}-{subset_key(spec.path, spec.subfont, chars)[:12]}"
        if not spec.shaped and name in _UNSHAPED:
            return _UNSHAPED[name]
        try:
            font = TTFont(name, subset_source(spec.path, spec.subfont, chars), shapable=spec.shaped)
        except Exception:  # a kept subset damaged on disk is made again; a damaged font fails again
            font = TTFont(name, subset_source(spec.path, spec.subfont, chars, again=True), shapable=spec.shaped)
    except Exception:  # a damaged or CFF-outline file: print the fallback line instead
        return None
    if not spec.shaped:
        _UNSHAPED[name] = font
    _register(font)
    return font


def _register(font: TTFont) -> None:
    """Register `font` under its name, replacing whatever held the name or the typeface.

    reportlab gives a new name the object that first registered the same typeface (another subset
    of the font, without this one's characters) and keeps an old object under a known name, so
    both entries go first. Names of other subsets keep their objects. Without a known name no
    search of reportlab's AFM files happens (`freshTTFont` would search them, about 45 ms).
    """
    pdfmetrics._fonts.pop(font.fontName, None)  # noqa: SLF001 - reportlab has no public way
    pdfmetrics._dynFaceNames.pop(font.face.name, None)  # noqa: SLF001
    pdfmetrics.registerFont(font)


def script_tagline(text: str, script: str, base: ParagraphStyle,
                   chars: frozenset[str] | None = None) -> Paragraph | None:
    """The tagline in its own script, or None when it cannot be drawn correctly. `chars`: the
    characters of every tagline of `script` (one subset for all of them); `text`'s by default.

    Each space-separated word is set wholly in the script's font or wholly in the body font
    (numbers, "TTY"): reportlab shapes a word with its first font, so a word needing both fonts
    would print a missing glyph; such a tagline is not printed natively.
    """
    spec = SCRIPT_FONTS.get(script)
    font = script_font(script, frozenset(text) | (chars or frozenset()))
    if spec is None or font is None:
        return None
    body = pdfmetrics.getFont(fonts().regular)
    script_chars, body_chars = font.face.charToGlyph, body.face.charToGlyph
    words = []
    for word in text.split(" "):
        if all(ord(c) in script_chars for c in word):
            name = font.fontName
        elif all(ord(c) in body_chars for c in word):
            name = fonts().regular
        else:
            return None
        words.append(f'<font name="{name}">{text_xml(word)}</font>' if word else "")
    style = ParagraphStyle(f"tag-{script}", parent=base, fontName=font.fontName, fontSize=spec.size,
                           leading=spec.size * (1.7 if spec.shaped else 1.4), shaping=int(spec.shaped),
                           wordWrap="CJK" if spec.cjk_wrap else None)
    return Paragraph(" ".join(words), style)


def tagline_flowables(templates: Templates, config: Config, language: str) -> list:
    st = styles(BODY_SIZE)
    data = templates.taglines()
    out: list = []
    heading = templates.label(language, "taglines_heading")
    out.append(Paragraph(text_xml(heading), st.h2))
    small = ParagraphStyle("tag", parent=st.body, spaceAfter=4)  # the body size, never smaller
    for code in config.plan.language_taglines:
        entry = data.get(code)
        if not isinstance(entry, dict) or "text" not in entry:
            raise TemplateError(f"template taglines.toml: no tagline for language {code!r} "
                                "([plan] language_taglines)", reason="template_variable")
        text = _fill_phone(str(entry["text"]), config)
        script = str(entry.get("script", "latin"))
        if script in PRINTABLE_SCRIPTS and fonts().regular != "Helvetica":
            out.append(Paragraph(text_xml(text), small))
            continue
        if script in RTL_SCRIPTS:
            native = RtlParagraph(text, small) if fonts().regular != "Helvetica" and rtl_drawable(
                text, fonts().regular) else None
        else:
            native = script_tagline(text, script, small, script_characters(data, script, config))
        if native is not None:
            out.append(native)
        else:
            fallback = _fill_phone(str(entry.get("fallback", "")), config) or (
                f"{entry.get('name', code)}: {config.plan.phone} (TTY {config.plan.tty})")
            out.append(Paragraph(text_xml(fallback), small))
    return out


def script_characters(data: dict[str, Any], script: str, config: Config) -> frozenset[str]:
    """Every character of every tagline written in `script` (listed by the plan or not), so one
    subset of its font serves whichever languages a plan prints."""
    chars: set[str] = set()
    for entry in data.values():
        if isinstance(entry, dict) and entry.get("script") == script and "text" in entry:
            chars.update(_fill_phone(str(entry["text"]), config))
    return frozenset(chars)


def prepare_fonts(templates: Templates, config: Config) -> None:
    """Make the subsets of the tagline fonts for `templates`' taglines now (`make setup`), so no
    process has to (packet.mailings.fontsubset)."""
    data = templates.taglines()
    for script, spec in SCRIPT_FONTS.items():
        if Path(spec.path).is_file() and (chars := script_characters(data, script, config)):
            with contextlib.suppress(Exception):  # a damaged font: its taglines print the fallback line
                subset_source(spec.path, spec.subfont, chars)


def tagline_texts(templates: Templates, config: Config) -> list[str]:
    data = templates.taglines()
    out = []
    for code in config.plan.language_taglines:
        entry = data.get(code)
        if not isinstance(entry, dict) or "text" not in entry:
            raise TemplateError(f"template taglines.toml: no tagline for language {code!r}",
                                reason="template_variable")
        out.append(_fill_phone(str(entry["text"]), config))
    return out


def _fill_phone(text: str, config: Config) -> str:
    return text.replace("{phone}", config.plan.phone).replace("{tty}", config.plan.tty)


def nondiscrimination_blocks(templates: Templates, config: Config, language: str,
                             variables: dict[str, Any]) -> tuple[Block, ...]:
    if config.plan.nondiscrimination.strip():
        return parse_markup(escape_markup(config.plan.nondiscrimination))
    return templates.blocks(language, "nondiscrimination.md.j2", variables)
