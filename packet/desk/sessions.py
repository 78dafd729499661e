"""Sign-in sessions, CSRF tokens and the failed-sign-in limiter, all in the desk's memory.

A session is a random token in an HttpOnly, SameSite=Strict cookie; it ends after `idle_minutes`
without a request (HIPAA 164.312(a)(2)(iii) automatic logoff) or at sign-out. Each session has its
own CSRF token, required on every form. Restarting the desk signs everyone out, by design.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from packet.desk.accounts import User

FAILED_WINDOW_SECONDS = 15 * 60


@dataclass
class Session:
    user: User
    csrf: str
    last_seen: float
    flashes: list[str] = field(default_factory=list)


class SessionStore:
    def __init__(self, idle_seconds: float, clock=time.monotonic):
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expire_locked()
            self._sessions[token] = Session(user, secrets.token_urlsafe(32), self._clock())
        return token

    def get(self, token: str | None) -> Session | None:
        """The live session of this token, touched; None when unknown or idle too long."""
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            now = self._clock()
            if now - session.last_seen > self.idle_seconds:
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def _expire_locked(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if now - s.last_seen > self.idle_seconds]:
            del self._sessions[token]


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), str(sent).encode())


class FailedLogins:
    """At most `limit` failed sign-ins per (name, address) in 15 minutes; then refused unread."""

    def __init__(self, limit: int, clock=time.monotonic):
        self.limit = limit
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        cutoff = self._clock() - FAILED_WINDOW_SECONDS
        while times and times[0] < cutoff:
            times.popleft()
        return times

    def blocked(self, name: str, address: str) -> bool:
        with self._lock:
            return len(self._recent((name.lower(), address))) >= self.limit

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            self._recent((name.lower(), address)).append(self._clock())

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name.lower(), address), None)
