"""Hostile input through the real gate, store, fold and audit projector: nothing taken is lost.

Arbitrary JSON (lone surrogates, NaN and the infinities, -0.0, huge integers, deep nesting,
huge strings) is sent as a connector would; whatever the gate takes is stored, folded by
the loop and audited byte for byte, and whatever it refuses is in quarantine with a reason.
A record no gate would take, written straight into the store, is audited as unprojectable
and the loop goes on.
"""

from __future__ import annotations

import json
import sqlite3
from itertools import count
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.integration.harness import Harness, make_harness
from warden.domain import events as ev
from warden.domain.canonical import canonical_json
from warden.domain.plain_json import json_problem
from warden.domain.redact import STORED_SETTINGS, redact
from warden.ingest.pipeline import Admit, Pipeline, Verdict
from warden.store.records import RECORD_UNREADABLE

if TYPE_CHECKING:
    from pathlib import Path

    from warden.store.postgres import PostgresEventStore

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates included
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([-(2**64), 2**53 + 1, -0.0, 1e308, 5e-324])
    | st.integers(4300, 4400).map(lambda digits: 10**digits)  # too long for str()
    | st.floats()
    | st.text(ANY_CHARACTER, max_size=16)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(ANY_CHARACTER, max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
odd_data = (
    st.dictionaries(st.text(ANY_CHARACTER, max_size=8), json_values, max_size=5)
    | st.integers(0, 300).map(lambda depth: {"deep": nest(depth)})
    | st.sampled_from([300_000, 40_000]).map(lambda n: {"huge": "é" * n})  # past the limit
)
_ids = count()


def nest(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"a": value}
    return value


def cloudevent(harness: Harness, data: Any, subject: Any = "payments") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hostile-{next(_ids)}",
        "source": "test://hostile",
        "type": "warden.webhook.received",
        "time": ev.format_time(harness.clock.now()),
        "subject": subject,
        "data": data,
    }


def as_sent(raw: dict[str, Any], text: bool) -> str | dict[str, Any]:
    if not text:
        return raw
    try:
        return json.dumps(raw)  # ASCII: a lone surrogate becomes a \ud800 escape, NaN stays
    except ValueError:  # an integer too long to spell: only a Python caller can send it
        return raw


def assert_verifies(harness: Harness) -> None:
    log = harness.warden.audit_log
    report = log.verify([harness.warden.checkpointer.signer.verifier], require_checkpoint=False)
    assert report.size == log.size > 0


def audited(harness: Harness) -> dict[str, dict[str, Any]]:
    return {str(e.record.get("event_id")): e.record for e in harness.warden.audit_log.entries()}


def check_one(harness: Harness, pipeline: Pipeline, raw: dict[str, Any], text: bool) -> None:
    (outcome,) = pipeline.process([Admit(as_sent(raw, text), "test:hostile")])
    assert outcome.verdict is not Verdict.DUPLICATE  # every id is new
    harness.tick()  # fold, detect, and audit what was stored: must not raise
    store = harness.warden.store
    if outcome.verdict is Verdict.QUARANTINED:
        assert outcome.reason
        kept = {q.id: q for q in store.quarantined()}[outcome.quarantine_id]
        assert kept.reason == outcome.reason
        return
    # Taken: plain JSON, stored as redacted, folded, and audited exactly as stored.
    assert json_problem(raw) is None, outcome
    (stored,) = [e for e in store.read_all() if e.id == outcome.event_id]
    assert stored.data == redact(raw["data"], STORED_SETTINGS).value
    record = audited(harness)[stored.id]
    assert canonical_json(record["data"]) == canonical_json(stored.data)
    assert "unprojectable" not in record


def property_over(harness: Harness) -> Pipeline:
    """Run the property against ``harness``; returns the pipeline, to count its verdicts."""
    pipeline = Pipeline(harness.warden.runtime.ingest)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=odd_data, subject=st.text(ANY_CHARACTER, max_size=6), text=st.booleans())
    @example(data={"s": "\ud800"}, subject="payments", text=True)
    @example(data={"s": "\ud800"}, subject="payments", text=False)
    @example(data={"n": float("nan"), "i": float("inf")}, subject="payments", text=True)
    @example(data={"z": -0.0, "big": 2**70}, subject="payments", text=True)
    @example(data={"ok": 1}, subject="pay\udfffments", text=True)
    @example(data={"deep": nest(200)}, subject="payments", text=True)
    @example(data={"ok": 1}, subject="\x00", text=False)  # PostgreSQL text holds no NUL
    @example(data={"\x00": float("nan")}, subject="", text=False)  # nor does a reason
    def run(data: Any, subject: str, text: bool) -> None:
        check_one(harness, pipeline, cloudevent(harness, data, subject), text)

    run()
    tally = pipeline.statistics()
    assert tally.accepted > 0
    assert tally.quarantined > 0
    return pipeline


def test_hostile_input_through_gate_sqlite_fold_and_audit(tmp_path: Path) -> None:
    harness = make_harness(tmp_path)
    try:
        property_over(harness)
        harness.warden.audit.catch_up()
        assert_verifies(harness)
    finally:
        harness.close()


@pytest.mark.postgres
def test_hostile_input_through_gate_postgres_fold_and_audit(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    harness = make_harness(tmp_path, store_dsn=postgres_dsn, store_schema=postgres_schema)
    try:
        property_over(harness)
        store: PostgresEventStore = harness.warden.store  # type: ignore[assignment]
        # What was taken reads back the same from a fresh connection (replay's view).
        fresh = type(store)(postgres_dsn, schema=postgres_schema)
        try:
            assert [e.data for e in fresh.read_all()] == [e.data for e in store.read_all()]
        finally:
            fresh.close()
    finally:
        harness.close()


def test_a_poisoned_record_in_the_store_is_audited_as_unprojectable(tmp_path: Path) -> None:
    harness = make_harness(tmp_path)
    store = harness.warden.store
    poisoned = [
        ev.Event(
            id=f"poison-{n}",
            source="test://older-store",
            type="warden.webhook.received",
            time=ev.format_time(harness.clock.now()),
            data=data,
            subject="payments",
        )
        for n, data in enumerate([{"s": "\ud800"}, {"n": float("nan")}])
    ]
    try:
        for event in poisoned:  # straight into the store: no gate in the way
            store.append("service-payments", [event])
        # A row that is not an event at all, as a damaged file could hold.
        db = sqlite3.connect(tmp_path / "state" / "events.db")
        with db:
            db.execute(
                "INSERT INTO events (id, stream, version, type, time, record)"
                " VALUES ('torn', 'service-payments', 999, 'x', 'x', '{\"id\": \"torn\", ')"
            )
        db.close()
        harness.fail("payments")  # the loop must still see and act on what comes next
        harness.settle()
        records = audited(harness)
        for event in poisoned:
            record = records[event.id]
            assert "unprojectable" in record
            assert "data" not in record
        assert "surrogates not allowed" in records["poison-0"]["unprojectable"]
        assert "NaN" in records["poison-1"]["unprojectable"]
        (torn,) = [r for r in records.values() if r["type"] == RECORD_UNREADABLE]
        assert "JSONDecodeError" in torn["data"]["reason"]
        assert harness.incidents("payments"), "the loop stopped after the poisoned records"
        assert_verifies(harness)
    finally:
        harness.close()
