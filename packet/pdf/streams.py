"""The stream bound of outputs: the builder (while writing an output) and `verify` (reading one
back) apply `inflated_beyond(stream, limit)` to every stream, so an output never carries a stream
that decodes to more than `[limits] max_stream_bytes`.

Owns: nothing of its own: the measure is the one the worker applies to a clerk's PDF
(`packet.intake.convert.streams`), so an input and an output are bounded by the same decoders.
Must not: change a stream, or decode one whole when its size is in doubt.
"""

from __future__ import annotations

from packet.intake.convert.streams import inflated_beyond, stream_filters

__all__ = ["inflated_beyond", "stream_filters"]
