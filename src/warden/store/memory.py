"""In-memory event store and leases, for tests and simulation. Store adapter.

They pass the same contract suites as SQLite and PostgreSQL: handles opened on one
:class:`MemoryLog` (or :class:`LeaseTable`) share it as connections share a database
file; a log keeps its lease table (:attr:`MemoryLog.leases`) as a file keeps its leases.
Appends and reads cost O(events appended or read), never a scan of the log: events
are kept in a list indexed by position, per stream and by id. One writer at a time holds
the log (``before_commit`` runs while it does), so positions commit in order; readers
never wait for a writer, only for the moment its events are added.

Events are stored as the other backends store them: encoded (so what is not JSON is
refused the same way) and decoded into an event of their own, which every reader shares.
Events are frozen; treat their ``data`` as read-only too.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConcurrencyConflict, TemporaryError
from warden.ports import Lease, LeaseClaim, QuarantinedInput, Snapshot
from warden.store.records import decode_record, encode_record
from warden.store.snapshots import check_version, decode_state, encode_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from warden.domain.events import Event
    from warden.ports import Leases


class MemoryLog:
    """What every :class:`MemoryEventStore` opened on it shares: the log and its tables."""

    def __init__(self) -> None:
        # Held by one writer from its first read to its commit, with a timeout.
        self.writing = threading.Lock()
        # Held briefly: while a commit adds its rows, and while a reader copies some out.
        self.rows = threading.Lock()
        self.events: list[Event] = []  # events[p - 1] is at global position p
        self.by_id: dict[str, Event] = {}
        self.streams: dict[str, list[Event]] = {}  # insertion order: order of first event
        self.quarantine: dict[int, QuarantinedInput] = {}
        self.last_quarantine_id = 0
        self.tracking: dict[str, int] = {}
        self.snapshots: dict[str, tuple[int, str]] = {}  # stream -> (version, JSON text)
        self.leases = LeaseTable()  # as a database file holds its leases beside the log


class MemoryEventStore:
    """An event store in memory: every ``EventStore`` method, batches and snapshots."""

    def __init__(
        self,
        log: MemoryLog | None = None,
        *,
        lock_timeout_s: float = 30.0,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """Open a handle on ``log`` (a new, empty one by default).

        Args:
            log: the log to share with other handles (another store's :attr:`log`).
            lock_timeout_s: how long a write waits for another writer before it fails
                with :class:`TemporaryError`.
            before_commit: called by every write just before it commits (fault and delay
                injection for tests); an exception leaves the log as it was.
        """
        self.log = log if log is not None else MemoryLog()
        self._lock_timeout_s = lock_timeout_s
        self._before_commit = before_commit

    @contextmanager
    def _writing(self) -> Iterator[MemoryLog]:
        log = self.log
        if not log.writing.acquire(timeout=self._lock_timeout_s):
            raise TemporaryError(
                f"the in-memory event log stayed locked by another writer for"
                f" {self._lock_timeout_s:g} s; retry, or look for a stuck writer",
                delay=1.0,
            )
        try:
            yield log
        finally:
            log.writing.release()

    def _commit(self, log: MemoryLog, placed: Sequence[Event]) -> None:
        """Run the commit hook, then add ``placed`` (their positions follow the head)."""
        if self._before_commit is not None:
            self._before_commit()
        with log.rows:
            for event in placed:
                log.events.append(event)
                log.by_id[event.id] = event
                stream = log.streams.get(event.stream)
                if stream is None:
                    log.streams[event.stream] = [event]
                else:
                    stream.append(event)

    def append(
        self, stream: str, events: Sequence[Event], expected_version: int | None = None
    ) -> list[Event]:
        """Append to ``stream``; idempotent on event id; optimistic on ``expected_version``."""
        if not events:
            return []
        records = {e.id: encode_record(e) for e in reversed(events)}  # the first of an id wins
        with self._writing() as log:
            return self._append_in(log, stream, events, expected_version, records)

    def shares_leases(self, leases: Leases) -> bool:
        """Whether ``leases`` are this log's (then ``append_leased`` takes them)."""
        return isinstance(leases, MemoryLeases) and leases.table is self.log.leases

    def append_leased(
        self,
        stream: str,
        events: Sequence[Event],
        expected_version: int | None,
        claim: LeaseClaim,
    ) -> list[Event] | None:
        """Take every lease of ``claim`` and append ``events``, all or nothing.

        The contract is :meth:`warden.ports.LeasedAppender.append_leased`.
        """
        records = {e.id: encode_record(e) for e in reversed(events)}
        with self._writing() as log, log.leases.lock:
            table = log.leases.leases
            if any(_busy(table.get(r), claim.holder, claim.now) for r in claim.resources):
                return None
            # The version check and the commit hook may still refuse: leases come after.
            stored = self._append_in(log, stream, events, expected_version, records)
            for resource in claim.resources:
                table[resource] = _granted(
                    table.get(resource), resource, claim.holder, claim.ttl_s, claim.now
                )
            return stored

    def _append_in(
        self,
        log: MemoryLog,
        stream: str,
        events: Sequence[Event],
        expected_version: int | None,
        records: dict[str, str],
    ) -> list[Event]:
        """``append`` while holding the log."""
        if not events:
            return []
        fresh = [i for i in dict.fromkeys(e.id for e in events) if i not in log.by_id]
        version = len(log.streams.get(stream, ()))
        if fresh and expected_version is not None and version != expected_version:
            raise ConcurrencyConflict(stream, expected_version, version)
        head = len(log.events)
        placed = [
            decode_record(head + n, stream, records[event_id])
            for n, event_id in enumerate(fresh, start=1)
        ]
        self._commit(log, placed)
        by_id = log.by_id
        return [by_id[e.id] for e in events]

    def append_batch(
        self, items: Sequence[tuple[str, Sequence[Event]]], *, new_ids: set[str] | None = None
    ) -> list[list[Event]]:
        """Append many ``(stream, events)`` items at once, all or nothing.

        The contract, ``new_ids`` included, is :meth:`warden.ports.BatchAppender.append_batch`.
        """
        firsts: dict[str, tuple[str, Event]] = {}
        for stream, events in items:
            for event in events:
                firsts.setdefault(event.id, (stream, event))
        records = {i: encode_record(event) for i, (_, event) in firsts.items()}
        with self._writing() as log:
            fresh = [i for i in firsts if i not in log.by_id]
            head = len(log.events)
            placed = [
                decode_record(head + n, firsts[event_id][0], records[event_id])
                for n, event_id in enumerate(fresh, start=1)
            ]
            self._commit(log, placed)
            by_id = log.by_id
            if new_ids is not None:
                new_ids.update(fresh)
            return [[by_id[e.id] for e in events] for _, events in items]

    def read_stream(self, stream: str, from_version: int = 0) -> list[Event]:
        """Events of one stream, in order, from a stream version (0-based)."""
        log = self.log
        with log.rows:
            return log.streams.get(stream, [])[max(0, from_version) :]

    def read_all(self, after_position: int = 0, limit: int | None = None) -> list[Event]:
        """Events of every stream after a global position, in order, without gaps."""
        start = max(0, after_position)
        stop = None if limit is None else start + max(0, limit)
        log = self.log
        with log.rows:
            return log.events[start:stop]

    def stream_version(self, stream: str) -> int:
        """Number of events in ``stream``."""
        log = self.log
        with log.rows:
            return len(log.streams.get(stream, ()))

    def streams(self, prefix: str = "") -> list[str]:
        """Names of the streams that start with ``prefix``, in order of first event."""
        log = self.log
        with log.rows:
            return [name for name in log.streams if name.startswith(prefix)]

    def head(self) -> int:
        """The highest global position stored (0 when empty)."""
        return len(self.log.events)

    def appended(self) -> int:
        """Grows with every event appended to the log (:class:`~warden.ports.AppendCounter`)."""
        return len(self.log.events)

    def quarantine(self, source: str, reason: str, payload: str, received_at: str) -> int:
        """Keep refused input with its reason; returns its quarantine id."""
        with self._writing() as log:
            qid = log.last_quarantine_id + 1
            if self._before_commit is not None:
                self._before_commit()
            with log.rows:
                log.quarantine[qid] = QuarantinedInput(qid, received_at, source, reason, payload)
                log.last_quarantine_id = qid
        return qid

    def quarantined(self) -> list[QuarantinedInput]:
        """Everything in quarantine, oldest first."""
        log = self.log
        with log.rows:
            return list(log.quarantine.values())

    def release_quarantined(self, ids: Sequence[int]) -> int:
        """Remove quarantined items whose replay was accepted; returns how many went."""
        if not ids:
            return 0
        with self._writing() as log:
            gone = {i for i in ids if i in log.quarantine}
            if self._before_commit is not None:
                self._before_commit()
            with log.rows:
                for qid in gone:
                    del log.quarantine[qid]
        return len(gone)

    def tracking(self, name: str) -> int:
        """The position a named projection has processed up to."""
        return self.log.tracking.get(name, 0)

    def set_tracking(self, name: str, position: int) -> None:
        """Record that a named projection processed up to ``position``."""
        with self._writing() as log:
            if self._before_commit is not None:
                self._before_commit()
            log.tracking[name] = position

    def save_snapshot(self, stream: str, version: int, state: Any) -> None:
        """Keep ``state`` as the fold of the first ``version`` events of ``stream``.

        Only the newest snapshot of a stream is kept; saving an older one is a no-op.

        Raises:
            ValidationError: ``state`` is not JSON, or the stream has fewer events.
        """
        text = encode_state(stream, version, state)
        with self._writing() as log:
            check_version(stream, version, len(log.streams.get(stream, ())))
            kept = log.snapshots.get(stream)
            if self._before_commit is not None:
                self._before_commit()
            if kept is None or kept[0] <= version:
                log.snapshots[stream] = (version, text)

    def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of ``stream``, or None (a copy: the caller may change it)."""
        kept = self.log.snapshots.get(stream)
        return None if kept is None else Snapshot(stream, kept[0], decode_state(kept[1]))

    def close(self) -> None:
        """Nothing to release: the log lives as long as a handle or :attr:`log` refers to it."""


class LeaseTable:
    """What every :class:`MemoryLeases` opened on it shares: the leases, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[str, Lease] = {}


class MemoryLeases:
    """Leases in memory: one holder per resource, with expiry and fencing tokens."""

    def __init__(self, table: LeaseTable | None = None) -> None:
        """Open a handle on ``table`` (a new, empty one by default)."""
        self.table = table if table is not None else LeaseTable()

    def acquire(self, resource: str, holder: str, ttl_s: float, now: float) -> Lease | None:
        """Take or renew the lease on ``resource``; None while another holder has it."""
        table = self.table
        with table.lock:
            held = table.leases.get(resource)
            if _busy(held, holder, now):
                return None
            lease = _granted(held, resource, holder, ttl_s, now)
            table.leases[resource] = lease
            return lease

    def release(self, resource: str, holder: str) -> None:
        """Give the lease back, if ``holder`` still has it."""
        table = self.table
        with table.lock:
            held = table.leases.get(resource)
            if held is not None and held.holder == holder:
                del table.leases[resource]

    def holder(self, resource: str, now: float) -> Lease | None:
        """Who holds ``resource`` now, if anyone."""
        with self.table.lock:
            held = self.table.leases.get(resource)
        return held if held is not None and held.expires_at > now else None

    def close(self) -> None:
        """Nothing to release."""


def _busy(held: Lease | None, holder: str, now: float) -> bool:
    """Whether another holder has the lease ``held`` at ``now``."""
    return held is not None and held.holder != holder and held.expires_at > now


def _granted(held: Lease | None, resource: str, holder: str, ttl_s: float, now: float) -> Lease:
    """The lease ``holder`` gets on ``resource``, where ``held`` was (free or its own)."""
    # A new lease starts at 1; its holder renews it; a new holder after expiry fences.
    token = 1 if held is None else held.token + (held.holder != holder)
    return Lease(resource, holder, token, now + ttl_s)


__all__ = ["LeaseTable", "MemoryEventStore", "MemoryLeases", "MemoryLog"]
