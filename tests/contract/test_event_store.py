"""Event store contract: every backend must pass this suite unchanged."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.domain.errors import ConcurrencyConflict, TemporaryError
from warden.domain.events import Event
from warden.ports import AppendCounter, BatchAppender
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Callable

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
    """Subclass with an ``open_store`` fixture (a factory of stores on one location)."""

    @pytest.fixture
    def store(self, open_store: Callable[..., EventStore]) -> EventStore:
        return open_store()

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

    def test_read_stream_from_version(self, store: EventStore) -> None:
        store.append("s", [make(1), make(2), make(3)])
        assert [e.id for e in store.read_stream("s", 1)] == ["s-2", "s-3"]
        assert store.read_stream("s", 3) == []
        assert store.read_stream("missing") == []
        assert store.stream_version("missing") == 0

    def test_streams_by_prefix_in_order_of_first_event(self, store: EventStore) -> None:
        store.append("incident-2", [make(1, "incident-2")])
        store.append("service-a", [make(1, "service-a")])
        store.append("incident-1", [make(1, "incident-1")])
        store.append("incident-2", [make(2, "incident-2")])
        assert store.streams("incident-") == ["incident-2", "incident-1"]
        assert store.streams("nothing") == []

    def test_a_stream_prefix_is_matched_exactly(self, store: EventStore) -> None:
        names = ["a_b-1", "axb-1", "A_B-2", "a%c-1", "abc-1", "a\\b-1", "ab-1"]
        for name in names:
            store.append(name, [make(1, name)])
        assert store.streams("a_b-") == ["a_b-1"]  # "_" is no wildcard, case counts
        assert store.streams("a%") == ["a%c-1"]
        assert store.streams("a\\") == ["a\\b-1"]
        assert store.streams("") == names

    def test_append_batch_reports_which_events_it_stored(self, store: Any) -> None:
        store.append("a", [make(1, "a")])
        new_ids: set[str] = set()
        stored = store.append_batch(
            [("a", [make(1, "a"), make(2, "a")]), ("b", [make(2, "a"), make(1, "b")])],
            new_ids=new_ids,
        )
        assert new_ids == {"a-2", "b-1"}
        assert [[e.id for e in events] for events in stored] == [["a-1", "a-2"], ["a-2", "b-1"]]
        again: set[str] = set()
        store.append_batch([("a", [make(2, "a")])], new_ids=again)
        assert again == set()

    def test_racing_batches_store_each_event_once_and_say_so_once(
        self, open_store: Callable[..., Any]
    ) -> None:
        stores = [open_store() for _ in range(4)]
        ids = [make(n, "race") for n in range(60)]
        reports: list[set[str]] = [set() for _ in stores]

        def write(k: int) -> None:
            for at in range(0, len(ids), 6):  # overlapping batches, in a different order each
                chunk = ids[at : at + 6][:: 1 if k % 2 else -1]
                stores[k].append_batch([("race", chunk)], new_ids=reports[k])

        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(write, range(len(stores))))
        assert sum(len(r) for r in reports) == len(ids)
        assert set().union(*reports) == {e.id for e in ids}
        assert sorted(e.id for e in stores[0].read_stream("race")) == sorted(e.id for e in ids)

    def test_a_writer_stuck_holding_the_log_makes_others_fail_soon_not_hang(
        self, open_store: Callable[..., Any]
    ) -> None:
        holding, release = threading.Event(), threading.Event()

        def stuck() -> None:
            holding.set()
            assert release.wait(10)

        slow = open_store(before_commit=stuck)
        other = open_store(lock_timeout_s=0.2)
        first = threading.Thread(target=slow.append, args=("a", [make(1, "a")]))
        first.start()
        assert holding.wait(5)
        try:
            with pytest.raises(TemporaryError, match=r"locked by another writer for 0\.2 s"):
                other.append("b", [make(1, "b")])
        finally:
            release.set()
            first.join(5)
        other.append("b", [make(1, "b")])
        assert [e.id for e in other.read_all()] == ["a-1", "b-1"]

    def test_an_id_stored_in_another_stream_is_not_added_again(self, store: EventStore) -> None:
        (first,) = store.append("a", [make(1, "x")])
        (again,) = store.append("b", [make(1, "x")])
        assert again == first and again.stream == "a"
        assert store.stream_version("b") == 0

    def test_quarantine_keeps_any_text(self, store: EventStore) -> None:
        payload = '{"id": "a\x00b", "emoji": "\U0001f525", "nl": "\n\u2028"}'
        first = store.quarantine("webhook", "control character", payload, "2026-11-25T12:00:00Z")
        second = store.quarantine("nats", "too large", "x" * 70_000, "2026-11-25T12:00:01Z")
        assert first < second
        assert [q.payload for q in store.quarantined()] == [payload, "x" * 70_000]

    def test_released_quarantine_items_are_gone(self, store: Any) -> None:
        ids = [
            store.quarantine("webhook", "bad", f"{{{n}", "2026-11-25T12:00:00Z") for n in range(3)
        ]
        assert store.release_quarantined([ids[0], ids[2], 999]) == 2
        assert store.release_quarantined([]) == 0
        assert [q.id for q in store.quarantined()] == [ids[1]]

    def test_a_failed_commit_leaves_nothing_and_no_hole(
        self, open_store: Callable[..., Any]
    ) -> None:
        def fail() -> None:
            raise TemporaryError("disk full")

        failing = open_store(before_commit=fail)
        with pytest.raises(TemporaryError):
            failing.append("s", [make(1), make(2)])
        store = open_store()
        assert store.head() == 0 and store.read_all() == []
        assert [e.position for e in store.append("s", [make(3)])] == [1]

    def test_survives_reopen(self, open_store: Callable[..., Any]) -> None:
        first = open_store()
        first.append("s", [make(1)])
        first.set_tracking("audit", 1)
        first.close()
        second = open_store()
        assert [e.id for e in second.read_all()] == ["s-1"]
        assert second.tracking("audit") == 1

    def test_tailing_reader_sees_every_event_once_in_order(
        self, open_store: Callable[..., Any], tailer: Any
    ) -> None:
        # Racing writers hold their transactions open a random while between insert and
        # commit, so a later position may be ready before an earlier one; a reader that
        # follows read_all must still get every position once, in order, with no gap.
        rng = random.Random(7)
        rng_lock = threading.Lock()

        def linger() -> None:
            with rng_lock:
                delay = rng.uniform(0, 0.004)
            time.sleep(delay)

        writer = open_store(before_commit=linger)
        reader = tailer(open_store())
        writers, appends = 4, 15

        def write(w: int) -> list[str]:
            ids: list[str] = []
            for i in range(appends):
                stored = writer.append(f"w{w}", [make(2 * i, f"w{w}"), make(2 * i + 1, f"w{w}")])
                ids += [e.id for e in stored]
            return ids

        with ThreadPoolExecutor(writers) as pool:
            written = [i for ids in pool.map(write, range(writers)) for i in ids]
        seen = reader.finish()
        total = writers * appends * 2
        assert [e.position for e in seen] == list(range(1, total + 1))
        assert sorted(e.id for e in seen) == sorted(written)
        assert [e.id for e in seen] == [e.id for e in writer.read_all()]

    def test_the_append_count_changes_with_every_append_and_only_then(
        self, store: EventStore
    ) -> None:
        # The loop skips reading the log back while the count stands still: a write that
        # left it unchanged would go unseen until the next round.
        assert isinstance(store, AppendCounter)
        seen = [store.appended()]
        store.append("s", [make(1)])
        seen.append(store.appended())
        with pytest.raises(ConcurrencyConflict):
            store.append("s", [make(2)], expected_version=0)
        store.read_all()
        store.quarantine("test", "bad", "{}", "2026-11-25T12:00:00Z")
        store.set_tracking("audit", 1)
        seen.append(store.appended())
        assert isinstance(store, BatchAppender)
        store.append_batch([("s", [make(2)]), ("t", [make(1, "t")])])
        seen.append(store.appended())
        assert seen[0] != seen[1] == seen[2] != seen[3]
        assert [e.id for e in store.read_all()] == ["s-1", "s-2", "t-1"]

    def test_an_append_seen_in_the_count_is_seen_by_read_all(
        self, open_store: Callable[..., Any]
    ) -> None:
        writer, reader = open_store(), open_store()
        before = writer.appended()
        writer.append("s", [make(1)])
        assert writer.appended() != before
        assert [e.id for e in reader.read_all()] == ["s-1"]


class TestMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def open_store(self, memory_factory: Callable[..., Any]) -> Callable[..., Any]:
        return memory_factory


class TestSQLiteEventStore(EventStoreContract):
    @pytest.fixture
    def open_store(self, sqlite_factory: Callable[..., Any]) -> Callable[..., Any]:
        return sqlite_factory


@pytest.mark.postgres
class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def open_store(self, postgres_factory: Callable[..., Any]) -> Callable[..., Any]:
        return postgres_factory


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
