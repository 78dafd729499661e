"""Case identity and case.toml: parsing, validation, and the template `new-case` writes.

Owns: what a valid case id is and what case.toml must hold. Every problem names its key.
Must not: read documents or write outputs.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packet.errors import CaseError

CASE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REVIEW_TYPES = ("standard", "expedited")
DISPUTE_TYPES = ("medical_necessity", "experimental", "urgent_emergency_claim")
LANGUAGES = ("en", "es")


def valid_case_id(case_id: str) -> bool:
    return bool(CASE_ID_RE.match(case_id)) and case_id not in (".", "..")


def check_case_id(case_id: str) -> str:
    if not valid_case_id(case_id):
        raise CaseError(
            f"'{case_id[:80]}' is not a valid case id: use 1-64 letters, digits, '.', '_' or '-', "
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
    authorized: bool | None = None  # [representative] only: may sign the authorization (None: from relationship)


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
    return value.strip()


def _address(raw: dict, where: str, problems: list[str], *, required: bool) -> tuple[str, ...]:
    value = raw.get("address")
    if value is None:
        if required:
            problems.append(f"{where}address is missing (a list of lines)")
        return ()
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where}address must be a list of text lines")
        return ()
    return tuple(v.strip() for v in value)


def _person(raw: object, section: str, problems: list[str], *, member: bool = False) -> Person | None:
    where = f"[{section}] "
    if not isinstance(raw, dict):
        problems.append(f"[{section}] must be a table")
        return None
    known = {"name", "address", "member_id", "date_of_birth", "fax", "relationship"}
    if section == "representative":
        known.add("authorized")
    for key in sorted(set(raw) - known):
        problems.append(f"{where}{key} is not a known key")
    name = _text(raw, "name", where, problems)
    address = _address(raw, where, problems, required=member)
    member_id = _text(raw, "member_id", where, problems, required=member)
    dob = raw.get("date_of_birth")
    if dob is None:
        if member:
            problems.append(f"{where}date_of_birth is missing (write it like 1961-04-09)")
    elif not isinstance(dob, dt.date) or isinstance(dob, dt.datetime):
        problems.append(f"{where}date_of_birth must be a date like 1961-04-09 (no quotes)")
        dob = None
    fax = _text(raw, "fax", where, problems, required=False)
    relationship = _text(raw, "relationship", where, problems, required=False)
    authorized = raw.get("authorized")
    if authorized is not None and not isinstance(authorized, bool):
        problems.append(f"{where}authorized must be true or false (no quotes)")
        authorized = None
    if name is None:
        return None
    return Person(name=name, address=address, member_id=member_id, date_of_birth=dob, fax=fax,
                  relationship=relationship, authorized=authorized)


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
    elif not isinstance(notice, dt.datetime):
        problems.append("dmhc_notice_received must be a date and time like 2026-11-25T16:10:00-08:00 (no quotes)")
        notice = None
    elif notice.tzinfo is None:
        problems.append("dmhc_notice_received needs its time zone offset, e.g. 2026-11-25T16:10:00-08:00")
        notice = None
    disputed = _text(raw, "disputed_service", "", problems)
    grievance = raw.get("grievance_number")
    if grievance is not None and not isinstance(grievance, str):
        problems.append("grievance_number must be text")
        grievance = None
    dmhc_case_number = raw.get("dmhc_case_number")
    if dmhc_case_number is not None and (not isinstance(dmhc_case_number, str) or not dmhc_case_number.strip()):
        problems.append("dmhc_case_number must be non-empty text")
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
        received = item.get("received")
        what = item.get("what", "")
        if not isinstance(received, dt.datetime) or received.tzinfo is None:
            problems.append(f"info_requests #{index}: received must be a date and time with offset")
            continue
        if not isinstance(what, str):
            problems.append(f"info_requests #{index}: what must be text")
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
    if not path.is_file():
        raise CaseError("case.toml is missing: run `imr-packet new-case "
                        f"{case_dir.name}` or copy one in", reason="case_toml_missing")
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"case.toml is not valid TOML: {exc}", reason="case_toml") from exc
    except UnicodeDecodeError as exc:
        raise CaseError("case.toml is not UTF-8 text", reason="case_toml") from exc
    return parse_case(raw, case_dir.name)


CASE_TEMPLATE = '''\
# case.toml: the facts of one IMR case. Fill in every value, then drop the documents in this folder.
# Dates and times are written without quotes. Lines starting with # are comments.
case_id = "{case_id}"
review_type = "standard"               # standard | expedited (24 hours)
dispute_type = "medical_necessity"     # medical_necessity | experimental | urgent_emergency_claim
dmhc_notice_received = {now}   # when the plan received DMHC's notice: starts the clock
disputed_service = "Describe the denied, modified or delayed service"
# grievance_number = "G-2026-0000"     # optional
# dmhc_case_number = "IMR-00000"      # optional: DMHC's own IMR case number, printed where DMHC's number belongs
records_to = "member"                  # member | provider: who gets the copies of the medical records
language = "en"                        # en | es: the member's written language

[member]
name = "First Last"
member_id = "M000000000"
date_of_birth = 1970-01-01
address = ["Street and number", "City, CA 90000"]

[provider]
name = "Dr. First Last"
address = ["Clinic", "Street and number", "City, CA 90000"]
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


def case_template(case_id: str, now: dt.datetime) -> str:
    return CASE_TEMPLATE.format(case_id=case_id, now=now.replace(microsecond=0).isoformat())
