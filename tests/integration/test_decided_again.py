"""After a kill switch release or an autonomy change, a fault denied for that reason is decided again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.incident import State

from .harness import make_harness

if TYPE_CHECKING:
    from pathlib import Path


def test_a_fault_held_by_the_kill_switch_is_remedied_once_it_is_released(tmp_path: Path) -> None:
    h = make_harness(tmp_path)
    try:
        h.control(ev.KILL_SWITCH_ENGAGED, by="alice", reason="investigating")
        h.fail("payments")
        h.settle()
        (held,) = h.incidents("payments")
        assert held.state is State.ESCALATED
        assert held.decisions[-1].reasons[0].policy_id == "guardrail:kill-switch"
        assert h.adapter.calls == []
        h.settle()  # the fault persists: nothing new while the switch holds
        assert len(h.incidents("payments")) == 1

        h.control(ev.KILL_SWITCH_RELEASED, by="alice", reason="done")
        h.observe("payments")  # still failing
        h.settle()
        again = [i for i in h.incidents("payments") if i.id != held.id]
        assert len(again) == 1
        assert again[0].first_signal_at == held.first_signal_at  # the same fault
        assert again[0].decisions[0].outcome.value == "allow"
        assert h.adapter.calls == [("restart_service", "payments", {})]
        assert again[0].state is State.RESOLVED
        h.settle()
        assert len(h.incidents("payments")) == 2  # decided again once, not once per round
    finally:
        h.close()


def test_a_recommendation_is_acted_on_when_autonomy_rises(tmp_path: Path) -> None:
    h = make_harness(tmp_path, autonomy="recommend")
    try:
        h.fail("payments")
        h.settle()
        (recommended,) = h.incidents("payments")
        assert recommended.state is State.ESCALATED
        assert recommended.decisions[-1].reasons[0].policy_id == "autonomy:recommend"
        # A change elsewhere does not help this domain: nothing is decided again.
        h.control(ev.AUTONOMY_CHANGED, level="autonomous", environment="*", domain="shop", by="op")
        h.observe("payments")
        h.settle()
        assert len(h.incidents("payments")) == 1

        h.control(ev.AUTONOMY_CHANGED, level="autonomous", environment="*", domain="*", by="op")
        h.observe("payments")
        h.settle()
        assert h.adapter.calls == [("restart_service", "payments", {})]
        states = sorted(i.state.value for i in h.incidents("payments"))
        assert states == ["escalated", "resolved"]
    finally:
        h.close()


def test_a_fault_that_cleared_meanwhile_is_not_reopened(tmp_path: Path) -> None:
    h = make_harness(tmp_path)
    try:
        h.control(ev.KILL_SWITCH_ENGAGED, by="alice", reason="investigating")
        h.fail("payments")
        h.settle()
        h.probes["payments"].healthy = True
        h.observe("payments")
        h.control(ev.KILL_SWITCH_RELEASED, by="alice", reason="done")
        h.settle()
        assert [i.state for i in h.incidents("payments")] == [State.ESCALATED]
        assert h.adapter.calls == []
    finally:
        h.close()
