"""Robustness over the shared real-world corpus, through the whole intake of `build_case`.

Every file is either a document in the draft manifest or refused into `_rejected/` with a reason;
nothing crashes or hangs, and the case folder is byte-for-byte unchanged apart from `_rejected/`
and `_STATUS.txt`.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from corpuskit import with_corpus_cache
from helpers import write_case
from packet.pipeline.build import build_case
from packet.intake.folder import is_junk

pytestmark = pytest.mark.slow  # every file of the shared corpus, through build_case


def test_every_corpus_file_is_taken_or_refused(config, corpus_dir, corpus_conversion):
    with_corpus_cache(config, corpus_conversion)  # converted once per run (tests/intake/test_corpus.py)
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


def test_corpus_pdfs_added_one_by_one_update_the_draft_to_what_a_full_build_makes(tmp_path, corpus_dir,
                                                                                  corpus_conversion):
    """Real-world PDFs (filled forms, rotations, inherited boxes, attachments, signatures, earlier
    incremental updates, outlines) each added to a built case: the updated draft packet equals a
    full build of the same case."""
    import subprocess

    from helpers import make_config, make_pdf
    from packet.pdf.inspect import pdf_summary
    from packet.pipeline.build import DRAFT_PACKET_RECORD, case_state_dir

    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)
    tricky = ("form", "rotat", "boxes", "attachment", "signed", "incremental", "outline", "xfa", "fax")
    pdfs = sorted(p for p in (corpus_dir / "pdf").glob("*.pdf") if any(word in p.name for word in tricky))
    assert len(pdfs) >= 8
    give_up = frozenset(f"medical-records/{path.name}" for path in pdfs)  # no retries: refuse at once
    config = make_config(tmp_path / "updated")
    with_corpus_cache(config, corpus_conversion)
    case_dir = write_case(config.paths.inbox, "CORPUS-2")
    make_pdf(case_dir / "medical-records" / "base.pdf", ["MRI report\nExam date: 08/14/2026"])
    build_case(case_dir, config, now=now)
    updates = 0
    for path in pdfs:
        shutil.copyfile(path, case_dir / "medical-records" / path.name)
        build_case(case_dir, config, now=now, give_up=give_up)
        record = json.loads((case_state_dir(config, "CORPUS-2") / DRAFT_PACKET_RECORD).read_text())
        updates += record["updates"] > 0
    assert updates >= len(pdfs) // 2, "most drafts were updates, not rebuilds"
    assert record["updates"] > 0

    full_config = make_config(tmp_path / "full")
    with_corpus_cache(full_config, corpus_conversion)
    full_case = write_case(full_config.paths.inbox, "CORPUS-2")
    shutil.copytree(case_dir / "medical-records", full_case / "medical-records")  # what was taken
    build_case(full_case, full_config, now=now, give_up=give_up)
    updated = config.paths.outbox / "CORPUS-2" / "draft" / "imr-org-packet.pdf"
    full = full_config.paths.outbox / "CORPUS-2" / "draft" / "imr-org-packet.pdf"
    assert pdf_summary(updated) == pdf_summary(full)
    text = [subprocess.run(["pdftotext", "-q", str(p), "-"], capture_output=True).stdout for p in (updated, full)]
    assert text[0] == text[1]
    subprocess.run(["qpdf", "--check", str(updated)], check=True, capture_output=True)
