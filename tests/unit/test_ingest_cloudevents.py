"""CloudEvents over HTTP (structured, binary, batch), generic JSON, and trace context."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.builders import probe_cloudevent as cloudevent
from warden.ingest.cloudevents import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    GenericRoute,
    TraceContext,
    parse_cloudevents,
    wrap_json,
)
from warden.ingest.pipeline import Admit, Refuse

TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, TraceContext()),
        ({"traceparent": TRACEPARENT, "x-correlation-id": "c-1"}, TraceContext(TRACEPARENT, "c-1")),
        ({"traceparent": "00-" + "AB" * 16 + "-" + "2" * 16 + "-01"}, TraceContext()),
        ({"traceparent": "garbage"}, TraceContext()),
        ({"traceparent": "00-" + "0" * 32 + "-" + "2" * 16 + "-01"}, TraceContext()),
        ({"traceparent": "01-" + "1" * 32 + "-" + "2" * 16 + "-01"}, TraceContext()),
        ({"x-correlation-id": "has space"}, TraceContext()),
        ({"x-correlation-id": "x" * 201}, TraceContext()),
    ],
)
def test_trace_context_takes_only_valid_headers(
    headers: dict[str, str], expected: TraceContext
) -> None:
    assert TraceContext.from_headers(headers) == expected


def test_trace_context_fills_only_what_is_missing() -> None:
    context = TraceContext(TRACEPARENT, "c-1")
    assert context.apply({"id": "x"})["correlationid"] == "c-1"
    own = {"traceparent": "00-" + "3" * 32 + "-" + "4" * 16 + "-00", "correlationid": "mine"}
    assert context.apply(own) == own
    assert TraceContext().apply({}, "fallback") == {"correlationid": "fallback"}


def test_structured_mode_keeps_the_raw_bytes_when_nothing_is_added() -> None:
    body = json.dumps(cloudevent(correlationid="c")).encode()
    (job,) = parse_cloudevents({"content-type": STRUCTURED_CONTENT_TYPE}, body)
    assert job == Admit(body.decode(), "webhook:cloudevents")


def test_structured_mode_adds_header_context_and_a_default_correlation() -> None:
    body = json.dumps(cloudevent()).encode()
    headers = {
        "content-type": "application/cloudevents+json; charset=utf-8",
        "traceparent": TRACEPARENT,
    }
    (job,) = parse_cloudevents(headers, body)
    assert isinstance(job, Admit)
    assert isinstance(job.payload, dict)
    assert job.payload["traceparent"] == TRACEPARENT
    assert job.payload["correlationid"] == "e1"


def test_plain_json_with_specversion_is_taken_as_structured() -> None:
    (job,) = parse_cloudevents(
        {"content-type": "application/json"}, json.dumps(cloudevent()).encode()
    )
    assert isinstance(job, Admit)
    assert isinstance(job.payload, dict)
    assert job.payload["id"] == "e1"


def test_bad_structured_bodies_go_to_the_gate_as_received() -> None:
    (job,) = parse_cloudevents({}, b"\xff{nope")
    assert job == Admit("\ufffd{nope", "webhook:cloudevents")


def test_binary_mode_reads_ce_headers() -> None:
    headers = {
        "content-type": "application/json; charset=utf-8",
        "ce-specversion": "1.0",
        "ce-id": "b1",
        "ce-source": "warden%3A%2F%2Fprobe",
        "ce-type": "warden.probe.failed",
        "ce-time": "2026-11-25T12:00:00Z",
        "ce-subject": "payments",
        "ce-schemaversion": "1",
        "ce-traceparent": TRACEPARENT,
        "x-correlation-id": "c-9",
    }
    (job,) = parse_cloudevents(headers, json.dumps(cloudevent()["data"]).encode())
    assert isinstance(job, Admit)
    assert job.payload == {
        "specversion": "1.0",
        "id": "b1",
        "source": "warden://probe",
        "type": "warden.probe.failed",
        "time": "2026-11-25T12:00:00Z",
        "subject": "payments",
        "schemaversion": 1,
        "traceparent": TRACEPARENT,
        "correlationid": "c-9",
        "datacontenttype": "application/json",
        "data": cloudevent()["data"],
    }


def test_binary_mode_refuses_non_json_data_with_415_and_keeps_it() -> None:
    headers = {"content-type": "text/plain", "ce-specversion": "1.0", "ce-id": "b2"}
    (job,) = parse_cloudevents(headers, b"hello")
    assert isinstance(job, Refuse)
    assert job.status == 415
    assert "must be JSON" in job.reason
    assert json.loads(job.payload) == {"specversion": "1.0", "id": "b2", "data": "hello"}


def test_binary_mode_refuses_unparsable_data() -> None:
    (job,) = parse_cloudevents({"ce-specversion": "1.0"}, b"{broken")
    assert isinstance(job, Refuse)
    assert job.reason.startswith("data: not JSON")
    assert json.loads(job.payload)["data"] == "{broken"


def test_batch_mode_gives_one_job_per_entry() -> None:
    body = json.dumps([cloudevent(id="a"), cloudevent(id="b"), 5]).encode()
    found = parse_cloudevents({"content-type": BATCH_CONTENT_TYPE}, body)
    assert [type(j) for j in found] == [Admit, Admit, Admit]
    assert found[2] == Admit("5", "webhook:cloudevents")
    (refused,) = parse_cloudevents({"content-type": BATCH_CONTENT_TYPE}, b'{"a": 1}')
    assert isinstance(refused, Refuse)
    assert "JSON array" in refused.reason


def test_generic_json_is_wrapped_with_the_route_type() -> None:
    route = GenericRoute("acme.deploy.finished", 2, "service")
    job = wrap_json(
        b'{"service": "orders", "version": "1.2"}',
        route,
        event_id="g1",
        received_at=NOW,
        context=TraceContext(TRACEPARENT),
        source="webhook:json/deploys",
    )
    assert job == Admit(
        {
            "specversion": "1.0",
            "id": "g1",
            "source": "warden://webhook",
            "type": "acme.deploy.finished",
            "time": "2026-11-25T12:00:00.000000Z",
            "datacontenttype": "application/json",
            "schemaversion": 2,
            "subject": "orders",
            "traceparent": TRACEPARENT,
            "correlationid": "g1",
            "data": {"service": "orders", "version": "1.2"},
        },
        "webhook:json/deploys",
    )


@pytest.mark.parametrize(
    ("body", "reason"), [(b"[1]", "must be a JSON object"), (b"{", "not JSON")]
)
def test_generic_json_refuses_what_is_not_an_object(body: bytes, reason: str) -> None:
    job = wrap_json(
        body, GenericRoute(), event_id="g", received_at=NOW, context=TraceContext(), source="s"
    )
    assert isinstance(job, Refuse)
    assert reason in job.reason
    assert job.payload == body.decode()
