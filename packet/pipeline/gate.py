"""The release gate (spec.md, "Lifecycle" step 2): what blocks sealing, as typed items with
stable codes, shared by drafts and sealing.

Owns: which facts about a gathered case block sealing, in plain language, with the document and
what would resolve each; which items a supervisor's `--override` may pass; the gate result with
overrides applied. The draft's review.json and _STATUS.txt list these items; `packet.pipeline.seal`
adds the final check (the built submission passes verify). Must not: read files.
"""

from __future__ import annotations

import datetime as dt

from packet.classify.rules import is_grievance_response, withheld_correspondence
from packet.model.case import CaseFacts
from packet.model.models import IDENTITY_MISMATCH, NEEDS_REVIEW, Document
from packet.records.register import GateItem, GateResult

# Another member's pages in a mailing are a breach: a blanket `--override` (given for some other
# item) must never release them. A person decides per file in overrides.toml instead
# (`exclude = "..."`, or `identity_confirmed = "..."` for a false positive).
# Correspondence a rule would withhold from the member is decided per file too (release_to_member or
# withhold_from_member), never by a blanket override.
NOT_OVERRIDABLE = frozenset({"case_toml", "no_documents", "verify", "identity_mismatch", "withheld_correspondence"})
# Items about files not yet usable: they block a seal, but a draft does not list them as things to
# fix (its status note lists those files in their own sections).
SEAL_ONLY = frozenset({"retrying", "waiting"})


def _item(code: str, problem: str, resolve: str = "", *, document: str | None = None, joint: str = ": ",
          pages: tuple[int, ...] = ()) -> GateItem:
    text = f"{problem}{joint}{resolve}" if resolve else problem
    return GateItem(code=code, text=text, document=document, pages=pages, resolve=resolve,
                    overridable=code not in NOT_OVERRIDABLE)


def document_items(facts: CaseFacts, documents: list[Document], *, supplement: bool = False) -> list[GateItem]:
    included = [d for d in documents if d.excluded is None]
    items: list[GateItem] = []
    if not included:
        items.append(_item("no_documents", "there are no documents to send yet"))
    for document in included:
        if document.category.value == NEEDS_REVIEW:
            items.append(_item(
                "needs_review", f'"{document.source}" needs a category',
                "move it into medical-records/, correspondence/ or plan-statements/, or set its category in "
                "overrides.toml", document=document.source))
    for document in included:
        if document.identity.value == IDENTITY_MISMATCH:
            items.append(_item(
                "identity_mismatch", f'"{document.source}" appears to name ANOTHER member '
                f"({document.identity.evidence or 'see the document'})",
                "remove the wrong pages, exclude the file in overrides.toml, or, if the pages are the member's "
                'after all, write identity_confirmed = "<why>" for it there (seal --override cannot pass this)',
                document=document.source, pages=tuple(document.other_person_pages)))
    for document in included:
        if withheld_correspondence(document):
            items.append(_item(
                "withheld_correspondence", f'"{document.source}" is correspondence with the member, but a rule '
                f"would withhold it from them ({document.withheld.evidence})",
                'a person decides: in overrides.toml write release_to_member = "<why>" for it, or '
                'withhold_from_member = "<why>" to confirm (seal --override cannot pass this)',
                document=document.source))
    # H&S 1374.30(n)(2): the plan's written response to the grievance is mandatory (not for
    # experimental disputes, which need no grievance first). A supplement adds to a packet that had it.
    if (not supplement and facts.dispute_type != "experimental"
            and included and not any(is_grievance_response(d) for d in included)):
        items.append(_item(
            "grievance_response_missing", "the plan's written grievance response (resolution letter) is not "
            "among the documents",
            "add it; if it is there but was not recognised, give it "
            'category = "correspondence" and title = "Grievance resolution letter" in overrides.toml'))
    return items


def representative_items(facts: CaseFacts) -> list[GateItem]:
    """A representative the letters copy ("cc") must be mailed their copy (domain.md section 2,
    issue 15 item 4): without an address that mailing cannot be made, so sealing waits for the
    address, or for a supervisor's `seal --override "<why>"` (e.g. the copy is handed over in
    person), which the manifest and the audit log record. The name stays out of the text (the
    board shows these items)."""
    rep = facts.representative
    if rep is None or rep.address:
        return []
    return [_item(
        "representative_no_address", "case.toml names a representative ([representative]) without an "
        'address: the letters copy them ("cc"), but their copy cannot be mailed',
        'add address = ["street and number", "city, CA zip"] under [representative] in case.toml, or remove '
        "[representative] if they are not to be copied; to seal without mailing their copy, a supervisor "
        'gives seal --override "<why>"')]


def overrides_items(problems: list[str]) -> list[GateItem]:
    """overrides.toml problems (already worded by packet.intake.folder)."""
    return [_item("overrides_toml", text) for text in problems]


def file_items(*, transient: list[str], waiting: list[str]) -> list[GateItem]:
    """Files that cannot be sealed yet: still being retried, or still being copied."""
    items = [_item("retrying", f'"{relpath}" could not be read yet and is being retried',
                   "wait for it, or remove it from the case folder", document=relpath, joint="; ")
             for relpath in sorted(transient)]
    items += [_item("waiting", f'"{relpath}" is still being copied', "wait for it", document=relpath, joint="; ")
              for relpath in waiting]
    return items


def case_toml_item(problems: list[str]) -> GateItem:
    return _item("case_toml", "case.toml is not valid: " + "; ".join(problems))


def verify_item(failure: str) -> GateItem:
    return _item("verify", "the built submission does not pass verify: " + failure)


def draft_items(items: tuple[GateItem, ...]) -> list[GateItem]:
    """The items a draft lists as things to fix before sealing."""
    return [item for item in items if item.code not in SEAL_ONLY]


def decide(case_id: str, now: dt.datetime, items: list[GateItem], override_reason: str | None) -> GateResult:
    """The gate's result: with a reason, every overridable item is passed (and recorded as such)."""
    marked = tuple(GateItem(code=i.code, text=i.text, document=i.document, pages=i.pages, resolve=i.resolve,
                            overridable=i.overridable, overridden=bool(override_reason) and i.overridable)
                   for i in items)
    return GateResult(case_id=case_id, checked_at=now.isoformat(), items=marked, override_reason=override_reason)
