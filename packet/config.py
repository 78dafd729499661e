"""The one typed configuration object, loaded from defaults, imr.toml, environment, then flags.

Owns: every configurable value and its validation. All problems are collected and reported at once,
each naming its key (`ConfigError.problems`). Must not: hold globals; the object is passed explicitly.
Rule tables (classification, privilege, withholding) are parsed here too, so a typo in a rule is a
start-up error, not a silent miss. Their built-in defaults live in `packet/defaults/rules.toml`.
"""

from __future__ import annotations

import datetime as dt
import math
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
RULE_EVIDENCE = ("meaning", "statement")

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
    stable_seconds: float = 60.0  # a file modified this recently that fails to parse is retried, not refused


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
class Audit:
    # An HMAC key the service can read but not write (root-owned, mode 0640): packet.records.anchor.
    # Empty: the systemd credential imr-audit-key if present, else no key.
    key_file: str = ""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 5000  # per document
    conversion_timeout_seconds: float = 180.0
    pdf_open_timeout_seconds: float = 60.0  # per-file limit for parsing / text extraction
    workers: int = 2  # processes for conversion and text extraction
    max_stream_bytes: int = 512 * 1024 * 1024  # no output carries a stream that inflates past this
    # Reading an untrusted file (in a worker process) stops at these; a file that hits one is refused for good.
    worker_memory_mib: int = 2048  # a conversion worker's address space while it reads a file
    office_memory_mib: int = 4096  # LibreOffice's address space while it converts a Word, RTF or ODT file
    max_image_pixels: int = 300_000_000  # pixels of one image (a frame of a scan, or an image in a PDF)
    max_inflated_bytes: int = 256 * 1024 * 1024  # one decompressed PDF stream, one page's content, one image in a PDF
    max_office_unpacked_bytes: int = 512 * 1024 * 1024  # a DOCX or ODT file's parts, uncompressed
    max_office_parts: int = 5000  # parts inside a DOCX or ODT file


@dataclass(frozen=True)
class Web:
    """The review desk (`imr-packet serve`)."""

    listen: str = "127.0.0.1:8750"
    auth: str = "local"  # local (accounts in state/desk/users.json) | proxy (REMOTE_USER from trusted_proxies)
    trusted_proxies: tuple[str, ...] = ()  # addresses whose REMOTE_USER header is believed (auth = "proxy")
    proxy_roles: tuple[str, ...] = ()  # "user=role" pairs for auth = "proxy"
    idle_minutes: float = 30.0  # a session unused this long is signed out
    secure_cookies: bool = False  # true behind TLS: cookies are sent over HTTPS only
    max_failed_logins: int = 5  # per user name and address, in 15 minutes


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

    @property
    def confident(self) -> float:
        """`min_confidence` on the 0..1 scale of Converted.page_confidence, as the classifier reads it."""
        return self.min_confidence / 100.0


@dataclass(frozen=True)
class Rule:
    """One rule of the classification / privilege / withholding tables.

    `patterns` are case-insensitive regular expressions searched in the file name (`where = "name"`),
    the document text (`"text"`) or both (`"any"`). A category rule adds `weight` to its category;
    a privileged or withhold rule sets the flag, with `label` as the reason a person reads.
    `tag` (optional, category rules) names a fact the rule recognises, e.g. "grievance_response"
    (see packet.classify.rules.is_grievance_response).
    `evidence` (privileged / withhold rules): "meaning" (a match counts in a heading or a sentence by
    which the document declares itself, packet.classify.meaning) or "statement" (the pattern is itself
    a statement about the document, such as a provider's determination or an instruction, and counts
    wherever it is said, unless its clause makes it a condition or denies it). `context`: patterns of
    which one must also be found in the document's name or text for the rule to count.
    """

    id: str
    kind: str  # category | privileged | withhold
    patterns: tuple[str, ...]
    where: str = "any"
    category: str | None = None
    weight: int = 1
    label: str = ""
    tag: str = ""
    evidence: str = "meaning"
    context: tuple[str, ...] = ()

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
    web: Web = field(default_factory=Web)
    ocr: Ocr = field(default_factory=Ocr)
    rules: Rules = field(default_factory=Rules)
    audit: Audit = field(default_factory=Audit)
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


# (low, high) for every number: a value outside is refused with its key named (nan and inf too).
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("watch", "settle_seconds"): (0, 3600),
    ("watch", "debounce_seconds"): (0, 3600),
    ("watch", "rescan_seconds"): (1, 86400),
    ("watch", "retry_attempts"): (1, 20),
    ("watch", "retry_base_seconds"): (0, 3600),
    ("watch", "stable_seconds"): (0, 86400),
    ("bates", "digits"): (3, 12),
    ("limits", "max_file_bytes"): (1, 64 * 1024 ** 3),
    ("limits", "max_pages"): (1, 1_000_000),
    ("limits", "conversion_timeout_seconds"): (1, 86400),
    ("limits", "pdf_open_timeout_seconds"): (1, 86400),
    ("limits", "workers"): (1, 64),
    ("limits", "max_stream_bytes"): (1024 * 1024, 64 * 1024 ** 3),
    ("web", "idle_minutes"): (1, 24 * 60),
    ("web", "max_failed_logins"): (1, 100),
}
# Control characters (and the invisible ones that reorder or break lines) in a configured value would
# end up in letters, file names and logs: refused, with the key named.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def has_control(text: str) -> bool:
    """True when `text` holds a control character (case.toml and overrides.toml use this too)."""
    return bool(_CONTROL.search(text))


_SECTIONS = {"paths": Paths, "watch": Watch, "plan": Plan, "bates": Bates, "calendar": Calendar,
             "imr_organization": ImrOrganization, "dmhc": Dmhc, "limits": Limits,
             "web": Web,
             "audit": Audit,
             "ocr": Ocr}


def _coerce(section: str, key: str, value: Any, default: Any, problems: list[str]) -> Any:
    name = f"[{section}] {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            problems.append(f"{name} must be true or false, not {value!r}")
            return default
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        whole = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
            problems.append(f"{name} must be {'a whole number' if whole else 'a number'}, not {value!r}")
            return default
        if not math.isfinite(value):
            problems.append(f"{name} must be a finite number, not {value!r}")
            return default
        low, high = RANGES.get((section, key), (0, 10 ** 12))
        if not low <= value <= high:
            problems.append(f"{name} must be between {low:g} and {high:g}, not {value!r}")
            return default
        return type(default)(value) if isinstance(default, float) else value
    if isinstance(default, Path):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} must be a folder path (text)")
            return default
        if has_control(value):
            problems.append(f"{name} must not contain control characters")
            return default
        return Path(os.path.expanduser(value))
    if isinstance(default, tuple):
        if not isinstance(value, list):
            problems.append(f"{name} must be a list")
            return default
        if section == "calendar":
            out = []
            for item in value:
                if isinstance(item, dt.date) and not isinstance(item, dt.datetime) and 2000 <= item.year <= 2100:
                    out.append(item)
                else:
                    problems.append(f"{name} entries must be dates like 2026-11-27 (years 2000-2100), not {item!r}")
            return tuple(out)
        if not all(isinstance(item, str) for item in value):
            problems.append(f"{name} entries must be text")
            return default
        if any(has_control(item) for item in value):
            problems.append(f"{name} entries must not contain control characters")
            return default
        return tuple(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            problems.append(f"{name} must be text, not {value!r}")
            return default
        # A long notice may be written as a multi-line string; no other key may hold a line break.
        if has_control(value.replace("\n", "") if key == "nondiscrimination" else value):
            problems.append(f"{name} must not contain control characters")
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


def _valid_patterns(patterns: list[str], what: str, problems: list[str]) -> bool:
    """Whether every pattern compiles; each one that does not is a problem naming it."""
    valid = True
    for pattern in patterns:
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            problems.append(f"{what} {pattern!r} is not a valid regular expression ({exc})")
            valid = False
    return valid


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
        unknown = set(raw) - {"id", "kind", "patterns", "where", "category", "weight", "label", "tag",
                            "evidence", "context"}
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
        bad = not _valid_patterns(patterns, f"{label}: pattern", problems)
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
        evidence = raw.get("evidence", "meaning")
        if evidence not in RULE_EVIDENCE:
            problems.append(f"{label}: evidence must be one of {', '.join(RULE_EVIDENCE)}, not {evidence!r}")
            bad = True
        context = raw.get("context", [])
        if not isinstance(context, list) or not all(isinstance(p, str) for p in context):
            problems.append(f"{label}: context must be a list of text patterns")
            bad = True
            context = []
        if not _valid_patterns(context, f"{label}: context pattern", problems):
            bad = True
        if kind == "category" and (evidence != "meaning" or context):
            problems.append(f"{label}: evidence and context are for privileged and withhold rules")
            bad = True
        if bad:
            continue
        out.append(Rule(id=rule_id, kind=kind, patterns=tuple(patterns), where=where_value,
                        category=category if kind == "category" else None, weight=weight,
                        label=rule_label or rule_id, tag=tag, evidence=evidence, context=tuple(context)))
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
                environ: dict[str, str] | None = None, check_paths: bool = True,
                create_folders: bool = True) -> Config:
    """Defaults, then imr.toml (or `config_file`), then IMR_* environment variables, then flags.

    `flags` maps path keys (inbox, outbox, archive, state, templates) to values from the command
    line. With `create_folders` (the service, `demo`, `new-case`) missing folders are created;
    without it (every other command) a missing folder is a problem naming its key, so a command
    run from the wrong place says so instead of answering about empty new folders. Every problem is
    reported in one ConfigError.
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
        except UnicodeDecodeError as exc:
            raise ConfigError(["not UTF-8 text"], source=str(path)) from exc
        except OSError as exc:
            raise ConfigError([f"cannot be read ({exc.strerror or type(exc).__name__})"], source=str(path)) from exc
    unknown = set(raw) - set(_SECTIONS) - {"rules"}
    for key in sorted(unknown):
        problems.append(f"[{key}] is not a known section (known: {', '.join(sorted(_SECTIONS) + ['rules'])})")
    sections = {name: _section(name, cls, raw.get(name), problems) for name, cls in _SECTIONS.items()}
    rules = _rules(raw.get("rules"), problems)

    paths = sections["paths"]
    for key in ("inbox", "outbox", "archive", "state", "templates"):
        for where, value in ((ENV_PREFIX + key.upper(), environ.get(ENV_PREFIX + key.upper())),
                             (f"--{key}", (flags or {}).get(key))):
            if not value:
                continue
            if has_control(str(value)):
                problems.append(f"{where} must not contain control characters")
                continue
            paths = replace(paths, **{key: Path(value)})
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
        sample = bates.prefix.format(case_id="X")
    except (KeyError, IndexError, ValueError):
        problems.append("[bates] prefix may only use {case_id}")
    else:
        # Printed on every page and searched by verify: short, and plain characters only.
        if len(sample) > 24 or not re.fullmatch(r"[A-Za-z0-9 ._/#-]*", sample):
            problems.append("[bates] prefix must be at most 24 letters, digits, spaces or . _ / # - "
                            "(plus {case_id})")
    web = sections["web"]
    if web.auth not in ("local", "proxy"):
        problems.append(f"[web] auth must be local or proxy, not {web.auth!r}")
    if not re.fullmatch(r"[0-9A-Za-z.:\[\]-]+:[0-9]{1,5}", web.listen) or not 0 < int(web.listen.rsplit(":", 1)[1]) < 65536:
        problems.append(f"[web] listen must be host:port, like 127.0.0.1:8750, not {web.listen!r}")
    for pair in web.proxy_roles:
        if not re.fullmatch(r"[^=\s]{1,64}=(clerk|supervisor|auditor)", pair):
            problems.append(f"[web] proxy_roles entries must look like \"name=clerk\", not {pair!r}")
    _check_limits(sections["limits"], problems)
    _check_ocr(sections["ocr"], problems)

    if check_paths and not (problems and create_folders):  # a broken configuration creates nothing
        _check_paths(paths, problems, create=create_folders)
    if problems:
        raise ConfigError(problems, source=source)
    return Config(**sections, rules=rules, source=source)


# [limits] keys that must be whole numbers within a range: (smallest, largest).
LIMIT_RANGES = {"worker_memory_mib": (256, 1 << 20), "office_memory_mib": (512, 1 << 20),
                "max_image_pixels": (1_000_000, 10_000_000_000), "max_inflated_bytes": (1 << 20, 1 << 40),
                "max_office_unpacked_bytes": (1 << 20, 1 << 40), "max_office_parts": (10, 1_000_000)}


def _check_limits(limits: Limits, problems: list[str]) -> None:
    for key, (low, high) in LIMIT_RANGES.items():
        value = getattr(limits, key)
        if isinstance(value, float) and not value.is_integer():
            problems.append(f"[limits] {key} must be a whole number, not {value!r}")
        elif not low <= value <= high:
            problems.append(f"[limits] {key} must be between {low} and {high}, not {value!r}")


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


def _check_paths(paths: Paths, problems: list[str], *, create: bool = True) -> None:
    resolved = {}
    for key in ("inbox", "outbox", "archive", "state"):
        folder = getattr(paths, key)
        if not create:
            if not folder.is_dir():
                problems.append(f"[paths] {key} = {folder}: no such folder (check --config and the [paths] "
                                "section, or create the folders with `imr-packet new-case` or `imr-packet watch`)")
                continue
        else:
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
