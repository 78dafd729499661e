"""From a clerk's case folder to usable documents: walking the folder, overrides.toml, converting every
accepted file to a PDF with the text of each page (OCR lands here), the conversion cache, refusals.

Owns: reading the inbox (never altering a clerk's file) and `_rejected/`. Must not touch: the outbox,
the archive, classification decisions or PDF assembly.
"""
