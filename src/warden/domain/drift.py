"""Desired against observed state, and the drift between them. Pure core (domain).

Desired state is declared per service in the configuration (``running``, ``version``,
``replicas``, ...); observed state arrives as ``warden.state.observed`` events and from
the health probe (``running``). A drift is reported once when it appears and once when
it goes away, so the log holds transitions, not a flood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain import events as ev

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.health import Health


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A drift that appeared (``desired != observed``) or went away."""

    service: str
    field: str
    desired: str
    observed: str
    appeared: bool


def observed_state(
    health: Mapping[str, Health], reported: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """What is known of each service: reported fields, plus ``running`` from its probe."""
    state: dict[str, dict[str, str]] = {s: dict(fields) for s, fields in reported.items()}
    for service, seen in health.items():
        if seen.last_seen_at:
            state.setdefault(service, {})["running"] = "true" if seen.healthy else "false"
    return state


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
            reported.setdefault(service, {})[str(field)] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
