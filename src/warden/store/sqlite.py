"""SQLite event store, the embedded default: WAL, every commit flushed. Store adapter.

One file holds the event log, the quarantine of refused input, the positions of
projections, the snapshots of long streams and the resource leases; ``append_batch``
commits many appends at once for high-volume ingest, ``append_leased`` takes leases and
appends in one transaction. Several processes may share the file (the CLI appends
approvals and kill-switch events while the runtime runs): SQLite serialises writers, and
global positions are assigned inside the write transaction, so they commit in order.
Reads go through a connection of their own: in WAL mode they never wait for a writer's
disk flush, and each sees a committed prefix of the log. Writers of one handle share their
disk flushes (group flush): the write lock is held for a commit, never for its ``fsync``,
and one ``fsync`` of the log file makes every commit before it durable; a commit made
while a flush is in progress is synced beside it, not after it. A writer returns once its
commit is on disk, as with ``synchronous=FULL``; a reader may see a commit of another
thread a moment before it is, so whatever acts on what it read flushes first
(:meth:`SQLiteEventStore.flush`). The log is copied into the database (checkpointed) on
a connection of its own, outside the write lock, by a writer past a mark.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConcurrencyConflict, TemporaryError
from warden.ports import QuarantinedInput
from warden.store.damage import names_damage
from warden.store.leases import SCHEMA as LEASES_SCHEMA
from warden.store.leases import SQLiteLeases, take
from warden.store.private import private_dir, private_file
from warden.store.records import decode_record, decode_rows, encode_record, placed_event
from warden.store.snapshots import Snapshot, check_version, decode_state, encode_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from warden.domain.events import Event
    from warden.ports import LeaseClaim, Leases

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tracking (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (stream, version)
);
"""


def _event_from_row(row: tuple[int, str, str]) -> Event:
    return decode_record(*row)


_record = encode_record
_CHUNK = 500  # ids per IN (...) query, well below SQLite's limit on parameters
# Disk flushes of one handle in progress at once: a commit made while one is in progress
# is synced beside it, not after it; more would only queue in the disk.
_FLUSHES_AT_ONCE = 2
# Commits between two copies of the log file into the database (SQLite's own default is
# 1,000 pages of log, a few hundred commits of this store).
_CHECKPOINT_EVERY = 200


_COLUMNS = 7  # parameters of one row of ``_insert_rows``
# Rows of one multi-row INSERT, a power of two: the few statement texts there are stay in
# the connection's statement cache (preparing one costs some 2 us a row, about what
# inserting it does). 128 rows are 896 parameters, within the 999 SQLite allowed before
# 3.32; larger statements took more instructions a row, not fewer.
_MOST_ROWS = 128


def _rows_at_once(left: int) -> int:
    """The rows the next INSERT takes of ``left``: the largest power of two up to them."""
    return min(_MOST_ROWS, 1 << (left.bit_length() - 1))


@functools.cache
def _insert_rows(rows: int) -> str:
    """INSERT of ``rows`` events; a conflict stops it, and the rows before stay (OR FAIL).

    With ABORT, SQLite keeps a statement journal to undo the rows before: at a few hundred
    rows it spilled to a temporary file, some 1 to 2 us of system time an event. The
    caller rolls the transaction back on any error but a stored id.
    """
    values = ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT OR FAIL INTO events (position, id, stream, version, type, time, record)"
        f" VALUES {values}"
    )


class _LeaseBusy(Exception):
    """Another holder has a lease an append needs: the transaction rolls back."""


@names_damage
class SQLiteEventStore:
    """Event store in one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        *,
        lock_timeout_s: float = 30.0,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """Open (and create) the store file.

        Args:
            path: the database file; its directory is created when missing.
            lock_timeout_s: how long a write waits for another writer (another process
                or handle on the file) before it fails with :class:`TemporaryError`.
            before_commit: called inside every write transaction just before COMMIT
                (fault and delay injection for tests); an exception rolls it back.
        """
        self.path = Path(path)
        self._before_commit = before_commit
        self._lock_timeout_s = lock_timeout_s
        in_memory = str(path) == ":memory:"
        if not in_memory:  # a file named ":memory:" would be a surprise
            private_dir(self.path.parent)
            # SQLite gives the -wal and -shm files the mode of the database file.
            for name in (self.path.name, f"{self.path.name}-wal", f"{self.path.name}-shm"):
                if name == self.path.name or self.path.with_name(name).exists():
                    private_file(self.path.with_name(name))
        self._lock = threading.RLock()
        self._appended = 0  # append transactions committed through this handle
        # The thread inside ``one_flush`` (its commits wait for one flush).
        self._deferring: int | None = None
        # Group flush: the write lock covers a commit, never its disk flush. Commits are
        # numbered; one ``fsync`` of the log file, made outside the lock, makes every
        # commit numbered before it began durable, and a writer whose commit a flush
        # already covered has none left to make.
        self._committed = 0  # commits made through this handle (under ``_lock``)
        self._flushed = 0  # of those, the ones known to be on disk (under ``_flushes``)
        # The commit number each flush in progress covers (under ``_flushes``).
        self._flushing: list[int] = []
        self._flushes = threading.Condition(threading.Lock())
        self._in_memory = in_memory
        self._db = self._connect()
        self._db.executescript(SCHEMA + LEASES_SCHEMA)
        # A commit on the write connection no longer waits for the disk: ``_flush`` does.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Nor does it copy the log into the database (SQLite's automatic checkpoint, run
        # in the commit that crosses its mark while this handle's write lock is held, made
        # every writer of the handle wait several ms): ``_checkpoint_if_due`` does.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointed = 0  # the commit number at the last checkpoint
        self._checkpointing = threading.Lock()
        self._checkpointer: sqlite3.Connection | None = None  # opened on first use
        # Reads take their own connection and lock: a reader never waits for a commit. An
        # in-memory database exists only on its one connection, so reads share it.
        self._read_lock: threading.Lock | threading.RLock = threading.Lock()
        self._reader = self._connect()
        if in_memory:
            self._reader.close()
            self._read_lock, self._reader = self._lock, self._db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            str(self.path),
            timeout=self._lock_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA busy_timeout={round(self._lock_timeout_s * 1000)}")
        return db

    def read_rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of ``query`` on the read connection (the leases in this file use it)."""
        return self._read(query, params)

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of ``query`` (fetched at once: no read transaction stays open)."""
        with self._read_lock:
            return self._reader.execute(query, params).fetchall()

    @contextmanager
    def write_transaction(self, *, flush: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction on this store's own connection, for the leases in its file.

        Writers of one process then wait for each other on a lock of the process, never in
        SQLite's busy handler, which sleeps in steps of up to 100 ms. ``flush=False``
        commits without a disk flush (the next durable commit carries it). Counts in no
        :meth:`appended`, and ``before_commit`` is not called: nothing is appended.
        """
        with self._write(flush=flush, hooked=False) as db:
            yield db

    @contextmanager
    def _write(
        self, *, appends: bool = False, flush: bool = True, hooked: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """A write transaction; with ``appends``, its commit counts in :meth:`appended`."""
        with self._lock:
            flush = flush and self._deferring != threading.get_ident()
            with self._transaction(hooked=hooked):
                yield self._db
            self._committed += 1
            mine = self._committed
            if appends:  # after COMMIT: a reader that sees the new count sees the events
                self._appended += 1
        # Durable before the caller goes on, flushed outside the lock: other writers commit
        # meanwhile, and one flush covers them all.
        if flush:
            self._flush(mine)
            self._checkpoint_if_due(mine, _CHECKPOINT_EVERY)

    @contextmanager
    def one_flush(self) -> Iterator[None]:
        """The calling thread's commits inside share one disk flush, made on leaving.

        The contract is :meth:`warden.ports.GroupedFlush.one_flush`: other threads' commits
        stay durable each, and :meth:`flush` makes what was committed durable at once.
        """
        with self._lock:
            # Nested, the outer one flushes; while another thread is inside, this one's
            # commits stay durable each.
            mine = self._deferring is None
            if mine:
                self._deferring = threading.get_ident()
        try:
            yield
        finally:
            if mine:
                with self._lock:
                    self._deferring = None
                self.flush()

    def flush(self) -> None:
        """Make every commit made through this handle durable (one ``fsync``, if any is due).

        In WAL mode a commit appends to the ``-wal`` file; the write connection commits
        with ``synchronous=NORMAL`` (atomic, seen by every reader at once) and a commit is
        durable once that file is synced, here or by another writer's flush after it.
        """
        self._flush(self._committed)
        # A round's flush leaves the checkpoint to the writers that wait for their own
        # flush anyway, unless none came by for long.
        self._checkpoint_if_due(self._committed, 4 * _CHECKPOINT_EVERY)

    def _checkpoint_if_due(self, upto: int, every: int) -> None:
        """Copy the log file into the database once ``every`` commits went by since the last.

        A passive checkpoint on a connection of its own, outside the write lock: it waits
        for no writer, and no writer waits for it (another writer that comes by meanwhile
        leaves it to this one). The log file restarts at the next write after it.
        """
        if self._in_memory or upto - self._checkpointed < every:
            return
        if not self._checkpointing.acquire(blocking=False):
            return
        try:
            mark = self._committed
            if mark - self._checkpointed < every:
                return
            if self._checkpointer is None:
                self._checkpointer = self._connect()
            # Another process checkpointing now: the next mark tries again.
            with contextlib.suppress(sqlite3.OperationalError):
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self._checkpointed = mark
        finally:
            self._checkpointing.release()

    def _flush(self, upto: int) -> None:
        """Sync the log file unless a flush since commit number ``upto`` already did.

        A writer whose commit a flush in progress covers waits for that flush, and then
        has nothing left to do: concurrent writers share flushes. One that no flush in
        progress covers (they began before its commit) syncs at once beside them, rather
        than waiting out a flush that cannot make its commit durable; at most
        ``_FLUSHES_AT_ONCE`` are in progress, and a later writer waits for one to end.
        """
        with self._flushes:
            while self._flushed < upto and (
                max(self._flushing, default=0) >= upto or len(self._flushing) >= _FLUSHES_AT_ONCE
            ):
                self._flushes.wait()
            if self._flushed >= upto:
                return
            # Every commit counted now has written its frames; the sync covers them all.
            covered = self._committed
            self._flushing.append(covered)
        synced = False
        try:
            if not self._in_memory:
                wal = self.path.with_name(f"{self.path.name}-wal")
                with contextlib.suppress(FileNotFoundError):  # checkpointed: on disk
                    fd = os.open(wal, os.O_RDWR)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            synced = True
        finally:
            with self._flushes:
                self._flushing.remove(covered)
                if synced:
                    # Flushes may end out of order: each makes what it covered durable.
                    self._flushed = max(self._flushed, covered)
                self._flushes.notify_all()

    @contextmanager
    def _transaction(self, *, hooked: bool) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT on the write connection; the caller holds the lock."""
        try:
            self._begin()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            raise TemporaryError(
                f"the event log {self.path} stayed locked by another writer for"
                f" {self._lock_timeout_s:g} s; retry, or look for a stuck process",
                delay=1.0,
            ) from exc
        try:
            yield
            if hooked and self._before_commit is not None:
                self._before_commit()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            # A full disk or a read-only file can fail the COMMIT itself; SQLite may
            # or may not have rolled back, and a transaction left open would refuse
            # every later write.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise TemporaryError(
                f"the event log {self.path} cannot be written: {exc}; free space or"
                " make the state directory writable, then retry",
                delay=1.0,
            ) from exc

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting for another process's writer in steps of 0.2 to 2 ms.

        SQLite's busy handler sleeps in steps that grow to 100 ms: while one process
        commits back to back (ingest's group commit), another's writes (the loop's
        incidents) would wait out its whole burst. Polled in short steps, a waiting
        writer takes the file between two of its commits. Gives up after the lock
        timeout, as the busy handler did.
        """
        db = self._db
        db.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + self._lock_timeout_s
            pause = 0.0002
            while True:
                try:
                    db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        finally:
            db.execute(f"PRAGMA busy_timeout={round(self._lock_timeout_s * 1000)}")

    def append(
        self, stream: str, events: Sequence[Event], expected_version: int | None = None
    ) -> list[Event]:
        """Append to ``stream``; idempotent on event id; optimistic on ``expected_version``."""
        if not events:
            return []
        with self._write(appends=True) as db:
            return self._append_in(db, stream, events, expected_version)

    def appended(self) -> int:
        """How many appends were committed through this handle (:class:`AppendCounter`)."""
        return self._appended

    def shares_leases(self, leases: Leases) -> bool:
        """Whether ``leases`` are kept in this file (then ``append_leased`` takes them)."""
        return isinstance(leases, SQLiteLeases) and (
            Path(leases.path).resolve() == self.path.resolve()
        )

    def append_leased(
        self,
        stream: str,
        events: Sequence[Event],
        expected_version: int | None,
        claim: LeaseClaim,
    ) -> list[Event] | None:
        """Take every lease of ``claim`` and append ``events`` in one transaction.

        The contract is :meth:`warden.ports.LeasedAppender.append_leased`.
        """
        try:
            with self._write(appends=True) as db:
                for resource in claim.resources:
                    if take(db, resource, claim.holder, claim.ttl_s, claim.now) is None:
                        raise _LeaseBusy(resource)
                return self._append_in(db, stream, events, expected_version)
        except _LeaseBusy:
            return None

    @staticmethod
    def _append_in(
        db: sqlite3.Connection, stream: str, events: Sequence[Event], expected_version: int | None
    ) -> list[Event]:
        """``append`` inside the caller's write transaction."""
        if not events:
            return []
        ids = [e.id for e in events]
        marks = ",".join("?" * len(ids))
        known = {
            row[0]: row
            for row in db.execute(
                f"SELECT id, position, stream FROM events WHERE id IN ({marks})", ids
            )
        }
        fresh = [e for e in events if e.id not in known]
        (version,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE stream = ?", (stream,)
        ).fetchone()
        if fresh and expected_version is not None and version != expected_version:
            raise ConcurrencyConflict(stream, expected_version, version)
        stored: dict[str, Event] = {}
        for event in fresh:
            cursor = db.execute(
                "INSERT INTO events (id, stream, version, type, time, record)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (event.id, stream, version, event.type, event.time, _record(event)),
            )
            version += 1
            position = cursor.lastrowid
            assert position is not None
            stored[event.id] = placed_event(event, stream, position)
        if len(stored) == len(ids):
            return [stored[i] for i in ids]
        rows = db.execute(
            f"SELECT position, stream, record FROM events WHERE id IN ({marks})", ids
        ).fetchall()
        by_id = {e.id: e for e in map(_event_from_row, rows)}
        return [stored.get(i) or by_id[i] for i in ids]

    def read_stream(self, stream: str, from_version: int = 0) -> list[Event]:
        """Events of one stream, in order, from a stream version (0-based)."""
        rows = self._read(
            "SELECT position, stream, record FROM events WHERE stream = ? AND version >= ?"
            " ORDER BY version",
            (stream, from_version),
        )
        return decode_rows(rows)

    def read_all(self, after_position: int = 0, limit: int | None = None) -> list[Event]:
        """Events of every stream after a global position, in order."""
        rows = self._read(
            "SELECT position, stream, record FROM events WHERE position > ?"
            " ORDER BY position LIMIT ?",
            (after_position, -1 if limit is None else limit),
        )
        return decode_rows(rows)

    def stream_version(self, stream: str) -> int:
        """Number of events in ``stream``."""
        ((count,),) = self._read("SELECT COUNT(*) FROM events WHERE stream = ?", (stream,))
        return int(count)

    def head(self) -> int:
        """The highest global position stored (0 when empty)."""
        ((top,),) = self._read("SELECT COALESCE(MAX(position), 0) FROM events")
        return int(top)

    def streams(self, prefix: str = "") -> list[str]:
        """Names of the streams that start with ``prefix``, in order of first event."""
        # Not LIKE: it ignores ASCII case and treats "_" and "%" as wildcards.
        rows = self._read(
            "SELECT stream, MIN(position) AS first FROM events"
            " WHERE substr(stream, 1, ?) = ? GROUP BY stream ORDER BY first",
            (len(prefix), prefix),
        )
        return [r[0] for r in rows]

    def quarantine(self, source: str, reason: str, payload: str, received_at: str) -> int:
        """Keep refused input with its reason; returns its quarantine id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO quarantine (received_at, source, reason, payload) VALUES (?, ?, ?, ?)",
                (received_at, source, reason, payload),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def quarantined(self) -> list[QuarantinedInput]:
        """Everything in quarantine, oldest first."""
        rows = self._read(
            "SELECT id, received_at, source, reason, payload FROM quarantine ORDER BY id"
        )
        return [QuarantinedInput(*r) for r in rows]

    def tracking(self, name: str) -> int:
        """The position a named projection has processed up to."""
        rows = self._read("SELECT position FROM tracking WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def set_tracking(self, name: str, position: int) -> None:
        """Record that a named projection processed up to ``position``."""
        with self._write() as db:
            db.execute(
                "INSERT INTO tracking (name, position) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

    def append_batch(
        self, items: Sequence[tuple[str, Sequence[Event]]], *, new_ids: set[str] | None = None
    ) -> list[list[Event]]:
        """Append many ``(stream, events)`` items in one transaction, all or nothing.

        The contract, ``new_ids`` included, is
        :meth:`BatchAppender.append_batch <warden.store.group_commit.BatchAppender.append_batch>`.
        """
        # The first event of each id in batch order (later ones repeat it), and its stream.
        # Two flat collections, not a tuple per event: fewer objects for the cyclic GC.
        firsts: dict[str, Event] = {}
        streams: list[str] = []
        for stream, events in items:
            for event in events:
                if event.id not in firsts:
                    firsts[event.id] = event
                    streams.append(stream)
        if not firsts:
            return [[] for _ in items]
        # Only the reads and writes hold the lock; encoding and decoding happen outside it.
        batch = list(firsts.values())
        records = [_record(event) for event in batch]
        with self._write(appends=True) as db:
            first = self._last_position(db)
            versions = self._next_versions(db, set(streams))
            # Ingest's ids are new but for a sender's retry: every event is inserted as new,
            # and only once one of them was stored already (its insert failed) are the ids
            # of the rest looked up, rather than every id of every batch.
            try:
                self._insert(db, batch, streams, records, {}, first, versions)
                known: dict[str, tuple[int, str, str]] = {}
            except sqlite3.IntegrityError:
                # The rows before the one that failed stay; AUTOINCREMENT did not count them.
                done = self._last_position(db) - first
                if done:
                    db.execute(
                        "UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'", (first + done,)
                    )
                known = self._stored(db, list(firsts)[done:])
                rest = streams[done:]
                versions = self._next_versions(db, set(rest))
                self._insert(db, batch[done:], rest, records[done:], known, first + done, versions)
        # The new events take the positions after ``first`` in the order they were inserted.
        if known:
            stored: dict[str, Event] = {}
            position = first
            for (event_id, event), stream in zip(firsts.items(), streams, strict=True):
                row = known.get(event_id)
                if row is None:
                    position += 1
                    stored[event_id] = placed_event(event, stream, position)
                    if new_ids is not None:
                        new_ids.add(event_id)
                else:
                    stored[event_id] = _event_from_row(row)
        else:  # every one new: no loop in Python
            positions = range(first + 1, first + 1 + len(firsts))
            placed = map(placed_event, batch, streams, positions)
            stored = dict(zip(firsts, placed, strict=True))
            if new_ids is not None:
                new_ids.update(firsts)
        # An item of one event (the group committer's) skips a comprehension of its own.
        return [
            [stored[events[0].id]] if len(events) == 1 else [stored[e.id] for e in events]
            for _, events in items
        ]

    @staticmethod
    def _stored(db: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[int, str, str]]:
        """The stored row (position, stream, record) of each of ``ids`` already in the log."""
        return {
            row[3]: row[:3]
            for start in range(0, len(ids), _CHUNK)
            for row in db.execute(
                "SELECT position, stream, record, id FROM events WHERE id IN"
                f" ({','.join('?' * len(ids[start : start + _CHUNK]))})",
                ids[start : start + _CHUNK],
            )
        }

    @staticmethod
    def _last_position(db: sqlite3.Connection) -> int:
        """The last position taken: held by an event, or by one rolled back or removed."""
        (last,) = db.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
            " COALESCE((SELECT MAX(position) FROM events), 0))"
        ).fetchone()
        return int(last)

    @staticmethod
    def _insert(
        db: sqlite3.Connection,
        events: list[Event],
        streams: list[str],
        records: list[str],
        known: dict[str, tuple[int, str, str]],
        first: int,
        versions: dict[str, int],
    ) -> None:
        """Insert the ``events`` not in ``known`` after position ``first``, in order.

        Raises:
            sqlite3.IntegrityError: an id stored already; the rows before it are in.
        """
        params: list[object] = []  # every row's parameters in one flat list, in order
        position = first
        for event, stream, record in zip(events, streams, records, strict=True):
            if known and event.id in known:
                continue
            position += 1
            version = versions[stream]
            versions[stream] = version + 1
            params += (position, event.id, stream, version, event.type, event.time, record)
        at = 0
        left = len(params) // _COLUMNS
        while left:
            rows = _rows_at_once(left)
            db.execute(_insert_rows(rows), params[at : at + rows * _COLUMNS])
            at += rows * _COLUMNS
            left -= rows

    @staticmethod
    def _next_versions(db: sqlite3.Connection, streams: set[str]) -> dict[str, int]:
        """The next version of each of ``streams``: one query per chunk, not per stream."""
        found: dict[str, int] = {}
        names = list(streams)
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            # ORDER BY ... LIMIT 1 reads one index entry per stream; MAX inside COALESCE
            # or GROUP BY would scan every version of the stream.
            found.update(
                db.execute(
                    f"WITH s(name) AS (VALUES {','.join(['(?)'] * len(chunk))})"
                    " SELECT name, COALESCE((SELECT version + 1 FROM events WHERE stream = name"
                    " ORDER BY version DESC LIMIT 1), 0) FROM s",
                    chunk,
                )
            )
        return found

    @staticmethod
    def _next_version(db: sqlite3.Connection, stream: str) -> int:
        (version,) = db.execute(
            "SELECT COALESCE(MAX(version) + 1, 0) FROM events WHERE stream = ?", (stream,)
        ).fetchone()
        return int(version)

    def save_snapshot(self, stream: str, version: int, state: Any) -> None:
        """Keep ``state`` as the fold of the first ``version`` events of ``stream``.

        Only the newest snapshot of a stream is kept; saving an older one is a no-op.

        Raises:
            ValidationError: ``state`` is not JSON, or the stream has fewer events.
        """
        text = encode_state(stream, version, state)
        with self._write() as db:
            check_version(stream, version, self._next_version(db, stream))
            db.execute(
                "INSERT INTO snapshots (stream, version, state) VALUES (?, ?, ?)"
                " ON CONFLICT (stream, version) DO UPDATE SET state = excluded.state",
                (stream, version, text),
            )
            db.execute(
                "DELETE FROM snapshots WHERE stream = ?"
                " AND version < (SELECT MAX(version) FROM snapshots WHERE stream = ?)",
                (stream, stream),
            )

    def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of ``stream``, or None."""
        rows = self._read(
            "SELECT version, state FROM snapshots WHERE stream = ? ORDER BY version DESC LIMIT 1",
            (stream,),
        )
        return Snapshot(stream, int(rows[0][0]), decode_state(rows[0][1])) if rows else None

    def release_quarantined(self, ids: Sequence[int]) -> int:
        """Remove quarantined items whose replay was accepted; returns how many went."""
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._write() as db:
            cursor = db.execute(f"DELETE FROM quarantine WHERE id IN ({marks})", list(ids))
        return cursor.rowcount

    def close(self) -> None:
        """Close the connections."""
        with self._lock, self._read_lock, self._checkpointing:
            self._db.close()
            self._reader.close()
            if self._checkpointer is not None:
                self._checkpointer.close()
