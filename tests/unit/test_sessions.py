"""Console sessions: opened by a login, found by id until they expire, CSRF compared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from warden.api.sessions import MAX_SESSIONS, TTL, Sessions

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_session_lives_until_it_expires_or_is_closed() -> None:
    sessions = Sessions()
    opened = sessions.open("alice", "hash", NOW)
    assert sessions.get(opened.id, NOW + TTL - timedelta(seconds=1)) == opened
    assert sessions.get(opened.id, NOW + TTL) is None
    again = sessions.open("alice", "hash", NOW)
    assert again.id != opened.id
    assert again.csrf != opened.csrf
    sessions.close(again.id)
    assert sessions.get(again.id, NOW) is None
    assert sessions.get("made-up", NOW) is None


@given(st.text(max_size=60))
@example("\u00e9")  # non-ASCII text once raised instead of answering no
def test_only_the_sessions_own_csrf_token_passes(given_token: str) -> None:
    session = Sessions().open("alice", "hash", NOW)
    assert session.csrf_ok(session.csrf)
    assert session.csrf_ok(given_token) == (given_token == session.csrf)
    assert not session.csrf_ok("")


def test_the_table_stays_bounded() -> None:
    sessions = Sessions()
    first = sessions.open("u", "h", NOW)
    for i in range(MAX_SESSIONS):
        sessions.open(f"u{i}", "h", NOW + timedelta(seconds=i + 1))
    assert sessions.get(first.id, NOW) is None  # the oldest made room
    assert len(sessions._open) == MAX_SESSIONS
