"""Everything decided about one document: category, privileged / withheld flags, identity, title, date,
with the rule that fired and its evidence; and the classification cache.

Owns: decisions and their reasons. Must not touch: files, PDFs or outputs.
"""
