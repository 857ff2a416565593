"""Resource leases in PostgreSQL, shared by workers on several hosts. Store adapter.

The same contract as :class:`~warden.store.leases.SQLiteLeases`: one holder per resource,
expiry, and a fencing token that grows with each new holder. A grant is one statement (an
upsert that only overwrites an expired lease or the holder's own), so two workers racing
for a resource cannot both win.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from warden.domain.errors import TemporaryError
from warden.ports import Lease

if TYPE_CHECKING:
    from collections.abc import Iterator

DDL = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE IF NOT EXISTS {s}.leases ("
    " resource TEXT PRIMARY KEY, holder TEXT NOT NULL, token BIGINT NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL)",
)
ACQUIRE = (
    "INSERT INTO {s}.leases AS l (resource, holder, token, expires_at) VALUES (%s, %s, 1, %s)"
    " ON CONFLICT (resource) DO UPDATE SET"
    " token = CASE WHEN l.holder = EXCLUDED.holder THEN l.token ELSE l.token + 1 END,"
    " holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
    " WHERE l.holder = EXCLUDED.holder OR l.expires_at <= %s"
    " RETURNING token"
)
_RELEASE = "DELETE FROM {s}.leases WHERE resource = %s AND holder = %s"
_HOLDER = "SELECT holder, token, expires_at FROM {s}.leases WHERE resource = %s"


def server_of(dsn: str) -> str:
    """The server a DSN points at, without user or password (for messages and comparison).

    Raises:
        psycopg.ProgrammingError: the DSN does not parse.
    """
    params = conninfo_to_dict(dsn)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or '(default)'}"


class PostgresLeases:
    """Leases in a PostgreSQL schema (the event store's own, by default)."""

    def __init__(self, dsn: str, schema: str = "warden", *, connect_timeout: float = 10.0) -> None:
        """Connect and create the table when it is missing.

        Raises:
            TemporaryError: the server cannot be reached within ``connect_timeout``.
        """
        ident = sql.Identifier(schema)
        self.schema = schema
        self.server = server_of(dsn)
        self._q = {
            name: sql.SQL(text).format(s=ident).as_string()
            for name, text in (("acquire", ACQUIRE), ("release", _RELEASE), ("holder", _HOLDER))
        }
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(
                dsn, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            )
            for statement in DDL:
                self._db.execute(sql.SQL(statement).format(s=ident))
        except psycopg.OperationalError as exc:
            raise TemporaryError(f"cannot reach PostgreSQL for leases: {exc}") from exc

    def acquire(self, resource: str, holder: str, ttl_s: float, now: float) -> Lease | None:
        """Take or renew the lease on ``resource``; None while another holder has it."""
        with self._cursor() as db:
            row = db.execute(self._q["acquire"], (resource, holder, now + ttl_s, now)).fetchone()
        if row is None:
            return None
        return Lease(resource, holder, int(row[0]), now + ttl_s)

    def release(self, resource: str, holder: str) -> None:
        """Give the lease back, if ``holder`` still has it."""
        with self._cursor() as db:
            db.execute(self._q["release"], (resource, holder))

    def holder(self, resource: str, now: float) -> Lease | None:
        """Who holds ``resource`` now, if anyone."""
        with self._cursor() as db:
            row = db.execute(self._q["holder"], (resource,)).fetchone()
        if row is None or float(row[2]) <= now:
            return None
        return Lease(resource, str(row[0]), int(row[1]), float(row[2]))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection, to one thread at a time; its failures become TemporaryError."""
        with self._lock:
            try:
                yield self._db
            except psycopg.OperationalError as exc:
                raise TemporaryError(f"PostgreSQL leases failed: {exc}") from exc
