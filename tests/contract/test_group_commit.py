"""Batched and group commit contract: ``append_batch`` and the GroupCommitter, per backend."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.domain.errors import PermanentError, TemporaryError
from warden.domain.events import Event
from warden.store.group_commit import GroupCommitter
from warden.store.memory import MemoryEventStore
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def make(n: int, stream: str = "s", data: Any = None) -> Event:
    return Event(
        id=f"{stream}-{n}",
        source="test",
        type="warden.test.happened",
        time="2026-11-25T12:00:00.000000Z",
        data={"n": n} if data is None else data,
    )


class FirstCommitHeld:
    """A ``before_commit`` hook that holds the first commit until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._first = True

    def __call__(self) -> None:
        if self._first:
            self._first = False
            self.entered.set()
            assert self.release.wait(10), "the test never released the first commit"


class BatchContract:
    """Subclass with an ``open_store`` fixture (a factory of stores on one location)."""

    @pytest.fixture
    def store(self, open_store: Callable[..., Any]) -> Any:
        return open_store()

    def test_append_batch_stores_every_item_in_order(self, store: Any) -> None:
        a1, a2, b1, a3 = make(1, "a"), make(2, "a"), make(1, "b"), make(3, "a")
        out = store.append_batch([("a", [a1, a2]), ("b", [b1]), ("a", [a3])])
        assert [[e.position for e in item] for item in out] == [[1, 2], [3], [4]]
        assert [e.id for e in store.read_all()] == ["a-1", "a-2", "b-1", "a-3"]
        assert store.read_stream("a") == [*out[0], *out[2]]
        assert store.stream_version("a") == 3 and store.stream_version("b") == 1
        (after,) = store.append("a", [make(4, "a")], expected_version=3)
        assert after.position == 5

    def test_append_batch_is_idempotent_inside_and_across_batches(self, store: Any) -> None:
        (old,) = store.append("a", [make(1, "a")])
        batch = [
            ("a", [make(1, "a"), make(2, "a"), make(2, "a")]),
            ("b", [make(2, "a"), make(1, "b")]),
        ]
        out = store.append_batch(batch)
        assert [[e.position for e in item] for item in out] == [[1, 2, 2], [2, 3]]
        assert out[0][0] == old and out[1][0].stream == "a"
        assert store.append_batch(batch) == out
        assert store.head() == 3
        assert (store.stream_version("a"), store.stream_version("b")) == (2, 1)

    def test_append_batch_is_all_or_nothing(self, open_store: Callable[..., Any]) -> None:
        def fail() -> None:
            raise TemporaryError("disk full")

        with pytest.raises(TemporaryError):
            open_store(before_commit=fail).append_batch([("a", [make(1)]), ("b", [make(2)])])
        store = open_store()
        assert store.head() == 0
        assert store.append_batch([("b", [make(2)])])[0][0].position == 1

    def test_empty_batches(self, store: Any) -> None:
        assert store.append_batch([]) == []
        assert store.append_batch([("a", []), ("b", [])]) == [[], []]
        assert store.head() == 0

    def test_a_returned_batch_is_there_for_a_new_connection(
        self, open_store: Callable[..., Any]
    ) -> None:
        first = open_store()
        out = first.append_batch(
            [(f"s{i}", [make(n, f"s{i}") for n in range(50)]) for i in range(4)]
        )
        first.close()
        assert open_store().read_all() == [e for item in out for e in item]

    def test_committer_returns_each_caller_its_durable_events(
        self, open_store: Callable[..., Any]
    ) -> None:
        store = open_store()
        with GroupCommitter(store) as committer:

            def produce(p: int) -> list[Event]:
                return [e for n in range(25) for e in committer.append(f"p{p}", [make(n, f"p{p}")])]

            with ThreadPoolExecutor(8) as pool:
                returned = [e for events in pool.map(produce, range(8)) for e in events]
        stats = committer.statistics()
        assert (stats.appends, stats.events, stats.failed_commits) == (200, 200, 0)
        assert sorted(e.position for e in returned) == list(range(1, 201))
        by_id = {e.id: e for e in open_store().read_all()}
        assert all(by_id[e.id] == e for e in returned) and len(by_id) == 200

    def test_committer_groups_the_appends_queued_during_a_commit(
        self, open_store: Callable[..., Any]
    ) -> None:
        held = FirstCommitHeld()
        with GroupCommitter(open_store(before_commit=held)) as committer:
            first = committer.submit("s", [make(0)])
            assert held.entered.wait(10)
            queued = [committer.submit("s", [make(n)]) for n in range(1, 21)]
            held.release.set()
            assert [f.result(10)[0].position for f in [first, *queued]] == list(range(1, 22))
        stats = committer.statistics()
        assert (stats.commits, stats.appends, stats.largest_commit) == (2, 21, 20)

    def test_an_answer_not_there_in_time_is_a_timeout_not_a_loss(
        self, open_store: Callable[..., Any]
    ) -> None:
        held = FirstCommitHeld()
        with GroupCommitter(open_store(before_commit=held)) as committer:
            first = committer.submit("s", [make(0)])
            assert held.entered.wait(10)
            with pytest.raises(TimeoutError):
                first.result(0.05)
            assert not first.done()
            held.release.set()
            assert first.exception(10) is None and first.done()
            assert [e.position for e in first.result(0)] == [1]

    def test_a_bad_append_fails_only_its_caller(self, open_store: Callable[..., Any]) -> None:
        held = FirstCommitHeld()
        with GroupCommitter(open_store(before_commit=held)) as committer:
            committer.submit("s", [make(0)])
            assert held.entered.wait(10)
            good = [committer.submit("s", [make(n)]) for n in (1, 2)]
            bad = committer.submit("s", [make(3, data={"not json": object()})])
            later = committer.submit("t", [make(4, "t")])
            held.release.set()
            with pytest.raises(TypeError):
                bad.result(10)
            assert [f.result(10)[0].id for f in [*good, later]] == ["s-1", "s-2", "t-4"]
        assert committer.statistics().failed_commits >= 1

    def test_a_store_failure_fails_the_whole_group_without_retries(
        self, open_store: Callable[..., Any]
    ) -> None:
        held = FirstCommitHeld()

        def hold_then_fail() -> None:
            if held.entered.is_set():
                raise TemporaryError("disk full")
            held()

        with GroupCommitter(open_store(before_commit=hold_then_fail)) as committer:
            first = committer.submit("s", [make(0)])
            assert held.entered.wait(10)
            queued = [committer.submit("s", [make(n)]) for n in range(1, 6)]
            held.release.set()
            assert first.result(10)[0].position == 1
            for future in queued:
                with pytest.raises(TemporaryError):
                    future.result(10)
        assert committer.statistics().failed_commits == 1

    def test_same_event_from_two_callers_is_stored_once(self, store: Any) -> None:
        with GroupCommitter(store) as committer:
            futures = [committer.submit("s", [make(1)]) for _ in range(5)]
            assert len({f.result(10)[0].position for f in futures}) == 1
        assert store.head() == 1

    def test_close_commits_what_was_submitted_then_refuses(self, store: Any) -> None:
        committer = GroupCommitter(store, max_events=3)
        futures = [committer.submit("s", [make(n)]) for n in range(10)]
        committer.close()
        assert all(f.done() for f in futures)
        assert store.stream_version("s") == 10
        with pytest.raises(PermanentError, match="closed"):
            committer.submit("s", [make(11)])
        assert committer.statistics().largest_commit <= 3

    def test_tailing_reader_never_skips_a_group_committed_event(
        self, open_store: Callable[..., Any], tailer: Any
    ) -> None:
        rng = random.Random(3)

        def linger() -> None:
            time.sleep(rng.uniform(0, 0.004))

        reader = tailer(open_store(), page=7)
        with GroupCommitter(open_store(before_commit=linger)) as committer:

            def produce(p: int) -> None:
                for n in range(30):
                    committer.append(f"p{p}", [make(n, f"p{p}")])

            with ThreadPoolExecutor(6) as pool:
                list(pool.map(produce, range(6)))
        seen = reader.finish()
        assert [e.position for e in seen] == list(range(1, 181))
        assert len({e.id for e in seen}) == 180


class TestMemoryBatches(BatchContract):
    @pytest.fixture
    def open_store(self, memory_factory: Callable[..., Any]) -> Callable[..., Any]:
        return memory_factory


class TestSQLiteBatches(BatchContract):
    @pytest.fixture
    def open_store(self, sqlite_factory: Callable[..., Any]) -> Callable[..., Any]:
        return sqlite_factory


@pytest.mark.postgres
class TestPostgresBatches(BatchContract):
    @pytest.fixture
    def open_store(self, postgres_factory: Callable[..., Any]) -> Callable[..., Any]:
        return postgres_factory


def same_as_memory(sqlite: SQLiteEventStore, memory: MemoryEventStore) -> None:
    """Both logs hold the same events, at the same positions and stream versions."""
    # SQLite's AUTOINCREMENT mark counts every position taken: none is handed out twice.
    mark = sqlite.read_rows("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
    assert mark == ([(sqlite.head(),)] if sqlite.head() else [])
    assert sqlite.read_all() == memory.read_all()
    assert sqlite.streams() == memory.streams()
    for stream in memory.streams():
        assert sqlite.read_stream(stream) == memory.read_stream(stream)
        assert sqlite.stream_version(stream) == memory.stream_version(stream)


def numbered(n: int, stream: str, variant: int) -> Event:
    """Event ``e<n>``; events of one id differ by ``variant``, so a wrong winner shows."""
    return Event(
        id=f"e{n}",
        source="test",
        type="warden.test.happened",
        time="2026-11-25T12:00:00.000000Z",
        data={"n": n, "variant": variant},
        subject=stream,
    )


_ITEM = st.tuples(
    st.sampled_from("abc"),
    st.lists(st.tuples(st.integers(0, 9), st.integers(0, 2)), max_size=4),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 9)), max_size=6),
    st.lists(st.lists(_ITEM, max_size=6), min_size=1, max_size=3),
)
def test_batches_store_what_the_memory_store_does(
    tmp_path_factory: pytest.TempPathFactory,
    appended: list[tuple[str, int]],
    batches: list[list[tuple[str, list[tuple[int, int]]]]],
) -> None:
    # New ids, ids repeated within a batch (the first event wins) and ids stored before,
    # in this stream or another: SQLite inserts every event as new first and takes another
    # path once one was stored; both must give what the reference store gives.
    sqlite = SQLiteEventStore(tmp_path_factory.mktemp("b") / "e.db")
    memory = MemoryEventStore()
    try:
        for stream, n in appended:
            assert sqlite.append(stream, [numbered(n, stream, 9)]) == memory.append(
                stream, [numbered(n, stream, 9)]
            )
        for batch in batches:
            items = [(s, [numbered(n, s, v) for n, v in events]) for s, events in batch]
            new_in_sqlite: set[str] = set()
            new_in_memory: set[str] = set()
            out = sqlite.append_batch(items, new_ids=new_in_sqlite)
            assert out == memory.append_batch(items, new_ids=new_in_memory)
            assert new_in_sqlite == new_in_memory
            same_as_memory(sqlite, memory)
    finally:
        sqlite.close()


def test_an_id_stored_past_the_first_insert_of_a_large_batch_is_not_added_again(
    tmp_path: Path,
) -> None:
    # A batch this large is inserted 128 rows at a time: the stored id is met after the
    # first rows went in; the rest must follow them with no hole and no second copy.
    sqlite = SQLiteEventStore(tmp_path / "e.db")
    memory = MemoryEventStore()
    try:
        for store in (sqlite, memory):
            store.append("old", [numbered(700, "old", 0)])
        items = [(f"s{n % 3}", [numbered(n, f"s{n % 3}", 0)]) for n in range(600)]
        items.insert(450, ("s0", [numbered(700, "s0", 1)]))
        items.insert(500, ("s1", [numbered(3, "s1", 1)]))
        new_in_sqlite: set[str] = set()
        out = sqlite.append_batch(items, new_ids=new_in_sqlite)
        assert out == memory.append_batch(items)
        assert out[450][0].stream == "old" and out[500][0].position == 5
        assert new_in_sqlite == {f"e{n}" for n in range(600)}
        same_as_memory(sqlite, memory)
        assert [e.position for e in sqlite.read_all()] == list(range(1, 602))
    finally:
        sqlite.close()
