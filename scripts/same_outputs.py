"""Same outputs before and after: build the demo case and the realistic test cases with two
checkouts at a fixed clock and compare every output byte.

    .venv/bin/python scripts/same_outputs.py --old f917c89 --new .

The old revision is checked out with `git worktree add --detach` into a temporary folder; the
code a run uses is chosen with PYTHONPATH (it comes before the editable install). The inputs are
generated once (with the new checkout's tests/realistic.py and packet/demo.py) and copied into
each run, so both runs see byte-identical case folders. Every Python process of a run (the
service and its workers) sees one fixed wall clock (a `sitecustomize` on PYTHONPATH), and each
step passes its own `now`, so any difference is a difference of the code.

Compared: outbox/, archive/, inbox/ (status notes, what is left, _rejected/) and state/ except the
service log and lock files. Prints every differing or missing file; exits 1 if any, 0 if none.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIXED_CLOCK = "2026-12-02T17:30:00+00:00"

# Installed as sitecustomize.py on every run's PYTHONPATH: datetime.now() answers FIXED_CLOCK, while
# isinstance checks against datetime still hold for real datetimes. time.time() is left alone
# (timeouts need it; file-settling uses it, and every step here passes its own `now`).
SITECUSTOMIZE = '''
import datetime as _dt
import os as _os

_fixed = _os.environ.get("SAME_OUTPUTS_CLOCK")
if _fixed:
    _real = _dt.datetime
    _moment = _real.fromisoformat(_fixed)

    class _Meta(type):
        def __instancecheck__(cls, obj):
            return isinstance(obj, _real)

        def __subclasscheck__(cls, sub):
            return issubclass(sub, _real)

    class _FrozenDatetime(_real, metaclass=_Meta):
        @classmethod
        def now(cls, tz=None):
            return _moment.astimezone(tz) if tz is not None else _moment.astimezone().replace(tzinfo=None)

        @classmethod
        def utcnow(cls):
            return _moment.astimezone(_dt.timezone.utc).replace(tzinfo=None)

        @classmethod
        def today(cls):
            return cls.now()

    _dt.datetime = _FrozenDatetime
'''

# Runs inside a checkout's interpreter: generates the inputs (mode "generate") or runs the flows.
DRIVER = r'''
import dataclasses, datetime as dt, json, shutil, sys
from pathlib import Path

mode, root = sys.argv[1], Path(sys.argv[2])
PST = dt.timezone(dt.timedelta(hours=-8))

def at(*args):
    return dt.datetime(*args, tzinfo=PST)

def copy_into(src, dst):
    for path in sorted(Path(src).rglob("*")):
        if path.is_file():
            target = Path(dst) / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)

try:
    from packet.pipeline.build import build_case
    from packet.pipeline.seal import seal_case
except ImportError:  # before the renovation into rooms
    from packet.build import build_case
    from packet.seal import seal_case
from packet.errors import GateFailed
from packet.config import load_config

def make_config(base):
    values = {key: str(Path(base) / key) for key in ("inbox", "outbox", "archive", "state")}
    return load_config(None, flags=values, environ={})

# (builder, first build, seal, late build, late seal)
REALISTIC = [("standard_case", at(2026, 11, 27, 9, 0), at(2026, 11, 30, 10, 0), None, None),
             ("spanish_case", at(2026, 11, 17, 8, 30), at(2026, 11, 18, 16, 0), None, None),
             ("expedited_case", at(2026, 11, 25, 18, 0), at(2026, 11, 26, 9, 30), None, None),
             ("supplement_case", at(2026, 11, 24, 11, 0), at(2026, 11, 24, 14, 0),
              at(2026, 12, 1, 10, 15), at(2026, 12, 1, 15, 0))]
DEMO_AT = at(2026, 12, 2, 9, 30)

def files_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}

def generate(inputs):
    import realistic as R
    from packet.demo import write_demo_files
    plan = []
    scratch = inputs / "_scratch"
    for builder, first, seal, late_build, late_seal in REALISTIC:
        shutil.rmtree(scratch, ignore_errors=True)
        case = getattr(R, builder)(scratch)
        base = files_of(case.case_dir)
        copy_into(case.case_dir, inputs / case.case_id / "initial")
        case.apply_clerk_fixes()
        for rel, data in files_of(case.case_dir).items():
            if base.get(rel) != data:
                target = inputs / case.case_id / "fixes" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        step = {"case_id": case.case_id, "world": "realistic", "first": first.isoformat(), "seal": seal.isoformat()}
        if late_build is not None:
            late_dir = inputs / case.case_id / "late"
            late_dir.mkdir(parents=True)
            R.supplement_files(dataclasses.replace(case, case_dir=late_dir))
            step.update(late_build=late_build.isoformat(), late_seal=late_seal.isoformat())
        plan.append(step)
    shutil.rmtree(scratch, ignore_errors=True)
    demo_id = "DEMO-2026-0001"
    demo_dir = scratch / demo_id  # case.toml names the folder it is written into
    demo_dir.mkdir(parents=True)
    write_demo_files(demo_dir, make_config(scratch / "config"), DEMO_AT)
    shutil.move(demo_dir, inputs / demo_id / "initial")
    shutil.rmtree(scratch, ignore_errors=True)
    plan.append({"case_id": demo_id, "world": "demo", "first": DEMO_AT.isoformat(),
                 "seal": (DEMO_AT + dt.timedelta(hours=2)).isoformat()})
    (inputs / "plan.json").write_text(json.dumps(plan, indent=1))

def seal(config, case_id, now):
    try:
        seal_case(config, case_id, now=now, actor="same-outputs")
    except GateFailed:
        seal_case(config, case_id, now=now, actor="same-outputs", override_reason="same-outputs check")

def run(inputs, out):
    for step in json.loads((inputs / "plan.json").read_text()):
        config = make_config(out / step["world"])
        config.paths.inbox.mkdir(parents=True, exist_ok=True)
        case_id, case_dir = step["case_id"], config.paths.inbox / step["case_id"]
        copy_into(inputs / case_id / "initial", case_dir)
        first = build_case(case_dir, config, now=dt.datetime.fromisoformat(step["first"]))
        if first.blocking:
            try:
                seal_case(config, case_id, now=dt.datetime.fromisoformat(step["first"]), actor="same-outputs")
            except GateFailed:
                pass
        if (inputs / case_id / "fixes").is_dir():
            copy_into(inputs / case_id / "fixes", case_dir)
        seal(config, case_id, dt.datetime.fromisoformat(step["seal"]))
        if "late_build" in step:
            copy_into(inputs / case_id / "late", case_dir)
            build_case(case_dir, config, now=dt.datetime.fromisoformat(step["late_build"]))
            seal(config, case_id, dt.datetime.fromisoformat(step["late_seal"]))
    try:
        from packet.intake.convert.batch import shutdown_pool
    except ImportError:
        try:
            from packet.intake.convert import shutdown_pool
        except ImportError:
            from packet.convert import shutdown_pool
    shutdown_pool()

if mode == "generate":
    generate(root)
else:
    run(Path(sys.argv[3]), root)
'''

# Under state/: files whose bytes are not outputs (the service log, locks, caches keyed by time).
STATE_SKIP_SUFFIXES = (".lock",)
STATE_SKIP_NAMES = {"service.log"}
# Caches keyed by the code that made them (the classifier's source is part of every key): any change
# to that code changes them, whatever the outputs do.
STATE_CACHE_NAMES = {"classified.json"}


def _python(checkout: Path) -> str:
    venv = checkout / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _env(code: Path, shim: Path, *, tests: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(code)] + ([str(tests)] if tests else []) + [str(shim)]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["SAME_OUTPUTS_CLOCK"] = FIXED_CLOCK
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONWARNINGS"] = "ignore"
    env.pop("IMR_PACKET_CONFIG", None)
    return env


def _run(python: str, code: Path, shim: Path, driver: Path, args: list[str], *, tests: Path | None = None) -> None:
    check = subprocess.run([python, "-c", "import packet; print(packet.__file__)"], env=_env(code, shim),
                           capture_output=True, text=True, check=True, cwd=code)
    used = Path(check.stdout.strip()).resolve()
    if not used.is_relative_to(code.resolve()):
        raise SystemExit(f"PYTHONPATH did not choose {code}: packet came from {used}")
    subprocess.run([python, str(driver), *args], env=_env(code, shim, tests=tests), check=True, cwd=code)


def _skipped(rel: str) -> bool:
    if not rel.startswith("state/"):
        return False
    name = rel.rsplit("/", 1)[-1]
    return name in STATE_SKIP_NAMES or name.endswith(STATE_SKIP_SUFFIXES)


def _tree(root: Path) -> dict[str, Path]:
    files = {}
    for world in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in world.rglob("*"):
            if path.is_file():
                rel = path.relative_to(world).as_posix()
                if not _skipped(rel):
                    files[f"{world.name}/{rel}"] = path
    return files


# LibreOffice stamps the wall clock and a random /ID into every PDF it writes (a conversion kept in
# state/cache and in the archive's _sealed/converted/): two runs of the SAME code differ there.
# Such files are compared with those fields masked; every output of this code is compared raw.
_CONVERTER_NOISE = re.compile(rb"/(CreationDate|ModDate)\s*\([^)]*\)|/ID\s*\[\s*<[0-9A-Fa-f]*>\s*<[0-9A-Fa-f]*>\s*\]"
                              rb"|/DocChecksum\s*/[0-9A-Fa-f]+")


def _converter_noise_only(a: Path, b: Path) -> bool:
    if a.suffix.lower() != ".pdf" or not ("/converted/" in a.as_posix() or a.name == "converted.pdf"):
        return False
    return _CONVERTER_NOISE.sub(b"", a.read_bytes()) == _CONVERTER_NOISE.sub(b"", b.read_bytes())


def _sums_differ_only_in(a: Path, b: Path, noisy: set[str]) -> bool:
    """A SHA256SUMS whose differing lines all name files that differ only in converter noise."""
    old_lines = set(a.read_text(encoding="utf-8").splitlines())
    new_lines = set(b.read_text(encoding="utf-8").splitlines())
    base = a.parent.parent
    return all((base / line.split("  ", 1)[-1]).as_posix() in noisy for line in old_lines ^ new_lines)


def _json_keys(a: Path, b: Path) -> str:
    """For two JSON objects: which top-level keys differ (so a reader sees what changed)."""
    if a.suffix != ".json":
        return ""
    try:
        old, new = json.loads(a.read_bytes()), json.loads(b.read_bytes())
    except ValueError:
        return ""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return ""
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return f"  (keys: {', '.join(keys)})" if keys else "  (same JSON, other bytes)"


def _same_but_run_folder(a: Path, b: Path, old_root: Path, new_root: Path) -> bool:
    """A status note names the outbox folder by its absolute path, which is each run's own."""
    if a.name != "_STATUS.txt":
        return False
    return a.read_bytes().replace(str(old_root).encode(), b"<run>") == b.read_bytes().replace(str(new_root).encode(), b"<run>")


def compare(old_root: Path, new_root: Path) -> tuple[list[str], int]:
    """Lines describing each difference, and how many files differed only in converter noise."""
    old, new = _tree(old_root), _tree(new_root)
    lines, noisy, sums = [], set(), []
    for rel in sorted(old.keys() | new.keys()):
        if rel not in new:
            lines.append(f"only in old: {rel}")
        elif rel not in old:
            lines.append(f"only in new: {rel}")
        elif not filecmp.cmp(old[rel], new[rel], shallow=False):
            if _converter_noise_only(old[rel], new[rel]):
                noisy.add(old[rel].as_posix())
            elif old[rel].name == "SHA256SUMS":
                sums.append(rel)
            elif "state/" in rel and old[rel].name in STATE_CACHE_NAMES:
                continue
            elif _same_but_run_folder(old[rel], new[rel], old_root, new_root):
                continue
            else:
                lines.append(f"differs:     {rel}{_json_keys(old[rel], new[rel])}")
    for rel in sums:
        if _sums_differ_only_in(old[rel], new[rel], noisy):
            noisy.add(old[rel].as_posix())
        else:
            lines.append(f"differs:     {rel}")
    return lines, len(noisy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="git revision of the old code (checked out with git worktree)")
    parser.add_argument("--new", default=".", help="path of the new checkout (default: .)")
    parser.add_argument("--keep", metavar="DIR", help="keep the runs' folders in DIR")
    args = parser.parse_args(argv)
    new = Path(args.new).resolve()
    python = _python(new)
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="same-outputs-"))
    work.mkdir(parents=True, exist_ok=True)
    old = work / "old-checkout"
    try:
        subprocess.run(["git", "-C", str(new), "worktree", "add", "--detach", "--force", str(old), args.old],
                       check=True, capture_output=True)
        shim = work / "shim"
        shim.mkdir(exist_ok=True)
        (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
        driver = work / "driver.py"
        driver.write_text(DRIVER)
        inputs = work / "inputs"
        print(f"generating inputs in {inputs}", flush=True)
        _run(python, new, shim, driver, ["generate", str(inputs)], tests=new / "tests")
        for label, code in (("old", old), ("new", new)):
            print(f"building with the {label} code ({code})", flush=True)
            _run(python, code, shim, driver, ["run", str(work / label), str(inputs)])
        differences, noisy = compare(work / "old", work / "new")
        for line in differences:
            print(line)
        if noisy:
            print(f"{noisy} file(s) differ only in LibreOffice's creation time and /ID (converted inputs, "
                  "and the SHA256SUMS listing them)")
        print(f"{len(differences)} file(s) differ" if differences else
              f"same outputs: {len(_tree(work / 'new'))} files byte-identical")
        return 1 if differences else 0
    finally:
        subprocess.run(["git", "-C", str(new), "worktree", "remove", "--force", str(old)], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
