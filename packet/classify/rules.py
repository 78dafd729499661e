"""Everything decided about one document: category, privileged / withheld flags, identity, title, date.

Owns: the rule engine (applying the rule tables of packet/defaults/rules.toml plus imr.toml [rules]
to a converted document: category scores, tags, privilege and withholding) and `describe`, which
gathers every decision about a document (dates, identity and titles have their own modules beside
this one). Every value is a `Decision` that
names the rule and the evidence (folder, file name, the phrase found on page N), so the manifest,
`_STATUS.txt` and the annotated list can explain it to a clerk or an auditor.

Decision rules used (the `rule` field):
- category: "override", "folder", "rule:<id>"; for needs_review "conflict", "too-weak", "no-match",
  "scanned" (no text layer and the file name does not tell).
- privileged: "override", "folder", "rule:<id>", "default" (not privileged).
- withheld: "override", "privileged", "rule:<id>", "default".
- identity: "identity-check" (confirmed / mismatch / not_found), "no-case-facts".
- title: "override", "metadata", "heading", "file-name".  date: "override", "labelled-date",
  "letter-date", "first-date", "file-name-date", "none".
`Document.tags` holds facts recognised by tagged rules; "grievance_response" marks the plan's written
grievance response (see `is_grievance_response`).

Must not: read or write files, touch pypdf or any renderer, or log. Evidence about identity never
repeats the member's (or another person's) identifiers: it says "member id found on page 1" or
"a different date of birth on page 3", never the value.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from packet.classify.dates import dates_by_page, decide_date
from packet.classify.identity import decide_identity
from packet.classify.meaning import (HeadingPage, body_matches, heading_matches, heading_pages, headings, negated,
                                     stated)
from packet.classify.patterns import (Searchable, compiled, compiled_subset, folded, joined, possible, requirements,
                                     searchable)
from packet.classify.text import HEADING_LINES, dashes, flat, is_title_line, name_words, rule_text, text_lines
from packet.classify.titles import decide_author, decide_title
from packet.config import Config, Rule
from packet.intake.folder import HINT_FOLDERS, PRIVILEGED_FOLDER
from packet.model.case import CaseFacts
from packet.model.models import (
    CORRESPONDENCE,
    IDENTITY_MISMATCH,
    IDENTITY_NOT_FOUND,
    MEDICAL_RECORDS,
    NEEDS_REVIEW,
    Converted,
    Decision,
    Document,
    Override,
    SourceFile,
)

GRIEVANCE_RESPONSE_TAG = "grievance_response"

POSITION_FACTOR = 2  # a match in the file name or a title line counts double
EVIDENCE_PHRASE_MAX = 50  # longer matches are described by the rule's label, not quoted
CATEGORY_PAGES = 10  # category rules read the first 10 pages; flags and identity read every page

_FOLDER_FOR_CATEGORY = {category: folder for folder, category in HINT_FOLDERS.items()}



@dataclass(frozen=True)
class _Prepared:
    """The parts of a document the rules look at."""

    folder_name: str  # the folders of the relative path, as words
    file_name: str  # the file name without extension, as words
    pages: tuple[str, ...]  # flattened text per page
    title_lines: tuple[str, ...]  # short lines near the top of page 1, flattened
    has_text: bool
    folded: tuple[Searchable, ...] = ()  # the pages as folded text, for the pre-check in _match_rule
    everything: Searchable = Searchable("", "")  # every page at once: a rule impossible on it is skipped
    headings: tuple[HeadingPage, ...] = ()  # lines that may say what the document is (packet.classify.meaning)
    low_pages: frozenset[int] = frozenset()  # 1-based pages read by OCR with low confidence
    raw_pages: tuple[str, ...] = ()  # the pages as converted, lines kept (where a statement stands alone)


def _prepare(source: SourceFile, converted: Converted, min_confidence: float) -> _Prepared:
    rel = PurePosixPath(source.relpath)
    # Hint folders and privileged/ are decisions of their own, not words for the rules.
    skip = {".", "", PRIVILEGED_FOLDER, *HINT_FOLDERS}
    folders = " / ".join(name_words(part) for part in rel.parent.parts if part.lower() not in skip)
    pages = tuple(rule_text(text) for text in converted.page_texts)
    folded_pages = tuple(searchable(folded(page)) for page in pages)
    first = converted.page_texts[0] if converted.page_texts else ""
    title_lines = tuple(line for line in text_lines(dashes(first))[:HEADING_LINES] if is_title_line(line))
    low = frozenset(number for number, confidence in enumerate(converted.page_confidence, 1)
                    if confidence is not None and confidence < min_confidence)
    return _Prepared(folder_name=folders, file_name=name_words(rel.stem), pages=pages,
                     title_lines=title_lines, has_text=converted.has_text,
                     folded=folded_pages, everything=joined(folded_pages), headings=heading_pages(headings(converted.page_texts)), low_pages=low,
                     raw_pages=converted.page_texts)


# ------------------------------------------------------------------------------------------ rules

@dataclass(frozen=True)
class RuleMatch:
    """Where one rule matched a document, and what that match is worth."""

    rule: Rule
    score: int  # the rule's weight, doubled for a file-name or title-line match
    evidence: str  # e.g. 'phrase "notice of action" in the title lines of page 1'
    page: int = 0  # 1-based page of a text match; 0 for the file name
    low_confidence: bool = False  # found only in text OCR read with low confidence



def _shown(match: re.Match[str], rule: Rule) -> str:
    phrase = flat(match.group(0))
    if len(phrase) > EVIDENCE_PHRASE_MAX:
        return rule.label or rule.id
    return f'"{phrase}"'



def _match_rule(rule: Rule, doc: _Prepared, max_pages: int | None = None) -> RuleMatch | None:
    """The best place a rule matches: file name or title line (counted double), else the body."""
    patterns = compiled(rule.patterns)
    if rule.where in ("name", "any"):
        for part, what in ((doc.file_name, "file name"), (doc.folder_name, "folder name")):
            for pattern in patterns:
                found = pattern.search(part) if part else None
                if found:
                    return RuleMatch(rule, rule.weight * POSITION_FACTOR,
                                     f"{what} contains {_shown(found, rule)}")
    if rule.where in ("text", "any") and doc.has_text:
        for line in doc.title_lines:
            for pattern in patterns:
                found = pattern.search(line)
                if found:
                    shown = _shown(found, rule)
                    what = "phrase " + shown if shown.startswith('"') else shown
                    return RuleMatch(rule, rule.weight * POSITION_FACTOR, f"{what} in the title lines of page 1",
                                     1, 1 in doc.low_pages)
        needs = requirements(rule.patterns)
        everything = tuple(range(len(rule.patterns)))
        body = doc.pages[:max_pages] if needs is None or possible(needs, doc.everything) else ()
        for number, page in enumerate(body, 1):
            searched = patterns
            if needs is not None:
                keep = possible(needs, doc.folded[number - 1])
                if not keep:
                    continue  # no match is possible on this page
                if keep != everything:
                    searched = compiled_subset(rule.patterns, keep)
            for pattern in searched:
                found = pattern.search(page)
                if found:
                    shown = _shown(found, rule)
                    what = "phrase " + shown if shown.startswith('"') else shown
                    return RuleMatch(rule, rule.weight, f"{what} on page {number}", number, number in doc.low_pages)
    return None


def _category_matches(config: Config, doc: _Prepared) -> dict[str, list[RuleMatch]]:
    out: dict[str, list[RuleMatch]] = {}
    for rule in config.rules.of_kind("category"):
        found = _match_rule(rule, doc, CATEGORY_PAGES)
        if found is not None:
            out.setdefault(rule.category or "", []).append(found)
    for matches in out.values():
        matches.sort(key=lambda m: -m.score)  # stable: rule-table order among equals
    return out


def _summary(category: str, matches: list[RuleMatch], limit: int = 2) -> str:
    shown = ", ".join(f"{m.rule.id}: {m.evidence}" for m in matches[:limit])
    more = f", +{len(matches) - limit} more" if len(matches) > limit else ""
    return f"{category} {sum(m.score for m in matches)} ({shown}{more})"


def _category_by_rules(config: Config, doc: _Prepared,
                       matches: dict[str, list[RuleMatch]]) -> Decision:
    scanned = not doc.has_text
    prefix = "scanned document (no text layer), judged by its file name: " if scanned else ""
    ranked = sorted(matches.items(), key=lambda item: -sum(m.score for m in item[1]))
    if not ranked:
        if scanned:
            return Decision(NEEDS_REVIEW, "scanned",
                            "scanned document (no text layer) and its file name does not tell the category")
        return Decision(NEEDS_REVIEW, "no-match", "no classification rule matched the file name or the text")
    top_category, top_matches = ranked[0]
    top = sum(m.score for m in top_matches)
    second = sum(m.score for m in ranked[1][1]) if len(ranked) > 1 else 0
    minimum, margin = config.rules.min_score, config.rules.margin
    confident = sum(m.score for m in top_matches if not m.low_confidence)
    if top >= minimum and top - second >= margin and confident < minimum:
        # Low-confidence OCR text never decides a category alone: a person does.
        pages = sorted({m.page for m in top_matches if m.low_confidence})
        return Decision(NEEDS_REVIEW, "low-confidence",
                        f"{prefix}the evidence for {top_category} ({top_matches[0].rule.id}) was read by OCR with "
                        f"low confidence (page {', '.join(str(p) for p in pages)}): a person must decide")
    if top >= minimum and top - second >= margin:
        best = top_matches[0]
        also = "; ".join(f"{m.rule.id} ({m.evidence})" for m in top_matches[1:3])
        evidence = prefix + best.evidence + (f"; also {also}" if also else "")
        evidence += f"; score {top}" + (f", next {ranked[1][0]} {second}" if len(ranked) > 1 else "")
        return Decision(top_category, f"rule:{best.rule.id}", evidence)
    sides = " vs ".join(_summary(category, found) for category, found in ranked[:2])
    if top >= minimum:  # strong enough, but the runner-up is too close: never guess
        return Decision(NEEDS_REVIEW, "scanned" if scanned else "conflict",
                        f"{prefix}conflicting evidence (the top category must lead by {margin}): {sides}")
    return Decision(NEEDS_REVIEW, "scanned" if scanned else "too-weak",
                    f"{prefix}evidence too weak (a category needs {minimum}): {sides}")


def _category(source: SourceFile, override: Override | None, config: Config, doc: _Prepared,
              matches: dict[str, list[RuleMatch]]) -> Decision:
    # spec.md: "Overrides beat every rule and are recorded as such".
    if override is not None and override.category:
        return Decision(override.category, "override", "category set by a person in overrides.toml")
    if source.hint_category:
        folder = _FOLDER_FOR_CATEGORY.get(source.hint_category, source.hint_category)
        return Decision(source.hint_category, "folder", f"folder {folder}/")
    return _category_by_rules(config, doc, matches)


def _tags(matches: dict[str, list[RuleMatch]]) -> tuple[str, ...]:
    """A tag counts only when its rule is the strongest of its category for this document."""
    tags: list[str] = []
    for found in matches.values():
        best = max(m.score for m in found)
        for m in found:
            if m.rule.tag and m.score == best and m.rule.tag not in tags:
                tags.append(m.rule.tag)
    return tuple(sorted(tags))


def _flag_match(rule: Rule, doc: _Prepared) -> RuleMatch | None:
    """Where a privilege or withholding rule finds evidence that the document IS of its kind: the file
    name, a heading, or a sentence by which the document declares itself; never a passing mention or
    a negation (packet.classify.meaning)."""
    patterns = compiled(rule.patterns)
    if rule.where in ("name", "any"):
        for part, what in ((doc.file_name, "file name"), (doc.folder_name, "folder name")):
            for pattern in patterns:
                for found in pattern.finditer(part) if part else ():
                    if not negated(part, found.start(), found.end()):
                        return RuleMatch(rule, rule.weight, f"{what} contains {_shown(found, rule)}")
    if rule.where not in ("text", "any") or not doc.has_text:
        return None
    needs = requirements(rule.patterns)
    if rule.evidence == "statement":
        return _statement_match(rule, patterns, needs, doc)
    for heading, found in heading_matches(patterns, doc.headings, needs):
        shown = _shown(found, rule)
        what = "phrase " + shown if shown.startswith('"') else shown
        where = ("in the title lines of page 1" if heading.where == "title" and heading.page == 1
                 else f"in a {heading.where} on page {heading.page}")
        return RuleMatch(rule, rule.weight, f"{what} {where}", heading.page, heading.page in doc.low_pages)
    body = doc.pages if needs is None or possible(needs, doc.everything) else ()
    for number, page in enumerate(body, 1):
        if needs is not None and not possible(needs, doc.folded[number - 1]):
            continue  # no match is possible on this page
        for found in body_matches(patterns, page):
            shown = _shown(found, rule)
            what = "phrase " + shown if shown.startswith('"') else shown
            return RuleMatch(rule, rule.weight, f"{what} on page {number}", number, number in doc.low_pages)
    return None


def _opens_a_line(raw: str, page: str, start: int) -> bool:
    """Whether page[start:] (the flattened `raw`) begins one of raw's lines."""
    offset = 0
    for line in raw.splitlines():
        words = flat(dashes(line))
        if not words:
            continue
        if offset == start:
            return page.startswith(words, offset)
        offset += len(words) + 1
        if offset > start:
            return False
    return False


def _statement_match(rule: Rule, patterns: tuple[re.Pattern[str], ...], needs: tuple | None,
                     doc: _Prepared) -> RuleMatch | None:
    """A rule whose patterns are statements ("DO NOT RELEASE TO PATIENT", a provider's determination
    that release would be harmful) counts where one is said as such: not as a condition or a denial
    (packet.classify.meaning.stated), or as a stamp in capitals on a line of its own."""
    if needs is not None and not possible(needs, doc.everything):
        return None
    for number, page in enumerate(doc.pages, 1):
        if needs is not None and not possible(needs, doc.folded[number - 1]):
            continue
        for pattern in patterns:
            for found in pattern.finditer(page):
                raw = doc.raw_pages[number - 1] if number <= len(doc.raw_pages) else ""
                stamp = found.group(0).isupper() and _opens_a_line(raw, page, found.start())
                if stamp or stated(page, found.start()):
                    shown = _shown(found, rule)
                    what = "phrase " + shown if shown.startswith('"') else shown
                    return RuleMatch(rule, rule.weight, f"{what} on page {number}", number, number in doc.low_pages)
    return None


def _in_context(rule: Rule, doc: _Prepared) -> bool:
    """Whether the document has one of the rule's `context` patterns (its name or text), if it has any."""
    if not rule.context:
        return True
    return any(pattern.search(part) for pattern in compiled(rule.context)
               for part in (doc.file_name, doc.folder_name, *doc.pages) if part)


def _flag_matches(kind: str, config: Config, doc: _Prepared) -> list[RuleMatch]:
    found = ((rule, _flag_match(rule, doc)) for rule in config.rules.of_kind(kind))
    return [m for rule, m in found if m is not None and _in_context(rule, doc)]


def _flag_text(found: RuleMatch) -> str:
    return f"{found.rule.label}: {found.evidence}"


def _privileged(source: SourceFile, override: Override | None, config: Config, doc: _Prepared) -> Decision:
    found = _flag_matches("privileged", config, doc)
    also = f"; also {_flag_text(found[0])}" if found else ""
    if override is not None and override.privileged:
        return Decision(True, "override", override.privileged)
    if override is not None and override.release_to_member:
        return Decision(False, "override", override.release_to_member + (f"; {_flag_text(found[0])}" if found else ""))
    if source.in_privileged_folder:
        return Decision(True, "folder", f"folder {PRIVILEGED_FOLDER}/{also}")
    if found:
        return Decision(True, f"rule:{found[0].rule.id}", _flag_text(found[0]))
    return Decision(False, "default", "no privilege rule matched")


def _withheld(override: Override | None, privileged: Decision, config: Config, doc: _Prepared) -> Decision:
    found = _flag_matches("withhold", config, doc)
    if override is not None and override.withhold_from_member:
        return Decision(True, "override", override.withhold_from_member)
    if override is not None and override.release_to_member and not privileged.value:
        return Decision(False, "override", override.release_to_member)
    if privileged.value:
        # Legally privileged documents go to the IMR organization only (H&S 1374.30(n)).
        also = f"; also {_flag_text(found[0])}" if found else ""
        return Decision(True, "privileged", f"privileged: {privileged.evidence or privileged.rule}{also}")
    if found:
        return Decision(True, f"rule:{found[0].rule.id}", _flag_text(found[0]))
    return Decision(False, "default", "no withholding rule matched")



# ------------------------------------------------------------------------------------------ public

def removal_problem(override: Override | None, pages: int) -> str | None:
    """Why an `exclude = { reason, pages }` cannot apply to a file of `pages` pages (a page beyond the
    file), or None. Such a removal is not applied; the file's other decisions stand."""
    if override is None or not override.exclude_pages:
        return None
    beyond = [n for n in override.exclude_pages if n > pages]
    if not beyond:
        return None
    shown = ", ".join(str(n) for n in beyond[:5]) + (", ..." if len(beyond) > 5 else "")
    return (f"exclude pages {shown}: the file has {pages} page(s); no page was removed (correct the "
            "page numbers)")


def removed_pages(override: Override | None, pages: int) -> tuple[int, ...]:
    """The pages a person removed from a file of `pages` pages (1-based); () when the removal does not
    apply (none asked, a page beyond the file) or takes every page (then the file is excluded)."""
    if override is None or not override.exclude_pages or removal_problem(override, pages):
        return ()
    if len(set(override.exclude_pages)) >= pages:
        return ()
    return tuple(sorted(set(override.exclude_pages)))


def _without(converted: Converted, removed: tuple[int, ...]) -> Converted:
    """The converted file as the rules may read it: a removed page has no text and no OCR reading,
    so nothing on it (a name, a date, a heading, a phrase) decides anything about the document.
    Page numbers stay those of the file."""
    gone = set(removed)
    texts = tuple("" if n in gone else text for n, text in enumerate(converted.page_texts, 1))
    confidence = tuple(None if n in gone else value for n, value in enumerate(converted.page_confidence, 1))
    return replace(converted, page_texts=texts, page_confidence=confidence)


def describe(source: SourceFile, converted: Converted, facts: CaseFacts | None, override: Override | None,
             config: Config, received_at: dt.datetime) -> Document:
    """Every decision about one accepted document, each with its rule and evidence.

    Pages a person removed (`exclude` with `pages`) are not read: the document is described from
    its kept pages, and it counts only those."""
    removed = removed_pages(override, converted.pages)
    every_page_removed = (override is not None and bool(override.exclude_pages) and not removed
                          and removal_problem(override, converted.pages) is None)
    if removed:
        converted = _without(converted, removed)
    doc = _prepare(source, converted, config.ocr.confident)
    page_dates = dates_by_page(converted, received_at.year)  # the same pivot year for the date and identity
    matches = _category_matches(config, doc)
    category = _category(source, override, config, doc, matches)
    privileged = _privileged(source, override, config, doc)
    withheld = _withheld(override, privileged, config, doc)
    title = decide_title(source, converted, override, config, facts)
    identity, other_person_pages = decide_identity(
        facts, converted, received_at.year, page_dates,
        confirmed_by=override.identity_confirmed if override is not None else None,
        confirmed_pages=override.identity_confirmed_pages if override is not None else (),
        min_confidence=config.ocr.confident, addressees=(config.plan.name,))
    excluded = None
    if override is not None and (every_page_removed or not override.exclude_pages):
        excluded = override.exclude
    return Document(
        source=source.relpath,
        sha256=converted.sha256,
        received_at=received_at,
        title=title,
        date=decide_date(source, converted, override, facts, received_at, page_dates),
        category=category,
        privileged=privileged,
        withheld=withheld,
        identity=identity,
        other_person_pages=other_person_pages,
        pages=converted.pages - len(removed),
        pdf_path=converted.pdf_path,
        source_kind=converted.source_kind,
        excluded=excluded,
        author=decide_author(converted, str(title.value)),
        tags=_tags(matches),
        removed_pages=removed,
        removed_reason=override.exclude if removed and override is not None else None,
    )


_RESPONSE_TITLE = re.compile(r"\b(grievance (response|resolution|decision)|appeal (decision|resolution)|"
                             r"resolution letter)\b", re.I)


def is_grievance_response(document: Document) -> bool:
    """The plan's written response to the grievance (H&S 1374.30(n)(2): it must be in the packet).

    True for a document in the packet as correspondence when either a rule tagged
    "grievance_response" was its strongest correspondence rule (built-in: `grievance-resolution`),
    or a person gave it a title in overrides.toml that says so (e.g. "Grievance resolution letter"),
    which is how a clerk vouches for a scanned or oddly worded response.
    """
    if document.excluded is not None or document.category.value != CORRESPONDENCE:
        return False
    if GRIEVANCE_RESPONSE_TAG in document.tags:
        return True
    return document.title.rule == "override" and bool(_RESPONSE_TITLE.search(str(document.title.value)))


def withheld_correspondence(document: Document) -> bool:
    """A rule (not a person, not the privileged/ folder) withholds correspondence from the member.

    The member sent or was sent that document, so withholding it from them by a rule is a
    contradiction only a person can settle: confirm (withhold_from_member or privileged in
    overrides.toml) or release it (release_to_member). Until then it blocks sealing."""
    if document.excluded is not None or document.category.value != CORRESPONDENCE or not document.withheld.value:
        return False
    if document.withheld.rule.startswith("rule:"):
        return True
    return document.withheld.rule == "privileged" and document.privileged.rule.startswith("rule:")


def needs_attention(document: Document) -> list[str]:
    """Plain-language items a person must look at for this document (empty: nothing to do).

    Each item is one sentence about this document; callers name the document (its source) beside it.
    Excluded documents need nothing.
    """
    if document.excluded is not None:
        return []
    items: list[str] = []
    if document.category.value == NEEDS_REVIEW:
        items.append(f"Its category could not be decided ({document.category.evidence}). Move the file into "
                     "medical-records/, correspondence/ or plan-statements/, or set its category in overrides.toml.")
    if document.identity.value == IDENTITY_MISMATCH:
        items.append(f"It may hold another person's record ({document.identity.evidence}). Check it: exclude "
                     "the file in overrides.toml (or replace it with a copy without those pages), or, if the "
                     'pages are the member\'s, write identity_confirmed = "<why>" for it there (or a table '
                     '{ reason = "<why>", pages = "2-3" } for only those pages).')
    elif document.identity.value == IDENTITY_NOT_FOUND and document.category.value == MEDICAL_RECORDS:
        items.append("The member's name, member id or date of birth was not found in it "
                     f"({document.identity.evidence}). Check that it is the member's record.")
    if withheld_correspondence(document):
        items.append("The rules would withhold this correspondence from the member, who sent or received it "
                     f"({document.withheld.evidence}). A person must decide: in overrides.toml write "
                     'release_to_member = "<why>", or withhold_from_member = "<why>" to confirm.')
    elif document.privileged.value and document.privileged.rule.startswith("rule:"):
        items.append(f"The rules flagged it as privileged ({document.privileged.evidence}). Confirm this: "
                     "it will be marked and not sent to the member or provider.")
    elif document.withheld.value and document.withheld.rule.startswith("rule:"):
        items.append(f"The rules withheld it from the member ({document.withheld.evidence}). Confirm this: "
                     "the member and provider will not get a copy.")
    if document.date.value is None:
        items.append("No document date was found. Add date = YYYY-MM-DD for it in overrides.toml if it has one.")
    return items
