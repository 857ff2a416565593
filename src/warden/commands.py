"""Operator commands against the store: approve a step, flip controls. Runtime (shell).

The CLI, the API and the tests issue commands through these functions, so a command is
validated the same way wherever it comes from: an approval must fit the incident's state
machine (the exact hash awaiting, not the proposer, once per person) before it is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain.errors import InvalidTransition, ValidationError
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.runtime import load_incidents

if TYPE_CHECKING:
    from warden.ports import EventStore


def approve(
    store: EventStore,
    incident_prefix: str,
    approver: str,
    step_hash: str | None = None,
    when: datetime | None = None,
) -> ev.Event:
    """Record ``approver``'s approval of the step an incident awaits; returns the event.

    ``when`` is the time of the approval (now by default).

    Raises :class:`ValidationError` (with the reason) when the approval does not fit.
    """
    found = load_incidents(store)
    matches = [i for i in found.values() if i.id.startswith(incident_prefix)]
    if len(matches) != 1:
        raise ValidationError(
            f"{len(matches)} incidents match {incident_prefix!r}",
            field="incident",
            fix="give more characters of the incident id (see `warden incidents`)",
        )
    current = matches[0]
    if current.state is not State.AWAITING_APPROVAL:
        raise ValidationError(
            f"incident {current.id[:12]} is {current.state.value}, not awaiting approval",
            field="incident",
        )
    awaiting = current.step_hashes[current.next_step]
    if step_hash is not None and step_hash != awaiting:
        raise ValidationError(
            f"the incident awaits approval of {awaiting}, not {step_hash}", field="step_hash"
        )
    event = ev.derived_event(
        ev.APPROVAL_GRANTED,
        incident_stream(current.id),
        {"step_hash": awaiting, "approver": approver},
        ev.format_time(when or datetime.now(UTC)),
        key=f"{awaiting}:{approver}",
        subject=current.service,
        correlation_id=current.correlation_id,
        traceparent=current.traceparent,
    )
    try:
        incident_fold.apply(current, event)
    except InvalidTransition as exc:
        raise ValidationError(str(exc), field="approval") from exc
    (stored,) = store.append(incident_stream(current.id), [event], expected_version=current.version)
    return stored


def control(store: EventStore, type_: str, data: dict[str, str], when: datetime) -> ev.Event:
    """Append one operator control event (kill switch, autonomy level) to the control stream."""
    allowed = (ev.KILL_SWITCH_ENGAGED, ev.KILL_SWITCH_RELEASED, ev.AUTONOMY_CHANGED)
    if type_ not in allowed:
        raise ValidationError(f"{type_} is not an operator control", field="type")
    stamp = ev.format_time(when)
    event = ev.derived_event(type_, ev.CONTROL_STREAM, data, stamp, key=f"{stamp}:{data}")
    (stored,) = store.append(ev.CONTROL_STREAM, [event])
    return stored
