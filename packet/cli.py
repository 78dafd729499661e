"""The command line: parse arguments, load the configuration, call one library function, map errors.

Owns: argument parsing, `Error: ...` messages, the exit codes (EXIT_CODES, the README's table) and
where the log goes. Must not: contain behaviour. Every command calls a library function that the
watcher and tests call too.

Rules a person relies on:
- The common options (--config, --inbox, --outbox, --log-format, --quiet, --verbose) mean the same
  before or after the command.
- Only `watch`, `demo` and `new-case` create the configured folders. Every other command run where
  the configuration finds no inbox, outbox, archive or state (or `audit` finds no audit log) says
  so and exits 2: it never answers about empty folders it just made.
- The answer goes to standard output, the log to standard error; a closed pipe (`status | head`)
  ends quietly; an unexpected error ends with one `Error:` line, never a traceback (--verbose
  shows it).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import sys
import textwrap
import threading
import traceback
from pathlib import Path

from packet import __version__
from packet import log as service_log
from packet.config import Config, load_config
from packet.errors import CaseError, ConfigError, ExitCode, GateFailed, PacketError, UsageError
from packet.fsutil import PRIVATE_UMASK, no_core_files
from packet.log import log_exception
from packet.model.case import check_case_id, valid_case_id

INTERNAL_ERROR = 4
INTERRUPTED = 130
CLOSED_PIPE = 141  # 128 + SIGPIPE, as other Unix tools end when the reader goes away

# The one exit-code table: README "Exit codes" shows exactly these lines (a test compares them).
EXIT_CODES = (
    (ExitCode.ok, "done (verify and audit verify: everything checked is intact)"),
    (ExitCode.check_failed, "a check failed: verify, audit verify, or the release gate of seal"),
    (ExitCode.usage, "usage or configuration: a wrong option, a configuration file that is missing or "
                     "invalid, a configured folder or the audit log not found, new-case for a case that exists"),
    (ExitCode.bad_input, "an input cannot be used: an invalid case id, no such case folder, "
                         "case.toml missing or invalid"),
    (INTERNAL_ERROR, "could not finish: a file-system problem (disk full, permission denied) or an "
                     "unexpected error; the log says where"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
    (CLOSED_PIPE, "the reader of the output went away (e.g. `| head`); nothing is wrong"),
)
CREATES_FOLDERS = {"watch", "demo", "new-case"}
CHANGES_CASES = {"build", "new-case", "demo", "seal", "notice", "copies"}

DATE_FORMATS = """\
date formats:
  dates            2026-11-25                 (audit export --from/--to; case.toml date_of_birth)
  date and time    2026-11-25T16:10:00-08:00  (case.toml dmhc_notice_received: with the offset,
                                               -08:00 in winter and -07:00 in summer in California)"""


def exit_code_text() -> str:
    return "exit codes:\n" + "\n".join(
        textwrap.fill(text, width=96, initial_indent=f"  {int(code):<5}", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES)


EPILOG = f"""\
examples:
  imr-packet new-case IMR-2026-000417          create inbox/IMR-2026-000417/ with a case.toml to fill in
  imr-packet watch                             the service: watch the inbox, build drafts, seal on READY
  imr-packet build IMR-2026-000417             build the draft of one case now
  imr-packet status                            every case: state, due time, what blocks it
  imr-packet --config /srv/imr/imr.toml audit verify

Common options may come before or after the command.

{DATE_FORMATS}

{exit_code_text()}
"""

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _common(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes. After the command they default to SUPPRESS, so a value
    given before the command is kept rather than reset."""
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options (before or after the command)")
    group.add_argument("--config", metavar="FILE", default=default,
                       help="configuration file (default: $IMR_CONFIG, else ./imr.toml if present, else built-in)")
    group.add_argument("--inbox", metavar="DIR", default=default, help="inbox folder (beats the configuration)")
    group.add_argument("--outbox", metavar="DIR", default=default, help="outbox folder (beats the configuration)")
    group.add_argument("--log-format", choices=service_log.FORMATS, default=default,
                       help="log lines on standard error: text (default on a terminal) or json "
                            "(default otherwise, and for watch)")
    group.add_argument("-q", "--quiet", action="store_true", default=default or False,
                       help="log only warnings and errors")
    group.add_argument("-v", "--verbose", action="store_true", default=default or False,
                       help="log everything, and show the traceback of an unexpected error")
    return common


def _case_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("case", metavar="CASE",
                   help="a case id (a folder of the inbox, e.g. IMR-2026-000417) or the path of a case folder")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imr-packet", parents=[_common(False)], formatter_class=_FORMATTER, epilog=EPILOG,
        description="Assemble California Independent Medical Review record packets from case folders.\n"
                    "Clerks drop files into inbox/<CASE-ID>/; the service builds a draft and, on READY, "
                    "seals it into outbox/.")
    parser.add_argument("--version", action="version", version=f"imr-packet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    common = [_common(True)]

    def command(name: str, summary: str, example: str, more: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=common, help=summary, formatter_class=_FORMATTER,
                              description=summary[0].upper() + summary[1:] + "." + (f"\n\n{more}" if more else ""),
                              epilog=f"example:\n  {example}\n\n{exit_code_text()}")

    p = command("watch", "the service: watch the inbox, build drafts, seal cases that have READY",
                "imr-packet watch", "Creates the configured folders when missing. Logs JSON lines unless "
                "--log-format text.")
    p.add_argument("--once", action="store_true", help="process what is there now, then exit")

    p = command("build", "build the draft of one case now (outbox/<CASE-ID>/draft/)",
                "imr-packet build IMR-2026-000417")
    _case_arg(p)

    p = command("seal", "seal the next submission of a case if its release gate holds",
                'imr-packet seal IMR-2026-000417 --override "records sent separately by fax"',
                "Same as dropping a READY file into the case folder. The case must be in the inbox.")
    _case_arg(p)
    p.add_argument("--override", metavar="REASON",
                   help="pass the release-gate items a person may pass, recording REASON and your user name")

    p = command("verify", "check a sealed submission (or a draft) against its manifest",
                "imr-packet verify outbox/IMR-2026-000417/submission-01")
    p.add_argument("submission_dir", metavar="SUBMISSION-DIR", help="outbox/<CASE-ID>/submission-NN (or draft)")
    p.add_argument("--rebuild", action="store_true", help="also rebuild from the archive and compare bytes")

    p = command("status", "every case: state, due time, what blocks it", "imr-packet status --json")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("new-case", "create a case folder with a case.toml template to fill in",
                "imr-packet new-case IMR-2026-000417",
                "Case ids: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.\n"
                "Every FILL IN value of the template must be replaced before the case is built; the time "
                "DMHC's notice was received is never pre-filled.")
    p.add_argument("case_id", metavar="CASE-ID", help="the new case's id, e.g. IMR-2026-000417")

    command("demo", "write a sample case into the inbox", "imr-packet demo")

    p = command("notice", "the IMR notice mailing for a grievance disposition", "imr-packet notice IMR-2026-000417")
    _case_arg(p)

    p = command("copies", "a copy set of what was sent, on the member's or provider's request",
                "imr-packet copies IMR-2026-000417 --for member")
    _case_arg(p)
    p.add_argument("--for", dest="recipient", choices=("member", "provider"), required=True,
                   help="who asked for the copies")

    p = command("serve", "the review desk: a signed-in web page where people decide review items and seal",
                "imr-packet serve --listen 127.0.0.1:8750",
                "Reads [web] of the configuration (listen, auth = local | proxy, trusted_proxies, idle_minutes).\n"
                "Create accounts first with `imr-packet user add NAME --role clerk`.")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default: [web] listen)")

    p = command("user", "desk accounts: add (or reset a password), remove, list",
                "imr-packet user add maria --role clerk",
                "Roles: clerk (decides review items), supervisor (also seals, with an override reason), "
                "auditor (reads everything, changes nothing).\nThe password is asked twice on a terminal, "
                "or read as one line from standard input.")
    user_sub = p.add_subparsers(dest="user_command", metavar="ACTION", title="actions")
    user_sub.required = True
    u = user_sub.add_parser("add", parents=common, formatter_class=_FORMATTER, help="add an account or reset its password",
                            epilog=f"example:\n  imr-packet user add maria --role clerk\n\n{exit_code_text()}")
    u.add_argument("name", metavar="NAME")
    u.add_argument("--role", required=True, choices=("clerk", "supervisor", "auditor"))
    u = user_sub.add_parser("remove", parents=common, formatter_class=_FORMATTER, help="remove an account",
                            epilog=f"example:\n  imr-packet user remove maria\n\n{exit_code_text()}")
    u.add_argument("name", metavar="NAME")
    user_sub.add_parser("list", parents=common, formatter_class=_FORMATTER, help="list accounts and roles",
                        epilog=f"example:\n  imr-packet user list\n\n{exit_code_text()}")

    p = command("audit", "the audit log: verify its chain, or export a period",
                "imr-packet audit export --from 2026-11-01 --to 2026-11-30 > november.csv")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="ACTION", title="actions")
    audit_sub.required = True
    v = audit_sub.add_parser("verify", parents=common, formatter_class=_FORMATTER,
                             help="check the audit log's hash chain and the sealed submissions it records",
                             description="Check the audit log's hash chain and the sealed submissions it records.",
                             epilog=f"example:\n  imr-packet audit verify --checkpoint kept.jsonl\n\n{exit_code_text()}")
    v.add_argument("--checkpoint", action="append", default=[], type=Path, metavar="FILE",
                   help="checkpoints kept by an auditor (from `audit checkpoint`); may be repeated")
    c = audit_sub.add_parser("checkpoint", parents=common, formatter_class=_FORMATTER,
                             help="print the chain head as a (signed) checkpoint for an auditor to keep",
                             description="Print the chain head as a (signed) checkpoint for an auditor to keep.",
                             epilog=f"example:\n  imr-packet audit checkpoint --append-to /media/auditor/kept.jsonl"
                                    f"\n\n{exit_code_text()}")
    c.add_argument("--append-to", type=Path, metavar="FILE", help="also append it to FILE")
    e = audit_sub.add_parser("export", parents=common, formatter_class=_FORMATTER,
                             help="events and submissions of a period as CSV on standard output",
                             description="Events and submissions of a period as CSV on standard output.",
                             epilog=f"example:\n  imr-packet audit export --from 2026-11-01 --to 2026-11-30"
                                    f"\n\n{DATE_FORMATS}\n\n{exit_code_text()}")
    e.add_argument("--from", dest="date_from", type=_date, required=True, metavar="DATE",
                   help="first day, like 2026-11-01")
    e.add_argument("--to", dest="date_to", type=_date, required=True, metavar="DATE",
                   help="last day, like 2026-11-30")
    return parser


def _date(text: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-25") from None
    if not 2000 <= value.year <= 2100:
        raise argparse.ArgumentTypeError(f"{text!r}: the year must be between 2000 and 2100")
    return value


def _configure_log(args: argparse.Namespace) -> None:
    if args.quiet and args.verbose:
        raise UsageError("--quiet and --verbose cannot be used together")
    fmt = args.log_format
    if fmt is None:
        fmt = "json" if args.command == "watch" or not _isatty(sys.stderr) else "text"
    service_log.configure(fmt=fmt, level="warning" if args.quiet else "debug" if args.verbose else "info")


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config, flags={"inbox": args.inbox, "outbox": args.outbox},
                         create_folders=args.command in CREATES_FOLDERS)
    if args.command == "audit":
        from packet.records.audit import log_files

        if not log_files(config):
            raise UsageError(f"no audit log at {config.audit_log} (the [paths] state of {config.source}): "
                             "check --config, or nothing has been recorded there yet")
    return config


def _case_dir(config: Config, text: str, *, in_inbox: bool) -> Path:
    """A case given as an id (a folder of the inbox) or as the path of a case folder."""
    inbox = config.paths.inbox
    if not text.strip():
        raise UsageError("give a case id or the path of a case folder")
    if valid_case_id(text) and (inbox / text).is_dir():
        return inbox / text
    path = Path(text)
    if path.is_dir():
        case_dir = Path(os.path.abspath(path))
        check_case_id(case_dir.name)
        if in_inbox and case_dir.parent.resolve() != inbox.resolve():
            raise UsageError(f"{case_dir} is not a case folder of the inbox {inbox}; "
                             "give its case id, or --inbox with the folder that holds it")
        return case_dir
    if valid_case_id(text):
        raise CaseError(f"no case {text} in the inbox {inbox}", reason="no_case")
    if "/" in text or os.sep in text:
        raise CaseError(f"{text}: no such case folder", reason="no_case")
    check_case_id(text)
    raise CaseError(f"no case {text} in the inbox {inbox}", reason="no_case")


_ENDS_PROCESS = False  # set by `entry`: the process ends after this one command


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    _configure_log(args)
    config = _config(args)
    changed = args.command in CHANGES_CASES
    try:
        return _run_command(args, config)
    except (UsageError, CaseError) as exc:
        # Refused before anything was written: a wrong option, no such case, an invalid case id.
        if isinstance(exc, UsageError) or exc.reason in ("no_case", "case_id"):
            changed = False
        raise
    finally:
        if _ENDS_PROCESS:
            from packet.workers import pool

            pool.let_go()  # no job comes after the command: the workers end while the board is written
        if changed:
            from packet.service.board import refresh_board  # imported here: most of a command's start-up

            refresh_board(config)  # the board shows what a command did without waiting for the watcher


def _run_command(args: argparse.Namespace, config: Config) -> int:
    command = args.command

    if command == "build":
        case_dir = _case_dir(config, args.case, in_inbox=False)
        _start_workers(config, convert=True, case_dir=case_dir)
        from packet.pipeline.build import build_case

        result = build_case(case_dir, config)
        print(result.summary())
        return ExitCode.ok
    if command == "new-case":
        from packet.pipeline.build import new_case

        path = new_case(config, args.case_id)
        print(f"Created {path}. Replace every FILL IN value in it, then drop the documents into {path.parent}.")
        return ExitCode.ok
    if command == "demo":
        from packet.demo import write_demo

        case_dir = write_demo(config)
        print(f"Wrote the sample case {case_dir}. Run `imr-packet watch --once` (or `make run`) to process it.")
        return ExitCode.ok
    if command == "watch":
        from packet.service.watch import run_watcher

        return run_watcher(config, once=args.once)
    if command == "seal":
        case_dir = _case_dir(config, args.case, in_inbox=True)
        from packet.pipeline.seal import seal_case

        submission = seal_case(config, case_dir.name, override_reason=args.override)
        print(f"Sealed {submission}")
        return ExitCode.ok
    if command == "verify":
        # A worker reads the outputs' objects (pipeline.verify); a rebuild renders in the render worker.
        _start_workers(config, convert=config.limits.workers > 1, render=args.rebuild)
        from packet.pipeline.verify import verify_submission

        report = verify_submission(Path(args.submission_dir), config, rebuild=args.rebuild)
        print(report.text())
        return ExitCode.ok if report.ok else ExitCode.check_failed
    if command == "status":
        from packet.service.status import collect_status, format_status

        cases = collect_status(config)
        if args.json:
            print(json.dumps([c.to_json() for c in cases], indent=2))
        else:
            print(format_status(cases))
        return ExitCode.ok
    if command == "notice":
        case_id = _case_dir(config, args.case, in_inbox=True).name
        from packet.mailings.notice import write_notice

        path = write_notice(config, case_id)
        print(f"Wrote {path}")
        return ExitCode.ok
    if command == "copies":
        case_id = _case_dir(config, args.case, in_inbox=True).name
        from packet.mailings.copies import write_copies

        path = write_copies(config, case_id, args.recipient)
        print(f"Wrote {path}")
        return ExitCode.ok
    if command == "serve":
        from dataclasses import replace

        from packet.desk import accounts
        from packet.desk.serve import serve

        if args.listen:
            config = replace(config, web=replace(config.web, listen=args.listen))
        if config.web.auth == "local" and not accounts.list_users(config):
            raise UsageError("no desk accounts yet: create one with `imr-packet user add NAME --role supervisor`")
        return serve(config)
    if command == "user":
        from packet.desk import accounts

        if args.user_command == "list":
            for user in accounts.list_users(config):
                print(f"{user.name}\t{user.role}")
            return ExitCode.ok
        if args.user_command == "remove":
            if not accounts.remove_user(config, accounts.check_name(args.name)):
                raise UsageError(f"no desk account named {args.name}")
            print(f"Removed {args.name}")
            return ExitCode.ok
        accounts.add_user(config, accounts.check_name(args.name), args.role, _read_password())
        print(f"Desk account {args.name} ({args.role}) saved")
        return ExitCode.ok
    if command == "audit":
        from packet.records import anchor, audit, export

        if args.audit_command == "verify":
            kept = [item for path in args.checkpoint for item in anchor.read_checkpoints(path)]
            report = audit.verify_chain(config, kept)
            print(report.text())
            return ExitCode.ok if report.ok else ExitCode.check_failed
        if args.audit_command == "checkpoint":
            line = json.dumps(audit.checkpoint(config), sort_keys=True)
            print(line)
            if args.append_to:
                with open(args.append_to, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            return ExitCode.ok
        export.export_csv(config, args.date_from, args.date_to, sys.stdout)
        return ExitCode.ok
    raise UsageError(f"unknown command {command}")


def _start_workers(config: Config, *, convert: bool, render: bool = True, case_dir: Path | None = None) -> None:
    """Start the render worker (and one conversion worker) before the command imports the build's
    libraries: a fresh interpreter imports on the other core while this one does, so the workers
    are warm when the first job comes instead of starting then. For a build, the render worker only
    when the case's files are many enough to be worth it (packet.workers.render). Never fails (a
    job starts its own)."""
    from packet.fsutil import tree_bytes
    from packet.workers import pool
    from packet.workers import render as renderworker

    if render and case_dir is not None:
        render = renderworker.worth_starting(config, case_bytes=tree_bytes(case_dir, enough=renderworker.START_FOR_BYTES))
    if render and renderworker.in_use(config):
        renderworker.prestart()
    if convert:
        pool.prestart("convert", "packet.intake.convert.worker:warm", wait=False)  # intake.convert.batch


def _read_password() -> str:
    """Twice at a terminal prompt, else one line of standard input (for scripts)."""
    if _isatty(sys.stdin):
        import getpass

        first = getpass.getpass("Password (at least 12 characters): ")
        if getpass.getpass("Again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _exit_code(exc: PacketError) -> int:
    # Sealing a case whose case.toml is invalid fails the gate because an input cannot be used.
    if isinstance(exc, GateFailed) and isinstance(exc.__cause__, CaseError):
        return int(ExitCode.bad_input)
    return int(exc.exit_code)


def _say_error(exc: PacketError) -> None:
    items = getattr(exc, "problems", None) or getattr(exc, "items", None) or []
    if isinstance(exc, GateFailed) and isinstance(exc.__cause__, CaseError):
        items = exc.__cause__.problems
    if len(items) > 1:
        what = (f"the configuration ({exc.source})" if isinstance(exc, ConfigError)
                else "the release gate" if isinstance(exc, GateFailed) and not isinstance(exc.__cause__, CaseError)
                else "case.toml" if isinstance(exc, (CaseError, GateFailed)) else "the request")
        print(f"Error: {what} has {len(items)} problems:", file=sys.stderr)
        for item in items:
            print(f"  - {item}", file=sys.stderr)
    else:
        print(f"Error: {exc.message}", file=sys.stderr)


def _quiet_stdout() -> None:
    """After the reader went away: send what is left to /dev/null so the exit flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # every file the service writes: owner and group only
    no_core_files()  # nor a crash's memory image of what it was reading
    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "-v" in argv or "--verbose" in argv
    try:
        code = int(run(argv))
        sys.stdout.flush()
        return code
    except PacketError as exc:
        _say_error(exc)
        return _exit_code(exc)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return CLOSED_PIPE
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"Error: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
        log_exception("command_failed", exc)
        if verbose:
            traceback.print_exc()
        return INTERNAL_ERROR
    except Exception as exc:  # noqa: BLE001 - a person sees one line, never a traceback
        print(f"Error: an unexpected error ({type(exc).__name__}) stopped the command; the log line "
              "'command_failed' says where (run with --verbose to see the traceback)", file=sys.stderr)
        log_exception("command_failed", exc)
        if verbose:
            traceback.print_exc()
        return INTERNAL_ERROR


def entry() -> None:
    """The console script (`imr-packet`): `main()`, then the end of the process.

    A command that is done has nothing left for the interpreter's own teardown, which frees every
    object the command made one by one (about 0.1 s after a 1,000-page build: fonts, the parsed
    packet, the modules). So once no thread but daemons is left, the exit handlers run (the idle
    workers are told to go, temporary folders removed, logging flushed), standard output and error
    are flushed, and the process ends with the command's code (`os._exit`). Files are always closed
    by the code that writes them; the log writes each line through. A thread still working, or a
    flush that fails (a reader gone), takes the interpreter's normal ending instead."""
    global _ENDS_PROCESS
    _ENDS_PROCESS = True
    code = main()
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        for stream in dict.fromkeys((sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    entry()
