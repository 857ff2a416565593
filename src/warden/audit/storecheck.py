"""Cross-check of the event store against the audit log, record by record. Audit plane.

Every audited event of the store (all but :data:`SKIPPED_TYPES`) must be the audit entry
at the same rank, byte for byte in canonical JSON, and the log must hold nothing more: a
decision edited, deleted or added in the store alone, or in the log alone, is named with
its stream, store position and audit index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warden.audit.projector import SKIPPED_TYPES, audit_record
from warden.domain.canonical import canonical_json
from warden.domain.errors import AuditVerificationError

if TYPE_CHECKING:
    from warden.audit.log import AuditLog
    from warden.ports import EventStore

BATCH = 1000


def _first_difference(stored: dict[str, Any], audited: dict[str, Any]) -> str:
    for key in sorted(set(stored) | set(audited)):
        if canonical_json(stored.get(key)) != canonical_json(audited.get(key)):
            return key
    return "?"


def crosscheck_store(store: EventStore, log: AuditLog) -> int:
    """Compare every audited store event with its audit entry; return how many matched.

    Raises:
        AuditVerificationError: the first mismatch; ``index`` is its audit entry.
    """
    entries = log.entries()
    index = 0
    after = 0
    while True:
        events = store.read_all(after_position=after, limit=BATCH)
        if not events:
            break
        for event in events:
            after = event.position
            if event.type in SKIPPED_TYPES:
                continue
            expected = audit_record(event)
            where = f"store position {event.position} (stream {event.stream}, {event.type})"
            entry = next(entries, None)
            if entry is None:
                raise AuditVerificationError(
                    f"{where} is not in the audit log, which ends at entry {index - 1}: "
                    "added to the store alone, or not audited yet (start warden to catch up)",
                    index,
                )
            if canonical_json(entry.record) != canonical_json(expected):
                field = _first_difference(expected, entry.record)
                raise AuditVerificationError(
                    f"{where} differs from audit entry {index} in {field!r}: the event "
                    "store or the log was changed after the event was audited",
                    index,
                )
            index += 1
    extra = next(entries, None)
    if extra is not None:
        record = extra.record
        raise AuditVerificationError(
            f"audit entry {index} (store position {record.get('position')}, stream "
            f"{record.get('stream')}) is not in the event store: removed from the store",
            index,
        )
    return index
