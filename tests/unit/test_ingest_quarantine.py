"""Replaying quarantined input after a fix: release on acceptance, keep otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from warden.ingest.alertmanager import parse_webhook
from warden.ingest.cloudevents import TraceContext
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import Admit, Origin, Pipeline
from warden.ingest.quarantine import ReplayVerdict, release_quarantined, replay_quarantined
from warden.ingest.registry import SchemaRegistry
from warden.testing import ManualClock

if TYPE_CHECKING:
    from warden.store.sqlite import SQLiteEventStore

FIRING = (Path(__file__).parents[1] / "fixtures" / "alertmanager" / "firing.json").read_text()
SCHEMA = {
    "type": "object",
    "required": ["service"],
    "properties": {"service": {"type": "string"}, "version": {"type": "string"}},
}


def deploy(event_id: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "ci://pipeline",
        "type": "acme.deploy.finished",
        "time": "2026-11-25T12:00:00Z",
        "subject": data.get("service", "orders"),
        "data": {"service": "orders", **data},
    }


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    directory = tmp_path / "schemas"
    directory.mkdir()
    return directory


def gate_with(store: SQLiteEventStore, clock: ManualClock, *dirs: Path) -> IngestGate:
    return IngestGate(store, SchemaRegistry(list(dirs)), clock)


def test_replay_after_a_schema_fix_stores_and_releases(
    store: SQLiteEventStore, clock: ManualClock, schemas: Path
) -> None:
    Pipeline(gate_with(store, clock)).process(
        [Admit(deploy("d1"), "ci"), Admit(deploy("d2", version=3), "ci")]
    )
    assert [q.reason.startswith("type: no schema registered") for q in store.quarantined()] == [
        True,
        True,
    ]
    (schemas / "acme.deploy.finished@1.json").write_text(json.dumps(SCHEMA))
    results = replay_quarantined(store, gate_with(store, clock, schemas), store.quarantined())
    assert [r.verdict for r in results] == [ReplayVerdict.ACCEPTED, ReplayVerdict.STILL_REFUSED]
    assert results[0].event_ids == ("d1",)
    assert "version: 3 is not of type 'string'" in results[1].reason
    assert [e.id for e in store.read_stream("service-orders")] == ["d1"]
    (left,) = store.quarantined()
    assert left.id == results[1].quarantine_id, "a failed replay adds nothing to quarantine"


def test_replaying_an_event_already_stored_is_a_duplicate_and_releases(
    store: SQLiteEventStore, clock: ManualClock, schemas: Path
) -> None:
    (schemas / "acme.deploy.finished@1.json").write_text(json.dumps(SCHEMA))
    gate = gate_with(store, clock, schemas)
    Pipeline(gate).process([Admit(deploy("d1"), "ci")])
    store.quarantine("ci", "lost earlier", json.dumps(deploy("d1")), "2026-11-25T12:00:00Z")
    (result,) = replay_quarantined(store, gate, store.quarantined())
    assert result.verdict is ReplayVerdict.DUPLICATE
    assert store.quarantined() == []
    assert len(store.read_all()) == 1


def test_alertmanager_items_are_parsed_again(store: SQLiteEventStore) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 13, tzinfo=UTC))
    payload = json.loads(FIRING)
    payload["alerts"][0]["fingerprint"] = ""
    jobs = parse_webhook(json.dumps(payload), received_at=clock.now(), context=TraceContext())
    Pipeline(gate_with(store, clock)).process(jobs)
    (item,) = store.quarantined()
    assert "'fingerprint' must be a non-empty string" in item.reason
    (result,) = replay_quarantined(store, gate_with(store, clock), [item])
    assert result.verdict is ReplayVerdict.STILL_REFUSED
    # Fix the input by hand (as an operator would): replay works.
    fixed = json.loads(item.payload)
    fixed["alerts"][0]["fingerprint"] = "0123456789abcdef"
    fixed["alerts"][0]["labels"]["service"] = "checkout"
    store.quarantine(item.source, item.reason, json.dumps(fixed), item.received_at)
    results = replay_quarantined(store, gate_with(store, clock), store.quarantined())
    assert [r.verdict for r in results] == [ReplayVerdict.STILL_REFUSED, ReplayVerdict.ACCEPTED]
    assert [e.subject for e in store.read_stream("service-checkout")] == ["checkout"]


def test_an_alert_without_a_service_label_is_not_quarantined(store: SQLiteEventStore) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 13, tzinfo=UTC))
    payload = json.loads(FIRING)
    for label in ("job", "instance", "service"):
        payload["alerts"][0]["labels"].pop(label, None)
    jobs = parse_webhook(json.dumps(payload), received_at=clock.now(), context=TraceContext())
    Pipeline(gate_with(store, clock)).process(jobs)
    assert store.quarantined() == []
    assert any(s.startswith("service-unmapped/") for s in store.streams("service-"))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [("{nope", "not JSON"), ("[1]", "not a JSON object"), ("x" * 300_000, "not JSON")],
)
def test_unreadable_items_stay(
    store: SQLiteEventStore, clock: ManualClock, payload: str, reason: str
) -> None:
    store.quarantine("s", "r", payload, "2026-11-25T12:00:00Z")
    (result,) = replay_quarantined(store, gate_with(store, clock), store.quarantined())
    assert result.verdict is ReplayVerdict.STILL_REFUSED
    assert reason in result.reason
    assert len(store.quarantined()) == 1


def test_release_uses_the_store_method() -> None:
    class Releasing:
        released: ClassVar[list[int]] = []

        def release_quarantined(self, ids: list[int]) -> int:
            self.released.extend(ids)
            return len(ids)

    store: Any = Releasing()
    assert release_quarantined(store, [3, 4]) == 2
    assert store.released == [3, 4]
    assert release_quarantined(store, []) == 0
    assert store.released == [3, 4]  # nothing to release: the store is not asked


def test_a_refused_warden_type_from_outside_is_not_granted_by_a_replay(
    store: SQLiteEventStore, clock: ManualClock
) -> None:
    forged = deploy("f1") | {
        "type": "warden.deploy.completed",
        "data": {"service": "orders", "version": "9"},
    }
    Pipeline(gate_with(store, clock)).process(
        [Admit(forged, "webhook:cloudevents", origin=Origin("webhook/x"))]
    )
    (item,) = store.quarantined()
    assert "reserved for Warden's own events" in item.reason
    (result,) = replay_quarantined(store, gate_with(store, clock), store.quarantined())
    assert result.verdict is ReplayVerdict.STILL_REFUSED
    assert "a replay cannot grant it" in result.reason
    assert store.read_all() == []
    store.quarantine("jsonl:capture:1", "lost earlier", json.dumps(forged), "2026-11-25T12:00:00Z")
    replayed = replay_quarantined(store, gate_with(store, clock), store.quarantined())
    assert [r.verdict for r in replayed] == [ReplayVerdict.STILL_REFUSED, ReplayVerdict.ACCEPTED]
