"""Worker processes: fresh interpreters (never a fork) that parse untrusted input and render mailings.

Owns: starting, pooling, pinging and stopping workers and the protocol between them. Must not touch:
what a job does (jobs are named by module and function), case folders or outputs.
"""
