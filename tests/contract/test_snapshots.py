"""Snapshot contract: both store backends keep and return snapshots the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from warden.domain.errors import ValidationError
from warden.domain.events import Event
from warden.store.snapshots import Snapshot, fold_stream

if TYPE_CHECKING:
    from collections.abc import Callable


def make(n: int, stream: str = "s") -> Event:
    return Event(
        id=f"{stream}-{n}",
        source="test",
        type="warden.test.happened",
        time="2026-11-25T12:00:00.000000Z",
        data={"n": n},
    )


def fill(store: Any, stream: str, start: int, stop: int) -> None:
    store.append_batch([(stream, [make(n, stream) for n in range(start, stop)])])


class Totals:
    """A fold that counts its calls, to see how many events a fold really read."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, state: dict[str, Any], event: Event) -> dict[str, Any]:
        self.calls += 1
        return {"count": state["count"] + 1, "sum": state["sum"] + event.data["n"]}


EMPTY = {"count": 0, "sum": 0}


class SnapshotContract:
    """Subclass with an ``open_store`` fixture (a factory of stores on one location)."""

    @pytest.fixture
    def store(self, open_store: Callable[..., Any]) -> Any:
        return open_store()

    def test_no_snapshot_until_one_is_saved(self, store: Any) -> None:
        assert store.load_snapshot("s") is None

    def test_save_and_load_round_trip(self, store: Any) -> None:
        fill(store, "s", 0, 3)
        state = {"names": ["é", "\u2028", "\U0001f525"], "nested": {"x": [1, 2.5, None, True]}}
        store.save_snapshot("s", 3, state)
        assert store.load_snapshot("s") == Snapshot("s", 3, state)
        assert store.load_snapshot("other") is None

    def test_integers_beyond_64_bits_come_back_as_integers(self, store: Any) -> None:
        fill(store, "s", 0, 1)
        state = {"big": [2**64 + 1, -(2**63) - 1, 10**30, 2**63 - 1]}
        store.save_snapshot("s", 1, state)
        loaded = store.load_snapshot("s")
        assert loaded is not None
        assert loaded.state == state
        assert all(type(n) is int for n in loaded.state["big"])

    def test_the_newest_snapshot_wins(self, store: Any) -> None:
        fill(store, "s", 0, 5)
        store.save_snapshot("s", 2, {"at": 2})
        store.save_snapshot("s", 4, {"at": 4})
        store.save_snapshot("s", 3, {"at": 3})
        assert store.load_snapshot("s") == Snapshot("s", 4, {"at": 4})
        store.save_snapshot("s", 4, {"at": 4, "refolded": True})
        assert store.load_snapshot("s") == Snapshot("s", 4, {"at": 4, "refolded": True})

    def test_refuses_a_snapshot_past_the_end_of_the_stream(self, store: Any) -> None:
        fill(store, "s", 0, 2)
        with pytest.raises(ValidationError, match="only 2 events"):
            store.save_snapshot("s", 3, {})
        with pytest.raises(ValidationError, match="negative"):
            store.save_snapshot("s", -1, {})
        assert store.load_snapshot("s") is None

    @pytest.mark.parametrize("state", [{"tags": {1, 2}}, {"x": float("nan")}, object()])
    def test_refuses_a_state_that_is_not_json(self, store: Any, state: Any) -> None:
        fill(store, "s", 0, 1)
        with pytest.raises(ValidationError, match="not JSON"):
            store.save_snapshot("s", 1, state)

    def test_fold_starts_from_the_snapshot_and_reads_only_the_rest(self, store: Any) -> None:
        fill(store, "s", 0, 250)
        first = Totals()
        assert fold_stream(store, "s", EMPTY, first, snapshot_every=100) == (
            {"count": 250, "sum": sum(range(250))},
            250,
        )
        assert first.calls == 250
        assert store.load_snapshot("s").version == 250
        fill(store, "s", 250, 260)
        second = Totals()
        state, version = fold_stream(store, "s", EMPTY, second, snapshot_every=100)
        assert (state, version) == ({"count": 260, "sum": sum(range(260))}, 260)
        assert second.calls == 10
        assert store.load_snapshot("s").version == 250  # 10 new events: no new snapshot

    def test_fold_converts_state_to_and_from_json(self, store: Any) -> None:
        fill(store, "s", 0, 4)

        def step(state: tuple[int, ...], event: Event) -> tuple[int, ...]:
            return (*state, event.data["n"])

        def fold() -> tuple[tuple[int, ...], int]:
            empty: tuple[int, ...] = ()
            return fold_stream(store, "s", empty, step, to_json=list, from_json=tuple,
                               snapshot_every=1)  # fmt: skip

        assert fold() == ((0, 1, 2, 3), 4)
        assert store.load_snapshot("s") == Snapshot("s", 4, [0, 1, 2, 3])
        fill(store, "s", 4, 5)
        assert fold() == ((0, 1, 2, 3, 4), 5)

    def test_snapshots_survive_reopen(self, open_store: Callable[..., Any]) -> None:
        first = open_store()
        fill(first, "s", 0, 2)
        first.save_snapshot("s", 2, {"count": 2})
        first.close()
        assert open_store().load_snapshot("s") == Snapshot("s", 2, {"count": 2})


class TestMemorySnapshots(SnapshotContract):
    @pytest.fixture
    def open_store(self, memory_factory: Callable[..., Any]) -> Callable[..., Any]:
        return memory_factory


class TestSQLiteSnapshots(SnapshotContract):
    @pytest.fixture
    def open_store(self, sqlite_factory: Callable[..., Any]) -> Callable[..., Any]:
        return sqlite_factory


@pytest.mark.postgres
class TestPostgresSnapshots(SnapshotContract):
    @pytest.fixture
    def open_store(self, postgres_factory: Callable[..., Any]) -> Callable[..., Any]:
        return postgres_factory
