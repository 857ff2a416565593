"""Alertmanager alerts (captured from a real Alertmanager 0.25) open, close and annotate incidents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from warden.domain import events as ev
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.ingest.alertmanager import parse_webhook
from warden.ingest.cloudevents import TraceContext
from warden.ingest.pipeline import Pipeline
from warden.telemetry.tracing import TracingListener

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "alertmanager"
STARTED = "2026-11-25T11:59:30.000000Z"  # just before the harness clock starts
TRACE = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = make_harness(tmp_path)
    yield h
    h.close()


def deliver(h: Harness, name: str) -> None:
    body = json.loads((FIXTURES / name).read_text())
    when = h.clock.now()
    for alert in body["alerts"]:  # the capture is from another day: move it to today
        alert["startsAt"] = STARTED
        if alert["status"] == "resolved":
            alert["endsAt"] = ev.format_time(when)
    jobs = parse_webhook(json.dumps(body), received_at=when, context=TraceContext(TRACE, "corr-1"))
    outcomes = Pipeline(h.warden.runtime.ingest).process(jobs)
    assert all(o.verdict.value in ("accepted", "duplicate") for o in outcomes), outcomes


def test_firing_alert_opens_an_incident_and_resolution_annotates_it(harness: Harness) -> None:
    deliver(harness, "firing.json")
    harness.settle(3)
    payments = [i for i in harness.incidents("payments") if i.kind == "alert"]
    assert len(payments) == 1
    incident = payments[0]
    assert incident.severity == "critical"
    assert "ServiceDown" in incident.summary
    # Nothing proposes a plan for a bare alert: a human is paged with a summary.
    assert incident.state is State.ESCALATED
    firing = harness.events(ev.ALERT_FIRING)
    assert set(incident.evidence_ids) <= {e.id for e in firing}
    deliver(harness, "firing.json")  # Alertmanager re-sends: de-duplicated, nothing new
    harness.settle(2)
    assert len([i for i in harness.incidents("payments") if i.kind == "alert"]) == 1

    deliver(harness, "resolved.json")
    harness.settle(2)
    (final,) = [i for i in harness.incidents("payments") if i.kind == "alert"]
    assert final.state is State.ESCALATED
    assert any("resolved at the source" in note for note in final.notes)


def test_resolution_before_any_action_closes_the_incident(harness: Harness) -> None:
    runtime = harness.warden.runtime
    runtime.settings = type(runtime.settings)(
        **{**{f: getattr(runtime.settings, f) for f in runtime.settings.__dataclass_fields__},
           "autonomy": "supervised"}
    )  # fmt: skip
    deliver(harness, "firing.json")
    runtime.tail()
    for agent in runtime.agents:
        for detection in agent.detect(runtime.world()):
            runtime._open(detection, agent.name)
    runtime.tail()
    deliver(harness, "resolved.json")
    runtime.tick()
    by_service = {i.service: i for i in harness.incidents() if i.kind == "alert"}
    # The capture resolves payments' alert; orders' alert is still firing.
    assert by_service["payments"].state is State.RESOLVED
    assert "no action was needed" in by_service["payments"].close_reason
    # Orders' alert is still firing: nothing proposes a plan, so a human was paged.
    assert by_service["orders"].state is State.ESCALATED


def test_an_incident_continues_the_trace_of_the_alert_that_opened_it(harness: Harness) -> None:
    deliver(harness, "firing.json")
    harness.settle(3)
    (incident,) = [i for i in harness.incidents("payments") if i.kind == "alert"]
    assert incident.traceparent == TRACE  # not a fresh trace derived from the incident id
    mine = harness.warden.store.read_stream(incident_stream(incident.id))
    assert {e.traceparent for e in mine} == {TRACE}
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    listener = TracingListener(provider)
    for event in harness.warden.store.read_all():
        listener(event)
    listener.close()
    (root,) = [s for s in exporter.get_finished_spans() if s.name == "incident payments"]
    assert root.context.trace_id == int("ab" * 16, 16)
    assert root.parent is not None
    assert root.parent.span_id == int("cd" * 8, 16)  # the alert's span is its parent
    provider.shutdown()
