"""One watcher per inbox: the locks a watcher holds while it runs.

Owns: the lock files and what they identify. The main lock lives in the inbox itself
(`.imr-packet-watch.lock`, hidden), so every watcher that reaches the inbox, by whatever path (a
bind mount, a symbolic link, another TMPDIR or systemd's PrivateTmp=yes), contends for the same
file; a second lock in the state folder keeps two watchers off one state. A third, best-effort lock
in the temporary folder names the inbox by device and inode; a watcher that stops removes that one
(it is the only one in a folder shared with everything else, one per inbox ever watched), while it
still holds it. The locks are `flock` locks, so the kernel releases them when the process dies
(kill -9 included): a stale lock file never blocks a restart. A lock file deleted while held (a clerk tidying the share) is noticed and taken again.
Must not: decide anything else; the lock files hold only the process id and host, never a case.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import tempfile
from pathlib import Path

from packet.config import Config
from packet.errors import AlreadyRunning, ConfigError

INBOX_LOCK_NAME = ".imr-packet-watch.lock"
STATE_LOCK_NAME = "watch.lock"


def inbox_identity(inbox: Path) -> tuple[int, int]:
    """(device, inode) of the inbox folder: the same for every path that reaches it."""
    st = os.stat(inbox)
    return st.st_dev, st.st_ino


def lock_paths(config: Config) -> list[Path]:
    """The lock files of this configuration's inbox, the one that must succeed first."""
    dev, ino = inbox_identity(config.paths.inbox)
    return [config.paths.inbox / INBOX_LOCK_NAME, config.paths.state / STATE_LOCK_NAME,
            Path(tempfile.gettempdir()) / f"imr-packet-watch-{dev:x}-{ino:x}.lock"]


class _Held:
    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd

    def intact(self) -> bool:
        """Is the file we hold still the one at our path (not deleted or replaced)?"""
        try:
            on_disk = os.lstat(self.path)
            held = os.fstat(self.fd)
        except OSError:
            return False
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def release(self, *, remove: bool = False) -> None:
        """Unlock and close; with `remove`, first delete the file if it is still ours (while we hold
        it, so a watcher starting now either fails to lock our file or creates a new one)."""
        try:
            if remove and self.intact():
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def _lock(path: Path) -> _Held:
    """Take `path`'s lock or raise AlreadyRunning; OSError when the file cannot be opened at all."""
    for _ in range(3):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning(
                    f"another watcher is already running for this inbox (lock {path}); stop it first, "
                    "or give this one its own inbox and state folders") from exc
            raise
        held = _Held(path, fd)
        if held.intact():  # else the file was removed between open and flock: take the new one
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            return held
        held.release()
    raise AlreadyRunning(f"the lock {path} keeps changing; is another watcher starting?")


class WatchLock:
    """The locks of one running watcher (see the module docstring). Use as a context manager."""

    def __init__(self, config: Config):
        self.config = config
        self.held: list[_Held] = []
        self.temporary: Path | None = None  # the temporary folder's lock, removed on release

    def acquire(self) -> WatchLock:
        paths = lock_paths(self.config)
        self.temporary = paths[-1]
        try:
            for index, path in enumerate(paths):
                try:
                    self.held.append(_lock(path))
                except AlreadyRunning:
                    raise
                except OSError as exc:
                    if index == len(paths) - 1:
                        continue  # the shared temporary folder is not writable: the others hold
                    raise ConfigError(f"cannot create the lock file {path} ({exc.strerror}): the service "
                                      "needs to write in its inbox and state folders") from exc
        except BaseException:
            self.release()
            raise
        return self

    def check(self) -> bool:
        """Take again any lock whose file was deleted; False if another watcher got in meanwhile."""
        for index, held in enumerate(self.held):
            if held.intact():
                continue
            held.release()
            try:
                self.held[index] = _lock(held.path)
            except (AlreadyRunning, OSError):
                del self.held[index]
                return False
        return True

    def release(self) -> None:
        while self.held:
            held = self.held.pop()
            held.release(remove=held.path == self.temporary)

    def __enter__(self) -> WatchLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
