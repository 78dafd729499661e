"""The pdf room's error: a packet that cannot be assembled.

Owns: `AssemblyError`. Must not: hold anything else.
"""

from __future__ import annotations

from packet.errors import PacketError


class AssemblyError(PacketError):
    """A document could not be merged (it changed since intake, or pypdf cannot read it), or an
    output would break a limit."""

    reason = "assembly"
