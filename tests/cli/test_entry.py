"""How the console script ends (`packet.cli.entry`): with the command's exit code and every byte of its
output, after the exit handlers, without the interpreter's teardown; and the normal ending when a
thread is still working or the output cannot be flushed."""

from __future__ import annotations

import atexit
import csv
import io
import os
import sys
import threading

import pytest

from clikit import run
from helpers import make_config
from sealkit import CASE_ID, NOW, sealable_case
from packet import cli
from packet.pipeline.seal import seal_case


class Ended(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


@pytest.fixture
def ending(monkeypatch):
    """`os._exit` and the exit handlers replaced by recorders (this test process must go on);
    standard output a buffered stream that only a flush empties."""
    calls: list[str] = []
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=1 << 20), encoding="utf-8")

    def fake_exit(code: int):
        calls.append(f"_exit {code}")
        raise Ended(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: calls.append("exit handlers"))
    return calls, raw, stdout


def test_the_console_script_runs_the_exit_handlers_flushes_and_ends_with_the_commands_code(monkeypatch, ending):
    calls, raw, stdout = ending
    monkeypatch.setattr(sys, "stdout", stdout)  # set here: pytest's capture sets its own before the test

    def command() -> int:
        print("the answer")
        return 3

    monkeypatch.setattr(cli, "main", command)
    with pytest.raises(Ended) as ended:
        cli.entry()
    assert ended.value.code == 3
    assert calls == ["exit handlers", "_exit 3"]
    assert raw.getvalue() == b"the answer\n"  # flushed before the process ends


def test_a_thread_still_working_gets_the_interpreters_normal_ending(monkeypatch, ending):
    calls, _raw, _stdout = ending
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=False)
    worker.start()
    monkeypatch.setattr(cli, "main", lambda: 0)
    try:
        with pytest.raises(SystemExit) as ended:
            cli.entry()
    finally:
        release.set()
        worker.join()
    assert ended.value.code == 0 and calls == []  # Python waits for the thread, then runs the handlers


def test_output_that_cannot_be_flushed_gets_the_interpreters_normal_ending(monkeypatch, ending):
    calls, _raw, _stdout = ending

    class GonePipe(io.StringIO):
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", GonePipe())
    monkeypatch.setattr(cli, "main", lambda: 0)
    with pytest.raises(SystemExit) as ended:
        cli.entry()
    assert ended.value.code == 0 and calls == ["exit handlers"]


def test_the_installed_script_answers_in_full_with_each_commands_code(tmp_path, monkeypatch, capsys):
    """The real console script in fresh processes, on a sealed case: an audit export (kilobytes through
    a pipe), a verify that passes and one that is refused, each against the same command run here."""
    config = make_config(tmp_path)
    sealable_case(config.paths.inbox)
    seal_case(config, CASE_ID, now=NOW)
    (tmp_path / "imr.toml").write_text("[paths]\n" + "".join(
        f'{key} = "{tmp_path / key}"\n' for key in ("inbox", "outbox", "archive", "state")), encoding="utf-8")
    submission = config.paths.outbox / CASE_ID / "submission-01"
    commands = [["audit", "export", "--from", "2000-01-01", "--to", "2100-01-01"],
                ["verify", str(submission)], ["verify", str(tmp_path / "no-such-submission")]]
    monkeypatch.chdir(tmp_path)
    fresh = []
    for args in commands:  # each command fresh, then here, before the next adds to the audit log
        done = run(args, cwd=tmp_path, fresh=True)
        capsys.readouterr()
        assert cli.main(args) == done.code
        assert capsys.readouterr().out.replace("\r\n", "\n") == done.out  # the CSV's line ends, read as text
        fresh.append(done)

    export = fresh[0]
    rows = list(csv.DictReader(io.StringIO(export.out)))
    assert export.code == 0 and export.out.endswith("\n") and len(export.out) > 2000
    assert "sealed" in {row["event"] for row in rows}
    assert fresh[1].code == 0 and fresh[1].out.startswith("OK:")
    assert fresh[2].code not in (0, 1) and "Error:" in fresh[2].err


def test_a_command_turns_core_files_off_for_itself_and_what_it_starts(tmp_path, monkeypatch, capsys):
    # A crash while reading the clerks' files must not leave the process's memory on disk. The soft
    # limit only: a person debugging may raise it again (the workers set the hard limit as well).
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core files are already off for this user")
    make_config(tmp_path)
    (tmp_path / "imr.toml").write_text("[paths]\n" + "".join(
        f'{key} = "{tmp_path / key}"\n' for key in ("inbox", "outbox", "archive", "state")), encoding="utf-8")
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))  # as a person's shell may have it
    try:
        assert cli.main(["status", "--config", str(tmp_path / "imr.toml")]) == 0
        assert resource.getrlimit(resource.RLIMIT_CORE) == (0, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


@pytest.mark.parametrize("ends_process", [True, False])
def test_a_run_that_ends_its_process_lets_its_workers_go_before_it_writes_the_board(tmp_path, monkeypatch,
                                                                                  ends_process):
    """The console script's command needs no job after it is done: its idle workers are told to end
    then, so that they end while the board is written, and the exit handler only reaps them. A run
    inside a longer process (the tests, a caller of `main`) keeps its idle workers for the next."""
    from packet.service import board
    from packet.workers import pool

    config = make_config(tmp_path)
    case_dir = sealable_case(config.paths.inbox)
    (tmp_path / "imr.toml").write_text("[paths]\n" + "".join(
        f'{key} = "{tmp_path / key}"\n' for key in ("inbox", "outbox", "archive", "state")), encoding="utf-8")
    seen: list[tuple[list[int], int]] = []
    real_refresh = board.refresh_board

    def refresh(config):
        seen.append((pool.idle_pids(), len(pool._leaving)))  # noqa: SLF001
        return real_refresh(config)

    monkeypatch.setattr(board, "refresh_board", refresh)
    monkeypatch.setattr(cli, "_ENDS_PROCESS", ends_process)
    pool.shutdown()
    try:
        assert cli.main(["build", str(case_dir), "--config", str(tmp_path / "imr.toml"), "-q"]) == 0
        assert len(seen) == 1
        idle, leaving = seen[0]
        if ends_process:
            assert idle == [] and leaving >= 1, "the workers were still idle when the board was written"
        else:
            assert idle and leaving == 0
    finally:
        pool.shutdown()
    assert pool.idle_pids() == [] and pool._leaving == []  # noqa: SLF001 - reaped
