"""Issue 15 item 8: DMHC's IMR case number is printed where DMHC's number belongs (the IMR
organization's cover, the front matter, the copy set); the folder id stays the plan's reference.
Issue 15 item 3: a representative the letters copy must have an address (the draft says so)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

from helpers import make_config
from sealkit import CASE_ID, NOW, sealable_case

from packet.mailings.copies import write_copies
from packet.pipeline.build import build_case
from packet.pipeline.seal import seal_case

DMHC_NUMBER = "IMR-2026-55501"


def _text(path, first=1, last=None) -> str:
    args = ["pdftotext", "-layout", "-f", str(first)] + (["-l", str(last)] if last else []) + [str(path), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _with_dmhc_number(case_dir) -> None:
    toml = case_dir / "case.toml"
    toml.write_text(f'dmhc_case_number = "{DMHC_NUMBER}"\n' + toml.read_text(encoding="utf-8"), encoding="utf-8")


def test_dmhc_number_on_the_imr_packet_cover_and_front_matter(tmp_path):
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    _with_dmhc_number(case_dir)
    submission = seal_case(config, CASE_ID, now=NOW)
    cover = _text(submission / "imr-org-packet.pdf", 1, 1)
    assert "IMR case number (DMHC)" in cover and DMHC_NUMBER in cover
    assert "Plan reference" in cover and CASE_ID in cover
    index = _text(submission / "imr-org-packet.pdf", 2, 2)
    assert f"{CASE_ID} (DMHC {DMHC_NUMBER})" in index  # the index line and the footer
    # The Bates numbers and the folder stay the plan's.
    manifest = json.loads((submission / "manifest.json").read_text())
    assert manifest["case_id"] == CASE_ID and manifest["documents"][0]["bates_first"].startswith(CASE_ID)
    member = _text(submission / "member-packet.pdf", 1, 1)
    assert DMHC_NUMBER in member
    copies = write_copies(config, CASE_ID, "member", now=NOW + dt.timedelta(hours=1))
    assert f"{CASE_ID} (DMHC {DMHC_NUMBER})" in _text(copies, 1, 1)


def test_without_a_dmhc_number_the_cover_names_the_case_as_before(tmp_path):
    config = make_config(tmp_path)
    sealable_case(config.paths.inbox)
    cover = _text(seal_case(config, CASE_ID, now=NOW) / "imr-org-packet.pdf", 1, 1)
    assert "IMR case" in cover and "(DMHC)" not in cover and "Plan reference" not in cover


def test_a_representative_without_an_address_is_a_draft_item_to_fix(tmp_path):
    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    with open(case_dir / "case.toml", "a", encoding="utf-8") as handle:
        handle.write('\n[representative]\nname = "Rosa Phoneonly"\nrelationship = "daughter"\nauthorized = true\n')
    result = build_case(case_dir, config, now=NOW)
    assert any("without an address" in text for text in result.blocking)
    review = json.loads((config.paths.outbox / CASE_ID / "draft" / "review.json").read_text())
    assert "representative_no_address" in json.dumps(review)
    note = (case_dir / "_STATUS.txt").read_text()
    assert 'add address = ["street and number", "city, CA zip"] under [representative]' in note
    assert "Rosa Phoneonly" not in json.dumps(review)  # the item's text names no one (the board shows it)
    # With the address, the representative is mailed their copy and nothing blocks.
    text = (case_dir / "case.toml").read_text().replace(
        'authorized = true', 'authorized = true\naddress = ["9 Elm St", "Fresno, CA 93701"]')
    (case_dir / "case.toml").write_text(text)
    result = build_case(case_dir, config, now=NOW + dt.timedelta(minutes=5))
    assert result.blocking == ()
    assert (config.paths.outbox / CASE_ID / "draft" / "representative-packet.pdf").is_file()
