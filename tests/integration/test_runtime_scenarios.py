"""The walking skeleton end to end with real processes: crash, decide, restart, verify."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from tests.builders import register
from warden.assembly import Warden, build
from warden.cli.main import app
from warden.demo.fleet import demo_config
from warden.domain import events as ev
from warden.domain.incident import Incident, State

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow


def tick_until(warden: Warden, done: Callable[[], bool], deadline_s: float = 25.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        warden.runtime.tick()
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {deadline_s} s: {warden.runtime.incidents}")


def all_healthy(warden: Warden) -> bool:
    health = warden.runtime.world().health
    return len(health) == 3 and all(h.healthy for h in health.values())


def only_incident(warden: Warden) -> Incident:
    (incident,) = warden.runtime.incidents.values()
    return incident


def closed(warden: Warden) -> bool:
    found = warden.runtime.incidents.values()
    return bool(found) and all(i.state.terminal for i in found)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Callable[..., Warden]]:
    made: list[Warden] = []
    pids: list[int] = []

    def make(**overrides: object) -> Warden:
        config = replace(demo_config(tmp_path / "state"), **overrides)  # type: ignore[arg-type]
        warden = build(config)
        warden.start()
        made.append(warden)
        tick_until(warden, lambda: all_healthy(warden))
        return warden

    yield make
    for warden in made:
        for stats in warden.processes.statistics().services:
            pids.extend(stats.pids)
        warden.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_crash_is_detected_decided_restarted_verified(fleet: Callable[..., Warden]) -> None:
    warden = fleet()
    seen: list[ev.Event] = []
    warden.runtime.subscribe(seen.append)
    old_pid = warden.processes.pid("payments")
    warden.processes.kill("payments", signal.SIGKILL)
    tick_until(warden, lambda: closed(warden))

    incident = only_incident(warden)
    assert incident.state is State.RESOLVED, incident.close_reason
    assert incident.service == "payments"
    new_pid = warden.processes.pid("payments")
    assert new_pid is not None
    assert new_pid != old_pid
    assert incident.decisions[0].outcome.value == "allow"
    assert incident.decisions[0].reasons[0].policy_id == "autonomous-low-risk"

    types = [e.type for e in seen if e.stream == f"incident-{incident.id}"]
    assert types == [
        ev.INCIDENT_OPENED, ev.PLAN_PROPOSED, ev.DECISION_RECORDED, ev.STEP_INTENDED,
        ev.STEP_SUCCEEDED, ev.VERIFICATION_STARTED, ev.VERIFICATION_PASSED, ev.INCIDENT_RESOLVED,
    ]  # fmt: skip
    plan = next(e for e in seen if e.type == ev.PLAN_PROPOSED).data["plan"]
    failures = {e.id for e in seen if e.type == ev.PROBE_FAILED}
    assert len(plan["evidence"]) >= 3
    assert set(plan["evidence"]) <= failures
    resolved = next(e for e in seen if e.type == ev.INCIDENT_RESOLVED)
    assert 0 < resolved.data["mttr_s"] < 20
    # Context flows from the incident into every derived event.
    derived = [e for e in seen if e.stream == f"incident-{incident.id}"]
    assert {e.correlation_id for e in derived} == {incident.id}
    assert len({e.traceparent for e in derived}) == 1


def test_kill_switch_stops_the_restart(fleet: Callable[..., Warden]) -> None:
    warden = fleet()
    runner = CliRunner()
    state = str(warden.config.state_dir)
    alice = register(warden.store, "alice", "operator")
    token = str(alice.token_file(warden.config.state_dir))
    result = runner.invoke(
        app, ["killswitch", "engage", "--token-file", token, "--reason", "drill", "-s", state]
    )
    assert result.exit_code == 0, result.output
    warden.processes.kill("payments", signal.SIGKILL)
    tick_until(warden, lambda: closed(warden))
    incident = only_incident(warden)
    assert incident.state is State.ESCALATED
    assert incident.decisions[0].reasons[0].policy_id == "guardrail:kill-switch"
    assert not incident.intended
    assert not warden.processes.running("payments")


def test_supervised_mode_waits_for_approval(fleet: Callable[..., Warden]) -> None:
    warden = fleet(autonomy="supervised")
    warden.processes.kill("payments", signal.SIGKILL)
    tick_until(
        warden,
        lambda: any(i.state is State.AWAITING_APPROVAL for i in warden.runtime.incidents.values()),
    )
    incident = only_incident(warden)
    assert incident.decisions[0].describe().startswith("needs_approval(1)")
    for _ in range(5):
        warden.runtime.tick()
    assert only_incident(warden).state is State.AWAITING_APPROVAL
    assert not warden.processes.running("payments")

    runner = CliRunner()
    state = str(warden.config.state_dir)
    agent = register(warden.store, "service-down").key_file(warden.config.state_dir)
    own = runner.invoke(app, ["approve", incident.id[:10], "--key", str(agent), "-s", state])
    assert own.exit_code != 0
    assert "proposer cannot approve" in own.output
    bob = str(register(warden.store, "bob").key_file(warden.config.state_dir))
    wrong = runner.invoke(
        app, ["approve", incident.id[:10], "--key", bob, "--step-hash", "0" * 64, "-s", state]
    )
    assert wrong.exit_code != 0
    ok = runner.invoke(app, ["approve", incident.id[:10], "--key", bob, "-s", state])
    assert ok.exit_code == 0, ok.output
    tick_until(warden, lambda: closed(warden))
    final = only_incident(warden)
    assert final.state is State.RESOLVED
    assert final.decisions[-1].reasons[0].message == "approved by bob"
    assert warden.processes.running("payments")
