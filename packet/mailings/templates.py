"""The editable templates of one configuration, and the variables every template sees.

Owns: the jinja environment over `templates/<lang>/*.md.j2` (StrictUndefined; member data escaped
by `finalize`), the labels and taglines TOML files, errors that name the template and the variable,
dates written in the member's language, and the variables shared by every letter (plan, DMHC,
IMR organization, member, provider, representative, case).
Must not: lay out pages, or read case folders.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from packet.config import Config
from packet.errors import TemplateError
from packet.fsutil import atomic_write_bytes
from packet.mailings.markup import Block, escape_markup, parse_markup


# Templates compiled at set-up (`make setup` calls `write_compiled`), beside the package's compiled
# modules: every command-line run and worker is a fresh process, which would otherwise compile each
# template it uses (about 0.05 s of CPU in a build, 0.02 s of it for the board at the very end).
COMPILED_DIR = Path(__file__).resolve().parent.parent / "__pycache__" / "jinja"


class CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates kept for the life of the process, so a build (or a board written again)
    does not compile every template again; the first use in a process reads the one compiled at
    set-up, if any. Keyed by jinja on the template's name and file; jinja also compares the
    source's checksum, its own version and Python's, so an edited template (or a file of another
    installation) is compiled again, never used. The compiled code also depends on the
    environment's options (escaping, `finalize`): one cache, and one folder, per kind of environment."""

    def __init__(self, kind: str) -> None:
        self._code: dict[str, bytes] = {}
        self.folder = COMPILED_DIR / kind
        self.writing = False  # `write_compiled`: keep what is compiled in `folder` too

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is None:
            try:
                code = (self.folder / f"{bucket.key}.cache").read_bytes()
            except OSError:
                return
        if code is not None:
            try:
                bucket.bytecode_from_string(code)  # a stale or foreign file leaves the bucket empty
            except Exception:  # noqa: BLE001 - a damaged file: the template is compiled again
                bucket.reset()
            if bucket.code is not None:
                self._code[bucket.key] = code  # the next environment of this process reads no file

    @contextlib.contextmanager
    def written(self):
        """While inside: what is compiled is also kept in `folder` (`write_compiled`, at set-up)."""
        self.writing = True
        try:
            yield
        finally:
            self.writing = False

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()
        if self.writing:
            with contextlib.suppress(OSError):  # a read-only installation: compiled in each process
                atomic_write_bytes(self.folder / f"{bucket.key}.cache", self._code[bucket.key], mode=0o644,
                                   durable=False)


_COMPILED = CompiledTemplates("mailings")  # the mailings' environments


def write_compiled(config: Config) -> None:
    """Compile every template of `config`'s folder into the set-up's folder (`make setup`)."""
    templates = Templates(config)
    with _COMPILED.written():
        for path in sorted(templates.folder.glob("*/*.j2")):
            templates.env.get_template(path.relative_to(templates.folder).as_posix())


class Templates:
    """The template folder of one configuration: jinja environment, labels and taglines."""

    def __init__(self, config: Config):
        self.config = config
        self.folder = Path(config.paths.templates)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.folder)), undefined=jinja2.StrictUndefined,
            finalize=escape_markup, autoescape=False, keep_trailing_newline=True,
            trim_blocks=True, lstrip_blocks=True, bytecode_cache=_COMPILED)
        self.env.filters["longdate"] = long_date
        self.env.filters["shortdate"] = short_date
        self.env.filters["datetime"] = long_datetime
        self.env.filters["relationship"] = self.relationship

    def render(self, language: str, name: str, variables: dict[str, Any]) -> str:
        template_name = f"{language}/{name}"
        try:
            template = self.env.get_template(template_name)
            return template.render(**variables, lang=language)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} is missing from {self.folder}",
                                reason="template_missing") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {exc.name or template_name} line {exc.lineno}: {exc.message}",
                                reason="template_syntax") from exc
        except jinja2.UndefinedError as exc:
            where = _template_in_traceback(exc) or template_name
            raise TemplateError(f"template {where}: variable {exc.message} (missing variable)",
                                reason="template_variable") from exc

    def blocks(self, language: str, name: str, variables: dict[str, Any]) -> tuple[Block, ...]:
        text = self.render(language, name, variables)
        try:
            return parse_markup(text)
        except ValueError as exc:
            raise TemplateError(f"template {language}/{name}: {exc}", reason="template_markup") from exc

    @lru_cache(maxsize=4)
    def labels(self, language: str) -> dict[str, Any]:
        return self._toml(f"{language}/labels.toml")

    @lru_cache(maxsize=1)
    def taglines(self) -> dict[str, Any]:
        return self._toml("taglines.toml")

    def _toml(self, name: str) -> dict[str, Any]:
        path = self.folder / name
        try:
            with open(path, "rb") as handle:
                return tomllib.load(handle)
        except FileNotFoundError as exc:
            raise TemplateError(f"template {name} is missing from {self.folder}",
                                reason="template_missing") from exc
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"template {name} is not valid TOML: {exc}", reason="template_syntax") from exc

    def relationship(self, text: str | None, language: str = "en") -> str:
        """A relationship word in the letter's language (labels.toml [relationships]), else as written.

        "madre (parent)" or "Spouse" written by a clerk reads "madre" / "cónyuge" in a Spanish
        letter: the whole text, then each part before a parenthesis, is looked up, lower-cased.
        """
        if not text:
            return ""
        words = {str(k).lower(): str(v) for k, v in self.labels(language).get("relationships", {}).items()}
        key = " ".join(text.lower().split())
        if key in words:
            return words[key]
        head, _, rest = key.partition("(")
        head, rest = head.strip(), rest.rstrip(")").strip()
        if head in words or rest in words:
            return words.get(head) or words[rest]
        return text

    def names(self, language: str) -> dict[str, str]:
        """The plan's configured names as they read in `language` (labels.toml [names])."""
        return {str(k): str(v) for k, v in self.labels(language).get("names", {}).items()}

    def name(self, language: str, text: str) -> str:
        return self.names(language).get(text, text)

    def plan_address(self, language: str) -> tuple[str, ...]:
        return tuple(self.name(language, line) for line in self.config.plan.address)

    def label(self, language: str, key: str) -> Any:
        labels = self.labels(language)
        node: Any = labels
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise TemplateError(f"template {language}/labels.toml: label {key!r} is missing",
                                    reason="template_variable")
            node = node[part]
        return node


def _template_in_traceback(exc: BaseException) -> str | None:
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = filename
        tb = tb.tb_next
    if found is None:
        return None
    parts = Path(found).parts
    return "/".join(parts[-2:])


# ----------------------------------------------------------------------------------------------
# Dates in the member's language
# ----------------------------------------------------------------------------------------------

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
}


def long_date(value: dt.date | dt.datetime | None, language: str = "en") -> str:
    if value is None:
        return ""
    month = MONTHS.get(language, MONTHS["en"])[value.month - 1]
    if language == "es":
        return f"{value.day} de {month} de {value.year}"
    return f"{month} {value.day}, {value.year}"


def short_date(value: dt.date | dt.datetime | None, language: str = "en") -> str:
    if value is None:
        return ""
    if language == "es":
        # Not 11/06/2026: in a California mailing beside US-dated records, a day-first numeric date
        # reads as November 6. The month's name is unambiguous in both conventions.
        return f"{value.day} {MONTHS['es'][value.month - 1][:3]} {value.year}"
    return f"{value.month:02d}/{value.day:02d}/{value.year}"


def long_datetime(value: dt.datetime | None, language: str = "en") -> str:
    if value is None:
        return ""
    hour = value.hour % 12 or 12
    ampm = "a.m." if value.hour < 12 else "p.m."
    if language == "es":
        return f"{long_date(value, language)}, {value.hour:02d}:{value.minute:02d}"
    return f"{long_date(value, language)}, {hour}:{value.minute:02d} {ampm}"


# ----------------------------------------------------------------------------------------------
# Variables every template sees
# ----------------------------------------------------------------------------------------------

def person_vars(person) -> dict[str, Any] | None:
    if person is None:
        return None
    return {"name": person.name, "address": list(person.mailing_address), "member_id": person.member_id,
            "date_of_birth": person.date_of_birth, "fax": person.fax, "relationship": person.relationship}


REPRESENTATIVE_KINDS = (  # words in [representative] relationship -> the declaration's check box
    ("parent", ("parent", "mother", "father", "padre", "madre")),
    ("guardian", ("guardian", "tutor")),
    ("conservator", ("conservator", "curador")),
    ("agent", ("agent", "attorney", "power of attorney", "poder", "apoderado")),
)
ADULT_AGE = 18


def representative_kind(relationship: str | None) -> str:
    if not relationship:
        return "other"
    lowered = relationship.lower()
    for kind, words in REPRESENTATIVE_KINDS:
        if any(word in lowered for word in words):
            return kind
    return "other"


def age_on(birth: dt.date | None, day: dt.date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def representative_authorized(facts, today: dt.date) -> bool:
    """May the representative sign the authorization for the member (domain.md, section 2)?

    case.toml's `authorized` decides when given. Otherwise the relationship does: a guardian, a
    conservator or an agent under a health-care power of attorney may; a parent only of a minor;
    an "authorized assistant", a contact, a daughter or a spouse may not (they may help and
    receive copies, but the member signs).
    """
    rep = facts.representative
    if rep is None:
        return False
    if rep.authorized is not None:
        return rep.authorized
    kind = representative_kind(rep.relationship)
    if kind == "parent":
        age = age_on(facts.member.date_of_birth, today)
        return age is not None and age < ADULT_AGE
    return kind in ("guardian", "conservator", "agent")


def base_variables(config: Config, facts, *, language: str, today: dt.date,
                   names: dict[str, str] | None = None) -> dict[str, Any]:
    """`names`: the plan's configured names in the letter's language (Templates.names)."""
    plan, dmhc = config.plan, config.dmhc
    names = names or {}

    def named(text: str) -> str:
        return names.get(text, text)
    return {
        "plan": {"name": plan.name, "phone": plan.phone, "tty": plan.tty, "website": plan.website,
                 "address": [named(line) for line in plan.address]},
        "dmhc": {"phone": dmhc.help_center_phone, "tdd": dmhc.tdd, "website": dmhc.website,
                 "online_filing": dmhc.online_filing, "fax": dmhc.fax, "address": list(dmhc.address)},
        "imr_org": {"name": named(config.imr_organization.name),
                    "address": [named(line) for line in config.imr_organization.address],
                    "fax": config.imr_organization.fax},
        "member": person_vars(facts.member),
        "provider": person_vars(facts.provider),
        "representative": representative_vars(facts, today),
        "case": {"case_id": facts.case_id, "review_type": facts.review_type, "expedited": facts.expedited,
                 "dispute_type": facts.dispute_type, "experimental": facts.dispute_type == "experimental",
                 "urgent_emergency_claim": facts.dispute_type == "urgent_emergency_claim",
                 "disputed_service": facts.disputed_service, "grievance_number": facts.grievance_number,
                 "dmhc_notice_received": facts.dmhc_notice_received,
                 "dmhc_case_number": facts.dmhc_case_number, "records_to": facts.records_to},
        "today": today,
        "letter_date": long_date(today, language),
    }


def representative_vars(facts, today: dt.date) -> dict[str, Any] | None:
    """The representative for the templates, with `authorized` (may sign) and `kind`."""
    variables = person_vars(facts.representative)
    if variables is not None:
        variables["authorized"] = representative_authorized(facts, today)
        variables["kind"] = representative_kind(facts.representative.relationship)
    return variables


def recipient_lines(person) -> tuple[str, ...]:
    if person is None:
        return ()
    return (person.name, *person.mailing_address)
