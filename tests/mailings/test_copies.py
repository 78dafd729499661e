"""Copy sets on request (packet.mailings.copies): releasable pages with their Bates numbers, slip sheets for the rest."""

from __future__ import annotations

import json
import re
import datetime as dt
from pathlib import Path

import pytest
from pypdf import PdfReader
from pypdf.generic import NameObject

from helpers import make_config, make_pdf, write_case
from packet.mailings.copies import CopiesUnavailable, write_copies
from packet.errors import PacketError, UsageError
from packet.model.models import PRIVILEGED_MARK

CASE_ID = "IMR-2026-000417"
PST = dt.timezone(dt.timedelta(hours=-8))
NOW = dt.datetime(2026, 12, 2, 14, 30, tzinfo=PST)
MARKER = "ZQXPRIVILEGEDMARKER"
LAW_MARKER = "ZQXPSYCHOTHERAPYMARKER"


def bates(number: int) -> str:
    return f"{CASE_ID}-{number:06d}"


def fake_submission(outbox: Path, number: int, documents: list[dict], *, first_bates: int = 1) -> Path:
    """A sealed submission folder: imr-org-packet.pdf (cover, index, documents) and manifest.json.

    Each document dict: title, category, pages, privileged, withheld, text.
    """
    folder = outbox / CASE_ID / f"submission-{number:02d}"
    pages = ["COVER SHEET", "INDEX"]
    entries = []
    bates_no = first_bates
    for doc in documents:
        first_page = len(pages) + 1
        for index in range(doc["pages"]):
            mark = f"\n{PRIVILEGED_MARK}" if doc.get("privileged") else ""
            pages.append(f"{doc['text']} page {index + 1}{mark}\n{bates(bates_no + index)}")
        entries.append({
            "source": f"docs/{doc['title']}.pdf", "sha256": "0" * 64, "received_at": "2026-11-25T10:00:00-08:00",
            "title": doc["title"], "date": "2026-08-14", "category": doc["category"], "category_reason": "folder",
            "privileged": doc.get("privileged", False),
            "privilege_reason": "rule:attorney-client" if doc.get("privileged") else None,
            "withheld_from_member": doc.get("withheld", False),
            "withheld_reason": "rule:psychotherapy-notes" if doc.get("withheld") else None,
            "identity": "confirmed", "pages": doc["pages"], "bates_first": bates(bates_no),
            "bates_last": bates(bates_no + doc["pages"] - 1),
            "packet_pages": list(range(first_page, first_page + doc["pages"]))})
        bates_no += doc["pages"]
    make_pdf(folder / "imr-org-packet.pdf", pages)
    manifest = {"schema": "imr-packet/manifest@1", "case_id": CASE_ID, "submission": number,
                "kind": "initial" if number == 1 else "supplement", "documents": entries}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


DOCUMENTS = [
    {"title": "MRI report", "category": "medical_records", "pages": 2, "text": "MRI LUMBAR SPINE REPORT"},
    {"title": "Psychotherapy notes", "category": "medical_records", "pages": 2, "withheld": True,
     "text": f"SESSION NOTES {LAW_MARKER}"},
    {"title": "Grievance resolution", "category": "correspondence", "pages": 1, "text": "GRIEVANCE RESOLUTION"},
    {"title": f"Counsel memo {MARKER}", "category": "plan_statements", "pages": 3, "privileged": True,
     "text": f"LITIGATION RISK {MARKER}"},
]


def texts(path: Path) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in PdfReader(str(path)).pages]


@pytest.fixture
def sealed(tmp_path):
    config = make_config(tmp_path)
    write_case(config.paths.inbox, CASE_ID)
    fake_submission(config.paths.outbox, 1, DOCUMENTS)
    return config


@pytest.mark.parametrize("recipient", ["member", "provider"])
def test_copy_set_has_releasable_pages_and_slip_sheets(sealed, recipient):
    path = write_copies(sealed, CASE_ID, recipient, now=NOW)
    assert path == sealed.paths.outbox / CASE_ID / "copies" / f"copies-{recipient}-20261202T143000.pdf"
    assert path.stat().st_mode & 0o777 == 0o640
    pages = texts(path)
    joined = " ".join(pages)
    assert MARKER not in joined and LAW_MARKER not in joined
    assert PRIVILEGED_MARK not in joined
    # The released pages, with their Bates numbers, in order.
    for label in (bates(1), bates(2), bates(5)):
        assert sum(label in t and "REPORT" in t or label in t and "GRIEVANCE" in t for t in pages) == 1
    slips = [t for t in pages if t.startswith("Withheld:")]
    assert len(slips) == 2
    assert f"{bates(3)} - {bates(4)}" in slips[0] and "withheld by law" in slips[0]
    assert f"{bates(6)} - {bates(8)}" in slips[1] and "legally privileged" in slips[1]
    assert "Counsel memo" not in joined
    # Cover (with the list) + blank back if needed, 3 document pages, 2 slip sheets.
    document_pages = [t for t in pages if "REPORT page" in t or "GRIEVANCE RESOLUTION page" in t]
    assert len(document_pages) == 3
    if recipient == "member":
        assert "Copies of the documents sent for your Independent Medical Review" in pages[0]
    else:  # issue 15 item 7: the provider's cover is not about "your" review
        assert "Copies of the documents sent for your patient's Independent Medical Review" in pages[0]
        assert "your Independent Medical Review" not in pages[0]
    # Issue 15 item 7: every copy the recipient may have is in the set, so the list beside it
    # never says "copy available on request".
    assert "Copy available on request" not in joined
    assert joined.count("Copy enclosed") == 2  # the two releasable documents
    events = [json.loads(line) for line in sealed.audit_log.read_text().splitlines()]
    copies_event = next(e for e in reversed(events) if e["event"] == "copies")
    assert copies_event["recipient"] == recipient
    assert copies_event["pages"] == 3 and copies_event["withheld"] == 2
    assert events[-1]["event"] == "print_queued"
    assert (sealed.paths.outbox / "_print" / f"20261202T223000Z-{CASE_ID}-copies-{recipient}-{len(pages)}p.pdf"
            ).read_bytes() == path.read_bytes()


def test_spanish_member_gets_spanish_cover_and_slips(tmp_path):
    config = make_config(tmp_path)
    write_case(config.paths.inbox, CASE_ID, language="es")
    fake_submission(config.paths.outbox, 1, DOCUMENTS)
    pages = texts(write_copies(config, CASE_ID, "member", now=NOW))
    assert "Copias de los documentos enviados" in pages[0]
    assert sum(t.startswith("Retenido:") for t in pages) == 2
    provider_pages = texts(write_copies(config, CASE_ID, "provider", now=NOW + dt.timedelta(seconds=1)))
    assert "Copies of the documents sent" in provider_pages[0]


def test_every_submission_is_included(sealed):
    fake_submission(sealed.paths.outbox, 2, [
        {"title": "PT note", "category": "medical_records", "pages": 1, "text": "PHYSICAL THERAPY NOTE"}],
        first_bates=9)
    joined = " ".join(texts(write_copies(sealed, CASE_ID, "member", now=NOW)))
    assert "PHYSICAL THERAPY NOTE page 1" in joined and bates(9) in joined
    assert "MRI LUMBAR SPINE REPORT page 1" in joined


def test_no_sealed_submission_is_a_clear_error(tmp_path):
    config = make_config(tmp_path)
    write_case(config.paths.inbox, CASE_ID)
    with pytest.raises(CopiesUnavailable, match="no sealed submission") as info:
        write_copies(config, CASE_ID, "member", now=NOW)
    assert isinstance(info.value, PacketError)
    assert not (config.paths.outbox / CASE_ID / "copies").exists()


def test_a_page_with_the_privileged_mark_is_never_copied(sealed):
    manifest_path = sealed.paths.outbox / CASE_ID / "submission-01" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["documents"][3]["privileged"] = False  # a broken manifest must not leak the memo
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CopiesUnavailable, match="privileged mark"):
        write_copies(sealed, CASE_ID, "member", now=NOW)
    assert not list((sealed.paths.outbox / CASE_ID).glob("copies/*.pdf"))


def test_overlapping_pages_are_refused(sealed):
    manifest_path = sealed.paths.outbox / CASE_ID / "submission-01" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["documents"][0]["packet_pages"] = [3, 5]  # page 5 belongs to the withheld notes
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CopiesUnavailable):
        write_copies(sealed, CASE_ID, "member", now=NOW)


def test_recipient_must_be_member_or_provider(sealed):
    with pytest.raises(UsageError):
        write_copies(sealed, CASE_ID, "lawyer", now=NOW)


def test_end_to_end_after_a_real_seal(tmp_path):
    """Seal a case with a privileged memo, then check the mailings and a copy set hold none of it."""
    import csv
    import io
    import subprocess

    from sealkit import NOW as SEAL_NOW, PRIVILEGED_TEXT, sealable_case
    from packet.pipeline.seal import seal_case

    config = make_config(tmp_path)
    sealable_case(config.paths.inbox)
    submission = seal_case(config, CASE_ID, now=SEAL_NOW)
    manifest = json.loads((submission / "manifest.json").read_text())
    rows = list(csv.DictReader(io.StringIO((submission / "annotated-list.csv").read_text(encoding="utf-8"))))
    assert [(r["bates_first"], r["bates_last"], r["category"], r["privileged"]) for r in rows] == [
        (d["bates_first"], d["bates_last"], d["category"], str(d["privileged"]).lower())
        for d in manifest["documents"]]
    copies = write_copies(config, CASE_ID, "member", now=NOW)
    needle = PRIVILEGED_TEXT[:40]
    for path in (copies, submission / "member-packet.pdf", submission / "provider-packet.pdf",
                 submission / "annotated-list.pdf"):
        text = re.sub(r"\s+", " ", subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True,
                                                  text=True, check=True).stdout)
        assert needle not in text and "Memo from counsel" not in text, path.name
    assert re.sub(r"\s+", " ", " ".join(texts(copies))).count("Withheld: legally privileged") == 1


def test_a_copy_set_never_reads_a_source_document_and_carries_no_active_content(sealed, tmp_path):
    """Made from the sealed packet only (no case file is opened), through the pdf room's writer:
    active content put on a releasable page of the packet (a page /AA, a JavaScript link, document
    JavaScript) does not reach the copy set."""
    from pdfkit import HOSTILE, tamper
    from packet.pdf.inspect import find_active_content

    packet = sealed.paths.outbox / CASE_ID / "submission-01" / "imr-org-packet.pdf"
    for kind in ("indirect_launch", "next_chain", "names_javascript", "annotation_actions"):
        tamper(packet, kind)
    assert {HOSTILE[k][1] for k in ("indirect_launch", "next_chain")} <= {
        f.split()[0] for f in find_active_content(PdfReader(packet))}
    for path in (sealed.paths.inbox / CASE_ID).rglob("*.pdf"):
        path.unlink()  # nothing but the sealed packet is there to read
    copies = write_copies(sealed, CASE_ID, "member", now=NOW)
    assert find_active_content(PdfReader(copies)) == []
    assert sum("REPORT page" in t or "GRIEVANCE RESOLUTION page" in t for t in texts(copies)) == 3


def test_a_copy_set_refuses_a_stream_past_the_bound(sealed):
    import dataclasses

    from pdfkit import inflating_pdf
    from pypdf import PdfWriter

    packet = sealed.paths.outbox / CASE_ID / "submission-01" / "imr-org-packet.pdf"
    bomb = inflating_pdf(packet.parent / "bomb.pdf", 3 * 1024 * 1024)
    writer = PdfWriter(clone_from=packet)
    page = writer.pages[2]  # MRI report page 1: releasable
    page[NameObject("/Resources")] = PdfWriter(clone_from=bomb).pages[0]["/Resources"].clone(writer)
    writer.write(packet)
    bomb.unlink()
    small = dataclasses.replace(sealed, limits=dataclasses.replace(sealed.limits, max_stream_bytes=2 * 1024 * 1024))
    with pytest.raises(PacketError) as caught:
        write_copies(small, CASE_ID, "member", now=NOW)
    assert caught.value.reason == "stream_limit"
    assert not list((sealed.paths.outbox / CASE_ID).glob("copies/*.pdf"))
    assert write_copies(sealed, CASE_ID, "member", now=NOW).is_file()  # the default bound: 512 MiB
