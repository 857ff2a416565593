"""Resource leases in SQLite: one holder per resource, with expiry and a fencing token. Store.

Two agents, incidents or workers never act on one resource at once: the executor holds a
lease on every target of a plan from its first step until the incident closes, renewing
it as it goes; a crashed holder's lease expires. Each grant to a new holder increases the
resource's fencing token, so a stale holder can tell it lost the lease.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING

from warden.ports import Lease
from warden.store.damage import names_damage

if TYPE_CHECKING:
    from pathlib import Path

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
    """Leases in the same SQLite file as the event store."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)

    def acquire(self, resource: str, holder: str, ttl_s: float, now: float) -> Lease | None:
        """Take or renew the lease on ``resource``; None while another holder has it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                lease = take(self._db, resource, holder, ttl_s, now)
                self._db.execute("COMMIT" if lease is not None else "ROLLBACK")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return lease

    def release(self, resource: str, holder: str) -> None:
        """Give the lease back, if ``holder`` still has it.

        Without a disk flush of its own (the next durable commit on the file carries it):
        a release lost to a power cut only leaves the lease to expire after its ttl,
        while the loop does not wait a flush for every incident that closes.
        """
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute(
                    "DELETE FROM leases WHERE resource = ? AND holder = ?", (resource, holder)
                )
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def holder(self, resource: str, now: float) -> Lease | None:
        """Who holds ``resource`` now, if anyone."""
        with self._lock:
            row = self._db.execute(
                "SELECT holder, token, expires_at FROM leases WHERE resource = ?", (resource,)
            ).fetchone()
        if row is None or row[2] <= now:
            return None
        return Lease(resource, row[0], row[1], row[2])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
