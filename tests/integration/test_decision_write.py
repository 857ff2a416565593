"""Deciding a step, taking its leases and writing its intent: one transaction, every backend.

The decision latency of the loop is one durable write (bench/loop.py measures it); a
commit that fails leaves none of the three, and the next round decides again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain import events as ev
from warden.domain.incident import State
from warden.store.leases import SQLiteLeases
from warden.store.memory import MemoryEventStore, MemoryLeases
from warden.store.sqlite import SQLiteEventStore
from warden.testing import RecordingAdapter

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@dataclass
class Commits:
    """A commit hook: notes how many actions had run at each commit; can fail one."""

    adapter: RecordingAdapter = field(default_factory=RecordingAdapter)
    seen: list[int] = field(default_factory=list)
    fail_next: bool = False

    def __call__(self) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk went away")
        self.seen.append(len(self.adapter.calls))


def _backend(name: str, tmp_path: Path, hook: Commits, request: Any) -> tuple[Any, Any]:
    if name == "memory":
        memory = MemoryEventStore(before_commit=hook)
        return memory, MemoryLeases(memory.log.leases)
    if name == "sqlite":
        path = tmp_path / "state" / "events.db"
        return SQLiteEventStore(path, before_commit=hook), SQLiteLeases(path)
    from warden.store.postgres import PostgresEventStore
    from warden.store.postgres_leases import PostgresLeases

    dsn, schema = (
        request.getfixturevalue("postgres_dsn"),
        request.getfixturevalue("postgres_schema"),
    )
    return PostgresEventStore(dsn, schema, before_commit=hook), PostgresLeases(dsn, schema)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def harness(request: Any, tmp_path: Path) -> Iterator[tuple[Harness, Commits]]:
    hook = Commits()
    store, leases = _backend(request.param, tmp_path, hook, request)
    assert store.shares_leases(leases)
    h = make_harness(tmp_path, adapter=hook.adapter, store=store, leases=leases)
    yield h, hook
    h.close()


def _planned(h: Harness) -> None:
    """Tick until the incident of a failed payments has a plan and no decision yet."""
    h.fail("payments")
    for _ in range(10):
        found = h.incidents("payments")
        if found and found[0].plan is not None:
            assert not found[0].decisions
            return
        h.tick()
    raise AssertionError("no plan was proposed")


def test_one_commit_holds_the_decision_the_leases_and_the_intent(
    harness: tuple[Harness, Commits],
) -> None:
    h, commits = harness
    _planned(h)
    commits.seen.clear()
    h.tick()
    # Exactly one commit before the action ran: the decision, the leases and the intent.
    assert commits.seen.count(0) == 1, commits.seen
    assert h.adapter.calls == [("restart_service", "payments", {})]
    (incident,) = h.incidents("payments")
    types = [t for _, t, _ in incident.history]
    decided = types.index(ev.DECISION_RECORDED)
    assert types[decided + 1] == ev.STEP_INTENDED
    lease = h.warden.runtime.leases.holder("payments", h.clock.now().timestamp())
    assert lease is not None
    assert lease.holder.endswith(f":{incident.id}")


def test_a_failed_commit_leaves_no_decision_no_lease_and_no_intent(
    harness: tuple[Harness, Commits],
) -> None:
    h, commits = harness
    _planned(h)
    commits.fail_next = True
    with pytest.raises(OSError, match="disk went away"):
        h.tick()
    h.warden.runtime.tail()
    (incident,) = h.incidents("payments")
    assert not incident.decisions
    assert incident.intended == ()
    assert h.warden.runtime.leases.holder("payments", h.clock.now().timestamp()) is None
    assert h.adapter.calls == []
    h.settle()  # the next round decides again, once
    (incident,) = h.incidents("payments")
    assert incident.state is State.RESOLVED
    assert len(incident.decisions) == 1
    assert h.adapter.calls == [("restart_service", "payments", {})]
