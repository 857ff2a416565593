"""The fleet end to end, reduced: 20 services for a day through the real core.

Every fault injected is accounted for, nothing unsafe happens, and the same seed gives
the very same result (its digest), in one process or split between worker processes; the
CLI prints the table and writes the report.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from warden.cli.main import app
from warden.domain import events as ev
from warden.sim.driver import state_directory
from warden.sim.fleet import (
    OUTCOMES,
    FleetRun,
    FleetSettings,
    WorkerLost,
    fleet_report,
    heaviest_first,
    run_fleet,
)
from warden.sim.fleetgen import generate

if TYPE_CHECKING:
    from warden.sim.format import Signal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SMALL = FleetSettings(services=20, days=1.0, faults=30, seed=11)


TIMINGS = ("wall_s", "cpu_s", "cpu_s_by_worker", "cpu_s_by_domain", "events_per_s", "workers")


def test_a_small_fleet_accounts_for_every_fault_and_repeats_itself() -> None:
    report = run_fleet(SMALL, workers=1)
    assert report["workers"] == 1 and report["cpu_s_by_worker"] == []
    rows = report["scenarios"]
    assert report["faults_injected"] == len(rows) == 30
    assert sum(report["outcomes"].values()) == 30
    assert all(r["outcome"] in OUTCOMES for r in rows)
    assert report["safety_violations"] == []
    assert report["summary"]["autonomous"]["safety_violations"] == 0
    by_class = report["by_class"]
    assert sum(c["faults"] for c in by_class.values()) == 30
    # A plain crash is restarted by Warden and beats the person on call.
    crashes = [r for r in rows if r["fault_class"] == "process_crash"]
    assert crashes
    fixed = [r for r in crashes if r["outcome"] == "recovered"]
    assert fixed
    for row in fixed:
        run = row["runs"]["autonomous"]
        assert run["verdict"] == "RIGHT"
        assert run["mttr_s"] < row["baseline"]["mttr_s"]
    assert report["events"] > 0 and report["ticks"] > 0
    # Split between two worker processes: the very same report, only timed differently.
    again = run_fleet(SMALL, workers=2)
    assert again["workers"] == 2 and len(again["cpu_s_by_worker"]) == 2
    assert len(again["cpu_s_by_domain"]) == report["fleet"]["domains"]
    assert again["cpu_s"] >= sum(again["cpu_s_by_worker"])
    assert again["digest"] == report["digest"]
    assert {k: v for k, v in again.items() if k not in TIMINGS} == {
        k: v for k, v in report.items() if k not in TIMINGS
    }
    other = FleetSettings(services=20, days=1.0, faults=30, seed=12)
    assert run_fleet(other, workers=1)["digest"] != report["digest"]


def test_the_domains_with_the_most_work_go_first() -> None:
    fleet = generate(40, 5, 300, seed=3)
    order = heaviest_first(fleet)
    assert sorted(order) == sorted(fleet.domains())
    weight = dict.fromkeys(fleet.domains(), 0)
    for item in [s.domain for s in fleet.services] + [i.domain for i in fleet.instances]:
        weight[item] += 1
    loads = [weight[d] for d in order]
    assert loads == sorted(loads, reverse=True)
    assert heaviest_first(fleet) == order  # deterministic


def test_the_cli_runs_a_fleet_and_writes_its_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["simulate", "--fleet", "--services", "12", "--days", "0.5", "--faults", "6",
         "--workers", "2", "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Fleet: 12 services" in result.output
    assert "in 1 domains" in result.output
    assert "in 1 process(es)" in result.output  # no more workers than domains
    assert "safety violations: 0" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["format"] == "warden-fleet-report/1"
    assert report["faults_injected"] == 6
    assert "<svg" in (tmp_path / "report.html").read_text()


def test_the_cli_refuses_a_fleet_it_cannot_build(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--fleet", "--services", "3", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "at least 5 services" in result.output
    result = runner.invoke(
        app, ["simulate", "--fleet", "--autonomy", "observe,autonomous", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "one level" in result.output
    result = runner.invoke(app, ["simulate", "--fleet", "--workers", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--workers" in result.output
    bad = tmp_path / "baseline.yaml"
    bad.write_text("version: 1\ndiagnose: {median_s: 0}\n")
    result = runner.invoke(app, ["simulate", "--fleet", "--baseline", str(bad)])
    assert result.exit_code == 2
    assert "diagnose.median_s" in result.output and "fix:" in result.output


def test_a_worker_that_dies_ends_the_run_with_a_reason_and_the_fix() -> None:
    killed: list[int] = []

    def kill_a_worker(phase: str, fraction: float) -> None:
        # Once the domains are handed out, as the machine's OOM killer would.
        if phase == "built" and not killed:
            worker = multiprocessing.active_children()[0]
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)

    with pytest.raises(WorkerLost) as lost:
        run_fleet(SMALL, kill_a_worker, workers=2)
    assert killed
    message = str(lost.value)
    assert "worker process died" in message
    assert "fewer --workers" in message
    assert f"of {len(generate(20, 1.0, 30, 11).domains())} domains unfinished" in message


def test_a_metric_series_ends_on_its_recovered_value_once_its_fault_is_fixed() -> None:
    """A series stopped while its fault held (paged, or past its end) shows the recovery.

    Otherwise a faulty sample stays the service's latest for the rest of the run, and a
    later fault there is judged on an error rate that ended hours before.
    """
    fleet = generate(20, 1.0, 30, 11)
    with state_directory() as directory:
        run = FleetRun(fleet, SMALL, Path(directory))
        run.execute()
        checked = 0
        for shard in run.shards:
            latest: dict[tuple[str, str], float] = {}
            for event in shard.runtime.events():
                if event.type == ev.METRIC_SAMPLED:
                    latest[event.data["service"], event.data["metric"]] = event.data["value"]
            last: dict[tuple[str, str], tuple[float, Signal]] = {}
            for signal in shard.scenario.signals:
                metric = signal.metric
                if metric is None or metric.recovered is None or signal.fault is None:
                    continue
                key = (metric.service, metric.name)
                if key not in last or signal.at >= last[key][0]:
                    last[key] = (signal.at, signal)
            for key, (_, signal) in last.items():
                state = shard.world.faults[signal.fault or ""]
                if state.active or not state.activations or key not in latest:
                    continue
                assert signal.metric is not None
                assert latest[key] == signal.metric.recovered, key
                checked += 1
        assert checked
        for shard in run.shards:
            shard.close()


def test_a_proposal_is_judged_in_the_instance_it_would_act_on() -> None:
    """As a call that ran: an incident's subject may be a healthy caller of the fault."""
    settings = FleetSettings(services=30, days=1.0, faults=80, seed=2)  # has two such
    fleet = generate(settings.services, settings.days, settings.faults, settings.seed)
    with state_directory() as directory:
        run = FleetRun(fleet, settings, Path(directory))
        report = fleet_report(fleet, settings, run.execute())
        approvals = {r["name"]: r["runs"]["autonomous"]["approvals"] for r in report["scenarios"]}
        expected: dict[str, int] = dict.fromkeys(approvals, 0)
        for shard in run.shards:
            for event in shard.runtime.events():
                if event.type != ev.APPROVAL_REQUESTED:
                    continue
                at = run.seconds(event.time)
                target = str(event.data["proposal"]["step"]["target"])
                found = shard.instance_at(shard.scenario.owner_of(target), at)
                found = found or shard.instance_at(event.subject, at)
                if found is not None:
                    expected[found.name] += 1
            shard.close()
        assert sum(expected.values()) > 0
        assert approvals == expected
