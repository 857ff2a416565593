"""Ports: the interfaces the core and the runtime need from the shell.

Adapters live in ``store/``, ``execution/adapters/`` and ``ingest/``; fakes that are real
small implementations live in ``testing/``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

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

    def tracking(self, name: str) -> int:
        """The position a named projection has processed up to."""
        ...

    def set_tracking(self, name: str, position: int) -> None:
        """Record that a named projection processed up to ``position``."""
        ...

    def close(self) -> None:
        """Release connections."""
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
