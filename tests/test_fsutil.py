"""packet.fsutil.tree_bytes: what the command line weighs a case folder by before it starts workers."""

from __future__ import annotations

import os

import pytest

from packet.fsutil import FILE_MODE, atomic_writer, tree_bytes


def test_tree_bytes_counts_plain_files_follows_no_link_and_stops_when_enough(tmp_path):
    case = tmp_path / "case"
    (case / "records").mkdir(parents=True)
    (case / "a.pdf").write_bytes(b"x" * 1000)
    (case / "records" / "b.pdf").write_bytes(b"y" * 500)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "huge.bin").write_bytes(b"z" * 100_000)
    os.symlink(elsewhere, case / "linked-folder")
    os.symlink(elsewhere / "huge.bin", case / "linked-file.pdf")
    os.mkfifo(case / "pipe")
    assert tree_bytes(case) == 1500
    assert tree_bytes(case, enough=600) >= 600
    assert tree_bytes(case, enough=1) in (500, 1000)  # stopped after the first file
    assert tree_bytes(tmp_path / "missing") == 0


def test_an_atomic_writer_replaces_the_file_only_when_its_block_ends_and_never_leaves_half_a_file(tmp_path):
    """A writer that writes as it goes (a large PDF): readers see the old file until the block ends;
    a block that raises midway leaves the old file and no hidden temporary file."""
    target = tmp_path / "out" / "packet.pdf"
    with atomic_writer(target) as out:
        out.write(b"first")
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == FILE_MODE
    with atomic_writer(target) as out:
        out.write(b"second, part one")
        assert target.read_bytes() == b"first"  # not yet
        out.write(b" and two")
    assert target.read_bytes() == b"second, part one and two"
    with pytest.raises(RuntimeError), atomic_writer(target) as out:
        out.write(b"third, half")
        raise RuntimeError("the writer failed midway")
    assert target.read_bytes() == b"second, part one and two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["packet.pdf"]
