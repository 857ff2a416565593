"""A round's appends share one disk flush on SQLite; an intent is on disk before it acts."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain.events import Event
from warden.domain.incident import State
from warden.ports import ActionResult, GroupedFlush
from warden.store.leases import SQLiteLeases
from warden.store.sqlite import SQLiteEventStore
from warden.testing import RecordingAdapter

from .harness import make_harness

if TYPE_CHECKING:
    from pathlib import Path


def make(n: int, stream: str = "s") -> Event:
    return Event(f"{stream}-{n}", "test", "warden.test.happened", "2026-11-25T12:00:00Z", {})


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the flushes the store asks of the OS itself (SQLite's own are not counted)."""
    calls: list[int] = []
    real = os.fsync

    def counted(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr("warden.store.sqlite.os.fsync", counted)
    return calls


def test_commits_inside_are_visible_at_once_and_flushed_once(
    tmp_path: Path, fsyncs: list[int]
) -> None:
    path = tmp_path / "events.db"
    store, other = SQLiteEventStore(path), SQLiteEventStore(path)
    assert isinstance(store, GroupedFlush)
    with store.one_flush():
        for n in range(5):
            store.append("s", [make(n)], n)
            # Committed: another handle reads it before any flush.
            assert [e.id for e in other.read_stream("s")][-1] == f"s-{n}"
        assert fsyncs == []
    assert len(fsyncs) == 1
    store.flush()  # nothing left to flush
    store.append("s", [make(5)], 5)  # durable on its own, outside
    store.flush()
    assert len(fsyncs) == 1
    store.close()
    other.close()


def test_another_threads_commit_stays_durable_and_carries_the_earlier_ones(
    tmp_path: Path, fsyncs: list[int]
) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    with store.one_flush():
        store.append("s", [make(0)], 0)
        thread = threading.Thread(target=store.append, args=("t", [make(0, "t")], 0))
        thread.start()
        thread.join()
    # The other thread's durable commit flushed the log up to its end, ours included.
    assert fsyncs == []
    store.close()


class Flushed(RecordingAdapter):
    """Notes, at each action, whether the store had anything left to flush."""

    def __init__(self, fsyncs: list[int]) -> None:
        super().__init__()
        self.fsyncs = fsyncs
        self.store: SQLiteEventStore | None = None
        self.unflushed_at_action: list[int] = []

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        assert self.store is not None
        before = len(self.fsyncs)
        self.store.flush()
        self.unflushed_at_action.append(len(self.fsyncs) - before)
        return super().run(action, target, params)


def test_an_intent_is_on_disk_before_its_action_runs(tmp_path: Path, fsyncs: list[int]) -> None:
    path = tmp_path / "state" / "events.db"
    store = SQLiteEventStore(path)
    adapter = Flushed(fsyncs)
    adapter.store = store
    h = make_harness(tmp_path, adapter=adapter, store=store, leases=SQLiteLeases(path))
    h.fail("payments")
    h.settle()
    (incident,) = h.incidents("payments")
    assert incident.state is State.RESOLVED
    assert adapter.calls == [("restart_service", "payments", {})]
    assert adapter.unflushed_at_action == [0]
    # Rounds wrote without a flush each and were flushed once each at their end.
    assert fsyncs
    h.close()


def test_nested_and_concurrent_rounds_flush_what_they_deferred(
    tmp_path: Path, fsyncs: list[int]
) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    inside, done = threading.Event(), threading.Event()

    def other_round() -> None:
        with store.one_flush():
            inside.set()
            done.wait(5)

    thread = threading.Thread(target=other_round)
    thread.start()
    assert inside.wait(5)
    with store.one_flush():  # another thread is inside: this thread's commits stay durable
        store.append("s", [make(0)], 0)
    assert fsyncs == []
    done.set()
    thread.join()
    with store.one_flush():
        with store.one_flush():
            store.append("s", [make(1)], 1)
        assert fsyncs == []  # the outer one flushes
    assert len(fsyncs) == 1
    store.close()
