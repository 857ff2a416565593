"""Quality gates: valid events are stored, anything else lands in quarantine with a reason."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.domain.events import format_time
from warden.ingest.gate import IngestGate
from warden.ingest.registry import SchemaRegistry
from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock


def probe_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e1",
        "source": "warden://probe/payments",
        "type": "warden.probe.failed",
        "time": "2026-11-25T12:00:00Z",
        "data": {"service": "payments", "probe": "http://x/health", "error": "connection refused"},
        "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
        "correlationid": "c9",
    }
    event.update(overrides)
    return event


@pytest.fixture
def gate(store: SQLiteEventStore, clock: ManualClock) -> IngestGate:
    return IngestGate(store, SchemaRegistry(), clock, max_bytes=4096)


def test_valid_event_is_stored_with_context(gate: IngestGate, store: SQLiteEventStore) -> None:
    admission = gate.admit(json.dumps(probe_event()), "service-payments", "test")
    assert admission.event is not None
    (stored,) = store.read_stream("service-payments")
    assert stored.traceparent == "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    assert stored.correlation_id == "c9"
    assert stored.time == "2026-11-25T12:00:00.000000Z"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-11-25T17:30:00.5+05:30", "2026-11-25T12:00:00.500000Z"),
        ("0005-01-01T00:00:00Z", "0005-01-01T00:00:00.000000Z"),  # four digits, read back
    ],
)
def test_event_time_is_stored_in_utc_with_microseconds(
    gate: IngestGate, store: SQLiteEventStore, sent: str, stored: str
) -> None:
    assert gate.admit(json.dumps(probe_event(time=sent)), "service-payments", "test").event
    (event,) = store.read_stream("service-payments")
    assert event.time == stored
    assert format_time(event.moment) == stored


def test_unknown_attributes_are_kept_as_extensions(
    gate: IngestGate, store: SQLiteEventStore
) -> None:
    admission = gate.admit(json.dumps(probe_event(region="eu", shard=3)), "s", "test")
    assert admission.event is not None
    assert admission.event.extensions == {"region": "eu", "shard": "3"}
    assert store.read_stream("s")[0].extensions == {"region": "eu", "shard": "3"}


def test_a_secret_in_an_extension_alone_is_redacted(
    gate: IngestGate, store: SQLiteEventStore
) -> None:
    # The data is clean: only the extensions' scan can find it.
    sent = probe_event(note="password=hunter2", authtoken="t0k3n")
    assert gate.admit(json.dumps(sent), "s", "test").event is not None
    (stored,) = store.read_stream("s")
    assert stored.data == sent["data"]
    assert stored.extensions == {
        "authtoken": "[REDACTED:secret]",
        "note": "password=[REDACTED:secret]",
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps(probe_event(specversion="0.3")), "specversion"),
        (json.dumps(probe_event(time="yesterday")), "time"),
        (json.dumps(probe_event(time="2026-11-25T13:00:00Z")), "in the future"),
        (json.dumps(probe_event(type="warden.probe.exploded")), "no schema registered"),
        (json.dumps(probe_event(data={"service": "x"})), "'probe' is a required property"),
        (json.dumps(probe_event(traceparent="garbage")), "traceparent"),
        ("x" * 5000, "limit is 4096"),
        ("[" * 100000, "limit"),
    ],
)
def test_bad_input_is_quarantined_with_reason(
    gate: IngestGate, store: SQLiteEventStore, payload: str, reason: str
) -> None:
    admission = gate.admit(payload, "s", "webhook")
    assert admission.event is None
    assert reason in admission.reason
    (item,) = store.quarantined()
    assert item.payload == payload
    assert reason in item.reason
    assert store.read_all() == []


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_fuzzed_input_never_crashes_and_is_never_lost(payload: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteEventStore(Path(tmp) / "e.db")
        clock = ManualClock(datetime(2026, 11, 25, tzinfo=UTC))
        admission = IngestGate(store, SchemaRegistry(), clock).admit(payload, "s", "fuzz")
        kept = len(store.read_all()) + len(store.quarantined())
        store.close()
    assert kept == 1
    assert (admission.event is None) == bool(admission.reason)
