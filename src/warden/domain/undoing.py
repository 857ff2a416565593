"""Failing a plan and undoing its completed steps, last first. Pure core (domain).

Part of the lifecycle (:mod:`warden.domain.lifecycle`): compensations run in reverse
order, once each; the kill switch holds every side effect, compensations included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.domain import briefing
from warden.domain import events as ev
from warden.domain.commands import (
    Command,
    HoldLeases,
    LifecycleSettings,
    Recover,
    RunCompensation,
    View,
    append_to,
    closing,
    incident_event,
    targets_of,
)
from warden.domain.ids import derived_id

if TYPE_CHECKING:
    from datetime import datetime

    from warden.domain.incident import Incident


def fail_plan(incident: Incident, view: View, reason: str, now: datetime) -> list[Command]:
    """Undo completed steps in reverse when any can be undone; else escalate."""
    if _compensable(incident, view):
        started = incident_event(incident, ev.COMPENSATION_STARTED, {"reason": reason}, now)
        return [append_to(incident, started)]
    left = _not_undone(incident, view)
    why = f"{reason}; left as is: {left}" if left else reason
    return [closing(incident, ev.INCIDENT_ESCALATED, briefing.page(incident, view.world, why), now)]


def compensate(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    """What a compensating incident needs: the next undo, a hold, or its closing."""
    if incident.compensation_in_flight is not None:
        return in_flight(incident, view)
    if incident.compensation_failed:
        failed = ", ".join(map(str, incident.compensation_failed))
        return [
            closing(incident, ev.INCIDENT_ESCALATED, f"compensation of step {failed} failed", now)
        ]
    done = set(incident.compensating)
    floor = min(done) if done else len(incident.step_hashes)
    pending = [i for i in _compensable(incident, view) if i < floor]
    if pending:
        return _undo(incident, view, settings, pending[0], now)
    left = _not_undone(incident, view)
    if incident.compensated:
        undone = ", ".join(str(i) for i in incident.compensated)
        reason = f"steps {undone} undone; a human follows up"
        return [
            closing(
                incident, ev.INCIDENT_ROLLED_BACK, f"{reason} ({left})" if left else reason, now
            )
        ]
    reason = "nothing could be undone"
    return [closing(incident, ev.INCIDENT_ESCALATED, f"{reason}: {left}" if left else reason, now)]


def _undo(
    incident: Incident, view: View, settings: LifecycleSettings, index: int, now: datetime
) -> list[Command]:
    """Compensate step ``index``, unless the kill switch holds every side effect now."""
    assert incident.plan is not None
    target = incident.plan.steps[index].target
    halted = view.controls.halted(view.topology.domain_of(target))
    if halted is None:
        key = derived_id("compensation", incident.id, incident.step_hashes[index])
        return [
            HoldLeases(incident.id, targets_of(incident)),
            RunCompensation(incident.id, index, key),
        ]
    if not incident.compensation_held_at:
        held = incident_event(
            incident,
            ev.COMPENSATION_HELD,
            {"index": index, "target": target, "reason": halted},
            now,
            key=f"{index}:{ev.format_time(now)}",
        )
        return [append_to(incident, held)]
    since = ev.parse_time(incident.compensation_held_at)
    if (now - since).total_seconds() > settings.compensation_hold_s:
        reason = (
            f"compensation of step {index} held for {settings.compensation_hold_s:g} s"
            f" ({halted}); a human takes over"
        )
        left = _not_undone(incident, view, pending_too=True)
        return [closing(incident, ev.INCIDENT_ESCALATED, f"{reason}; left as is: {left}", now)]
    return []


def _compensable(incident: Incident, view: View) -> list[int]:
    """Completed steps with a runnable compensation, last first."""
    return [
        i for i in sorted(incident.succeeded, reverse=True) if not why_not_undone(incident, view, i)
    ]


def why_not_undone(incident: Incident, view: View, index: int) -> str:
    """Why completed step ``index`` cannot be compensated ("" when it can)."""
    assert incident.plan is not None
    step = incident.plan.steps[index]
    spec = view.catalog.get(step.action)
    if spec is None or not spec.compensation:
        return f"step {index} ({step.action}) has no compensation"
    if spec.compensation not in view.runnable or view.catalog.get(spec.compensation) is None:
        return f"step {index} ({step.action}): no adapter runs {spec.compensation}"
    missing = spec.missing_undo(incident.output_of(index))
    if missing:
        return (
            f"step {index} ({step.action}) cannot be undone: its result did not report"
            f" undo_params {', '.join(missing)}, and {spec.compensation} with the step's"
            " own parameters would only repeat it"
        )
    return ""


def _not_undone(incident: Incident, view: View, *, pending_too: bool = False) -> str:
    """The completed steps no compensation will undo, with why, for the human."""
    assert incident.plan is not None
    reasons = []
    for index in sorted(incident.succeeded):
        if index in incident.compensated:
            continue
        if view.catalog.get(incident.plan.steps[index].action) is None:
            continue
        why = why_not_undone(incident, view, index)
        if not why and pending_too:
            why = f"step {index} ({incident.plan.steps[index].action}) not undone"
        if why:
            reasons.append(why)
    return "; ".join(reasons)


def in_flight(incident: Incident, view: View) -> list[Command]:
    """A worker here runs it: keep the leases; nobody does (a restart): settle it."""
    if incident.id in view.running:
        return [HoldLeases(incident.id, targets_of(incident), renew_only=True)]
    return [Recover(incident.id)]
