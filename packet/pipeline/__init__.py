"""The recipe: a case folder gathered into a snapshot (gather), gated (gate), its pages numbered
once (numbering), written as a draft and status note (build, statusnote) or sealed as a submission (seal, submission), verified and
rebuilt from its archive (verify, rebuild).

Owns: the order of the stages and the release gate. Must not touch: file-system events, the
command line, or the internals of the lower rooms.
"""
