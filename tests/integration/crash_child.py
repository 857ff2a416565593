"""A Warden process for the crash test: file-backed targets, killed at random points.

Run as ``python crash_child.py STATE_DIR``. Services are "down" or "ok" according to
``STATE_DIR/health/<service>``; every side effect is appended (fsync'd) to
``STATE_DIR/ledger.jsonl``; every event the ingest gate accepted is appended to
``STATE_DIR/accepted.log`` after the store confirmed it. Exits 0 once every incident is
closed and every service is healthy (or 3 after ``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.assembly import build
from warden.config import ServiceConfig, WardenConfig
from warden.domain.events import parse_time
from warden.domain.incident import Incident, State
from warden.domain.plans import Plan, Step
from warden.ingest.probes import ProbeResult
from warden.ports import ActionResult

if TYPE_CHECKING:
    from warden.domain.health import Health

SERVICES = ("payments", "orders")


def append_durably(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class FileProbe:
    path: Path

    def check(self) -> ProbeResult:
        healthy = self.path.exists() and self.path.read_text().strip() == "ok"
        if healthy:
            return ProbeResult(True, 1.0, 200, "")
        return ProbeResult(False, 1.0, None, "connection refused")


@dataclass
class LedgerAdapter:
    """The outside world: side effects land in a ledger; restarts heal the service."""

    state: Path

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        # Real actions take time; a kill lands before, during or after the side effect.
        time.sleep(0.1)
        entry = {"action": action, "target": target, "key": params.get("idempotency_key")}
        append_durably(self.state / "ledger.jsonl", json.dumps(entry, sort_keys=True))
        if action in ("restart_service", "start_service"):
            (self.state / "health" / target).write_text("ok")
        time.sleep(0.1)
        return ActionResult(True, f"{action} {target}", {})

    def check(self, action: str, target: str, params: dict[str, Any] | None = None) -> bool | None:
        # The ledger has no incident in it, so a restart cannot be attributed: unknown.
        return None


@dataclass(frozen=True)
class DrainRestartRestore:
    name: str = "drain-restart"
    handles: frozenset[str] = frozenset({"service_down"})
    priority: int = 100

    def detect(self, world: Any) -> list[Any]:
        from warden.agents.service_down import ServiceDownAgent

        return ServiceDownAgent(failure_threshold=2).detect(world)

    def propose(self, incident: Any, world: Any) -> Plan | None:
        health = world.health.get(incident.service)
        if health is None or health.healthy:
            return None
        steps = (
            Step("drain_service", incident.service),
            Step("restart_service", incident.service),
            Step("restore_service", incident.service),
        )
        return Plan(self.name, steps, "drain, restart, restore", health.evidence, 0.9)


def _holds(incident: Incident, service: str, health: Health) -> bool:
    """Whether ``incident`` holds the fault ``health`` shows on ``service``."""
    if incident.service != service:
        return False
    if incident.first_signal_at == health.failing_since:
        return True
    return (
        incident.state is State.ESCALATED
        and bool(incident.last_paged_at)
        and parse_time(incident.last_paged_at) >= parse_time(health.failing_since)
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("state", type=Path)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    state: Path = args.state
    policies = state / "policies"
    config = WardenConfig(
        services=tuple(
            ServiceConfig(name, "http://127.0.0.1:9/health", managed=False, domain=name)
            for name in SERVICES
        ),
        state_dir=state / "warden",
        environment="test",
        policy_dir=policies,
        verification_timeout_s=5.0,
        lease_ttl_s=1.0,  # a killed worker's leases lapse quickly
    )
    probes = {name: FileProbe(state / "health" / name) for name in SERVICES}
    warden = build(
        config,
        adapter=LedgerAdapter(state),
        probes=probes,
        agents=[DrainRestartRestore()],
        action_workers=4,  # as a live run: actions off the loop
    )
    # Tell the campaign start-up is over, so its kills land in the work, not the imports.
    append_durably(state / "started", str(os.getpid()))
    runtime = warden.runtime
    original_admit = runtime.ingest.admit

    def admit(payload: Any, stream: str, source: str) -> Any:
        admission = original_admit(payload, stream, source)
        if admission.event is not None:
            append_durably(state / "accepted.log", admission.event.id)
        return admission

    runtime.ingest.admit = admit  # type: ignore[method-assign]
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        for name, probe in probes.items():
            runtime.record_probe(name, "file", probe.check(), "watch")
        runtime.tick()
        incidents = list(runtime.incidents.values())
        health = runtime.world().health
        # Settled: every incident closed, and every failing service's fault is held by an
        # incident: its own, or an escalated one paged while this fault was going on (it
        # joins that one: a human has it, see domain/joining.py). Escalated stays down
        # until a human acts.
        handled = all(
            h.healthy or any(_holds(i, s, h) for i in incidents) for s, h in health.items()
        )
        if handled and all(i.state.terminal for i in incidents):
            warden.close()
            return 0
        time.sleep(0.02)
    # Say what did not settle, for the campaign's failure message.
    for incident in runtime.incidents.values():
        if not incident.state.terminal:
            print(
                f"incident {incident.id} of {incident.service} left {incident.state.value}",
                file=sys.stderr,
            )
    for name, health in runtime.world().health.items():
        if not health.healthy and not any(
            _holds(i, name, health) for i in runtime.incidents.values()
        ):
            print(
                f"{name} failing since {health.failing_since}, held by no incident", file=sys.stderr
            )
    warden.close()
    return 3


if __name__ == "__main__":
    sys.exit(main())
