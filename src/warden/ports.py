"""Ports: the interfaces the core and the runtime need from the shell. Ports layer.

Each port is a Protocol; what only some implementations offer is an optional capability,
a ``runtime_checkable`` Protocol of its own that callers test with ``isinstance``.
Adapters live in ``store/``, ``execution/adapters/`` and ``ingest/``; in-memory ones that
pass the same contract suites live in ``store/memory.py``. ``ManualClock`` lives here, below
the replay and the simulator, so they run on the very one ``warden.testing`` re-exports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractContextManager

    from warden.domain.events import Event


class Clock(Protocol):
    """Where time comes from; the core never reads the system clock itself."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return datetime.now(UTC)


class IdSource(Protocol):
    """Where the ids of new observations come from; the core never calls ``uuid4`` itself.

    Only what Warden observes gets a fresh id; what it derives takes an id that is a
    function of its causes (``warden.domain.ids.derived_id``), so replay reproduces it.
    """

    def new_id(self) -> str:
        """A fresh id, 32 hex digits."""
        ...


class UuidIds:
    """Random ids (uuid4), unique across processes and hosts."""

    def new_id(self) -> str:
        """A fresh random id, 32 hex digits."""
        return uuid.uuid4().hex


class ManualClock:
    """A clock that moves only when told to: tests, replay and simulation run on it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(
                "ManualClock needs a timezone-aware start, e.g. datetime(..., tzinfo=UTC)"
            )
        self._now = start

    def now(self) -> datetime:
        """The current manual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"time does not go backwards (advance by {seconds} s)")
        self._now += timedelta(seconds=seconds)

    def advance_to(self, moment: datetime) -> None:
        """Move time forward to ``moment``."""
        if moment < self._now:
            raise ValueError(f"time does not go backwards ({moment} is before {self._now})")
        self._now = moment


@dataclass(frozen=True, slots=True)
class QuarantinedInput:
    """Input the quality gates refused, kept with the reason."""

    id: int
    received_at: str
    source: str
    reason: str
    payload: str


class EventStore(Protocol):
    """Append-only log of events, in streams, with a global order."""

    def append(
        self, stream: str, events: Sequence[Event], expected_version: int | None = None
    ) -> list[Event]:
        """Append to ``stream``; idempotent on event id; optimistic on ``expected_version``."""
        ...

    def read_stream(self, stream: str, from_version: int = 0) -> list[Event]:
        """Events of one stream, in order, from a stream version (0-based)."""
        ...

    def read_all(self, after_position: int = 0, limit: int | None = None) -> list[Event]:
        """Events of every stream after a global position, in order, without gaps."""
        ...

    def stream_version(self, stream: str) -> int:
        """Number of events in ``stream``."""
        ...

    def streams(self, prefix: str = "") -> list[str]:
        """Names of the streams that start with ``prefix``, in order of first event."""
        ...

    def head(self) -> int:
        """The highest global position stored (0 when empty)."""
        ...

    def quarantine(self, source: str, reason: str, payload: str, received_at: str) -> int:
        """Keep refused input with its reason; returns its quarantine id."""
        ...

    def quarantined(self) -> list[QuarantinedInput]:
        """Everything in quarantine, oldest first."""
        ...

    def release_quarantined(self, ids: Sequence[int]) -> int:
        """Remove quarantined items (their replay was accepted); returns how many went."""
        ...

    def tracking(self, name: str) -> int:
        """The position a named projection has processed up to."""
        ...

    def set_tracking(self, name: str, position: int) -> None:
        """Record that a named projection processed up to ``position``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class BatchAppender(Protocol):
    """An event store that appends to many streams in one transaction (every built-in one)."""

    def append_batch(
        self, items: Sequence[tuple[str, Sequence[Event]]], *, new_ids: set[str] | None = None
    ) -> list[list[Event]]:
        """Append every ``(stream, events)`` item in one transaction: all or nothing.

        Idempotent on event id as ``append`` is, within the batch too: an event stored
        before, or earlier in the batch, is returned as stored and not added again.
        Positions follow the items, and the events of each, in order. There is no
        version check; ``append`` with ``expected_version`` does that.

        Args:
            items: ``(stream, events)`` pairs.
            new_ids: When given, the ids this call stored are added to it; the others
                were in the store already. The store tells them apart while it holds
                the write lock, so a concurrent writer cannot blur the difference.

        Returns:
            For each item, its events as stored.
        """
        ...


@runtime_checkable
class AppendCounter(Protocol):
    """An event store that counts the appends committed through it (SQLite, memory).

    The loop reads the log back after each incident it moved only when the count changed:
    a round that wrote nothing does not query the log once per incident.
    """

    def appended(self) -> int:
        """A number that grows with every append committed through this handle.

        Equal to an earlier answer: nothing was appended through this handle since (another
        process's appends show only in :meth:`EventStore.read_all`).
        """
        ...


@runtime_checkable
class GroupedFlush(Protocol):
    """An event store whose commits can share one disk flush (SQLite).

    Every append stays atomic and visible at once; only its flush to disk is grouped:
    concurrent writers share flushes, and a commit may be seen a moment before it is on
    disk. The loop moves a round's incidents inside :meth:`one_flush` and calls
    :meth:`flush` before any side effect (an intent is durable before its action is
    handed to a worker); the audit projection flushes what it read before writing it.
    """

    def one_flush(self) -> AbstractContextManager[None]:
        """Inside, the calling thread's commits wait for one flush, made on leaving.

        Other threads' commits are durable each, as outside; a durable commit of any
        thread makes every commit before it durable too.
        """
        ...

    def flush(self) -> None:
        """Make every commit made through this handle durable now (no cost if they are)."""
        ...


@dataclass(frozen=True, slots=True)
class LeaseClaim:
    """Leases to take (or renew) in the same transaction as an append.

    ``holder`` takes every one of ``resources`` until ``now + ttl_s`` (seconds, the
    store's clock), as :meth:`Leases.acquire` would, one by one.
    """

    resources: tuple[str, ...]
    holder: str
    ttl_s: float
    now: float


@runtime_checkable
class LeasedAppender(Protocol):
    """An event store that keeps leases in its own database (every built-in one).

    Deciding a step, taking the leases on its targets and writing its intent are then one
    transaction and one disk flush: the runtime's decision latency is one durable write.
    """

    def shares_leases(self, leases: Leases) -> bool:
        """Whether ``leases`` are kept in this store's database, so one transaction holds both."""
        ...

    def append_leased(
        self,
        stream: str,
        events: Sequence[Event],
        expected_version: int | None,
        claim: LeaseClaim,
    ) -> list[Event] | None:
        """Take every lease of ``claim`` and append ``events``, in one transaction.

        Returns:
            The events as stored (as :meth:`EventStore.append` returns them), or None,
            having stored nothing and taken no lease, while another holder has one of the
            resources.

        Raises:
            ConcurrencyConflict: ``stream`` is not at ``expected_version``; no lease taken.
        """
        ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state folded from events ``0 .. version - 1`` of ``stream``, as JSON values."""

    stream: str
    version: int
    state: Any


@runtime_checkable
class SnapshotStore(Protocol):
    """An event store that also keeps snapshots (every built-in one does)."""

    def read_stream(self, stream: str, from_version: int = 0) -> list[Event]:
        """Events of one stream, in order, from a stream version (0-based)."""
        ...

    def save_snapshot(self, stream: str, version: int, state: Any) -> None:
        """Keep ``state`` as the fold of the first ``version`` events of ``stream``."""
        ...

    def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of ``stream``, or None."""
        ...


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an adapter observed when it ran a step."""

    ok: bool
    detail: str
    output: dict[str, Any]


class ActionAdapter(Protocol):
    """Runs catalog actions on targets of one kind."""

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Run one action; must be safe to call again with the same arguments."""
        ...


@runtime_checkable
class ActionChecker(Protocol):
    """An adapter that can tell whether an action's effect holds (crash reconciliation).

    Without it, an intent left without a result is repeated if the action is idempotent,
    else escalated (DESIGN.md invariant 3).
    """

    def check(
        self, action: str, target: str, params: Mapping[str, Any] | None = None
    ) -> bool | None:
        """True or False when the effect clearly holds or not; None when it cannot tell."""
        ...


@runtime_checkable
class Closeable(Protocol):
    """Something that holds a connection or a process until ``close`` (safe to call twice)."""

    def close(self) -> None:
        """Release what it holds."""
        ...


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to act on one resource until ``expires_at`` (seconds, the store's clock)."""

    resource: str
    holder: str
    token: int
    expires_at: float


class Leases(Protocol):
    """One holder per resource at a time, with expiry and fencing tokens."""

    def acquire(self, resource: str, holder: str, ttl_s: float, now: float) -> Lease | None:
        """Take or renew the lease; None while another holder has it."""
        ...

    def release(self, resource: str, holder: str) -> None:
        """Give the lease back if ``holder`` has it."""
        ...

    def holder(self, resource: str, now: float) -> Lease | None:
        """Who holds the resource now."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
