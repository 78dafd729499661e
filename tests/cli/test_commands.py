"""The command line as an operator meets it, each command a process of its own (issue 14): forked
from tests/clikit.py's server, which runs what the console script runs; the closed-pipe test starts
the console script itself.

Options mean the same before or after the command; commands that find no installation say so,
exit non-zero and create nothing; every command's exit codes match the README's one table; logs
never share standard output with the answer; a closed pipe ends quietly.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from clikit import SCRIPT, clean_env, run, tree
from helpers import write_case
from packet.cli import EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("inbox", "outbox", "archive", "state")


def _config(path: Path, base: Path) -> Path:
    path.write_text("[paths]\n" + "".join(f'{key} = "{base / key}"\n' for key in FOLDERS), encoding="utf-8")
    return path


def _placed(args: list[str], options: list[str], where: str) -> list[str]:
    """The same command with the common options before the command or after its arguments."""
    return [*options, *args] if where == "before" else [*args, *options]


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """An installation made the way a new user makes one: `new-case` creates the folders."""
    root = tmp_path_factory.mktemp("install")
    config = _config(root / "imr.toml", root / "srv")
    done = run(["--config", str(config), "new-case", "NEW"], cwd=root)
    assert done.code == 0, done.err
    for folder in FOLDERS:
        assert (root / "srv" / folder).is_dir()
    write_case(root / "srv" / "inbox", "EMPTY")  # valid case.toml, no documents
    done = run(["--config", str(config), "seal", "EMPTY"], cwd=root)  # the first audit entry: seal_refused
    assert done.code == 1, done.err
    assert (root / "srv" / "state" / "audit.jsonl").is_file()
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return root, config, elsewhere


# --- nothing where the configuration says -------------------------------------------------------

EMPTY_FOLDER_COMMANDS = [
    ["status"], ["status", "--json"], ["audit", "verify"], ["audit", "export", "--from", "2026-01-01", "--to", "2026-12-31"],
    ["build", "IMR-1"], ["seal", "IMR-1"], ["notice", "IMR-1"], ["copies", "IMR-1", "--for", "member"],
    ["verify", "outbox/IMR-1/submission-01"],
]


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("args", EMPTY_FOLDER_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_command_that_finds_no_installation_says_so_and_creates_nothing(tmp_path, args, where):
    config = _config(tmp_path / "imr.toml", tmp_path / "srv")  # the folders it names do not exist
    before = tree(tmp_path)
    done = run(_placed(args, ["--config", str(config)], where), cwd=tmp_path)
    assert done.code == 2, (done.code, done.out, done.err)
    assert "no such folder" in done.err and "Traceback" not in done.err
    assert "OK" not in done.out and "No cases" not in done.out
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", ["before", "after"])
def test_audit_commands_without_an_audit_log_exit_non_zero(tmp_path, where):
    config = _config(tmp_path / "imr.toml", tmp_path / "srv")
    for folder in FOLDERS:
        (tmp_path / "srv" / folder).mkdir(parents=True)
    before = tree(tmp_path)
    for args in (["audit", "verify"], ["audit", "export", "--from", "2026-01-01", "--to", "2026-01-02"]):
        done = run(_placed(args, ["--config", str(config)], where), cwd=tmp_path)
        assert done.code == 2 and "no audit log" in done.err, done
        assert "OK" not in done.out
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("text", ["[paths\n", "[watch]\nsettle_seconds = nan\n", "[watch]\nsettle_seconds = 2\nsettle_seconds = 3\n",
                                  "\xff\xfe[paths]\n", "[plan]\nname = \"Plan\\u0007\"\n"])
def test_a_broken_configuration_exits_2(tmp_path, text, where):
    config = tmp_path / "imr.toml"
    config.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    for args in (["status"], ["audit", "verify"], ["new-case", "IMR-1"]):
        done = run(_placed(args, ["--config", str(config)], where), cwd=tmp_path)
        assert done.code == 2, (args, done)
        assert done.err.startswith("Error:") and "Traceback" not in done.err
    assert tree(tmp_path) == {"imr.toml"}


def test_a_configuration_file_that_does_not_exist_exits_2(tmp_path):
    for args in (["--config", "nope.toml", "status"], ["status", "--config", "nope.toml"]):
        done = run(args, cwd=tmp_path)
        assert done.code == 2 and "does not exist" in done.err
    assert tree(tmp_path) == set()


# --- the same answer whatever the order ---------------------------------------------------------

def test_options_before_and_after_the_command_mean_the_same(install):
    root, config, elsewhere = install
    inbox = str(root / "srv" / "inbox")
    before = run(["--config", str(config), "status"], cwd=elsewhere)
    after = run(["status", "--config", str(config)], cwd=elsewhere)
    assert before.code == after.code == 0
    assert before.out == after.out and "EMPTY" in before.out and "NEW" in before.out
    # --inbox before the command, --config after it: both count.
    mixed = run(["--inbox", inbox, "status", "--json", "--config", str(config)], cwd=elsewhere)
    assert mixed.code == 0
    assert {c["case_id"] for c in json.loads(mixed.out)} == {"EMPTY", "NEW"}
    assert tree(elsewhere) == set()


# --- the exit-code table ------------------------------------------------------------------------

def _exit_code_cases(root: Path) -> list[tuple[list[str], int]]:
    return [
        (["status"], 0),
        (["audit", "verify"], 0),
        (["audit", "export", "--from", "2026-01-01", "--to", "2030-12-31"], 0),
        (["audit", "export", "--from", "last week", "--to", "2026-12-31"], 2),
        (["audit", "export", "--from", "9999-01-01", "--to", "9999-12-31"], 2),
        (["audit", "frobnicate"], 2),
        (["frobnicate"], 2),
        (["status", "--no-such-option"], 2),
        (["new-case", "NEW"], 2),  # exists
        (["new-case", "bad id"], 3),
        (["new-case", "NL2\n"], 3),  # "$" would match before the newline
        (["new-case", "../evil"], 3),
        (["build", ""], 2),
        (["build", "MISSING"], 3),
        (["build", str(root / "nowhere" / "IMR-9")], 3),
        (["build", "NEW"], 3),  # the template's placeholders
        (["seal", "MISSING"], 3),
        (["seal", "NEW"], 3),  # invalid case.toml: an input, not a failed gate
        (["seal", "EMPTY"], 1),  # the release gate: no documents
        (["seal", "EMPTY", "--override", "  "], 2),
        (["notice", "MISSING"], 3),
        (["notice", "NEW"], 3),
        (["copies", "MISSING", "--for", "member"], 3),
        (["copies", "EMPTY", "--for", "member"], 3),  # nothing sealed yet
        (["copies", "EMPTY"], 2),  # --for is required
        (["verify", str(root / "nowhere")], 2),
        (["verify", str(root / "srv" / "inbox")], 2),  # not a submission
    ]


@pytest.mark.parametrize("where", ["before", "after"])
def test_every_command_exits_as_the_table_says(install, where):
    root, config, elsewhere = install
    wrong = []
    for args, expected in _exit_code_cases(root):
        done = run(_placed(args, ["--config", str(config)], where), cwd=elsewhere)
        if done.code != expected or "Traceback" in done.err:
            wrong.append((args, expected, done.code, done.err[-300:]))
        if expected != 0:
            assert done.err.strip(), args  # a person is told why
    assert not wrong
    assert not (root / "srv" / "inbox" / "NL2\n").exists() and not (root / "srv" / "evil").exists()
    assert tree(elsewhere) == set()


def test_readme_has_the_one_exit_code_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\d+)` \| (.+?) \|$", readme, re.M)
    assert [(int(code), text) for code, text in rows] == [(int(code), text) for code, text in EXIT_CODES]


def test_help_describes_every_command_with_an_example_dates_and_exit_codes(tmp_path):
    done = run(["--help"], cwd=tmp_path)
    assert done.code == 0
    commands = ["watch", "build", "seal", "verify", "status", "new-case", "demo", "notice", "copies", "audit"]
    for command in commands:
        assert re.search(rf"^\s+{command}\s+\S", done.out, re.M), command  # listed with a description
    assert "date formats" in done.out and "2026-11-25T16:10:00-08:00" in done.out
    for code, _ in EXIT_CODES:
        assert re.search(rf"^\s+{int(code)}\s+\S", done.out, re.M)
    for args in [[c] for c in commands] + [["audit", "verify"], ["audit", "export"]]:
        sub = run([*args, "--help"], cwd=tmp_path)
        assert sub.code == 0 and "example:" in sub.out and "exit codes:" in sub.out, args
        assert "--config" in sub.out and "--log-format" in sub.out
    assert "CASE" in run(["seal", "--help"], cwd=tmp_path).out and "path of a case folder" in run(
        ["seal", "--help"], cwd=tmp_path).out
    assert tree(tmp_path) == set()


# --- logs on standard error, never with the answer ----------------------------------------------

def test_logs_go_to_stderr_in_the_format_asked(install):
    root, config, elsewhere = install
    done = run(["build", "EMPTY", "--config", str(config)], cwd=elsewhere)
    assert done.code == 0 and done.out.startswith("EMPTY:")
    assert not any(line.lstrip().startswith("{") for line in done.out.splitlines())
    events = [json.loads(line) for line in done.err.splitlines()]  # not a terminal: JSON
    assert "case_built" in {e["event"] for e in events}
    text = run(["--log-format", "text", "build", "EMPTY", "--config", str(config)], cwd=elsewhere)
    assert text.code == 0 and "case_built" in text.err and "{" not in text.err
    quiet = run(["build", "EMPTY", "--config", str(config), "--quiet"], cwd=elsewhere)
    assert quiet.code == 0 and quiet.err == "" and quiet.out == done.out
    both = run(["build", "EMPTY", "--config", str(config), "--quiet", "--verbose"], cwd=elsewhere)
    assert both.code == 2


def test_a_closed_pipe_ends_quietly(install):
    root, config, elsewhere = install
    for args in (["status"], ["audit", "export", "--from", "2026-01-01", "--to", "2030-12-31"], ["--help"]):
        proc = subprocess.Popen([str(SCRIPT), *args, "--config", str(config)], cwd=elsewhere, env=clean_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader went away before the answer was written (`| head -0`)
        with proc.stderr:
            err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert code in (0, 141), (args, code, err)
    shell = subprocess.run(f"'{SCRIPT}' --help | head -1", shell=True, cwd=elsewhere, env=clean_env(),
                           capture_output=True, text=True, timeout=60)
    assert shell.stdout.startswith("usage:") and "Traceback" not in shell.stderr


# --- the clerk's case from the command line ------------------------------------------------------

def test_new_case_placeholders_are_refused_naming_each(install):
    root, config, elsewhere = install
    text = (root / "srv" / "inbox" / "NEW" / "case.toml").read_text()
    assert "FILL IN" in text and not re.search(r"^dmhc_notice_received = \d", text, re.M)
    done = run(["build", "NEW", "--config", str(config)], cwd=elsewhere)
    assert done.code == 3
    for key in ("dmhc_notice_received", "disputed_service", "[member] name", "[member] member_id",
                "[member] date_of_birth", "[member] address", "[provider] name"):
        assert key in done.err, key
    status = (root / "srv" / "inbox" / "NEW" / "_STATUS.txt").read_text()
    assert "dmhc_notice_received" in status and "[member] name" in status


@pytest.mark.parametrize("toml_edit, key", [
    (("2026-11-25T16:10:00-08:00", "9999-11-25T16:10:00-08:00"), "dmhc_notice_received"),
    (("2026-11-25T16:10:00-08:00", "0001-01-01T00:00:00-08:00"), "dmhc_notice_received"),
    (("2026-11-25T16:10:00-08:00", "2026-11-25T16:10:00"), "dmhc_notice_received"),
    (("Rosalind Q. Testmember", "Rosalind\\u0007 Testmember"), "[member] name"),
    (("Rosalind Q. Testmember", "Rosalind\\u202e Testmember"), "[member] name"),
    (("1961-04-09", "0001-04-09"), "date_of_birth"),
    (('"Lumbar spinal fusion L4-L5"', '"Lumbar\\nfusion"'), "disputed_service"),
])
def test_bad_case_values_exit_3_with_the_key_named_and_a_status_note(install, toml_edit, key):
    root, config, elsewhere = install
    case_dir = write_case(root / "srv" / "inbox", "ODD")
    path = case_dir / "case.toml"
    path.write_text(path.read_text().replace(*toml_edit))
    done = run(["build", str(case_dir), "--config", str(config)], cwd=elsewhere)
    assert done.code == 3, done
    assert key in done.err and "Traceback" not in done.err
    assert key in (case_dir / "_STATUS.txt").read_text()


@pytest.mark.parametrize("where", ["before", "after"])
def test_watch_demo_and_new_case_create_the_folders_and_exit_as_the_table_says(tmp_path, where):
    config = _config(tmp_path / "imr.toml", tmp_path / "srv")
    options = ["--config", str(config)]
    done = run(_placed(["watch", "--once"], options, where), cwd=tmp_path)
    assert done.code == 0, done.err
    assert all((tmp_path / "srv" / folder).is_dir() for folder in FOLDERS)
    assert all(json.loads(line)["event"] for line in done.err.splitlines())  # the service logs JSON
    assert run(_placed(["demo"], options, where), cwd=tmp_path).code == 0
    assert run(_placed(["watch", "--once"], ["--config", str(tmp_path / "nope.toml")], where), cwd=tmp_path).code == 2
    assert run(_placed(["demo"], ["--config", str(tmp_path / "nope.toml")], where), cwd=tmp_path).code == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("[watch]\nsettle_seconds = nan\n")
    assert run(_placed(["watch", "--once"], ["--config", str(broken)], where), cwd=tmp_path).code == 2
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert run(_placed(["new-case", "IMR-1"], [], where), cwd=fresh).code == 0
    assert {p.name for p in fresh.iterdir()} == set(FOLDERS)


def test_commands_and_watchers_of_later_tests_are_forked_from_the_first_server(tmp_path, monkeypatch):
    """tests/clikit.py forks each command from one server per test process (a fresh interpreter
    costs about a second of imports). pytest rewrites its note of the running test in the
    environment at every phase; the server must still serve the next test's commands and watchers."""
    import clikit

    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/a.py::test_one (call)")
    assert run(["--help"], cwd=tmp_path).code == 0
    server = clikit._Forks.process
    monkeypatch.setattr(clikit, "SCRIPT", tmp_path / "no-such-script")  # a fresh start would fail
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/a.py::test_two (setup)")
    assert run(["--help"], cwd=tmp_path).code == 0
    assert server is not None and clikit._Forks.process is server and server.poll() is None
    watcher = clikit.start(["--help"], tmp_path, tmp_path / "out", tmp_path / "err", env=clean_env())
    assert watcher is not None and watcher.wait(timeout=60) == 0, "a watcher would have started fresh"


def test_the_fork_servers_answers_stay_in_step_when_a_command_ends_at_once(tmp_path, monkeypatch):
    """A command that ends at once (a missing configuration file) has its exit code written right after
    its process id: both may come in one read. The second must be taken from what was read, not waited
    for on the pipe (that wait once ran out after 300 s and left every later answer one behind)."""
    import clikit

    monkeypatch.setattr(clikit._Forks, "pending", b"12345\n2\n")  # as one read of the pipe returns them
    assert clikit._Forks._answer() == "12345"
    assert clikit._Forks._answered_within(0) is True and clikit._Forks._answer() == "2"
    for _ in range(20):  # and in practice, through the server
        assert run(["--config", "nope.toml", "status"], cwd=tmp_path).code == 2
