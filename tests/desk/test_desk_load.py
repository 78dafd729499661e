"""A short run of the desk's load test (bench/desk_load.py): several users at once while the
watcher builds, no error, every decision audited with its user, and nothing left behind."""

import json
import tempfile

import pytest


@pytest.mark.slow
def test_concurrent_users_browse_and_decide_without_error(tmp_path, monkeypatch):
    from bench import desk_load

    # Its own temporary folder (the watcher's too, through TMPDIR): the run leaves nothing there.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.setenv("TMPDIR", str(temporary))
    out = tmp_path / "load.json"
    assert desk_load.main(["--users", "6", "--seconds", "10", "--cases", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0 and figures["decisions"] > 0 and figures["decisions_not_audited"] == 0
    assert list(temporary.iterdir()) == []
