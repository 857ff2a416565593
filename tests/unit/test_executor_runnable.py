"""The actions the executor can run: in the catalog, with an adapter, as one set."""

from __future__ import annotations

from typing import Any, cast

from warden.domain.catalog import BUILTIN_ACTIONS, Catalog
from warden.execution.executor import Executor
from warden.store.memory import MemoryEventStore


def test_runnable_is_every_action_can_run_says_yes_to() -> None:
    catalog = Catalog(BUILTIN_ACTIONS[:3])
    names = [a.name for a in BUILTIN_ACTIONS]
    # Adapters for two catalogued actions, one action the catalog lacks, and one unknown.
    adapters: dict[str, Any] = {n: object() for n in (names[0], names[2], names[5], "nope")}
    executor = Executor(MemoryEventStore(), catalog, adapters, cast("Any", None))
    assert executor.runnable() == frozenset({names[0], names[2]})
    assert executor.runnable() == frozenset(a for a in adapters if executor.can_run(a))
    adapters[names[1]] = object()  # the mapping is read afresh each time
    assert executor.runnable() == frozenset(names[:3])
    assert Executor(MemoryEventStore(), catalog, {}, cast("Any", None)).runnable() == frozenset()
