"""The release gate's document checks (spec.md, "Lifecycle" step 2), shared by drafts and sealing.

Owns: which facts about a case's documents block sealing, in plain language. The draft's
review.json and _STATUS.txt list these; `packet.pipeline.seal` adds the final check (the built submission
passes verify) and handles `--override`. Must not: read files.
"""

from __future__ import annotations

from dataclasses import dataclass

from packet.model.case import CaseFacts
from packet.model.models import IDENTITY_MISMATCH, NEEDS_REVIEW, Document


@dataclass(frozen=True)
class GateItem:
    code: str  # stable: needs_review, identity_mismatch, withheld_correspondence, grievance_response_missing,
              # no_documents
    text: str  # plain language for the clerk (never document text or another patient's data)


def document_items(facts: CaseFacts, documents: list[Document], *, supplement: bool = False) -> list[GateItem]:
    from packet.classify.rules import is_grievance_response, withheld_correspondence

    included = [d for d in documents if d.excluded is None]
    items: list[GateItem] = []
    if not included:
        items.append(GateItem("no_documents", "there are no documents to send yet"))
    for document in included:
        if document.category.value == NEEDS_REVIEW:
            items.append(GateItem(
                "needs_review", f'"{document.source}" needs a category: move it into medical-records/, '
                "correspondence/ or plan-statements/, or set its category in overrides.toml"))
    for document in included:
        if document.identity.value == IDENTITY_MISMATCH:
            items.append(GateItem(
                "identity_mismatch", f'"{document.source}" appears to name ANOTHER member '
                f"({document.identity.evidence or 'see the document'}): remove the wrong pages, exclude "
                'the file in overrides.toml, or, if the pages are the member\'s after all, write '
                'identity_confirmed = "<why>" for it there (seal --override cannot pass this)'))
    for document in included:
        if withheld_correspondence(document):
            items.append(GateItem(
                "withheld_correspondence", f'"{document.source}" is correspondence with the member, but a rule would '
                f"withhold it from them ({document.withheld.evidence}): a person decides. In overrides.toml write "
                'release_to_member = "<why>" for it, or withhold_from_member = "<why>" to confirm'))
    # H&S 1374.30(n)(2): the plan's written response to the grievance is mandatory (not for
    # experimental disputes, which need no grievance first). A supplement adds to a packet that had it.
    if (not supplement and facts.dispute_type != "experimental"
            and included and not any(is_grievance_response(d) for d in included)):
        items.append(GateItem(
            "grievance_response_missing", "the plan's written grievance response (resolution letter) is not "
            "among the documents: add it; if it is there but was not recognised, give it "
            'category = "correspondence" and title = "Grievance resolution letter" in overrides.toml'))
    return items
