"""Which file-system observer the watcher uses, and how its events become "this case changed".

Owns: reading the inbox's file-system type (/proc/self/mountinfo) to choose between inotify and
polling (network shares do not report other machines' changes), starting watchdog's observer (with a
fall-back to polling when inotify cannot start), and reducing every event to the name of the case
folder it concerns, or a rescan request. Must not: look inside files or decide anything about them.
"""

from __future__ import annotations

import os
import queue

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from packet.config import Config
from packet.intake.folder import is_ignored_dir, is_junk
from packet.log import log

# File-system types on which inotify does not see other machines' changes (packet "auto" polling).
NETWORK_FS_TYPES = frozenset({
    "cifs", "smb", "smb2", "smb3", "smbfs", "nfs", "nfs4", "ncpfs", "afs", "coda", "9p", "virtiofs",
    "vboxsf", "vmhgfs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "davfs", "fuse",
    "sshfs", "ocfs2", "gfs2", "orangefs"})

RESCAN = object()  # put on the event queue: the inbox itself changed, look at every folder


def _unescape_mount(field_text: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    out, i = [], 0
    while i < len(field_text):
        if field_text[i] == "\\" and i + 4 <= len(field_text) and field_text[i + 1:i + 4].isdigit():
            out.append(chr(int(field_text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def filesystem_type(path, mountinfo: str | None = None) -> str | None:
    """The type of the file system holding `path` (e.g. "ext4", "cifs"), from /proc/self/mountinfo."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
                mountinfo = handle.read()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        if len(fields) < 5 or not right.split():
            continue
        mount_point = _unescape_mount(fields[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):  # the last, deepest mount wins
            best, best_type = mount_point, right.split()[0]
    return best_type


def is_network_fs(fs_type: str | None) -> bool:
    if not fs_type:
        return False
    return fs_type in NETWORK_FS_TYPES or fs_type.startswith("fuse.") or fs_type.startswith("nfs")


def choose_polling(config: Config, mountinfo: str | None = None) -> tuple[bool, str]:
    """(use the polling observer?, why) per `[watch] polling` and the inbox's file system."""
    mode = config.watch.polling
    if mode == "always":
        return True, "configured"
    if mode == "never":
        return False, "configured"
    fs_type = filesystem_type(config.paths.inbox, mountinfo)
    if is_network_fs(fs_type):
        return True, "network_fs"
    return False, "local_fs"


class _Handler(FileSystemEventHandler):
    """Turns any event into the name of the case folder it concerns (or a rescan request)."""

    def __init__(self, inbox, events: queue.Queue):
        super().__init__()
        self.inbox_text = os.path.realpath(inbox)
        self.events = events

    def on_any_event(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # our own reads (hashing, converting) must not look like changes
        for raw in (event.src_path, getattr(event, "dest_path", "") or ""):
            if not raw:
                continue
            rel = os.path.relpath(os.fsdecode(raw), self.inbox_text)
            if rel == ".":
                self.events.put(RESCAN)
                continue
            if rel.startswith(".."):
                continue
            parts = rel.split(os.sep)
            if is_ignored_dir(parts[0]):
                continue
            if len(parts) > 1:
                inner = parts[1:]
                if any(is_ignored_dir(p) for p in inner[:-1]) or is_ignored_dir(inner[0]):
                    continue  # _rejected/, .git/ ...: the service's own or hidden folders
                if inner[-1] == "_STATUS.txt" or (is_junk(inner[-1]) and event.event_type != "moved"):
                    continue
            self.events.put(parts[0])


def _polling_observer(config: Config):
    # Poll often enough to notice changes within the settle time, but not hammer a share.
    return PollingObserver(timeout=min(max(config.watch.settle_seconds / 2, 0.25), 5.0))


def start_observer(config: Config, events: queue.Queue, polling: bool):
    """A started watchdog observer putting case names (or RESCAN) on `events`."""
    observer = _polling_observer(config) if polling else Observer()
    observer.schedule(_Handler(config.paths.inbox, events), str(config.paths.inbox), recursive=True)
    observer.daemon = True
    try:
        observer.start()
    except OSError as exc:
        # e.g. the inotify watch limit: fall back to polling rather than missing changes.
        log("observer_fallback", level="warning", error=type(exc).__name__.lower(), reason="polling")
        observer = _polling_observer(config)
        observer.schedule(_Handler(config.paths.inbox, events), str(config.paths.inbox), recursive=True)
        observer.daemon = True
        observer.start()
    return observer
