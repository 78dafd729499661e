"""Walking a case folder: which files are documents to take, which are junk, and overrides.toml.

Owns: the folder contract of spec.md (junk list, hint folders, privileged/, overrides.toml, the
service's own `_STATUS.txt` and `_rejected/`). Must not: open or read documents; never modifies
anything in the case folder.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import tomllib
from pathlib import Path

from packet.model.models import CORRESPONDENCE, MEDICAL_RECORDS, PLAN_STATEMENTS, Intake, Override, SourceFile

HINT_FOLDERS = {"medical-records": MEDICAL_RECORDS, "correspondence": CORRESPONDENCE,
                "plan-statements": PLAN_STATEMENTS}
PRIVILEGED_FOLDER = "privileged"
CONTROL_FILES = {"case.toml", "overrides.toml", "READY", "_STATUS.txt"}
JUNK_PATTERNS = (".*", "~$*", ".~lock.*#", "*.tmp", "*.part", "*.crdownload")
JUNK_NAMES = {"thumbs.db", "desktop.ini"}


def is_junk(name: str) -> bool:
    """Names the service ignores and never touches (spec.md, "A case folder")."""
    if name.lower() in JUNK_NAMES:
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in JUNK_PATTERNS)


def is_ignored_dir(name: str) -> bool:
    return name.startswith("_") or name.startswith(".")


def scan(case_dir: Path) -> list[SourceFile]:
    """Every candidate document in the case folder, sorted by relative path."""
    case_dir = Path(case_dir)
    found: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(case_dir):
        dirnames[:] = sorted(d for d in dirnames if not is_ignored_dir(d))
        rel_dir = Path(dirpath).relative_to(case_dir)
        parts = [p.lower() for p in rel_dir.parts]
        hint = next((HINT_FOLDERS[p] for p in parts if p in HINT_FOLDERS), None)
        privileged = PRIVILEGED_FOLDER in parts
        for name in sorted(filenames):
            if is_junk(name):
                continue
            if not parts and name in CONTROL_FILES:
                continue
            path = Path(dirpath) / name
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue  # vanished while we looked
            if not path.is_file() or path.is_symlink():
                continue  # symlinks could point outside the inbox: never follow them
            relpath = (rel_dir / name).as_posix()
            found.append(SourceFile(relpath=relpath, path=path.resolve(), size=stat.st_size,
                                    mtime_ns=stat.st_mtime_ns, hint_category=hint,
                                    in_privileged_folder=privileged))
    return found


def load_overrides(case_dir: Path) -> tuple[dict[str, Override], list[str]]:
    """overrides.toml: per-file decisions by a person, keyed by path relative to the case folder."""
    path = Path(case_dir) / "overrides.toml"
    if not path.is_file():
        return {}, []
    problems: list[str] = []
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return {}, [f"overrides.toml is not valid TOML ({exc}); no override was applied"]
    from packet.model.models import CATEGORY_ORDER

    out: dict[str, Override] = {}
    for key, table in raw.items():
        where = f'overrides.toml ["{key}"]'
        if not isinstance(table, dict):
            problems.append(f"{where} must be a table of decisions")
            continue
        values: dict = {}
        for name, value in table.items():
            if name == "category":
                if value not in CATEGORY_ORDER:
                    problems.append(f"{where} category must be one of {', '.join(CATEGORY_ORDER)}")
                    continue
            elif name == "identity_confirmed" and isinstance(value, dict):
                reason, pages, problem = _identity_confirmed_table(value)
                if problem:
                    problems.append(f"{where} identity_confirmed {problem}")
                    continue
                values["identity_confirmed_pages"] = pages
                value = reason
            elif name in ("privileged", "withhold_from_member", "exclude", "title", "identity_confirmed",
                          "release_to_member"):
                if not isinstance(value, str) or not value.strip():
                    problems.append(f"{where} {name} must be text (the reason)" if name != "title"
                                    else f"{where} title must be text")
                    continue
                value = value.strip()
            elif name == "date":
                if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
                    problems.append(f"{where} date must be a date like 2026-08-14 (no quotes)")
                    continue
            else:
                problems.append(f"{where} {name} is not a known key")
                continue
            values[name] = value
        out[key.replace("\\", "/").strip("/")] = Override(**values)
    return out, problems


def _identity_confirmed_table(table: dict) -> tuple[str, tuple[int, ...], str | None]:
    """identity_confirmed = { reason = "...", pages = "2, 5-6" }: a person vouches for those pages only."""
    reason, spec = table.get("reason"), table.get("pages")
    if set(table) - {"reason", "pages"}:
        return "", (), "takes only reason and pages"
    if not isinstance(reason, str) or not reason.strip():
        return "", (), "needs reason = text"
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    if not isinstance(spec, str) or not re.fullmatch(r"\s*\d{1,5}(\s*-\s*\d{1,5})?(\s*,\s*\d{1,5}(\s*-\s*\d{1,5})?)*\s*", spec):
        return "", (), 'pages must be page numbers and ranges, like "2, 5-6"'
    pages: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last or last - first > 10000:
            return "", (), f'pages "{part.strip()}" is not a range of pages from 1'
        pages.update(range(first, last + 1))
    return reason.strip(), tuple(sorted(pages)), None


def read_case_folder(case_dir: Path) -> Intake:
    overrides, problems = load_overrides(case_dir)
    files = scan(case_dir)
    known = {f.relpath for f in files}
    for relpath in overrides:
        if relpath not in known:
            problems.append(f'overrides.toml names "{relpath}", which is not in the case folder')
    return Intake(files=tuple(files), overrides=overrides, override_problems=tuple(problems))
