"""`_STATUS.txt`: the plain-language note the service leaves in each case folder for the clerk.

Owns: the wording and layout of that note. Must not: decide anything; it reports a build's result.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .deadlines import time_left_text
from .fsutil import atomic_write_text
from .models import CATEGORY_ORDER, CATEGORY_TITLES, NEEDS_REVIEW, Deadline, Document, Rejected

STATUS_FILE = "_STATUS.txt"


def when_text(value: dt.datetime, tz) -> str:
    """"Tuesday December 1, 2026 at 3:42 PM PST": no leading zeros, the plan's time zone."""
    local = value.astimezone(tz)
    hour = local.hour % 12 or 12
    return f"{local:%A %B} {local.day}, {local.year} at {hour}:{local:%M %p %Z}"


_when = when_text


def render(*, case_id: str, now: dt.datetime, tz, headline: str, case_problems: list[str] = (),
           deadline: Deadline | None = None, documents: list[Document] = (), rejected: list[Rejected] = (),
           waiting: list[str] = (), retrying: list[str] = (), blocking: list[str] = (),
           attention: dict[str, list[str]] | None = None, submission_note: str | None = None) -> str:
    lines = [f"Case {case_id}: {headline}", f"Updated {_when(now, tz)}", ""]
    if deadline is not None:
        lines += [f"Due: {_when(deadline.due, tz)} ({time_left_text(deadline, now)})",
                  f"     rule: {deadline.rule}", ""]
    if submission_note:
        lines += [submission_note, ""]
    if case_problems:
        lines.append("case.toml needs fixing before anything else can happen:")
        lines += [f"  - {p}" for p in case_problems]
        lines.append("")
    if blocking:
        lines.append("Before this case can be sealed:")
        lines += [f"  - {b}" for b in blocking]
        lines.append("")
    included = [d for d in documents if d.excluded is None]
    if included:
        lines.append(f"Documents taken ({len(included)}):")
        for category in (*CATEGORY_ORDER, NEEDS_REVIEW):
            docs = [d for d in included if d.category.value == category]
            if not docs:
                continue
            lines.append(f"  {CATEGORY_TITLES[category]}:")
            for d in sorted(docs, key=lambda d: d.source):
                flags = []
                if d.is_privileged:
                    flags.append("PRIVILEGED")
                if d.is_withheld:
                    flags.append("withheld from member")
                if d.identity.value == "mismatch":
                    flags.append("!!! ANOTHER MEMBER'S DATA?")
                elif d.identity.value == "not_found":
                    flags.append("member not found in text")
                flag_text = f"  [{', '.join(flags)}]" if flags else ""
                lines.append(f"    - {d.source} ({d.pages} p.){flag_text}")
                lines.append(f"        why: {d.category.reason}")
                for item in (attention or {}).get(d.source, []):
                    lines.append(f"        needs a person: {item}")
        lines.append("")
    excluded = [d for d in documents if d.excluded is not None]
    if excluded:
        lines.append("Excluded by a person (overrides.toml):")
        lines += [f"  - {d.source}: {d.excluded}" for d in excluded]
        lines.append("")
    if waiting:
        lines.append("Waiting for these files to finish copying:")
        lines += [f"  - {w}" for w in waiting]
        lines.append("")
    if retrying:
        lines.append("Could not be read yet; the service will try again:")
        lines += [f"  - {r}" for r in retrying]
        lines.append("")
    if rejected:
        lines.append("Files not used (moved to _rejected/, with a note saying why):")
        for r in rejected:
            lines.append(f"  - {r.source}: {r.message}")
            lines.append(f"        what to do: {r.what_to_do}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(case_dir: Path, text: str) -> Path:
    return atomic_write_text(Path(case_dir) / STATUS_FILE, text)
