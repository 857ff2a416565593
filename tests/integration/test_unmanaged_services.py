"""Services with ``managed: false``: watched, never planned a restart Warden cannot carry out."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from warden.agents.service_down import ServiceDownAgent
from warden.assembly import build
from warden.config import parse_config
from warden.domain.incident import State
from warden.governance.policy import BUILTIN_BUNDLE
from warden.testing import ManualClock, ScriptedProbe

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


def _config(tmp_path: Path, **extra: Any) -> Any:
    shutil.copytree(BUILTIN_BUNDLE, tmp_path / "policies")
    raw = {
        "state_dir": "state",
        "policy_dir": "policies",
        "services": [
            {"name": "ledger", "health": "http://127.0.0.1:9/health", "managed": False},
        ],
        **extra,
    }
    return parse_config(raw, tmp_path)


def test_an_unmanaged_service_that_fails_is_escalated_never_restarted(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    probe = ScriptedProbe()
    warden = build(_config(tmp_path), clock, probes={"ledger": probe})
    try:
        assert warden.runtime.settings.unmanaged == frozenset({"ledger"})
        assert not warden.runtime.world().restartable("ledger")
        probe.healthy = False
        for _ in range(4):
            clock.advance(1)
            warden.runtime.record_probe("ledger", "scripted", probe.check(), "watch")
            warden.runtime.tick()
        (incident,) = warden.runtime.incidents.values()
        assert incident.state is State.ESCALATED
        assert incident.plan is None
        assert incident.intended == ()
        # The detection still opens the incident: a person learns of it.
        assert incident.kind == "service_down"
    finally:
        warden.close()


def test_a_restart_routed_to_an_adapter_restarts_unmanaged_services(tmp_path: Path) -> None:
    actions = {"restart_service": {"adapter": "http", "url": "http://127.0.0.1:9/{target}"}}
    warden = build(_config(tmp_path, actions=actions), probes={"ledger": ScriptedProbe()})
    try:
        assert warden.runtime.settings.unmanaged == frozenset()
        assert warden.runtime.world().restartable("ledger")
    finally:
        warden.close()


def test_the_service_down_agent_proposes_for_managed_services_only() -> None:
    from warden.domain.health import Health
    from warden.domain.incident import Incident
    from warden.domain.world import World

    at = "2026-11-25T11:59:00Z"
    health = Health(
        "ledger",
        consecutive_failures=3,
        failing_since=at,
        evidence=("e",),
        last_error="connection refused",
    )
    incident = Incident("i", "ledger", State.OPEN, at, at, "down")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    agent = ServiceDownAgent()
    managed = World(now=now, health={"ledger": health})
    assert agent.propose(incident, managed) is not None
    watched = World(now=now, health={"ledger": health}, unmanaged=frozenset({"ledger"}))
    assert agent.propose(incident, watched) is None
    assert [d.service for d in agent.detect(watched)] == ["ledger"]
