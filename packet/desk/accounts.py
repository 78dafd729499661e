"""Desk accounts: names, roles and argon2 password hashes in `state/desk/users.json`.

Roles (HIPAA 164.312(a) access control): a `clerk` decides review items; a `supervisor` also seals,
with an override reason where the gate fails; an `auditor` reads everything and changes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from filelock import FileLock

from packet.config import Config
from packet.errors import UsageError
from packet.fsutil import atomic_write_bytes, ensure_dir

ROLES = ("clerk", "supervisor", "auditor")
PERMISSIONS = {
    "clerk": frozenset({"read", "decide"}),
    "supervisor": frozenset({"read", "decide", "seal", "seal_override"}),
    "auditor": frozenset({"read"}),
}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 12

_hasher = PasswordHasher()
# Verifying against this keeps a sign-in with an unknown name as slow as one with a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


def users_file(config: Config) -> Path:
    return config.paths.state / "desk" / "users.json"


def _load(config: Config) -> dict[str, dict]:
    path = users_file(config)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("users", {}) if isinstance(data, dict) else {}


def _save(config: Config, users: dict[str, dict]) -> None:
    path = users_file(config)
    ensure_dir(path.parent)
    atomic_write_bytes(path, json.dumps({"users": users}, indent=2, sort_keys=True).encode() + b"\n")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise UsageError(f"{name!r} is not a usable user name: letters, digits, '.', '_', '@', '-', up to 64")
    return name


def add_user(config: Config, name: str, role: str, password: str) -> User:
    """Create or reset an account (the password is stored only as an argon2 hash)."""
    check_name(name)
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password must have at least {MIN_PASSWORD} characters")
    ensure_dir(users_file(config).parent)
    with FileLock(str(users_file(config)) + ".lock", timeout=10, mode=0o660):
        users = _load(config)
        users[name] = {"role": role, "hash": _hasher.hash(password)}
        _save(config, users)
    return User(name, role)


def remove_user(config: Config, name: str) -> bool:
    with FileLock(str(users_file(config)) + ".lock", timeout=10, mode=0o660):
        users = _load(config)
        found = users.pop(name, None) is not None
        if found:
            _save(config, users)
    return found


def list_users(config: Config) -> list[User]:
    return [User(name, entry.get("role", "")) for name, entry in sorted(_load(config).items())]


def authenticate(config: Config, name: str, password: str) -> User | None:
    """The account if the password is right, else None (same work either way)."""
    entry = _load(config).get(name) if NAME_RE.fullmatch(name or "") else None
    stored = entry.get("hash", _DUMMY_HASH) if entry else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if not entry or entry.get("role") not in ROLES:
        return None
    return User(name, entry["role"])


def proxy_user(config: Config, name: str) -> User | None:
    """A user named by a trusted reverse proxy: the role comes from [web] proxy_roles, else a local
    account of that name; unknown names get nothing."""
    if not NAME_RE.fullmatch(name or ""):
        return None
    for pair in config.web.proxy_roles:
        who, _, role = pair.partition("=")
        if who == name:
            return User(name, role)
    entry = _load(config).get(name)
    if entry and entry.get("role") in ROLES:
        return User(name, entry["role"])
    return None
