"""Event store contract: every backend must pass this suite unchanged."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.domain.errors import ConcurrencyConflict
from warden.domain.events import Event
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from warden.ports import EventStore


def make(n: int, stream: str = "s") -> Event:
    return Event(
        id=f"{stream}-{n}",
        source="test",
        type="warden.test.happened",
        time="2026-11-25T12:00:00.000000Z",
        data={"n": n, "text": "é\u2028"},
        subject=stream,
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        correlation_id="c1",
    )


class EventStoreContract:
    """Subclass with a ``store`` fixture to check a backend."""

    def test_append_and_read_back(self, store: EventStore) -> None:
        stored = store.append("s", [make(1), make(2)])
        assert [e.position for e in stored] == [1, 2]
        assert store.read_stream("s") == stored
        assert stored[0].data == {"n": 1, "text": "é\u2028"}
        assert stored[0].traceparent.startswith("00-aaaa")
        assert store.stream_version("s") == 2
        assert store.head() == 2

    def test_append_is_idempotent_on_event_id(self, store: EventStore) -> None:
        first = store.append("s", [make(1)])
        again = store.append("s", [make(1)], expected_version=0)
        assert again == first
        assert store.stream_version("s") == 1

    def test_optimistic_concurrency(self, store: EventStore) -> None:
        store.append("s", [make(1)], expected_version=0)
        with pytest.raises(ConcurrencyConflict) as caught:
            store.append("s", [make(2)], expected_version=0)
        assert caught.value.actual == 1
        store.append("s", [make(2)], expected_version=1)

    def test_racing_writers_one_wins_each_version(self, store: EventStore) -> None:
        wins: list[int] = []
        losses: list[int] = []

        def writer(w: int) -> None:
            for _ in range(20):
                version = store.stream_version("race")
                try:
                    store.append("race", [make(w * 1000 + version, "race")], version)
                    wins.append(w)
                except ConcurrencyConflict:
                    losses.append(w)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = store.read_stream("race")
        assert len(events) == len(wins)
        assert len({e.id for e in events}) == len(events)

    def test_read_all_from_position_in_order(self, store: EventStore) -> None:
        store.append("a", [make(1, "a")])
        store.append("b", [make(1, "b"), make(2, "b")])
        store.append("a", [make(2, "a")])
        everything = store.read_all()
        assert [e.position for e in everything] == [1, 2, 3, 4]
        assert [e.id for e in store.read_all(2)] == ["b-2", "a-2"]
        assert [e.id for e in store.read_all(0, limit=1)] == ["a-1"]
        assert store.streams() == ["a", "b"]

    def test_quarantine_keeps_payload_and_reason(self, store: EventStore) -> None:
        qid = store.quarantine("webhook", "not JSON", "{oops", "2026-11-25T12:00:00Z")
        (item,) = store.quarantined()
        assert (item.id, item.reason, item.payload, item.source) == (
            qid, "not JSON", "{oops", "webhook",
        )  # fmt: skip

    def test_tracking_positions(self, store: EventStore) -> None:
        assert store.tracking("audit") == 0
        store.set_tracking("audit", 7)
        store.set_tracking("audit", 9)
        assert store.tracking("audit") == 9


class TestSQLiteEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        s = SQLiteEventStore(tmp_path / "events.db")
        yield s
        s.close()

    def test_survives_reopen(self, tmp_path: Path) -> None:
        first = SQLiteEventStore(tmp_path / "e.db")
        first.append("s", [make(1)])
        first.close()
        second = SQLiteEventStore(tmp_path / "e.db")
        assert [e.id for e in second.read_all()] == ["s-1"]
        second.close()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 5)), max_size=25))
def test_streams_fold_back_to_what_was_appended(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[str, int]]
) -> None:
    store = SQLiteEventStore(tmp_path_factory.mktemp("p") / "e.db")
    try:
        expected: dict[str, list[str]] = {}
        for stream, n in writes:
            event = make(n, stream)
            store.append(stream, [event])
            if event.id not in expected.setdefault(stream, []):
                expected[stream].append(event.id)
        for stream, ids in expected.items():
            assert [e.id for e in store.read_stream(stream)] == ids
        positions = [e.position for e in store.read_all()]
        assert positions == list(range(1, len(positions) + 1))
    finally:
        store.close()
