"""The recipe: a case folder gathered into a snapshot, gated, written as a draft or sealed as a
submission, verified and rebuilt; and the clerk's status note.

Owns: the order of the stages and the release gate. Must not touch: file-system events, the
command line, or the internals of the lower rooms.
"""
