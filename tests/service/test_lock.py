"""One watcher per inbox, however the inbox is reached (issue 13 item 9)."""

from __future__ import annotations

import os
import subprocess

import pytest
from watchkit import Service, service  # noqa: F401

from packet.errors import AlreadyRunning
from packet.service.lock import INBOX_LOCK_NAME, WatchLock, lock_paths


def _other_config(service: Service, name: str, inbox) -> os.PathLike:
    root = service.root / name
    root.mkdir()
    path = root / "imr.toml"
    path.write_text(f'[paths]\ninbox = "{inbox}"\noutbox = "{root / "outbox"}"\n'
                    f'archive = "{root / "archive"}"\nstate = "{root / "state"}"\n')
    return path


def test_a_second_watcher_with_its_own_tmpdir_and_state_exits_2(service):
    # What systemd's PrivateTmp=yes does: each watcher sees its own /tmp.
    (service.root / "tmp-a").mkdir()
    (service.root / "tmp-b").mkdir()
    first = service.start(env={"TMPDIR": str(service.root / "tmp-a")})
    service.started(first)
    second = service.start(config_file=_other_config(service, "second", service.inbox),
                           env={"TMPDIR": str(service.root / "tmp-b")})
    assert second.wait(timeout=60) == 2
    assert "already running" in service.runs[-1][2].read_text()
    assert first.poll() is None
    assert service.terminate(first) == 0
    # The lock lives with the inbox (hidden) and dies with its process: a new watcher starts.
    assert (service.inbox / INBOX_LOCK_NAME).is_file()
    third = service.start("--once", config_file=_other_config(service, "third", service.inbox))
    assert third.wait(timeout=120) == 0, service.diagnostics()


def test_a_second_watcher_through_a_bind_mount_exits_2(service, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("bind mounts need root")
    mounted = tmp_path / "mounted-inbox"
    mounted.mkdir()
    done = subprocess.run(["mount", "--bind", str(service.inbox), str(mounted)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount --bind is not allowed here: {done.stderr!r}")
    try:
        assert os.path.realpath(mounted) != os.path.realpath(service.inbox)  # another path entirely
        first = service.start()
        service.started(first)
        second = service.start(config_file=_other_config(service, "second", mounted),
                               env={"TMPDIR": str(tmp_path)})
        assert second.wait(timeout=60) == 2
        assert "already running" in service.runs[-1][2].read_text()
        assert service.terminate(first) == 0
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_a_deleted_lock_file_is_taken_again_and_a_newcomer_is_noticed(config):
    first = WatchLock(config).acquire()
    try:
        lock_file = config.paths.inbox / INBOX_LOCK_NAME
        with pytest.raises(AlreadyRunning):
            WatchLock(config).acquire()
        lock_file.unlink()  # a clerk tidying the share
        assert first.check() is True  # taken again at once
        assert lock_file.is_file()
        with pytest.raises(AlreadyRunning):
            WatchLock(config).acquire()
        # Deleted, and another watcher started before the first noticed: the first must give way.
        lock_file.unlink()
        second = WatchLock(config)
        with pytest.raises(AlreadyRunning):  # the other locks still hold it off
            second.acquire()
        for path in lock_paths(config)[1:]:  # the state and temporary-folder locks too
            path.unlink()
        second.acquire()
        try:
            assert first.check() is False
        finally:
            second.release()
    finally:
        first.release()


def test_a_stopping_watcher_removes_its_temporary_folder_lock_and_only_its_own(config, tmp_path, monkeypatch):
    # One file per inbox ever watched would pile up in /tmp (a test run made hundreds).
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    inbox_lock, state_lock, temporary = lock_paths(config)
    assert temporary.parent == tmp_path / "tmp"
    WatchLock(config).acquire().release()
    assert not temporary.exists()
    assert inbox_lock.is_file() and state_lock.is_file()  # the service's own folders keep theirs
    # Not removed when it is no longer the file this watcher locked (another took the path).
    first = WatchLock(config).acquire()
    temporary.unlink()
    temporary.write_text("someone else's\n")
    first.release()
    assert temporary.read_text() == "someone else's\n"
    # A watcher that cannot write the temporary folder (here not a folder at all: the tests run as
    # root) still runs, and stops cleanly.
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "not-a-folder"))
    lock = WatchLock(config).acquire()
    assert [held.path for held in lock.held] == [inbox_lock, state_lock]
    lock.release()
    assert (tmp_path / "not-a-folder").is_file()
