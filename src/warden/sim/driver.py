"""The one place the simulator touches the runtime's construction. Simulation (edge).

Everything that depends on how a Warden is wired (the configuration, the store, the
runtime's constructor, approvals and controls) is here, so a change to the lifecycle or
to the store moves one module. The core it builds is the real one: agents, the Cedar
gate and guardrails, the lifecycle and the executor.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden import operations
from warden.assembly import Warden, build
from warden.config import ServiceConfig, WardenConfig
from warden.domain.errors import ValidationError
from warden.domain.ids import derived_id
from warden.governance import identity
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import Pipeline
from warden.ingest.registry import SchemaRegistry

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from warden.domain import events as ev
    from warden.domain.incident import Incident
    from warden.ingest.probes import ProbeResult
    from warden.ports import ActionAdapter, EventStore, Leases
    from warden.sim.candidate import Candidate
    from warden.sim.format import Scenario

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

SIM_ADMIN = "sim-admin"


class SimClock:
    """The ``Clock`` port on simulated time: the start plus the seconds elapsed."""

    def __init__(self, start: datetime, elapsed: Any) -> None:
        self.start = start
        self._elapsed = elapsed  # a callable giving simulated seconds since the start
        self._last: tuple[float, datetime] = (0.0, start)

    def now(self) -> datetime:
        """The simulated moment (simulated time stands still while the core works)."""
        seconds = float(self._elapsed())
        if seconds != self._last[0]:
            self._last = (seconds, self.start + timedelta(seconds=seconds))
        return self._last[1]


def state_directory() -> tempfile.TemporaryDirectory[str]:
    """Where one run keeps its event log: a temporary SQLite store, for now.

    The in-memory event store replaces this when it lands; callers only see a directory
    that disappears after the run.
    """
    # In memory where the system offers it: a run's log is thrown away, fsyncs buy nothing.
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return tempfile.TemporaryDirectory(prefix="warden-sim-", dir=where)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def config_for(scenario: Scenario, autonomy: str, state_dir: Path) -> WardenConfig:
    """The Warden configuration a scenario's topology and settings amount to."""
    settings = scenario.settings
    services = tuple(
        ServiceConfig(
            name=s.name,
            health_url=f"http://{s.name}.sim.invalid/health",
            depends_on=tuple(s.depends_on),
            managed=False,
            domain=s.domain,
            tier=s.tier,
            desired=tuple((k, _text(v)) for k, v in sorted(s.desired.items())),
            limits=tuple((k, _text(v)) for k, v in sorted(s.limits.items())),
        )
        for s in scenario.topology.services
    )
    return WardenConfig(
        services=services,
        state_dir=state_dir,
        environment=settings.environment,
        autonomy=autonomy,
        failure_threshold=settings.failure_threshold,
        verification_timeout_s=settings.verification_timeout_s,
        agent_settings=dict(settings.agent_settings),
    )


@dataclass
class SimRuntime:
    """A real Warden wired to simulated targets, and the few operations the simulator needs."""

    warden: Warden
    pipeline: Pipeline

    @property
    def store(self) -> EventStore:
        """The run's event log."""
        return self.warden.store

    def tick(self) -> None:
        """One round of the reconcile loop."""
        self.warden.runtime.tick()

    def record_probe(self, service: str, result: ProbeResult) -> None:
        """A watch probe's answer, through the runtime's quality gates."""
        self.warden.runtime.record_probe(service, f"sim:{service}", result, "watch")

    def admit(self, raw: dict[str, Any], stream: str) -> None:
        """One CloudEvent through the ingest gate, as a connector would send it."""
        self.warden.runtime.ingest.admit(raw, stream, "sim")

    def incidents(self) -> dict[str, Incident]:
        """Every incident so far, by id."""
        return self.warden.runtime.incidents

    def approve(self, incident_id: str, approver: str, when: datetime) -> bool:
        """Approve the step an incident awaits; False when it no longer fits.

        The simulated approver is a registered person who signs, as a real one must; their
        key follows from their name, so the same seed gives the same run.
        """
        key = self._person(approver, when)
        try:
            operations.approve(
                self.store,
                incident_id,
                key,
                when=when,
                settings=self.warden.config.approvals,
                nonce=derived_id("sim-nonce", incident_id, approver, str(when)),
            )
        except ValidationError:
            return False
        return True

    def _person(self, name: str, when: datetime) -> Ed25519PrivateKey:
        registry = operations.users(self.store)
        if registry.current(name) is None:
            admin = registry.current(SIM_ADMIN)
            if admin is None:
                operations.add_user(
                    self.store, SIM_ADMIN, "admin", None, when,
                    entropy=identity.seeded_entropy(f"sim:{SIM_ADMIN}"),
                )  # fmt: skip
                admin = operations.users(self.store).current(SIM_ADMIN)
            operations.add_user(
                self.store, name, "approver", admin, when,
                public_key=identity.public_key_of(identity.seeded_key(f"sim:{name}")),
                entropy=identity.seeded_entropy(f"sim:{name}"),
            )  # fmt: skip
        return identity.seeded_key(f"sim:{name}")

    def control(self, type_: str, data: dict[str, str], when: datetime) -> None:
        """An operator control: kill switch, autonomy."""
        operations.control(self.store, type_, data, when)

    def events(self) -> list[ev.Event]:
        """The whole log, in order."""
        return self.store.read_all()

    def close(self) -> None:
        """Fold the last events and close the store."""
        self.warden.close()


def open_runtime(
    scenario: Scenario,
    autonomy: str,
    state_dir: Path,
    clock: SimClock,
    adapter: ActionAdapter,
    probes: Mapping[str, Any] | None = None,
    *,
    store: EventStore | None = None,
    leases: Leases | None = None,
    candidate: Candidate | None = None,
) -> SimRuntime:
    """The real Warden core for one run.

    Probes are given to the runtime empty: the simulator probes on simulated time itself
    and records the answers, so no probe depends on the wall clock. ``store`` and
    ``leases`` replace the temporary SQLite pair (the fleet runs on the in-memory ones).
    A ``candidate`` (a runbook, agent or bundle under evaluation) goes live in the run.
    """
    config = config_for(scenario, autonomy, state_dir)
    if candidate is not None:
        config = candidate.configure(config, state_dir)
    warden = build(
        config,
        clock,
        adapter=adapter,
        probes=dict(probes or {}),
        agents=candidate.agents(config) if candidate is not None else None,
        store=store,
        leases=leases,
        registry=_registry(),
    )
    runtime = warden.runtime
    # The audit log catches up once, when the run closes, instead of after every tick.
    runtime.after_tick = None
    # The same quality gates, with the schemas compiled once for every run.
    runtime.ingest = IngestGate(warden.store, _registry(), clock)
    return SimRuntime(warden, Pipeline(runtime.ingest))


@functools.cache
def _registry() -> SchemaRegistry:
    return SchemaRegistry()
