"""Privilege and withholding read what a document IS, not what it mentions.

Owns: where a privilege or withholding rule's match counts as evidence. A match counts when it is
- in the file name or its folders (a person named the file so), not negated;
- in a heading: a title-like line near the top of a page (the first HEADING_TOP non-empty lines),
  the first line of the document, a short banner line at the foot of a page, or the value of a
  form-type field ("Note type: Psychotherapy note", "Tipo de nota: ...") -- unless the words before
  it in that line govern it ("Authorization to release psychotherapy notes", "Re: ...", "Request
  for ...") or negate it ("No psychotherapy notes enclosed");
- in a sentence by which the document declares itself ("This record contains psychotherapy notes",
  "These records are protected under Evidence Code 1157", "This memo was prepared at the direction
  of counsel"), not negated; or a copyright notice (licensed criteria).
A rule whose pattern is itself a statement about the document (`evidence = "statement"`: a provider's
determination that releasing the record to the patient would be harmful, "DO NOT RELEASE TO PATIENT")
counts wherever it is said, unless its clause makes it a condition ("if release to the patient would
be harmful", "a provider may decline when ...") or denies it ("It is not my opinion that ...").
A passing mention ("The member may request psychotherapy notes") and a negation ("This
authorization does not include psychotherapy notes", "other than", "excluding", "no ... notes",
"no incluye notas de psicoterapia") never count (45 CFR 164.524(a)(1): the exception is for
documents that are psychotherapy notes or compiled for a proceeding, not for documents naming them).

Must not: decide categories, read files, or log.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from packet.classify.patterns import Requirement, Searchable, folded, possible, requirements, searchable
from packet.classify.text import is_title_line, page_lines

HEADING_TOP = 8  # the first 8 non-empty lines of page 1 may be its headings ...
HEADING_TOP_LATER = 4  # ... and the first 4 of a later page (its own title, in a fax of several)
HEADING_FOOT = 3  # the last 3 may be a banner ("ATTORNEY-CLIENT PRIVILEGED")
FIRST_LINE_MAX_WORDS = 16  # the document's first line is its heading even as a sentence, if short
CLAUSE_BACK = 90  # how far back in its clause a negation or a self-declaration is looked for

_NEGATION_BEFORE = re.compile(
    r"\b(not|no|never|nor|neither|without|except|excepting|excluding|exclude[sd]?|other\s+than|besides|"
    r"apart\s+from|rather\s+than|instead\s+of|none|ni|sin|excepto|salvo|excluyendo|excluye|menos|"
    r"no\s+incluye|aparte\s+de|en\s+lugar\s+de)\b", re.I)
# After the match, only a predicate about the match itself negates it ("X are not included"), not a
# later clause ("... privilege and is not to be shared").
_NEGATION_AFTER = re.compile(
    r"^\W{0,3}(?:[\w\-]+\s+){0,2}?(?:(?:are|is|were|was|will\s+be|shall\s+be|have\s+been|has\s+been|being)\s+"
    r"(?:not|never)\s+(?:be\s+)?(?:included|released|requested|attached|enclosed|part|covered|provided|sent|"
    r"disclosed|kept|present|available|in|here)\b|(?:are\s+|is\s+|were\s+|was\s+)?(?:excluded|not\s+included)\b|"
    r"no\s+(?:est[aá]n?|ser[aá]n?|fueron|se\s+incluye\w*)\b|(?:est[aá]n?\s+|son\s+)?excluid[oa]s?\b)", re.I)
# Words before a statement in its clause that make it a condition or a rule about others, not a
# statement about this document: "if", "unless", "a provider may decline when ...", "a provider who
# determines that ..." (but not "Dr. Patel, who treats her, determined that ...").
_CONDITION_BEFORE = re.compile(
    r"\b(if|unless|when|whenever|whether|where|should|may|might|can|could|si|cuando|puede|pueden|"
    r"podr[aií]a|podr[aá]n?|(?:a|an|any|your)\s+(?:\w+\s+)?(?:provider|physician|doctor|therapist|clinician|"
    r"psychiatrist|psychologist|professional)\s+(?:who|that)|(?:providers|physicians|doctors|therapists|"
    r"clinicians|professionals)\s+(?:who|that))\b", re.I)
_EMPTY_VALUE = re.compile(r"^\s*[:\-=]\s*(?:none|n/?a|no|not\s+applicable|not\s+included|ninguna?s?|no\s+aplica)\b", re.I)
# A first title that makes the rest of its page sections of another kind of document: "Notice of
# Privacy Practices" with a section "Psychotherapy notes", an authorization listing what it releases.
_OTHER_KIND_TITLE = re.compile(
    r"\b(privacy\s+practices|handbook|evidence\s+of\s+coverage|member\s+rights|rights\s+and\s+responsibilities|"
    r"pr[aá]cticas\s+de\s+privacidad|manual\s+del\s+(miembro|afiliado)|derechos\s+y\s+responsabilidades)\b", re.I)
# Words that make a heading about the kind of document rather than one of it.
_GOVERNING = re.compile(
    r"\b(authori[sz]ations?|authori[sz]ing|authori[sz]e|consent|request(s|ed|ing)?|release|releasing|disclos\w*|"
    r"polic(y|ies)|procedures?|regarding|concerning|about|re|subject|access|cop(y|ies)|instructions|guide|faq|"
    r"training|rights|explanation|how\s+to|autorizaci[oó]n|autorizar|consentimiento|solicitud|divulgaci[oó]n|"
    r"divulgar|pol[ií]tica|acerca|sobre|copias?|instrucciones|derechos?|asunto)\b", re.I)
_SELF = re.compile(
    r"\b(this|these|the\s+attached|the\s+enclosed|the\s+following|este|esta|estos|estas|el\s+presente|"
    r"la\s+presente|los\s+siguientes)\s+(?:[\w\-]+\s+){0,3}?(document|documents|record|records|note|notes|memo|"
    r"memorandum|communication|letter|report|file|material|materials|email|e-mail|fax|page|pages|information|"
    r"analysis|summary|chronology|minutes|entry|entries|session|documentation|documento|documentos|expediente|"
    r"registro|registros|nota|notas|informe|memorando|comunicaci[oó]n|material|materiales|an[aá]lisis|resumen|"
    r"archivo|sesi[oó]n)\s+(?:[\w\-]+\s+){0,2}?(is|are|was|were|has\s+been|have\s+been|contains?|constitutes?|"
    r"includes?|comprises?|consists\s+of|represents?|documents?|records?|reflects?|kept|protected|prepared|"
    r"compiled|refused|withheld|being|es|son|fue|fueron|contiene|contienen|constituye|constituyen|incluye|"
    r"incluyen|ha\s+sido|han\s+sido|preparad[oa]s?|compilad[oa]s?|protegid[oa]s?)\b", re.I)
_TYPE_FIELD = re.compile(
    r"\b(?:(?:note|document|visit|encounter|service|record|form|report)\s+(?:type|kind)|"
    r"session\s+(?:record|note|notes|type)|document|record\s+kind)\s*:\s*|"
    r"\btipo\s+de\s+(?:nota|documento|visita|servicio|registro|formulario|informe)\s*:\s*", re.I)
_TYPE_FIELD_NEEDS = requirements((_TYPE_FIELD.pattern,))
# A note's type given by its kind alone ("Note type: Psychotherapy", "Tipo de nota: Psicoterapia") names
# a note of that kind: read as "Psychotherapy note". Not a service's or a form's type ("Service type:
# Outpatient psychotherapy" on a letter about an authorization is no note).
_NOTE_KIND_FIELD = re.compile(r"^(?:note|visit|encounter|session)\s+(?:type|kind)|^tipo\s+de\s+(?:nota|visita)", re.I)
_NAMES_A_RECORD = re.compile(r"\b(?:notes?|notas?|records?|registros?|documentation|summary|log|resumen)\b", re.I)
_FIELD_VALUE_END = re.compile(r"\s{2,}|\t|\||\s+(?=[A-Z][\w/.]*\s*:)")  # the next field: "...   Date: 10/02"
_LEGEND = re.compile(
    r"^\W*(protected|privileged|confidential|attorney\W{1,3}client|prepared|compiled|kept|maintained|withheld|exempt|protegid[oa]s?|"
    r"privilegiad[oa]s?|confidencial|preparad[oa]s?|compilad[oa]s?)\b", re.I)
# A short line without a verb is a label or a stamp ("Attorney-client privileged and confidential."),
# not a sentence about something else.
_VERB = re.compile(
    r"\b(is|are|was|were|be|been|being|will|would|may|might|can|could|should|must|shall|has|have|had|do|does|"
    r"did|not|no|never|es|son|fue|fueron|est[aá]n?|puede|pueden|debe|deben|ha|han|se)\b", re.I)
BANNER_MAX_WORDS = 10
_PROSE_START = re.compile(r"^(the|a|an|our|your|my|we|i|he|she|they|it|his|her|their|el|la|los|las|un|una|"
                          r"nuestr[oa]s?|su|sus|usted|ella?|ellos)\s", re.I)
_MARKER = re.compile(r"^\W*(?:\u00a9|\(c\)|copyright\b)", re.I)
_CLAUSE_END = re.compile(r"[.;!?]\s|[.;!?]$|:\s")
_OCR_IN_WORD = re.compile(r"(?<=[^\W\d_])[015|$](?=[^\W\d_])|(?<=[^\W\d_]{2})[015|$]\b")
_OCR_LETTER = {"0": "o", "1": "l", "5": "s", "|": "l", "$": "s"}


@dataclass(frozen=True)
class Heading:
    """A line that can say what a document is."""

    page: int  # 1-based
    text: str  # flattened, dashes normalised
    where: str  # "title" (page 1 top), "heading", "banner", "type field"


def _ocr_reads(line: str) -> tuple[str, ...]:
    """The line, and if a digit stands for a letter inside a word ("PSYCH0THERAPY N0TE"), the line
    with it read as that letter; a "1" may be an l or an i, so both."""
    if not _OCR_IN_WORD.search(line):
        return (line,)
    as_l = _OCR_IN_WORD.sub(lambda m: _OCR_LETTER[m.group(0)], line)
    as_i = _OCR_IN_WORD.sub(lambda m: "i" if m.group(0) == "1" else _OCR_LETTER[m.group(0)], line)
    return tuple(dict.fromkeys((line, as_l, as_i)))


def _is_banner(line: str) -> bool:
    """A short line without a verb ("Attorney-client privileged and confidential."); not a sentence
    that opens with its subject and ends with a full stop ("The Quality Committee meets monthly.")."""
    return (len(line.split()) <= BANNER_MAX_WORDS and not _VERB.search(line)
            and not (line.endswith(".") and _PROSE_START.match(line)))


def headings(page_texts: tuple[str, ...]) -> tuple[Heading, ...]:
    """Every line of a document that may be a heading, a banner or a form-type value; a heading that
    wraps onto the next line is also read joined ("Psychotherapy" / "notes, session 4")."""
    found: list[Heading] = []
    for number, raw in enumerate(page_texts, 1):
        lines = page_lines(raw)
        # Only the first page's title may be followed by more headings of the same document; a later
        # page's own title stands in its first lines (a fax: cover, then a note). Under a title of
        # another kind of document (an authorization, a privacy notice), lines are its sections.
        top_lines = HEADING_TOP if number == 1 else HEADING_TOP_LATER
        title = next((line for line in lines[:3] if is_title_line(line)), "")
        if number == 1 and title and (_GOVERNING.search(title) or _OTHER_KIND_TITLE.search(title)):
            top_lines = lines.index(title) + 1
        # A form-type field is looked for line by line only on a page that may hold one.
        fields = possible(_TYPE_FIELD_NEEDS, folded("\n".join(lines))) if _TYPE_FIELD_NEEDS is not None else True
        for index, line in enumerate(lines):
            top = index < top_lines
            foot = len(lines) > HEADING_TOP + HEADING_FOOT and index >= len(lines) - HEADING_FOOT
            first = number == 1 and index == 0 and len(line.split()) <= FIRST_LINE_MAX_WORDS
            field = _TYPE_FIELD.search(line) if fields else None
            if field:
                value = line[field.end():]
                if _NOTE_KIND_FIELD.match(field.group(0)):
                    value = _FIELD_VALUE_END.split(value.strip(), maxsplit=1)[0]
                    if value and not _NAMES_A_RECORD.search(value):
                        value += " nota" if field.group(0).lower().startswith("tipo") else " note"
                found.extend(Heading(number, read, "type field") for read in _ocr_reads(value))
            if not (first or top or foot):
                continue  # only a type field can be a heading in the middle of a page
            title_like = is_title_line(line)
            if first or ((top or foot) and (title_like or _is_banner(line))):
                where = "title" if number == 1 and top else "heading" if top else "banner"
                found.extend(Heading(number, read, where) for read in _ocr_reads(line))
                following = lines[index + 1] if index + 1 < len(lines) else ""
                if (top and title_like and not line.endswith(":") and following and not _VERB.search(following)
                        and not following.endswith((".", ";"))):  # a sentence is not a wrapped title
                    joined = f"{line} {following}"
                    if len(joined.split()) <= FIRST_LINE_MAX_WORDS:
                        found.extend(Heading(number, read, where) for read in _ocr_reads(joined))
    return tuple(found)


def _clause_before(text: str, start: int) -> str:
    before = text[max(0, start - CLAUSE_BACK):start]
    ends = list(_CLAUSE_END.finditer(before))
    return before[ends[-1].end():] if ends else before


def negated(text: str, start: int, end: int) -> bool:
    """Whether the clause around text[start:end] denies it ("does not include X", "X are not included")."""
    after = text[end:end + 80]
    return bool(_NEGATION_BEFORE.search(_clause_before(text, start)) or _NEGATION_AFTER.search(after)
                or _EMPTY_VALUE.search(after))


def governed(text: str, start: int) -> bool:
    """Whether words before the match in its heading make it about the kind, not one of it."""
    return bool(_GOVERNING.search(text[:start]))


def declares_itself(text: str, start: int) -> bool:
    """Whether the match's own clause begins "This record is / These notes were / Este documento contiene",
    or is a legend whose subject is the document itself ("Protected under Evidence Code 1157"), or the
    match is a copyright notice."""
    clause = _clause_before(text, start)
    if not clause.strip():  # the match opens its clause: a stamp such as "Confidential and proprietary."
        return bool(_LEGEND.match(text[start:start + 20]) or _MARKER.match(text[start:start + 12]))
    return bool(_SELF.search(clause) or _LEGEND.match(clause) or _MARKER.match(text[start:start + 12]))


@dataclass(frozen=True)
class HeadingPage:
    """One page's headings joined by line breaks, searched in one pass per rule."""

    page: int
    text: str
    folded: Searchable  # packet.classify.patterns.folded(text), for the rules' pre-check
    starts: tuple[int, ...]  # where each heading starts in `text`
    headings: tuple[Heading, ...]


def heading_pages(found: tuple[Heading, ...]) -> tuple[HeadingPage, ...]:
    pages: dict[int, list[Heading]] = {}
    for heading in found:
        pages.setdefault(heading.page, []).append(heading)
    out = []
    for number, items in pages.items():
        starts, offset = [], 0
        for heading in items:
            starts.append(offset)
            offset += len(heading.text) + 1
        text = "\n".join(heading.text for heading in items)
        out.append(HeadingPage(number, text, searchable(folded(text)), tuple(starts), tuple(items)))
    return tuple(out)


_PART_END = re.compile(r"\s[-|/]\s|:\s|[.;!?](?:\s|$)")


def _part_around(text: str, start: int, end: int) -> str:
    """The part of a heading that holds a match: "PSYCHOTHERAPY NOTE - Patient did not attend" ->
    "PSYCHOTHERAPY NOTE"."""
    before = list(_PART_END.finditer(text, 0, start))
    after = _PART_END.search(text, end)
    return text[before[-1].end() if before else 0:after.start() if after else len(text)]


def heading_matches(patterns: tuple[re.Pattern[str], ...], pages: tuple[HeadingPage, ...],
                    needs: tuple[Requirement | None, ...] | None = None) -> Iterator[tuple[Heading, re.Match[str]]]:
    """Matches in headings that say what the document is (not governed, not negated). `needs` are the
    rule's `requirements`: a page whose headings cannot match them is not searched."""
    for page in pages:
        if needs is not None and not possible(needs, page.folded):
            continue
        for pattern in patterns:
            for match in pattern.finditer(page.text):
                index = bisect.bisect_right(page.starts, match.start()) - 1
                heading, offset = page.headings[index], page.starts[index]
                start, end = match.start() - offset, match.end() - offset
                if end > len(heading.text) or negated(heading.text, start, end):
                    continue
                if heading.where != "type field" and (governed(heading.text, start)
                                                      or _VERB.search(_part_around(heading.text, start, end))):
                    continue  # a sentence ("The member may request psychotherapy notes") is not a title
                yield heading, match
                break


def stated(text: str, start: int) -> bool:
    """Whether a statement pattern matched at text[start:] stands as said: nothing before it in its
    clause makes it a condition or denies it."""
    clause = _clause_before(text, start)
    return not (_CONDITION_BEFORE.search(clause) or _NEGATION_BEFORE.search(clause))


def body_matches(patterns: tuple[re.Pattern[str], ...], page: str) -> Iterator[re.Match[str]]:
    """Matches in running text by which the document declares itself (not negated)."""
    for pattern in patterns:
        for match in pattern.finditer(page):
            if declares_itself(page, match.start()) and not negated(page, match.start(), match.end()):
                yield match
