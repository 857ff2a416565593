"""Incident traces: they continue the events' traceparent and time spans by the events."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.builders import (
    FEED_START,
    PARENT_ID,
    TRACE_ID,
    TRACEPARENT,
    Feed,
    approved_incident,
    decision,
)
from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.errors import ConfigError
from warden.domain.ids import traceparent_for
from warden.domain.plans import Plan, Step, step_hash
from warden.telemetry.tracing import (
    OTLP_EXPORTERS,
    TracingListener,
    build_tracer_provider,
    nanos,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.sdk.trace import ReadableSpan

T0 = FEED_START


def ns(seconds: float) -> int:
    return nanos(T0 + timedelta(seconds=seconds))


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def listener(exporter: InMemorySpanExporter) -> Iterator[TracingListener]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield TracingListener(provider)
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_the_trace_continues_the_incident_traceparent(
    listener: TracingListener, exporter: InMemorySpanExporter
) -> None:
    approved_incident(Feed(listener))
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {int(TRACE_ID, 16)}
    (root,) = by_name(spans, "incident payments")
    assert root.parent is not None and root.parent.is_remote
    assert root.parent.span_id == int(PARENT_ID, 16)
    assert (root.start_time, root.end_time) == (ns(0), ns(70))  # first signal -> recovery
    assert root.attributes is not None
    assert root.attributes["warden.incident.state"] == "resolved"
    assert root.status.status_code is StatusCode.UNSET
    others = [s for s in spans if s is not root]
    names = {s.name for s in others}
    assert names == {
        "detect", "ingest warden.probe.failed", "agent.propose", "policy.evaluate",
        "approval.wait", "action restart_service", "verify",
    }  # fmt: skip
    (detect,) = by_name(spans, "detect")
    for span in others:
        expected_parent = detect if span.name.startswith("ingest") else root
        assert span.parent is not None
        assert span.parent.span_id == expected_parent.context.span_id, span.name


def test_spans_take_their_times_from_the_events(
    listener: TracingListener, exporter: InMemorySpanExporter
) -> None:
    approved_incident(Feed(listener))
    spans = exporter.get_finished_spans()
    ingest = sorted(by_name(spans, "ingest warden.probe.failed"), key=lambda s: s.end_time or 0)
    assert [(s.start_time, s.end_time) for s in ingest] == [
        (ns(t - 0.25), ns(t)) for t in (0, 1, 2)
    ]  # only the three evidence events, each as long as its probe took
    assert all(s.kind is SpanKind.CONSUMER for s in ingest)
    (detect,) = by_name(spans, "detect")
    assert (detect.start_time, detect.end_time) == (ns(0), ns(3))
    (propose,) = by_name(spans, "agent.propose")
    assert (propose.start_time, propose.end_time) == (ns(3), ns(4))
    assert propose.attributes is not None
    assert propose.attributes["warden.agent"] == "service-down"
    evaluations = sorted(by_name(spans, "policy.evaluate"), key=lambda s: s.end_time or 0)
    # plan proposed -> needs_approval; last approval -> allow
    assert [(s.start_time, s.end_time) for s in evaluations] == [(ns(4), ns(4.5)), (ns(60), ns(61))]
    outcomes = [s.attributes["warden.decision.outcome"] for s in evaluations if s.attributes]
    assert outcomes == ["needs_approval", "allow"]
    assert evaluations[0].attributes is not None
    assert evaluations[0].attributes["warden.policy.ids"] == ("autonomy", "blast")
    (wait,) = by_name(spans, "approval.wait")
    assert (wait.start_time, wait.end_time) == (ns(4.5), ns(61))
    assert [(e.name, e.timestamp) for e in wait.events] == [("approval granted", ns(60))]
    (action,) = by_name(spans, "action restart_service")
    assert (action.start_time, action.end_time) == (ns(62), ns(64))
    assert action.kind is SpanKind.CLIENT
    assert action.attributes is not None
    assert action.attributes["warden.action.duration_ms"] == 1980.5
    (verify,) = by_name(spans, "verify")
    assert (verify.start_time, verify.end_time) == (ns(65), ns(70))


def test_a_failed_step_and_an_escalation_are_errors(
    listener: TracingListener, exporter: InMemorySpanExporter
) -> None:
    feed = Feed(listener)
    stream = "incident-inc2"
    plan = Plan("service-down", (Step("restart_service", "orders"),), "down", (), 0.9)
    hash_ = step_hash("inc2", 0, plan.steps[0])
    opened = {"incident_id": "inc2", "service": "orders", "first_signal_at": ev.format_time(T0)}
    feed.emit(stream, ev.INCIDENT_OPENED, 5, opened)  # no traceparent on the events
    feed.emit(stream, ev.PLAN_PROPOSED, 6, {"plan": plan.to_dict()})
    feed.emit(stream, ev.DECISION_RECORDED, 7, decision(hash_, Outcome.ALLOW))
    feed.emit(
        stream, ev.STEP_INTENDED, 8, {"index": 0, "step_hash": hash_, "action": "restart_service"}
    )
    feed.emit(stream, ev.STEP_FAILED, 9, {"index": 0, "detail": "exit 1", "duration_ms": 900})
    feed.emit(stream, ev.INCIDENT_ESCALATED, 10, {"reason": "step 0 failed: exit 1"})
    spans = exporter.get_finished_spans()
    # Without a traceparent on the events, the trace id is derived from the incident id.
    derived = traceparent_for("inc2").split("-")[1]
    assert {s.context.trace_id for s in spans} == {int(derived, 16)}
    (action,) = by_name(spans, "action restart_service")
    assert action.status.status_code is StatusCode.ERROR
    assert action.status.description == "exit 1"
    (root,) = by_name(spans, "incident orders")
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "step 0 failed: exit 1"
    assert (root.start_time, root.end_time) == (ns(0), ns(10))


def test_close_ends_the_incidents_still_open(
    listener: TracingListener, exporter: InMemorySpanExporter
) -> None:
    feed = Feed(listener)
    stream = "incident-inc3"
    plan = Plan("service-down", (Step("restart_service", "search"),), "down", (), 0.9)
    hash_ = step_hash("inc3", 0, plan.steps[0])
    opened = {"incident_id": "inc3", "service": "search", "first_signal_at": ev.format_time(T0)}
    feed.emit(stream, ev.INCIDENT_OPENED, 1, opened, TRACEPARENT)
    feed.emit(stream, ev.PLAN_PROPOSED, 2, {"plan": plan.to_dict()}, TRACEPARENT)
    feed.emit(
        stream,
        ev.DECISION_RECORDED,
        3,
        decision(hash_, Outcome.NEEDS_APPROVAL, approvers=2),
        TRACEPARENT,
    )
    assert by_name(exporter.get_finished_spans(), "incident search") == []
    listener.close()
    spans = exporter.get_finished_spans()
    (root,) = by_name(spans, "incident search")
    (wait,) = by_name(spans, "approval.wait")
    assert root.attributes is not None and root.attributes["warden.incident.unfinished"] is True
    assert root.end_time == ns(3) and wait.end_time == ns(3)


def test_events_of_an_incident_opened_before_attaching_are_ignored(
    listener: TracingListener, exporter: InMemorySpanExporter
) -> None:
    Feed(listener).emit("incident-old", ev.INCIDENT_RESOLVED, 1, {"reason": "ok"})
    assert exporter.get_finished_spans() == ()


def test_without_an_endpoint_nothing_is_exported() -> None:
    setup = build_tracer_provider(None)
    assert not setup.exporting
    assert "no OTLP endpoint" in setup.message
    setup.provider.shutdown()


@pytest.mark.parametrize(("protocol", "package"), sorted(OTLP_EXPORTERS.items()))
def test_a_missing_otlp_exporter_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, protocol: str, package: tuple[str, str]
) -> None:
    # Whether or not the optional exporter is installed here, the import is made to fail
    # as it does where it is not (None in sys.modules: the import raises ImportError).
    module, name = package
    monkeypatch.setitem(sys.modules, module, None)
    setup = build_tracer_provider("http://127.0.0.1:4318/v1/traces", protocol=protocol)
    assert not setup.exporting
    assert f"{name} is not installed" in setup.message
    assert f"pip install {name}" in setup.message
    span = setup.provider.get_tracer("t").start_span("still works")
    span.end()
    setup.provider.shutdown()


def test_an_unknown_protocol_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown OTLP protocol 'udp'"):
        build_tracer_provider("http://x", protocol="udp")


def test_other_incident_events_are_points_on_the_root_span(
    listener: TracingListener, exporter: InMemorySpanExporter
) -> None:
    feed = Feed(listener)
    opened = {"incident_id": "inc4", "service": "cache", "first_signal_at": ev.format_time(T0)}
    feed.emit("incident-inc4", ev.INCIDENT_OPENED, 1, opened)
    feed.emit("incident-inc4", "warden.approval.requested", 2, {"channel": "pager"})
    feed.emit("incident-inc4", ev.INCIDENT_RESOLVED, 3, {"reason": "recovered"})
    (root,) = by_name(exporter.get_finished_spans(), "incident cache")
    assert [(e.name, e.timestamp) for e in root.events] == [
        ("warden.approval.requested", ns(2)),
        ("incident resolved", ns(3)),
    ]


def test_a_bad_event_never_reaches_the_runtime(
    listener: TracingListener, exporter: InMemorySpanExporter
) -> None:
    feed = Feed(listener)
    opened = {"incident_id": "inc5", "service": "db", "first_signal_at": "not a time"}
    feed.emit("incident-inc5", ev.INCIDENT_OPENED, 1, opened)  # logged, not raised
    assert exporter.get_finished_spans() == ()


def test_spans_that_ended_before_since_are_not_exported_again(
    exporter: InMemorySpanExporter,
) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    approved_incident(Feed(TracingListener(provider, since=T0 + timedelta(seconds=61))))
    spans = exporter.get_finished_spans()
    assert sorted((s.name, s.end_time) for s in spans) == [
        ("action restart_service", ns(64)),
        ("approval.wait", ns(61)),
        ("incident payments", ns(70)),
        ("policy.evaluate", ns(61)),
        ("verify", ns(70)),
    ]
    provider.shutdown()
