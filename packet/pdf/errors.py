"""The pdf room's error: a packet that cannot be assembled.

Owns: `AssemblyError` and `StreamLimitError`, and the reason of an AssemblyError raised because pypdf
stopped at the inflation bound (`INFLATION_LIMIT`). Must not: hold anything else.
"""

from __future__ import annotations

from packet.errors import PacketError

# A document's stream or page content decodes past `[limits] max_inflated_bytes` (pypdf stopped at
# its cap, set to that bound): the file is refused naming the limit, never as damaged.
INFLATION_LIMIT = "inflation_limit"


class AssemblyError(PacketError):
    """A document could not be merged (it changed since intake, or pypdf cannot read it), or an
    output would break a limit."""

    reason = "assembly"

    def __init__(self, message: str, *, reason: str | None = None, document: str | None = None):
        super().__init__(message, reason=reason)
        self.document = document  # the SHA-256 of the one document at fault, when there is one


class StreamLimitError(AssemblyError):
    """An output would carry a stream that inflates past `[limits] max_stream_bytes`. `page` is
    the output page (0-based) that reaches it, when one does."""

    reason = "stream_limit"

    def __init__(self, message: str, *, page: int | None = None, document: str | None = None):
        super().__init__(message, document=document)
        self.page = page
