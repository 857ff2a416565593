"""Quarantine replay: run refused input through the gates again (after a fix). Data plane.

A quarantined item is either a CloudEvents object (what the gate refused) or an
Alertmanager notification (what the webhook could not turn into events). Replay checks
every event of an item first; only when all pass are they appended (duplicates are
fine) and the item is released from quarantine. A failed replay leaves the item where
it is and adds nothing to quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ValidationError
from warden.ingest.alertmanager import parse_webhook
from warden.ingest.cloudevents import TraceContext, load_json
from warden.ingest.pipeline import Refuse, is_reserved, stream_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.domain.events import Event
    from warden.ingest.gate import IngestGate
    from warden.ports import EventStore, QuarantinedInput

__all__ = ["ReplayResult", "ReplayVerdict", "release_quarantined", "replay_quarantined"]


# Input Warden or its operator produced (probes, a capture replayed with `ingest jsonl`).
_LOCAL_SOURCES = ("probe:", "jsonl:")


class ReplayVerdict(StrEnum):
    """What a replay did with one quarantined item."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STILL_REFUSED = "still refused"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """The replay of one quarantined item.

    Attributes:
        quarantine_id: The item.
        verdict: Accepted (released), duplicate (already stored; released) or still
            refused (kept in quarantine).
        reason: Why it is still refused; empty otherwise.
        event_ids: The events it produced.
    """

    quarantine_id: int
    verdict: ReplayVerdict
    reason: str = ""
    event_ids: tuple[str, ...] = ()


def _events_of(item: QuarantinedInput, gate: IngestGate) -> list[tuple[str, Event]]:
    """Check every event an item holds; raise ValidationError at the first bad one."""
    size = len(item.payload.encode("utf-8"))
    raw, reason = load_json(item.payload)
    if reason:
        raise ValidationError(reason)
    if isinstance(raw, dict) and "specversion" not in raw and "alerts" in raw:
        candidates: list[Any] = []
        jobs = parse_webhook(
            item.payload,
            received_at=gate.clock.now(),
            context=TraceContext(),
            source=item.source,
        )
        for job in jobs:
            if isinstance(job, Refuse):
                raise ValidationError(job.reason)
            candidates.append(job.payload)
    else:
        if size > gate.max_bytes:
            raise ValidationError(
                f"event is {size} bytes, the limit is {gate.max_bytes}", field="size"
            )
        candidates = [raw]
    checked: list[tuple[str, Event]] = []
    for candidate in candidates:
        if not isinstance(candidate, dict):
            raise ValidationError("the event is not a JSON object", field="(root)")
        try:
            event = gate.check(candidate)
        except ValidationError:
            raise
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            raise ValidationError(f"cannot validate the event: {exc!s:.200}") from None
        if is_reserved(event.type) and not item.source.startswith(_LOCAL_SOURCES):
            # The sender's grant is not recorded with the item; only it can send again.
            raise ValidationError(
                f"{event.type} is reserved for Warden's own events and came from"
                f" {item.source}; a replay cannot grant it (grant the sender allow_types and"
                " have it send the event again)",
                field="type",
            )
        checked.append((stream_for(candidate), event))
    return checked


def replay_quarantined(
    store: EventStore, gate: IngestGate, items: Sequence[QuarantinedInput]
) -> list[ReplayResult]:
    """Re-run the gates on quarantined items; store and release those that now pass.

    Args:
        store: The event store the items are quarantined in.
        gate: The gates to apply (with the current schema registry).
        items: The items to replay, e.g. ``store.quarantined()``.

    Returns:
        One result per item, in order.
    """
    results: list[ReplayResult] = []
    released: list[int] = []
    for item in items:
        try:
            checked = _events_of(item, gate)
        except ValidationError as exc:
            results.append(ReplayResult(item.id, ReplayVerdict.STILL_REFUSED, str(exc)))
            continue
        before = store.head()
        fresh = False
        for stream, event in checked:
            (stored,) = store.append(stream, [event])
            fresh = fresh or stored.position > before
        verdict = ReplayVerdict.ACCEPTED if fresh else ReplayVerdict.DUPLICATE
        ids = tuple(event.id for _, event in checked)
        results.append(ReplayResult(item.id, verdict, event_ids=ids))
        released.append(item.id)
    release_quarantined(store, released)
    return results


def release_quarantined(store: EventStore, ids: Sequence[int]) -> int:
    """Remove items from quarantine (after their events were stored); returns how many."""
    if not ids:
        return 0
    return store.release_quarantined(list(ids))
