"""Everything decided about one document: category, privileged / withheld flags, identity, title, date,
with the rule that fired and its evidence; and the classification cache.

Modules: rules (the rule engine and `describe`), meaning (privilege and withholding read what a
document is, not what it mentions), identity (the page-level wrong-patient check), dates, titles,
patterns (compiled rules and their sound pre-check), text (how pages are read), cache.

Owns: decisions and their reasons. Must not touch: files, PDFs or outputs; nor log.
"""
