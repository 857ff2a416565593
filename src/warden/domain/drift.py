"""Desired against observed state, and the drift between them. Pure core (domain).

Desired state is declared per service in the configuration (``running``, ``version``,
``replicas``, ...); observed state arrives as ``warden.state.observed`` events and from
the health probe (``running``). A drift is reported once when it appears and once when
it goes away, so the log holds transitions, not a flood. Each report is a function of the
observation that revealed it (its id and time), never of when it was noticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain import events as ev

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A drift that appeared (``desired != observed``) or went away."""

    service: str
    field: str
    desired: str
    observed: str
    appeared: bool


@dataclass(frozen=True, slots=True)
class Observation:
    """The value a field is observed to hold, and the event that first showed that value."""

    value: str
    event_id: str
    time: str


def observe(seen: dict[tuple[str, str], Observation], event: ev.Event) -> None:
    """Fold one probe result or state report into ``seen`` (by service and field), in place.

    A value keeps the event that first showed it: repeating the same value changes nothing.
    """
    if event.type in (ev.PROBE_FAILED, ev.PROBE_SUCCEEDED):
        service = str(event.data.get("service", event.subject))
        running = "true" if event.type == ev.PROBE_SUCCEEDED else "false"
        fields: dict[str, str] = {"running": running}
    elif event.type == ev.STATE_OBSERVED:
        service = str(event.data.get("service") or event.subject)
        fields = {str(k): _spelled(v) for k, v in (event.data.get("fields") or {}).items()}
    else:
        return
    for field, value in fields.items():
        current = seen.get((service, field))
        if current is None or current.value != value:
            seen[(service, field)] = Observation(value, event.id, event.time)


def values(seen: Mapping[tuple[str, str], Observation]) -> dict[str, dict[str, str]]:
    """The observed values alone, by service and field (the shape :func:`changes` takes)."""
    state: dict[str, dict[str, str]] = {}
    for (service, field), observation in seen.items():
        state.setdefault(service, {})[field] = observation.value
    return state


def _spelled(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def changes(
    desired: Mapping[str, Mapping[str, str]],
    observed: Mapping[str, Mapping[str, str]],
    open_drift: Mapping[tuple[str, str], str],
) -> list[DriftChange]:
    """Drifts that appeared or went away since ``open_drift`` (field -> observed value).

    A field never observed is not drift: Warden does not guess.
    """
    found: list[DriftChange] = []
    for service in sorted(desired):
        for field, want in sorted(desired[service].items()):
            seen = observed.get(service, {}).get(field)
            key = (service, field)
            if seen is None:
                continue
            if seen != want and open_drift.get(key) != seen:
                found.append(DriftChange(service, field, want, seen, appeared=True))
            elif seen == want and key in open_drift:
                found.append(DriftChange(service, field, want, seen, appeared=False))
    return found


def observe_report(reported: dict[str, dict[str, str]], event: ev.Event) -> None:
    """Fold one ``warden.state.observed`` event into the reported state (in place)."""
    if event.type == ev.STATE_OBSERVED:
        service = str(event.data.get("service") or event.subject)
        fields = event.data.get("fields") or {}
        for field, value in fields.items():
            reported.setdefault(service, {})[str(field)] = _spelled(value)
