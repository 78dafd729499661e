"""A document's title and author, read from its properties, its first page or its file name.

Owns: `decide_title` (override, metadata, a heading that names a kind of document, an all-capitals
heading, the first line, the file name) and `decide_author` (a "From:" line or a letterhead). People's
names and confidentiality banners are never titles. Must not: read files or log.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from packet.classify.dates import date_only
from packet.classify.identity import name_patterns
from packet.classify.patterns import compiled
from packet.classify.text import HEADING_LINES, HEADING_MAX_WORDS, flat, is_title_line, text_lines
from packet.config import Config
from packet.model.case import CaseFacts
from packet.model.models import Converted, Decision, Override, SourceFile

_JUNK_TITLE = re.compile(
    r"^(microsoft\s+(word|excel|powerpoint|office)\b|untitled|document\s*\d*$|doc\d*$|new document|"
    r"(scan|img|image|dsc|fax)[\s_\-]*\d*$|print$|pdf$|title$|none$|unknown$)|"
    r"\.(docx?|pdf|rtf|odt|tiff?|jpe?g|png|txt)\s*$|template", re.I)
ORG_WORDS = re.compile(
    r"\b(health|healthcare|clinic|hospital|medical (center|group|associates|clinic)|center|centre|"
    r"orthopa?edics?|imaging|radiology|associates|group|plan|inc|llc|laboratory|laboratories|labs|"
    r"physicians|medicine|institute|practice|rehabilitation|department|unit|services)\b", re.I)
NOT_TITLE = re.compile(
    r"@|www\.|https?:|\bp\.?\s?o\.?\s+box\b|\bsuite\b|\b(street|st\.|avenue|ave\.?|blvd|road|rd\.|lane|drive|way)\b|"
    r",?\s+(CA|California)(\s+\d{5}(-\d{4})?)?$|^\d+\s+\w+|,\s*[A-Z]{2}\s+\d{5}|\(?\d{3}\)?[\s.\-]\d{3}[\-.]\d{4}|\bpage\s+\d+\s+of\s+\d+\b|^dear\b", re.I)
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to",
                "with", "w/o", "vs", "vs.", "de", "del", "la", "las", "los", "el", "y", "en", "para", "por"}
_ACRONYMS = {"MRI", "CT", "PT", "OT", "UM", "UR", "IMR", "DMHC", "ED", "ER", "EKG", "ECG", "CBC", "CMP",
             "MCG", "MD", "DO", "NP", "PA", "RN", "H&P", "PET", "II", "III", "IV", "LOMN", "NOA", "P2P",
             "HIV", "ICU", "OR", "ENT", "EMG", "NCS", "DME", "PCP", "HMO", "PPO", "IPA", "UCLA", "USC"}


def title_case(line: str) -> str:
    """"NOTICE OF ACTION" -> "Notice of Action"; acronyms such as MRI stay as they are."""
    words = []
    for index, word in enumerate(line.split()):
        core = word.strip(".,:;()")
        if any(ch.isdigit() for ch in word) or core.upper() in _ACRONYMS:
            words.append(word)
        elif index and word.lower() in _SMALL_WORDS:
            words.append(word.lower())
        else:
            words.append("/".join("-".join(part[:1].upper() + part[1:].lower() for part in piece.split("-"))
                                  for piece in word.split("/")))
    return " ".join(words)


def is_upper(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 6 and sum(ch.isupper() for ch in letters) >= 0.85 * len(letters)


def _sensible_metadata_title(title: str | None) -> str | None:
    if not title:
        return None
    title = flat(title)
    if len(title) < 3 or len(title) > 150 or sum(ch.isalpha() for ch in title) < 3 or _JUNK_TITLE.search(title):
        return None
    return title


def _file_name_title(source: SourceFile) -> str:
    stem = PurePosixPath(source.relpath).stem
    stem = stem.replace("_", " ")
    stem = re.sub(r"(?<!\d)-|-(?!\d)", " ", stem)  # keep dashes inside dates and numbers
    return flat(stem) or source.relpath


_BANNER = re.compile(
    r"^(strictly )?(privileged|confidential|attorney[- ]client (privileged|privilege|communications?)|"
    r"attorney work[- ]product|(privileged|confidential) (and|&) (confidential|privileged)|"
    r"do not (copy|distribute|release|forward))$", re.I)


def _is_banner(line: str) -> bool:
    """A confidentiality stamp ("PRIVILEGED & CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION") says how
    to treat a document, not what it is: it is never its title."""
    parts = [p.strip(" .:*") for p in re.split(r"\s+[-\u2013\u2014|/]\s+", line)]
    return all(_BANNER.match(p) for p in parts if p) and any(parts)


def _heading_title(converted: Converted, config: Config, facts: CaseFacts | None) -> str | None:
    first = converted.page_texts[0] if converted.page_texts else ""
    lines = text_lines(first)[:HEADING_LINES]
    avoid = {config.plan.name.lower(), *(line.lower() for line in config.plan.address)}
    member_bits = []
    if facts is not None:
        # People's names are not titles: the member's, and the representative's or provider's
        # (a letter from the member's daughter starts with her name, not with what it is).
        people = [facts.member] + [p for p in (facts.representative, facts.provider) if p is not None]
        member_bits = [pattern for person in people for pattern in name_patterns(person.name)]
        if facts.member.member_id:
            member_bits.append(re.compile(re.escape(facts.member.member_id), re.I))

    def usable(line: str) -> bool:
        words = line.split()
        return (3 <= len(line) <= 90 and len(words) <= HEADING_MAX_WORDS and sum(ch.isalpha() for ch in line) >= 3
                and not line.endswith((",", ";")) and line.lower() not in avoid and not NOT_TITLE.search(line)
                and not any(p.search(line) for p in member_bits) and not date_only(line))

    title_rules = [rule for rule in config.rules.of_kind("category") if rule.where in ("text", "any")]

    def names_a_kind(text: str) -> bool:
        return any(p.search(text) for rule in title_rules for p in compiled(rule.patterns))

    # 1. a short line that names a kind of document ("PROGRESS NOTE", "Re: Letter of Medical Necessity")
    # A heading may follow a letterhead on the same line ("Valley Imaging - RADIOLOGY REPORT"), or
    # carry a qualifier after a colon ("X-RAY REPORT: RIGHT KNEE"): each dash-separated part is tried.
    for line in lines:
        if not is_title_line(line):
            continue
        subject = re.match(r"^(re|subject|regarding)\s*:\s*(.+)$", line, re.I)
        text = subject.group(2) if subject else line
        text = re.split(r",|;", text)[0].strip()
        for part in (p.strip() for p in re.split(r"\s+[-\u2013\u2014|]\s+", text)):
            if _is_banner(part):
                continue
            head = part.split(":", 1)[0].strip()
            if subject or ":" not in part:
                kind_named = names_a_kind(part)
            else:  # "HEADING: qualifier" only when the heading is in capitals and names a kind
                kind_named = is_upper(head) and names_a_kind(head)
            if usable(part) and kind_named:
                return title_case(part) if is_upper(part) else part
    candidates = [line for line in lines
                  if ":" not in line and is_title_line(line) and usable(line) and not _is_banner(line)]
    # 2. an all-capitals heading that is not a letterhead; 3. the first line, if heading-like
    for line in candidates:
        if is_upper(line) and not ORG_WORDS.search(line):
            return title_case(line)
    if lines and candidates and candidates[0] == lines[0] and not ORG_WORDS.search(lines[0]):
        return title_case(lines[0]) if is_upper(lines[0]) else lines[0]
    return None


def decide_title(source: SourceFile, converted: Converted, override: Override | None, config: Config,
           facts: CaseFacts | None) -> Decision:
    if override is not None and override.title:
        return Decision(override.title, "override", "title set by a person in overrides.toml")
    metadata = _sensible_metadata_title(converted.title)
    if metadata:
        return Decision(metadata, "metadata", "document properties")
    heading = _heading_title(converted, config, facts)
    if heading:
        return Decision(heading, "heading", "heading near the top of page 1")
    return Decision(_file_name_title(source), "file-name", "file name")



# ------------------------------------------------------------------------------------------ author

_FROM = re.compile(r"^\s*from\s*:\s*(.+)$", re.I | re.M)


def decide_author(converted: Converted, title: str) -> str | None:
    first = converted.page_texts[0] if converted.page_texts else ""
    found = _FROM.search(first)
    if found:
        value = re.split(r"\s{2,}|\b(?:fax|phone|tel|date|to|pages?|re|subject)\s*[:#]", found.group(1), flags=re.I)[0]
        value = value.strip(" ,;:-")
        if 2 <= len(value) <= 80 and sum(ch.isalpha() for ch in value) >= 2:
            return value
    lines = text_lines(first)
    if lines:
        head = re.split(r"\s+[-|\u2013\u2014]\s+", lines[0])[0]  # "Valley Imaging - RADIOLOGY REPORT"
        if (len(head.split()) <= 8 and ":" not in head and head.lower() != title.lower()
                and ORG_WORDS.search(head) and not NOT_TITLE.search(head)):
            return title_case(head) if is_upper(head) else head
    return None
