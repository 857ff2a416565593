"""Resource leases in SQLite: one holder per resource, with expiry and a fencing token. Store.

Two agents, incidents or workers never act on one resource at once: the executor holds a
lease on every target of a plan from its first step until the incident closes, renewing
it as it goes; a crashed holder's lease expires. Each grant to a new holder increases the
resource's fencing token, so a stale holder can tell it lost the lease.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from warden.ports import Lease
from warden.store.damage import names_damage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from warden.store.sqlite import SQLiteEventStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    resource TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
"""


def take(
    db: sqlite3.Connection, resource: str, holder: str, ttl_s: float, now: float
) -> Lease | None:
    """Take or renew the lease on ``resource`` inside the caller's write transaction.

    Returns None, writing nothing, while another holder has it. The event store calls
    this in the transaction of an append (:meth:`SQLiteEventStore.append_leased`).
    """
    row = db.execute(
        "SELECT holder, token, expires_at FROM leases WHERE resource = ?", (resource,)
    ).fetchone()
    if row is not None and row[0] != holder and row[2] > now:
        return None
    token = row[1] if row is not None and row[0] == holder else (row[1] + 1 if row else 1)
    db.execute(
        "INSERT INTO leases (resource, holder, token, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(resource) DO UPDATE SET holder = excluded.holder,"
        " token = excluded.token, expires_at = excluded.expires_at",
        (resource, holder, token, now + ttl_s),
    )
    return Lease(resource, holder, token, now + ttl_s)


@names_damage
class SQLiteLeases:
    """Leases in the same SQLite file as the event store.

    Given the event ``store`` of that file, the leases are kept through its own connection
    (:func:`warden.store.location.open_leases` does so): a lease taken or given back
    waits for the store's appends on a lock of this process, not in SQLite's busy handler
    on a second connection. Without it, they have a connection of their own.
    """

    def __init__(self, path: str | Path, *, store: SQLiteEventStore | None = None) -> None:
        self.path = path
        self._store = store
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if store is not None:
            if Path(path).resolve() != store.path.resolve():
                raise ValueError(f"leases in {path} cannot be kept by the store of {store.path}")
            return
        self._db = sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)

    @contextmanager
    def _transaction(self, *, flush: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed (rolled back on an exception)."""
        if self._store is not None:
            with self._store.write_transaction(flush=flush) as shared:
                yield shared
            return
        db = self._db
        assert db is not None
        with self._lock:
            if not flush:
                db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if not flush:
                    db.execute("PRAGMA synchronous=FULL")

    def acquire(self, resource: str, holder: str, ttl_s: float, now: float) -> Lease | None:
        """Take or renew the lease on ``resource``; None while another holder has it."""
        with self._transaction() as db:
            return take(db, resource, holder, ttl_s, now)  # nothing written when None

    def release(self, resource: str, holder: str) -> None:
        """Give the lease back, if ``holder`` still has it.

        Without a disk flush of its own (the next durable commit on the file carries it):
        a release lost to a power cut only leaves the lease to expire after its ttl,
        while the loop does not wait a flush for every incident that closes.
        """
        with self._transaction(flush=False) as db:
            db.execute("DELETE FROM leases WHERE resource = ? AND holder = ?", (resource, holder))

    def holder(self, resource: str, now: float) -> Lease | None:
        """Who holds ``resource`` now, if anyone."""
        query = "SELECT holder, token, expires_at FROM leases WHERE resource = ?"
        if self._store is not None:
            rows = self._store.read_rows(query, (resource,))
        else:
            assert self._db is not None
            with self._lock:
                rows = self._db.execute(query, (resource,)).fetchall()
        row = rows[0] if rows else None
        if row is None or row[2] <= now:
            return None
        return Lease(resource, row[0], row[1], row[2])

    def close(self) -> None:
        """Close the connection (kept through a store: the store closes it)."""
        if self._db is not None:
            with self._lock:
                self._db.close()
