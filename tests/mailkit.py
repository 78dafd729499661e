"""Shared test kit for the mailings room: a generated case context, documents and text helpers."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

from pypdf import PdfReader

from helpers import make_config, make_pdf, write_case
from packet.mailings.layout import render_mailings
from packet.model.case import load_case
from packet.model.context import BuildContext
from packet.model.models import Deadline, Decision, Document
from packet.model.pagelist import number_pages

PST = dt.timezone(dt.timedelta(hours=-8))
GENERATED = dt.datetime(2026, 11, 30, 10, 2, 11, tzinfo=PST)
MARKER_PRIV = "ZQXPRIVMARKER"
MARKER_WITHHELD = "ZQXWITHHELDMARKER"
REPRESENTATIVE = """
[representative]
name = "María José O'Connor-Núñez"
relationship = "madre"
address = ["77 Calle Larga & Co. <Apt 2>", "Fresno, CA 93701"]
"""

HS_1368_02B = (
    "The California Department of Managed Health Care is responsible for regulating health care service "
    "plans. If you have a grievance against your health plan, you should first telephone your health plan "
    "at {phone} and use your health plan's grievance process before contacting the department. Utilizing "
    "this grievance procedure does not prohibit any potential legal rights or remedies that may be "
    "available to you. If you need help with a grievance involving an emergency, a grievance that has not "
    "been satisfactorily resolved by your health plan, or a grievance that has remained unresolved for "
    "more than 30 days, you may call the department for assistance. You may also be eligible for an "
    "Independent Medical Review (IMR). If you are eligible for IMR, the IMR process will provide an "
    "impartial review of medical decisions made by a health plan related to the medical necessity of a "
    "proposed service or treatment, coverage decisions for treatments that are experimental or "
    "investigational in nature and payment disputes for emergency or urgent medical services. The "
    "department also has a toll-free telephone number (1-888-466-2219) and a TDD line (1-877-688-9891) "
    "for the hearing and speech impaired. The department's internet website www.dmhc.ca.gov has "
    "complaint forms, IMR application forms and instructions online.")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


def poppler_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-q", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def make_document(folder: Path, number: int, title: str, category: str, pages: int, *, privileged=False,
                  withheld=False, date=dt.date(2026, 8, 14), author=None, text=None,
                  title_rule="text") -> Document:
    body = text or title
    pdf = make_pdf(folder / f"doc{number}.pdf", [f"{body} page {i + 1}" for i in range(pages)])
    return Document(
        source=f"docs/doc{number}.pdf", sha256=f"{number:064x}",
        received_at=dt.datetime(2026, 11, 25, 10, tzinfo=PST), title=Decision(title, title_rule),
        date=Decision(date, "text"), category=Decision(category, "folder"),
        privileged=Decision(privileged, "rule:attorney-client" if privileged else "default"),
        withheld=Decision(withheld, "rule:psychotherapy-notes" if withheld else "default"),
        identity=Decision("confirmed", "member id"), pages=pages, pdf_path=pdf, author=author)


def standard_documents(folder: Path) -> list[Document]:
    return [
        make_document(folder, 1, "MRI lumbar spine report", "medical_records", 2,
                      author="Sacramento Imaging & <Radiology>"),
        make_document(folder, 2, "Notice of action: denial", "correspondence", 1),
        make_document(folder, 3, f"Counsel memo {MARKER_PRIV}", "plan_statements", 3, privileged=True,
                      author=f"Outside counsel {MARKER_PRIV}", text=f"Litigation risk {MARKER_PRIV}"),
        make_document(folder, 4, f"Psychotherapy notes {MARKER_WITHHELD}", "medical_records", 2, withheld=True,
                      author=f"Dr. {MARKER_WITHHELD}", text=f"Session notes {MARKER_WITHHELD}"),
        make_document(folder, 5, "Grievance resolution letter", "correspondence", 2, date=None),
    ]


def build_context(tmp_path: Path, *, language="en", extra="", review_type="standard",
                  dispute_type="medical_necessity", draft=False, submission=1, kind="initial", config=None,
                  top=""):
    """`top`: case.toml keys written before the first table (e.g. 'records_to = "provider"')."""
    config = config or make_config(tmp_path)
    case_dir = write_case(config.paths.inbox, language=language, extra=extra, review_type=review_type,
                          dispute_type=dispute_type)
    if top:
        toml = case_dir / "case.toml"
        toml.write_text(top.strip() + "\n" + toml.read_text(encoding="utf-8"), encoding="utf-8")
    facts = load_case(case_dir)
    deadline = Deadline(review_type, facts.dmhc_notice_received, dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=PST),
                        "3 business days after the plan received DMHC's notice", "test calendar")
    return BuildContext(config=config, facts=facts, deadline=deadline, submission=submission, kind=kind,
                        generated_at=GENERATED, draft=draft)


def render(tmp_path: Path, documents=None, out="out", **kwargs):
    ctx = build_context(tmp_path, **kwargs)
    documents = documents if documents is not None else standard_documents(tmp_path / "docs")
    page_list = number_pages(documents, case_id=ctx.facts.case_id, submission=ctx.submission, kind=ctx.kind,
                             first_bates=1, front_pages=2, bates=ctx.config.bates)
    paths = render_mailings(page_list, ctx, tmp_path / out)
    return ctx, page_list, {p.name: p for p in paths}
