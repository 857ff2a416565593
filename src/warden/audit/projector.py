"""Projects the event store into the audit log, one record per audited event. Audit plane.

The last audited store position is read back from the log itself, so a crash between the
two writes can neither duplicate nor lose a record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConcurrencyConflict
from warden.domain.events import PROBE_SUCCEEDED, Event

if TYPE_CHECKING:
    from warden.audit.log import AuditLog
    from warden.ports import EventStore

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

    def audited_position(self) -> int:
        """The store position of the last audited event (0 when the log is empty)."""
        record = self.log.last_record()
        if record is None:
            return 0
        position = record.get("position")
        return position if type(position) is int else 0

    def catch_up(self) -> int:
        """Audit every event stored after the last audited one; return how many were added."""
        added = 0
        while True:
            size = self.log.size
            after = max(self.audited_position(), self._skipped_to)
            events = self.store.read_all(after_position=after, limit=self.batch_size)
            if not events:
                return added
            records = [audit_record(e) for e in events if e.type not in SKIPPED_TYPES]
            try:
                self.log.append(records, expected_size=size)
            except ConcurrencyConflict:
                continue  # another projector appended first: re-derive the position
            added += len(records)
            self._skipped_to = events[-1].position
            if len(events) < self.batch_size:
                return added
