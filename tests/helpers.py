"""Test-input builders shared by the test suite: PDFs, case folders and configurations in code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from packet.config import Config, load_config

MEMBER_NAME = "Rosalind Q. Testmember"
MEMBER_ID = "M998877665"
MEMBER_DOB = dt.date(1961, 4, 9)

CASE_TOML = """\
case_id = "{case_id}"
review_type = "{review_type}"
dispute_type = "{dispute_type}"
dmhc_notice_received = {notice}
disputed_service = "Lumbar spinal fusion L4-L5"
grievance_number = "G-2026-0456"
language = "{language}"

[member]
name = "{member_name}"
member_id = "{member_id}"
date_of_birth = {dob}
address = ["1200 Poppy Lane, Apt 3", "Sacramento, CA 95814"]

[provider]
name = "Dr. Alan Spineworth"
address = ["Capitol Orthopedics", "55 J Street", "Sacramento, CA 95814"]
fax = "(916) 555-0100"
"""


def make_config(tmp_path: Path, **flags) -> Config:
    """A configuration whose folders all live under tmp_path."""
    values = {key: str(tmp_path / key) for key in ("inbox", "outbox", "archive", "state")}
    values.update({k: str(v) for k, v in flags.items()})
    return load_config(None, flags=values, environ={})


def make_pdf(path: Path, pages: list[str], *, pagesize=letter, rotate: int = 0) -> Path:
    """A text PDF, one page per string (newlines become lines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=pagesize, invariant=1)
    for text in pages:
        y = pagesize[1] - 72
        for line in text.splitlines() or [""]:
            c.drawString(72, y, line)
            y -= 14
        if rotate:
            c.setPageRotation(rotate)
        c.showPage()
    c.save()
    return path


def write_case(inbox: Path, case_id: str = "IMR-2026-000417", *, review_type: str = "standard",
               dispute_type: str = "medical_necessity", language: str = "en",
               notice: str = "2026-11-25T16:10:00-08:00", extra: str = "") -> Path:
    case_dir = Path(inbox) / case_id
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "case.toml").write_text(CASE_TOML.format(
        case_id=case_id, review_type=review_type, dispute_type=dispute_type, notice=notice,
        language=language, member_name=MEMBER_NAME, member_id=MEMBER_ID,
        dob=MEMBER_DOB.isoformat()) + extra)
    return case_dir


def worker_trims(monkeypatch) -> list[tuple[str, float | None]]:
    """(job, trim_above_mib) of every job handed to a pool worker from now on (the jobs still run)."""
    from packet.workers import pool

    asked: list[tuple[str, float | None]] = []
    real_send = pool.Worker.send

    def send(self, target, *args, **kwargs):
        asked.append((target, kwargs.get("trim_above_mib")))
        return real_send(self, target, *args, **kwargs)

    monkeypatch.setattr(pool.Worker, "send", send)
    return asked
