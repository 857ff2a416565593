"""Alertmanager webhook v4 on payloads captured from a real Alertmanager 0.25."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.domain.events import Event
from warden.domain.ids import derived_id
from warden.ingest.alertmanager import (
    ALERT_FIRING,
    ALERT_RESOLVED,
    alert_event_id,
    parse_webhook,
    resolution_for,
)
from warden.ingest.cloudevents import TraceContext
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import Admit, Pipeline, Refuse, Verdict
from warden.ingest.registry import SchemaRegistry
from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "alertmanager"
FIRING = (FIXTURES / "firing.json").read_bytes()
RESOLVED = (FIXTURES / "resolved.json").read_bytes()
AFTER_CAPTURE = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


@pytest.fixture
def am_clock() -> ManualClock:
    return ManualClock(AFTER_CAPTURE)


@pytest.fixture
def pipeline(store: SQLiteEventStore, am_clock: ManualClock) -> Pipeline:
    return Pipeline(IngestGate(store, SchemaRegistry(), am_clock))


def jobs(body: bytes | str, context: TraceContext | None = None) -> list[Any]:
    return parse_webhook(body, received_at=AFTER_CAPTURE, context=context or TraceContext())


def events(body: bytes | str, context: TraceContext | None = None) -> list[dict[str, Any]]:
    found = jobs(body, context)
    assert all(isinstance(j, Admit) for j in found), found
    return [j.payload for j in found]


def edited(body: bytes, **changes: Any) -> str:
    payload = json.loads(body)
    payload.update(changes)
    return json.dumps(payload)


def test_captured_firing_notification_gives_one_event_per_alert() -> None:
    payload = json.loads(FIRING)
    found = events(FIRING)
    assert len(found) == len(payload["alerts"]) == 2
    by_subject = {e["subject"]: e for e in found}
    assert sorted(by_subject) == ["orders", "payments"]
    payments = by_subject["payments"]
    alert = next(a for a in payload["alerts"] if a["labels"].get("service") == "payments")
    assert payments["type"] == ALERT_FIRING
    assert payments["source"] == payload["externalURL"]
    assert payments["data"]["fingerprint"] == alert["fingerprint"]
    assert payments["data"]["ends_at"] is None
    assert payments["data"]["group_key"] == payload["groupKey"]
    assert payments["time"] == payments["data"]["starts_at"]
    assert payments["id"] == alert_event_id(
        payload["groupKey"], alert["fingerprint"], payments["data"]["starts_at"], "firing"
    )
    orders = by_subject["orders"]
    assert orders["data"]["service"] == "orders"  # from the job label
    assert orders["data"]["labels"]["instance"] == "orders:8080"


def test_subject_prefers_service_then_service_name_app_job_instance() -> None:
    payload = json.loads(FIRING)
    alert = payload["alerts"][0]
    for labels, expected in [
        ({"alertname": "A", "service": "s", "job": "j", "instance": "i"}, "s"),
        ({"alertname": "A", "service_name": "sn", "app": "a", "job": "j"}, "sn"),
        ({"alertname": "A", "app": "a", "job": "j"}, "a"),
        ({"alertname": "A", "job": "j", "instance": "i"}, "j"),
        ({"alertname": "A", "instance": "i"}, "i"),
        ({"alertname": "A", "instance": "i:9100"}, "i"),
    ]:
        payload["alerts"] = [{**alert, "labels": labels}]
        assert events(json.dumps(payload))[0]["subject"] == expected


def test_captured_notifications_pass_the_gates_and_resends_are_duplicates(
    pipeline: Pipeline, store: SQLiteEventStore
) -> None:
    first = pipeline.process(jobs(FIRING))
    assert [o.verdict for o in first] == [Verdict.ACCEPTED, Verdict.ACCEPTED]
    resend = pipeline.process(jobs(FIRING))
    assert [o.verdict for o in resend] == [Verdict.DUPLICATE, Verdict.DUPLICATE]
    # The resolved notification carries the still-firing alert (a duplicate) and the
    # resolution of the other (new).
    resolved = pipeline.process(jobs(RESOLVED))
    assert sorted(o.verdict for o in resolved) == [Verdict.ACCEPTED, Verdict.DUPLICATE]
    assert [e.type for e in store.read_all()] == [ALERT_FIRING, ALERT_FIRING, ALERT_RESOLVED]
    assert store.quarantined() == []


def test_dedup_survives_a_restart(tmp_path: Path, am_clock: ManualClock) -> None:
    path = tmp_path / "events.db"
    for _ in range(2):
        store = SQLiteEventStore(path)
        Pipeline(IngestGate(store, SchemaRegistry(), am_clock)).process(jobs(FIRING))
        store.close()
    store = SQLiteEventStore(path)
    assert len(store.read_all()) == 2
    store.close()


def test_resolution_for_a_resolved_alert_names_service_and_firing_event(
    pipeline: Pipeline, store: SQLiteEventStore
) -> None:
    pipeline.process(jobs(FIRING))
    pipeline.process(jobs(RESOLVED))
    resolved = next(e for e in store.read_all() if e.type == ALERT_RESOLVED)
    firing = next(
        e for e in store.read_all() if e.type == ALERT_FIRING and e.subject == resolved.subject
    )
    resolution = resolution_for(resolved)
    assert resolution is not None
    assert resolution.service == "payments"
    assert resolution.alertname == "ServiceDown"
    assert resolution.firing_event_id == firing.id
    assert resolution.fingerprint == firing.data["fingerprint"]
    assert resolution.started_at == firing.data["starts_at"]
    assert resolution.resolved_at == resolved.data["ends_at"] == resolved.time
    assert resolution.correlation_id == firing.correlation_id == resolved.correlation_id
    assert resolution_for(firing) is None


def test_resolution_for_is_none_for_other_or_incomplete_events() -> None:
    probe = Event("e", "s", "warden.probe.failed", "2026-11-25T12:00:00Z", {"service": "x"})
    assert resolution_for(probe) is None
    partial = Event("e", "s", ALERT_RESOLVED, "2026-11-25T12:00:00Z", {"service": "x"})
    assert resolution_for(partial) is None


def test_trace_context_from_headers_rides_on_every_event() -> None:
    context = TraceContext(traceparent=TRACEPARENT, correlation_id="req-42")
    for event in events(FIRING, context):
        assert event["traceparent"] == TRACEPARENT
        assert event["correlationid"] == "req-42"
    derived = events(FIRING)[0]
    assert derived["correlationid"] == derived_id(
        "alert", derived["data"]["fingerprint"], derived["data"]["starts_at"]
    )
    assert "traceparent" not in derived


def test_resolved_without_ends_at_uses_the_arrival_time() -> None:
    payload = json.loads(RESOLVED)
    payload["alerts"] = [
        {**a, "endsAt": None} for a in payload["alerts"] if a["status"] == "resolved"
    ]
    (event,) = events(json.dumps(payload))
    assert event["time"] == "2026-11-25T13:00:00.000000Z"
    assert event["data"]["ends_at"] is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "(root): the webhook body must be a JSON object"),
        (edited(FIRING, version="3").encode(), "unsupported webhook version '3'"),
        (edited(FIRING, alerts={}).encode(), "alerts: 'alerts' must be a list"),
        (edited(FIRING, groupKey="").encode(), "groupKey"),
        (edited(FIRING, groupLabels={"a": 1}).encode(), "groupLabels: expected an object"),
        (edited(FIRING, truncatedAlerts=-1).encode(), "truncatedAlerts"),
        (edited(FIRING, alerts=[{}] * 1001).encode(), "the limit is 1000"),
    ],
)
def test_unreadable_notifications_are_refused_whole(body: bytes, reason: str) -> None:
    (job,) = jobs(body)
    assert isinstance(job, Refuse)
    assert reason in job.reason
    assert job.payload == body.decode()


def alert_with(**changes: Any) -> dict[str, Any]:
    alert = dict(json.loads(FIRING)["alerts"][0])
    alert.update(changes)
    return {k: v for k, v in alert.items() if v is not None}


@pytest.mark.parametrize(
    ("alert", "reason"),
    [
        ("nope", "alerts/1: an alert must be a JSON object"),
        (alert_with(status="pending"), "neither firing nor resolved"),
        (alert_with(fingerprint=""), "alerts/1/fingerprint"),
        (alert_with(startsAt="yesterday"), "alerts/1/startsAt"),
        (alert_with(startsAt="2026-11-25T12:00:00"), "no timezone offset"),
        (alert_with(endsAt="9999-12-31T23:59:59-23:00"), "alerts/1/endsAt"),
        (alert_with(labels={"service": 5}), "alerts/1/labels: expected an object of string"),
        (alert_with(annotations=[]), "alerts/1/annotations"),
    ],
)
def test_a_bad_alert_is_refused_alone_and_can_be_replayed(alert: Any, reason: str) -> None:
    payload = json.loads(FIRING)
    payload["alerts"] = [payload["alerts"][0], alert]
    good, bad = jobs(json.dumps(payload))
    assert isinstance(good, Admit)
    assert isinstance(bad, Refuse)
    assert reason in bad.reason, bad.reason
    kept = json.loads(bad.payload)
    assert kept["alerts"] == [alert]
    assert kept["groupKey"] == payload["groupKey"]


def test_alerts_failing_the_schema_are_quarantined_by_the_gate(
    pipeline: Pipeline, store: SQLiteEventStore
) -> None:
    payload = json.loads(FIRING)
    payload["alerts"] = [alert_with(labels={"service": "payments"})]  # no alertname
    (outcome,) = pipeline.process(jobs(json.dumps(payload)))
    assert outcome.verdict is Verdict.QUARANTINED
    assert "alertname" in outcome.reason
    (item,) = store.quarantined()
    assert json.loads(item.payload)["type"] == ALERT_FIRING


def test_future_alerts_are_refused_by_the_clock_skew_gate(
    store: SQLiteEventStore,
) -> None:
    early = ManualClock(datetime(2026, 11, 25, 11, 0, tzinfo=UTC))
    outcomes = Pipeline(IngestGate(store, SchemaRegistry(), early)).process(jobs(FIRING))
    assert {o.verdict for o in outcomes} == {Verdict.QUARANTINED}
    assert "in the future" in outcomes[0].reason


@pytest.fixture(scope="module")
def fuzz_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    store = SQLiteEventStore(tmp_path_factory.mktemp("fuzz") / "events.db")
    yield Pipeline(IngestGate(store, SchemaRegistry(), ManualClock(AFTER_CAPTURE)))
    store.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def mutated_alerts() -> st.SearchStrategy[str]:
    payload = json.loads(FIRING)
    keys = st.sampled_from(
        ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "generatorURL"]
    )
    return st.tuples(keys, JSON).map(
        lambda change: json.dumps(
            {**payload, "alerts": [{**payload["alerts"][0], change[0]: change[1]}]}
        )
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=300),
        JSON.map(json.dumps),
        st.tuples(st.sampled_from(list(json.loads(FIRING))), JSON).map(
            lambda change: edited(FIRING, **{change[0]: change[1]})
        ),
        mutated_alerts(),
    )
)
def test_fuzzed_notifications_never_crash_and_every_refusal_is_quarantined(
    fuzz_pipeline: Pipeline, body: bytes | str
) -> None:
    store = fuzz_pipeline.gate.store
    before = len(store.quarantined())
    found = jobs(body)
    outcomes = fuzz_pipeline.process(found)
    refused = [o for o in outcomes if o.verdict is Verdict.QUARANTINED]
    assert len(store.quarantined()) - before == len(refused)
    assert all(o.reason for o in refused)
