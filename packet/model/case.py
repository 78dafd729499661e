"""Case identity and case.toml: parsing, validation, and the template `new-case` writes.

Owns: what a valid case id is and what case.toml must hold. Every problem names its key.
Must not: read documents or write outputs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packet.config import has_control
from packet.errors import CaseError

CASE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # always used with fullmatch
# Years a case's dates and times may fall in: a notice in year 9999 or 0001 is a typing slip.
NOTICE_YEARS = (2000, 2100)
BIRTH_YEARS = (1880, 2100)
# The new-case template's placeholders: a case.toml still holding one is not filled in yet.
PLACEHOLDER_MARK = "FILL IN"
PLACEHOLDER_TEXTS = frozenset({"First Last", "Dr. First Last", "M000000000", "Street and number",
                               "City, CA 90000", "Clinic", "Describe the denied, modified or delayed service"})
REVIEW_TYPES = ("standard", "expedited")
DISPUTE_TYPES = ("medical_necessity", "experimental", "urgent_emergency_claim")
LANGUAGES = ("en", "es")


def valid_case_id(case_id: str) -> bool:
    return isinstance(case_id, str) and bool(CASE_ID_RE.fullmatch(case_id)) and case_id not in (".", "..")


def check_case_id(case_id: str) -> str:
    if not valid_case_id(case_id):
        raise CaseError(
            f"{str(case_id)[:80]!r} is not a valid case id: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit", reason="case_id")
    return case_id


@dataclass(frozen=True)
class Person:
    name: str
    address: tuple[str, ...] = ()
    member_id: str | None = None
    date_of_birth: dt.date | None = None
    fax: str | None = None
    relationship: str | None = None
    # [member] only, for the page-level identity check: names the member's records may carry
    # (maiden, former, hyphenated or nick names) and record numbers (MRNs) known to be the member's.
    other_names: tuple[str, ...] = ()
    known_mrns: tuple[str, ...] = ()
    authorized: bool | None = None  # [representative] only: may sign the authorization (None: from relationship)
    # [member] only: the address of a confidential communication request on file (Civ. 56.107(b)):
    # every mailing to the member goes there instead of `address`.
    confidential_address: tuple[str, ...] = ()

    @property
    def mailing_address(self) -> tuple[str, ...]:
        """Where this person's mail goes: a confidential communication address when there is one."""
        return self.confidential_address or self.address


@dataclass(frozen=True)
class InfoRequest:
    received: dt.datetime
    what: str
    id: str | None = None  # answered by files in responses/<id>/ (spec.md); default "request-N"


@dataclass(frozen=True)
class CaseFacts:
    case_id: str
    review_type: str
    dispute_type: str
    dmhc_notice_received: dt.datetime
    disputed_service: str
    language: str
    member: Person
    provider: Person | None
    representative: Person | None = None
    grievance_number: str | None = None
    info_requests: tuple[InfoRequest, ...] = ()
    dmhc_case_number: str | None = None  # DMHC's own IMR number; the folder id stays the plan's reference
    records_to: str = "member"  # member | provider: who gets the concurrent copies of the medical records

    @property
    def expedited(self) -> bool:
        return self.review_type == "expedited"


def _text(raw: dict, key: str, where: str, problems: list[str], *, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(f"{where}{key} is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}{key} must be non-empty text")
        return None
    if has_control(value):
        problems.append(f"{where}{key} must not contain control characters (tabs, line breaks, ...)")
        return None
    if is_placeholder(value):
        problems.append(f"{where}{key} still holds the template's example {value.strip()!r}: fill it in")
        return None
    return value.strip()


def is_placeholder(value: object) -> bool:
    """True for a value the new-case template wrote and nobody has replaced yet."""
    return isinstance(value, str) and (value.strip().upper().startswith(PLACEHOLDER_MARK) or value.strip() in PLACEHOLDER_TEXTS)


def _moment(value: object, key: str, problems: list[str], example: str) -> dt.datetime | None:
    """A date and time with its offset, in a plausible year; each problem names `key`."""
    if is_placeholder(value):
        problems.append(f"{key} is not filled in: a person must enter it, like {example} (no quotes)")
        return None
    if not isinstance(value, dt.datetime):
        problems.append(f"{key} must be a date and time like {example} (no quotes)")
        return None
    if value.tzinfo is None:
        problems.append(f"{key} needs its time zone offset, e.g. {example}")
        return None
    if not NOTICE_YEARS[0] <= value.year <= NOTICE_YEARS[1]:
        problems.append(f"{key} is in the year {value.year}: it must be between {NOTICE_YEARS[0]} and {NOTICE_YEARS[1]}")
        return None
    try:
        value.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        problems.append(f"{key} cannot be converted to a time zone; check its offset")
        return None
    return value


def _address(raw: dict, where: str, problems: list[str], *, required: bool, key: str = "address") -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(f"{where}{key} is missing (a list of lines)")
        return ()
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where}{key} must be a list of text lines")
        return ()
    if any(has_control(v) for v in value):
        problems.append(f"{where}{key} must not contain control characters (one line per list entry)")
        return ()
    examples = [v.strip() for v in value if is_placeholder(v)]
    if examples:
        problems.append(f"{where}{key} still holds the template's example {examples[0]!r}: fill it in")
        return ()
    return tuple(v.strip() for v in value)


def _person(raw: object, section: str, problems: list[str], *, member: bool = False) -> Person | None:
    where = f"[{section}] "
    if not isinstance(raw, dict):
        problems.append(f"[{section}] must be a table")
        return None
    known = {"name", "address", "member_id", "date_of_birth", "fax", "relationship"}
    if member:
        known |= {"other_names", "known_mrns", "confidential_address"}
    if section == "representative":
        known.add("authorized")
    for key in sorted(set(raw) - known):
        problems.append(f"{where}{key} is not a known key")
    name = _text(raw, "name", where, problems)
    address = _address(raw, where, problems, required=member)
    confidential = _address(raw, where, problems, required=False, key="confidential_address") if member else ()
    member_id = _text(raw, "member_id", where, problems, required=member)
    dob = raw.get("date_of_birth")
    if dob is None:
        if member:
            problems.append(f"{where}date_of_birth is missing (write it like 1961-04-09)")
    elif is_placeholder(dob):
        problems.append(f"{where}date_of_birth is not filled in (write it like 1961-04-09, no quotes)")
        dob = None
    elif not isinstance(dob, dt.date) or isinstance(dob, dt.datetime):
        problems.append(f"{where}date_of_birth must be a date like 1961-04-09 (no quotes)")
        dob = None
    elif not BIRTH_YEARS[0] <= dob.year <= BIRTH_YEARS[1]:
        problems.append(f"{where}date_of_birth is in the year {dob.year}: check it")
        dob = None
    fax = _text(raw, "fax", where, problems, required=False)
    relationship = _text(raw, "relationship", where, problems, required=False)
    other_names = _text_list(raw, "other_names", where, problems)
    known_mrns = _text_list(raw, "known_mrns", where, problems)
    authorized = raw.get("authorized")
    if authorized is not None and not isinstance(authorized, bool):
        problems.append(f"{where}authorized must be true or false (no quotes)")
        authorized = None
    if name is None:
        return None
    return Person(name=name, address=address, member_id=member_id, date_of_birth=dob, fax=fax,
                  relationship=relationship, other_names=other_names, known_mrns=known_mrns, authorized=authorized,
                  confidential_address=confidential)


def _text_list(raw: dict, key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    """An optional list of non-empty, single-line texts (e.g. other_names = ["Maria Lopez"])."""
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        problems.append(f'{where}{key} must be a list of non-empty texts, like ["..."]')
        return ()
    if any(ch < " " or ch == "\x7f" for item in value for ch in item):
        problems.append(f"{where}{key} must not hold control characters")
        return ()
    return tuple(item.strip() for item in value)


def parse_case(raw: dict, folder_name: str) -> CaseFacts:
    problems: list[str] = []
    known = {"case_id", "review_type", "dispute_type", "dmhc_notice_received", "disputed_service",
             "grievance_number", "language", "member", "provider", "representative", "info_requests",
             "dmhc_case_number", "records_to"}
    for key in sorted(set(raw) - known):
        problems.append(f"{key} is not a known key")
    case_id = raw.get("case_id", folder_name)
    if not isinstance(case_id, str) or not valid_case_id(case_id):
        problems.append("case_id must be 1-64 letters, digits, '.', '_' or '-'")
    elif case_id != folder_name:
        problems.append(f"case_id is {case_id!r} but the folder is {folder_name!r}; they must match")
    review_type = raw.get("review_type", "standard")
    if review_type not in REVIEW_TYPES:
        problems.append(f"review_type must be standard or expedited, not {review_type!r}")
    dispute_type = raw.get("dispute_type", "medical_necessity")
    if dispute_type not in DISPUTE_TYPES:
        problems.append(f"dispute_type must be one of {', '.join(DISPUTE_TYPES)}, not {dispute_type!r}")
    notice = raw.get("dmhc_notice_received")
    if notice is None:
        problems.append("dmhc_notice_received is missing (write it like 2026-11-25T16:10:00-08:00)")
    else:
        notice = _moment(notice, "dmhc_notice_received", problems, "2026-11-25T16:10:00-08:00")
    disputed = _text(raw, "disputed_service", "", problems)
    grievance = raw.get("grievance_number")
    if grievance is not None and not isinstance(grievance, str):
        problems.append("grievance_number must be text")
        grievance = None
    elif grievance is not None and has_control(grievance):
        problems.append("grievance_number must not contain control characters")
        grievance = None
    dmhc_case_number = raw.get("dmhc_case_number")
    if dmhc_case_number is not None and (not isinstance(dmhc_case_number, str) or not dmhc_case_number.strip()):
        problems.append("dmhc_case_number must be non-empty text")
        dmhc_case_number = None
    elif dmhc_case_number is not None and has_control(dmhc_case_number):
        problems.append("dmhc_case_number must not contain control characters")
        dmhc_case_number = None
    records_to = raw.get("records_to", "member")
    if records_to not in ("member", "provider"):
        problems.append(f"records_to must be member or provider, not {records_to!r}")
    language = raw.get("language", "en")
    if language not in LANGUAGES:
        problems.append(f"language must be en or es, not {language!r}")
    member = _person(raw.get("member"), "member", problems, member=True) if "member" in raw else None
    if "member" not in raw:
        problems.append("[member] is missing (name, member_id, date_of_birth, address)")
    provider = _person(raw["provider"], "provider", problems) if "provider" in raw else None
    representative = (_person(raw["representative"], "representative", problems)
                      if "representative" in raw else None)
    requests = []
    raw_requests = raw.get("info_requests", [])
    if not isinstance(raw_requests, list):
        problems.append("info_requests must be a list of tables ([[info_requests]])")
        raw_requests = []
    for index, item in enumerate(raw_requests, 1):
        if not isinstance(item, dict):
            problems.append(f"info_requests #{index} must be a table")
            continue
        received = _moment(item.get("received"), f"info_requests #{index}: received", problems,
                           "2026-11-30T09:00:00-08:00")
        what = item.get("what", "")
        if received is None:
            continue
        if not isinstance(what, str):
            problems.append(f"info_requests #{index}: what must be text")
            continue
        if has_control(what):
            problems.append(f"info_requests #{index}: what must not contain control characters")
            continue
        request_id = item.get("id", f"request-{index}")
        if not isinstance(request_id, str) or not valid_case_id(request_id):
            problems.append(f"info_requests #{index}: id must be 1-64 letters, digits, '.', '_' or '-'")
            continue
        requests.append(InfoRequest(received=received, what=what, id=request_id))
    if problems or member is None:
        raise CaseError(problems or ["[member] is invalid"], reason="case_toml")
    return CaseFacts(case_id=case_id, review_type=review_type, dispute_type=dispute_type,
                     dmhc_notice_received=notice, disputed_service=disputed, language=language,
                     member=member, provider=provider, representative=representative,
                     grievance_number=grievance, info_requests=tuple(requests),
                     dmhc_case_number=dmhc_case_number.strip() if dmhc_case_number else None,
                     records_to=records_to)


def load_case(case_dir: Path) -> CaseFacts:
    """Read and validate `case_dir/case.toml`; CaseError names each bad key."""
    case_dir = Path(case_dir)
    check_case_id(case_dir.name)
    path = case_dir / "case.toml"
    if not os.path.lexists(path):
        raise CaseError("case.toml is missing: run `imr-packet new-case "
                        f"{case_dir.name}` or copy one in", reason="case_toml_missing")
    try:
        text = read_control_file(path)
    except CaseError:
        raise
    except OSError as exc:
        raise CaseError(f"case.toml cannot be read ({exc.strerror or type(exc).__name__})", reason="case_toml") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"case.toml is not valid TOML: {exc}", reason="case_toml") from exc
    return parse_case(raw, case_dir.name)


MAX_CONTROL_FILE_BYTES = 1024 * 1024


def read_control_file(path: Path) -> str:
    """The text of case.toml or overrides.toml, opened without following a link.

    A symbolic link (wherever it points) or a file with more than one hard link could put another
    case's or another patient's facts into this case: both are refused with a CaseError that says
    so. The file must be UTF-8 text of at most 1 MiB. OSError for anything else (e.g. it vanished).
    """
    name = Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if os.path.islink(path):
            raise CaseError(f"{name} is a link to another file; put the file itself in the case folder",
                            reason="case_toml_link") from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CaseError(f"{name} is not a regular file", reason="case_toml")
        if info.st_nlink > 1:
            raise CaseError(f"{name} is a hard link shared with another file; put a copy of its own in the "
                            "case folder", reason="case_toml_link")
        data = handle.read(MAX_CONTROL_FILE_BYTES + 1)
    if len(data) > MAX_CONTROL_FILE_BYTES:
        raise CaseError(f"{name} is larger than 1 MiB; it is not a case file", reason="case_toml")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaseError(f"{name} is not UTF-8 text (save it as UTF-8)", reason="case_toml") from exc


CASE_TEMPLATE = '''\
# case.toml: the facts of one IMR case. Replace every "FILL IN" value, then drop the documents in
# this folder. Dates and times are written without quotes. Lines starting with # are comments.
# Nothing is built until every FILL IN is replaced: the case's _STATUS.txt names what is left.
case_id = "{case_id}"
review_type = "standard"               # standard | expedited (24 hours)
dispute_type = "medical_necessity"     # medical_necessity | experimental | urgent_emergency_claim
# When the plan received DMHC's notice: it starts the legal clock, so a person must enter it from
# the notice itself, like 2026-11-25T16:10:00-08:00 (no quotes; -08:00 in winter, -07:00 in summer).
dmhc_notice_received = "FILL IN: date and time of DMHC's notice"
disputed_service = "FILL IN: the denied, modified or delayed service"
# grievance_number = "G-2026-0000"     # optional
# dmhc_case_number = "IMR-00000"      # optional: DMHC's own IMR case number, printed where DMHC's number belongs
records_to = "member"                  # member | provider: who gets the copies of the medical records
language = "en"                        # en | es: the member's written language

[member]
name = "FILL IN: first and last name"
member_id = "FILL IN: member id"
date_of_birth = "FILL IN: like 1961-04-09, without quotes"
address = ["FILL IN: street and number", "FILL IN: city, CA zip"]
# other_names = ["First Maiden"]   # other names on the member's records (page-level identity check)
# known_mrns = ["00123456"]        # record numbers known to be the member's
# confidential_address = ["PO Box 100", "City, CA 90000"]   # a confidential communication request on
#                                  # file (Civ. 56.107): every mailing to the member goes there

[provider]
name = "FILL IN: the provider's name"
address = ["FILL IN: clinic", "FILL IN: street and number", "FILL IN: city, CA zip"]
# fax = "(555) 555-0100"

# [representative]                     # optional: someone applying for the member
# name = "First Last"
# relationship = "parent"              # parent | guardian | conservator | agent | authorized assistant
# authorized = true                    # true: an authorized representative who may sign the authorization
#                                      # (parent of a minor, guardian, conservator, health-care agent);
#                                      # false: a contact or assistant (default: from the relationship)
# address = ["Street and number", "City, CA 90000"]

# [[info_requests]]                    # optional: information the IMR organization asked for
# received = 2026-11-30T09:00:00-08:00
# what = "Physical therapy notes from 2026"
'''


def case_template(case_id: str, now: dt.datetime | None = None) -> str:
    """The commented case.toml `new-case` writes. Every fact is a "FILL IN" placeholder, refused until
    a person replaces it; the notice time in particular is never pre-filled (it starts the legal clock).
    `now` is accepted for old callers and not used."""
    return CASE_TEMPLATE.format(case_id=case_id)
