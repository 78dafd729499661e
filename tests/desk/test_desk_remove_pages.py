"""The desk removes single pages (issue 16: "an identity mismatch (excluding the foreign pages)"):
one click removes the other person's pages, a clerk may, an auditor may not, the form needs its
CSRF token, and the decision gives the same outputs as the same line written by hand."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess

from deskkit import CASE_ID, OTHER_PATIENT, PASSWORD, desk_case
from helpers import make_config

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)
LAB = "medical-records/Lab panel.pdf"
HAND_WRITTEN = f"""# decisions
["{LAB}"]
exclude = {{ reason = "another patient's record", pages = "2" }}
"""


def _signed_in(config, name):
    from packet.desk.app import create_app

    client = create_app(config).test_client()
    assert client.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return client


def _lab_key(client) -> str:
    page = client.get(f"/case/{CASE_ID}").data.decode()
    row = next(r for r in page.split("<tr>") if "Lab panel" in r and "/doc/" in r)
    return re.search(r"/doc/([0-9a-f]{12})", row).group(1)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_the_item_page_offers_to_remove_the_other_persons_pages_and_roles_are_kept(tmp_path):
    from packet.pipeline.build import build_case
    from packet.records import audit

    config, case_dir = desk_case(tmp_path)
    auditor = _signed_in(config, "audrey")
    key = _lab_key(auditor)
    page = auditor.get(f"/case/{CASE_ID}/doc/{key}").data.decode()
    assert 'id="decide-remove-foreign"' not in page and 'id="decide-remove-pages"' not in page
    refused = auditor.post(f"/case/{CASE_ID}/doc/{key}/decide",
                           data={"csrf": _csrf(page), "field": "exclude", "pages": "2", "value": "x"})
    assert refused.status_code == 403
    assert not (case_dir / "overrides.toml").exists()

    clerk = _signed_in(config, "clara")
    page = clerk.get(f"/case/{CASE_ID}/doc/{key}").data.decode()
    form = re.search(r'<form[^>]*id="decide-remove-foreign".*?</form>', page, re.S).group(0)
    assert 'name="pages" value="2"' in form
    no_token = clerk.post(f"/case/{CASE_ID}/doc/{key}/decide", data={"field": "exclude", "pages": "2", "value": "x"})
    assert no_token.status_code in (400, 403)
    beyond = clerk.post(f"/case/{CASE_ID}/doc/{key}/decide",
                        data={"csrf": _csrf(page), "field": "exclude", "pages": "7", "value": "x"})
    assert beyond.status_code == 400 and not (case_dir / "overrides.toml").exists()
    done = clerk.post(f"/case/{CASE_ID}/doc/{key}/decide",
                      data={"csrf": _csrf(page), "field": "exclude", "pages": "2", "value": "another patient's record"})
    assert done.status_code == 302
    assert 'pages = "2"' in (case_dir / "overrides.toml").read_text()
    events = [e for e in audit.iter_entries(config) if e.get("decision") == "exclude_pages"]
    assert events and events[-1]["actor"] == "clara" and events[-1]["via"] == "desk"

    build_case(case_dir, config, now=NOW)
    draft = config.paths.outbox / CASE_ID / "draft"
    manifest = json.loads((draft / "manifest.json").read_text())
    entry = next(d for d in manifest["documents"] if d["source"] == LAB)
    assert entry["removed_pages"] == [2] and entry["removed_by"] == "clara" and entry["identity"] == "confirmed"
    for name in ("imr-org-packet.pdf", "member-packet.pdf"):
        text = subprocess.run(["pdftotext", str(draft / name), "-"], capture_output=True, text=True).stdout
        assert "CHEN" not in text and "M111222333" not in text, name
    page = clerk.get(f"/case/{CASE_ID}/doc/{key}").data.decode()
    assert 'id="removed-pages"' in page and "clara" in page and OTHER_PATIENT not in page


def test_desk_and_hand_written_page_removal_give_the_same_outputs(tmp_path):
    from packet.pipeline.build import build_case

    config_a, case_a = desk_case(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    config_b = make_config(tmp_path / "b")
    case_b = config_b.paths.inbox / CASE_ID
    clerk = _signed_in(config_a, "clara")
    key = _lab_key(clerk)
    page = clerk.get(f"/case/{CASE_ID}/doc/{key}").data.decode()
    assert clerk.post(f"/case/{CASE_ID}/doc/{key}/decide",
                      data={"csrf": _csrf(page), "field": "exclude", "pages": "2",
                            "value": "another patient's record"}).status_code == 302
    (case_b / "overrides.toml").write_text(HAND_WRITTEN, encoding="utf-8")
    build_case(case_a, config_a, now=NOW)
    build_case(case_b, config_b, now=NOW)
    draft_a = config_a.paths.outbox / CASE_ID / "draft"
    draft_b = config_b.paths.outbox / CASE_ID / "draft"
    for name in ("imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf", "annotated-list.csv"):
        assert (draft_a / name).read_bytes() == (draft_b / name).read_bytes(), name
    entry_a = next(d for d in json.loads((draft_a / "manifest.json").read_text())["documents"] if d["source"] == LAB)
    entry_b = next(d for d in json.loads((draft_b / "manifest.json").read_text())["documents"] if d["source"] == LAB)
    assert entry_a["removed_by"] == "clara" and entry_b["removed_by"] and entry_b["removed_by"] != "clara"
    drop = {"received_at", "removed_by"}
    assert {k: v for k, v in entry_a.items() if k not in drop} == {k: v for k, v in entry_b.items() if k not in drop}
