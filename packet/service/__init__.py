"""The running service: the watcher turning file-system events into builds and seals, `status`, and
the case board.

Owns: scheduling and what operators see of the whole inbox. Must not be imported by any lower room.
"""
