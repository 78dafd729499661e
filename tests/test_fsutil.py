"""packet.fsutil.tree_bytes: what the command line weighs a case folder by before it starts workers."""

from __future__ import annotations

import os

from packet.fsutil import tree_bytes


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
