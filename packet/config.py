"""The one typed configuration object, loaded from defaults, imr.toml, environment, then flags.

Owns: every configurable value and its validation. All problems are collected and reported at once,
each naming its key (`ConfigError.problems`). Must not: hold globals; the object is passed explicitly.
Rule tables (classification, privilege, withholding) are parsed here too, so a typo in a rule is a
start-up error, not a silent miss. Their built-in defaults live in `packet/defaults/rules.toml`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from packet.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
CATEGORIES = ("medical_records", "correspondence", "plan_statements")
RULE_KINDS = ("category", "privileged", "withhold")
RULE_WHERE = ("name", "text", "any")

ENV_PREFIX = "IMR_"  # IMR_CONFIG, IMR_INBOX, IMR_OUTBOX, IMR_ARCHIVE, IMR_STATE, IMR_TEMPLATES


@dataclass(frozen=True)
class Paths:
    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    archive: Path = Path("archive")
    state: Path = Path("state")
    templates: Path = PROJECT_ROOT / "templates"


@dataclass(frozen=True)
class Watch:
    settle_seconds: float = 2.0
    debounce_seconds: float = 2.0
    rescan_seconds: float = 60.0
    polling: str = "auto"  # auto | always | never
    retry_attempts: int = 4  # transient failures: tries before a file is refused
    retry_base_seconds: float = 2.0  # delay doubles after each failed try


@dataclass(frozen=True)
class Plan:
    name: str = "Golden Poppy Health Plan"
    phone: str = "1-800-555-0142"
    tty: str = "711"
    website: str = "www.goldenpoppyhealth.example"
    address: tuple[str, ...] = ("Golden Poppy Health Plan", "Grievance and Appeals Unit",
                                "P.O. Box 1000", "Sacramento, CA 95814")
    language_taglines: tuple[str, ...] = ("es", "zh", "vi", "ko", "tl", "hy", "ru", "fa", "ja", "km", "pa", "ar", "hi", "th", "hmn")
    nondiscrimination: str = ""  # empty: the template's standard notice is used


@dataclass(frozen=True)
class Bates:
    prefix: str = "{case_id}-"
    digits: int = 6

    def label(self, case_id: str, number: int) -> str:
        return f"{self.prefix.format(case_id=case_id)}{number:0{self.digits}d}"


@dataclass(frozen=True)
class Calendar:
    timezone: str = "America/Los_Angeles"
    extra_holidays: tuple[dt.date, ...] = ()
    not_holidays: tuple[dt.date, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ImrOrganization:
    name: str = "IMR Organization designated by DMHC"
    address: tuple[str, ...] = ()
    fax: str = ""


@dataclass(frozen=True)
class Dmhc:
    """DMHC contact details printed on member letters (domain.md section 4)."""

    help_center_phone: str = "1-888-466-2219"
    tdd: str = "1-877-688-9891"
    website: str = "www.dmhc.ca.gov"
    online_filing: str = "www.HealthHelp.ca.gov"
    fax: str = "(916) 255-5241"
    address: tuple[str, ...] = ("Help Center", "Department of Managed Health Care",
                                "980 9th Street, Suite 500", "Sacramento, CA 95814-2725")


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 5000  # per document
    conversion_timeout_seconds: float = 180.0
    pdf_open_timeout_seconds: float = 60.0  # per-file limit for parsing / text extraction
    workers: int = 2  # processes for conversion and text extraction


@dataclass(frozen=True)
class Ocr:
    """Reading pages without a text layer (packet.intake.ocr). Tesseract, English and Spanish."""

    enabled: bool = True
    languages: str = "eng+spa"  # tesseract language codes joined by "+"
    page_timeout_seconds: float = 120.0  # one page; a page over it is not read (and says so)
    file_timeout_seconds: float = 1200.0  # all pages of one file together
    max_pages: int = 500  # per file; pages past the cap are not read (and say so)
    rotate_pages: bool = True  # upside-down and sideways pages are turned upright
    deskew: bool = True  # straighten pages tilted up to max_deskew_degrees
    max_deskew_degrees: float = 5.0
    pdf_dpi: int = 300  # image-only PDF pages are rendered at this resolution to be read
    min_confidence: float = 70.0  # mean word confidence (0-100) below which a page's text decides nothing alone


@dataclass(frozen=True)
class Rule:
    """One rule of the classification / privilege / withholding tables.

    `patterns` are case-insensitive regular expressions searched in the file name (`where = "name"`),
    the document text (`"text"`) or both (`"any"`). A category rule adds `weight` to its category;
    a privileged or withhold rule sets the flag, with `label` as the reason a person reads.
    `tag` (optional, category rules) names a fact the rule recognises, e.g. "grievance_response"
    (see packet.classify.rules.is_grievance_response).
    """

    id: str
    kind: str  # category | privileged | withhold
    patterns: tuple[str, ...]
    where: str = "any"
    category: str | None = None
    weight: int = 1
    label: str = ""
    tag: str = ""

    def compiled(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in self.patterns)


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...] = ()
    min_score: int = 2  # a category needs at least this score to be chosen over needs_review
    margin: int = 1  # and must beat the runner-up by at least this much

    def of_kind(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == kind)


@dataclass(frozen=True)
class Config:
    paths: Paths = field(default_factory=Paths)
    watch: Watch = field(default_factory=Watch)
    plan: Plan = field(default_factory=Plan)
    bates: Bates = field(default_factory=Bates)
    calendar: Calendar = field(default_factory=Calendar)
    imr_organization: ImrOrganization = field(default_factory=ImrOrganization)
    dmhc: Dmhc = field(default_factory=Dmhc)
    limits: Limits = field(default_factory=Limits)
    ocr: Ocr = field(default_factory=Ocr)
    rules: Rules = field(default_factory=Rules)
    source: str = "built-in defaults"  # which file, if any, the values came from

    @property
    def cache_dir(self) -> Path:
        return self.paths.state / "cache"

    @property
    def work_dir(self) -> Path:
        return self.paths.state / "work"

    @property
    def audit_log(self) -> Path:
        return self.paths.state / "audit.jsonl"


_SECTIONS = {"paths": Paths, "watch": Watch, "plan": Plan, "bates": Bates, "calendar": Calendar,
             "imr_organization": ImrOrganization, "dmhc": Dmhc, "limits": Limits,
             "ocr": Ocr}


def _coerce(section: str, key: str, value: Any, default: Any, problems: list[str]) -> Any:
    name = f"[{section}] {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            problems.append(f"{name} must be true or false, not {value!r}")
            return default
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{name} must be a number, not {value!r}")
            return default
        if value < 0:
            problems.append(f"{name} must not be negative")
            return default
        return type(default)(value) if isinstance(default, float) else value
    if isinstance(default, Path):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} must be a folder path (text)")
            return default
        return Path(os.path.expanduser(value))
    if isinstance(default, tuple):
        if not isinstance(value, list):
            problems.append(f"{name} must be a list")
            return default
        if section == "calendar":
            out = []
            for item in value:
                if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
                    out.append(item)
                else:
                    problems.append(f"{name} entries must be dates like 2026-11-27, not {item!r}")
            return tuple(out)
        if not all(isinstance(item, str) for item in value):
            problems.append(f"{name} entries must be text")
            return default
        return tuple(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            problems.append(f"{name} must be text, not {value!r}")
            return default
        return value
    return value


def _section(name: str, cls: type, raw: Any, problems: list[str]) -> Any:
    base = cls()
    if raw is None:
        return base
    if not isinstance(raw, dict):
        problems.append(f"[{name}] must be a table")
        return base
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"[{name}] {key} is not a known key (known: {', '.join(sorted(known))})")
            continue
        values[key] = _coerce(name, key, value, getattr(base, key), problems)
    return replace(base, **values)


def parse_rules(raw_rules: Any, where: str, problems: list[str]) -> list[Rule]:
    """Parse a list of rule tables (`[[rules.rule]]`), appending problems that name the rule."""
    out: list[Rule] = []
    if raw_rules is None:
        return out
    if not isinstance(raw_rules, list):
        problems.append(f"{where} must be a list of tables ([[rules.rule]])")
        return out
    for index, raw in enumerate(raw_rules, 1):
        label = f"{where} #{index}"
        if not isinstance(raw, dict):
            problems.append(f"{label} must be a table")
            continue
        rule_id = raw.get("id")
        if isinstance(rule_id, str) and rule_id:
            label = f"{where} '{rule_id}'"
        else:
            problems.append(f"{label}: id is required (a short name for the rule)")
            continue
        unknown = set(raw) - {"id", "kind", "patterns", "where", "category", "weight", "label", "tag"}
        if unknown:
            problems.append(f"{label}: unknown key(s) {', '.join(sorted(unknown))}")
        kind = raw.get("kind")
        if kind not in RULE_KINDS:
            problems.append(f"{label}: kind must be one of {', '.join(RULE_KINDS)}, not {kind!r}")
            continue
        patterns = raw.get("patterns")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            problems.append(f"{label}: patterns must be a non-empty list of text patterns")
            continue
        bad = False
        for pattern in patterns:
            try:
                re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                problems.append(f"{label}: pattern {pattern!r} is not a valid regular expression ({exc})")
                bad = True
        where_value = raw.get("where", "any")
        if where_value not in RULE_WHERE:
            problems.append(f"{label}: where must be one of {', '.join(RULE_WHERE)}, not {where_value!r}")
            bad = True
        category = raw.get("category")
        if kind == "category" and category not in CATEGORIES:
            problems.append(f"{label}: category must be one of {', '.join(CATEGORIES)}, not {category!r}")
            bad = True
        weight = raw.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int):
            problems.append(f"{label}: weight must be a whole number")
            bad = True
        rule_label = raw.get("label", "")
        if not isinstance(rule_label, str):
            problems.append(f"{label}: label must be text")
            bad = True
        tag = raw.get("tag", "")
        if not isinstance(tag, str):
            problems.append(f"{label}: tag must be text")
            bad = True
        if bad:
            continue
        out.append(Rule(id=rule_id, kind=kind, patterns=tuple(patterns), where=where_value,
                        category=category if kind == "category" else None, weight=weight,
                        label=rule_label or rule_id, tag=tag))
    return out


def _rules(raw: Any, problems: list[str]) -> Rules:
    with open(DEFAULTS_DIR / "rules.toml", "rb") as handle:
        defaults_raw = tomllib.load(handle)
    default_problems: list[str] = []
    default_rules = parse_rules(defaults_raw.get("rule"), "built-in rules", default_problems)
    if default_problems:  # a bug in the shipped file, not the user's fault: fail loudly
        raise RuntimeError("packet/defaults/rules.toml: " + "; ".join(default_problems))
    base = Rules(rules=tuple(default_rules), min_score=defaults_raw.get("min_score", 2),
                 margin=defaults_raw.get("margin", 1))
    if raw is None:
        return base
    if not isinstance(raw, dict):
        problems.append("[rules] must be a table")
        return base
    unknown = set(raw) - {"rule", "replace_defaults", "disable", "min_score", "margin"}
    if unknown:
        problems.append(f"[rules] unknown key(s) {', '.join(sorted(unknown))}")
    user_rules = parse_rules(raw.get("rule"), "[[rules.rule]]", problems)
    rules = [] if raw.get("replace_defaults", False) else list(default_rules)
    disable = raw.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(d, str) for d in disable):
        problems.append("[rules] disable must be a list of rule ids")
        disable = []
    known_ids = {r.id for r in rules}
    for rule_id in disable:
        if rule_id not in known_ids:
            problems.append(f"[rules] disable: no built-in rule is called {rule_id!r}")
    user_ids = {r.id for r in user_rules}
    # A user rule with a built-in rule's id replaces it.
    rules = [r for r in rules if r.id not in disable and r.id not in user_ids] + user_rules
    min_score = raw.get("min_score", base.min_score)
    margin = raw.get("margin", base.margin)
    for key, value in (("min_score", min_score), ("margin", margin)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"[rules] {key} must be a whole number, 0 or more")
    if problems:
        return base
    return Rules(rules=tuple(rules), min_score=min_score, margin=margin)


def load_config(config_file: Path | str | None = None, *, flags: dict[str, Any] | None = None,
                environ: dict[str, str] | None = None, check_paths: bool = True) -> Config:
    """Defaults, then imr.toml (or `config_file`), then IMR_* environment variables, then flags.

    `flags` maps path keys (inbox, outbox, archive, state, templates) to values from the command
    line. Folders are created when missing; every problem is reported in one ConfigError.
    """
    environ = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    raw: dict[str, Any] = {}
    source = "built-in defaults"
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path is None and Path("imr.toml").is_file():
        path = "imr.toml"
    if path is not None:
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
            source = str(path)
        except FileNotFoundError:
            raise ConfigError([f"the configuration file {path} does not exist"], source=str(path))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"not valid TOML: {exc}"], source=str(path)) from exc
    unknown = set(raw) - set(_SECTIONS) - {"rules"}
    for key in sorted(unknown):
        problems.append(f"[{key}] is not a known section (known: {', '.join(sorted(_SECTIONS) + ['rules'])})")
    sections = {name: _section(name, cls, raw.get(name), problems) for name, cls in _SECTIONS.items()}
    rules = _rules(raw.get("rules"), problems)

    paths = sections["paths"]
    for key in ("inbox", "outbox", "archive", "state", "templates"):
        env_value = environ.get(ENV_PREFIX + key.upper())
        if env_value:
            paths = replace(paths, **{key: Path(env_value)})
        if flags and flags.get(key):
            paths = replace(paths, **{key: Path(flags[key])})
    # Absolute from here on: workers and LibreOffice run in other working directories.
    paths = Paths(**{f.name: Path(os.path.abspath(getattr(paths, f.name))) for f in fields(Paths)})
    sections["paths"] = paths

    watch = sections["watch"]
    if watch.polling not in ("auto", "always", "never"):
        problems.append(f"[watch] polling must be auto, always or never, not {watch.polling!r}")
    try:
        ZoneInfo(sections["calendar"].timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"[calendar] timezone {sections['calendar'].timezone!r} is not a known time zone")
    bates = sections["bates"]
    try:
        bates.prefix.format(case_id="X")
    except (KeyError, IndexError, ValueError):
        problems.append("[bates] prefix may only use {case_id}")
    if not 3 <= bates.digits <= 12:
        problems.append("[bates] digits must be between 3 and 12")
    if sections["limits"].workers < 1:
        problems.append("[limits] workers must be at least 1")
    _check_ocr(sections["ocr"], problems)

    if check_paths:
        _check_paths(paths, problems)
    if problems:
        raise ConfigError(problems, source=source)
    return Config(**sections, rules=rules, source=source)


def _check_ocr(ocr: Ocr, problems: list[str]) -> None:
    if not re.fullmatch(r"[a-z][a-z_]*(\+[a-z][a-z_]*)*", ocr.languages):
        problems.append(f"[ocr] languages must be tesseract language codes joined by '+' (like eng+spa), "
                        f"not {ocr.languages!r}")
    for key in ("page_timeout_seconds", "file_timeout_seconds"):
        if getattr(ocr, key) <= 0:
            problems.append(f"[ocr] {key} must be more than 0")
    if ocr.file_timeout_seconds < ocr.page_timeout_seconds:
        problems.append("[ocr] file_timeout_seconds must be at least page_timeout_seconds")
    if ocr.max_pages < 1:
        problems.append("[ocr] max_pages must be at least 1")
    if ocr.max_deskew_degrees > 15:
        problems.append("[ocr] max_deskew_degrees must be 15 or less")
    if not 100 <= ocr.pdf_dpi <= 600:
        problems.append("[ocr] pdf_dpi must be between 100 and 600")
    if ocr.min_confidence > 100:
        problems.append("[ocr] min_confidence must be between 0 and 100")


def _check_paths(paths: Paths, problems: list[str]) -> None:
    resolved = {}
    for key in ("inbox", "outbox", "archive", "state"):
        folder = getattr(paths, key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(f"[paths] {key} = {folder}: cannot create it ({exc.strerror})")
            continue
        if not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"[paths] {key} = {folder}: not writable by this user")
        resolved[key] = folder.resolve()
    keys = list(resolved)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            pa, pb = resolved[a], resolved[b]
            if pa == pb or pa in pb.parents or pb in pa.parents:
                problems.append(f"[paths] {a} and {b} overlap ({pa} / {pb}); they must be separate folders")
    if not paths.templates.is_dir():
        problems.append(f"[paths] templates = {paths.templates}: no such folder")
