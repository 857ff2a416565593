"""The lease contract, in memory, on SQLite and PostgreSQL: exclusive, expiring, fenced, race-free."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from warden.store.leases import SQLiteLeases
from warden.store.memory import LeaseTable, MemoryLeases
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


class LeasesContract:
    """Subclass with an ``open_leases`` fixture (a factory of handles on one location)."""

    def test_a_lease_is_exclusive_expires_and_fences(self, open_leases: Callable[[], Any]) -> None:
        leases = open_leases()
        first = leases.acquire("payments", "incident-a", 10, now=100.0)
        assert first is not None and first.token == 1
        assert leases.acquire("payments", "incident-b", 10, now=105.0) is None
        renewed = leases.acquire("payments", "incident-a", 10, now=105.0)
        assert renewed is not None
        assert (renewed.token, renewed.expires_at) == (1, 115.0)
        taken = leases.acquire("payments", "incident-b", 10, now=116.0)  # a's lease expired
        assert taken is not None
        assert taken.token == 2  # a stale holder can tell it lost the lease
        leases.release("payments", "incident-a")  # not the holder any more: no effect
        holder = leases.holder("payments", now=117.0)
        assert holder is not None and holder.holder == "incident-b"
        leases.release("payments", "incident-b")
        assert leases.holder("payments", now=117.0) is None
        again = leases.acquire("payments", "incident-c", 10, now=118.0)
        assert again is not None and again.token == 1  # released, not expired: a new lease

    def test_racing_holders_never_share_a_resource(self, open_leases: Callable[[], Any]) -> None:
        handles = [open_leases() for _ in range(4)]
        winners: list[list[str]] = [[] for _ in range(20)]
        start = threading.Barrier(len(handles))

        def race(k: int) -> None:
            start.wait()
            for round_ in range(20):
                lease = handles[k].acquire(f"r{round_}", f"worker-{k}", 60, now=1000.0)
                if lease is not None:
                    winners[round_].append(lease.holder)

        threads = [threading.Thread(target=race, args=(k,)) for k in range(len(handles))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert all(len(won) == 1 for won in winners), winners
        for round_, won in enumerate(winners):
            holder = handles[0].holder(f"r{round_}", now=1001.0)
            assert holder is not None and holder.holder == won[0] and holder.token == 1


class TestMemoryLeases(LeasesContract):
    @pytest.fixture
    def open_leases(self) -> Callable[[], Any]:
        table = LeaseTable()
        return lambda: MemoryLeases(table)


class TestSQLiteLeases(LeasesContract):
    @pytest.fixture
    def open_leases(self, tmp_path: Path) -> Iterator[Callable[[], Any]]:
        opened: list[SQLiteLeases] = []

        def make() -> SQLiteLeases:
            opened.append(SQLiteLeases(tmp_path / "leases.db"))
            return opened[-1]

        yield make
        for leases in opened:
            leases.close()


class TestSQLiteLeasesKeptByTheStore(LeasesContract):
    """Leases through the event store's own connection, each handle with its own store."""

    @pytest.fixture
    def open_leases(self, tmp_path: Path) -> Iterator[Callable[[], Any]]:
        stores: list[SQLiteEventStore] = []

        def make() -> SQLiteLeases:
            stores.append(SQLiteEventStore(tmp_path / "events.db"))
            return SQLiteLeases(tmp_path / "events.db", store=stores[-1])

        yield make
        for store in stores:
            store.close()


def test_leases_are_kept_only_by_the_store_of_their_file(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    try:
        with pytest.raises(ValueError, match="cannot be kept by the store"):
            SQLiteLeases(tmp_path / "other.db", store=store)
    finally:
        store.close()


@pytest.mark.postgres
class TestPostgresLeases(LeasesContract):
    @pytest.fixture
    def open_leases(self, postgres_dsn: str, postgres_schema: str) -> Iterator[Callable[[], Any]]:
        from warden.store.postgres_leases import PostgresLeases

        opened: list[PostgresLeases] = []

        def make() -> PostgresLeases:
            opened.append(PostgresLeases(postgres_dsn, postgres_schema))
            return opened[-1]

        yield make
        for leases in opened:
            leases.close()
