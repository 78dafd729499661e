"""Tagline fonts cut down to the characters the taglines use, made once and kept on disk.

Owns: the subset files under `packet/__pycache__/fonts/` (written by `make setup` for the package's
own taglines, and by the first process that needs another set of characters), and `subset_source`,
which gives reportlab a subset instead of the whole font.

Why: the CJK fonts are 17, 6.2 and 4.7 MB; reportlab reads a whole font file and builds tables for
every character in it (42,286 in WenQuanYi Zen Hei), about 60 MB and 0.15 s in every process that
draws a tagline. The taglines need a few hundred characters. fontTools keeps those characters'
glyphs, the glyphs their layout features reach (conjuncts and marks of the shaped scripts) and every
other table; the drawn glyphs are the same outlines, and reportlab still embeds its own subset.

Every tagline is drawn from a subset, never from the whole font, so a document's bytes do not depend
on whether a subset file could be kept: without a writable folder the subset is made in memory.
A subset's name is a digest of what it was made from (the font file's path, size and time, the
characters, fontTools' version), so a changed font or character set is never served an old file.
Must not: decide which font draws which script (packet.mailings.taglines) or what the taglines say.
"""

from __future__ import annotations

import hashlib
import io
import logging
from functools import lru_cache
from pathlib import Path

import fontTools

from packet.fsutil import atomic_write_bytes

SUBSET_DIR = Path(__file__).resolve().parent.parent / "__pycache__" / "fonts"
# Every printable ASCII character is in every subset: a plan's own telephone number or TTY text
# (filled into the taglines) then needs no subset of its own.
ASCII = frozenset(chr(code) for code in range(0x20, 0x7F))
# Bump when the way a subset is made changes (options below), so old files are not used.
_FORMAT = "1"


def subset_key(path: str, subfont: int, chars: frozenset[str]) -> str:
    stat = Path(path).stat()
    text = "\0".join([_FORMAT, fontTools.version, str(Path(path).resolve()), str(subfont), str(stat.st_size),
                      str(stat.st_mtime_ns), "".join(sorted(chars | ASCII))])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def subset_source(path: str, subfont: int, chars: frozenset[str], *, again: bool = False) -> str | io.BytesIO:
    """What reportlab should load for `path` (a TrueType file or collection) drawing `chars`: a
    subset file's path, or the subset's bytes when no file can be kept. `again`: make the subset
    even if a file of it exists (the file would not load: damaged on disk). Raises OSError when
    the font cannot be read, and whatever fontTools raises on a damaged font."""
    key = subset_key(path, subfont, chars)
    target = SUBSET_DIR / f"{key}.ttf"
    if target.is_file() and not again:
        return str(target)
    data = _made_in_memory(key, path, subfont, frozenset(chars | ASCII))
    try:
        atomic_write_bytes(target, data, mode=0o644)
    except OSError:  # a read-only installation: this process keeps its subset in memory
        return io.BytesIO(data)
    return str(target)


@lru_cache(maxsize=16)
def _made_in_memory(key: str, path: str, subfont: int, chars: frozenset[str]) -> bytes:
    del key  # part of the cache's key only: the font file's size and time
    return make_subset(path, subfont, chars)


def make_subset(path: str, subfont: int, chars: frozenset[str]) -> bytes:
    """The bytes of a TrueType font holding `chars` of `path`'s font number `subfont` (the whole
    font's tables but for the glyphs no character or layout feature reaches)."""
    from fontTools import subset  # about 0.1 s to import; only when a subset is made
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.layout_features = ["*"]  # every GSUB/GPOS feature: HarfBuzz shapes the Indic scripts with them
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False  # the same bytes from the same font, whenever made
    options.font_number = subfont
    # fontTools warns of each table it drops unread (bitmap strikes, a font editor's own tables):
    # nothing a reader of the service's log could act on.
    quiet = logging.getLogger("fontTools")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    font = TTFont(path, fontNumber=subfont, lazy=True, recalcTimestamp=False)
    try:
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=sorted(ord(char) for char in chars))
        subsetter.subset(font)
        out = io.BytesIO()
        font.save(out)
    finally:
        font.close()
        quiet.setLevel(level)
    return out.getvalue()

