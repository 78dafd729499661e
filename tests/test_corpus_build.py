"""Robustness over the shared real-world corpus, through the whole intake of `build_case`.

Every file is either a document in the draft manifest or refused into `_rejected/` with a reason;
nothing crashes or hangs, and the case folder is byte-for-byte unchanged apart from `_rejected/`
and `_STATUS.txt`.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

from helpers import write_case
from packet.build import build_case
from packet.intake import is_junk


def test_every_corpus_file_is_taken_or_refused(config, corpus_dir):
    case_dir = write_case(config.paths.inbox, "CORPUS-1")
    originals = {}
    for path in sorted(corpus_dir.rglob("*")):
        if not path.is_file() or path.name == "INDEX.md" or is_junk(path.name):
            continue
        rel = path.relative_to(corpus_dir).as_posix().replace("/", "__")
        shutil.copyfile(path, case_dir / rel)
        originals[rel] = path.read_bytes()
    assert len(originals) > 50

    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)
    result = build_case(case_dir, config, now=now, give_up=frozenset(originals))

    taken = {d.source for d in result.documents}
    refused = {r.source: r for r in result.rejected}
    assert taken | set(refused) == set(originals), "every file has an outcome"
    assert not taken & set(refused)
    for source, rejected in refused.items():
        assert rejected.reason and rejected.message and rejected.what_to_do, source
        moved = case_dir / rejected.moved_to
        assert moved.read_bytes() == originals[source], "refused files move byte-for-byte"
        assert (case_dir / (rejected.moved_to + ".why.txt")).is_file()
    for source in taken:
        assert (case_dir / source).read_bytes() == originals[source], "taken files are never altered"
    leftovers = {p.relative_to(case_dir).as_posix() for p in case_dir.rglob("*") if p.is_file()}
    expected = set(taken) | {"case.toml", "_STATUS.txt"} | {
        p for p in leftovers if p.startswith("_rejected/")}
    assert leftovers == expected
    # The known encrypted files are refused as encrypted, with advice to ask for an unlocked copy.
    for name in ("broken__sf-libreoffice-writer-password.pdf", "broken__pdfminer-aes-256.pdf"):
        assert refused[name].reason == "encrypted", name
        assert "unlocked" in refused[name].what_to_do
    manifest = json.loads((config.paths.outbox / "CORPUS-1" / "draft" / "manifest.json").read_text())
    assert {d["source"] for d in manifest["documents"]} == taken
    assert {r["source"] for r in manifest["rejected"]} == set(refused)
