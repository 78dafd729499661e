"""The render worker (packet.workers.render, a pool worker of the "render" role): same bytes as rendering here, errors raised here,
a dead worker costs time and never output, and no worker is left behind."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest

from helpers import MEMBER_NAME, make_config, worker_trims
from packet import log
from packet.mailings import layout as mailings
from packet.workers import render as renderworker
from packet.config import PROJECT_ROOT
from packet.errors import TemplateError
from packet.model.pagelist import number_pages
from mailkit import build_context, standard_documents

TARGET = "packet.mailings.layout:render_mailings"


def numbered(tmp_path: Path, **kwargs):
    ctx = build_context(tmp_path, **kwargs)
    documents = standard_documents(tmp_path / "docs")
    page_list = number_pages(documents, case_id=ctx.facts.case_id, submission=ctx.submission, kind=ctx.kind,
                             first_bates=1, front_pages=2, bates=ctx.config.bates)
    return ctx, page_list


def files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def wait_until(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def render_workers() -> list[int]:
    """Live render-worker processes whose parent is this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == os.getpid() and b"packet.workers.pool\x00--worker\x00render" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def fresh_worker():
    renderworker.shutdown()
    yield
    renderworker.shutdown()


def test_the_worker_renders_the_same_bytes_as_this_process(tmp_path, monkeypatch):
    ctx, page_list = numbered(tmp_path, language="es", draft=True)
    here = mailings.render_mailings(page_list, ctx, tmp_path / "here")
    # From now on this process cannot render: whatever arrives was made by the worker.
    monkeypatch.setattr(mailings, "render_mailings", lambda *a, **k: pytest.fail("rendered in the caller"))
    there = renderworker.submit(TARGET, page_list, ctx, tmp_path / "there").result()
    assert [p.name for p in there] == [p.name for p in here]
    assert files(tmp_path / "there") == files(tmp_path / "here")
    for path in there:
        assert path.stat().st_mode & 0o777 == 0o640


def test_the_worker_is_kept_for_the_next_job_and_never_doubled(tmp_path, monkeypatch):
    ctx, page_list = numbered(tmp_path)
    renderworker.prestart()
    for round_number in range(3):
        renderworker.submit(TARGET, page_list, ctx, tmp_path / f"out{round_number}").result()
        renderworker.prestart()  # a build starting while one is waiting: still one worker
        assert len(render_workers()) == 1
    renderworker.shutdown()
    assert wait_until(lambda: not render_workers())


def test_the_worker_returns_its_memory_after_each_mailing_and_stays_small(tmp_path, monkeypatch):
    """A mailing with a case's records is the largest thing the worker holds; once it has answered,
    it hands the freed memory back (packet.workers.pool.return_free_memory), so the idle worker a
    service keeps between builds does not stay at the size of its largest mailing."""
    asked = worker_trims(monkeypatch)
    ctx, page_list = numbered(tmp_path)
    renderworker.prestart()
    renderworker.submit(TARGET, page_list, ctx, tmp_path / "out").result()
    assert (TARGET, 0) in asked
    [pid] = render_workers()

    def rss_mib() -> float:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024

    def peak_mib() -> float:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024

    # Without the trim the idle worker stays at its peak (measured: 84.9 of 84.9 MiB; with it 77.2).
    assert wait_until(lambda: rss_mib() < peak_mib() - 2)


def test_a_worker_a_mailing_left_large_ends_and_the_next_job_gets_a_new_one(tmp_path, monkeypatch):
    """What a large mailing leaves in Python's arenas a trim cannot give back: a worker still above
    WORKER_END_ABOVE_MIB once it has returned its free memory ends once it has answered (while the
    build's process may be writing its packet), and is not kept; the next job starts another and makes
    the same files."""
    ctx, page_list = numbered(tmp_path)
    renderworker.prestart()
    renderworker.submit(TARGET, page_list, ctx, tmp_path / "kept").result()
    [kept] = render_workers()  # the test case leaves it well below the bound
    monkeypatch.setattr(renderworker, "WORKER_END_ABOVE_MIB", 1)
    renderworker.submit(TARGET, page_list, ctx, tmp_path / "large").result()
    assert not renderworker.waiting()
    assert wait_until(lambda: kept not in render_workers())
    monkeypatch.setattr(renderworker, "WORKER_END_ABOVE_MIB", 112)
    renderworker.submit(TARGET, page_list, ctx, tmp_path / "next").result()
    [new] = render_workers()
    assert new != kept
    for path in sorted((tmp_path / "kept").iterdir()):
        assert path.read_bytes() == (tmp_path / "next" / path.name).read_bytes(), path.name


def test_a_template_error_in_the_worker_is_raised_here(tmp_path):
    templates_dir = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates_dir)
    letter = templates_dir / "en" / "member-letter.md.j2"
    letter.write_text(letter.read_text() + "\n{{ member.favourite_colour }}\n")
    ctx, page_list = numbered(tmp_path, config=make_config(tmp_path, templates=templates_dir))
    with pytest.raises(TemplateError) as here:
        mailings.render_mailings(page_list, ctx, tmp_path / "here")
    with pytest.raises(TemplateError) as info:
        renderworker.submit(TARGET, page_list, ctx, tmp_path / "out").result()
    assert type(info.value) is type(here.value)
    assert (info.value.reason, str(info.value)) == (here.value.reason, str(here.value))
    assert "favourite_colour" in str(info.value)
    assert any("pool worker" in note for note in getattr(info.value, "__notes__", []))


@pytest.mark.slow
def test_a_worker_killed_mid_job_costs_time_not_output(tmp_path):
    ctx, page_list = numbered(tmp_path)
    expected = files(Path(mailings.render_mailings(page_list, ctx, tmp_path / "expected")[0]).parent)
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        pending = renderworker.submit(TARGET, page_list, ctx, tmp_path / "out")
        pending.worker.process.kill()
        paths = pending.result()
    finally:
        log.set_stream(None)
    assert files(tmp_path / "out") == expected
    assert sorted(p.name for p in paths) == sorted(expected)
    assert '"render_worker.failed"' in stream.getvalue()
    assert MEMBER_NAME not in stream.getvalue() and "doc1" not in stream.getvalue()
    # The next job gets a new worker.
    renderworker.submit(TARGET, page_list, ctx, tmp_path / "again").result()
    assert files(tmp_path / "again") == expected


def test_cancel_ends_the_job_and_its_worker(tmp_path):
    ctx, page_list = numbered(tmp_path)
    pending = renderworker.submit(TARGET, page_list, ctx, tmp_path / "out")
    pid = pending.worker.process.pid
    pending.cancel()
    assert wait_until(lambda: pid not in render_workers())
    assert render_workers() == []


def test_only_named_jobs_run_in_the_worker():
    with pytest.raises(ValueError, match="not a render job"):
        renderworker.submit("os:system", "true")
    with pytest.raises(ValueError, match="not a render job"):
        renderworker._call("os:system", ("true",), {})


def test_mailings_split_between_the_worker_and_this_process_are_the_files_of_one_call(tmp_path):
    from packet.pipeline.submission import worker_mailings

    ctx, page_list = numbered(tmp_path, language="es", draft=True)
    in_worker = worker_mailings(ctx.facts)
    whole = mailings.render_mailings(page_list, ctx, tmp_path / "whole")
    assert [p.name for p in whole] == list(mailings.MAILING_FILES)
    pending = renderworker.submit(TARGET, page_list, ctx, tmp_path / "split", in_worker)
    rest = mailings.render_mailings(page_list, ctx, tmp_path / "split",
                                    [name for name in mailings.MAILING_FILES if name not in in_worker])
    there = pending.result()
    assert sorted(p.name for p in there) == sorted(in_worker)
    assert {p.name for p in rest}.isdisjoint(in_worker)
    assert files(tmp_path / "split") == files(tmp_path / "whole")
    with pytest.raises(ValueError, match="not a mailing"):
        mailings.render_mailings(page_list, ctx, tmp_path / "bad", ["secret.pdf"])


def test_one_allowed_worker_renders_everything_here_with_the_same_bytes(tmp_path):
    import datetime as dt

    from packet.pipeline.build import build_case

    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    drafts = {}
    for workers in (1, 2):
        config, case_dir = _small_case(tmp_path / str(workers), workers=workers)
        build_case(case_dir, config, now=now)
        if workers == 1:
            assert render_workers() == [], "a render worker was started although one process was allowed"
        drafts[workers] = _draft_mailings(config, case_dir)
    assert drafts[1] == drafts[2]


def _small_case(root: Path, workers: int = 2):
    import dataclasses

    from helpers import make_pdf, write_case

    config = make_config(root)
    config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, workers=workers))
    case_dir = write_case(config.paths.inbox)
    make_pdf(case_dir / "medical-records" / "mri.pdf", ["MRI LUMBAR SPINE REPORT\nExam date: 08/14/2026"])
    make_pdf(case_dir / "correspondence" / "denial.pdf", ["Notice of Action\nDate: 10/02/2026"])
    return config, case_dir


def _draft_mailings(config, case_dir: Path) -> dict[str, bytes]:
    """The mailings of the case's draft, by file name."""
    draft = config.paths.outbox / case_dir.name / "draft"
    return {name: (draft / name).read_bytes() for name in mailings.MAILING_FILES}


def _one_process_mailings(root: Path, now) -> dict[str, bytes]:
    """The draft mailings of the same small case built with one process allowed (no render worker)."""
    from packet.pipeline.build import build_case

    config, case_dir = _small_case(root, workers=1)
    build_case(case_dir, config, now=now)
    return _draft_mailings(config, case_dir)


def _rendered_here(monkeypatch) -> list[list[str]]:
    """What the build writes in its own process, call by call (the rest went to the worker)."""
    from packet.pipeline import submission

    calls: list[list[str]] = []
    real = submission.render_mailings

    def here(page_list, ctx, out_dir, only=None, **shared):
        written = real(page_list, ctx, out_dir, only, **shared)
        calls.append(sorted(path.name for path in written))
        return written

    monkeypatch.setattr(submission, "render_mailings", here)
    return calls


def test_a_small_case_renders_here_without_starting_a_worker(tmp_path, monkeypatch):
    """A render worker is a fresh interpreter loading fonts (about 0.6 s of CPU): a case of a few
    pages renders its mailings in the build's own process, and starts none."""
    from packet.pipeline.build import build_case

    calls = _rendered_here(monkeypatch)
    config, case_dir = _small_case(tmp_path)
    build_case(case_dir, config)
    assert render_workers() == []
    assert calls == [sorted(mailings.MAILING_FILES)]


def test_a_waiting_worker_renders_even_a_small_case(tmp_path, monkeypatch):
    """A worker already waiting (a service keeps one) renders the member and provider packets while
    the build merges the IMR packet, whatever the case's size."""
    from packet.pipeline.build import build_case
    calls = _rendered_here(monkeypatch)
    config, case_dir = _small_case(tmp_path)
    renderworker.warm()
    build_case(case_dir, config)
    assert len(calls) == 1 and "member-packet.pdf" not in calls[0]  # the others: whoever was free first
    draft = config.paths.outbox / case_dir.name / "draft"
    assert all((draft / name).is_file() for name in mailings.MAILING_FILES)
    assert len(render_workers()) == 1  # given back, waiting for the next build


@pytest.mark.parametrize("threshold", ["START_FOR_PAGES", "START_FOR_BYTES"])
def test_a_large_case_starts_a_worker_for_its_mailings(tmp_path, monkeypatch, threshold):
    """A case with START_FOR_PAGES numbered pages, or whose files hold START_FOR_BYTES (each lowered
    here to 1, as if this small case were large), starts a render worker for its mailings; the
    files are those of a build that renders them here."""
    import datetime as dt

    from packet.pipeline.build import build_case

    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    monkeypatch.setattr(renderworker, threshold, 1)
    calls = _rendered_here(monkeypatch)
    config, case_dir = _small_case(tmp_path / "worker")
    build_case(case_dir, config, now=now)
    assert len(calls) == 1 and "member-packet.pdf" not in calls[0]
    assert len(render_workers()) == 1
    monkeypatch.undo()
    assert _draft_mailings(config, case_dir) == _one_process_mailings(tmp_path / "here", now)


@pytest.mark.parametrize("top,in_worker", [("", "member-packet.pdf"),
                                           ('records_to = "provider"', "provider-packet.pdf")])
def test_the_worker_lays_out_the_mailing_that_carries_the_records(tmp_path, top, in_worker):
    """The mailing with the copies of the medical records is by far the largest: the worker lays it
    out while the build merges the IMR packet and then renders the others, and the split makes the
    files one call makes."""
    from packet.pipeline.submission import worker_mailings

    ctx, page_list = numbered(tmp_path, top=top)
    assert worker_mailings(ctx.facts) == (in_worker,)
    whole = mailings.render_mailings(page_list, ctx, tmp_path / "whole")
    pending = renderworker.submit(TARGET, page_list, ctx, tmp_path / "split", worker_mailings(ctx.facts))
    mailings.render_mailings(page_list, ctx, tmp_path / "split",
                             [name for name in mailings.MAILING_FILES if name != in_worker])
    assert [p.name for p in pending.result()] == [in_worker]
    assert files(tmp_path / "split") == files(whole[0].parent)


@pytest.mark.parametrize("first", ["worker", "here", "together"])
def test_shared_mailings_are_written_once_by_whichever_process_claims_them_first(tmp_path, first):
    """The worker writes its mailing, then takes the others from the front; the build's process takes
    them from the back once its packet is written. Whoever is free first writes more; every mailing is
    written once, and the files are those of one call."""
    from packet.pipeline.submission import shared_mailings, worker_mailings

    ctx, page_list = numbered(tmp_path, language="es", draft=True)
    whole = files(Path(mailings.render_mailings(page_list, ctx, tmp_path / "whole")[0]).parent)
    claims = tmp_path / "claims"
    claims.mkdir()
    shared = shared_mailings(ctx.facts)
    out = tmp_path / "split"

    def here():
        return mailings.render_mailings(page_list, ctx, out, (), shared=claims, then=tuple(reversed(shared)))

    if first == "here":
        mine = here()
    pending = renderworker.submit(TARGET, page_list, ctx, out, worker_mailings(ctx.facts), shared=claims,
                                  then=shared)
    if first == "worker":
        there = pending.result()
        mine = here()
    else:
        if first == "together":
            mine = here()
        there = pending.result()
    mine, there = [p.name for p in mine], [p.name for p in there]
    assert there[:1] == list(worker_mailings(ctx.facts))
    assert set(mine).isdisjoint(there) and sorted(mine + there) == sorted(mailings.MAILING_FILES)
    if first == "worker":
        assert mine == []
    if first == "here":
        assert there == list(worker_mailings(ctx.facts))
    assert files(out) == whole
    assert sorted(p.name for p in claims.iterdir()) == sorted(shared)


def test_a_call_stops_at_the_first_mailing_it_cannot_claim_and_then_reads_nothing(tmp_path, monkeypatch):
    ctx, page_list = numbered(tmp_path)
    claims = tmp_path / "claims"
    claims.mkdir()
    (claims / "annotated-list.pdf").touch()  # the other process has it
    written = mailings.render_mailings(page_list, ctx, tmp_path / "out", (), shared=claims,
                                       then=("notice-letter.docx", "annotated-list.pdf", "annotated-list.csv"))
    assert [p.name for p in written] == ["notice-letter.docx"]  # the CSV is the other process's to take
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notice-letter.docx"]

    def no_templates(*args, **kwargs):
        raise AssertionError("read the templates with nothing to write")

    monkeypatch.setattr(mailings, "Templates", no_templates)
    assert mailings.render_mailings(page_list, ctx, tmp_path / "none", (), shared=claims,
                                    then=("notice-letter.docx", "annotated-list.csv")) == []
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match="shared folder"):
        mailings.render_mailings(page_list, ctx, tmp_path / "bad", (), then=("annotated-list.csv",))
    with pytest.raises(ValueError, match="named once"):
        mailings.render_mailings(page_list, ctx, tmp_path / "bad", ["annotated-list.csv"], shared=claims,
                                 then=("annotated-list.csv",))
    with pytest.raises(ValueError, match="not a mailing"):
        mailings.render_mailings(page_list, ctx, tmp_path / "bad", (), shared=claims, then=("secret.pdf",))


@pytest.mark.slow
def test_a_worker_that_dies_holding_claims_costs_time_not_mailings(tmp_path, monkeypatch):
    """The worker claimed every shared mailing and died before writing them: the build's process
    writes what it did not write itself, and the draft is the draft of a one-process build."""
    import datetime as dt

    from packet.pipeline import submission
    from packet.pipeline.build import build_case

    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    real = submission._start_mailings
    killed = []

    def dying(page_list, ctx, out_dir):
        job = real(page_list, ctx, out_dir)
        for name in submission.shared_mailings(ctx.facts):
            (job.claims / name).touch()
        job.pending.worker.process.kill()
        killed.append(job.claims)
        return job

    monkeypatch.setattr(submission, "_start_mailings", dying)
    monkeypatch.setattr(renderworker, "START_FOR_PAGES", 1)
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        config, case_dir = _small_case(tmp_path / "dying")
        build_case(case_dir, config, now=now)
    finally:
        log.set_stream(None)
    assert killed and not killed[0].exists()  # the claims folder goes with the build
    assert '"render_worker.failed"' in stream.getvalue()
    monkeypatch.undo()
    assert _draft_mailings(config, case_dir) == _one_process_mailings(tmp_path / "here", now)


def test_mailings_restarted_from_a_corrected_page_count_leave_no_claims_and_the_same_files(tmp_path, monkeypatch):
    """A wrong front-matter estimate numbers the pages twice: the worker's first job is ended and its
    claims folder removed at once; the second job and this process share the mailings as usual."""
    import datetime as dt

    from packet.pipeline import numbering, submission
    from packet.pipeline.build import build_case

    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    jobs = []
    real = submission._start_mailings

    def recorded(page_list, ctx, out_dir):
        job = real(page_list, ctx, out_dir)
        jobs.append((job, list(job.claims.parent.glob("claims-*"))))
        return job

    numbering._FRONT_PAGES_SEEN.clear()
    monkeypatch.setattr(numbering, "estimate_front_pages", lambda *a, **k: 5)
    monkeypatch.setattr(submission, "_start_mailings", recorded)
    monkeypatch.setattr(renderworker, "START_FOR_PAGES", 1)  # the second job starts a worker of its own
    config, case_dir = _small_case(tmp_path / "worker")
    build_case(case_dir, config, now=now)
    assert len(jobs) == 2
    assert jobs[1][1] == [jobs[1][0].claims]  # the first job's folder was gone when the second began
    assert list(config.work_dir.glob("claims-*")) == []
    monkeypatch.undo()
    numbering._FRONT_PAGES_SEEN.clear()
    assert _draft_mailings(config, case_dir) == _one_process_mailings(tmp_path / "here", now)
