"""SQLite's writers share disk flushes; a round's appends share one; an intent is on disk before it acts."""

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
    """Counts the flushes of the log: the store makes every one itself, SQLite none."""
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
    assert len(fsyncs) == 2
    store.flush()
    assert len(fsyncs) == 2
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
    assert len(fsyncs) == 1
    store.flush()
    assert len(fsyncs) == 1
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
        assert len(fsyncs) == 1
    assert len(fsyncs) == 1
    fsyncs.clear()
    done.set()
    thread.join()
    with store.one_flush():
        with store.one_flush():
            store.append("s", [make(1)], 1)
        assert fsyncs == []  # the outer one flushes
    assert len(fsyncs) == 1
    store.close()


def test_writers_commit_while_one_flushes_sync_beside_it_and_share_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.db"
    store, reader = SQLiteEventStore(path), SQLiteEventStore(path)
    flushing = [threading.Event(), threading.Event()]
    release = threading.Event()
    calls: list[int] = []
    real = os.fsync

    def held(fd: int) -> None:
        calls.append(fd)
        if len(calls) <= len(flushing):  # the first two flushes wait for the release
            flushing[len(calls) - 1].set()
            assert release.wait(5)
        real(fd)

    def committed(stream: str) -> None:
        for _ in range(500):
            if reader.read_stream(stream):
                break
            threading.Event().wait(0.01)
        assert [e.id for e in reader.read_stream(stream)] == [f"{stream}-0"]

    def writer(stream: str) -> threading.Thread:
        thread = threading.Thread(target=store.append, args=(stream, [make(0, stream)]))
        thread.start()
        return thread

    monkeypatch.setattr("warden.store.sqlite.os.fsync", held)
    first = writer("a")
    assert flushing[0].wait(5)
    # Committed while the first flush is in progress (it holds no write lock), which
    # cannot cover it: the second writer syncs at once beside it, not after it.
    second = writer("b")
    assert flushing[1].wait(5)
    committed("b")
    # Two more commit while both flushes are in progress: neither covers them, and no
    # third flush starts beside two; they wait, not yet durable.
    others = [writer(s) for s in ("c", "d")]
    for stream in ("c", "d"):
        committed(stream)
    assert all(thread.is_alive() for thread in [first, second, *others])
    assert len(calls) == 2
    release.set()
    for thread in [first, second, *others]:
        thread.join(5)
        assert not thread.is_alive()
    # Four durable commits, three flushes: the third covered both later commits.
    assert len(calls) == 3
    store.close()
    reader.close()


def test_the_log_is_copied_into_the_database_outside_commits_and_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("warden.store.sqlite.os.fsync", lambda fd: None)  # speed, not disk
    path = tmp_path / "events.db"
    wal = tmp_path / "events.db-wal"
    store = SQLiteEventStore(path)
    empty = path.stat().st_size
    for n in range(300):  # durable commits, each its own
        store.append("s", [make(n)], n)
    assert path.stat().st_size > empty  # the log was copied in: SQLite commits never do
    once = wal.stat().st_size
    for n in range(300, 900):
        store.append("s", [make(n)], n)
    # Copied and restarted again and again: the log file did not grow three times over.
    assert wal.stat().st_size < 1.5 * once
    # A round's commits share a flush and are copied in too, with no other writer.
    copied = path.stat().st_size
    for start in range(900, 2900, 10):
        with store.one_flush():
            for n in range(start, start + 10):
                store.append("s", [make(n)], n)
    assert path.stat().st_size > copied
    assert len(store.read_stream("s")) == 2900
    store.close()
