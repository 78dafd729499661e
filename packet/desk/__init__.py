"""The review desk: people decide in a browser what the service cannot (`imr-packet serve`).

Owns: desk accounts and roles, sign-in sessions, the web pages, and turning a person's decision into
an entry of the case's `overrides.toml` plus an audit event. Must not touch: how documents are
classified or built (a decision is an override the watcher rebuilds from, exactly as if a clerk had
edited the file), or any file outside the configured inbox, outbox and state.
"""
