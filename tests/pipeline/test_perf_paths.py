"""The fast paths of issue 7 keep the slow paths' meaning: long-lived conversion workers, the
classification cache, batched audit appends and stamps written as content operators.

No timing assertions: each test checks *what* happens (how many workers were started, whether
classify ran again, how many fsyncs an append took, what the stamps say), never how long it took.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import pytest
from docx import Document as DocxDocument

from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME, make_pdf, write_case
from packet.records import audit
from packet.classify import cache as classcache
from packet.classify import patterns as classify_patterns
from packet.classify import text as classify_text
from packet.classify import rules as classify
from packet.intake.convert import batch
from packet.pdf.inspect import pdf_summary
from packet.pipeline.build import build_case, case_state_dir
from packet.model.case import load_case
from packet.config import Rule, Rules
from packet.intake.convert.batch import convert_many
from packet.errors import RefusedFile
from packet.model.models import Converted, Override, SourceFile
from packet.workers import pool

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
WHO = f"Patient: {MEMBER_NAME}\nMember ID: {MEMBER_ID}\nDOB: {MEMBER_DOB:%m/%d/%Y}"


def _source(path: Path, relpath: str | None = None, **extra) -> SourceFile:
    st = path.stat()
    return SourceFile(relpath=relpath or path.name, path=path.resolve(), size=st.st_size, mtime_ns=st.st_mtime_ns,
                      **extra)


def _with_limits(config, **changes):
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, **changes))


class _Counting:
    """Counts the worker processes convert_many starts, and keeps their command lines."""

    def __init__(self, monkeypatch):
        self.started: list[list[str]] = []
        real = pool.Worker
        outer = self

        class Worker(real):
            def __init__(self, role):
                super().__init__(role)
                outer.started.append(list(self.process.args))

        monkeypatch.setattr(pool, "Worker", Worker)


# --- long-lived conversion workers -----------------------------------------------------------

def test_workers_take_many_files_each_and_never_see_a_file_name_on_the_command_line(config, tmp_path, monkeypatch):
    counting = _Counting(monkeypatch)
    paths = [make_pdf(tmp_path / f"secret-name-{n}.pdf", [f"text of file {n}"]) for n in range(6)]
    results = convert_many([_source(p) for p in paths], _with_limits(config, workers=2))
    assert [r.page_texts[0].strip() for r in results] == [f"text of file {n}" for n in range(6)]
    assert 1 <= len(counting.started) <= 2  # six files, at most two processes
    for command in counting.started:
        assert not any("secret-name" in part or str(tmp_path) in part for part in command)


def _pool_pids() -> list[int]:
    return pool.idle_pids("convert")


def test_idle_workers_wait_for_the_next_run_and_are_reused(config, tmp_path, monkeypatch):
    counting = _Counting(monkeypatch)
    two = _with_limits(config, workers=2)
    first = [make_pdf(tmp_path / f"first-{n}.pdf", [f"first run {n}"]) for n in range(4)]
    convert_many([_source(p) for p in first], two)
    started = len(counting.started)
    kept = _pool_pids()
    assert 1 <= started <= 2 and len(kept) == pool.IDLE_PER_ROLE and all(_alive(pid) for pid in kept)
    second = [make_pdf(tmp_path / f"second-{n}.pdf", [f"second run {n}"]) for n in range(3)]
    results = convert_many([_source(p) for p in second], _with_limits(config, workers=1))
    assert [r.page_texts[0].strip() for r in results] == [f"second run {n}" for n in range(3)]
    assert len(counting.started) == started, "the kept worker was not reused"
    batch.shutdown_pool()
    assert _pool_pids() == []
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in kept):
        assert time.monotonic() < deadline, "a pooled worker outlived shutdown_pool"
        time.sleep(0.05)


def test_a_worker_started_under_another_environment_is_not_reused(config, tmp_path, monkeypatch):
    counting = _Counting(monkeypatch)
    one = _with_limits(config, workers=1)
    convert_many([_source(make_pdf(tmp_path / "a.pdf", ["before"]))], one)
    old = _pool_pids()
    assert len(old) == 1 and len(counting.started) == 1
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")  # e.g. a new soffice
    convert_many([_source(make_pdf(tmp_path / "b.pdf", ["after"]))], one)
    assert len(counting.started) == 2
    assert old[0] not in _pool_pids()
    deadline = time.monotonic() + 10
    while _alive(old[0]):
        assert time.monotonic() < deadline, "the worker of the old environment was not ended"
        time.sleep(0.05)


def test_a_worker_outlives_the_test_runners_note_and_the_services_settings(config, tmp_path, monkeypatch):
    """pytest names the test and phase it runs in the environment, new at every setup, call and
    teardown, and a command line's IMR_* settings are read by its own process into the configuration:
    a kept worker (the service's next build, the next test of a file) must not count as started under
    another environment because of either, and is given neither."""
    counting = _Counting(monkeypatch)
    one = _with_limits(config, workers=1)
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/a.py::test_one (call)")
    monkeypatch.setenv("IMR_STATE", str(tmp_path / "one"))
    convert_many([_source(make_pdf(tmp_path / "a.pdf", ["before"]))], one)
    kept = _pool_pids()
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/a.py::test_two (setup)")
    monkeypatch.setenv("IMR_STATE", str(tmp_path / "two"))
    results = convert_many([_source(make_pdf(tmp_path / "b.pdf", ["after"]))], one)
    assert results[0].page_texts[0].strip() == "after"
    assert len(counting.started) == 1 and _pool_pids() == kept
    with open(f"/proc/{kept[0]}/environ", "rb") as environ:
        given = environ.read()
    assert b"PYTEST_CURRENT_TEST=" not in given and b"IMR_" not in given


def test_a_worker_that_grew_is_not_kept(config, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "WORKER_KEEP_RSS_MIB", 1)  # every worker is "large"
    convert_many([_source(make_pdf(tmp_path / "a.pdf", ["text"]))], _with_limits(config, workers=1))
    assert _pool_pids() == []


def test_prestart_leaves_ready_workers_so_the_first_run_starts_none(config, tmp_path, monkeypatch):
    two = _with_limits(config, workers=2)
    batch.prestart(two)
    assert len(_pool_pids()) == pool.IDLE_PER_ROLE == 1
    counting = _Counting(monkeypatch)
    paths = [make_pdf(tmp_path / f"p-{n}.pdf", [f"page {n}"]) for n in range(4)]
    results = convert_many([_source(p) for p in paths], _with_limits(config, workers=1))
    assert [r.page_texts[0].strip() for r in results] == [f"page {n}" for n in range(4)]
    assert counting.started == []


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_hung_worker_is_killed_and_replaced_and_the_next_files_still_convert(config, tmp_path, monkeypatch):
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    pid_file = tmp_path / "soffice.pid"
    _write_executable(fake_bin / "soffice", f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    counting = _Counting(monkeypatch)
    quick = _with_limits(config, conversion_timeout_seconds=0.5, pdf_open_timeout_seconds=3.0, workers=1)
    docx = DocxDocument()
    docx.add_paragraph("never finishes")
    hanging = tmp_path / "hangs.docx"
    docx.save(hanging)
    fine = [make_pdf(tmp_path / f"fine-{n}.pdf", [f"after the hang {n}"]) for n in range(2)]

    hung, *done = convert_many([_source(hanging)] + [_source(p) for p in fine], quick)

    assert isinstance(hung, RefusedFile) and hung.reason == "timeout" and not hung.transient  # final
    assert [d.page_texts[0].strip() for d in done] == ["after the hang 0", "after the hang 1"]
    assert len(counting.started) == 2  # the killed worker's replacement took both PDFs
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the hanging LibreOffice was not killed with its worker"
        time.sleep(0.05)


@pytest.mark.parametrize("large", [True, False])
def test_a_large_packet_is_assembled_without_an_idle_conversion_worker(config, monkeypatch, large):
    """From LET_GO_CONVERSION_FROM_PAGES pages the idle conversion worker (45-50 MB) is let go while the
    packet is assembled: a build whose files are all taken in converts nothing more. A smaller case keeps it."""
    from packet.pipeline import submission

    monkeypatch.setattr(submission, "LET_GO_CONVERSION_FROM_PAGES", 2 if large else 3)
    case_dir = _case(config)  # two one-page documents
    converted_by: list[list[int]] = []
    real_build_outputs = submission.build_outputs

    def build_outputs(*args, **kwargs):
        converted_by.append(_pool_pids())  # the documents are taken in: the worker that did it is idle
        return real_build_outputs(*args, **kwargs)

    monkeypatch.setattr("packet.pipeline.build.build_outputs", build_outputs)
    result = build_case(case_dir, _with_limits(config, workers=2), now=NOW)
    assert len(result.documents) == 2 and (result.draft_dir / "imr-org-packet.pdf").is_file()
    [before] = converted_by
    assert len(before) == 1
    if not large:
        assert _pool_pids() == before, "a small case keeps its warm conversion worker"
        return
    assert _pool_pids() == []
    deadline = time.monotonic() + 10
    while _alive(before[0]):
        assert time.monotonic() < deadline, "the idle conversion worker did not end"
        time.sleep(0.05)
    # the next files get a new worker; a worker let go and ended is reaped by the next let_go
    again = write_case(config.paths.inbox, "IMR-2026-000418")
    make_pdf(again / "denial letter.pdf", [f"Notice of Action\nDate: 10/02/2026\n{WHO}\nDenied.", "Page two."])
    assert len(build_case(again, _with_limits(config, workers=2), now=NOW).documents) == 1
    assert before[0] not in [worker.process.pid for worker in pool._leaving]  # noqa: SLF001

# --- the classification cache ------------------------------------------------------------------

def _case(config) -> Path:
    case_dir = write_case(config.paths.inbox)
    make_pdf(case_dir / "medical-records" / "mri report.pdf",
             [f"MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026\n{WHO}\nFindings: disc protrusion at L4-L5."])
    make_pdf(case_dir / "denial letter.pdf",
             [f"Notice of Action\nDate: 10/02/2026\n{WHO}\nWe denied the requested lumbar fusion."])
    return case_dir


def _forbid_classify(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("classified again although nothing it reads changed")
    monkeypatch.setattr(classify, "describe", refuse)


def test_a_rebuild_reuses_decisions_and_gives_the_same_documents(config, monkeypatch):
    case_dir = _case(config)
    first = build_case(case_dir, config, now=NOW)
    assert (case_state_dir(config, case_dir.name) / classcache.FILE_NAME).is_file()
    _forbid_classify(monkeypatch)
    second = build_case(case_dir, config, now=NOW + dt.timedelta(minutes=5))
    assert second.documents == first.documents


def _inputs(config, tmp_path):
    pdf = make_pdf(tmp_path / "letter.pdf", ["x"])
    converted = Converted(sha256="ab" * 32, pdf_path=pdf, pages=1, source_kind="pdf",
                          page_texts=(f"Notice of Action\nDate: 10/02/2026\n{WHO}\nWe denied it.",))
    case_dir = write_case(config.paths.inbox)
    return _source(pdf, "letter.pdf"), converted, load_case(case_dir)


def test_every_input_of_a_decision_is_in_the_fingerprint(config, tmp_path):
    source, converted, facts = _inputs(config, tmp_path)
    base = classcache.fingerprint(source, converted, facts, None, config, NOW)
    assert base == classcache.fingerprint(source, converted, facts, None, config, NOW)
    other_rules = dataclasses.replace(config, rules=Rules(rules=config.rules.rules + (
        Rule(id="extra", kind="category", patterns=("zzz",), category="correspondence"),)))
    other_member = dataclasses.replace(facts, member=dataclasses.replace(facts.member, name="Someone Else"))
    changed = [
        classcache.fingerprint(source, dataclasses.replace(converted, sha256="cd" * 32), facts, None, config, NOW),
        classcache.fingerprint(dataclasses.replace(source, relpath="correspondence/letter.pdf",
                                                   hint_category="correspondence"), converted, facts, None, config, NOW),
        classcache.fingerprint(dataclasses.replace(source, in_privileged_folder=True), converted, facts, None,
                               config, NOW),
        classcache.fingerprint(source, converted, facts, Override(title="A title"), config, NOW),
        classcache.fingerprint(source, converted, other_member, None, config, NOW),
        classcache.fingerprint(source, converted, facts, None, other_rules, NOW),
        classcache.fingerprint(source, converted, facts, None, config, NOW + dt.timedelta(days=40)),
        classcache.fingerprint(source, dataclasses.replace(converted, title="Metadata title"), facts, None,
                               config, NOW),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_a_changed_override_is_classified_again_and_a_damaged_file_is_ignored(config, tmp_path, monkeypatch):
    source, converted, facts = _inputs(config, tmp_path)
    path = tmp_path / "state" / classcache.FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    store = classcache.open_cache(path.parent)
    plain = store.describe(source, converted, facts, None, config, NOW)
    store.save()
    assert plain == classify.describe(source, converted, facts, None, config, NOW)

    calls = []
    real = classify.describe
    monkeypatch.setattr(classify, "describe", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = classcache.open_cache(path.parent)
    assert again.describe(source, converted, facts, None, config, NOW) == plain and not calls
    override = Override(title="Set by a person", privileged="counsel said so")
    flagged = again.describe(source, converted, facts, override, config, NOW)
    assert calls and flagged.title.value == "Set by a person" and flagged.is_privileged

    path.write_text("{not json")
    broken = classcache.open_cache(path.parent)
    assert broken.describe(source, converted, facts, None, config, NOW) == plain


# --- batched audit appends ---------------------------------------------------------------------

def test_a_batch_is_one_fsync_of_the_log_and_chains_like_single_records(config, monkeypatch):
    audit.record(config, "draft_built", case="IMR-2026-000417", documents=0)
    synced = []
    real_fsync = os.fsync
    log_name = config.audit_log.name

    def counting_fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(log_name):
            synced.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    batch = audit.Batch(config)
    for number in range(5):
        batch.record("classified", case="IMR-2026-000417", doc="ab" * 32, rule=f"rule-{number}", source="a name")
    assert not synced  # nothing written before flush
    entries = batch.flush()
    assert len(synced) == 1
    assert [e["seq"] for e in entries] == [2, 3, 4, 5, 6]
    assert all(e["source"] == "[redacted]" for e in entries)
    report = audit.verify_chain(config)
    assert report.ok, report
    lines = config.audit_log.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]
    audit.record(config, "draft_built", case="IMR-2026-000417", documents=5)
    assert audit.verify_chain(config).ok


def test_a_batch_rejects_a_bad_event_at_once(config):
    with pytest.raises(ValueError):
        audit.Batch(config).record("Not An Event", case="IMR-2026-000417")
    assert audit.record_many(config, []) == []


def test_a_batch_rotates_the_log_when_it_fills_up(config, monkeypatch):
    monkeypatch.setattr(audit, "MAX_LOG_BYTES", 600)
    audit.record_many(config, [("classified", {"case": "IMR-2026-000417", "rule": f"r{n}"}) for n in range(12)])
    assert len(audit.log_files(config)) > 1
    report = audit.verify_chain(config)
    assert report.ok, report


# --- stamps as content operators ---------------------------------------------------------------

def test_draft_stamps_say_what_they_said_before(config):
    case_dir = _case(config)
    make_pdf(case_dir / "privileged" / "counsel memo.pdf", [f"Memo from counsel\n{WHO}"])
    result = build_case(case_dir, config, now=NOW)
    summary = pdf_summary(result.draft_dir / "imr-org-packet.pdf")
    prefix = config.bates.prefix.format(case_id=case_dir.name)
    document_stamps = [s for s in summary["stamps"] if any(t.startswith(prefix) for t in s)]
    assert len(document_stamps) == 3
    assert all("DRAFT" in s for s in summary["stamps"])
    assert sum(any("PRIVILEGED" in t for t in s) for s in summary["stamps"]) == 1


# --- the pre-check before each rule's regular expression --------------------------------------

TEXTS = (
    f"PROGRESS NOTE\nDate of service: 03/04/2026\n{WHO}\nChief complaint: low back pain.",
    f"Notice of Action\nDate: 10/02/2026\n{WHO}\nWe denied the requested lumbar fusion. Grievance resolution.",
    f"Medical Director Review\n{WHO}\nInterQual criteria applied. (c) 2026 Change Healthcare. All rights reserved.",
    "PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION\nPrepared at the direction of counsel.",
    "pRoGreſs NOTE written with a long s, CRİTERİA with a dotted I, and a \u212aelvin sign: \u212aaiser",
    "Carta de apelación\nQuiero apelar la decisión del plan. 5 de octubre de 2026",
    "MRI LUMBAR SPINE\nImpression: disc protrusion at L4-L5. Radiology report follows.",
    "",
)


def test_the_pre_check_never_skips_a_page_a_rule_matches(config):
    for rule in config.rules.rules:
        requirements = classify_patterns.requirements(rule.patterns)
        for text in TEXTS:
            page = classify_text.flat(text)
            possible = classify_patterns.possible(requirements, classify_patterns.folded(page))
            for index, pattern in enumerate(rule.patterns):
                if re.search(pattern, page, re.IGNORECASE):
                    assert index in possible, (rule.id, text)
            if any(p.search(page) for p in classify_patterns.compiled(rule.patterns)):
                assert possible, (rule.id, text)
    assert classify_patterns.requirements((r"\bprogress notes?\b",)) == ((("progress note",),),)
    assert classify_patterns.requirements((r"\bMR\b",)) == ((("mr",),),)  # short, but still required
    assert classify_patterns.requirements((r"\d+",)) == (None,)  # no literal string: always searched


def test_decisions_are_the_same_with_and_without_the_pre_check(config, tmp_path, monkeypatch):
    case_dir = write_case(config.paths.inbox)
    facts = load_case(case_dir)
    pdf = make_pdf(tmp_path / "x.pdf", ["x"])
    documents = []
    for number, text in enumerate(TEXTS):
        converted = Converted(sha256=f"{number:064x}", pdf_path=pdf, pages=2, source_kind="pdf",
                              page_texts=(text, TEXTS[(number + 3) % len(TEXTS)]))
        documents.append((_source(pdf, f"doc {number}.pdf"), converted))
    fast = [classify.describe(s, c, facts, None, config, NOW) for s, c in documents]
    monkeypatch.setattr(classify, "requirements", lambda patterns: None)  # every page searched, whole
    slow = [classify.describe(s, c, facts, None, config, NOW) for s, c in documents]
    assert fast == slow
    assert any(d.category.rule.startswith("rule:") for d in fast)


def test_a_build_renders_the_front_matter_once_and_writes_the_same_bytes(config, monkeypatch):
    from packet.pipeline import numbering as assemble

    case_dir = _case(config)
    renders = []
    real = assemble.render_front_matter
    monkeypatch.setattr(assemble, "render_front_matter", lambda *a, **k: renders.append(1) or real(*a, **k))
    assemble._FRONT_PAGES_SEEN.clear()
    packet = config.paths.outbox / case_dir.name / "draft" / "imr-org-packet.pdf"
    build_case(case_dir, config, now=NOW)
    first, first_build = packet.read_bytes(), len(renders)
    mailings = {p.name: p.read_bytes() for p in packet.parent.iterdir() if p.name != "manifest.json"}
    build_case(case_dir, config, now=NOW)
    assert packet.read_bytes() == first
    assert first_build == 1 and len(renders) == 2  # the index laid out without drawing gave the count
    for key in assemble._FRONT_PAGES_SEEN:
        assemble._FRONT_PAGES_SEEN[key] = 7  # a wrong remembered count costs a pass, never the result
    build_case(case_dir, config, now=NOW)
    assert packet.read_bytes() == first and len(renders) == 4
    assemble._FRONT_PAGES_SEEN.clear()  # a wrong estimate too
    monkeypatch.setattr(assemble, "estimate_front_pages", lambda *a, **k: 5)
    build_case(case_dir, config, now=NOW)
    assert packet.read_bytes() == first and len(renders) == 6
    # The mailings, started from the wrong count and restarted from the right one, are the same.
    assert {p.name: p.read_bytes() for p in packet.parent.iterdir() if p.name != "manifest.json"} == mailings


def test_the_manifest_counts_every_output_page_without_reading_every_page(config, tmp_path):
    """Output page counts come from the page tree's /Count (the member packet, with its enclosed
    records, is not read page by page): they must be what a reader counts, and a file whose tree
    states no plain count is counted page by page."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, TextStringObject

    from packet.pipeline.submission import pdf_pages

    case_dir = _case(config)
    build_case(case_dir, config, now=NOW)
    draft = config.paths.outbox / case_dir.name / "draft"
    manifest = json.loads((draft / "manifest.json").read_text(encoding="utf-8"))
    counted = {o["file"]: o["pages"] for o in manifest["outputs"] if o["file"].endswith(".pdf")}
    assert {"member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf", "imr-org-packet.pdf"} <= set(counted)
    for name, pages in counted.items():
        assert pages == len(PdfReader(str(draft / name)).pages) > 0, name

    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(612, 792)
    writer._root_object["/Pages"][NameObject("/Count")] = TextStringObject("three")  # noqa: SLF001
    odd = tmp_path / "odd.pdf"
    writer.write(odd)
    assert pdf_pages(odd) == 3
