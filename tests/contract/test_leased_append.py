"""The leased-append contract, in memory, on SQLite and PostgreSQL: leases and events, all or nothing."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain.errors import ConcurrencyConflict, TemporaryError
from warden.domain.events import Event
from warden.ports import LeaseClaim, LeasedAppender
from warden.store.leases import SQLiteLeases
from warden.store.memory import MemoryLeases

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


def make(n: int, stream: str = "incident-a") -> Event:
    return Event(f"{stream}-{n}", "test", "warden.test.happened", "2026-11-25T12:00:00Z", {})


def claim(holder: str, *resources: str, now: float = 100.0) -> LeaseClaim:
    return LeaseClaim(resources, holder, 30.0, now)


class LeasedAppendContract:
    """Subclass with ``open_store`` (stores on one location) and ``open_leases`` (leases there)."""

    def test_leases_and_events_are_taken_together(
        self, open_store: Callable[..., Any], open_leases: Callable[[], Any]
    ) -> None:
        store, leases = open_store(), open_leases()
        assert isinstance(store, LeasedAppender)
        assert store.shares_leases(leases)
        stored = store.append_leased(
            "incident-a", [make(1), make(2)], 0, claim("w:a", "orders", "payments")
        )
        assert stored is not None
        assert [(e.id, e.position) for e in stored] == [("incident-a-1", 1), ("incident-a-2", 2)]
        for resource in ("orders", "payments"):
            lease = leases.holder(resource, now=101.0)
            assert lease is not None
            assert (lease.holder, lease.token, lease.expires_at) == ("w:a", 1, 130.0)

    def test_a_busy_resource_takes_nothing_and_stores_nothing(
        self, open_store: Callable[..., Any], open_leases: Callable[[], Any]
    ) -> None:
        store, leases = open_store(), open_leases()
        assert leases.acquire("payments", "w:b", 30.0, 100.0) is not None
        busy = claim("w:a", "orders", "payments", now=110.0)
        assert store.append_leased("incident-a", [make(1)], 0, busy) is None
        assert store.head() == 0
        assert leases.holder("orders", now=110.0) is None  # all or nothing
        held = leases.holder("payments", now=110.0)
        assert held is not None
        assert held.holder == "w:b"
        # Expired, the lease goes to the new holder with a higher fencing token.
        later = claim("w:a", "orders", "payments", now=131.0)
        assert store.append_leased("incident-a", [make(1)], 0, later) is not None
        taken = leases.holder("payments", now=131.0)
        assert taken is not None
        assert (taken.holder, taken.token) == ("w:a", 2)

    def test_a_holder_renews_its_own_leases(
        self, open_store: Callable[..., Any], open_leases: Callable[[], Any]
    ) -> None:
        store, leases = open_store(), open_leases()
        assert store.append_leased("incident-a", [make(1)], 0, claim("w:a", "orders")) is not None
        again = claim("w:a", "orders", now=120.0)
        assert store.append_leased("incident-a", [make(2)], 1, again) is not None
        lease = leases.holder("orders", now=140.0)
        assert lease is not None
        assert (lease.token, lease.expires_at) == (1, 150.0)

    def test_a_version_conflict_takes_no_lease(
        self, open_store: Callable[..., Any], open_leases: Callable[[], Any]
    ) -> None:
        store, leases = open_store(), open_leases()
        store.append("incident-a", [make(1)])
        with pytest.raises(ConcurrencyConflict):
            store.append_leased("incident-a", [make(2)], 0, claim("w:a", "orders"))
        assert leases.holder("orders", now=101.0) is None
        assert [e.id for e in store.read_all()] == ["incident-a-1"]

    def test_a_failed_commit_takes_no_lease_and_stores_nothing(
        self, open_store: Callable[..., Any], open_leases: Callable[[], Any]
    ) -> None:
        def fail() -> None:
            raise TemporaryError("disk full")

        failing, leases = open_store(before_commit=fail), open_leases()
        with pytest.raises(TemporaryError):
            failing.append_leased("incident-a", [make(1)], 0, claim("w:a", "orders"))
        assert leases.holder("orders", now=101.0) is None
        assert open_store().read_all() == []

    def test_racing_holders_one_wins_each_resource(
        self, open_store: Callable[..., Any], open_leases: Callable[[], Any]
    ) -> None:
        stores = [open_store() for _ in range(4)]
        won: list[str] = []
        start = threading.Barrier(len(stores))

        def race(k: int) -> None:
            start.wait()
            events = [make(k, stream=f"incident-{k}")]
            if stores[k].append_leased(f"incident-{k}", events, 0, claim(f"w:{k}", "db")):
                won.append(f"w:{k}")

        threads = [threading.Thread(target=race, args=(k,)) for k in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(won) == 1, won
        holder = open_leases().holder("db", now=101.0)
        assert holder is not None
        assert holder.holder == won[0]
        assert len(stores[0].read_all()) == 1


class TestMemoryLeasedAppend(LeasedAppendContract):
    @pytest.fixture
    def open_store(self, memory_factory: Callable[..., Any]) -> Callable[..., Any]:
        return memory_factory

    @pytest.fixture
    def open_leases(self, open_store: Callable[..., Any]) -> Callable[[], Any]:
        table = open_store().log.leases
        return lambda: MemoryLeases(table)

    def test_leases_of_another_log_are_not_shared(self, open_store: Callable[..., Any]) -> None:
        assert not open_store().shares_leases(MemoryLeases())


class TestSQLiteLeasedAppend(LeasedAppendContract):
    @pytest.fixture
    def open_store(self, sqlite_factory: Callable[..., Any]) -> Callable[..., Any]:
        return sqlite_factory

    @pytest.fixture
    def open_leases(self, tmp_path: Path) -> Iterator[Callable[[], Any]]:
        opened: list[SQLiteLeases] = []

        def make_leases() -> SQLiteLeases:
            opened.append(SQLiteLeases(tmp_path / "events.db"))
            return opened[-1]

        yield make_leases
        for leases in opened:
            leases.close()

    def test_leases_in_another_file_are_not_shared(
        self, open_store: Callable[..., Any], tmp_path: Path
    ) -> None:
        elsewhere = SQLiteLeases(tmp_path / "other.db")
        try:
            assert not open_store().shares_leases(elsewhere)
        finally:
            elsewhere.close()


class TestSQLiteLeasedAppendKeptByTheStore(LeasedAppendContract):
    """Leases kept through the event store's own connection, as ``warden run`` opens them."""

    @pytest.fixture
    def open_store(self, sqlite_factory: Callable[..., Any]) -> Callable[..., Any]:
        return sqlite_factory

    @pytest.fixture
    def open_leases(self, open_store: Callable[..., Any]) -> Callable[[], Any]:
        def make_leases() -> SQLiteLeases:
            store = open_store()
            return SQLiteLeases(store.path, store=store)

        return make_leases


@pytest.mark.postgres
class TestPostgresLeasedAppend(LeasedAppendContract):
    @pytest.fixture
    def open_store(self, postgres_factory: Callable[..., Any]) -> Callable[..., Any]:
        return postgres_factory

    @pytest.fixture
    def open_leases(
        self, postgres_dsn: str, postgres_schema: str, open_store: Callable[..., Any]
    ) -> Iterator[Callable[[], Any]]:
        from warden.store.postgres_leases import PostgresLeases

        open_store()  # the schema exists before the leases connect
        opened: list[PostgresLeases] = []

        def make_leases() -> PostgresLeases:
            opened.append(PostgresLeases(postgres_dsn, postgres_schema))
            return opened[-1]

        yield make_leases
        for leases in opened:
            leases.close()
