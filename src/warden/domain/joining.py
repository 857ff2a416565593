"""Evidence joined to incidents: what of it still shows, where new evidence goes. Pure core.

An incident resolves without action only when all of its evidence has cleared: its alerts
resolved, its service's probe passing, and no fault left that only its detector can judge.
A detection on a service with an open incident joins that incident as evidence (an
incident of alerts alone takes only alerts); one on a service whose incident was
escalated joins it too (a human has it), and re-pages that human once
``repage_after_s`` has passed since the last page, while the fault goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.commands import Append, append_to, closing, incident_event
from warden.domain.incident import State

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from warden.domain.incident import Incident
    from warden.domain.signals import Alert
    from warden.domain.world import World

__all__ = [
    "ALERT_KINDS",
    "Sighting",
    "firing_alerts",
    "on_alert_resolved",
    "outstanding",
    "page_once",
    "where_it_goes",
]

ALERT_KINDS = frozenset({"alert", "alert_unmapped"})
"""Incident kinds whose evidence is alerts only: they clear when the alerts resolve."""
PROBE_KINDS = frozenset({"service_down"})
"""Incident kinds whose evidence is the service's probe: it clears when the probe passes."""
UNTOUCHED = (State.OPEN, State.PLANNED, State.AWAITING_APPROVAL)


def firing_alerts(incident: Incident, world: World) -> tuple[Alert, ...]:
    """The alerts among the incident's evidence that still fire, in the order they started."""
    ids = set(incident.evidence_ids)
    found = {a.event_id: a for s in world.signals.values() for a in s.alerts if a.event_id in ids}
    return tuple(sorted(found.values(), key=lambda a: (a.started_at, a.event_id)))


def _kinds(incident: Incident) -> list[str]:
    """The incident's own kind and those of the detections that joined it."""
    kinds = [incident.kind]
    for key in incident.joined:
        kind = key.partition("@")[0]
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def outstanding(incident: Incident, world: World) -> tuple[str, ...]:
    """What of the incident's evidence still shows now, one phrase each (empty: cleared)."""
    shown = [
        f"alert {a.alertname} firing since {a.started_at}" for a in firing_alerts(incident, world)
    ]
    seen = world.health.get(incident.service)
    if seen is not None and not seen.healthy:
        error = seen.last_error or "no error text"
        shown.append(
            f"{incident.service} failed its last {seen.consecutive_failures} probes ({error})"
        )
    for kind in _kinds(incident):
        if kind not in ALERT_KINDS | PROBE_KINDS:
            by = incident.detected_by if kind == incident.kind else "its detector"
            shown.append(f"the {kind} {by or 'an agent'} detected")
    return tuple(shown)


def on_alert_resolved(
    event: ev.Event, incidents: Iterable[Incident], world: World, now: datetime
) -> Append | None:
    """What a resolved alert does to the incident it concerns; None when there is none.

    The incident whose evidence holds the alert's firing event is the one (else the
    service's open one). Before any action, it resolves when every piece of its evidence
    has cleared (``world`` already without the alert); otherwise, and once acting began,
    the resolution is a note, naming what still shows.
    """
    service = str(event.data.get("service") or event.subject)
    firing = str(event.data.get("firing_event_id", ""))
    mine = [i for i in incidents if firing and firing in i.evidence_ids]
    if not mine:
        mine = [i for i in incidents if i.service == service and not i.state.terminal]
    if not mine:
        return None
    # An open one before a closed one; of those, the latest opened.
    target = max(mine, key=lambda i: (not i.state.terminal, i.opened_at, i.id))
    note = f"alert {event.data.get('alertname', '')} resolved at the source at {event.time}"
    left = outstanding(target, world)
    if target.state in UNTOUCHED and not target.intended and not left:
        reason = f"{note}; all of its evidence has cleared, no action was needed"
        return closing(target, ev.INCIDENT_RESOLVED, reason, now)
    # An escalated incident is with a human, who needs to know the fault goes on.
    if left and (not target.state.terminal or target.state is State.ESCALATED):
        note += "; still showing: " + "; ".join(left)
    said = incident_event(target, ev.INCIDENT_ANNOTATED, {"note": note}, now, key=event.id)
    return append_to(target, said)


@dataclass(frozen=True, slots=True)
class Sighting:
    """What a detector sees on a service: enough to open an incident, or to join one."""

    service: str
    kind: str
    first_signal_at: str
    evidence: tuple[str, ...]
    summary: str = ""

    @property
    def key(self) -> str:
        """Names one detection of one fault: its kind and when its first signal came."""
        return f"{self.kind}@{self.first_signal_at}"


@dataclass(frozen=True, slots=True)
class Joining:
    """A sighting goes to ``incident``: ``events`` add its evidence (or re-page)."""

    incident: Incident
    events: tuple[ev.Event, ...]


def _holder(sighting: Sighting, incidents: Iterable[Incident]) -> Incident | None:
    """The incident a sighting on its service belongs to: the open one, else the escalated.

    An incident of alerts alone takes only alerts: a detector's own fault is actionable
    and gets its own. An escalated incident takes alerts and the same kind of fault it
    was paged for (the fault goes on), not another kind (a recovery to act on).
    """
    mine = [i for i in incidents if i.service == sighting.service]
    alert = sighting.kind in ALERT_KINDS
    open_ = [i for i in mine if not i.state.terminal and (alert or i.kind not in ALERT_KINDS)]
    if open_:
        return min(open_, key=lambda i: (i.opened_at, i.id))
    paged = [
        i
        for i in mine
        if i.state is State.ESCALATED and i.pages and (alert or i.kind == sighting.kind)
    ]
    return max(paged, key=lambda i: (i.last_paged_at, i.id), default=None)


def _is_new(sighting: Sighting, holder: Incident) -> bool:
    """Whether the sighting tells the holder something: new alerts, another detection."""
    if sighting.kind in ALERT_KINDS:
        return any(e not in holder.evidence_ids for e in sighting.evidence)
    own = sighting.kind == holder.kind and sighting.first_signal_at == holder.first_signal_at
    return not own and sighting.key not in holder.joined


def where_it_goes(
    sighting: Sighting, incidents: Iterable[Incident], repage_after_s: float, now: datetime
) -> Joining | None:
    """Which incident a sighting joins, with the events that say so; None: open a new one.

    An open incident on the service takes it. An escalated one takes the same fault
    still going on (it began before the last page): as evidence while that page is
    younger than ``repage_after_s``, as a re-page after. A fault that began since opens
    a new incident.
    """
    holder = _holder(sighting, incidents)
    if holder is None:
        return None
    if not holder.state.terminal:
        if not _is_new(sighting, holder):
            return Joining(holder, ())  # the usual answer, each round a fault lasts
        return Joining(holder, (_evidence_added(sighting, holder, now),))
    paged = ev.parse_time(holder.last_paged_at)
    if ev.parse_time(sighting.first_signal_at) > paged and sighting.kind not in ALERT_KINDS:
        # It cleared and came back since: a new incident (whose page, if any, is folded
        # into this one's while the cadence runs: see page_once).
        return None
    if (now - paged).total_seconds() >= repage_after_s:
        why = f"still going on {(now - paged).total_seconds():.0f} s after the last page"
        _, data = _joined(sighting, holder)
        repage = incident_event(
            holder,
            ev.INCIDENT_REPAGED,
            {**data, "reason": f"{why}: {sighting.summary}"},
            now,
            key=holder.last_paged_at,
        )
        return Joining(holder, (repage,))
    if not _is_new(sighting, holder):
        return Joining(holder, ())
    return Joining(holder, (_evidence_added(sighting, holder, now),))


def _joined(sighting: Sighting, holder: Incident) -> tuple[list[str], dict[str, Any]]:
    """The sighting's evidence the holder lacks, and the data of the event that adds it."""
    new = [e for e in sighting.evidence if e not in holder.evidence_ids]
    return new, {"evidence": new, "detection": sighting.key, "summary": sighting.summary}


def _evidence_added(sighting: Sighting, holder: Incident, now: datetime) -> ev.Event:
    new, data = _joined(sighting, holder)
    return incident_event(holder, ev.EVIDENCE_ADDED, data, now, key=_key(sighting, new))


def page_once(
    event: ev.Event,
    incident: Incident,
    incidents: Mapping[str, Incident],
    repage_after_s: float,
    now: datetime,
) -> ev.Event:
    """An escalation, without its page when the human already has this fault.

    Another incident of the same kind on the same service, paged less than
    ``repage_after_s`` ago (a fault that keeps coming back, a restart storm held by a
    guardrail), covers it: the escalation is recorded, names that incident, and pages
    nobody. Any other event is returned as it is.
    """
    if event.type != ev.INCIDENT_ESCALATED or event.data.get("notify", True) is False:
        return event
    covering = [
        i
        for i in incidents.values()
        if i.id != incident.id
        and i.service == incident.service
        and i.kind == incident.kind
        and i.pages
        and (now - ev.parse_time(i.last_paged_at)).total_seconds() < repage_after_s
    ]
    if not covering:
        return event
    paged = max(covering, key=lambda i: (i.last_paged_at, i.id))
    data = {**event.data, "notify": False, "paged_with": paged.id}
    data["reason"] = f"{event.data.get('reason', '')} (not paged again: see incident {paged.id})"
    return replace(event, data=data)


def _key(sighting: Sighting, new: list[str]) -> str:
    return f"{sighting.key}:{','.join(sorted(new))}"
