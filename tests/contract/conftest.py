"""Backends for the contract suites: store factories per backend, and a tailing reader."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from warden.store.memory import MemoryEventStore, MemoryLog
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from warden.domain.events import Event


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Opens SQLite stores on one file (keyword arguments go to the store); closes them."""
    opened: list[SQLiteEventStore] = []

    def open_store(**kwargs: Any) -> SQLiteEventStore:
        store = SQLiteEventStore(tmp_path / "events.db", **kwargs)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def memory_factory() -> Callable[..., Any]:
    """Opens in-memory stores on one log (keyword arguments go to the store)."""
    log = MemoryLog()

    def open_store(**kwargs: Any) -> MemoryEventStore:
        return MemoryEventStore(log, **kwargs)

    return open_store


@pytest.fixture
def postgres_factory(postgres_dsn: str, postgres_schema: str) -> Iterator[Callable[..., Any]]:
    """Opens PostgreSQL stores on one fresh schema; closes them (the schema is dropped)."""
    from warden.store.postgres import PostgresEventStore

    opened: list[PostgresEventStore] = []

    def open_store(**kwargs: Any) -> PostgresEventStore:
        store = PostgresEventStore(postgres_dsn, schema=postgres_schema, **kwargs)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


class Tailer:
    """Follows ``read_all`` on its own thread, as a projection does, until writers finish."""

    def __init__(self, store: Any, page: int = 5) -> None:
        self.store = store
        self.page = page
        self.seen: list[Event] = []
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        position = 0
        try:
            while True:
                finished = self._done.is_set()
                batch = self.store.read_all(position, limit=self.page)
                self.seen.extend(batch)
                if batch:
                    position = batch[-1].position
                elif finished:
                    return
        except BaseException as exc:
            self._error = exc

    def finish(self, timeout: float = 30.0) -> list[Event]:
        """Tell the reader every write has returned; wait until it has caught up."""
        self._done.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the tailing reader did not catch up in time"
        if self._error is not None:
            raise self._error
        return self.seen


@pytest.fixture
def tailer() -> type[Tailer]:
    return Tailer
