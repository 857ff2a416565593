"""The lifecycle's commands, its inputs and the events it writes. Pure core (domain).

:mod:`warden.domain.lifecycle` returns these commands; the runtime's interpreter carries
them out. Frozen data only, and the helpers that build an incident's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.ids import incident_stream

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from warden.domain.catalog import Catalog
    from warden.domain.control import Controls
    from warden.domain.incident import Incident
    from warden.domain.topology import Topology
    from warden.domain.world import World

# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Append:
    """Append ``events`` to ``stream``, expecting it at ``expected_version`` (None: any)."""

    stream: str
    events: tuple[ev.Event, ...]
    expected_version: int | None


@dataclass(frozen=True, slots=True)
class Plan:
    """Ask the agents for a plan (and close the incident when none can act)."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class Decide:
    """Ask the control plane about step ``index``; ``approved``: with the approvals given."""

    incident_id: str
    index: int
    approved: bool = False


@dataclass(frozen=True, slots=True)
class HoldLeases:
    """Take or renew the leases on ``targets``; ``renew_only``: go on even when one is busy."""

    incident_id: str
    targets: tuple[str, ...]
    renew_only: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseLeases:
    """Let go of the leases on ``targets``: the incident is closed."""

    incident_id: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunStep:
    """Re-check the guardrails, write the intent, hand the step to a worker."""

    incident_id: str
    index: int
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class RunCompensation:
    """Write the compensation's intent and hand it to a worker."""

    incident_id: str
    index: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Recover:
    """An intent without a result that no worker here runs: settle it by the action's check."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class Probe:
    """Probe ``service`` now (a verification waits on its health)."""

    service: str


Command = (
    Append
    | Plan
    | Decide
    | HoldLeases
    | ReleaseLeases
    | RunStep
    | RunCompensation
    | Recover
    | Probe
)


# -- inputs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    """The lifecycle's knobs (the shell's settings hold them too)."""

    verification_timeout_s: float = 15.0
    approval_timeout_s: float = 900.0
    approval_fallback: str = "escalate"
    compensation_hold_s: float = 600.0  # a compensation held longer escalates
    minor_alert_wait_s: float = 900.0  # a warning alert alone pages once it fired this long


@dataclass(frozen=True, slots=True)
class View:
    """What the loop folded from the log, beside the incident itself.

    ``runnable``: the actions an adapter runs; ``counted``: for incidents awaiting
    approval, the approvals that count (the control plane's tally) and ``approved`` those
    where they are enough; ``rejected``: who rejected the step, where a rejection counts;
    ``ignored``: approvals that did not count, as "who: why"; ``running``: incidents
    with a step or compensation in the hands of one of this process's workers;
    ``leaders``: for each (action, target) that open plans name, the incident that
    decides it (:func:`warden.domain.merging.leaders`); ``incidents``: every incident.
    """

    world: World
    controls: Controls
    topology: Topology
    catalog: Catalog
    runnable: frozenset[str] = frozenset()
    approved: frozenset[str] = frozenset()
    running: frozenset[str] = frozenset()
    counted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rejected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ignored: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    environment: str = ""  # with default_autonomy: the level in force where none is set
    default_autonomy: str = ""
    leaders: Mapping[tuple[str, str], str] = field(default_factory=dict)
    incidents: Mapping[str, Incident] = field(default_factory=dict)


def targets_of(incident: Incident) -> tuple[str, ...]:
    """Every target of the incident's plan, sorted."""
    assert incident.plan is not None
    return tuple(sorted({s.target for s in incident.plan.steps}))


def incident_event(
    incident: Incident, type_: str, data: dict[str, Any], now: datetime, key: str = ""
) -> ev.Event:
    """An event of ``incident``'s stream, derived (replay gives it the same id)."""
    return ev.derived_event(
        type_,
        incident_stream(incident.id),
        data,
        ev.format_time(now),
        key=key,
        subject=incident.service,
        correlation_id=incident.correlation_id,
        traceparent=incident.traceparent,
    )


def append_to(incident: Incident, *events: ev.Event) -> Append:
    """Append ``events`` to the incident's stream at the version it was read at."""
    return Append(incident_stream(incident.id), events, incident.version)


def closing(incident: Incident, type_: str, reason: str, now: datetime, **extra: Any) -> Append:
    """Close the incident (``type_``: resolved, escalated, rolled back) with a reason."""
    return append_to(incident, incident_event(incident, type_, {"reason": reason, **extra}, now))
