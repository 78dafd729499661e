"""Whose record is each page: the member's, another person's, or nobody's in particular.

Owns: the page-level identity check. Each page is `member` (the member's name, member id, date of
birth or a known record number is on it), `other` (a patient-context label -- Patient, Pt, Member,
Enrollee, DOB, MRN, Member ID, Acct, Paciente, Nombre del paciente, Fecha de nacimiento, Afiliado,
Expediente ..., and a bare Name or Nombre beside another patient label or a patient's age and sex
-- carries a name, birth date, member id or record number that is not the member's) or
`unlabelled`; an unlabelled page is `other` too when the page counter of another person's page joins
it to that page ("Page 2 of 2"), unless the counter also runs over a page of the member's. One
`other` page makes the document a mismatch that names the pages (H&S 1374.30: a page about another
patient must never reach the IMR organization, the member or the provider).

Tolerance (measured by `python -m bench.guards_eval`): case, "LAST, FIRST" order, middle names and
initials, accents, hyphenated surnames (either half), the member's other names from case.toml
(maiden, former), and OCR slips (`rapidfuzz` edit distance: 1 edit in a name of 4-7 letters, 2 in a
longer one; shorter names must match exactly, and "rn" for "m" in a name label), two labels sharing
one colon ("Name/DOB: Chen, Robert / 02/02/1950"), and a second surname after hers. Not tolerated: a
name that shares only her given names, or leads with a surname that is not hers ("Maria Elena Chen",
"CHEN MARIA ELENA", "MARIA TORRES GARCIA" are not María Elena García-López). Physicians, authors,
signers, "cc", subscribers, guardians and parents are not patients: a label qualified by such a word
is not read.
Text read by OCR with a confidence below the configured threshold (`[ocr] min_confidence`, given
as `min_confidence` on the 0..1 scale) never confirms identity; what it shows of another person
still goes to a person.

Must not: read files or log. Evidence never repeats an identifier: it says "member id found on
page 1" or "a different date of birth on page 3", never the value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from packet.classify.dates import DOB_LABEL_AHEAD, PageDates, birth_dates, dates_by_page
from packet.classify.fields import (FORMAT_HINT, VALUE_END, after_kin_field, counter_run, other_shapes,
                                    page_counter, under_others_section)
from packet.classify.namewords import NAME_SUFFIXES as _NAME_SUFFIXES, NAME_TITLES as _NAME_TITLES
from packet.classify.namewords import LATE_NAMES as _LATE_NAMES, NAME_PARTICLES as _NAME_PARTICLES
from packet.classify.namewords import NOT_NAMES as _NOT_NAMES
from packet.classify.patterns import finditer, folded, possible, requirements
from packet.classify.text import dashes, flat, flat_offsets, lines_around, raw_offset
from packet.config import Ocr
from packet.model.case import CaseFacts, Person
from packet.model.models import IDENTITY_CONFIRMED, IDENTITY_MISMATCH, IDENTITY_NOT_FOUND, Converted, Decision

PAGE_MEMBER = "member"
PAGE_OTHER = "other"
PAGE_UNLABELLED = "unlabelled"

# The default page confidence (0..1) below which OCR text never confirms identity nor decides a
# category alone: the [ocr] min_confidence default (mean word confidence, 0-100) on the 0..1 scale of
# Converted.page_confidence (packet.intake.convert.ocr_hook divides by 100). A build passes the
# configured value (Config.ocr.confident); the default serves callers without a configuration.
OCR_CONFIDENT = Ocr().confident

_MEMBER_ID_LABEL = re.compile(
    r"\b(?:member|mbr|mem|enrollee)\s*(?:[il1|]d(?:entification)?\b|number\b|no\.|no\b|#)\s*(?:#|no\.?|number)?"
    # the id, also as a card groups it ("XJ7 788 123")
    rf"{FORMAT_HINT}\s*[:;#]?\s*([A-Z0-9*](?:[A-Z0-9*\-]|[ ](?=\d)){{3,}})", re.I)
_MEMBER_ID_LABEL_ES = re.compile(
    r"(?:\b(?:n\.?\s?[ºo°]|no\.|n[uú]m(?:ero)?\.?|id)\s+de\s+(?:afiliad[oa]|miembro|asegurad[oa])|"
    r"\b(?:afiliad[oa]|miembro)\s+(?:n\.?\s?[ºo°]|no\.|n[uú]m(?:ero)?\.?|id))\s*[:#]?\s*([A-Z0-9*](?:[A-Z0-9*\-]|[ ](?=\d)){3,})",
    re.I)
_RECORD_LABEL = re.compile(
    r"(?:\bMRN\b|\bMR\s?#|\bmed(?:ical)?\.?\s*rec(?:ord)?s?\.?\s*(?:number\b|no\b\.?|#)|\bchart\s*(?:number\b|no\b\.?|#)|"
    r"\b(?:patient|pt\.?)\s*(?:id\b|#)|\bacc(?:oun)?t\.?\s*(?:number\b|no\b\.?|#)?|"
    r"\b(?:n[uú]mero\s+de\s+|n\.?\s?[ºo°]\s+de\s+)?expediente\b|\bhistoria\s+cl[ií]nica\b)"
    r"\s*[:#]?\s*([A-Z0-9][A-Z0-9\-]{3,})", re.I)
_DOB_LABEL = re.compile(
    r"\b(?:D[O0][B8]|D\.O\.B\b\.?|date\s+[o0]f\s+birth|birth\s*date|birthdate|fecha\s+(?:de\s+)?nac(?:imiento|\.)?|f\.\s?(?:de\s+)?nac\.?)"
    rf"(?![^\W\d_]){FORMAT_HINT}\s*[:#]?\s*", re.I)
# Compound labels are unambiguous; a bare one ("Patient:", "Nombre:") needs its colon.
_NAME_LABEL = re.compile(
    r"(?<![^\W\d_])(?:"
    r"(?P<compound>pat[i1l|!]ent'?s?\s+(?:full\s+)?(?:na(?:m|rn)e|nm\b\.?)|name\s+of\s+(?:the\s+)?(?:patient|member|enrollee)|"
    # "rn": OCR's m; "nm": a form's short name. "members" ending a heading line is not a label with the next line's "Name:".
    r"pt\.?\s+(?:na(?:m|rn)e|nm\b\.?)|(?:member|enrollee|beneficiary|client|resident)'?s?[ \t]+na(?:m|rn)e|"
    rf"nombre\s+(?:complet[oa]\s+)?del?\s+(?:la\s+)?(?:paciente|afiliad[oa]|miembro|beneficiari[oa])){FORMAT_HINT}\s*[:;]?"
    r"|(?P<bare>pat[i1l|!]ent|pt|member|enrollee|beneficiary|client|resident|paciente|afiliad[oa]|miembro|"
    rf"beneficiari[oa]|name|nombre){FORMAT_HINT}\s*:)\s*", re.I)
_BARE_NEEDS_HEADER = {"name", "nombre"}  # "Name:" counts only beside another patient label
_NOT_PATIENT = re.compile(
    r"\b(subscriber|suscriptor|guardian|tutor|parent|padres?|madre|mother|father|spouse|c[oó]nyuge|"
    r"responsible|responsable|guarantor|garante|insured|asegurado|policy\s*holder|titular|emergency|emergencia|"
    r"contacts?|contacto|physician|m[eé]dico|doctor|dr|provider|proveedor|referring|ordering|attending|rendering|"
    r"signature|firma|signed|author|autor|cc|nurse|enfermer[oa]|reviewer|representative|representante|employer|"
    r"witness|testigo|interpreter|int[eé]rprete|caregiver|cuidador|sender|recipient|attn|therapist|clinician|"
    r"prescriber|pharmacist|technologist|radiologist|pathologist|surgeon|family|familiar|relative|pariente)\b", re.I)
_FIELD_END = re.compile(
    r"\s{2,}|\t|\s*[|;]\s*|\s+/\s+|\s+-\s+|(?<=\S)\s+(?=(?:DOB|D\.O\.B|date\s+of\s+birth|birth\s*date|MRN|MR\s?#|"
    r"age|sex|gender|DOS|date|acct|account|member|enrollee|id|phone|tel|fecha|edad|sexo|expediente|SSN|"
    r"address|direcci[oó]n|room|rm|bed|ht|wt|visit|encounter|admit|provider|physician|attending|male|female|"
    r"masculino|femenino|printed|ordered|received|collected|reported|referring|specimen|location|insurance|"
    r"language|ethnicity|race|unit|status|copy|cc)\b"
    # ... or where the next field's one-word label begins ("Robert Chen Referring: Dr. Smith")
    r"|(?-i:[A-ZÁÉÍÓÚÑ][^\W\d_]*)[ \t]*:"
    r"|(?:page|pg|p[aá]gina|p[aá]g)\.?[ \t]*\d)", re.I)  # a footer's "Patient: Robert Chen Page 1 of 2"
_CLINICIAN = re.compile(r"\b(dr|md|m\.d|do|d\.o|np|pa-c|rn|lcsw|lmft|psyd|phd|dds|dpm|pharmd|dra)\b\.?", re.I)
_NAME_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['\u2019\-.](?=[^\W\d_]))*\.?")
# A bare "Name:" is the patient's only when nothing but these words stands before it in its field.
_NAME_FIELD_PREFIX = re.compile(r"^\W*(?:(?:patient|pt|member|enrollee|full|legal|paciente|afiliad[oa]|completo)\W*)*$", re.I)
_OCR_LETTERS = str.maketrans({"0": "o", "1": "l", "|": "l", "5": "s", "$": "s", "@": "a"})


@dataclass(frozen=True)
class PageIdentity:
    """What one page says about whose record it is."""

    page: int  # 1-based
    status: str  # PAGE_MEMBER | PAGE_OTHER | PAGE_UNLABELLED
    member: tuple[str, ...] = ()  # kinds found: "member name", "member id", "date of birth", "record number"
    other: tuple[str, ...] = ()  # kinds of another person's identifiers: "patient name", "date of birth", ...
    low_confidence: bool = False  # read by OCR below the threshold: its member evidence does not count


# ------------------------------------------------------------------------------------------ names

def name_patterns(name: str) -> list[re.Pattern[str]]:
    """A person's name written "First [Middle] Last" or "Last, First", for a plain text search."""
    tokens = [t.strip(".,") for t in name.replace(",", " ").split()]
    tokens = [t for t in tokens if t and t.lower().strip(".") not in _NAME_SUFFIXES]
    if len(tokens) < 2:
        return []
    first, last = re.escape(tokens[0]), re.escape(tokens[-1])
    return [re.compile(rf"\b{first}(?:\s+[A-Za-z][\w'\-]*\.?){{0,2}}\s+{last}\b", re.I),
            re.compile(rf"\b{last}\s*,\s*{first}\b", re.I)]


def _plain(word: str) -> str:
    """Lower case, no accents, OCR look-alikes read as letters, no apostrophes or periods."""
    word = unicodedata.normalize("NFKD", word.translate(_OCR_LETTERS))
    return "".join(ch for ch in word if ch.isalpha()).lower()


def similar(a: str, b: str) -> bool:
    """Two name words (already `_plain`) are the same allowing OCR slips: exact below 4 letters,
    1 edit up to 7, 2 edits from 8 (thresholds measured by bench.guards_eval)."""
    if a == b:
        return True
    shorter = min(len(a), len(b))
    if shorter < 4:
        return False
    edits = 2 if shorter >= 8 else 1
    return Levenshtein.distance(a, b, score_cutoff=edits) <= edits


@dataclass(frozen=True)
class _MemberNames:
    """The member's name words (case.toml's name and other names, written "Given ... Surname"):
    every word (hyphenated names in whole and halves), their first letters, each name's first word
    (always a given name) and each name's last word with its halves (always a surname)."""

    words: frozenset[str]
    initials: frozenset[str]
    firsts: frozenset[str]
    lasts: frozenset[str]


def _name_parts(raw: str) -> list[str]:
    whole = _plain(raw)
    parts = [whole] if len(whole) > 1 else []
    return parts + [part for part in (_plain(p) for p in re.split(r"[-\u2010\u2011]", raw)) if len(part) > 1]


def _member_words(member: Person) -> _MemberNames:
    words: set[str] = set()
    firsts: set[str] = set()
    lasts: set[str] = set()
    for name in (member.name, *member.other_names):
        raws = [raw for raw in re.split(r"[\s,]+", name)
                if raw and raw.lower().strip(".") not in _NAME_SUFFIXES | _NAME_TITLES and _name_parts(raw)]
        for raw in raws:
            words.update(_name_parts(raw))
        if len(raws) >= 2:
            firsts.update(_name_parts(raws[0]))
            lasts.update(_name_parts(raws[-1]))
    return _MemberNames(frozenset(words), frozenset(word[0] for word in words), frozenset(firsts), frozenset(lasts))


_NOT_COMPARED = _NAME_TITLES | _NAME_SUFFIXES | _NAME_PARTICLES  # words of a name left out of comparing it


def _split_name(value: str) -> tuple[list[str], list[str], bool] | None:
    """(given words, surname words, written with a comma) of a value that looks like a person's name,
    else None.

    "CHEN, ROBERT W" -> (["robert", "w"], ["chen"], True); "Robert W. Chen" -> (["robert", "w"], ["chen"], False).
    A clinician's title (Dr., MD, RN ...), a word that is not a name, lower-case words or digits: None."""
    # A name ends where a bracket or a word with a digit begins: "Chen, Robert (DOB 2/2/1950)",
    # "ROBERT CHEN 77/M". OCR's 0/1/5 for o/l/s inside a name are read as letters first.
    value = VALUE_END.split(value.translate(_OCR_LETTERS), maxsplit=1)[0].strip(" .:,-/")
    if not value or _CLINICIAN.search(value) or re.search(r"\d", value):
        return None
    parts = value.split(",")
    if len(parts) > 2:
        return None
    groups = []
    for part in parts:
        words = _NAME_WORD.findall(part.translate(_OCR_LETTERS))
        if not words and part.strip():
            return None
        groups.append(words)
    every = [w for group in groups for w in group]
    if not 1 <= len(every) <= 5:
        return None
    for position, word in enumerate(every):
        bare = word.strip(".")
        low = bare.lower()
        if low in _NAME_PARTICLES:
            continue  # "De La Cruz, Juan", "van der Berg, Anna": kept out of the words compared below
        if low in _NOT_NAMES and not (position and low in _LATE_NAMES) or not bare[:1].isupper():
            return None
    clean = [[_plain(w) for w in group if w.lower().strip(".") not in _NOT_COMPARED] for group in groups]
    clean = [[w for w in group if w] for group in clean]
    if len(clean) == 2:
        surname, given = clean
    else:
        words = clean[0]
        if len(words) < 2:
            return [], words, False
        last = max(index for index, word in enumerate(words) if len(word) > 1 or index == 0)
        given, surname = words[:last] + words[last + 1:], words[last:last + 1]
    if not surname:
        return None
    return given, surname, len(clean) == 2


def _known(word: str, known: frozenset[str]) -> bool:
    """Whether a name word is one of `known`, allowing OCR slips and a short form ("Chris")."""
    return any(similar(word, name) or _short_form(word, name) for name in known)


def _is_member_name(given: list[str], surname: list[str], names: _MemberNames, *, comma: bool) -> bool:
    """Whether a name read after a patient label is the member's. `comma`: written "Surname, Given".

    Her surname must lead the surname part ("GARCIA LOPEZ, MARIA"), or, without a comma, the name
    must begin with two of her name words, given name first ("Maria Garcia Lopez") or surname first
    as lab systems print it ("GARCIA LOPEZ MARIA E"), and hold a surname of hers unless every word
    is hers. A name that only shares her given names is somebody else's: "Maria Elena Chen",
    "CHEN, MARIA ELENA" and "CHEN MARIA ELENA" are not María Elena García-López."""
    words, initials = names.words, names.initials
    if comma:
        lead = surname[0] if surname else ""
        if not _known(lead, words):
            return False
        if _known(lead, names.firsts - names.lasts):
            # her first word leads: hers only when case.toml has her family name first ("Zhang Wei" as "ZHANG, WEI")
            return any(_known(word, names.lasts) for word in given if len(word) > 1)
        return _names_match(given, surname, words, initials)
    order = [word for word in given if len(word) > 1] + surname  # as written (initials come last)
    if len(order) < 2:
        return _names_match(given, surname, words, initials)
    return (all(_known(word, words) for word in order[:2])
            and (all(_known(word, words) for word in order) or any(_known(word, names.lasts) for word in order)))


def _names_match(given: list[str], surname: list[str], words: frozenset[str], initials: frozenset[str]) -> bool:
    surname_parts = {part for word in surname for part in (word, *re.split(r"-", word)) if part}
    if not any(similar(part, known) for part in surname_parts for known in words):
        return False
    full = [word for word in given if len(word) > 1]
    if full:
        return any(_known(word, words) for word in full)
    return not given or any(word[:1] in initials for word in given)


def _short_form(word: str, known: str) -> bool:
    """A given name written short ("Chris" for "Christopher"): one begins the other, 4 letters at least."""
    shorter, longer = sorted((word, known), key=len)
    return len(shorter) >= 4 and longer.startswith(shorter)


# ------------------------------------------------------------------------------------------ labels

def _field_prefix(line: str, start: int) -> str:
    """The words before a label since the previous field ("Subscriber " in "Subscriber DOB:")."""
    before = line[max(0, start - 40):start]
    return re.split(r"\s{2,}|\t|\n|[|;:]", before)[-1]


def _qualified(line: str, start: int) -> bool:
    """Whether the field a label starts is someone other than the patient: "Subscriber DOB:",
    "Parent/Guardian Name:", "Referring physician name:" (words since the previous field). A label
    joined to another by a slash names both ("Subscriber/Patient:": the subscriber is the patient)."""
    prefix = _field_prefix(line, start)
    return bool(_NOT_PATIENT.search(prefix)) and not prefix.endswith("/")


def _field_value(line: str, start: int) -> str:
    rest = line[start:start + 80].split("\n", 1)[0]
    end = _FIELD_END.search(rest)
    return rest[:end.start()] if end else rest


def _alnum(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9*]", "", text).upper()


def _id_differs(value: str, member_id: str) -> bool | None:
    """True when the labelled id is clearly another one; None when it cannot be told."""
    value, member_id = _alnum(value), _alnum(member_id)
    if not any(ch.isdigit() for ch in value):
        return None
    masked = re.fullmatch(r"[X*]+(\d{3,})", value)
    if masked:  # e.g. XXXXX7665: compare the digits shown
        return not member_id.endswith(masked.group(1))
    # A dependent suffix (M998877665-01) or a truncated print is the same member.
    return not (value.startswith(member_id) or member_id.startswith(value))


def _same_record_number(value: str, known: str) -> bool:
    value, known = _alnum(value), _alnum(known)
    masked = re.fullmatch(r"[X*]+(\d{3,})", value)
    if masked:
        return known.endswith(masked.group(1))
    return value == known or value.lstrip("0") == known.lstrip("0")


def _same_birth_date(found: dt.date, dob: dt.date) -> bool:
    """Equal, or equal with day and month swapped (09/04/1961 written day-first)."""
    return found == dob or (found.year == dob.year and found.month == dob.day and found.day == dob.month)


def _pages_text(pages: list[int]) -> str:
    return f"page {pages[0]}" if len(pages) == 1 else "pages " + ", ".join(str(p) for p in pages)


@dataclass
class _Seen:
    member: list[str]
    other: list[str]
    records: list[str]


_MEMBER_KINDS = ("member name", "member id", "date of birth", "record number")
CONTINUED = "record continued"  # an unlabelled page of another person's record (its page counter)
_OTHER_KINDS = ("patient name", "member id", "date of birth", "record number", "addressee", CONTINUED)


def _in_order(kinds: list[str], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(kind for kind in order if kind in kinds)


def _add(kinds: list[str], kind: str) -> None:
    if kind not in kinds:
        kinds.append(kind)


_HEADER_HINT = re.compile(
    r"\b(DOB|D\.O\.B|date\s+of\s+birth|birth\s*date|fecha\s+de\s+nac\w*|MRN|MR\s?#|member\s*(id|#|no)|"
    r"patient|pt|paciente|member|afiliad[oa]|enrollee)\b"
    # A patient's demographics as a header gives them ("Age: 76  Sex: M", "Age/Sex 77/M", "Edad: 45").
    r"|\b(age|sex|gender|edad|sexo|g[eé]nero)\s*(?:[:/]|\d)"
    # ... or an encounter's date ("Admission Date:", "Visit Date:", "Fecha de ingreso:").
    r"|\b(?:admission|admit|discharge|visit|encounter|session|service)\s+date\s*:|\bdate\s+of\s+(?:service|admission|visit)"
    r"\s*:|\bfecha\s+de\s+(?:ingreso|alta|consulta|servicio)\s*:", re.I)


def _may_match(pattern: re.Pattern[str], lower: str) -> bool:
    """False when `lower` (the text, folded) lacks a string every match of `pattern` holds
    (packet.classify.patterns): a page without "miembro" or "afiliad" has no Spanish member-id label."""
    needs = requirements((pattern.pattern,))
    return needs is None or bool(possible(needs, lower))


def _labels(pattern: re.Pattern[str], text: str, lower: str) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text)`, skipped where it cannot match (`_may_match`) and tried only where a
    match can begin (`packet.classify.patterns.finditer`)."""
    return finditer(pattern, text, lower) if _may_match(pattern, lower) else iter(())


# A letter's salutation with a courtesy title names the person it is written to ("Dear Mr. Chen,",
# "Estimada Sra. Torres:"): a letter to another member is that member's, however it was filed.
_SALUTATION = re.compile(  # by a courtesy title ("Dear Mr. Chen,"), or a full name alone ("Dear Robert Chen:")
    r"^[ \t]*(?:dear|estimad[oa]s?|querid[oa]s?)\s+(?:(?:mr|mrs|ms|miss|mx|sr|sra|srta|se[nñ]ora?|se[nñ]orita)\.?\s+"
    r"(?P<name>[^,:;\n]{2,60}?)|(?P<full>(?-i:[A-Z][a-z'\-]+(?:[ \t]+[A-Z]\.)?(?:[ \t]+[A-Z][A-Za-z'\-]+){1,2})))\s*[,:;]",
    re.I | re.M)


def _people_words(facts: CaseFacts, addressees: tuple[str, ...] = ()) -> frozenset[str]:
    """The name words of the other people case.toml names (the representative, the provider) and of
    `addressees` (the plan: "Dear Golden Poppy,"): a letter may be written to them."""
    names = [p.name for p in (facts.representative, facts.provider) if p is not None and p.name] + list(addressees)
    return frozenset(part for name in names for raw in re.split(r"[\s,]+", name) for part in _name_parts(raw))


# A note's history opening with the patient by a courtesy title ("HPI: Mr. Chen is a 76-year-old man").
_TITLED_OPENING = re.compile(
    r"^[ \t]*(?:(?:HPI|history\s+of\s+present\s+illness)\s*:\s*)?(?:mr|mrs|ms|miss|mx|sr|sra|srta)\.?\s+"
    r"(?P<name>[^\W\d_][\w'\-]*(?:[ \t]+[^\W\d_][\w'\-]*)?)[ \t]+(?:is[ \t]+an?[ \t]+\d{1,3}[- ]?(?:year|yr)s?[- ]old|"
    r"is[ \t]+an?[ \t]+\d{1,3}[ \t]?y\.?/?o|es[ \t]+una?[ \t]+\w+[ \t]+de[ \t]+\d{1,3}[ \t]+a[nñ]os)\b", re.I | re.M)


def _titled_another(pattern: re.Pattern[str], text: str, names: _MemberNames, others: frozenset[str]) -> bool:
    """Whether a salutation (`_SALUTATION`) or a titled opening (`_TITLED_OPENING`) on the page names
    somebody who is neither the member nor a person of the case."""
    for found in pattern.finditer(text):
        parsed = _split_name(found["name"] or found["full"])
        if parsed is None:
            continue
        given, surname, comma = parsed
        if _is_member_name(given, surname, names, comma=comma):
            continue
        if any(_known(word, others) for word in surname):
            continue  # the representative or the provider
        return True
    return False


# A name written in two fields: "Last Name: CHEN   First Name: ROBERT", "Apellido: Chen  Nombre: Roberto".
_SURNAME_LABEL = re.compile(r"(?<![^\W\d_])(?:last\s+name|surname|family\s+name|apellidos?)\s*:\s*", re.I)
_GIVEN_LABEL = re.compile(r"(?<![^\W\d_])(?:first\s+name|given\s+names?|nombres?)\s*:\s*", re.I)


def _add_name(seen: _Seen, parsed: tuple[list[str], list[str], bool], names: _MemberNames) -> None:
    given, surname, comma = parsed
    if _is_member_name(given, surname, names, comma=comma):
        _add(seen.member, "member name")
    elif given:  # a single word is too little to call another person
        _add(seen.other, "patient name")


def _split_names(text: str, lower: str) -> Iterator[str]:
    """"SURNAME, GIVEN" for each name written in a surname field and a given-name field on the same
    line or a neighbouring one (either first; the nearest given-name field); only a patient's fields
    ("Patient Last Name:", or a bare "Last Name:" in a patient header, as for a bare "Name:")."""
    for label in _labels(_SURNAME_LABEL, text, lower):
        prefix = _field_prefix(text, label.start())
        if _qualified(text, label.start()) or not _NAME_FIELD_PREFIX.match(prefix):
            continue  # "Subscriber Last Name:", "Physician last name:"
        if not prefix.strip() and (under_others_section(text, label.start())
                                   or not _HEADER_HINT.search(lines_around(text, label.start()))):
            continue
        start = text.rfind("\n", 0, label.start())  # from the line before ...
        start = text.rfind("\n", 0, start) + 1 if start > 0 else 0
        end = text.find("\n", label.end())  # ... to the line after
        end = len(text) if end < 0 else text.find("\n", end + 1)
        region = text[start:len(text) if end < 0 else end]
        here = label.start() - start
        given = sorted((g for g in _GIVEN_LABEL.finditer(region) if not _qualified(region, g.start())),
                       key=lambda g: abs(g.start() - here))
        if not given:
            continue
        surname = _field_value(text, label.end())
        surname = surname[:m.start()] if (m := _GIVEN_LABEL.search(surname)) else surname
        value = _field_value(region, given[0].end())
        value = value[:m.start()] if (m := _SURNAME_LABEL.search(value)) else value
        if surname.strip() and value.strip():
            yield f"{surname.strip()}, {value.strip()}"


def _read_labels(raw: str, member: Person, names: _MemberNames, pivot: int) -> _Seen:
    """The patient-context fields of one page (a field's value ends at its line's end)."""
    seen = _Seen([], [], [])
    text = dashes(raw).replace("\u2019", "'")
    text = f"{text}\n{fields}" if (fields := other_shapes(text, pivot)) else text
    lower = folded(text)
    for label in _labels(_NAME_LABEL, text, lower):
        bare = (label.group("bare") or "").lower()
        if _qualified(text, label.start()):
            continue
        if bare in _BARE_NEEDS_HEADER:
            if not _NAME_FIELD_PREFIX.match(_field_prefix(text, label.start())):
                continue  # "Medication Name:", "Pharmacy Name:", "Last Name:"
            if under_others_section(text, label.start()):
                continue  # "Emergency Contact" / "Name: Jose Garcia"
            around = lines_around(text, label.start())
            if len(_HEADER_HINT.findall(around)) < 1:
                continue
        parsed = _split_name(_field_value(text, label.end()))
        if parsed is None:
            continue
        _add_name(seen, parsed, names)
    for written in _split_names(text, lower):
        parsed = _split_name(written)
        if parsed is not None:
            _add_name(seen, parsed, names)
    if member.date_of_birth:
        for label in _labels(_DOB_LABEL, text, lower):
            if _qualified(text, label.start()) or after_kin_field(text, label.start()):
                continue
            dates = birth_dates(text[label.end():label.end() + 24].split("\n", 1)[0], pivot)
            if not dates or dates[0][1] > 3:
                continue
            if _same_birth_date(dates[0][0], member.date_of_birth):
                _add(seen.member, "date of birth")
            else:
                _add(seen.other, "date of birth")
    if member.member_id:
        for pattern in (_MEMBER_ID_LABEL, _MEMBER_ID_LABEL_ES):
            for label in _labels(pattern, text, lower):
                if _qualified(text, label.start()) or after_kin_field(text, label.start()):
                    continue
                if _id_differs(label.group(1), member.member_id):
                    _add(seen.other, "member id")
                elif _alnum(label.group(1)) == _alnum(member.member_id):  # "M551 203 347": grouped
                    _add(seen.member, "member id")
    for label in _labels(_RECORD_LABEL, text, lower):
        value = label.group(1)
        if any(ch.isdigit() for ch in value) and not _qualified(text, label.start()):
            seen.records.append(value)
    return seen


# ------------------------------------------------------------------------------------------ pages

def page_identities(facts: CaseFacts, converted: Converted, pivot: int, page_dates: PageDates | None = None,
                    *, min_confidence: float = OCR_CONFIDENT, addressees: tuple[str, ...] = ()
                    ) -> tuple[PageIdentity, ...]:
    """Each page of a document: the member's, another person's, or unlabelled (see the module).
    A page OCR read with a confidence under `min_confidence` (0..1) is low confidence; a letter may
    greet `addressees` (the plan's name)."""
    if page_dates is None:
        page_dates = dates_by_page(converted, pivot)
    member = facts.member
    names = _member_words(member)
    others = _people_words(facts, addressees)
    member_names = [p for name in (member.name, *member.other_names) for p in name_patterns(name)]
    member_id_pattern = (re.compile(rf"(?<![A-Za-z0-9]){re.escape(member.member_id)}(?![A-Za-z0-9])", re.I)
                         if member.member_id else None)
    confidence = converted.page_confidence
    found: list[tuple[int, _Seen, bool]] = []
    for number, raw in enumerate(converted.page_texts, 1):
        low = (number - 1 < len(confidence) and confidence[number - 1] is not None
               and confidence[number - 1] < min_confidence)
        seen = _read_labels(raw, member, names, pivot) if raw.strip() else _Seen([], [], [])
        page = flat(raw)
        if page:
            lower = folded(page)
            if _may_match(_SALUTATION, lower) and _titled_another(_SALUTATION, raw, names, others):
                _add(seen.other, "addressee")
            if _may_match(_TITLED_OPENING, lower) and _titled_another(_TITLED_OPENING, raw, names, others):
                _add(seen.other, "patient name")
            if any(_may_match(p, lower) and p.search(page) for p in member_names):
                _add(seen.member, "member name")
            if member_id_pattern is not None and _may_match(member_id_pattern, lower) and member_id_pattern.search(page):
                _add(seen.member, "member id")
            if member.date_of_birth:
                dates = page_dates(number - 1)
                if any(d == member.date_of_birth for d, _, _ in dates):
                    _add(seen.member, "date of birth")
                if dates and "date of birth" not in seen.other:
                    # Labels _read_labels could not see on one line ("DOB:" at a line end, the date below).
                    starts: list[int] | None = None
                    for label in _labels(DOB_LABEL_AHEAD, page, lower):
                        if _qualified(page, label.start()) \
                                or after_kin_field(raw, raw_offset(raw, page, label.start())):
                            continue
                        if starts is None:
                            starts = flat_offsets(raw, [start for _, start, _ in dates])
                        labelled = next((d for (d, _, _), start in zip(dates, starts)
                                         if label.end() <= start <= label.end() + 3), None)
                        if labelled is not None and not _same_birth_date(labelled, member.date_of_birth):
                            _add(seen.other, "date of birth")
                            break
        if any(_same_record_number(value, known) for value in seen.records for known in member.known_mrns):
            _add(seen.member, "record number")
        found.append((number, seen, low))
    # A record number that is neither known nor on one of the document's own member pages, on a page
    # that shows nothing of the member: another patient's page (a lab's page 2 with only its MRN).
    ours = list(member.known_mrns) + [value for _, seen, low in found
                                      if seen.member and not seen.other and not low for value in seen.records]
    for _, seen, _ in found:
        if (ours and seen.records and not seen.member and not seen.other
                and any(not any(_same_record_number(value, known) for known in ours) for value in seen.records)):
            _add(seen.other, "record number")
    # Another person's record of a few pages named on one of them: the unlabelled pages its own page
    # counter joins to that page ("Page 2 of 2") are its pages too; not when the counter also runs over
    # a page of the member's (then it counts the whole document's pages, a fax's).
    counters = [page_counter(raw) for raw in converted.page_texts] if any(seen.other for _, seen, _ in found) else []
    for index in [i for i, (_, seen, _) in enumerate(found) if seen.other and counters[i] is not None]:
        run = counter_run(counters, index)
        if not any(found[i][1].member for i in run):
            for i in run:
                if not found[i][1].other:
                    _add(found[i][1].other, CONTINUED)
    pages: list[PageIdentity] = []
    for number, seen, low in found:
        status = PAGE_OTHER if seen.other else PAGE_MEMBER if seen.member and not low else PAGE_UNLABELLED
        pages.append(PageIdentity(number, status, _in_order(seen.member, _MEMBER_KINDS),
                                  _in_order(seen.other, _OTHER_KINDS), low))
    return tuple(pages)


def decide_identity(facts: CaseFacts | None, converted: Converted, pivot: int,
                    page_dates: PageDates | None = None, *, confirmed_by: str | None = None,
                    confirmed_pages: tuple[int, ...] = (), min_confidence: float = OCR_CONFIDENT,
                    addressees: tuple[str, ...] = ()) -> tuple[Decision, tuple[int, ...]]:
    """The document's identity decision and the pages that name another person (empty unless a mismatch).

    `confirmed_by` is a person's reason (overrides.toml identity_confirmed): for the whole file, or only
    for `confirmed_pages` when given; another person's page outside them still makes a mismatch."""
    if confirmed_by and not confirmed_pages:
        return Decision(IDENTITY_CONFIRMED, "override", confirmed_by), ()
    if facts is None:
        return Decision(IDENTITY_NOT_FOUND, "no-case-facts",
                        "case.toml is missing or invalid: identity not checked"), ()
    if not converted.has_text:
        return Decision(IDENTITY_NOT_FOUND, "identity-check", "no text to check (scanned document)"), ()
    pages = page_identities(facts, converted, pivot, page_dates, min_confidence=min_confidence, addressees=addressees)
    vouched = set(confirmed_pages)
    other = [p for p in pages if p.status == PAGE_OTHER and p.page not in vouched]
    if other:
        # A mismatch wins: one foreign page in a fax must stop the release gate.
        by_kind: dict[str, list[int]] = {}
        for page in other:
            for kind in page.other:
                by_kind.setdefault(kind, []).append(page.page)
        evidence = "; ".join(f"a different {kind} on {_pages_text(numbers)}" if kind != CONTINUED else
                             f"that record continued on {_pages_text(numbers)} (its page counter)"
                             for kind, numbers in sorted(by_kind.items(), key=lambda item: item[0] == CONTINUED))
        low = [p.page for p in other if p.low_confidence]
        if low:
            evidence += f" (read by OCR with low confidence on {_pages_text(low)})"
        if vouched:
            evidence += f"; {_pages_text(sorted(vouched))} confirmed by a person"
        return Decision(IDENTITY_MISMATCH, "identity-check", evidence), tuple(p.page for p in other)
    if vouched:
        return Decision(IDENTITY_CONFIRMED, "override", f"{confirmed_by} ({_pages_text(sorted(vouched))})"), ()
    found: dict[str, int] = {}
    for page in pages:
        if page.low_confidence:
            continue
        for kind in page.member:
            found.setdefault(kind, page.page)
    if found:
        evidence = ", ".join(f"{what} found on page {page}" for what, page in found.items())
        return Decision(IDENTITY_CONFIRMED, "identity-check", evidence), ()
    low = [p.page for p in pages if p.low_confidence and p.member]
    if low:
        return Decision(IDENTITY_NOT_FOUND, "identity-check",
                        f"the member's identifiers were read only by OCR with low confidence (on "
                        f"{_pages_text(low)}): a person must check the pages"), ()
    return Decision(IDENTITY_NOT_FOUND, "identity-check",
                    "the member's name, member id and date of birth were not found in the text"), ()
