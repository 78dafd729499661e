"""The measured Python side: one call of the library's build function in a fresh process.

Run as `python -m bench.runner --case-dir DIR --root DIR --out FILE [--target module:function]`.
The library is imported before the clock starts (a running service has imported it long ago):
every module of `packet`, and the third-party modules those import lazily (python-docx), so the
clock does not count imports that a service pays once at its first build; and its worker
processes (packet.intake.convert, packet.workers.render) are started and answer once, as a running
service keeps them between builds;
the clock covers only `build_case(case_dir, config)`, with every folder of the configuration under
`--root` (a fresh `state/` for a cold build, the same one for an incremental build).
Writes a JSON result to `--out`: seconds, documents taken, files refused, and the error if any.
Must not: print to standard output (the service log goes there, and is discarded).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path


def load_target(spec: str):
    module_name, _, function_name = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, function_name or "build_case")


def preload() -> list[str]:
    """Import every module of the library, and python-docx (imported lazily by the mailings), start
    the render worker (packet.workers.render) and wait until it has loaded its fonts, and load the
    same fonts here: a running service has them in its own process too (cached for good once its
    first build rendered a mailing there), so a warm build does not load them in its clock."""
    import pkgutil

    import packet

    names = [info.name for info in pkgutil.walk_packages(packet.__path__, "packet.")]
    for name in names + ["docx"]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that cannot be imported is then imported in the clock
            continue
    from packet.workers import render as renderworker

    renderworker.warm()  # the render worker a running service keeps, imported and with its fonts loaded
    from packet.mailings import layout

    layout.warm_up()  # the fonts the service's own process keeps once it has rendered any mailing
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.runner")
    parser.add_argument("--case-dir", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--target", default="packet.pipeline.build:build_case")
    args = parser.parse_args(argv)

    from packet import log
    from packet.config import load_config
    from packet.fsutil import PRIVATE_UMASK

    os.umask(PRIVATE_UMASK)
    log.set_stream(open(os.devnull, "w"))
    result: dict = {"target": args.target}
    try:
        build = load_target(args.target)
        preload()
        flags = {key: str(args.root / key) for key in ("outbox", "archive", "state")}
        flags["inbox"] = str(args.case_dir.parent)
        config = load_config(None, flags=flags, environ={})
        # The C chains read no scans, so neither does the measured build (OCR has its own row).
        config = dataclasses.replace(config, ocr=dataclasses.replace(config.ocr, enabled=False))
        try:
            from packet.intake.convert.batch import prestart
        except ImportError:  # a target from before the conversion package
            from packet.intake.convert import prestart

        prestart(config)  # the conversion workers a running service keeps between builds
        start = time.perf_counter()
        outcome = build(args.case_dir, config)
        result["seconds"] = time.perf_counter() - start
        result["documents"] = len(getattr(outcome, "documents", ()) or ())
        result["refused"] = len(getattr(outcome, "newly_rejected", ()) or ())
        draft = getattr(outcome, "draft_dir", None)
        result["draft"] = str(draft) if draft else None
        code = 0
    except Exception as exc:  # the benchmark reports it; it is not the service
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=8)
        code = 1
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
