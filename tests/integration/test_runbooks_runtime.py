"""Runbooks in a running Warden: real store, gate, Cedar and executor on a manual clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.integration.harness import Harness, make_harness
from warden.domain import events as ev
from warden.domain.kpis import by_agent, resilience_report
from warden.runbooks.loader import EXAMPLE

if TYPE_CHECKING:
    from pathlib import Path

# The documented example, surer of itself and throttled for 5 minutes.
RUNBOOK = EXAMPLE.replace("once_within: 10m", "once_within: 5m").replace("0.8", "0.9") + "\n"
assert "once_within: 5m" in RUNBOOK and "confidence: 0.9" in RUNBOOK


def oom(h: Harness, service: str, n: int, namespace: str = "prod") -> ev.Event:
    return h.ingest(
        ev.ALERT_FIRING,
        service,
        alertname="KubePodOOMKilled",
        status="firing",
        fingerprint=f"f{n}",
        labels={"namespace": namespace},
        starts_at="2026-11-25T12:00:00Z",
        group_key="g",
    )


def harness(tmp_path: Path, text: str = RUNBOOK, **overrides: object) -> Harness:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "oom.yaml").write_text(text)
    return make_harness(tmp_path, runbooks_dir=directory, **overrides)


def plans(h: Harness) -> list[dict[str, object]]:
    return [e.data["plan"] for e in h.events(ev.PLAN_PROPOSED)]


def test_an_alert_storm_gives_one_plan_under_the_runbooks_name_and_version(
    tmp_path: Path,
) -> None:
    h = harness(tmp_path)
    try:
        for n in range(20):
            oom(h, "payments", n)
            h.clock.advance(1)
        oom(h, "orders", 99, namespace="staging")
        h.settle()
        proposed = plans(h)
        assert len(proposed) == 1, proposed
        plan = proposed[0]
        assert plan["agent"] == "restart-on-oom"
        loaded = h.events(ev.RUNBOOKS_LOADED)[0].data
        assert plan["agent_version"] == loaded["runbooks"]["restart-on-oom"]
        assert [c for c in h.adapter.calls if c[0] == "restart_service"] == [
            ("restart_service", "payments", {})
        ]
        decided = h.events(ev.DECISION_RECORDED)[0].data["decision"]
        assert decided["outcome"] == "allow"
        kpis = by_agent(resilience_report(h.warden.store.read_all()))
        assert list(kpis) == [f"restart-on-oom@{plan['agent_version']}"]
        assert kpis[f"restart-on-oom@{plan['agent_version']}"].incidents == 1
    finally:
        h.close()


def test_the_throttle_survives_a_restart(tmp_path: Path) -> None:
    h = harness(tmp_path)
    try:
        oom(h, "payments", 1)
        h.settle()
        assert len(plans(h)) == 1
    finally:
        h.close()
    again = make_harness(tmp_path, runbooks_dir=tmp_path / "runbooks")
    try:
        watcher = again.warden.runbooks
        assert watcher is not None
        # Recalled from the incident the runbook opened, not from this process's memory.
        assert list(watcher.agents[0].fired) == ["payments"]
        again.clock.advance(60)  # within the 5 minutes
        oom(again, "payments", 2)
        again.settle()
        assert len(plans(again)) == 1
    finally:
        again.close()


def test_max_autonomy_caps_a_runbook(tmp_path: Path) -> None:
    h = harness(tmp_path, agent_caps=(("restart-on-oom", "recommend"),))
    try:
        oom(h, "payments", 1)
        h.settle()
        assert len(plans(h)) == 1
        decided = h.events(ev.DECISION_RECORDED)[0].data["decision"]
        assert decided["outcome"] == "deny"
        assert not [c for c in h.adapter.calls if c[0] == "restart_service"]
    finally:
        h.close()


def test_a_shadow_runbook_records_its_plan_and_nothing_acts(tmp_path: Path) -> None:
    h = harness(tmp_path, text="mode: shadow\n" + RUNBOOK)
    try:
        oom(h, "payments", 1)
        h.settle()
        assert plans(h) == []
        shadowed = h.events(ev.RUNBOOK_SHADOWED)
        assert [s.data["plan"]["steps"][0]["target"] for s in shadowed] == ["payments"]
    finally:
        h.close()


def test_a_broken_edit_keeps_the_running_set_and_says_why(tmp_path: Path) -> None:
    h = harness(tmp_path)
    try:
        (tmp_path / "runbooks" / "oom.yaml").write_text(
            RUNBOOK.replace("restart_service", "reboot")
        )
        watcher = h.warden.runbooks
        assert watcher is not None
        assert watcher.poll() is False
        rejected = h.events(ev.RUNBOOKS_REJECTED)
        assert "oom.yaml line 9" in rejected[0].data["error"]
        oom(h, "payments", 1)
        h.settle()
        assert len(plans(h)) == 1
        (tmp_path / "runbooks" / "oom.yaml").write_text(RUNBOOK.replace("0.9", "0.95"))
        assert watcher.poll() is True
        assert len(h.events(ev.RUNBOOKS_LOADED)) == 2
    finally:
        h.close()
