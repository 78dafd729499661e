"""The annotated list of the documents submitted (H&S 1374.31(b)): rows, CSV and PDF table.

Owns: turning the one numbered page list into rows a member may read, the CSV, and the table.
Decision recorded here: privileged documents and documents withheld by law are listed with a
neutral description (issue 15 item 7), as a privilege log lists them: the kind of document, the
author's role and the legal reason, each looked up by the id of the rule that decided it in
labels.toml [list.neutral] (so compliance staff word them, in each language), with the date,
category, pages and Bates range; never their title or the author's name, which can reveal
protected content. A withheld document whose title a person set by override shows that title (a
person chose it for release).
Must not: decide categories, privilege or withholding (it reads the decisions).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

from reportlab.lib import colors
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, Table, TableStyle
from reportlab.rl_config import _FUZZ

from packet.mailings.pages import BODY_SIZE, styles, text_xml
from packet.mailings.templates import short_date

FILE_NAME_RULE = "file-name"  # packet.classify.rules: a title made from the file's name
_RULE_ID = re.compile(r"^rule:([\w.-]+)")
CSV_COLUMNS = ("number", "title", "author", "date", "category", "pages", "bates_first", "bates_last",
               "privileged", "withheld_from_member", "withheld_reason", "copy_available")


@dataclass(frozen=True)
class ListRow:
    """One line of the annotated list, already safe for the member to read."""

    number: int
    title: str  # the document's title, or a neutral description when withheld
    author: str
    date: dt.date | None
    category: str
    pages: int
    bates_first: str
    bates_last: str
    privileged: bool
    withheld_from_member: bool  # as in the manifest: privileged documents are withheld too
    withheld_reason: str | None  # member-facing reason ("legally privileged", "withheld by law")
    enclosed: bool = False  # a copy is in this mailing (the medical records: H&S 1374.30(n)(1)(B))
    removed: int = 0  # pages of the file a person removed (not sent): only their number is said

    @property
    def copy_available(self) -> bool:
        return not (self.privileged or self.withheld_from_member)

    @property
    def bates_range(self) -> str:
        return self.bates_first if self.bates_first == self.bates_last else f"{self.bates_first} - {self.bates_last}"


def rule_id(rule_or_reason: str | None) -> str:
    """The id of the rules.toml rule in a Decision's rule or a manifest reason ("rule:progress-note:
    phrase ..." -> "progress-note"); "" for a folder, an override or a default."""
    match = _RULE_ID.match(rule_or_reason or "")
    return match.group(1) if match else ""


@dataclass(frozen=True)
class Neutral:
    """What a member may read about a privileged or withheld document (labels.toml [list.neutral])."""

    kind: str  # "Progress note"
    role: str  # "Treating therapist" ("" when no role can be told)
    reason: str  # "Withheld by law (45 CFR 164.524(a)(1)(i))."


def neutral_description(labels: dict[str, Any], *, category: str, category_rule: str, flag_rule: str,
                        privileged: bool) -> Neutral:
    """The neutral description of a withheld or privileged document, from rule ids alone (never its
    text, title or author): the kind by the rule that set its category, else by the flag's rule,
    else by its category; the author's role by the flag's rule, else the category's rule, else the
    category; the reason by the flag's rule, else the general reason."""
    table = labels["list"].get("neutral", {})
    category_id, flag_id = rule_id(category_rule), rule_id(flag_rule)

    def look(name: str, *keys: str) -> str:
        values = table.get(name, {})
        return next((str(values[key]) for key in keys if key and key in values), "")

    kind = (look("types", category_id, flag_id) or look("category_types", category)
            or labels["list"]["untitled"])
    role = look("roles", flag_id, category_id) or look("category_roles", category)
    general = labels["list"]["reason_privileged" if privileged else "reason_withheld"]
    return Neutral(kind=kind, role=role, reason=look("reasons", flag_id) or general)


def member_safe_row(*, number: int, title: str, title_rule: str, author: str | None, date: dt.date | None,
                    category: str, pages: int, bates_first: str, bates_last: str, privileged: bool,
                    withheld: bool, labels: dict[str, Any], category_rule: str = "",
                    flag_rule: str = "") -> ListRow:
    """A list row that never carries a privileged or withheld document's title or author's name:
    the neutral description stands in for them (`category_rule`: the rule that set the category;
    `flag_rule`: the rule that set the privileged flag, or the withheld flag)."""
    reason = None
    if privileged or withheld:
        neutral = neutral_description(labels, category=category, category_rule=category_rule,
                                      flag_rule=flag_rule, privileged=privileged)
        if privileged or title_rule != "override":
            title = neutral.kind
        author = neutral.role
        reason = neutral.reason
    return ListRow(number=number, title=title or labels["list"]["untitled"], author=author or "",
                   date=date, category=category, pages=pages, bates_first=bates_first,
                   bates_last=bates_last, privileged=privileged, withheld_from_member=withheld or privileged,
                   withheld_reason=reason)


def list_rows(page_list, labels: dict[str, Any]) -> tuple[ListRow, ...]:
    """The annotated list from the one numbered page list (packet/pagelist.py)."""
    rows = []
    for number, placed in enumerate(page_list.entries, 1):
        doc = placed.document
        date = doc.date.value if isinstance(doc.date.value, dt.date) else None
        title = str(doc.title.value or "")
        if doc.title.rule == FILE_NAME_RULE and "file_name_titles" in labels["list"]:
            # A title made from a file name is in the clerk's language, not the member's: a list
            # in another language names the kind of document instead (es/labels.toml).
            title = labels["list"]["file_name_titles"].get(placed.category, title)
        rows.append(member_safe_row(
            number=number, title=title, title_rule=doc.title.rule, author=doc.author,
            date=date, category=placed.category, pages=doc.pages, bates_first=placed.bates_first_label,
            bates_last=placed.bates_last_label, privileged=doc.is_privileged,
            withheld=bool(doc.withheld.value), labels=labels, category_rule=doc.category.rule,
            flag_rule=doc.privileged.rule if doc.is_privileged else doc.withheld.rule))
        if doc.removed_pages:
            rows[-1] = replace(rows[-1], removed=len(doc.removed_pages))
    return tuple(rows)


def annotated_csv(rows: Iterable[ListRow]) -> bytes:
    """One row per document, columns named like the manifest's fields (plus number and author)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row.number, row.title, row.author, row.date.isoformat() if row.date else "",
                         row.category, row.pages, row.bates_first, row.bates_last,
                         str(row.privileged).lower(), str(row.withheld_from_member).lower(),
                         row.withheld_reason or "", str(row.copy_available).lower()])
    return buffer.getvalue().encode("utf-8")


class _CellParagraph(Paragraph):
    """A paragraph in a table cell that keeps its line breaks for the width it was last wrapped to.

    A platypus Table wraps every cell when it measures its rows, again for each part it is split
    into across pages, and again when it draws the cell; a paragraph's line breaks depend only on
    its text, style and the available width, so wrapping a second time to the same width gives the
    same lines (and `split`, were a cell ever split, reads the lines of the last wrap anyway).
    """

    _wrapped_width: float | None = None

    def wrap(self, availWidth, availHeight):
        if availWidth == self._wrapped_width:
            return self.width, self.height
        size = super().wrap(availWidth, availHeight)
        self._wrapped_width = availWidth if availWidth >= _FUZZ else None
        return size


def list_table(rows: tuple[ListRow, ...], labels: dict[str, Any], language: str) -> Table:
    st = styles(BODY_SIZE)
    heads = labels["list"]["columns"]
    header = [_CellParagraph(text_xml(h), st.cell_bold) for h in
              (heads["number"], heads["document"], heads["category"], heads["pages"], heads["copy"])]
    data = [header]
    for row in rows:
        doc_lines = f"<b>{text_xml(row.title)}</b>"
        details = []
        if row.author:
            details.append(f"{text_xml(labels['list']['source'])}: {text_xml(row.author)}")
        details.append(f"{text_xml(labels['list']['date'])}: "
                       f"{text_xml(short_date(row.date, language) if row.date else labels['list']['no_date'])}")
        if row.removed:
            details.append(text_xml(labels["list"].get("removed_pages", "{n} page(s) removed by a person")
                                    .format(n=row.removed)))
        doc_lines += "<br/>" + "<br/>".join(details)
        pages_text = (f"{row.pages} {text_xml(labels['list']['pages_word'] if row.pages != 1 else labels['list']['page_word'])}"
                      f"<br/>{text_xml(row.bates_first)}")
        if row.bates_last != row.bates_first:
            pages_text += f"<br/>\u2013 {text_xml(row.bates_last)}"
        if not row.copy_available:
            copy_text = f"<b>{text_xml(labels['list']['withheld'])}</b>: {text_xml(row.withheld_reason or '')}"
        else:  # never "copy available on request" beside a copy that is enclosed
            copy_text = text_xml(labels["list"]["copy_enclosed" if row.enclosed else "copy_available"])
        category = labels["categories"].get(row.category, row.category)
        data.append([_CellParagraph(str(row.number), st.cell), _CellParagraph(doc_lines, st.cell),
                     _CellParagraph(text_xml(category), st.cell), _CellParagraph(pages_text, st.cell),
                     _CellParagraph(copy_text, st.cell)])
    if not rows:
        data.append([_CellParagraph("", st.cell), _CellParagraph(text_xml(labels["list"]["empty"]), st.cell),
                     _CellParagraph("", st.cell), _CellParagraph("", st.cell), _CellParagraph("", st.cell)])
    widths = [0.42 * inch, 1.93 * inch, 1.1 * inch, 2.05 * inch, 1.5 * inch]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.Color(0.45, 0.45, 0.45)),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.88, 0.88, 0.88)),
        ("LEFTPADDING", (0, 0), (-1, -1), 4), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]))
    return table
