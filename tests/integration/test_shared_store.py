"""Two workers on one PostgreSQL log: an outage is handled once, and the CLI finds the log."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from tests.builders import wait_for
from warden.agents.service_down import ServiceDownAgent
from warden.cli.main import app
from warden.config import ProbeConfig
from warden.domain import events as ev
from warden.domain.incident import State
from warden.store.location import pointed

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.postgres


@pytest.fixture
def workers(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Iterator[list[Harness]]:
    made = [
        make_harness(
            tmp_path / f"worker-{n}",
            agents=[ServiceDownAgent()],
            store_dsn=postgres_dsn,
            store_schema=postgres_schema,
            probe=ProbeConfig(interval_s=0.05, jitter=0.0),
        )
        for n in (1, 2)
    ]
    yield made
    for h in made:
        h.close()


def test_two_workers_share_one_outage_and_act_once(workers: list[Harness]) -> None:
    one, two = workers
    for h in workers:
        h.probes["payments"].healthy = False
    for _ in range(3):
        for h in workers:
            h.clock.advance(1)
            h.observe("payments")
    for _ in range(20):
        for h in workers:
            h.clock.advance(0.25)
            h.tick()
    calls = one.adapter.calls + two.adapter.calls
    assert calls == [("restart_service", "payments", {})]  # one worker acted, once
    for h in workers:
        (incident,) = h.incidents("payments")
        assert incident.state is State.RESOLVED
    assert one.warden.store.read_all() == two.warden.store.read_all()
    intents = [e for e in one.warden.store.read_all() if e.type == ev.STEP_INTENDED]
    assert len(intents) == 1


def test_commands_given_the_state_dir_open_the_shared_log(
    workers: list[Harness], tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    one, _ = workers
    one.fail("payments")
    one.settle()
    state = one.warden.config.state_dir
    assert not (state / "events.db").exists()
    dsn, schema = pointed(state) or ("", "")
    assert schema == postgres_schema
    assert "password" not in dsn
    result = CliRunner().invoke(app, ["incidents", "-s", str(state)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "payments" in result.output and "resolved" in result.output


def checks(h: Harness) -> dict[str, int]:
    return {name: probe.checks for name, probe in h.probes.items()}


def test_each_service_is_probed_by_one_worker_at_a_time(workers: list[Harness]) -> None:
    before = [checks(h) for h in workers]
    for h in workers:
        h.warden.probes.start()
    time.sleep(0.6)
    during = [checks(h) for h in workers]
    for service in workers[0].probes:
        probed = [during[k][service] - before[k][service] for k in (0, 1)]
        assert sorted(p > 0 for p in probed) == [False, True], (service, probed)
    # The owner stops (its leases are released): the other worker takes over at once.
    owner = 0 if during[0]["payments"] > before[0]["payments"] else 1
    workers[owner].warden.probes.stop()
    other = workers[1 - owner]
    handed = checks(other)["payments"]
    wait_for(lambda: checks(other)["payments"] > handed + 3, "the other worker to probe")
    other.warden.probes.stop()
