"""What every output renderer of one build needs to know, in one frozen value."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from packet.model.case import CaseFacts
from packet.config import Config
from packet.model.models import Deadline


@dataclass(frozen=True)
class GateOverride:
    item: str
    reason: str
    by: str


@dataclass(frozen=True)
class BuildContext:
    config: Config
    facts: CaseFacts
    deadline: Deadline
    submission: int  # 1, 2, ... (a draft carries the number it would be sealed as)
    kind: str  # initial | supplement | response | draft
    generated_at: dt.datetime  # fixed per submission, so a rebuild gives byte-identical files
    draft: bool = False  # drafts carry a DRAFT watermark on every page
    gate_overrides: tuple[GateOverride, ...] = ()
    request_id: str | None = None  # kind "response": the [[info_requests]] id this submission answers
    info_requests: tuple[dict, ...] = ()  # each information request's clock, as the manifest records it
