"""Small file-system helpers every writer uses: atomic writes, private modes, hashing.

Owns: how the service writes files (whole or not at all, readable by owner and group only).
Must not: know anything about cases or documents.
"""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o640  # owner read/write, group read: PHI is never world-readable
DIR_MODE = 0o750
PRIVATE_UMASK = 0o027


def no_core_files(*, for_good: bool = False) -> None:
    """No core file from this process or the programs it starts: a parser that crashes on a hostile
    file would otherwise write its memory, the records it was reading, into its working folder. The
    service's processes set the soft limit (a person may still raise it to debug); a worker, which
    reads the clerks' files, sets the hard limit too."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0 if for_good else hard))


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents) with the private directory mode; return it."""
    path = Path(path)
    if path.is_dir():
        return path
    missing = []
    parent = path
    while not parent.is_dir():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):  # every folder we create is private, not just the last
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)
    return path


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = FILE_MODE, durable: bool = True) -> Path:
    """Write `data` to `path` so a reader sees the old file or the new one, never half of one.
    `durable`: on disk (file and folder synced) before returning. Without it a crash of the machine
    may leave the old file, an empty one or a torn one: only for data its reader checks and can
    make again (the conversion cache)."""
    with atomic_writer(path, mode=mode, durable=durable) as handle:
        handle.write(data)
    return Path(path)


@contextmanager
def atomic_writer(path: Path, *, mode: int = FILE_MODE, durable: bool = True) -> Iterator[BinaryIO]:
    """`atomic_write_bytes` for a writer that writes as it goes (a large PDF is never held whole in
    memory): the block writes into a hidden file beside `path`, which replaces `path` when the block
    ends, or is removed if it raises."""
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int = FILE_MODE, durable: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode, durable=durable)


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class NotPlainFile(OSError):
    """A clerk's file that is not (or no longer) the plain file the folder walk found: `why` is
    "link" (a symbolic link), "hard_link" (more than one name), "not_regular" (a pipe, a device, a
    folder) or "replaced" (another file now has its name)."""

    def __init__(self, why: str):
        super().__init__(f"not a plain file ({why})")
        self.why = why


def open_plain_file(path: Path, identity: tuple[int, int] | None = None) -> int:
    """A read-only descriptor of `path`, opened without following a link, after checking on the
    descriptor itself (so nothing can be swapped in between) that it is a regular file with one
    name and, when `identity` (device, inode) is given, the very file that was found earlier.
    NotPlainFile otherwise; OSError when it cannot be opened at all."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotPlainFile("link") from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotPlainFile("not_regular")
        if info.st_nlink != 1:
            raise NotPlainFile("hard_link")
        if identity is not None and (info.st_dev, info.st_ino) != tuple(identity):
            raise NotPlainFile("replaced")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_plain_file(path: Path, identity: tuple[int, int] | None = None) -> bytes:
    """The bytes of `path`, read from a descriptor `open_plain_file` checked."""
    with os.fdopen(open_plain_file(path, identity), "rb") as handle:
        return handle.read()


def file_size(path: Path | str) -> int:
    """The size of the file at `path` in bytes; 0 when it cannot be read."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def tree_bytes(root: Path, *, enough: int | None = None) -> int:
    """The bytes of the plain files under `root` (links not followed, unreadable entries skipped);
    the walk stops once `enough` is reached."""
    total = 0
    for folder, _dirs, names in os.walk(root, onerror=lambda _error: None):
        for name in names:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
                if enough is not None and total >= enough:
                    return total
    return total


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def short_hash(sha256: str) -> str:
    """The short form of a document hash used in the service log (never a file name)."""
    return sha256[:12]


def make_private_tree(root: Path) -> None:
    """Force FILE_MODE/DIR_MODE on everything under `root` (for folders built by other tools)."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, DIR_MODE)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), FILE_MODE)


def claim_once(folder: Path, name: str) -> bool:
    """Claim `name` in `folder` (a private folder processes share): True for the one caller that
    creates it first, False for every other, whichever process it is in (O_EXCL is atomic)."""
    try:
        os.close(os.open(Path(folder) / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True
