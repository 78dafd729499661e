"""PDF writing with pypdf (the only room that writes packets with it): the IMR-organization packet,
stamps, the sanitiser, reading outputs back, incremental draft updates, the copy-set file, and the
front matter drawn with reportlab.

assemble (the entry point: `write_org_packet`, from a page list numbered by the recipe) -> builder (page plan, labels, determinism) ->
stamp (page rebuild, stamps, flattened fields) and geometry; sanitize (active content, the stream
bound, unreachable objects) and streams (how far a stream inflates); incremental (a draft as an
update of the previous one); copyset (the bytes of a copy set); inspect (`pdf_summary`, scans of
every object for active content and oversized streams); frontmatter (cover, index, dividers, stamp
operators); errors (`AssemblyError`).

Owns: the bytes of the IMR packet and of copy sets. Must not touch: case folders, the manifest,
mailing wording, or decisions (order, categories, privilege, Bates numbers come from the page list).
"""
