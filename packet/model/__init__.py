"""The project's own types and facts of a case: case.toml, the frozen dataclasses, the build context,
the numbered page list and the deadlines.

Owns: data and pure computations on it. Must not touch: files of the outbox/archive/state, PDFs,
worker processes, or any higher room.
"""
