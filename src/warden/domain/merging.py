"""One proposal per action and target: plans of several incidents merge. Pure core (domain).

Part of the lifecycle (:mod:`warden.domain.lifecycle`). When open incidents plan the same
action on the same target (an alert storm from one cause), one of them, the *leader*,
is decided, approved and run; the others wait, merged into it, and never ask for a
decision or an approval of their own. When the leader is resolved, a follower whose own
evidence cleared resolves with it (its service is probed meanwhile, for as long as a
verification may take); one still failing after that is escalated: the very step ran and
did not help it. One whose leader was escalated or rolled back goes to the same human
without a page of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.domain import briefing
from warden.domain import events as ev
from warden.domain.commands import (
    Command,
    LifecycleSettings,
    Probe,
    View,
    append_to,
    closing,
    incident_event,
)
from warden.domain.incident import State
from warden.domain.joining import firing_alerts, outstanding

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from warden.domain.incident import Incident

__all__ = ["follow", "leaders"]


def leaders(incidents: Iterable[Incident]) -> dict[tuple[str, str], str]:
    """For each (action, target) in an open plan, the incident that decides it.

    The one already decided on that step leads; else the earliest opened (then by id).
    """
    ranked: dict[tuple[str, str], tuple[tuple[int, str, str], str]] = {}
    for incident in incidents:
        if incident.state.terminal or incident.plan is None:
            continue
        for index, step in enumerate(incident.plan.steps):
            hash_ = incident.step_hashes[index]
            decided = 0 if incident.decision_for(hash_) is not None else 1
            rank = (decided, incident.opened_at, incident.id)
            key = (step.action, step.target)
            if key not in ranked or rank < ranked[key][0]:
                ranked[key] = (rank, incident.id)
    return {key: incident_id for key, (_, incident_id) in ranked.items()}


def follow(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command] | None:
    """What a planned incident does about a leader of its next step; None: no leader.

    Only a plan nothing of which was decided or run merges.
    """
    if incident.state is not State.PLANNED or incident.plan is None or incident.decisions:
        return None
    step = incident.plan.steps[incident.next_step]
    key = (step.action, step.target)
    leader = view.leaders.get(key)
    if leader is not None and leader != incident.id:
        if incident.merged_into == leader:
            return []  # waits for the leader
        merged = incident_event(
            incident,
            ev.PLAN_MERGED,
            {"into": leader, "action": step.action, "target": step.target},
            now,
            key=leader,
        )
        return [append_to(incident, merged)]
    if not incident.merged_into:
        return None
    return _after(incident, view.incidents.get(incident.merged_into), view, settings, now)


def _after(
    incident: Incident,
    leader: Incident | None,
    view: View,
    settings: LifecycleSettings,
    now: datetime,
) -> list[Command] | None:
    """The leader closed (or is gone): resolve with it, hand over, or decide alone."""
    if leader is None:
        return None  # an incident we cannot see: decided on its own
    if not leader.state.terminal:
        return []
    what = f"incident {leader.id[:12]}"
    if leader.state is State.RESOLVED:
        seen = view.world.health.get(incident.service)
        probe_failing = seen is not None and not seen.healthy
        if not probe_failing and not firing_alerts(incident, view.world):
            reason = f"resolved with {what}, which ran the same step: {leader.close_reason}"
            return [closing(incident, ev.INCIDENT_RESOLVED, reason, now)]
        waited = (now - ev.parse_time(leader.closed_at)).total_seconds()
        if waited <= settings.verification_timeout_s:
            return [Probe(incident.service)]  # its own service may be back too: look
        # The very step ran and verified there; running it again would not help.
        assert incident.plan is not None
        step = incident.plan.steps[incident.next_step]
        left = "; ".join(outstanding(incident, view.world)) or "its fault"
        why = (
            f"{step.action} on {step.target} ran in {what} and verified there, yet"
            f" {incident.service} still shows: {left}"
        )
        return [
            closing(incident, ev.INCIDENT_ESCALATED, briefing.page(incident, view.world, why), now)
        ]
    # Escalated or rolled back: the human who has the leader has this one too.
    reason = f"merged into {what}, {leader.state.value}: {leader.close_reason[:300]}"
    return [closing(incident, ev.INCIDENT_ESCALATED, reason, now, notify=False)]
