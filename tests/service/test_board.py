"""The static case board: every case with its deadline state, links that resolve, escaping, Chromium."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import os
import shutil
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo

import pytest
from helpers import write_case

from packet.records import audit
from packet.service.board import write_board

TZ = ZoneInfo("America/Los_Angeles")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=TZ)
SHA_A = hashlib.sha256(b"doc a").hexdigest()
SHA_B = hashlib.sha256(b"doc b").hexdigest()

OVERDUE = "IMR-2026-000100"  # no documents yet, notice long ago
SOON = "IMR-2026-000200"  # draft due in 5 hours, blocked
OPEN = "IMR-2026-000300"  # draft due in 3 days, READY dropped
SEALED = "IMR-2026-000400"  # sealed on time, mailings in the print folder
INVALID = "IMR-2026-000500"  # case.toml invalid
OUTBOX_ONLY = "IMR-2026-000600"  # sealed, inbox folder gone
BAD_NAME = "case <7> & co"  # not a valid case id


def document(sha, *, title="MRI lumbar spine", source="medical-records/MRI report.pdf", first=1, last=2,
             **extra):
    entry = {
        "source": source, "sha256": sha, "received_at": "2026-11-26T09:00:00-08:00", "title": title,
        "date": "2026-08-14", "category": "medical_records", "category_reason": "folder medical-records/",
        "privileged": False, "privilege_reason": None, "withheld_from_member": False, "withheld_reason": None,
        "identity": "confirmed", "identity_reason": "member id on page 1", "pages": last - first + 1,
        "bates_first": f"IMR-{first:06d}", "bates_last": f"IMR-{last:06d}", "packet_pages": [],
    }
    entry.update(extra)
    return entry


def manifest(case_id, submission, *, kind, due, sealed_at=None, on_time=None, documents=()):
    return {
        "schema": "imr-packet/manifest@1", "case_id": case_id, "submission": submission, "kind": kind,
        "generated_at": NOW.isoformat(),
        "deadline": {"review_type": "standard", "clock_start": "2026-11-25T16:10:00-08:00",
                     "due": due.isoformat(), "rule": "3 business days"},
        "sealed_at": sealed_at.isoformat() if sealed_at else None, "on_time": on_time, "overrides": [],
        "documents": list(documents), "rejected": [], "outputs": [], "audit_head": None,
    }


def put(folder: Path, data: dict, *files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    for name in files:
        (folder / name).write_bytes(b"%PDF-1.7 placeholder")


@pytest.fixture
def board_tree(config):
    inbox, outbox = config.paths.inbox, config.paths.outbox
    write_case(inbox, OVERDUE, notice="2026-11-20T10:00:00-08:00")

    write_case(inbox, SOON)
    put(outbox / SOON / "draft", manifest(SOON, 1, kind="draft", due=NOW + dt.timedelta(hours=5),
                                          documents=[document(SHA_A)]), "imr-org-packet.pdf")
    (outbox / SOON / "draft" / "review.json").write_text(json.dumps(
        {"case_id": SOON, "blocks_sealing": ["the written grievance response is missing"]}))

    write_case(inbox, OPEN)
    (inbox / OPEN / "READY").write_text("")
    put(outbox / OPEN / "draft", manifest(
        OPEN, 1, kind="draft", due=NOW + dt.timedelta(days=3), documents=[
            document(SHA_A, title="<script>alert('x')</script> & notes"),
            document(SHA_B, title="Utilization review memo", source="privileged/UR memo.pdf", first=3, last=3,
                     category="plan_statements", category_reason="rule:ur-criteria: phrase \"criteria\"",
                     privileged=True, privilege_reason="folder privileged/", withheld_from_member=True,
                     withheld_reason="privileged", identity="not_found",
                     identity_reason="no member identifier found")]),
        "imr-org-packet.pdf", "member-packet.pdf")
    (outbox / OPEN / "draft" / "review.json").write_text(json.dumps({"case_id": OPEN, "blocks_sealing": []}))

    write_case(inbox, SEALED)
    put(outbox / SEALED / "submission-01", manifest(
        SEALED, 1, kind="initial", due=NOW - dt.timedelta(days=1), sealed_at=NOW - dt.timedelta(days=2),
        on_time=True, documents=[document(SHA_A)]),
        "imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf")
    print_dir = outbox / "_print"
    print_dir.mkdir(parents=True)
    (print_dir / f"0001 {SEALED} member-packet.pdf").write_bytes(b"%PDF")
    (print_dir / "0002 IMR-2026-000999 member-packet.pdf").write_bytes(b"%PDF")

    write_case(inbox, INVALID)
    (inbox / INVALID / "case.toml").write_text('review_type = "someday"\n')

    put(outbox / OUTBOX_ONLY / "submission-01", manifest(
        OUTBOX_ONLY, 1, kind="initial", due=NOW - dt.timedelta(days=9), sealed_at=NOW - dt.timedelta(days=8),
        on_time=False), "imr-org-packet.pdf")

    # Not cases: the service's own folders and hidden ones.
    (inbox / ".Trash").mkdir()
    (inbox / "_scratch").mkdir()
    (inbox / BAD_NAME).mkdir()

    audit.record(config, "taken", case=OPEN, doc=SHA_A, pages=2)
    audit.record(config, "classified", case=OPEN, doc=SHA_B, category="plan_statements", rule="<b>rule</b>")
    audit.record(config, "sealed", case=SEALED, submission=1, actor="jdoe")
    return config


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs, self.rows, self.tags = [], [], {}, []
        self._row = None
        self._text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag in ("img", "script", "link", "iframe") and (attrs.get("src") or attrs.get("href")):
            self.srcs.append(attrs.get("src") or attrs.get("href"))
        if tag == "tr" and (attrs.get("id") or "").startswith("case-"):
            self._row = attrs["id"][5:]
            self.rows[self._row] = {"class": attrs.get("class"), "text": ""}

    def handle_endtag(self, tag):
        if tag == "tr" and self._row:
            self.rows[self._row]["text"] = " ".join("".join(self._text).split())
            self._row, self._text = None, []

    def handle_data(self, data):
        if self._row:
            self._text.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def check_links(page_path: Path, outbox: Path, inbox: Path | None = None) -> list[Path]:
    """Every href is relative, names an existing file and stays inside the outbox, except the link
    to a case's _STATUS.txt in the inbox (read where the clerks' share is reachable)."""
    targets = []
    for href in parse(page_path).hrefs:
        parsed = urlparse(href)
        assert not parsed.scheme and not parsed.netloc and not href.startswith("/"), href
        target = (page_path.parent / unquote(parsed.path)).resolve()
        assert target.is_file(), f"{page_path.name}: {href} does not resolve"
        if inbox is not None and target.name == "_STATUS.txt" and target.parent.parent == inbox.resolve():
            targets.append(target)
            continue
        assert outbox.resolve() in target.parents, href
        targets.append(target)
    return targets


def test_board_lists_every_case_with_its_deadline_state(board_tree):
    config = board_tree
    index = write_board(config, now=NOW)
    assert index == config.paths.outbox / "index.html"
    rows = parse(index).rows
    assert set(rows) == {OVERDUE, SOON, OPEN, SEALED, INVALID, OUTBOX_ONLY, BAD_NAME}
    assert rows[OVERDUE]["class"] == "overdue" and "OVERDUE by" in rows[OVERDUE]["text"]
    assert "drafting" in rows[OVERDUE]["text"]
    assert rows[SOON]["class"] == "soon" and "5 hours left" in rows[SOON]["text"]
    assert "needs review" in rows[SOON]["text"] and "grievance response is missing" in rows[SOON]["text"]
    assert rows[OPEN]["class"] == "open" and "3 days left" in rows[OPEN]["text"]
    assert "ready (READY dropped)" in rows[OPEN]["text"]
    assert rows[SEALED]["class"] == "closed" and "sealed on time" in rows[SEALED]["text"]
    assert rows[OUTBOX_ONLY]["class"] == "closed" and "sealed late" in rows[OUTBOX_ONLY]["text"]
    assert rows[INVALID]["class"] == "unknown" and "waiting for case.toml" in rows[INVALID]["text"]
    assert "review_type must be standard or expedited" in rows[INVALID]["text"]
    # A folder whose name is not a case id is listed (so a clerk sees it) but gets no page.
    assert rows[BAD_NAME]["class"] == "unknown" and "not a valid case id" in rows[BAD_NAME]["text"]
    # Most urgent first.
    assert list(rows)[:3] == [OVERDUE, SOON, OPEN]
    html = index.read_text()
    assert "tr.overdue td { background: #fbd5d5; }" in html  # overdue rows are red
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html


def test_every_link_resolves_and_pages_exist(board_tree):
    config = board_tree
    outbox = config.paths.outbox
    index = write_board(config, now=NOW)
    targets = check_links(index, outbox)
    pages = {outbox / "_board" / f"{case}.html" for case in (OVERDUE, SOON, OPEN, SEALED, INVALID, OUTBOX_ONLY)}
    assert pages <= set(targets)
    sealed = outbox / SEALED / "submission-01"
    assert {sealed / "imr-org-packet.pdf", sealed / "manifest.json",
            outbox / "_print" / f"0001 {SEALED} member-packet.pdf"} <= set(targets)
    assert outbox / "_print" / "0002 IMR-2026-000999 member-packet.pdf" not in targets
    for page in pages:
        check_links(page, outbox)
        assert stat.S_IMODE(page.stat().st_mode) == 0o640
    case_targets = check_links(outbox / "_board" / f"{SEALED}.html", outbox)
    assert {sealed / name for name in ("imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf",
                                       "annotated-list.pdf", "manifest.json")} <= set(case_targets)
    assert outbox / "index.html" in case_targets
    assert stat.S_IMODE(index.stat().st_mode) == 0o640


def test_case_page_shows_documents_and_audit_events(board_tree):
    config = board_tree
    write_board(config, now=NOW)
    page = (config.paths.outbox / "_board" / f"{OPEN}.html").read_text()
    for text in ("Plan documents and statements of reasons", "privileged", "withheld from member",
                 "IMR-000001 &ndash; IMR-000002", "IMR-000003", "Medical records", "member id on page 1",
                 "A privileged document (not named here)"):
        assert text in page, text
    # The privileged document is shown neutrally: no file name, title or reasons that describe it
    # (the audit events name documents by hash only).
    for text in ("UR memo", "Utilization review memo", "ur-criteria", "folder privileged/",
                 "no member identifier found"):
        assert text not in page, text
    # Escaped, never markup: document titles and audit fields come from outside.
    assert "<script>" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; notes" in page
    assert "rule=&lt;b&gt;rule&lt;/b&gt;" in page
    assert "taken" in page and "classified" in page
    assert "jdoe" not in page  # another case's event
    sealed_page = (config.paths.outbox / "_board" / f"{SEALED}.html").read_text()
    assert "jdoe" in sealed_page and "sealed" in sealed_page and "(on time)" in sealed_page
    invalid_page = (config.paths.outbox / "_board" / f"{INVALID}.html").read_text()
    assert "review_type must be standard or expedited" in invalid_page


def test_board_is_rewritten_and_stale_pages_go(board_tree):
    config = board_tree
    write_board(config, now=NOW)
    shutil.rmtree(config.paths.outbox / OUTBOX_ONLY)
    write_board(config, now=NOW)
    assert not (config.paths.outbox / "_board" / f"{OUTBOX_ONLY}.html").exists()
    assert OUTBOX_ONLY not in (config.paths.outbox / "index.html").read_text()
    assert not [p for p in (config.paths.outbox).rglob(".tmp-*")]


def test_a_board_written_again_compiles_no_template_and_reads_the_same(board_tree, monkeypatch):
    """The watcher writes the board after every build: its templates are compiled once per process."""
    import jinja2

    config = board_tree
    write_board(config, now=NOW)
    first = {p.name: p.read_bytes() for p in config.paths.outbox.rglob("*.html")}
    compiled = []
    original = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *args, **kwargs: compiled.append(args[1:2]) or original(self, *args, **kwargs))
    write_board(config, now=NOW)
    assert compiled == []
    assert {p.name: p.read_bytes() for p in config.paths.outbox.rglob("*.html")} == first


def test_empty_board(config):
    index = write_board(config, now=NOW)
    assert "No cases yet" in index.read_text()


def test_unreadable_manifest_does_not_stop_the_board(board_tree):
    config = board_tree
    (config.paths.outbox / SOON / "draft" / "manifest.json").write_text("{not json")
    index = write_board(config, now=NOW)
    assert SOON in parse(index).rows
    page = (config.paths.outbox / "_board" / f"{SOON}.html").read_text()
    assert "manifest.json cannot be read" in page


# --- headless Chromium ---------------------------------------------------------------------------

def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and we are not root: "
                    "run `sudo apt-get install chromium` (make setup does it as root)")
    pytest.fail("chromium is missing although we are root: `make setup` installs it")


def _screenshot(chromium: str, page: Path, png: Path, profile: Path) -> None:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1200,900",
               page.resolve().as_uri()]
    env = {**os.environ, "HOME": str(profile)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and png.is_file(), result.stderr[-2000:]


def test_chromium_renders_the_board(board_tree, tmp_path):
    from PIL import Image

    chromium = _chromium()
    config = board_tree
    index = write_board(config, now=NOW)
    for page, name in ((index, "board.png"), (config.paths.outbox / "_board" / f"{OPEN}.html", "case.png")):
        png = tmp_path / "shots" / name
        png.parent.mkdir(exist_ok=True)
        _screenshot(chromium, page, png, tmp_path / f"profile-{name}")
        with Image.open(png) as image:
            assert image.size == (1200, 900)
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
            assert colours is not None and len(colours) > 1, f"{name} is blank"
            # The overdue row's red is on the board screenshot.
            if name == "board.png":
                assert any(rgb == (0xFB, 0xD5, 0xD5) for _, rgb in colours), "no overdue-red row"
    if os.environ.get("IMR_KEEP_SCREENSHOTS"):
        shutil.copytree(tmp_path / "shots", os.environ["IMR_KEEP_SCREENSHOTS"], dirs_exist_ok=True)


# --- what the board says while the service works; privileged documents stay unnamed ------------

def test_board_says_when_it_was_generated_reloads_itself_and_links_each_status_note(board_tree):
    config = board_tree
    inbox, outbox = config.paths.inbox, config.paths.outbox
    (inbox / SOON / "_STATUS.txt").write_text(
        f"Case {SOON}: working: converting 12 of 30 files\nUpdated Monday November 30, 2026 at 11:59:58 AM PST\n")
    index = write_board(config, now=NOW)
    html = index.read_text()
    assert '<meta http-equiv="refresh" content="60">' in html
    assert "Generated Mon 2026-11-30 12:00:00 PST" in html
    assert "working: converting 12 of 30 files" in parse(index).rows[SOON]["text"]
    targets = check_links(index, outbox, inbox)
    assert inbox / SOON / "_STATUS.txt" in targets
    page = outbox / "_board" / f"{SOON}.html"
    assert inbox / SOON / "_STATUS.txt" in check_links(page, outbox, inbox)
    assert "11:59:58 AM" in page.read_text()
    # Sorted by time left: overdue first, then the least time left; sealed cases last.
    assert list(parse(index).rows)[:3] == [OVERDUE, SOON, OPEN]
    assert list(parse(index).rows)[-2:] == [SEALED, OUTBOX_ONLY] or list(parse(index).rows)[-2:] == [
        OUTBOX_ONLY, SEALED]
    assert 'content="5"' in write_board(config, now=NOW, refresh_seconds=5).read_text()


def test_privileged_and_withheld_documents_are_never_named_on_the_board(config):
    inbox, outbox = config.paths.inbox, config.paths.outbox
    case = "IMR-2026-000700"
    write_case(inbox, case)
    names = ("PSYCHOTHERAPY PROGRESS NOTE", "privileged/therapy 0412.pdf", "therapy 0412.pdf",
             "counsel memo.pdf", "Counsel memo on appeal", "session-notes.docx")
    put(outbox / case / "draft", manifest(case, 1, kind="draft", due=NOW + dt.timedelta(days=2), documents=[
        document(SHA_A),
        document(SHA_B, title=names[0], source=names[1], first=3, last=4, withheld_from_member=True,
                 withheld_reason=f"title says {names[0]!r}", category_reason=f"file name {names[2]}",
                 identity="not_found", identity_reason="not found in therapy 0412.pdf"),
        document(hashlib.sha256(b"c").hexdigest(), title=names[4], source=f"correspondence/{names[3]}",
                 first=5, last=5, privileged=True, privilege_reason="overrides.toml: privileged")]),
        "imr-org-packet.pdf")
    draft = json.loads((outbox / case / "draft" / "manifest.json").read_text())
    draft["rejected"] = [
        {"source": f"privileged/{names[5]}", "reason": "the file is damaged", "reason_code": "corrupt",
         "what_to_do": "copy it again", "moved_to": f"_rejected/{names[5]}"},
        {"source": "scan.pdf", "reason": f'it has the same content as "{names[1]}"', "reason_code": "duplicate",
         "what_to_do": "", "moved_to": "_rejected/scan.pdf"},
        {"source": "other.pdf", "reason": "the file is empty", "reason_code": "empty", "what_to_do": "",
         "moved_to": "_rejected/other.pdf"}]
    (outbox / case / "draft" / "manifest.json").write_text(json.dumps(draft))
    (outbox / case / "draft" / "review.json").write_text(json.dumps(
        {"case_id": case, "blocks_sealing": [f"{names[1]}: the member was not found in the text",
                                             f"{names[3]}: check the identity"]}))
    # A person's decision about the file, as an audit event (its old and new value name the file).
    audit.record(config, "override_changed", case=case, file=names[1], old="", new="withhold_from_member")
    write_board(config, now=NOW)
    for page in (outbox / "index.html", outbox / "_board" / f"{case}.html"):
        html = page.read_text()
        for name in names + ("0412", "counsel memo", "Counsel memo", "session-notes"):
            assert name not in html and name.replace(" ", "%20") not in html, (page.name, name)
    html = (outbox / "_board" / f"{case}.html").read_text()
    assert "A document withheld from the member (not named here)" in html
    assert "A privileged document (not named here)" in html
    # Issue 15 item 7: the list's neutral description (kind, author's role), from the rule ids alone.
    assert re.search(r"withheld from the member \(not named here\): [A-Z][a-z ]+ by [a-z ]+<", html)
    assert "MRI lumbar spine" in html and "other.pdf" in html  # everything else as before
    assert "[a privileged or withheld document]: the member was not found" in html
    assert "override_changed" in html  # the decision is listed, its file unnamed
