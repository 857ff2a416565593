"""Start-up from a snapshot folds to exactly the state a fold from position 0 gives.

Histories come from a live runtime (outages, bad deploys, approvals, kill switches,
autonomy changes); each is cut at random positions, a snapshot is kept at the cut, and a
runtime started on the whole log resumes from it and reads only the events after it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.agents.builtin import builtin_agents
from warden.domain import events as ev
from warden.domain.control import AutonomyRule
from warden.remediation import RuntimeSettings
from warden.runtime import Runtime
from warden.store.memory import MemoryEventStore
from warden.testing import ManualClock

from .harness import MOVES, live, make_harness

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pytest

    from warden.domain.events import Event


class CountingStore(MemoryEventStore):
    """Counts the events ``read_all`` hands out: a resumed fold reads only the rest."""

    read = 0

    def read_all(self, after_position: int = 0, limit: int | None = None) -> list[Event]:
        found = super().read_all(after_position, limit)
        self.read += len(found)
        return found


def folding_runtime(
    store: Any, runtime_settings: RuntimeSettings, snapshot_every: int = 0
) -> Runtime:
    """A runtime that only folds (its other parts are never called by ``tail``)."""
    none: Any = None
    clock = ManualClock(datetime(2026, 11, 25, tzinfo=UTC))
    return Runtime(
        store, none, [], none, none, {}, clock, runtime_settings, snapshot_every=snapshot_every
    )


def copy_of(history: Sequence[Event]) -> CountingStore:
    store = CountingStore()
    for event in history:
        store.append(event.stream, [event])
    assert [e.position for e in store.read_all()] == [e.position for e in history]
    store.read = 0
    return store


CONTROLS = st.one_of(
    st.tuples(st.just("kill"), st.sampled_from(["", "payments"])),
    st.tuples(st.just("release"), st.sampled_from(["", "payments"])),
    st.tuples(st.just("autonomy"), st.sampled_from(["supervised", "autonomous"])),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(MOVES, CONTROLS), min_size=1, max_size=12),
    st.lists(st.floats(0, 1), min_size=1, max_size=4),
)
def test_a_fold_resumed_from_a_snapshot_equals_the_fold_from_the_start(
    tmp_path_factory: pytest.TempPathFactory, moves: list[tuple[Any, ...]], cuts: list[float]
) -> None:
    h = make_harness(tmp_path_factory.mktemp("live"), agents=builtin_agents(entry_points=()))
    try:
        for move in moves:
            if move[0] == "kill":
                h.control(ev.KILL_SWITCH_ENGAGED, by="alice", reason="drill", domain=move[1])
            elif move[0] == "release":
                h.control(ev.KILL_SWITCH_RELEASED, by="alice", domain=move[1])
            elif move[0] == "autonomy":
                h.control(ev.AUTONOMY_CHANGED, domain="payments", level=move[1], by="alice")
            else:
                live(h, [move])
        history = h.warden.store.read_all()
        runtime_settings = h.warden.runtime.settings
    finally:
        h.close()
    whole = folding_runtime(copy_of(history), runtime_settings)
    whole.tail()
    for cut in sorted({round(c * len(history)) for c in cuts}):
        store = copy_of(history[:cut])
        first = folding_runtime(store, runtime_settings, snapshot_every=1)
        first.tail()
        assert first._snapshots.keep_if_due(first._state) == (cut > 0)
        for event in history[cut:]:
            store.append(event.stream, [event])
        store.read = 0
        resumed = folding_runtime(store, runtime_settings)
        assert resumed._state.position == cut
        resumed.tail()
        assert store.read == len(history) - cut
        assert resumed._state == whole._state
        assert repr(resumed._state) == repr(whole._state)  # dicts in the same order too


def test_the_loop_keeps_snapshots_and_a_restart_resumes_from_the_newest(tmp_path: Path) -> None:
    h = make_harness(tmp_path, agents=builtin_agents(entry_points=()))
    try:
        h.warden.runtime._snapshots.every = 5
        h.fail("payments")
        h.settle()
        h.fail("orders")
        h.settle()
        store = h.warden.store
        kept = store.load_snapshot(h.warden.runtime._snapshots.stream)
        runtime_settings = h.warden.runtime.settings
        resumed = folding_runtime(store, runtime_settings)
        resumed_at = resumed._state.position
        resumed.tail()
        history = store.read_all()
    finally:
        h.close()
    assert kept is not None
    assert 5 <= kept.state["position"] == resumed_at < len(history)
    whole = folding_runtime(copy_of(history), runtime_settings)
    whole.tail()
    assert resumed._state == whole._state
    assert any(i.state.terminal for i in resumed.incidents.values())


def test_snapshots_are_kept_every_n_events() -> None:
    store = MemoryEventStore()
    loop = folding_runtime(store, RuntimeSettings(), snapshot_every=3)
    kept = []
    for n in range(10):
        store.append("control", [policy_loaded(n)])
        loop.tail()
        if loop._snapshots.keep_if_due(loop._state):
            kept.append(loop._state.position)
    assert kept == [3, 6, 9]


def policy_loaded(n: int) -> Event:
    return ev.derived_event(
        ev.POLICY_LOADED,
        ev.CONTROL_STREAM,
        {"version": f"v{n}"},
        "2026-11-25T12:00:00.000000Z",
        key=str(n),
    )


def test_a_snapshot_of_another_configuration_or_version_is_not_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryEventStore()
    store.append(ev.CONTROL_STREAM, [policy_loaded(1)])
    first = folding_runtime(store, RuntimeSettings(), snapshot_every=1)
    first.tail()
    assert first._snapshots.keep_if_due(first._state)
    assert folding_runtime(store, RuntimeSettings())._state.position == 1
    # Other configured autonomy rules: another initial state, another snapshot name.
    other = RuntimeSettings(autonomy_rules=(AutonomyRule("*", "*", "observe"),))
    assert folding_runtime(store, other)._state.position == 0
    # A snapshot this code cannot read is ignored, with a warning.
    store.save_snapshot(first._snapshots.stream, 0, {"format": 999, "position": 1, "state": {}})
    with caplog.at_level(logging.WARNING, logger="warden.runtime.snapshots"):
        assert folding_runtime(store, RuntimeSettings())._state.position == 0
    assert "format 999" in caplog.text
