"""The command line: parse arguments, load the configuration, call one library function, map errors.

Owns: argument parsing, `Error: ...` messages and exit codes (errors.ExitCode). Must not: contain
behaviour. Every command calls a library function that the watcher and tests call too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from packet import __version__
from packet.config import Config, load_config
from packet.errors import ExitCode, PacketError, UsageError
from packet.fsutil import PRIVATE_UMASK


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="configuration file (default: ./imr.toml if present)")
    common.add_argument("--inbox", metavar="DIR", help="inbox folder (beats the configuration)")
    common.add_argument("--outbox", metavar="DIR", help="outbox folder (beats the configuration)")

    parser = argparse.ArgumentParser(prog="imr-packet", parents=[common],
                                     description="Assemble California IMR record packets from case folders.")
    parser.add_argument("--version", action="version", version=f"imr-packet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("watch", parents=[common], help="the service: watch the inbox and act")
    p.add_argument("--once", action="store_true", help="process what is there and exit")

    p = sub.add_parser("build", parents=[common], help="build the draft of one case folder now")
    p.add_argument("case_dir", metavar="CASE-DIR")

    p = sub.add_parser("seal", parents=[common], help="seal the next submission of a case")
    p.add_argument("case_id", metavar="CASE-ID")
    p.add_argument("--override", metavar="REASON", help="pass failed release-gate items, recording REASON")

    p = sub.add_parser("verify", parents=[common], help="check a submission against its manifest")
    p.add_argument("submission_dir", metavar="SUBMISSION-DIR")
    p.add_argument("--rebuild", action="store_true", help="also rebuild from the archive and compare bytes")

    p = sub.add_parser("status", parents=[common], help="every case: state, due time, what blocks it")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("new-case", parents=[common], help="create a case folder with a case.toml template")
    p.add_argument("case_id", metavar="CASE-ID")

    sub.add_parser("demo", parents=[common], help="write a sample case into the inbox")

    p = sub.add_parser("notice", parents=[common], help="the IMR notice mailing for a grievance disposition")
    p.add_argument("case_id", metavar="CASE-ID")

    p = sub.add_parser("copies", parents=[common], help="a copy set on request")
    p.add_argument("case_id", metavar="CASE-ID")
    p.add_argument("--for", dest="recipient", choices=("member", "provider"), required=True)

    p = sub.add_parser("audit", parents=[common], help="the audit log: verify or export")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    audit_sub.required = True
    v = audit_sub.add_parser("verify", parents=[common], help="check the audit log's hash chain")
    v.add_argument("--checkpoint", action="append", default=[], type=Path, metavar="FILE",
                   help="checkpoints kept by an auditor (from `audit checkpoint`); may be repeated")
    c = audit_sub.add_parser("checkpoint", parents=[common],
                             help="print the chain head as a (signed) checkpoint for an auditor to keep")
    c.add_argument("--append-to", type=Path, metavar="FILE", help="also append it to FILE")
    e = audit_sub.add_parser("export", parents=[common], help="events and submissions of a period as CSV")
    e.add_argument("--from", dest="date_from", type=dt.date.fromisoformat, required=True, metavar="DATE")
    e.add_argument("--to", dest="date_to", type=dt.date.fromisoformat, required=True, metavar="DATE")
    return parser


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, flags={"inbox": args.inbox, "outbox": args.outbox})


def _case_dir(config: Config, case_id: str) -> Path:
    from packet.model.case import check_case_id

    return config.paths.inbox / check_case_id(case_id)


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    config = _config(args)
    command = args.command

    if command == "build":
        from packet.pipeline.build import build_case

        case_dir = Path(args.case_dir)
        if not case_dir.is_dir():
            raise UsageError(f"{case_dir}: no such case folder")
        result = build_case(case_dir, config)
        print(result.summary())
        return ExitCode.ok
    if command == "new-case":
        from packet.pipeline.build import new_case

        path = new_case(config, args.case_id)
        print(f"Created {path}. Fill in case.toml, then drop the documents into {path.parent}.")
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
        from packet.pipeline.seal import seal_case

        submission = seal_case(config, args.case_id, override_reason=args.override)
        print(f"Sealed {submission}")
        return ExitCode.ok
    if command == "verify":
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
        from packet.mailings.notice import write_notice

        path = write_notice(config, args.case_id)
        print(f"Wrote {path}")
        return ExitCode.ok
    if command == "copies":
        from packet.mailings.copies import write_copies

        path = write_copies(config, args.case_id, args.recipient)
        print(f"Wrote {path}")
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
        path = export.export_csv(config, args.date_from, args.date_to, sys.stdout)
        return ExitCode.ok
    raise UsageError(f"unknown command {command}")


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # every file the service writes: owner and group only
    try:
        return int(run(sys.argv[1:] if argv is None else argv))
    except PacketError as exc:
        items = getattr(exc, "problems", None) or getattr(exc, "items", None) or []
        if len(items) > 1:
            print(f"Error: {getattr(exc, 'source', 'the request')} has {len(items)} problems:", file=sys.stderr)
            for item in items:
                print(f"  - {item}", file=sys.stderr)
        else:
            print(f"Error: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
