"""PDF writing with pypdf: the IMR-organization packet, stamps, the sanitiser, inspection, incremental
draft updates and the front matter drawn with reportlab.

Owns: the bytes of the IMR packet. Must not touch: case folders, the manifest, mailing wording.
"""
