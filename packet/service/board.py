"""The case board: outbox/index.html and one page per case in outbox/_board/<CASE-ID>.html.

Owns: the static HTML pages an auditor, clerk or supervisor opens from the shared drive in any
browser: every case with its state, due time and time left (overdue in red, due within 24 hours
highlighted), its submissions with links to their packets, manifests and mailings; per case, the
document table (category, flags and their reasons, identity, Bates range) and the case's audit
events. Static: no server, no JavaScript, inline CSS, relative links only, so the outbox can be
copied or opened from a mapped drive. Every value is HTML-escaped (jinja2 autoescape).

Must not: decide anything or change any case. It reads case.toml (packet.model.case), the manifests of
drafts and sealed submissions, review.json, READY markers and the audit log, and writes only the
board pages, each atomically (packet.fsutil). An unreadable case or manifest is shown as such,
never a crash: the board must still list every other case.

Case state, due time and what blocks a case come from `packet.service.status` (the one place that derives
them); this module adds the files to link and the documents and audit events to show.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import DictLoader, Environment, StrictUndefined

from packet.records import audit
from packet.records.layout import BOARD_DIR, DRAFT_DIR, MANIFEST, ORG_PACKET, PRINT_DIR, REVIEW
from packet.model.case import load_case, valid_case_id
from packet.config import Config
from packet.model.deadlines import InfoRequestClock, time_left_text
from packet.errors import CaseError, TemplateError
from packet.mailings.annotated import neutral_description
from packet.mailings.templates import CompiledTemplates, Templates
from packet.mailings.taglines import prepare_fonts
from packet.mailings.templates import write_compiled as write_mailings
from packet.fsutil import atomic_write_text, ensure_dir
from packet.model.models import CATEGORY_TITLES, Deadline
from packet.intake.folder import PRIVILEGED_FOLDER
from packet.log import log_exception
from packet.pipeline.statusnote import STATUS_FILE
from packet.service.progress import read_note
from packet.service.status import (DUE_SOON, INVALID_FOLDER, SEALED, STATE_TEXT, CaseStatus, case_status,
                                   collect_status, parse_time, sort_cases)

INDEX = "index.html"
SOON = dt.timedelta(hours=24)
# The files of a submission folder, in the order the board lists them; others follow by name.
KNOWN_OUTPUTS = (ORG_PACKET, "member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf",
                 "annotated-list.csv", "notice-letter.docx", MANIFEST, REVIEW)
MAX_EVENTS = 2000  # per case page: the newest ones; the full record is state/audit.jsonl
REFRESH_SECONDS = 60  # an open browser reloads the board this often
NEUTRAL_PRIVILEGED = "A privileged document (not named here)"
NEUTRAL_WITHHELD = "A document withheld from the member (not named here)"
HIDDEN_TEXT = "[a privileged or withheld document]"


@dataclass(frozen=True)
class Link:
    label: str
    path: str  # POSIX path relative to the outbox


@dataclass(frozen=True)
class SubmissionView:
    """A sealed submission or the current draft, as the board shows it."""

    label: str  # "Submission 01 (initial)", "Draft (would be submission 02)"
    folder: str  # relative to the outbox: CASE/submission-01
    kind: str
    sealed_at: dt.datetime | None
    due: dt.datetime | None
    on_time: bool | None
    documents: tuple[dict, ...]
    rejected: tuple[dict, ...]
    overrides: tuple[dict, ...]
    links: tuple[Link, ...]
    problem: str | None = None  # manifest unreadable
    hidden: frozenset[str] = frozenset()  # names and titles of privileged or withheld documents


@dataclass(frozen=True)
class RequestView:
    """One information request of the IMR organization with its clock (issue 15 item 1)."""

    request_id: str
    what: str
    received: dt.datetime
    due: dt.datetime
    time_left: str  # "2 days left", "OVERDUE by 3 hours", "answered on time", "answered LATE by ..."
    urgency: str  # overdue | soon | open | closed
    answered_by: int | None


@dataclass(frozen=True)
class CaseView:
    case_id: str
    state: str
    detail: tuple[str, ...]  # what blocks it, problems with case.toml, ...
    due: dt.datetime | None
    time_left: str
    urgency: str  # overdue | soon | open | closed | unknown
    review_type: str | None
    ready: bool
    submissions: tuple[SubmissionView, ...]
    draft: SubmissionView | None
    mailings: tuple[Link, ...]
    events: tuple[dict, ...] = field(default=())
    page: bool = True  # has a page of its own (not for a folder whose name is not a case id)
    note: str | None = None  # the first line of the case's _STATUS.txt, after "Case <id>: "
    note_updated: str | None = None  # its "Updated ..." line
    note_path: str | None = None  # _STATUS.txt relative to the outbox (may start with ../)
    hidden: frozenset[str] = frozenset()  # names and titles never shown (privileged, withheld)
    requests: tuple[RequestView, ...] = ()  # the IMR organization's information requests

    @property
    def sections(self) -> tuple[SubmissionView, ...]:
        """The sealed submissions, then the draft."""
        return self.submissions + ((self.draft,) if self.draft else ())


# --- reading the files --------------------------------------------------------------------------

def _read_json(path: Path) -> tuple[dict | None, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"{path.name} cannot be read ({type(exc).__name__})"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, None


def _folder_links(outbox: Path, folder: Path) -> tuple[Link, ...]:
    if not folder.is_dir():
        return ()
    names = [p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    ordered = [n for n in KNOWN_OUTPUTS if n in names] + sorted(n for n in names if n not in KNOWN_OUTPUTS)
    return tuple(Link(name, (folder / name).relative_to(outbox).as_posix()) for name in ordered)


def _sensitive(doc: dict) -> bool:
    return bool(doc.get("privileged") or doc.get("withheld_from_member"))


def _hidden_names(docs: tuple[dict, ...]) -> frozenset[str]:
    """The names and titles of privileged and withheld documents, which the board never shows."""
    names = set()
    for doc in docs:
        if _sensitive(doc):
            for value in (doc.get("source"), doc.get("title")):
                if isinstance(value, str) and value.strip():
                    names.add(value)
                    base = value.rsplit("/", 1)[-1]
                    if len(base) >= 4:
                        names.add(base)
    return frozenset(names)


def mask(text: str, hidden: frozenset[str]) -> str:
    """`text` with every hidden name replaced by a neutral description."""
    for name in sorted(hidden, key=len, reverse=True):
        text = text.replace(name, HIDDEN_TEXT)
    return text


def _neutral_document(doc: dict, labels: dict[str, Any] | None = None) -> dict:
    """A privileged or withheld document as the board shows it: what it is, never its name or title
    (the annotated list's neutral description, issue 15 item 7: kind, author's role, date)."""
    if not _sensitive(doc):
        return doc
    description = NEUTRAL_PRIVILEGED if doc.get("privileged") else NEUTRAL_WITHHELD
    if labels:
        privileged = bool(doc.get("privileged"))
        neutral = neutral_description(
            labels, category=str(doc.get("category") or ""), category_rule=str(doc.get("category_reason") or ""),
            flag_rule=str(doc.get("privilege_reason" if privileged else "withheld_reason") or ""),
            privileged=privileged)
        role = f" by {neutral.role[:1].lower()}{neutral.role[1:]}" if neutral.role else ""
        description += f": {neutral.kind}{role}"
    kept = {key: doc.get(key) for key in ("category", "pages", "bates_first", "bates_last", "privileged",
                                          "withheld_from_member", "excluded", "date")}
    identity = doc.get("identity")
    kept["identity"] = identity if identity == "confirmed" else "needs a person (see the packet)"
    return {**kept, "title": description, "neutral": True}


def _neutral_rejected(row: dict, hidden: frozenset[str]) -> dict:
    source = row.get("source")
    parts = source.split("/") if isinstance(source, str) else []
    text = " ".join(str(row.get(key) or "") for key in ("source", "reason"))
    if PRIVILEGED_FOLDER in parts[:-1] or any(name in text for name in hidden):
        return {"source": "A file not named here (privileged or withheld)", "reason": row.get("reason_code") or ""}
    return row


def _submission_view(outbox: Path, folder: Path, label: str, labels: dict[str, Any] | None = None) -> SubmissionView:
    manifest, problem = _read_json(folder / MANIFEST)
    manifest = manifest or {}
    deadline = manifest.get("deadline") if isinstance(manifest.get("deadline"), dict) else {}

    def rows(key: str) -> tuple[dict, ...]:
        value = manifest.get(key)
        return tuple(item for item in value if isinstance(item, dict)) if isinstance(value, list) else ()

    documents = rows("documents")
    hidden = _hidden_names(documents)
    return SubmissionView(
        label=label, folder=folder.relative_to(outbox).as_posix(), kind=str(manifest.get("kind") or ""),
        sealed_at=parse_time(manifest.get("sealed_at")), due=parse_time(deadline.get("due")),
        on_time=manifest.get("on_time") if isinstance(manifest.get("on_time"), bool) else None,
        documents=tuple(_neutral_document(d, labels) for d in documents),
        rejected=tuple(_neutral_rejected(r, hidden) for r in rows("rejected")), overrides=rows("overrides"),
        links=_folder_links(outbox, folder), problem=problem, hidden=hidden)


def _submission_number(folder: Path) -> int | None:
    prefix = "submission-"
    if folder.name.startswith(prefix) and re.fullmatch(r"[0-9]{1,6}", folder.name[len(prefix):]):
        return int(folder.name[len(prefix):])
    return None


def _deadline_text(due: dt.datetime, now: dt.datetime) -> str:
    return time_left_text(Deadline(review_type="", clock_start=due, due=due, rule="", calendar=""), now)


def _request_view(clock: InfoRequestClock, now: dt.datetime, hidden: frozenset[str]) -> RequestView:
    if clock.answered_at is None:
        left = clock.deadline.due - now
        urgency = "overdue" if left < dt.timedelta(0) else "soon" if left <= DUE_SOON else "open"
        text = time_left_text(clock.deadline, now)
    else:
        urgency = "closed" if clock.on_time else "overdue"
        text = clock.state(now)
    return RequestView(request_id=clock.request_id, what=mask(clock.request.what, hidden),
                       received=clock.deadline.clock_start, due=clock.deadline.due, time_left=text,
                       urgency=urgency, answered_by=clock.answered_by)


def _statuses(config: Config) -> list[CaseStatus]:
    """The case states from packet.service.status (the one place that derives them).

    If reading every case at once fails (an unreadable folder), each case is read on its own so
    one bad case cannot blank the board.
    """
    try:
        return collect_status(config)
    except Exception:
        pass
    out = []
    for root in (config.paths.inbox, config.paths.outbox):
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for name in names:
            if name[:1] in ("_", ".") or not valid_case_id(name) or any(c.case_id == name for c in out):
                continue
            try:
                out.append(case_status(config, name))
            except Exception:
                out.append(CaseStatus(case_id=name, state="unknown",
                                      blocks=("the case could not be read; see the service log",)))
    return sort_cases(out)


def _status_note(config: Config, case_id: str) -> tuple[str | None, str | None, str | None]:
    """(headline, "Updated ..." line, path relative to the outbox) of the case's _STATUS.txt."""
    path = config.paths.inbox / case_id / STATUS_FILE
    try:
        first, second, *_ = read_note(path, limit=4096, errors="replace").split("\n", 2) + ["", ""]
    except (OSError, UnicodeDecodeError):
        return None, None, None
    prefix = f"Case {case_id}: "
    headline = first[len(prefix):] if first.startswith(prefix) else first
    updated = second if second.startswith("Updated ") else None
    relative = Path(os.path.relpath(path, config.paths.outbox)).as_posix()
    return headline[:300] or None, updated, relative


def _review_type(config: Config, case_id: str) -> str | None:
    try:
        return load_case(config.paths.inbox / case_id).review_type
    except CaseError:
        return None


def collect_cases(config: Config, now: dt.datetime) -> list[CaseView]:
    """Every case in the inbox or outbox (packet.service.status), most urgent first, with its files."""
    outbox = config.paths.outbox
    events: dict[str, list[dict]] = {}
    for entry in audit.iter_entries(config):
        case = entry.get("case")
        if isinstance(case, str):
            events.setdefault(case, []).append(entry)
    try:  # the neutral descriptions of withheld documents, as the English annotated list words them
        labels = Templates(config).labels("en")
    except TemplateError:
        labels = None  # the board still shows every case; such documents read "not named here"
    print_dir = outbox / PRINT_DIR
    print_files = sorted(p for p in print_dir.iterdir() if p.is_file()) if print_dir.is_dir() else []

    views = []
    for status in _statuses(config):
        case_id = status.case_id
        valid = status.state != INVALID_FOLDER and valid_case_id(case_id)
        case_out = outbox / case_id
        folders = []
        if valid and case_out.is_dir():
            folders = sorted((p for p in case_out.glob("submission-*") if p.is_dir() and _submission_number(p)),
                             key=_submission_number)
        sealed = []
        for folder in folders:
            view = _submission_view(outbox, folder, f"Submission {_submission_number(folder):02d}", labels)
            sealed.append(replace(view, label=f"{view.label} ({view.kind or 'sealed'})"))
        draft = None
        if valid and (case_out / DRAFT_DIR).is_dir():
            manifest, _ = _read_json(case_out / DRAFT_DIR / MANIFEST)
            number = manifest.get("submission") if manifest else None
            last_sealed = max((_submission_number(f) or 0 for f in folders), default=0)
            if not isinstance(number, int) or number > last_sealed:  # else: the draft of a sealed one
                label = f"Draft (would be submission {number:02d})" if isinstance(number, int) else "Draft"
                draft = _submission_view(outbox, case_out / DRAFT_DIR, label, labels)

        state = STATE_TEXT.get(status.state, status.state)
        if status.ready_marker and status.state != SEALED:
            state += " (READY dropped)"
        if status.due is None:
            urgency, left = "unknown", "no due time yet"
        elif not status.is_open:
            urgency = "closed"
            left = ("sealed on time" if status.on_time else
                    "sealed late" if status.on_time is False else "sealed")
        else:
            left = _deadline_text(status.due, now)
            urgency = {"overdue": "overdue", "due_soon": "soon"}.get(status.urgency(now) or "", "open")
        mailings = tuple(Link(p.name, p.relative_to(outbox).as_posix())
                         for p in print_files if valid and case_id in p.name)
        hidden = frozenset().union(*(view.hidden for view in sealed + ([draft] if draft else [])))
        requests = tuple(_request_view(clock, now, hidden) for clock in status.info_requests)
        for rank in ("soon", "overdue"):  # an unanswered request's clock counts like the packet's
            if any(r.urgency == rank and r.answered_by is None for r in requests) and urgency != "overdue":
                urgency = rank
        note, updated, note_path = _status_note(config, case_id) if valid else (None, None, None)
        views.append(CaseView(
            case_id=case_id, state=state, detail=tuple(mask(b, hidden) for b in status.blocks), due=status.due,
            time_left=left, urgency=urgency, review_type=_review_type(config, case_id) if valid else None,
            ready=status.ready_marker, submissions=tuple(sealed), draft=draft, mailings=mailings,
            events=tuple(events.get(case_id, [])[-MAX_EVENTS:]), page=valid,
            note=mask(note, hidden) if note else None, note_updated=updated, note_path=note_path, hidden=hidden,
            requests=requests))
    order = {"overdue": 0, "soon": 1, "open": 2, "unknown": 3, "closed": 4}
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return sorted(views, key=lambda v: (order[v.urgency], v.due or far, v.case_id))


# --- rendering ----------------------------------------------------------------------------------

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.5em; color: #1a1a1a; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em 0; } h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .4em 0; }
p.meta { color: #555; margin: 0 0 1em 0; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em 0; font-size: .9em; }
th, td { border: 1px solid #b8b8b8; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #1f3a5f; color: #fff; }
tr.overdue td { background: #fbd5d5; } tr.overdue td.left { color: #b00000; font-weight: bold; }
tr.soon td { background: #fff1c2; } tr.soon td.left { color: #8a5a00; font-weight: bold; }
tr.closed td { color: #444; }
span.flag { display: inline-block; padding: 0 .3em; margin: 0 .2em .1em 0; border-radius: 3px;
            background: #eee; border: 1px solid #bbb; }
span.flag.priv { background: #fbd5d5; border-color: #c77; } span.flag.held { background: #fff1c2; }
span.bad { color: #b00000; font-weight: bold; }
small, .reason { color: #555; } ul.links { margin: 0; padding-left: 1.2em; }
.legend span { display: inline-block; padding: .1em .5em; margin-right: .6em; border: 1px solid #bbb; }
"""

_BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ refresh }}">
<meta name="generated" content="{{ now.isoformat() }}">
<title>{% block title %}{% endblock %}</title>
<style>{{ css }}</style></head>
<body>
<p class="meta" id="generated">Generated {{ when_seconds(now) }}. This page reloads itself every {{ refresh }} seconds;
the service and every command that changes a case rewrite it.</p>
{% block body %}{% endblock %}
</body></html>
"""

_INDEX = """{% extends "base" %}
{% block title %}IMR case board{% endblock %}
{% block body %}
<h1>IMR case board</h1>
<p class="meta">{{ cases|length }} case(s). Times in {{ tz }}. {{ overdue }} overdue, {{ soon }} due within 24 hours.</p>
<p class="legend"><span style="background:#fbd5d5">overdue</span><span style="background:#fff1c2">due within 24 hours</span></p>
<table>
<thead><tr><th>Case</th><th>State</th><th>Review</th><th>Due</th><th>Time left</th><th>Submissions</th><th>Mailings</th></tr></thead>
<tbody>
{% for case in cases %}
<tr class="{{ case.urgency }}" id="case-{{ case.case_id }}">
<td>{% if case.page %}<a href="{{ href('_board/' ~ case.case_id ~ '.html') }}">{{ case.case_id }}</a>{% else %}{{ case.case_id }}{% endif %}</td>
<td>{{ case.state }}{% if case.note %}<br><a class="note" href="{{ href(case.note_path) }}">{{ case.note }}</a>{% endif %}{% if case.detail %}<br><small>{{ case.detail|join('; ') }}</small>{% endif %}</td>
<td>{{ case.review_type or '' }}</td>
<td>{{ when(case.due) if case.due else '' }}</td>
<td class="left">{{ case.time_left }}</td>
<td>{% for sub in case.submissions %}
<div><a href="{{ href(sub.folder ~ '/imr-org-packet.pdf') if has(sub, 'imr-org-packet.pdf') else href(sub.folder ~ '/manifest.json') }}">{{ sub.label }}</a>
{% if sub.sealed_at %}<small>sealed {{ when(sub.sealed_at) }}{% if sub.on_time == false %}, <span class="bad">late</span>{% endif %}</small>{% endif %}
{% if has(sub, 'manifest.json') %} · <a href="{{ href(sub.folder ~ '/manifest.json') }}">manifest</a>{% endif %}</div>
{% endfor %}
{% if case.draft %}<div><a href="{{ href(case.draft.folder ~ '/manifest.json') if has(case.draft, 'manifest.json') else href('_board/' ~ case.case_id ~ '.html') }}">{{ case.draft.label }}</a></div>{% endif %}
</td>
<td>{% for link in case.mailings %}<div><a href="{{ href(link.path) }}">{{ link.label }}</a></div>{% endfor %}</td>
</tr>
{% for r in case.requests %}
<tr class="{{ r.urgency }} request" id="request-{{ case.case_id }}-{{ r.request_id }}">
<td><small>information request</small> {{ r.request_id }}</td>
<td>requested by the IMR organization: {{ r.what }}</td>
<td><small>received {{ when(r.received) }}</small></td>
<td>{{ when(r.due) }}</td>
<td class="left">{{ r.time_left }}</td>
<td colspan="2">{% if r.answered_by %}answered by submission {{ '%02d' % r.answered_by }}{% else %}answer in responses/{{ r.request_id }}/{% endif %}</td>
</tr>
{% endfor %}
{% else %}
<tr><td colspan="7">No cases yet. Create one with <code>imr-packet new-case CASE-ID</code>.</td></tr>
{% endfor %}
</tbody></table>
{% endblock %}
"""

_CASE = """{% extends "base" %}
{% block title %}{{ case.case_id }}: IMR case{% endblock %}
{% block body %}
<p><a href="{{ href('index.html') }}">&larr; All cases</a></p>
<h1>Case {{ case.case_id }}</h1>
<table><tbody>
<tr class="{{ case.urgency }}"><th>State</th><td>{{ case.state }}</td></tr>
{% if case.note %}<tr><th>Note in the case folder</th><td><a class="note" href="{{ href(case.note_path) }}">{{ case.note }}</a>{% if case.note_updated %}<br><small>{{ case.note_updated }}</small>{% endif %}</td></tr>{% endif %}
{% if case.detail %}<tr><th>To fix</th><td><ul>{% for item in case.detail %}<li>{{ item }}</li>{% endfor %}</ul></td></tr>{% endif %}
<tr><th>Review</th><td>{{ case.review_type or 'unknown' }}</td></tr>
<tr class="{{ case.urgency }}"><th>Due</th><td>{{ when(case.due) if case.due else 'no due time yet' }}</td></tr>
<tr class="{{ case.urgency }}"><th>Time left</th><td class="left">{{ case.time_left }}</td></tr>
<tr><th>READY</th><td>{{ 'dropped' if case.ready else 'not dropped' }}</td></tr>
{% for r in case.requests %}<tr class="{{ r.urgency }} request"><th>Information request {{ r.request_id }}</th><td>{{ r.what }}<br><small>received {{ when(r.received) }}</small><br>due {{ when(r.due) }}: <span class="left">{{ r.time_left }}</span>{% if r.answered_by %}<br>answered by submission {{ '%02d' % r.answered_by }}{% else %}<br><small>answer in responses/{{ r.request_id }}/</small>{% endif %}</td></tr>{% endfor %}
{% if case.mailings %}<tr><th>Mailings in the print folder</th><td><ul class="links">{% for link in case.mailings %}<li><a href="{{ href(link.path) }}">{{ link.label }}</a></li>{% endfor %}</ul></td></tr>{% endif %}
</tbody></table>

{% for sub in case.sections %}
<h2 id="{{ sub.folder|replace('/', '-') }}">{{ sub.label }}</h2>
{% if sub.problem %}<p class="bad">{{ sub.problem }}</p>{% endif %}
<p class="meta">{% if sub.sealed_at %}Sealed {{ when(sub.sealed_at) }}{% if sub.on_time == true %} (on time){% elif sub.on_time == false %} (<span class="bad">late</span>){% endif %}. {% endif %}
{% if sub.due %}Due {{ when(sub.due) }}. {% endif %}{{ sub.documents|length }} document(s).</p>
{% if sub.links %}<ul class="links">{% for link in sub.links %}<li><a href="{{ href(link.path) }}">{{ link.label }}</a></li>{% endfor %}</ul>{% endif %}
{% if sub.overrides %}<h3>Release-gate overrides</h3>
<table><thead><tr><th>Item</th><th>Reason</th><th>By</th></tr></thead><tbody>
{% for o in sub.overrides %}<tr><td>{{ o.get('item') }}</td><td>{{ o.get('reason') }}</td><td>{{ o.get('by') }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
<h3>Documents</h3>
<table>
<thead><tr><th>#</th><th>Document</th><th>Date</th><th>Category</th><th>Flags</th><th>Identity</th><th>Pages</th><th>Bates range</th></tr></thead>
<tbody>
{% for doc in sub.documents %}
<tr>
<td>{{ loop.index }}</td>
{% if doc.get('neutral') %}
<td>{{ doc.get('title') }}</td>
<td>{{ doc.get('date') or '' }}</td>
<td>{{ category(doc.get('category')) }}</td>
<td>{% if doc.get('privileged') %}<span class="flag priv">privileged</span><br>{% endif %}
{% if doc.get('withheld_from_member') %}<span class="flag held">withheld from member</span><br>{% endif %}
{% if doc.get('excluded') %}<span class="flag">excluded</span>{% endif %}</td>
<td>{{ doc.get('identity') }}</td>
{% else %}
<td>{{ doc.get('title') or '' }}<br><small>{{ doc.get('source') or '' }} · {{ (doc.get('sha256') or '')[:12] }}</small></td>
<td>{{ doc.get('date') or '' }}</td>
<td>{{ category(doc.get('category')) }}{% if doc.get('category_reason') %}<br><small class="reason">{{ doc.get('category_reason') }}</small>{% endif %}</td>
<td>{% if doc.get('privileged') %}<span class="flag priv">privileged</span> <small class="reason">{{ doc.get('privilege_reason') or '' }}</small><br>{% endif %}
{% if doc.get('withheld_from_member') %}<span class="flag held">withheld from member</span> <small class="reason">{{ doc.get('withheld_reason') or '' }}</small><br>{% endif %}
{% if doc.get('excluded') %}<span class="flag">excluded</span> <small class="reason">{{ doc.get('excluded') }}</small>{% endif %}</td>
<td>{% if doc.get('identity') == 'confirmed' %}{{ doc.get('identity') }}{% else %}<span class="bad">{{ doc.get('identity') or '' }}</span>{% endif %}{% if doc.get('identity_reason') %}<br><small class="reason">{{ doc.get('identity_reason') }}</small>{% endif %}</td>
{% endif %}
<td>{{ doc.get('pages') if doc.get('pages') is not none else '' }}</td>
<td>{% if doc.get('bates_first') %}{{ doc.get('bates_first') }}{% if doc.get('bates_last') and doc.get('bates_last') != doc.get('bates_first') %} &ndash; {{ doc.get('bates_last') }}{% endif %}{% endif %}</td>
</tr>
{% else %}<tr><td colspan="8">No documents.</td></tr>{% endfor %}
</tbody></table>
{% if sub.rejected %}<h3>Files refused</h3>
<table><thead><tr><th>File</th><th>Why</th></tr></thead><tbody>
{% for r in sub.rejected %}<tr><td>{{ r.get('source') or '' }}</td><td>{{ r.get('reason') or '' }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
{% endfor %}

<h2>Audit events of this case</h2>
<p class="meta">From state/audit.jsonl (check the chain with <code>imr-packet audit verify</code>).</p>
<table>
<thead><tr><th>#</th><th>Time</th><th>Event</th><th>Document</th><th>Actor</th><th>Details</th></tr></thead>
<tbody>
{% for e in case.events %}
<tr><td>{{ e.get('seq') }}</td><td>{{ when_text(e.get('ts')) }}</td><td>{{ e.get('event') }}</td><td>{{ e.get('doc') or '' }}</td>
<td>{{ e.get('actor') or '' }}</td><td><small>{{ details(e, case.hidden) }}</small></td></tr>
{% else %}<tr><td colspan="6">No audit events for this case.</td></tr>{% endfor %}
</tbody></table>
{% endblock %}
"""

_MAIN_KEYS = {"ts", "seq", "event", "case", "doc", "actor", "prev"}
_COMPILED = CompiledTemplates("board")  # the board's templates, compiled once per process


def write_compiled(config: Config) -> None:
    """Compile the board's templates and the mailings' into the set-up's folders (`make setup`), so a
    fresh process reads them compiled (packet.mailings.templates.CompiledTemplates), and make the
    tagline fonts' subsets (packet.mailings.fontsubset)."""
    write_mailings(config)
    prepare_fonts(Templates(config), config)
    env = _environment(config, dt.datetime.now(dt.timezone.utc), "", 0)
    with _COMPILED.written():
        for name in ("base", "index", "case"):
            env.get_template(name)


def _environment(config: Config, now: dt.datetime, prefix: str, refresh: int) -> Environment:
    # The pages' helpers differ per call (time zone, link prefix), so each call has its own
    # environment; the templates are compiled once per process (_COMPILED).
    env = Environment(loader=DictLoader({"base": _BASE, "index": _INDEX, "case": _CASE}),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      bytecode_cache=_COMPILED)
    tz = config.calendar.tz

    def when(moment: dt.datetime | None) -> str:
        return moment.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z") if moment else ""

    def when_text(value: Any) -> str:
        moment = parse_time(value)
        return when(moment) if moment else str(value or "")

    def href(path: str) -> str:
        # Relative to the page; each path component percent-encoded (spaces, #, ?).
        return prefix + "/".join(quote(part) for part in path.split("/"))

    def has(sub: SubmissionView, name: str) -> bool:
        return any(link.label == name for link in sub.links)

    def details(entry: dict, hidden: frozenset[str] = frozenset()) -> str:
        rest = {k: v for k, v in entry.items() if k not in _MAIN_KEYS}
        return mask(", ".join(f"{k}={v}" for k, v in sorted(rest.items())), hidden)

    def category(value: Any) -> str:
        return CATEGORY_TITLES.get(value, str(value or ""))

    def when_seconds(moment: dt.datetime) -> str:
        return moment.astimezone(tz).strftime("%a %Y-%m-%d %H:%M:%S %Z")

    env.globals.update(css=_CSS, when=when, when_text=when_text, href=href, has=has, details=details,
                       category=category, now=now, tz=config.calendar.timezone, when_seconds=when_seconds,
                       refresh=refresh)
    return env


def refresh_board(config: Config) -> Path | None:
    """Rewrite the board after a command changed a case; the index, or None if it could not be written.

    For the command line: a board is a view, so a failure is logged (by type) and never fails the
    command that changed the case.
    """
    if not config.paths.outbox.is_dir():
        return None  # nothing was ever written: a command does not create the outbox for the board
    try:
        return write_board(config)
    except Exception as exc:
        log_exception("board_failed", exc)
        return None


def write_board(config: Config, now: dt.datetime | None = None, *, refresh_seconds: int = REFRESH_SECONDS) -> Path:
    """Write outbox/index.html and outbox/_board/<CASE-ID>.html for every case; return the index.

    Each page is written atomically; pages of cases that no longer exist are removed. Each page
    says when it was generated and reloads itself in an open browser every `refresh_seconds`.
    """
    tz = config.calendar.tz
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    outbox = ensure_dir(config.paths.outbox)
    board_dir = ensure_dir(outbox / BOARD_DIR)
    cases = collect_cases(config, now)

    refresh = max(int(refresh_seconds), 1)
    case_env = _environment(config, now, "../", refresh)
    case_template = case_env.get_template("case")
    written = set()
    for case in cases:
        if not case.page:
            continue
        page = board_dir / f"{case.case_id}.html"
        atomic_write_text(page, case_template.render(case=case))
        written.add(page.name)
    for stale in board_dir.glob("*.html"):
        if stale.name not in written:
            stale.unlink(missing_ok=True)

    index_env = _environment(config, now, "", refresh)
    html = index_env.get_template("index").render(
        cases=cases, overdue=sum(c.urgency == "overdue" for c in cases),
        soon=sum(c.urgency == "soon" for c in cases))
    return atomic_write_text(outbox / INDEX, html)
