"""The ingest pipeline's verdicts and the bounded writer in front of it."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import pytest

from tests.builders import probe_cloudevent as probe
from warden.domain.errors import TemporaryError
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import (
    INGEST_STREAM,
    Admit,
    Outcome,
    Pipeline,
    Refuse,
    Tally,
    Verdict,
    stream_for,
)
from warden.ingest.registry import SchemaRegistry
from warden.ingest.writer import IngestWriter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.ingest.pipeline import Job
    from warden.store.sqlite import SQLiteEventStore
    from warden.testing import ManualClock


@pytest.fixture
def pipeline(store: SQLiteEventStore, clock: ManualClock) -> Pipeline:
    return Pipeline(IngestGate(store, SchemaRegistry(), clock, max_bytes=4096))


def test_stream_for_uses_the_subject() -> None:
    assert stream_for(probe()) == "service-payments"
    assert stream_for(probe(subject="")) == INGEST_STREAM
    assert stream_for(probe(subject=5)) == INGEST_STREAM
    assert stream_for([1]) == INGEST_STREAM


def test_accepted_duplicate_and_quarantined(pipeline: Pipeline, store: SQLiteEventStore) -> None:
    outcomes = pipeline.process(
        [
            Admit(json.dumps(probe()), "t"),
            Admit(probe(), "t"),
            Admit(probe(id="e2"), "t", stream="custom"),
            Refuse("raw", "t", "known bad", 415),
            Admit("{nope", "t"),
        ]
    )
    assert [o.verdict for o in outcomes] == [
        Verdict.ACCEPTED,
        Verdict.DUPLICATE,
        Verdict.ACCEPTED,
        Verdict.QUARANTINED,
        Verdict.QUARANTINED,
    ]
    assert outcomes[0] == Outcome(Verdict.ACCEPTED, "e1", "service-payments", status=202)
    assert outcomes[2].stream == "custom"
    assert outcomes[3].status == 415
    assert outcomes[4].reason.startswith("not JSON")
    assert pipeline.statistics() == Tally(accepted=2, duplicate=1, quarantined=2)
    assert [(q.source, q.reason, q.payload) for q in store.quarantined()] == [
        ("t", "known bad", "raw"),
        ("t", outcomes[4].reason, "{nope"),
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("1" * 5000, "limit is 4096"),
        ("[" * 3000, "not JSON"),
        (json.dumps(probe(time="9999-12-31T23:59:59-23:00")), "cannot validate the event"),
        (json.dumps(probe(subject=None)), "envelope"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_nothing_crashes_the_pipeline(
    pipeline: Pipeline, store: SQLiteEventStore, payload: str | bytes, reason: str
) -> None:
    (outcome,) = pipeline.process([Admit(payload, "fuzz")])
    assert outcome.verdict is Verdict.QUARANTINED
    assert reason in outcome.reason
    assert len(store.quarantined()) == 1


def test_an_integer_too_long_for_python_is_quarantined(
    store: SQLiteEventStore, clock: ManualClock
) -> None:
    pipeline = Pipeline(IngestGate(store, SchemaRegistry(), clock))
    (outcome,) = pipeline.process([Admit('{"n": ' + "9" * 5000 + "}", "fuzz")])
    assert outcome.verdict is Verdict.QUARANTINED
    assert "not JSON: Exceeds the limit" in outcome.reason


def test_tally_arithmetic() -> None:
    tally = Tally(1, 2, 3)
    assert tally.total == 6
    assert tally.since(Tally(1, 1, 1)) == Tally(0, 1, 2)


def test_outcome_to_dict() -> None:
    assert Outcome(Verdict.ACCEPTED, "e", "s").to_dict() == {
        "verdict": "accepted",
        "id": "e",
        "stream": "s",
    }
    assert Outcome(Verdict.QUARANTINED, quarantine_id=3, reason="r").to_dict() == {
        "verdict": "quarantined",
        "quarantine_id": 3,
        "reason": "r",
    }


# -- the bounded writer ---------------------------------------------------------------------


def test_a_full_queue_refuses_at_once_and_nothing_queued_is_lost(
    pipeline: Pipeline, store: SQLiteEventStore
) -> None:
    writer = IngestWriter(pipeline, capacity=2, retry_after_s=3.0)
    first = writer.submit_nowait([Admit(probe(id="a"), "t")])
    second = writer.submit_nowait([Admit(probe(id="b"), "t")])
    with pytest.raises(TemporaryError, match="queue is full") as caught:
        writer.submit_nowait([Admit(probe(id="c"), "t")])
    assert caught.value.delay == 3.0
    assert writer.statistics().refused_full == 1
    assert writer.statistics().queued == 2
    assert store.read_all() == []
    writer.start()
    assert [o.event_id for o in first.result(5) + second.result(5)] == ["a", "b"]
    assert [e.id for e in store.read_all()] == ["a", "b"]
    writer.close()
    assert writer.statistics().processed == 2


def test_wait_processed_times_out_but_the_jobs_are_still_written(
    pipeline: Pipeline, store: SQLiteEventStore
) -> None:
    writer = IngestWriter(pipeline, capacity=4)
    with pytest.raises(TemporaryError, match=r"did not confirm within 0\.05 s"):
        writer.wait_processed([Admit(probe(id="slow"), "t")], 0.05)
    writer.start()
    writer.close()
    assert [e.id for e in store.read_all()] == ["slow"]


class BrokenPipeline(Pipeline):
    def process(self, jobs: Sequence[Job]) -> list[Outcome]:
        raise OSError("disk full")


def test_a_store_failure_reaches_the_waiting_sender(
    store: SQLiteEventStore, clock: ManualClock
) -> None:
    writer = IngestWriter(BrokenPipeline(IngestGate(store, SchemaRegistry(), clock)))
    writer.start()
    with pytest.raises(OSError, match="disk full"):
        writer.wait_processed([Admit(probe(), "t")], 5)
    assert writer.statistics().failed == 1
    writer.close()


def test_closing_refuses_new_work_and_fails_what_an_unstarted_writer_holds(
    pipeline: Pipeline,
) -> None:
    writer = IngestWriter(pipeline, capacity=2)
    pending = writer.submit_nowait([Admit(probe(), "t")])
    writer.close()
    with pytest.raises(TemporaryError, match="closed before writing"):
        pending.result(1)
    with pytest.raises(TemporaryError, match="shutting down"):
        writer.submit_nowait([])


def test_many_producers_one_writer(pipeline: Pipeline, store: SQLiteEventStore) -> None:
    writer = IngestWriter(pipeline, capacity=64)
    writer.start()
    results: list[list[Outcome]] = []
    lock = threading.Lock()

    def produce(n: int) -> None:
        outcome = writer.wait_processed([Admit(probe(id=f"p{n}"), "t")], 10)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert len(results) == 20
    assert len(store.read_all()) == 20
    assert not writer.statistics().running
    with pytest.raises(ValueError, match="at least 1"):
        IngestWriter(pipeline, capacity=0)


def test_racing_pipelines_accept_each_event_once(
    store: SQLiteEventStore, clock: ManualClock
) -> None:
    from warden.store.sqlite import SQLiteEventStore

    others = [SQLiteEventStore(store.path) for _ in range(3)]
    pipelines = [Pipeline(IngestGate(s, SchemaRegistry(), clock)) for s in [store, *others]]
    jobs = [Admit(probe(id=f"r{n}"), "t") for n in range(40)]
    verdicts: list[list[Verdict]] = [[] for _ in pipelines]

    def run(k: int) -> None:
        for at in range(0, len(jobs), 5):
            chunk = jobs[at : at + 5][:: 1 if k % 2 else -1]
            verdicts[k] += [o.verdict for o in pipelines[k].process(chunk)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(pipelines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.close()
    every = [v for found in verdicts for v in found]
    assert every.count(Verdict.ACCEPTED) == len(jobs)
    assert every.count(Verdict.DUPLICATE) == len(jobs) * (len(pipelines) - 1)
    assert len(store.read_all()) == len(jobs)
