"""The JetStream source against a real NATS server: ack after store, redelivery, dedup."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from warden.domain.errors import ConfigError
from warden.domain.events import Event
from warden.ingest.gate import IngestGate
from warden.ingest.nats_source import (
    MSG_ID_HEADER,
    NatsSource,
    ensure_stream,
    publish_event,
    publish_events,
)
from warden.ingest.pipeline import Pipeline
from warden.ingest.registry import SchemaRegistry
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from nats.aio.msg import Msg

    from warden.ingest.pipeline import Outcome
    from warden.testing import ManualClock

pytestmark = pytest.mark.nats


class Names:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.stream = f"WARDEN_TEST_{tag}"
        self.subject = f"warden.test.{tag}"
        self.durable = f"ingest-{tag}"


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(coro, timeout=20)

    return asyncio.run(main())


@pytest.fixture
def names(nats_url: str) -> Iterator[Names]:
    created = Names()

    async def setup() -> None:
        nc = await nats.connect(nats_url)
        try:
            await ensure_stream(nc.jetstream(), created.stream, [f"{created.subject}.>"])
        finally:
            await nc.close()

    async def teardown() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().delete_stream(created.stream)
        finally:
            await nc.close()

    run(setup())
    yield created
    run(teardown())


def probe_event(n: int, **overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "id": f"evt-{uuid.uuid4().hex[:8]}-{n}",
        "source": "warden://probe/payments",
        "type": "warden.probe.failed",
        "time": "2026-11-25T12:00:00.000000Z",
        "data": {"service": "payments", "probe": "http://x/health", "error": f"refused {n}"},
        "subject": "payments",
    }
    fields.update(overrides)
    return Event(**fields)


def source(names: Names, url: str, **kwargs: Any) -> NatsSource:
    return NatsSource(
        url,
        stream=names.stream,
        subject=f"{names.subject}.>",
        durable=names.durable,
        fetch_timeout_s=0.2,
        ack_wait_s=1.0,
        **{"allow_types": ["warden.probe.failed"], **kwargs},
    )


def until(pipeline: Pipeline, total: int) -> Callable[[], bool]:
    return lambda: pipeline.statistics().total >= total


async def pending(url: str, names: Names) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(names.stream, names.durable)
        return info.num_pending or 0, info.num_ack_pending or 0
    finally:
        await nc.close()


def test_events_are_stored_bad_ones_quarantined_and_all_acked(
    nats_url: str, names: Names, store: SQLiteEventStore, clock: ManualClock
) -> None:
    pipeline = Pipeline(IngestGate(store, SchemaRegistry(), clock))
    good = [probe_event(i) for i in range(3)]
    acks = publish_events(nats_url, f"{names.subject}.probes", good)
    assert [bool(a.duplicate) for a in acks] == [False, False, False]

    async def publish_bad() -> None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            await js.publish(f"{names.subject}.junk", b"\xff not json")
            mismatched = probe_event(9).to_cloudevent()
            await js.publish(
                f"{names.subject}.probes",
                json.dumps(mismatched).encode(),
                headers={MSG_ID_HEADER: "another-id"},
            )
        finally:
            await nc.close()

    run(publish_bad())
    tally = run(source(names, nats_url).consume(pipeline, until(pipeline, 5)))
    assert (tally.accepted, tally.duplicate, tally.quarantined) == (3, 0, 2)
    assert [e.id for e in store.read_stream("service-payments")] == [e.id for e in good]
    reasons = sorted(q.reason for q in store.quarantined())
    assert reasons[0].startswith("id: the event id")
    assert reasons[1].startswith("not JSON")
    assert {q.source for q in store.quarantined()} == {
        f"nats:{names.subject}.junk",
        f"nats:{names.subject}.probes",
    }
    assert run(pending(nats_url, names)) == (0, 0)


def test_republishing_an_event_is_dropped_by_the_server(nats_url: str, names: Names) -> None:
    event = probe_event(1)

    async def publish_twice() -> tuple[bool, bool, int]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            first = await publish_event(js, f"{names.subject}.probes", event)
            second = await publish_event(js, f"{names.subject}.probes", event.to_cloudevent())
            info = await js.stream_info(names.stream)
            return first.duplicate or False, second.duplicate or False, info.state.messages
        finally:
            await nc.close()

    assert run(publish_twice()) == (False, True, 1)


class Crash(Exception):
    """The consumer dies after storing and before acking."""


def test_a_consumer_killed_between_store_and_ack_redelivers_without_duplicate(
    nats_url: str, names: Names, store: SQLiteEventStore, clock: ManualClock
) -> None:
    pipeline = Pipeline(IngestGate(store, SchemaRegistry(), clock))
    event = probe_event(1)
    publish_events(nats_url, f"{names.subject}.probes", [event])
    stored_before_crash: list[str] = []

    async def crash(message: Msg, outcome: Outcome) -> None:
        stored_before_crash.append(outcome.event_id)
        raise Crash

    with pytest.raises(Crash):
        run(source(names, nats_url, before_ack=crash).consume(pipeline, lambda: False))
    assert stored_before_crash == [event.id]
    assert [e.id for e in store.read_all()] == [event.id]
    assert run(pending(nats_url, names))[1] == 1, "the message must still await its ack"

    # A new consumer process on the same durable gets the message again after ack_wait.
    restarted = source(names, nats_url)
    tally = run(restarted.consume(pipeline, until(pipeline, 2)))
    assert (tally.accepted, tally.duplicate, tally.quarantined) == (0, 1, 0)
    assert restarted.redelivered == 1
    assert [e.id for e in store.read_all()] == [event.id], "no duplicate in the store"
    assert run(pending(nats_url, names)) == (0, 0)


CONSUMER = """
import asyncio, sys
from pathlib import Path
from datetime import UTC, datetime
from warden.ingest.gate import IngestGate
from warden.ingest.nats_source import NatsSource
from warden.ingest.pipeline import Pipeline
from warden.ingest.registry import SchemaRegistry
from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock

url, stream, subject, durable, db, marker = sys.argv[1:]

async def hang(message, outcome):
    Path(marker).write_text(outcome.event_id)  # stored; now die before the ack
    await asyncio.sleep(60)

store = SQLiteEventStore(db)
pipeline = Pipeline(IngestGate(store, SchemaRegistry(), ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC))))
source = NatsSource(url, stream=stream, subject=subject, durable=durable, fetch_timeout_s=0.2,
                    allow_types=["warden.probe.failed"],
                    ack_wait_s=1.0, before_ack=hang)
asyncio.run(source.consume(pipeline, lambda: False))
"""


def test_a_consumer_process_killed_between_store_and_ack_loses_and_duplicates_nothing(
    nats_url: str, names: Names, tmp_path: Path, clock: ManualClock
) -> None:
    event = probe_event(7)
    publish_events(nats_url, f"{names.subject}.probes", [event])
    db, marker = tmp_path / "events.db", tmp_path / "stored"
    process = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, nats_url, names.stream, f"{names.subject}.>",
         names.durable, str(db), str(marker)],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the consumer never stored the event"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
    assert marker.read_text() == event.id

    store = SQLiteEventStore(db)
    try:
        assert [e.id for e in store.read_all()] == [event.id]
        pipeline = Pipeline(IngestGate(store, SchemaRegistry(), clock))
        restarted = source(names, nats_url)
        tally = run(restarted.consume(pipeline, until(pipeline, 1)))
        assert (tally.accepted, tally.duplicate) == (0, 1)
        assert restarted.redelivered == 1
        assert [e.id for e in store.read_all()] == [event.id]
    finally:
        store.close()
    assert run(pending(nats_url, names)) == (0, 0)


def test_a_store_failure_naks_and_the_message_comes_back(
    nats_url: str, names: Names, store: SQLiteEventStore, clock: ManualClock
) -> None:
    class FailingOnce(Pipeline):
        failed = False

        def process(self, jobs: Any) -> list[Outcome]:
            if not self.failed:
                self.failed = True
                raise OSError("disk full")
            return super().process(jobs)

    pipeline = FailingOnce(IngestGate(store, SchemaRegistry(), clock))
    event = probe_event(2)
    publish_events(nats_url, f"{names.subject}.probes", [event])
    consumer = source(names, nats_url)
    tally = run(consumer.consume(pipeline, until(pipeline, 1)))
    assert tally.accepted == 1
    assert consumer.redelivered == 1
    assert [e.id for e in store.read_all()] == [event.id]


def test_consumer_config_is_a_durable_explicit_ack_pull_consumer(
    nats_url: str, names: Names, store: SQLiteEventStore, clock: ManualClock
) -> None:
    pipeline = Pipeline(IngestGate(store, SchemaRegistry(), clock))
    run(source(names, nats_url).consume(pipeline, lambda: True))

    async def config() -> ConsumerConfig:
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().consumer_info(names.stream, names.durable)
            return info.config
        finally:
            await nc.close()

    found = run(config())
    assert found.durable_name == names.durable
    assert found.ack_policy == AckPolicy.EXPLICIT
    assert found.ack_wait == 1.0


def test_warden_types_need_a_grant_and_events_record_the_connection(
    nats_url: str, names: Names, store: SQLiteEventStore, clock: ManualClock
) -> None:
    pipeline = Pipeline(IngestGate(store, SchemaRegistry(), clock))
    forged = probe_event(1)
    publish_events(nats_url, f"{names.subject}.probes", [forged])
    ungranted = source(names, nats_url, allow_types=[])
    asyncio.run(ungranted.consume(pipeline, until(pipeline, 1)))
    assert store.read_all() == []
    (refused,) = store.quarantined()
    assert "warden.probe.failed is reserved" in refused.reason
    assert "sources.nats.allow_types" in refused.reason

    publish_events(nats_url, f"{names.subject}.probes", [probe_event(2)])
    granted = source(names, nats_url)
    asyncio.run(granted.consume(pipeline, until(pipeline, 2)))
    (stored,) = store.read_all()
    assert stored.extensions["wardensource"] == "nats/connection"


def test_connection_credentials_come_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATS_PW", "pw-from-env")
    by_user = NatsSource(user="ingest", password_env="NATS_PW")
    assert by_user._credentials() == {"user": "ingest", "password": "pw-from-env"}
    assert by_user.origin.name == "nats/ingest"
    token_file = tmp_path / "token"
    token_file.write_text("tok-from-file\n")
    assert NatsSource(token_file=str(token_file))._credentials() == {"token": "tok-from-file"}
    creds = tmp_path / "ingest.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    assert NatsSource(creds=str(creds))._credentials() == {"user_credentials": str(creds)}
    with pytest.raises(ConfigError, match="user and password go together"):
        NatsSource(user="ingest")
    with pytest.raises(ConfigError, match="one way"):
        NatsSource(user="ingest", password_env="NATS_PW", creds=str(creds))
    with pytest.raises(ConfigError, match=r"\$NOPE_UNSET is not set"):
        NatsSource(token_env="NOPE_UNSET")
