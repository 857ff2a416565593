"""Remediations that did not hold: what ran recently, and which fix relapsed. Pure core.

A remediation relapses when its service fails again within the relapse window after the
incident it closed was resolved: the fix treated a symptom, and the incident is recorded
as relapsed (a failure), never left as resolved. Agents read the recent remedies to stop
repeating a fix that does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.events import parse_time
from warden.domain.identity_memo import by_identity
from warden.domain.incident import State

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from warden.domain.incident import Incident

DEFAULT_RELAPSE_WINDOW_S = 1800.0
KEPT = 100
# Incidents about a symptom of the service (it fails, errs, alerts, runs out of room):
# one of these after a fix of another is the same trouble back. Drift, backlogs,
# corrupt batches and isolations have their own kinds of recurrence.
SYMPTOM_KINDS = frozenset({"service_down", "change", "alert", "bad_deploy", "capacity"})


@dataclass(frozen=True, slots=True)
class Remedy:
    """One remediation step that succeeded: what, on what, for which service and incident."""

    at: str
    action: str
    target: str
    service: str  # the service of the incident it was run for
    incident_id: str


def remember(remedies: tuple[Remedy, ...], remedy: Remedy) -> tuple[Remedy, ...]:
    """``remedies`` with ``remedy`` added (the latest :data:`KEPT` are kept)."""
    return (*remedies, remedy)[-KEPT:]


def within_window(fixed_at: datetime, failed_at: datetime, window_s: float) -> bool:
    """True when a failure at ``failed_at`` undoes a fix made at ``fixed_at`` (gap in window)."""
    return 0.0 <= (failed_at - fixed_at).total_seconds() <= window_s


@by_identity()
def before(
    remedies: tuple[Remedy, ...], service: str, failing_since: str, window_s: float
) -> tuple[Remedy, ...]:
    """Remedies for ``service`` (or on it) that ran at most ``window_s`` before it failed again.

    Agents ask it of every failing service each round; the remedies stay the very same
    tuple until a step succeeds, so the answer is remembered (:mod:`identity_memo`).
    """
    if not failing_since:
        return ()
    failed = parse_time(failing_since)
    return tuple(
        r
        for r in remedies
        if service in (r.service, r.target) and within_window(parse_time(r.at), failed, window_s)
    )


def relapsed(
    incidents: Iterable[Incident],
    service: str,
    first_signal_at: str,
    window_s: float,
    kind: str = "service_down",
) -> Incident | None:
    """The resolved incident of ``service`` whose remediation this new failure undoes.

    It is the latest incident of the service about a symptom (:data:`SYMPTOM_KINDS`),
    resolved after a step ran, closed at most ``window_s`` before ``first_signal_at``; None
    when the fix held that long, when nothing was done (a fault that went by itself and
    came back is not a failed fix), or when either is not about a symptom (``kind``).
    ``incidents`` may be all of them or only those of ``service`` (an index by service).
    """
    if not first_signal_at or kind not in SYMPTOM_KINDS:
        return None
    failed = parse_time(first_signal_at)
    found: Incident | None = None
    for incident in incidents:
        if incident.service != service or incident.state is not State.RESOLVED:
            continue
        if incident.kind not in SYMPTOM_KINDS:
            continue
        if not incident.intended or not incident.closed_at:
            continue
        if within_window(parse_time(incident.closed_at), failed, window_s) and (
            found is None or parse_time(incident.closed_at) > parse_time(found.closed_at)
        ):
            found = incident
    return found


__all__ = [
    "DEFAULT_RELAPSE_WINDOW_S",
    "SYMPTOM_KINDS",
    "Remedy",
    "before",
    "relapsed",
    "remember",
    "within_window",
]
