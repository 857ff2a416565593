"""Metrics and traces wired into a real Runtime: a crash is detected, decided, fixed, verified.

The runtime runs on a manual clock with the real ingest gate, agent, Cedar policy and
executor; only the action adapter is a small in-test implementation, and a human approval
is given the way `warden approve` gives it when the policy asks for one (beside a forged,
unsigned one that must not count).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import register
from warden import operations
from warden.agents.service_down import ServiceDownAgent
from warden.domain import events as ev
from warden.domain.catalog import Catalog
from warden.domain.ids import incident_stream
from warden.domain.incident import Incident, State
from warden.domain.kpis import resilience_report
from warden.execution.executor import Executor
from warden.governance.gate import DecisionGate
from warden.governance.identity import ApprovalCheck
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle
from warden.ingest.gate import IngestGate
from warden.ingest.probes import ProbeResult
from warden.ingest.registry import SchemaRegistry
from warden.ports import ActionResult
from warden.runtime import Runtime, RuntimeSettings
from warden.telemetry.metrics import MetricsListener
from warden.telemetry.tracing import TracingListener

if TYPE_CHECKING:
    from warden.store.sqlite import SQLiteEventStore
    from warden.testing import ManualClock


class Restarts:
    """An action adapter that records what it was asked to do and succeeds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        self.calls.append((action, target))
        return ActionResult(True, "restarted", {})


def forge(store: SQLiteEventStore, incident: Incident, who: str, clock: ManualClock) -> None:
    """An approval written straight into the store, unsigned: recorded, never counted."""
    hash_ = incident.step_hashes[incident.next_step]
    event = ev.derived_event(
        ev.APPROVAL_GRANTED,
        incident_stream(incident.id),
        {"step_hash": hash_, "approver": who},
        ev.format_time(clock.now()),
        key=f"{hash_}:{who}",
        subject=incident.service,
        correlation_id=incident.correlation_id,
        traceparent=incident.traceparent,
    )
    store.append(incident_stream(incident.id), [event], expected_version=incident.version)


def test_listeners_follow_a_whole_incident(store: SQLiteEventStore, clock: ManualClock) -> None:
    catalog = Catalog()
    adapter = Restarts()
    runtime = Runtime(
        store=store,
        ingest=IngestGate(store, SchemaRegistry(), clock),
        agents=[ServiceDownAgent(failure_threshold=3)],
        gate=DecisionGate(PolicyBundle(BUILTIN_BUNDLE), catalog),
        executor=Executor(store, catalog, dict.fromkeys(catalog.names(), adapter), clock),
        probes={},
        clock=clock,
        # Supervised: the restart waits for approvals (a one-service fleet alone would not).
        settings=RuntimeSettings(environment="staging", autonomy="supervised"),
        catalog=catalog,
    )
    registry = CollectorRegistry()
    runtime.subscribe(MetricsListener(registry, quarantine=store, approval_counts=ApprovalCheck()))
    alice = register(store, "alice", "approver", clock.now())
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingListener(provider)
    runtime.subscribe(tracing)

    down = ProbeResult(ok=False, latency_ms=3.0, status=None, error="connection refused")
    for _ in range(3):
        runtime.record_probe("payments", "http://payments/health", down, "watch")
        clock.advance(1)
    store.quarantine("webhook", "not JSON", "{", ev.format_time(clock.now()))
    for _ in range(8):
        runtime.tick()
        clock.advance(1)
        (incident,) = runtime.incidents.values()
        if incident.state is State.AWAITING_APPROVAL and not incident.approvals:
            forge(store, incident, "mallory", clock)
            operations.approve(store, incident.id, alice.key, when=clock.now())  # `warden approve`
        if incident.state is State.VERIFYING:
            break
    assert adapter.calls == [("restart_service", "payments")]
    up = ProbeResult(ok=True, latency_ms=2.0, status=200, error="")
    runtime.record_probe("payments", "http://payments/health", up, "verification")
    runtime.tick()
    (incident,) = runtime.incidents.values()
    assert incident.state is State.RESOLVED, incident.close_reason

    text = generate_latest(registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("warden_events_ingested_total", (("type", ev.PROBE_FAILED),))] == 3
    assert samples[("warden_decisions_total", (("outcome", "allow"),))] == 1
    assert (
        samples[("warden_actions_total", (("action", "restart_service"), ("result", "succeeded")))]
        == 1
    )
    assert samples[("warden_incidents", (("state", "resolved"),))] == 1
    assert samples[("warden_quarantined_inputs_total", (("source", "webhook"),))] == 1
    # The gauges agree with a report computed afresh from the stored history.
    replayed = resilience_report(store.read_all())
    assert replayed.resolved == 1
    assert samples[("warden_kpi_mttr_seconds", (("stat", "mean"),))] == pytest.approx(
        replayed.mttr.mean
    )
    assert samples[("warden_kpi_automation_coverage_ratio", ())] == replayed.automation_coverage
    # Two approvals are in the log; only alice's signed one counts.
    assert replayed.approvals == 2
    assert samples[("warden_approvals_total", ())] == 1

    spans = exporter.get_finished_spans()
    trace_id = int(incident.traceparent.split("-")[1], 16)
    assert {s.context.trace_id for s in spans} == {trace_id}
    names = sorted(s.name for s in spans)
    assert names.count("ingest warden.probe.failed") == 3
    assert {
        "incident payments",
        "agent.propose",
        "policy.evaluate",
        "action restart_service",
        "verify",
    } <= set(names)
    if replayed.approvals:
        assert "approval.wait" in names
    tracing.close()
    provider.shutdown()
