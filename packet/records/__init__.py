"""The service's records: where every output, archive and state file lives, the manifest, per-case
registers, the tamper-evident audit log and the watcher's per-file records.

Owns: file names and folder layout of outbox/archive/state and their I/O. Must not touch: how
documents are converted, classified or rendered.
"""
