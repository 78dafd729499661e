"""Walking a case folder: which files are documents to take, which are junk, and overrides.toml.

Owns: the folder contract of spec.md (junk list, hint folders, privileged/, overrides.toml, READY in
any spelling, the service's own `_STATUS.txt` and `_rejected/`), and which files cannot be used
whatever their content (links, names that are not UTF-8). Must not: open or read documents; never
modifies anything in the case folder (refusals are packet.intake.reject's).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from packet.config import Config, has_control
from packet.errors import CaseError, RefusedFile
from packet.fsutil import atomic_write_text, ensure_dir, sha256_bytes, sha256_file
from packet.intake.convert.refusals import HARD_LINK_NOTE, LINK_NOTE
from packet.model.case import read_control_file
from packet.model.models import (CATEGORY_ORDER, CORRESPONDENCE, MEDICAL_RECORDS, PLAN_STATEMENTS, Intake,
                                 Override, SourceFile)
from packet.records import audit

HINT_FOLDERS = {"medical-records": MEDICAL_RECORDS, "correspondence": CORRESPONDENCE,
                "plan-statements": PLAN_STATEMENTS}
PRIVILEGED_FOLDER = "privileged"
CONTROL_FILES = {"case.toml", "overrides.toml", "READY", "_STATUS.txt"}
JUNK_PATTERNS = (".*", "~$*", ".~lock.*#", "*.tmp", "*.part", "*.crdownload")
JUNK_NAMES = {"thumbs.db", "desktop.ini"}
# READY in any case with any extension: "READY.txt" is what Explorer's New > Text Document makes
# (shown as "READY" when extensions are hidden, so "READY.txt.txt" happens too).
_READY = re.compile(r"ready(\.[a-z0-9]{1,5}){0,2}", re.IGNORECASE)
TEXT_KEYS = ("privileged", "withhold_from_member", "exclude", "title", "identity_confirmed", "release_to_member")
OVERRIDE_KEYS = ("category", "date") + TEXT_KEYS + ("identity_confirmed_pages", "exclude_pages", "received")


def is_junk(name: str) -> bool:
    """Names the service ignores and never touches (spec.md, "A case folder")."""
    if name.lower() in JUNK_NAMES:
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in JUNK_PATTERNS)


def is_ignored_dir(name: str) -> bool:
    return name.startswith("_") or name.startswith(".")


def is_ready_marker(name: str) -> bool:
    """True for the clerk's "seal it" file: READY, ready, READY.txt, Ready.docx, ..."""
    return bool(_READY.fullmatch(name.strip()))


def ready_markers(case_dir: Path) -> list[Path]:
    """The READY files at the top of a case folder (any case, any extension), sorted by name."""
    try:
        names = sorted(os.listdir(case_dir))
    except OSError:
        return []
    return [Path(case_dir) / name for name in names
            if is_ready_marker(name) and os.path.isfile(os.path.join(case_dir, name))]


def is_control_file(name: str) -> bool:
    """A top-level file the service reads as an instruction, never as a document."""
    return name in CONTROL_FILES or is_ready_marker(name)


def display_name(name: str) -> str:
    """A name that can be written into notes and JSON: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates (surrogateescape)
        return False
    return True


@dataclass(frozen=True)
class Scan:
    """The usable candidate documents, and the files refused whatever their content."""

    files: list[SourceFile]
    unusable: list[tuple[SourceFile, RefusedFile]]


_LINK = LINK_NOTE
_HARD_LINK = HARD_LINK_NOTE
_BAD_NAME = ("The file's name has characters that could not be read (it was probably made on a computer "
             "with another language setting).",
             "Rename the file using plain letters and digits, then drop it into the case folder again.")


def scan_folder(case_dir: Path) -> Scan:
    """Every candidate document in the case folder, sorted by relative path, and the unusable ones."""
    case_dir = Path(case_dir)
    found: list[SourceFile] = []
    unusable: list[tuple[SourceFile, RefusedFile]] = []
    for dirpath, dirnames, filenames in os.walk(case_dir):
        rel_dir = Path(dirpath).relative_to(case_dir)
        parts = [p.lower() for p in rel_dir.parts]
        hint = next((HINT_FOLDERS[p] for p in parts if p in HINT_FOLDERS), None)
        privileged = PRIVILEGED_FOLDER in parts
        dirnames[:] = sorted(d for d in dirnames if not is_ignored_dir(d))
        linked = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d not in linked]  # never walked into
        for name in sorted(filenames) + linked:
            if is_junk(name):
                continue
            if not parts and is_control_file(name):
                continue
            path = Path(dirpath) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # vanished while we looked
            relpath = (rel_dir / name).as_posix()
            source = SourceFile(relpath=display_name(relpath), path=path.absolute(), size=info.st_size,
                                mtime_ns=info.st_mtime_ns, hint_category=hint, in_privileged_folder=privileged)
            if stat.S_ISLNK(info.st_mode):
                unusable.append((source, RefusedFile("link", *_LINK)))
            elif not stat.S_ISREG(info.st_mode):
                continue  # a pipe, socket or device: never opened, never moved
            elif not _utf8(relpath):  # the file's name or one of its folders' names
                unusable.append((source, RefusedFile("unreadable_name", *_BAD_NAME)))
            elif info.st_nlink > 1:
                unusable.append((source, RefusedFile("hard_link", *_HARD_LINK)))
            else:
                found.append(SourceFile(relpath=relpath, path=path.resolve(), size=info.st_size,
                                        mtime_ns=info.st_mtime_ns, hint_category=hint,
                                        in_privileged_folder=privileged, identity=(info.st_dev, info.st_ino)))
    return Scan(files=found, unusable=unusable)


def scan(case_dir: Path) -> list[SourceFile]:
    """Every usable candidate document in the case folder, sorted by relative path."""
    return scan_folder(case_dir).files


# --- overrides.toml ---------------------------------------------------------------------------------
# Read with a tolerant approach: clerks write Windows paths ("scans\fax 0412.tif", where TOML would
# read "\f" as a form feed) and make typing slips. Each entry ([header] and its lines) is read on
# its own, so one bad entry is reported alone and the good ones are kept.

_HEADER = re.compile(r"\s*\[(?!\[)(?P<key>.*)\]\s*(?:#.*)?")
_INLINE = re.compile(r"\s*(?P<key>\"[^\"]*\"|'[^']*'|[^=\[\"']+?)\s*=\s*(?P<value>\{.*\})\s*(?:#.*)?")
_BASIC_VALUE = re.compile(r"\s*(?P<name>[A-Za-z_][A-Za-z0-9_-]*)\s*=\s*\"(?P<raw>(?:[^\"\\]|\\.)*)\"\s*(?:#.*)?")


def normalise_relpath(text: str) -> str:
    """A path as a clerk writes it ("scans\\fax.tif", "/a.pdf ") as the folder walk names it."""
    return "/".join(part for part in text.strip().replace("\\", "/").split("/") if part not in ("", "."))


def _header_key(text: str) -> str | None:
    """The file a [header] names; None when it is not one path (e.g. a dotted TOML key)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        inner = text[1:-1]
        return None if "'" in inner else inner
    if len(text) >= 2 and text[0] == text[-1] == '"':
        inner = text[1:-1]
        if re.search(r'(?<!\\)"', inner):
            return None
        # Backslashes are path separators here, never escapes ("\f" is not a form feed).
        return inner.replace('\\"', '"').replace("\\\\", "\\")
    if '"' in text or "'" in text or not text:
        return None
    return text  # a bare name: [scan.pdf] means the file scan.pdf, not a table "pdf" in "scan"


def _literal(raw: str) -> str:
    return raw.replace('\\"', '"').replace("\\\\", "\\")


def _parse_body(lines: list[tuple[int, str]], problems: list[str]) -> dict:
    """The `name = value` lines of one entry; a line that cannot be read is reported and skipped."""
    text = "\n".join(line for _, line in lines)
    try:
        values = tomllib.loads(text)
        if not any(isinstance(v, str) and has_control(v) for v in values.values()):
            return values
    except tomllib.TOMLDecodeError:
        pass
    values = {}
    for number, line in lines:
        if not line.strip() or line.strip().startswith("#"):
            continue
        basic = _BASIC_VALUE.fullmatch(line)
        try:
            parsed = tomllib.loads(line)
        except tomllib.TOMLDecodeError as exc:
            if basic is None:
                problems.append(f"overrides.toml line {number} is not understood ({exc}); it was skipped")
                continue
            parsed = {basic["name"]: _literal(basic["raw"])}
        if basic is not None and any(isinstance(v, str) and has_control(v) for v in parsed.values()):
            parsed = {basic["name"]: _literal(basic["raw"])}  # a "\f" or "\n" a clerk meant as written
        for name, value in parsed.items():
            if name in values:
                problems.append(f"overrides.toml line {number}: {name} is given twice; the later value is used")
            values[name] = value
    return values


def _entries(text: str, problems: list[str]) -> list[tuple[int, str, dict]]:
    """(line number, path as written, raw values) for every entry of overrides.toml."""
    entries: list[tuple[int, str, dict]] = []
    current: tuple[int, str] | None = None
    skipping = False  # inside an entry whose header was not understood: its lines go with it
    body: list[tuple[int, str]] = []

    def close() -> None:
        if current is not None:
            entries.append((current[0], current[1], _parse_body(body, problems)))

    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.fullmatch(line)
        if header is not None:
            close()
            key = _header_key(header["key"])
            body = []
            skipping = key is None
            if key is None:
                current = None
                problems.append(f"overrides.toml line {number}: {stripped[:120]!r} does not name one file; "
                                'write it like ["scans/fax 0412.tif"]; this entry was skipped')
            else:
                current = (number, key)
            continue
        if current is not None:
            body.append((number, line))
            continue
        if skipping:
            continue
        inline = _INLINE.fullmatch(line)
        key = _header_key(inline["key"]) if inline else None
        values = None
        if inline is not None and key is not None:
            for candidate in (inline["value"], inline["value"].replace("\\", "\\\\")):
                try:
                    values = tomllib.loads("v = " + candidate)["v"]
                    break
                except tomllib.TOMLDecodeError:
                    continue
        if values is None:
            problems.append(f"overrides.toml line {number} is not understood: start each file's entry with its "
                            'path in brackets, like ["scans/fax 0412.tif"]; this line was skipped')
            continue
        entries.append((number, key, values))
    close()
    return entries


def _override(where: str, table: dict, problems: list[str]) -> Override | None:
    values: dict = {}
    for name, value in table.items():
        if name == "category":
            if value not in CATEGORY_ORDER:
                problems.append(f"{where} category must be one of {', '.join(CATEGORY_ORDER)}")
                continue
        elif name in ("identity_confirmed", "exclude") and isinstance(value, dict):
            reason, pages, problem = _reason_pages_table(value)
            if problem:
                problems.append(f"{where} {name} {problem}" + ("; the file's pages were not removed" if name == "exclude" else ""))
                continue
            if has_control(reason):
                problems.append(f"{where} {name} must not contain control characters")
                continue
            values[f"{name}_pages"] = pages
            value = reason
        elif name in TEXT_KEYS:
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where} {name} must be text (the reason)" if name != "title"
                                else f"{where} title must be text")
                continue
            if has_control(value):
                problems.append(f"{where} {name} must not contain control characters")
                continue
            value = value.strip()
        elif name == "date":
            if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
                problems.append(f"{where} date must be a date like 2026-08-14 (no quotes)")
                continue
            if not 1900 <= value.year <= 2100:
                problems.append(f"{where} date is in the year {value.year}: check it")
                continue
        elif name == "received":
            problem = received_problem(value)
            if problem:
                problems.append(f"{where} received {problem}")
                continue
        else:
            problems.append(f"{where} {name} is not a known key")
            continue
        values[name] = value
    return Override(**values)


def received_problem(value: object) -> str | None:
    """What is wrong with a `received` value (when the plan received the file), or None.

    A time with its offset (2026-11-25T16:10:00-08:00), a local time (2026-11-25T16:10:00, read in
    the plan's time zone) or a date (2026-11-25, the start of that day); no quotes.
    """
    if isinstance(value, dt.time) or not isinstance(value, dt.date):
        return "must be a time like 2026-11-25T16:10:00-08:00 or a date like 2026-11-25 (no quotes)"
    if not 2000 <= value.year <= 2100:
        return f"is in the year {value.year}: check it"
    return None


def load_overrides(case_dir: Path) -> tuple[dict[str, Override], list[str]]:
    """overrides.toml: per-file decisions by a person, keyed by path relative to the case folder.

    Every problem is one line naming the entry; entries without problems are kept.
    """
    path = Path(case_dir) / "overrides.toml"
    if not os.path.lexists(path):
        return {}, []
    try:
        text = read_control_file(path)
    except CaseError as exc:
        return {}, [f"{exc.message}; no override was applied"]
    except OSError as exc:
        return {}, [f"overrides.toml cannot be read ({exc.strerror or type(exc).__name__}); no override was applied"]
    problems: list[str] = []
    out: dict[str, Override] = {}
    for number, key, table in _entries(text, problems):
        relpath = normalise_relpath(key)
        where = f'overrides.toml ["{relpath}"] (line {number})'
        if not relpath or has_control(relpath):
            problems.append(f"overrides.toml line {number}: the path is empty or has control characters; skipped")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where} must be a table of decisions")
            continue
        if relpath in out:
            problems.append(f"{where} names a file already named above; the later entry is used")
        override = _override(where, table, problems)
        if override is not None:
            out[relpath] = override
    return out, problems


def overrides_owner(case_dir: Path) -> str | None:
    """The operating-system user who owns overrides.toml (who wrote it), or None without one."""
    try:
        uid = os.lstat(Path(case_dir) / "overrides.toml").st_uid
    except OSError:
        return None
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def override_values(overrides: dict[str, Override]) -> dict[str, dict[str, str]]:
    """The decisions as plain JSON values, {relpath: {decision: value}}, for comparing and recording."""
    out: dict[str, dict[str, str]] = {}
    for relpath, override in sorted(overrides.items()):
        values = {key: getattr(override, key) for key in OVERRIDE_KEYS if getattr(override, key) not in (None, ())}
        out[relpath] = {key: value.isoformat() if isinstance(value, dt.date)
                        else list(value) if isinstance(value, tuple) else value
                        for key, value in values.items()}
    return out


def override_changes(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[dict]:
    """Each decision added, changed or removed between two `override_values`, in a stable order."""
    changes = []
    for relpath in sorted(set(before) | set(after)):
        old, new = before.get(relpath, {}), after.get(relpath, {})
        for key in OVERRIDE_KEYS:
            if old.get(key) == new.get(key):
                continue
            change = "added" if key not in old else "removed" if key not in new else "changed"
            changes.append({"relpath": relpath, "decision": key, "change": change,
                            "old": old.get(key), "new": new.get(key)})
    return changes


def _reason_pages_table(table: dict) -> tuple[str, tuple[int, ...], str | None]:
    """{ reason = "...", pages = "2, 5-6" }: a decision about those pages only (identity_confirmed: a
    person vouches for them; exclude: a person removes them)."""
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
    found = scan_folder(case_dir)
    known = {f.relpath for f in found.files} | {s.relpath for s, _ in found.unusable}
    for relpath in overrides:
        if relpath not in known:
            problems.append(f'overrides.toml names "{relpath}", which is not in the case folder')
    return Intake(files=tuple(found.files), overrides=overrides, override_problems=tuple(problems),
                  unusable=tuple(found.unusable))


_LOCKS: dict[str, FileLock] = {}
# Values from a fixed set (a category, a date, pages, a receipt time): recorded as they are.
PLAIN_DECISIONS = ("category", "date", "identity_confirmed_pages", "exclude_pages", "received")


def audit_value(decision: str, value: object) -> object:
    """A decision's value as the audit log records it: categories and dates as they are; a person's
    text (a reason, a title), which may name the member or another patient, as a fingerprint that
    proves which text it was (compare with `sha256sum` of the text in overrides.toml)."""
    if value is None or decision in PLAIN_DECISIONS:
        return value
    text = str(value)
    return f"text sha256:{sha256_bytes(text.encode('utf-8'))[:16]} ({len(text)} characters)"


def decisions_lock(config: Config, case_id: str) -> FileLock:
    """Held while overrides.toml is written by the desk and while its decisions are recorded, so a
    decision is recorded once, with the person who made it."""
    path = str(ensure_dir(config.paths.state / "cases" / case_id) / "overrides.lock")
    lock = _LOCKS.get(path)
    if lock is None:
        lock = _LOCKS[path] = FileLock(path, timeout=60, mode=0o660)
    return lock


def decision_authors(config: Config, case_id: str) -> dict[str, dict[str, dict]]:
    """Who made each decision now in force: {relpath: {decision: {"by": name, "at": time, "via": ...}}}."""
    try:
        data = json.loads((config.paths.state / "cases" / case_id / "overrides-by.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_override_decisions(config: Config, case_id: str, case_dir: Path,
                              overrides: dict[str, Override], *, actor: str | None = None,
                              via: str = "overrides.toml") -> list[dict]:
    """Record every decision added, changed or removed in overrides.toml since the last look.

    Each is an `override_added` / `override_changed` / `override_removed` audit event whose actor is
    `actor` (the signed-in user of the review desk) or else the operating-system user who owns
    overrides.toml (who wrote it), with the decision, the old and new values, when the file was
    written, and the document's hash (file names never reach the audit log). The decisions last
    recorded are kept in state/cases/<CASE-ID>/overrides.json, and who made each in overrides-by.json.
    """
    with decisions_lock(config, case_id):
        return _record_decisions(config, case_id, case_dir, overrides, actor, via)


def _record_decisions(config: Config, case_id: str, case_dir: Path, overrides: dict[str, Override],
                      actor: str | None, via: str) -> list[dict]:
    memory = config.paths.state / "cases" / case_id / "overrides.json"
    try:
        before = json.loads(memory.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = {}
    after = override_values(overrides)
    changes = override_changes(before if isinstance(before, dict) else {}, after)
    if not changes:
        return []
    actor = actor or overrides_owner(case_dir) or audit.current_user()
    try:
        written = dt.datetime.fromtimestamp(os.lstat(Path(case_dir) / "overrides.toml").st_mtime,
                                            dt.timezone.utc).isoformat(timespec="seconds")
    except OSError:
        written = None  # the file was removed: every decision in it is withdrawn
    events = []
    for change in changes:
        events.append((f"override_{change['change']}", {
            "case": case_id, "doc": _file_hash(Path(case_dir) / change["relpath"]), "actor": actor,
            "decision": change["decision"], "old": audit_value(change["decision"], change["old"]),
            "new": audit_value(change["decision"], change["new"]),
            "file_written_at": written, "via": via}))
    entries = audit.record_many(config, events)
    authors = decision_authors(config, case_id)
    for change, entry in zip(changes, entries):
        by_file = authors.setdefault(change["relpath"], {})
        if change["change"] == "removed":
            by_file.pop(change["decision"], None)
        else:
            by_file[change["decision"]] = {"by": actor, "at": entry.get("ts"), "via": via}
    authors = {relpath: table for relpath, table in authors.items() if table and relpath in after}
    atomic_write_text(ensure_dir(memory.parent) / memory.name, json.dumps(after, sort_keys=True, ensure_ascii=False))
    atomic_write_text(memory.parent / "overrides-by.json", json.dumps(authors, sort_keys=True, ensure_ascii=False))
    return entries


def _file_hash(path: Path) -> str | None:
    try:
        if not path.is_file() or path.is_symlink():
            return None
        return sha256_file(path)
    except OSError:
        return None
