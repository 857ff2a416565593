"""What every step of the incident lifecycle shares: the loop's parts and state. Runtime.

:class:`Lifecycle` declares the parts the :class:`~warden.runtime.Runtime` provides and
the helpers that append an incident's events; the mixins of this package each take one
part of the lifecycle.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.domain import control, isolation
from warden.domain import events as ev
from warden.domain import health as health_fold
from warden.domain import signals as sig
from warden.domain import users as users_fold
from warden.domain.ids import incident_stream
from warden.governance.approvals import ApprovalSettings

if TYPE_CHECKING:
    from collections.abc import Mapping
    from concurrent.futures import Future, ThreadPoolExecutor

    from warden.agents.protocol import Agent
    from warden.domain.catalog import Catalog
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.topology import Topology
    from warden.domain.world import World
    from warden.execution.executor import Executor
    from warden.governance.context import ActionRecord, FreezeWindow
    from warden.governance.gate import DecisionGate
    from warden.ingest.probes import Probe
    from warden.ports import Clock, EventStore, Leases


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The knobs of the loop that are not the planes' own."""

    environment: str = "development"
    autonomy: str = "autonomous"
    verification_timeout_s: float = 15.0
    verification_probe_every_s: float = 0.2
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    freezes: tuple[FreezeWindow, ...] = ()
    policy_poll_s: float = 1.0
    autonomy_rules: tuple[control.AutonomyRule, ...] = ()
    agent_caps: tuple[tuple[str, str], ...] = ()
    desired: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    limits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    lease_ttl_s: float = 30.0
    lease_wait_s: float = 120.0


@dataclass
class Folded:
    """What the loop knows, folded from the log."""

    health: dict[str, health_fold.Health] = field(default_factory=dict)
    controls: control.Controls = field(default_factory=control.Controls)
    users: users_fold.Registry = field(default_factory=users_fold.Registry)
    incidents: dict[str, Incident] = field(default_factory=dict)
    actions: deque[ActionRecord] = field(default_factory=deque)
    signals: dict[str, sig.Signals] = field(default_factory=dict)
    reported: dict[str, dict[str, str]] = field(default_factory=dict)
    open_drift: dict[tuple[str, str], str] = field(default_factory=dict)
    isolated: dict[str, isolation.Isolation] = field(default_factory=dict)
    position: int = 0


class Lifecycle:
    """The parts and helpers every lifecycle mixin uses; the runtime provides the parts."""

    store: EventStore
    agents: list[Agent]
    gate: DecisionGate
    shadow: DecisionGate | None  # a candidate bundle, decided alongside and never acted on
    executor: Executor
    probes: dict[str, Probe]
    clock: Clock
    settings: RuntimeSettings
    catalog: Catalog
    topology: Topology
    leases: Leases | None
    _state: Folded
    _lease_wait: dict[str, float]
    _last_verification_probe: dict[str, float]
    _asking: dict[tuple[str, str], Future[Plan | None]]
    _slow_pool: ThreadPoolExecutor | None

    def tail(self) -> list[ev.Event]:
        """Fold new events (provided by the runtime)."""
        raise NotImplementedError

    def world(self) -> World:
        """What agents see now (provided by the runtime)."""
        raise NotImplementedError

    def record_probe(self, service: str, probe: str, result: Any, purpose: str) -> None:
        """Store a probe result (provided by the runtime)."""
        raise NotImplementedError

    def _append(self, current: Incident | None, incident_id: str, *events: ev.Event) -> None:
        stream = incident_stream(incident_id)
        version = current.version if current is not None else 0
        self.store.append(stream, list(events), expected_version=version)

    def _event(
        self, current: Incident, type_: str, data: dict[str, Any], key: str = ""
    ) -> ev.Event:
        return ev.derived_event(
            type_,
            incident_stream(current.id),
            data,
            ev.format_time(self.clock.now()),
            key=key,
            subject=current.service,
            correlation_id=current.correlation_id,
            traceparent=current.traceparent,
        )

    def _close(self, current: Incident, type_: str, reason: str, **extra: Any) -> None:
        self._append(current, current.id, self._event(current, type_, {"reason": reason, **extra}))

    def _refreshed(self, incident_id: str) -> Incident:
        self.tail()
        return self._state.incidents[incident_id]

    # Steps one part of the lifecycle takes into another (each defined in its mixin).

    def _hold_leases(self, current: Incident) -> bool:
        raise NotImplementedError

    def _recover(self, current: Incident) -> None:
        raise NotImplementedError

    def _fail_plan(self, current: Incident, reason: str) -> None:
        raise NotImplementedError
