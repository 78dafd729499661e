"""A page's labelled fields written in other shapes, rewritten as one "label: value" line each, for
the identity check (packet.classify.identity) to read like any other field.

Owns: table header rows of labels with their values on the line below ("Patient Name    DOB    MRN"),
two labels sharing one colon ("Name/DOB: Chen, Robert / 02/02/1950"), a patient label line without
labels ("CHEN, ROBERT W   02/02/1950   M": a wristband, an addressograph plate, a lab's header), the
patient named by a note's opening sentence ("Robert Chen is a 76-year-old man ..."), a name alone
under a patient heading ("PATIENT INFORMATION" / "CHEN, ROBERT W"), a table's label and value cells
without a colon ("Patient CHEN, ROBERT W", "Patient      Robert Chen      Age 76"), a letter's reference
by role and name ("on behalf of my patient, Robert Chen", "Re: Member Robert Chen, ID ..."), all of them
at once in `other_shapes`; where a name's value ends (`VALUE_END`), a field's format between its label
and its value (`FORMAT_HINT`), a record's own page counter ("Page 2 of 3"), and when a field is
somebody else's: under a relative's or a clinician's heading or a signer's (`under_others_section`),
a birth date or id after a relative's field on its line (`after_kin_field`). Must not: decide whose a
page is, or read files.
"""

from __future__ import annotations

import re

# A name ends where a bracket or a word with a digit begins: "Chen, Robert (DOB 2/2/1950)", "ROBERT CHEN 77/M".
VALUE_END = re.compile(r"[(\[{<]|\s(?=\S*\d)")

# A field's format printed between its label and its value: "Patient Name (Last, First):", "PATIENT'S
# NAME (Last Name, First Name, Middle Initial)", "DOB (MM/DD/YYYY):", "Fecha de nacimiento (dd/mm/aaaa):".
# Only format words: a role in brackets ("Name (guardian):") is not a format. Each word one way only
# ("yyyy" is "yy" twice), so a long bracket without its end fails at once. The words are checked ahead
# and the bracket then taken as any characters: the labels' start finders (packet.classify.patterns)
# stop at such a run, where the words' alternatives would make them too many to use.
FORMAT_HINT = (r"(?:[ \t]*\((?=(?:[ \t,/.\-]|last|first|middle|initial|mi|names?|print|please|type|apellidos?|"
               r"nombres?|paterno|materno|inicial|mm|dd|yy|aa|month|day|year|mes|d[ií]a|a[nñ]o|from|on|card|as|shown)+"
               r"\))[^()\n]{1,60}\))?")

# A table header row of labels ("Patient Name    DOB    MRN") with the values on the line below.
_COLUMN = (r"(?:patient\s+name|pat[i1l|]ent|pt\.?\s+name|name|member\s+name|enrollee\s+name|D[O0]B|date\s+of\s+birth|"
           r"birth\s*date|MRN|MR\s?#|med(?:ical)?\s+rec(?:ord)?\s*(?:#|no\.?|number)|member\s*(?:id|#|no\.?|number)|"
           r"acc(?:oun)?t\.?\s*(?:#|no\.?|number)?|age(?:\s*/\s*sex)?|sex|gender|DOS|date(?:\s+of\s+service)?|"
           r"nombre(?:\s+del\s+paciente)?|paciente|fecha\s+de\s+nacimiento|expediente|afiliado|room|visit|"
           r"location|provider|physician)")
_COLUMN_LABEL = re.compile(rf"(?<![^\W\d_]){_COLUMN}(?![^\W\d_])", re.I)
_BETWEEN_COLUMNS = re.compile(r"[\s:|/]*")
HEADER_ROW_MAX = 200  # characters: a longer line is not a table's header row


def header_row(line: str) -> list[str]:
    """The labels of a line made of labels only ("Patient Name    DOB    MRN"), else []. Found label by
    label (no backtracking over the whole line)."""
    if len(line) > HEADER_ROW_MAX:
        return []
    if not _COLUMN_LABEL.match(line, _BETWEEN_COLUMNS.match(line).end()):
        return []  # a label begins with a letter, so the first one stands right after the separators
    labels, position = [], 0
    for match in _COLUMN_LABEL.finditer(line):
        if not _BETWEEN_COLUMNS.fullmatch(line, position, match.start()):
            return []
        labels.append(match.group(0))
        position = match.end()
    if len(labels) < 2 or not _BETWEEN_COLUMNS.fullmatch(line, position):
        return []
    return labels


_NAME_COLUMN = re.compile(r"^(?:patient\s+name|pat[i1l|]ent|pt\.?\s+name|name|member\s+name|enrollee\s+name|"
                          r"nombre(?:\s+del\s+paciente)?|paciente)$", re.I)


# Two labels sharing one colon, their values split the same way: "Name/DOB: Chen, Robert / 02/02/1950",
# "Patient Name/ID: Chen, Robert / 00448812". The first label is a column label; the second any short one.
_SLASH_FIELDS = re.compile(rf"^[\s|]*(?P<first>{_COLUMN})\s*/\s*(?P<second>[^\W\d_][\w .#]{{0,24}}?)\s*:\s*"
                           r"(?P<one>[^/\n]*?[^\s/])\s+/\s+(?P<two>[^\n]+)$", re.I | re.M)


# The patient's label paired with another role's, one value for both (the same person):
# "Patient/Subscriber: Chen, Robert", "Patient/Insured Name: Robert Chen". Not a guardian or a parent,
# whose name may stand there instead of a minor's.
_SHARED_ROLE = re.compile(
    r"^[\s|]*(?:pat[i1l|]ent|pt|paciente)\s*/\s*(?:subscriber|insured|member|enrollee|policy\s*holder|"
    r"beneficiary|cardholder|suscriptor|asegurad[oa]|afiliad[oa])(?:'?s)?(?:\s+na(?:m|rn)e|\s+nombre)?\s*:\s*"
    r"(?P<value>[^/\n]*[^\s/])[ \t]*$", re.I | re.M)


def slash_fields(text: str) -> str:
    """Lines of two labels sharing one colon, rewritten as one "label: value" line each; a patient's
    label paired with another role of the same person, as the patient's."""
    pairs = [f"{m['first']}: {m['one']}\n{m['second']}: {m['two']}" for m in _SLASH_FIELDS.finditer(text)]
    return "\n".join(pairs + [f"Patient: {m['value']}" for m in _SHARED_ROLE.finditer(text)])


def table_fields(text: str) -> str:
    """Header rows of labels with their values below, rewritten as "label: value" lines."""
    out: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines[:-1]):
        labels = header_row(line)
        if not labels:
            continue
        row = lines[index + 1][:HEADER_ROW_MAX]
        cells = [cell for cell in re.split(r"\s{2,}|\t|\s*\|\s*", row.strip()) if cell]
        if len(cells) == len(labels):
            out.extend(f"{label}: {cell}" for label, cell in zip(labels, cells))
            continue
        # Cells not told apart: the name is what comes before the first word with a digit.
        name = VALUE_END.split(row.strip(), maxsplit=1)[0]
        rest = row.strip()[len(name):]
        for label in labels:
            if _NAME_COLUMN.match(label) and name.strip():
                out.append(f"{label}: {name.strip()}")
            elif re.fullmatch(r"D[O0]B|date\s+of\s+birth|birth\s*date|fecha\s+de\s+nacimiento", label, re.I):
                out.append(f"{label}: {rest.strip()}")
    return "\n".join(out)


# A patient label printed without labels: "LAST, FIRST [M]" then a birth date then the sex or the age,
# alone on its line ("CHEN, ROBERT W   02/02/1950   M", "Chen, Robert  2/2/1950  76Y"): the shape of
# a wristband, an addressograph plate or a lab report's header. A signer's line ("SMITH, JOHN MD
# 10/01/2026") has no sex or age after its date.
_LABEL_LINE = re.compile(
    r"^[ \t|]*(?P<name>[A-Z][A-Za-z'\-]+(?:[ \-][A-Z][A-Za-z'\-]+)?,[ \t]*[A-Z][A-Za-z'\-]+(?:[ \t]+[A-Z][A-Za-z'\-]*\.?)?)"
    r"[ \t]{1,}(?:DOB:?[ \t]*)?(?P<date>\d{1,2}[/\-]\d{1,2}[/\-](?:\d{4}|\d{2}))[ \t|]+"
    r"(?:M|F|(?i:male|female)|\d{1,3}[ \t]?(?:Y|YO|YRS?|Y/O|(?i:y/o|yo|yrs?))(?:[ \t/]+(?:M|F))?)\b[^\n]{0,40}$", re.M)


def label_line_fields(text: str, year: int) -> str:
    """Patient label lines (`_LABEL_LINE`) rewritten as "Patient: name" and "DOB: date" lines; only
    where the date is a birth date's, two years or more before `year` (the case's), not a visit's."""
    out = []
    for m in _LABEL_LINE.finditer(text):
        born = int(re.split(r"[/\-]", m["date"])[2])
        if born < 100:  # two digits: this century up to `year`, else the last
            born += 2000 if 2000 + born <= year else 1900
        if born <= year - 2:
            out.append(f"Patient: {m['name']}\nDOB: {m['date']}")
    return "\n".join(out)


# A note's history opens with the patient: "Robert Chen is a 76-year-old man who ...", "Maria E.
# Garcia is a 42 y/o female", "Roberto Chen es un paciente de 76 años". Only a full name opening its
# line (after an optional "HPI:"): not one after a relation ("Her husband, Jose Garcia, is ..."), nor
# a sentence inside a paragraph ("... lives with her husband. Jose Garcia is a 45-year-old carpenter").
_OPENING = re.compile(
    r"^[ \t]*(?:(?:HPI|History of present illness|Historia de la enfermedad actual)"
    r"[ \t]*:[ \t]*)?(?P<name>[A-Z][a-z'\-]+(?:[ \t]+[A-Z]\.?)?(?:[ \t]+[A-Z][A-Za-z'\-]+){1,2})[ \t]+"
    r"(?:is[ \t]+an?[ \t]+\d{1,3}[- ]?(?:year|yr)s?[- ]old|is[ \t]+an?[ \t]+\d{1,3}[ \t]?y/?o|"
    r"es[ \t]+una?[ \t]+(?:paciente|mujer|hombre|var[oó]n|ni[nñ][oa])[ \t]+de[ \t]+\d{1,3}[ \t]+a[nñ]os)\b", re.M)


# A relative's history under a social or family history heading: "Family history:" / "Rosa Lopez is a
# 70-year-old woman with diabetes." (A relation in the sentence itself proves nothing: "Robert Chen is a
# 76-year-old man brought in by his daughter" opens the patient's own history.)
_HISTORY_HEADING = re.compile(r"\b(?:social|family)\s+history\b|\bhistoria\s+(?:social|familiar)\b|"
                              r"\bantecedentes\s+(?:sociales|familiares)\b", re.I)


def opening_fields(text: str) -> str:
    """The patients named by opening sentences (`_OPENING`), as "Patient: name" lines; not one under
    a social or family history heading (the line above)."""
    return "\n".join(f"Patient: {m['name']}" for m in _OPENING.finditer(text)
                      if not _HISTORY_HEADING.search(text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]))


# A table row of a patient label and its value without a colon, the columns apart: "Patient      CHEN,
# ROBERT", "Paciente\tRoberto Chen Wu   Edad 76" (a PDF table's text). Only a bare patient label starting
# its line, a value shaped like a name (two to four capitalised words) ending there or at the next
# column, and a patient header around it: "LAST, FIRST", or another identifier with its value on the line
# or the next ("MRN 00448812", "Sex M"; "Member      Since January", "Patient      Safety Event" are headings).
_NAME_WORD = r"[A-ZÁÉÍÓÚÑÜ](?:[^\W\d_]|['\-](?=[^\W\d_]))*\.?"
_GAP_FIELD = re.compile(
    r"[ \t|]*(?P<label>(?i:pat[i1l|]ent|pt|paciente|member|enrollee|afiliad[oa]))(?:[ \t]*\t|[ \t]{2,})[ \t|]*"
    rf"(?P<value>{_NAME_WORD}(?:,? {_NAME_WORD}){{1,3}})[ \t]*(?=$|\t|[ \t]{{2,}}|\|)")


_IDENTIFIER = re.compile(r"\b(?:D\.?O\.?B|date\s+of\s+birth|birth\s*date|MRN|MR\s?#|age|sex|gender|id|acct|"
                         r"account|fecha\s+de\s+nacimiento|edad|sexo|expediente)\b[ \t:#.]*(?:\d|[MF]\b)", re.I)


# The same row as a PDF's text often gives it, the columns one space apart: "Patient CHEN, ROBERT W", "Patient
# Robert Chen Age 76 Sex M", "Paciente Roberto Chen Wu Edad 76". Only a patient label, and a name in "LAST,
# FIRST" order ending its line, or one followed by a birth date, an age, a sex or a record or member number
# with its value, there or starting the next line ("Patient Safety Event ID 4471" is a heading; "Patient
# tolerated the procedure" is prose).
_PERSON_FACT = (r"(?:(?i:D\.?O\.?B|date\s+of\s+birth|birth\s*date|age|sex|gender|edad|sexo|fecha\s+de\s+nacimiento)\b"
                r"[ \t:#.]*(?:\d|[MF]\b)|(?i:MRN|MR\s?#|member\s*(?:id|#|no\.?)|acct|account\s*(?:#|no\.?))[ \t:#.]*\d)")
_PERSON_FACT_START = re.compile(rf"[ \t|]*{_PERSON_FACT}")
_ROW_FIELD = re.compile(
    r"[ \t|]*(?P<label>(?i:pat[i1l|]ent|pt\.?|paciente)) "
    rf"(?P<value>{_NAME_WORD}(?:,? {_NAME_WORD}){{1,3}}?)(?:[ \t]*$|[ \t]+(?P<after>{_PERSON_FACT}))")
_ROW_HEADS = frozenset({"pat", "pt ", "pt.", "pt\t", "pac", "mem", "enr", "afi"})  # how those lines begin


# A letter's reference to the patient by the role word and a full name: a possessive in a sentence, the
# role word in lower case ("on behalf of my patient, Robert Chen", "regarding our member Robert Chen", "su
# paciente Roberto Chen Wu"; not a title: "Your Patient Assistance Program"), or a subject line whose
# name is followed by more about the person ("Re: Member Robert Chen, ID ...", "RE: Patient Robert Chen
# (DOB ...)"; not "Subject: Member Handbook Update", not "RE: Robert Chen" alone: a subject may be a
# service). Only two or three capitalised words right after the role word.
# (one space between the words, or a line break: a sentence wraps where it will)
_FULL_NAME = r"(?P<name>(?-i:[A-ZÁÉÍÓÚÑ][a-záéíóúñ'\-]+(?:[ \n][A-Z]\.)?(?:[ \n][A-ZÁÉÍÓÚÑ][A-Za-záéíóúñ'\-]+){1,2}))"
_SUBJECT_REFERENCE = re.compile(
    r"[ \t]*(?i:re|subject|regarding|asunto|referencia)[ \t]*:?[ \t]*(?i:the[ \t]+)?"
    rf"(?i:pat[i1l|]ent|member|enrollee|paciente|afiliad[oa])[ \t]*:?[ \t]*{_FULL_NAME}(?=[ \t]*(?:,|\(|-[ \t]))")
_ROLE_REFERENCE = re.compile(rf"(?:patient|member|enrollee|paciente|afiliad[oa]),?\s+{_FULL_NAME}(?![^\W\d_])")
_ROLES = ("patient", "member", "enrollee", "paciente", "afiliad")
_POSSESSIVES = frozenset({"my", "our", "your", "mi", "nuestro", "nuestra", "su"})
# A note's sentence about the patient by role and name, the verb right after the name: "Patient Robert
# Chen was seen today", "the patient Robert Chen presented with ...", "Paciente Roberto Chen Wu acude a
# consulta" (not "Patient Safety Event was reported": namewords.NOT_NAMES).
_PROSE_REFERENCE = re.compile(
    rf"(?:[Pp]atient|[Pp]aciente)\s+{_FULL_NAME}\s+(?:was|is|has|had|presents|presented|returns|returned|"
    r"arrived|came|comes|reports|reported|states|stated|denies|denied|underwent|tolerated|complains|complained|"
    r"continues|remains|acude|acudi[oó]|presenta|present[oó]|refiere|refiri[oó]|niega|neg[oó]|fue|es)\b")


def reference_fields(text: str) -> str:
    """The patients a letter or a note refers to by role and name, as "Patient: name" lines: a
    possessive, role and name (`_ROLE_REFERENCE`) or a sentence whose verb follows the name
    (`_PROSE_REFERENCE`); a letter's subject lines are `line_fields`'. Looked for only where a role word
    stands (found by str.find: a pattern searched over every page cost more)."""
    names = []
    for role in (*_ROLES, "Patient", "Paciente"):
        at = text.find(role)
        while at >= 0:
            after = text[at + len(role):at + len(role) + 3].lstrip(",")  # a name begins: " Robert", ",\nRobert"
            if not text[at - 1:at].isalpha() and after[:1] in " \t\n" and after[1:2].isupper():
                if role[0].islower() and (m := _ROLE_REFERENCE.match(text, at)) \
                        and (text[max(0, at - 9):at].split() or [""])[-1].lower() in _POSSESSIVES:
                    names.append(" ".join(m["name"].split()))
                elif role[1] == "a" and (m := _PROSE_REFERENCE.match(text, at)):
                    names.append(" ".join(m["name"].split()))
            at = text.find(role, at + len(role))
    return "\n".join(f"Patient: {name}" for name in names)


def line_fields(text: str) -> str:
    """What one line alone shows, by how the line begins: a patient label and its value in table
    columns without a colon (`_GAP_FIELD`, `_ROW_FIELD`) and a letter's subject line naming the
    patient (`_SUBJECT_REFERENCE`), as "label: value" lines."""
    out = []
    lines = text.split("\n")
    for number, line in enumerate(lines):
        head = line.lstrip(" \t|")[:3].lower()
        if head[:2] in ("re", "su", "as"):
            if m := _SUBJECT_REFERENCE.match(line):
                out.append(f"Patient: {m['name']}")
            continue
        if head not in _ROW_HEADS:
            continue
        if (m := _GAP_FIELD.match(line)) and ("," in m["value"] or _IDENTIFIER.search(line, m.end())
                                               or number + 1 < len(lines) and _IDENTIFIER.search(lines[number + 1])):
            out.append(f"{m['label']}: {m['value']}")
        elif (m := _ROW_FIELD.match(line)) and (m["after"] or "," in m["value"] or number + 1 < len(lines)
                                                and _PERSON_FACT_START.match(lines[number + 1])):
            out.append(f"{m['label']}: {m['value']}")
    return "\n".join(out)


# A patient heading alone on its line, the name alone on the next ("PATIENT INFORMATION" / "CHEN, ROBERT W").
_PATIENT_HEADINGS = frozenset({
    "patient", "patient information", "patient demographics", "patient data", "patient details",
    "patient identification", "paciente", "información del paciente", "informacion del paciente",
    "datos del paciente"})


def heading_name_fields(text: str) -> str:
    """The names standing alone under a patient heading (`_PATIENT_HEADINGS`), as "Patient: name" lines."""
    lines = text.split("\n")
    return "\n".join(f"Patient: {name}" for line, name in zip(lines, (line.strip() for line in lines[1:]))
                      if 3 <= len(name) <= 60 and ":" not in name
                      and " ".join(line.split()).rstrip(":").lower() in _PATIENT_HEADINGS)


def other_shapes(text: str, year: int) -> str:
    """Every field of the page written in one of this module's shapes, rewritten as "label: value" lines
    (each shape looked for only on a page that may hold it)."""
    found = (table_fields(text) if "\n" in text else "",
             slash_fields(text) if "/" in text else "",
             label_line_fields(text, year) if "," in text else "",
             opening_fields(text) if "old" in text or "y/o" in text or "años" in text else "",
             heading_name_fields(text) if "atient" in text or "ATIENT" in text or "aciente" in text or "ACIENTE" in text
             else "",
             line_fields(text),
             reference_fields(text))
    return "\n".join(fields for fields in found if fields)


# A short section heading naming somebody else ("Emergency Contact", "Household members", "Family
# history") above a bare "Name:" field: the field is that person's, not the patient's.
_OTHERS_SECTION = re.compile(
    r"^\W*(?:[^\W\d_][\w'.-]*\s+){0,3}?(?:emergency|contacts?|guarantor|insured|subscriber|responsible|household|"
    r"family|relatives?|kin|spouse|parents?|guardians?|interpreter|caregiver|emergencia|contacto|familiares?|"
    r"garante|asegurad[oa]|tutor)\b[^:\d\n]*$"
    # a clinician's section ("Referring provider"), unless it is the patient's too ("Patient and Provider")
    r"|^(?!.*\b(?:patient|paciente|member|miembro)\b)\W*(?:[^\W\d_][\w'.-]*\s+){0,3}?(?:provider|physician|doctor|"
    r"referring|ordering|attending|pcp|prescriber|clinician|therapist|m[eé]dico|proveedor)\b[^:\d\n]*$", re.I)


_SIGNER = re.compile(  # a signature field ("Signature of patient or representative: ____"), not "Signed by Dr. X"
    r"\b(?:signature|firma|sign\s+here)\b[^\n]*(?:_{2,}|:[ \t]*$)|^\W*(?:relationship|relaci[oó]n|parentesco)\b", re.I)


def under_others_section(text: str, start: int) -> bool:
    """Whether the nearest line above the one at `start` is a short heading naming somebody else, or
    the field is a signer's: a signature line above it, or "Relationship to patient:" below it."""
    above = [line for line in text[:start].split("\n")[:-1][-2:] if line.strip()]
    end = text.find("\n", start)  # the line below, not the rest of the page
    stop = text.find("\n", end + 1) if end >= 0 else -1
    below = "" if end < 0 else text[end + 1:] if stop < 0 else text[end + 1:stop]
    return (bool(above) and (len(above[-1].split()) <= 5 and bool(_OTHERS_SECTION.match(above[-1]))
                             or bool(_SIGNER.search(above[-1])))) or bool(_SIGNER.match(below))


# A relative's or a policy holder's field earlier on a line owns a bare birth date or member id after it,
# through the fields between: "Spouse: Jose Garcia   DOB: 05/05/1955", "Subscriber: Jose Garcia  DOB: ...
# Member ID: ...", "Relationship: Father   DOB: ...". Not when a clinician's field comes between ("Physician:
# Dr. Luis Garcia   DOB:" is the patient's header), nor when anything since says it is the patient's
# ("Guarantor: Self", "Patient DOB:").
_KIN = re.compile(
    r"\b(?:subscriber|suscriptor|guardian|tutor|parents?|padres?|madre|padre|mother|father|spouse|husband|wife|"
    r"esposo|esposa|c[oó]nyuge|partner|responsible|responsable|guarantor|garante|insured|asegurad[oa]|"
    r"policy\s*holder|titular|emergency|emergencia|contacts?|contactos?|family|familiar|relatives?|parientes?|kin|"
    r"child|son|daughter|hij[oa]s?|sibling|brother|sister|herman[oa]|grand\w+|abuel[oa])\b", re.I)
_RELATIONSHIP = re.compile(r"\b(?:relationship|relaci[oó]n|parentesco)\b", re.I)
_CLINICIAN_FIELD = re.compile(r"\b(?:physician|doctor|dr|provider|proveedor|m[eé]dico|clinician|nurse|therapist|"
                              r"attending|referring|ordering|surgeon|author|signed)\b", re.I)
_PATIENT_WORD = re.compile(r"\b(?:pat[i1l|]ent|pt|paciente|member|miembro|afiliad[oa]|enrollee|self|s[ií] mismo)\b",
                           re.I)
_FIELD_SEPARATOR = re.compile(r"\s{2,}|\t|[|;]")


def after_kin_field(text: str, start: int) -> bool:
    """Whether the field at `start` (a birth date's or an id's label) follows a relative's or a policy
    holder's field on its line (`_KIN`), with no clinician's field between and nothing since that
    says it is the patient's."""
    pieces = text[max(text.rfind("\n", 0, start) + 1, start - 120):start].split(":")
    for k in range(len(pieces) - 2, -1, -1):  # each field before `start`, the nearest first
        label, since = _FIELD_SEPARATOR.split(pieces[k])[-1], ":".join(pieces[k + 1:])
        if _PATIENT_WORD.search(label) or _PATIENT_WORD.search(since) or _CLINICIAN_FIELD.search(label):
            return False
        value = pieces[k + 1].strip(" \t|;,")
        if (_KIN.search(label) or _RELATIONSHIP.search(label) and _KIN.search(value)) \
                and re.search(r"[^\W\d_]{2}", value):
            return True
    return False


# A record's own page counter: "Page 2 of 3", "Pg. 2 of 3", "Page 2/3", "Página 2 de 3", "Pág. 2 de 3".
_PAGE_COUNTER = re.compile(r"\b(?:page|pg\.?|p[aá]gina|p[aá]g\.?)[ \t]*(\d{1,3})[ \t]*(?:of|/|de)[ \t]*(\d{1,3})\b",
                           re.I)


def page_counter(text: str) -> tuple[int, int] | None:
    """(2, 3) for a page that says "Page 2 of 3" (one counter only: two different ones tell nothing)."""
    found = {(int(a), int(b)) for a, b in _PAGE_COUNTER.findall(text) if 0 < int(a) <= int(b) and int(b) > 1}
    return found.pop() if len(found) == 1 else None


def counter_run(counters: list[tuple[int, int] | None], index: int) -> list[int]:
    """The indexes of the pages around `index` whose counters follow on from its own, in order
    ("Page 1 of 2", "Page 2 of 2" on neighbouring pages): the pages of one record."""
    number, total = counters[index]
    run = [index]
    while run[0] > 0 and counters[run[0] - 1] == (number - (index - run[0] + 1), total):
        run.insert(0, run[0] - 1)
    while run[-1] + 1 < len(counters) and counters[run[-1] + 1] == (number + (run[-1] + 1 - index), total):
        run.append(run[-1] + 1)
    return run
