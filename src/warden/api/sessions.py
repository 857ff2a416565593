"""Console sessions: a login by personal token gives a cookie and a CSRF token. Edge (API).

Only the session id travels in the cookie (HttpOnly, SameSite=Strict); the server keeps
who it belongs to and which token hash it was opened with, so revoking the user (or
re-issuing their token) ends every session of theirs at the next request.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "warden_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
TTL = timedelta(hours=8)
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    """One console login."""

    id: str
    user: str
    token_hash: str
    csrf: str
    expires_at: datetime

    def csrf_ok(self, given: str) -> bool:
        """Whether ``given`` is this session's CSRF token (compared in constant time).

        Compared as bytes: a header may carry any character, and comparing non-ASCII
        text raises instead of answering no.
        """
        return bool(given) and hmac.compare_digest(given.encode("utf-8"), self.csrf.encode())


class Sessions:
    """The open sessions of one server process, in memory (a restart logs everyone out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Session] = {}

    def open(self, user: str, token_hash: str, now: datetime) -> Session:
        """Start a session for ``user``, who logged in with the token of ``token_hash``."""
        session = Session(
            secrets.token_urlsafe(32), user, token_hash, secrets.token_urlsafe(32), now + TTL
        )
        with self._lock:
            if len(self._open) >= MAX_SESSIONS:
                self._expire(now)
            if len(self._open) >= MAX_SESSIONS:
                oldest = min(self._open.values(), key=lambda s: s.expires_at)
                del self._open[oldest.id]
            self._open[session.id] = session
        return session

    def get(self, session_id: str, now: datetime) -> Session | None:
        """The live session of that id, if any."""
        with self._lock:
            found = self._open.get(session_id)
            if found is not None and found.expires_at <= now:
                del self._open[session_id]
                return None
            return found

    def close(self, session_id: str) -> None:
        """End a session (logout)."""
        with self._lock:
            self._open.pop(session_id, None)

    def _expire(self, now: datetime) -> None:
        for key in [k for k, s in self._open.items() if s.expires_at <= now]:
            del self._open[key]
