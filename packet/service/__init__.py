"""The running service: the watcher turning file-system events into builds and seals, `status`, and
the case board.

Owns: scheduling (watch: the loop; observer: inotify or polling; lock: one watcher per inbox;
settle: when a file is complete; scheduler: when a case is built or sealed; progress: the interim
`_STATUS.txt` notes while it works; folders: what the watcher writes in the inbox besides notes) and
what operators see of the whole inbox (status, board).
Must not: be imported by any lower room; convert, classify or write packets itself (the library does).
"""
