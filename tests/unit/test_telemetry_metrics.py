"""Prometheus metrics fed by a scripted history; the exposition is parsed back and checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.plans import Plan, Step, step_hash
from warden.telemetry.metrics import MetricsListener

if TYPE_CHECKING:
    from warden.store.sqlite import SQLiteEventStore

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def at(seconds: float) -> str:
    return ev.format_time(T0 + timedelta(seconds=seconds))


class Feed:
    def __init__(self, listener: MetricsListener) -> None:
        self.listener = listener
        self.n = 0

    def emit(self, stream: str, type_: str, seconds: float, data: dict[str, Any]) -> None:
        self.n += 1
        self.listener(
            ev.Event(
                id=f"e{self.n}", source="test", type=type_, time=at(seconds), data=data,
                stream=stream, position=self.n,
            )
        )  # fmt: skip

    def incident(self, name: str, opened: float, first_signal: float) -> tuple[str, str]:
        stream = f"incident-{name}"
        plan = Plan("service-down", (Step("restart_service", name),), "down", (), 0.9)
        data = {"incident_id": name, "service": name, "first_signal_at": at(first_signal)}
        self.emit(stream, ev.INCIDENT_OPENED, opened, data)
        return stream, step_hash(name, 0, plan.steps[0])

    def planned(self, stream: str, seconds: float) -> None:
        name = stream.removeprefix("incident-")
        plan = Plan("service-down", (Step("restart_service", name),), "down", (), 0.9)
        self.emit(stream, ev.PLAN_PROPOSED, seconds, {"plan": plan.to_dict()})

    def decided(self, stream: str, hash_: str, seconds: float, outcome: Outcome, v: str) -> None:
        d = Decision(outcome, hash_, (Reason("p", "m"),), 1, v)
        self.emit(stream, ev.DECISION_RECORDED, seconds, {"decision": d.to_dict(), "index": 0})


def feed_history(listener: MetricsListener) -> None:
    f = Feed(listener)
    f.emit("service-a", ev.PROBE_FAILED, 0, {"service": "a"})
    f.emit("service-a", ev.PROBE_FAILED, 1, {"service": "a"})
    a, ha = f.incident("a", opened=10, first_signal=0)  # detect 10
    f.planned(a, 12)
    f.decided(a, ha, 13, Outcome.ALLOW, "v1")  # decide 3, latency 1
    f.emit(a, ev.STEP_INTENDED, 14, {"index": 0, "action": "restart_service", "target": "a"})
    f.emit(a, ev.STEP_SUCCEEDED, 16, {"index": 0, "duration_ms": 1500})  # 1.5 s
    f.emit(a, ev.VERIFICATION_STARTED, 17, {})
    f.emit(a, ev.VERIFICATION_PASSED, 20, {})
    f.emit(a, ev.INCIDENT_RESOLVED, 20, {})  # MTTR 20
    b, hb = f.incident("b", opened=104, first_signal=100)  # detect 4
    f.planned(b, 105)
    f.decided(b, hb, 107, Outcome.NEEDS_APPROVAL, "v1")  # decide 3, latency 2
    f.emit(b, ev.APPROVAL_GRANTED, 130, {"step_hash": hb, "approver": "alice"})
    f.decided(b, hb, 131, Outcome.ALLOW, "v2")  # latency 1; policy v1 -> v2
    f.emit(b, ev.STEP_INTENDED, 132, {"index": 0, "action": "restart_service", "target": "b"})
    f.emit(b, ev.STEP_FAILED, 135, {"index": 0, "duration_ms": 3000})  # 3.0 s
    f.emit(b, ev.INCIDENT_ESCALATED, 136, {"reason": "step failed"})
    c, _ = f.incident("c", opened=200, first_signal=199)  # detect 1
    f.planned(c, 201)
    f.emit(ev.CONTROL_STREAM, ev.KILL_SWITCH_ENGAGED, 300, {"by": "ops"})


def scrape(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def samples(store: SQLiteEventStore) -> Samples:
    for source in ("probe:a", "probe:a", "webhook"):
        store.quarantine(source, "bad", "{}", at(0))
    registry = CollectorRegistry()
    listener = MetricsListener(registry, quarantine=store)
    feed_history(listener)
    return scrape(registry)


def test_events_are_counted_by_type(samples: Samples) -> None:
    expected = {
        ev.PROBE_FAILED: 2, ev.INCIDENT_OPENED: 3, ev.PLAN_PROPOSED: 3,
        ev.DECISION_RECORDED: 3, ev.APPROVAL_GRANTED: 1, ev.STEP_INTENDED: 2,
        ev.STEP_SUCCEEDED: 1, ev.STEP_FAILED: 1, ev.VERIFICATION_STARTED: 1,
        ev.VERIFICATION_PASSED: 1, ev.INCIDENT_RESOLVED: 1, ev.INCIDENT_ESCALATED: 1,
        ev.KILL_SWITCH_ENGAGED: 1,
    }  # fmt: skip
    counted = {
        dict(labels)["type"]: v
        for (name, labels), v in samples.items()
        if name == "warden_events_ingested_total"
    }
    assert counted == expected


def test_quarantined_inputs_are_counted_by_source(samples: Samples) -> None:
    assert value(samples, "warden_quarantined_inputs_total", source="probe:a") == 2
    assert value(samples, "warden_quarantined_inputs_total", source="webhook") == 1


def test_decisions_approvals_and_actions(samples: Samples) -> None:
    assert value(samples, "warden_decisions_total", outcome="allow") == 2
    assert value(samples, "warden_decisions_total", outcome="needs_approval") == 1
    assert ("warden_decisions_total", frozenset({("outcome", "deny")})) not in samples
    assert value(samples, "warden_approvals_total") == 1
    ok = {"action": "restart_service", "result": "succeeded"}
    failed = {"action": "restart_service", "result": "failed"}
    assert value(samples, "warden_actions_total", **ok) == 1
    assert value(samples, "warden_actions_total", **failed) == 1
    action = {"action": "restart_service"}
    assert value(samples, "warden_action_duration_seconds_count", **action) == 2
    assert value(samples, "warden_action_duration_seconds_sum", **action) == pytest.approx(4.5)
    assert value(samples, "warden_action_duration_seconds_bucket", le="1.0", **action) == 0
    assert value(samples, "warden_action_duration_seconds_bucket", le="2.5", **action) == 1
    assert value(samples, "warden_decision_latency_seconds_count") == 3
    assert value(samples, "warden_decision_latency_seconds_sum") == pytest.approx(1 + 2 + 1)
    assert value(samples, "warden_kill_switch_engaged") == 1


def test_incidents_by_state(samples: Samples) -> None:
    assert value(samples, "warden_incidents_opened_total") == 3
    states = {
        dict(labels)["state"]: v
        for (name, labels), v in samples.items()
        if name == "warden_incidents"
    }
    assert states == {
        "open": 0, "planned": 1, "awaiting_approval": 0, "executing": 0, "verifying": 0, "compensating": 0,
        "resolved": 1, "escalated": 1, "rolled_back": 0, "relapsed": 0,
    }  # fmt: skip
    assert value(samples, "warden_incident_mttr_seconds_count") == 1
    assert value(samples, "warden_incident_mttr_seconds_sum") == 20


def test_kpi_gauges(samples: Samples) -> None:
    assert value(samples, "warden_kpi_mttr_seconds", stat="mean") == 20
    assert value(samples, "warden_kpi_mttr_seconds", stat="max") == 20
    # time to detect: [1, 4, 10]
    assert value(samples, "warden_kpi_time_to_detect_seconds", stat="mean") == pytest.approx(5)
    assert value(samples, "warden_kpi_time_to_detect_seconds", stat="p50") == 4
    assert value(samples, "warden_kpi_time_to_detect_seconds", stat="p90") == 10
    # time to decide: [3, 3]
    assert value(samples, "warden_kpi_time_to_decide_seconds", stat="mean") == 3
    # decision latency: [1, 1, 2]
    assert value(samples, "warden_kpi_decision_latency_seconds", stat="p50") == 1
    assert value(samples, "warden_kpi_decision_latency_seconds", stat="p99") == 2
    assert value(samples, "warden_kpi_action_duration_seconds", stat="mean") == pytest.approx(2.25)
    assert value(samples, "warden_kpi_automation_coverage_ratio") == pytest.approx(0.5)
    assert value(samples, "warden_kpi_remediation_success_ratio") == pytest.approx(0.5)
    assert value(samples, "warden_kpi_escalations_per_incident") == pytest.approx(1 / 3)
    assert value(samples, "warden_kpi_escalations_per_day") == pytest.approx(1.0)
    assert value(samples, "warden_kpi_policy_changes") == 1


def test_an_empty_history_exposes_zeroes_not_made_up_kpis() -> None:
    registry = CollectorRegistry()
    MetricsListener(registry)
    samples = scrape(registry)
    assert value(samples, "warden_incidents", state="resolved") == 0
    assert value(samples, "warden_kpi_policy_changes") == 0
    assert not [k for k in samples if k[0].startswith("warden_kpi_mttr")]
    assert not [k for k in samples if k[0] == "warden_quarantined_inputs_total"]


def test_releasing_the_kill_switch_resets_the_gauge() -> None:
    registry = CollectorRegistry()
    listener = MetricsListener(registry)
    feed = Feed(listener)
    feed.emit(ev.CONTROL_STREAM, ev.KILL_SWITCH_ENGAGED, 1, {"by": "ops"})
    feed.emit(ev.CONTROL_STREAM, ev.KILL_SWITCH_RELEASED, 2, {"by": "ops"})
    assert value(scrape(registry), "warden_kill_switch_engaged") == 0


def test_the_listener_reports_the_kpis_it_has_seen() -> None:
    listener = MetricsListener(CollectorRegistry())
    feed_history(listener)
    report = listener.report()
    assert (report.incidents, report.resolved, report.escalated, report.open) == (3, 1, 1, 1)


def test_a_bad_event_is_counted_as_an_error_not_raised() -> None:
    registry = CollectorRegistry()
    listener = MetricsListener(registry)
    feed = Feed(listener)
    stream, _ = feed.incident("x", opened=1, first_signal=0)
    feed.emit(stream, ev.DECISION_RECORDED, 2, {"decision": {"outcome": "maybe"}})
    samples = scrape(registry)
    assert value(samples, "warden_metrics_listener_errors_total") == 1
    assert value(samples, "warden_incidents_opened_total") == 1
