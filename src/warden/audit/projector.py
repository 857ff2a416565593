"""Projects the event store into the audit log, one record per audited event. Audit plane.

The last audited store position is read back from the log itself, so a crash between the
two writes can neither duplicate nor lose a record. A stored event that cannot be written
as canonical JSON (a corrupted or older store) is audited as unprojectable, with its id and
the reason, and projection goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from warden.domain.canonical import canonical_json
from warden.domain.errors import ConcurrencyConflict, ValidationError
from warden.domain.events import PROBE_SUCCEEDED, Event
from warden.domain.plain_json import printable, valid_text
from warden.ports import GroupedFlush

if TYPE_CHECKING:
    from warden.audit.log import AuditLog
    from warden.ports import EventStore

log = logging.getLogger(__name__)

SKIPPED_TYPES = frozenset({PROBE_SUCCEEDED})
"""Event types left out of the audit log: frequent, and no decision in them."""


def audit_record(event: Event) -> dict[str, Any]:
    """The audit record of one stored event."""
    return {
        "position": event.position,
        "event_id": event.id,
        "stream": event.stream,
        "type": event.type,
        "time": event.time,
        "subject": event.subject,
        "data": event.data,
        "correlation_id": event.correlation_id,
    }


def unprojectable_record(event: Event, reason: str) -> dict[str, Any]:
    """The audit record that stands for an event whose own record cannot be written."""
    return {
        "position": event.position,
        "event_id": valid_text(str(event.id)),
        "stream": valid_text(str(event.stream)),
        "type": valid_text(str(event.type)),
        "time": valid_text(str(event.time)),
        "unprojectable": printable(reason, 300),
    }


def projectable_record(event: Event) -> dict[str, Any]:
    """:func:`audit_record`, or :func:`unprojectable_record` when that is not plain JSON."""
    record = audit_record(event)
    try:
        canonical_json(record)
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("audit: event at position %d is unprojectable: %s", event.position, reason)
        return unprojectable_record(event, reason)
    return record


class AuditProjector:
    """Appends an audit record for every stored event not in :data:`SKIPPED_TYPES`."""

    def __init__(self, store: EventStore, log: AuditLog, *, batch_size: int = 500) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.store = store
        self.log = log
        self.batch_size = batch_size
        # Progress past skipped events only; never ahead of what the store has shown us.
        self._skipped_to = 0
        # (log size, position of its last record): entries never change once written, so
        # the last one is read again only when the log grew (catch_up runs every round).
        self._last_seen = (0, 0)

    def audited_position(self) -> int:
        """The store position of the last audited event (0 when the log is empty)."""
        return self._position_at(self.log.size)

    def _position_at(self, size: int) -> int:
        if size == self._last_seen[0]:
            return self._last_seen[1]
        record = self.log.entry(size - 1).record if size else None
        position = record.get("position") if record is not None else 0
        found = position if type(position) is int else 0
        self._last_seen = (size, found)
        return found

    def catch_up(self) -> int:
        """Audit every event stored after the last audited one; return how many were added."""
        added = 0
        while True:
            size = self.log.size
            after = max(self._position_at(size), self._skipped_to)
            events = self.store.read_all(after_position=after, limit=self.batch_size)
            if not events:
                return added
            if isinstance(self.store, GroupedFlush):
                # A commit is seen a moment before its writer's flush: audit durable ones.
                self.store.flush()
            audited = [e for e in events if e.type not in SKIPPED_TYPES]
            records = [audit_record(e) for e in audited]
            try:
                try:
                    self.log.append(records, expected_size=size)
                except ValidationError:
                    # Rare (the gate refuses such input): find the bad ones one by one.
                    records = [projectable_record(e) for e in audited]
                    self.log.append(records, expected_size=size)
            except ConcurrencyConflict:
                continue  # another projector appended first: re-derive the position
            added += len(records)
            self._skipped_to = events[-1].position
            if len(events) < self.batch_size:
                return added
