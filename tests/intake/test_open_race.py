"""A clerk's file is read only as the plain file the folder walk found (issue 13 item 5): opened
without following a link and checked on the open descriptor, so a file swapped for a symbolic link,
given a second name (a hard link), or replaced between the walk and the conversion is never read
in its new form. Each test walks the folder, then changes the file, then converts what was walked."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from helpers import make_pdf
from packet.errors import RefusedFile
from packet.fsutil import NotPlainFile, open_plain_file, read_plain_file
from packet.intake.convert.batch import convert
from packet.intake.convert.job import make_job
from packet.intake.convert.worker import private_copy
from packet.intake.folder import scan_folder
from packet.model.models import Converted
from packet.pdf.builder import open_document
from packet.pdf.errors import AssemblyError


def walked(tmp_path: Path):
    """A case folder with one PDF, walked; and another patient's PDF outside it."""
    case_dir = tmp_path / "inbox" / "RACE-1"
    case_dir.mkdir(parents=True)
    make_pdf(case_dir / "labs.pdf", ["Lab results of this case's member"])
    outside = make_pdf(tmp_path / "elsewhere.pdf", ["ANOTHER PATIENT'S RECORD"])
    [source] = scan_folder(case_dir).files
    assert source.identity is not None
    return case_dir, source, outside


def test_a_file_swapped_for_a_symlink_after_the_walk_is_refused_and_never_read(config, tmp_path):
    case_dir, source, outside = walked(tmp_path)
    original = (case_dir / "labs.pdf").read_bytes()
    (case_dir / "labs.pdf").unlink()
    (case_dir / "labs.pdf").symlink_to(outside)
    with pytest.raises(RefusedFile) as info:
        convert(source, config)
    assert info.value.reason == "link" and not info.value.transient
    assert "link" in info.value.message
    # The refusal is about the name, not the bytes: the same content as a plain file is taken.
    (case_dir / "labs.pdf").unlink()
    (case_dir / "labs.pdf").write_bytes(outside.read_bytes())
    [plain] = scan_folder(case_dir).files
    assert isinstance(convert(plain, config), Converted)
    assert original != outside.read_bytes()


def test_a_file_given_a_second_name_after_the_walk_is_refused(config, tmp_path):
    case_dir, source, outside = walked(tmp_path)
    os.link(case_dir / "labs.pdf", tmp_path / "second-name.pdf")  # a hard link made after the walk
    with pytest.raises(RefusedFile) as info:
        convert(source, config)
    assert info.value.reason == "hard_link" and not info.value.transient
    os.unlink(tmp_path / "second-name.pdf")
    assert isinstance(convert(source, config), Converted), "not cached: the file is taken once it has one name"


def test_a_file_replaced_by_another_after_the_walk_is_read_again_later_not_in_its_new_form(config, tmp_path):
    case_dir, source, outside = walked(tmp_path)
    staged = case_dir / ".labs.tmp"
    staged.write_bytes(outside.read_bytes())
    os.replace(staged, case_dir / "labs.pdf")  # same name, another file (another inode)
    with pytest.raises(RefusedFile) as info:
        convert(source, config)
    assert info.value.transient, "a replaced file is read again on the next pass, as the file it now is"


def test_the_worker_reads_only_the_walked_file_even_when_swapped_after_the_service_hashed_it(config, tmp_path):
    case_dir, source, outside = walked(tmp_path)
    job = make_job(source, "0" * 64, config)
    work = tmp_path / "work"
    (case_dir / "labs.pdf").unlink()
    (case_dir / "labs.pdf").symlink_to(outside)  # swapped between the service's hash and the worker's open
    with pytest.raises(RefusedFile) as info:
        private_copy(job, work)
    assert info.value.reason == "link"
    assert not work.exists() or not any(work.iterdir()), "nothing of the linked file was copied"
    hard = dataclasses.replace(job, path=str(outside))
    os.link(outside, tmp_path / "again.pdf")
    with pytest.raises(RefusedFile) as info:
        private_copy(hard, tmp_path / "work2")
    assert info.value.reason == "hard_link"


def test_a_parent_folder_swapped_for_a_link_is_caught_by_the_inode(config, tmp_path):
    case_dir = tmp_path / "inbox" / "RACE-2"
    (case_dir / "records").mkdir(parents=True)
    make_pdf(case_dir / "records" / "labs.pdf", ["this case"])
    elsewhere = tmp_path / "other-case"
    elsewhere.mkdir()
    make_pdf(elsewhere / "labs.pdf", ["ANOTHER PATIENT'S RECORD"])
    [source] = scan_folder(case_dir).files
    (case_dir / "records").rename(tmp_path / "moved-away")
    (case_dir / "records").symlink_to(elsewhere)  # the last part is a plain file: only the inode tells
    with pytest.raises(RefusedFile) as info:
        convert(source, config)
    assert info.value.transient and info.value.reason != "too_large"


def test_open_plain_file_refuses_links_pipes_and_strangers(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    info = plain.stat()
    os.close(open_plain_file(plain, (info.st_dev, info.st_ino)))
    (tmp_path / "link").symlink_to(plain)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, identity, why in [(tmp_path / "link", None, "link"), (fifo, None, "not_regular"),
                                (plain, (info.st_dev, info.st_ino + 1), "replaced")]:
        with pytest.raises(NotPlainFile) as caught:
            open_plain_file(path, identity)
        assert caught.value.why == why
    assert read_plain_file(plain) == b"x"


def test_assembly_never_follows_a_document_swapped_for_a_link(tmp_path):
    from pdfkit import make_documents

    document = make_documents(tmp_path)[0]
    outside = make_pdf(tmp_path / "elsewhere.pdf", ["ANOTHER PATIENT'S RECORD"])
    assert open_document(document).pages
    document.pdf_path.unlink()
    document.pdf_path.symlink_to(outside)
    with pytest.raises(AssemblyError):
        open_document(document)


def test_the_seal_never_archives_what_a_linked_overrides_file_points_to(config, tmp_path):
    from sealkit import CASE_ID, NOW, sealable_case

    from packet.errors import PacketError
    from packet.pipeline.seal import seal_case

    case_dir = sealable_case(config.paths.inbox, privileged=False)
    outside = tmp_path / "another-case-overrides.toml"
    outside.write_text("# ANOTHER PATIENT\n")
    (case_dir / "overrides.toml").symlink_to(outside)
    (case_dir / "READY").touch()
    with pytest.raises(PacketError) as info:
        seal_case(config, CASE_ID, now=NOW, actor="clerk-anna")
    assert "overrides.toml is a link" in info.value.message
    archived = [p for p in config.paths.archive.rglob("*") if p.is_file()]
    assert not any(b"ANOTHER PATIENT" in p.read_bytes() for p in archived)
