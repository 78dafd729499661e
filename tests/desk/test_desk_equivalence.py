"""A decision made in the desk and the same decision written into overrides.toml by hand give the
same outputs, and both are audit events naming who decided."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

from deskkit import CASE_ID, PASSWORD, desk_case
from helpers import make_config

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)
HAND_WRITTEN = """# decisions
['medical-records\\\\Lab panel.pdf']
exclude = "Page 2 is another patient's lab result"

["misc scan 7.pdf"]
category = "correspondence"
withhold_from_member = "Psychotherapy details; H&S 123115"
"""


def comparable(manifest: dict) -> list[dict]:
    drop = {"received_at"}
    return [{k: v for k, v in d.items() if k not in drop} for d in manifest["documents"]]


def test_desk_and_hand_edit_give_the_same_outputs(tmp_path):
    from packet.desk.app import create_app
    from packet.pipeline.build import build_case
    from packet.records import audit

    config_a, case_a = desk_case(tmp_path / "a")
    root_b = tmp_path / "b"
    shutil.copytree(tmp_path / "a", root_b, symlinks=True)
    config_b = make_config(root_b)
    case_b = config_b.paths.inbox / CASE_ID

    client = create_app(config_a).test_client()
    assert client.post("/login", data={"name": "clara", "password": PASSWORD}).status_code == 302
    page = client.get(f"/case/{CASE_ID}").data.decode()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/queue").data.decode()).group(1)
    keys = {}
    for row in page.split("<tr>"):
        for name in ("Lab panel", "misc scan 7"):
            if name in row and "/doc/" in row:
                keys[name] = re.search(r"/doc/([0-9a-f]{12})", row).group(1)
    for key, field, value in ((keys["Lab panel"], "exclude", "Page 2 is another patient's lab result"),
                              (keys["misc scan 7"], "category", "correspondence"),
                              (keys["misc scan 7"], "withhold_from_member", "Psychotherapy details; H&S 123115")):
        response = client.post(f"/case/{CASE_ID}/doc/{key}/decide", data={"csrf": token, "field": field, "value": value})
        assert response.status_code == 302, response.data
    (case_b / "overrides.toml").write_text(HAND_WRITTEN, encoding="utf-8")

    build_case(case_a, config_a, now=NOW)
    build_case(case_b, config_b, now=NOW)
    draft_a = config_a.paths.outbox / CASE_ID / "draft"
    draft_b = config_b.paths.outbox / CASE_ID / "draft"
    manifest_a = json.loads((draft_a / "manifest.json").read_text())
    manifest_b = json.loads((draft_b / "manifest.json").read_text())
    assert comparable(manifest_a) == comparable(manifest_b)
    excluded = [d for d in manifest_a["documents"] if d["source"].endswith("Lab panel.pdf")]
    assert excluded[0]["excluded"]
    for name in ("imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf", "annotated-list.csv"):
        assert (draft_a / name).read_bytes() == (draft_b / name).read_bytes(), name

    def decided(config):
        return sorted((e["event"], e.get("decision"), e["actor"], e.get("via")) for e in audit.iter_entries(config)
                      if str(e.get("event", "")).startswith("override_"))

    note_a = (case_a / "_STATUS.txt").read_text(encoding="utf-8")
    note_b = (case_b / "_STATUS.txt").read_text(encoding="utf-8")
    assert "misc scan 7.pdf: category by clara" in note_a and "(the review desk)" in note_a
    assert "misc scan 7.pdf: category by " in note_b and "(overrides.toml)" in note_b
    by_desk, by_hand = decided(config_a), decided(config_b)
    assert {d[1] for d in by_desk} == {d[1] for d in by_hand} == {"exclude", "category", "withhold_from_member"}
    assert {d[2] for d in by_desk} == {"clara"} and all(d[3] == "desk" for d in by_desk)
    assert all(d[2] and d[2] != "clara" and d[3] == "overrides.toml" for d in by_hand)
