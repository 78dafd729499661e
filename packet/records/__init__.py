"""The service's records: where every output, archive and state file lives (layout: the one owner
of those paths and of manifest.json I/O), the manifest's shape, the archive snapshot, per-case
registers, the tamper-evident audit log with its anchors and export, and the watcher's per-file
records.

Owns: file names and folder layout of outbox/archive/state and their I/O. Must not touch: how
documents are converted, classified or rendered, or anything in packet.pipeline and above.
"""
