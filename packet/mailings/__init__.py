"""What the member and provider read: letter markup and templates, layout, taglines, DOCX, forms, the
IMR notice and copy sets.

Owns: mailing wording and layout. Must not touch: the IMR packet's pages, the inbox or sealing.
"""
