"""`_STATUS.txt`: the plain-language note the service leaves in each case folder for the clerk.

Owns: the wording and layout of that note, from a gathered case (`for_snapshot`), a refused seal
or a case error. Must not: decide anything; it reports what the recipe found.
"""

from __future__ import annotations

import datetime as dt
import errno
from pathlib import Path

from packet.config import Config
from packet.errors import PacketError
from packet.fsutil import atomic_write_text
from packet.intake.folder import decision_authors
from packet.model.deadlines import InfoRequestClock, time_left_text
from packet.model.models import CATEGORY_ORDER, CATEGORY_TITLES, NEEDS_REVIEW, Deadline, Document, Rejected
from packet.pipeline.gather import CaseSnapshot
from packet.records.layout import ORG_PACKET, PRINT_DIR, submission_dir, try_read_manifest

STATUS_FILE = "_STATUS.txt"


def when_text(value: dt.datetime, tz) -> str:
    """"Tuesday December 1, 2026 at 3:42 PM PST": no leading zeros, the plan's time zone."""
    local = value.astimezone(tz)
    hour = local.hour % 12 or 12
    return f"{local:%A %B} {local.day}, {local.year} at {hour}:{local:%M %p %Z}"


_when = when_text


def _section(lines: list[str], heading: str, items: list[str]) -> None:
    """A heading, one "  - item" line each, and a blank line; nothing when there are no items."""
    if items:
        lines.append(heading)
        lines += [f"  - {item}" for item in items]
        lines.append("")


def render(*, case_id: str, now: dt.datetime, tz, headline: str, case_problems: list[str] = (),
           deadline: Deadline | None = None, documents: list[Document] = (), rejected: list[Rejected] = (),
           waiting: list[str] = (), retrying: list[str] = (), blocking: list[str] = (),
           attention: dict[str, list[str]] | None = None, submission_note: str | None = None,
           info_clocks: list[InfoRequestClock] = (), show_receipts: bool = False,
           decisions: list[str] = (), held: list[str] = ()) -> str:
    lines = [f"Case {case_id}: {headline}", f"Updated {_when(now, tz)}", ""]
    if deadline is not None:
        lines += [f"Due: {_when(deadline.due, tz)} ({time_left_text(deadline, now)})",
                  f"     rule: {deadline.rule}", ""]
    if submission_note:
        lines += [submission_note, ""]
    _info_requests(lines, list(info_clocks), now, tz)
    _section(lines, "case.toml needs fixing before anything else can happen:", list(case_problems))
    _section(lines, "Before this case can be sealed:", list(blocking))
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
                if d.removed_pages:
                    lines.append(f"        {len(d.removed_pages)} page(s) removed by a person"
                                 f"{' (' + d.removed_by + ')' if d.removed_by else ''}: not sent anywhere")
                if show_receipts or d.received_how:
                    lines.append(f"        {receipt_text(d, tz)}")
                for item in (attention or {}).get(d.source, []):
                    lines.append(f"        needs a person: {item}")
        lines.append("")
    excluded = [d for d in documents if d.excluded is not None]
    _section(lines, "Excluded by a person (overrides.toml):", [f"{d.source}: {d.excluded}" for d in excluded])
    _section(lines, "Decisions by people (who, when):", list(decisions))
    _section(lines, "Waiting for these files to finish copying:", list(waiting))
    _section(lines, "Held for a later submission (they stay here): answers to an information request "
             "(responses/<request-id>/) go in their own response submission after the initial one, one "
             "request a submission, the one due first sealed first:", list(held))
    _section(lines, "Could not be read yet; the service will try again:", list(retrying))
    if rejected:
        lines.append("Files not used (moved to _rejected/, with a note saying why):")
        for r in rejected:
            lines.append(f"  - {r.source}: {r.message}")
            lines.append(f"        what to do: {r.what_to_do}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def receipt_text(document: Document, tz) -> str:
    """Where a document's receipt time (the supplement clock's start) came from, in plain words."""
    if document.received_how:
        return f"received {_when(document.received_at, tz)} ({document.received_how})"
    return (f"dropped {_when(document.received_at, tz)} (no receipt recorded: the drop time is used; "
            "if the plan received it earlier, write received = <date> for it in overrides.toml)")


def _info_requests(lines: list[str], clocks: list[InfoRequestClock], now: dt.datetime, tz) -> None:
    """Each information request of the IMR organization with its own clock (issue 15 item 1)."""
    if not clocks:
        return
    lines.append("Information requested by the IMR organization (answer in responses/<request id>/):")
    for clock in clocks:
        if clock.answered_at is None:
            state = f"due {_when(clock.deadline.due, tz)} ({time_left_text(clock.deadline, now)})"
        else:
            state = clock.state(now) + f" on {_when(clock.answered_at, tz)} (due {_when(clock.deadline.due, tz)})"
        mark = "!!! " if clock.overdue(now) else ""
        lines.append(f"  - {mark}{clock.request_id}: {clock.request.what}")
        lines.append(f"        received {_when(clock.deadline.clock_start, tz)}; {state}")
        lines.append(f"        rule: {clock.deadline.rule}")
    lines.append("")


def write(case_dir: Path, text: str) -> Path:
    return atomic_write_text(Path(case_dir) / STATUS_FILE, text)


def sealed_note(config: Config, case_id: str, number: int) -> str | None:
    """'Submission N was sealed on <time> (on time).' from that submission's manifest."""
    tz = config.calendar.tz
    manifest = try_read_manifest(submission_dir(config, case_id, number))
    try:
        sealed_at = dt.datetime.fromisoformat(manifest["sealed_at"]).astimezone(tz)
    except (ValueError, KeyError, TypeError):
        return None
    timing = {True: " (on time)", False: " (LATE: after the due time)"}.get(manifest.get("on_time"), "")
    folder = submission_dir(config, case_id, number)
    lines = [f"Submission {number} was sealed on {when_text(sealed_at, tz)}{timing}.", f"  The submission: {folder}"]
    outputs = {o.get("file"): o for o in manifest.get("outputs") or [] if isinstance(o, dict)}
    pages = (outputs.get(ORG_PACKET) or {}).get("pages")
    if isinstance(pages, int):
        lines.append(f"  The packet for the IMR organization ({ORG_PACKET}): {pages} page(s).")
    print_dir = config.paths.outbox / PRINT_DIR
    marker = f"-{case_id}-s{number:02d}-"
    try:
        prints = sorted(p.name for p in print_dir.iterdir() if marker in p.name and not p.name.startswith("."))
    except OSError:
        prints = []
    if prints:
        lines.append(f"  In the mailroom's print folder {print_dir}:")
        lines += [f"    - {name}" for name in prints]
    else:
        lines.append(f"  No mailing of this submission is in the print folder {print_dir} now.")
    return "\n".join(lines)


def for_snapshot(snapshot: CaseSnapshot, config: Config, *, sealed: bool = False) -> str:
    """The note after a build of `snapshot`, or (`sealed`) right after the snapshot was sealed: its
    documents have left the case folder, and files dropped now start the next submission."""
    tz = config.calendar.tz
    documents = [] if sealed else list(snapshot.documents)
    submission = snapshot.submission + 1 if sealed else snapshot.submission
    kind = "supplement" if sealed else snapshot.kind
    blocking = [item.text for item in snapshot.blocking]
    deadline = snapshot.deadline
    if not documents and kind == "supplement":
        headline = (f"submission {submission - 1} is sealed; files dropped here now start "
                    f"supplemental submission {submission}")
        # Nothing is pending: the sealed submission's deadline is met and "no documents" blocks
        # nothing a clerk must do. Say when it was sealed instead.
        deadline, blocking = None, []
    elif not documents:
        headline = "waiting for documents"
    elif blocking:
        headline = f"draft ready; {len(blocking)} thing(s) to fix before sealing"
    else:
        headline = "draft ready; drop a file named READY (READY.txt works too) to seal it"
    submission_note = (f"Supplemental submission {submission}: new records are due 1 day after they arrive."
                       if kind == "supplement" else None)
    if kind == "response" and snapshot.request_id:
        submission_note = (f"Response submission {submission}: answers the IMR organization's information "
                           f"request {snapshot.request_id}.")
    if not documents and kind == "supplement":
        note = sealed_note(config, snapshot.case_id, submission - 1)
        if note:
            submission_note = f"{note}\n{submission_note}"
    if snapshot.facts.member.confidential_address:
        mail = ("Mail to the member goes to the confidential communication address in case.toml "
                "(confidential_address, Civ. 56.107), not to the home address.")
        submission_note = f"{submission_note}\n{mail}" if submission_note else mail
    return render(case_id=snapshot.case_id, now=snapshot.now, tz=tz, headline=headline, deadline=deadline,
                  documents=documents, rejected=list(snapshot.rejected),
                  waiting=list(snapshot.waiting),
                  retrying=sorted(snapshot.transient), blocking=blocking,
                  attention=snapshot.attention() if documents else {}, submission_note=submission_note,
                  info_clocks=list(snapshot.info_clocks_if_sealed(config, snapshot.now) if sealed
                                   else snapshot.info_clocks), show_receipts=kind in ("supplement", "response"),
                  decisions=[] if sealed else decision_lines(config, snapshot.case_id),
                  held=list(snapshot.held))


def decision_lines(config: Config, case_id: str) -> list[str]:
    """Each decision now in force in overrides.toml, with the person who made it and when."""
    tz = config.calendar.tz
    lines = []
    for relpath, table in sorted(decision_authors(config, case_id).items()):
        for decision, who in sorted(table.items()):
            if not isinstance(who, dict):
                continue
            try:
                when = _when(dt.datetime.fromisoformat(str(who.get("at"))), tz)
            except ValueError:
                when = "at an unknown time"
            via = "the review desk" if who.get("via") == "desk" else "overrides.toml"
            lines.append(f"{relpath}: {decision.replace('_', ' ')} by {who.get('by') or 'unknown'}, {when} ({via})")
    return lines


def error_reason(exc: BaseException) -> str:
    """What went wrong, in a few plain words (no document text)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if isinstance(exc, OSError):
        return f"a file could not be read or written ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, PacketError):
        return exc.message
    return f"an unexpected error ({type(exc).__name__})"


def write_error(case_dir: Path, *, case_id: str, now: dt.datetime, tz, exc: BaseException, doing: str) -> None:
    """Tell the clerk the case is stuck, and why. Best effort, even on a full disk: when the note
    cannot be replaced atomically, the old one is overwritten in place (its blocks are reused)."""
    text = render(case_id=case_id, now=now, tz=tz, headline=f"STUCK: {doing} failed: {error_reason(exc)}",
                  submission_note="Nothing was lost and your files are untouched; the service tries again when "
                                  "the case changes or restarts. If this note stays, tell your IT contact.")
    try:
        write(case_dir, text)
        return
    except OSError:
        pass
    try:
        with open(Path(case_dir) / STATUS_FILE, "r+b") as handle:
            data = text.encode("utf-8")
            handle.write(data)
            handle.truncate(len(data))
    except OSError:
        pass
