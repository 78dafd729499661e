"""The shared real-world corpus (../shared/corpus, read in place) for the corpus tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from packet.model.models import SourceFile

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def corpus_sources() -> list[SourceFile]:
    """Every file of the corpus but its INDEX.md, as the intake sees a file."""
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "INDEX.md")
    return [SourceFile(relpath=p.relative_to(CORPUS).as_posix(), path=p, size=p.stat().st_size,
                       mtime_ns=p.stat().st_mtime_ns) for p in files]


def with_corpus_cache(config, conversion) -> None:
    """`config`'s conversion cache starts as a copy of the corpus conversion's (conftest's
    `corpus_conversion`): the files come from the cache, as the service takes an unchanged file."""
    shutil.copytree(conversion.cache_dir, config.cache_dir, dirs_exist_ok=True)
