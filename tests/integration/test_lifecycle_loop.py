"""The loop around the pure lifecycle: one decision per step, and actions off the loop."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.domain.plans import Plan, Step
from warden.testing import RecordingAdapter

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from pathlib import Path

    from warden.domain.incident import Incident
    from warden.ports import ActionResult


def decisions_per_step(h: Harness) -> Counter[tuple[str, int]]:
    return Counter((e.stream, int(e.data["index"])) for e in h.events(ev.DECISION_RECORDED))


def test_a_plain_run_decides_each_step_once(tmp_path: Path) -> None:
    h = make_harness(tmp_path)
    try:
        h.adapter.script["restart_service"] = ["retry", "ok"]  # a retry after backoff, too
        h.fail("payments")
        h.settle(rounds=40)
        (incident,) = h.incidents()
        assert incident.state is State.RESOLVED, incident.close_reason
        assert len(h.adapter.calls) == 2
        assert set(decisions_per_step(h).values()) == {1}
    finally:
        h.close()


@dataclass
class SlowOnOrders(RecordingAdapter):
    """Acts on orders for up to 60 s (until released); on anything else at once."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        if target == "orders":
            self.started.set()
            self.release.wait(60)
        return super().run(action, target, params)


def test_a_slow_action_does_not_hold_up_another_incident(tmp_path: Path) -> None:
    adapter = SlowOnOrders()
    h = make_harness(tmp_path, adapter=adapter, action_workers=2)
    try:
        h.fail("orders")
        h.settle_until(adapter.started.is_set, "the restart of orders started")
        began = time.monotonic()
        h.fail("payments")
        h.settle_until(
            lambda: any(i.state is State.RESOLVED for i in h.incidents("payments")),
            "payments healed while orders' restart runs",
            timeout_s=5.0,
        )
        healed_in = time.monotonic() - began
        (orders,) = h.incidents("orders")
        assert orders.state is State.EXECUTING and orders.in_flight == (0, 1)
        assert not adapter.release.is_set()  # the slow action is still under way
        assert healed_in < 5.0
        adapter.release.set()
        h.settle_until(
            lambda: h.incidents("orders")[0].state is State.RESOLVED, "orders resolved after"
        )
        assert [c[1] for c in adapter.calls] == ["payments", "orders"]
    finally:
        adapter.release.set()
        h.close()


@dataclass
class StoresAnIncident(RecordingAdapter):
    """While restarting payments, another writer stores a planned incident on gateway."""

    store: Any = None
    clock: Any = None

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        if target == "payments" and self.store is not None:
            now = ev.format_time(self.clock.now())
            stream = incident_stream("elsewhere")
            plan = Plan("other", (Step("restart_service", "gateway"),), "another writer", (), 0.9)
            opened = {"incident_id": "elsewhere", "service": "gateway", "first_signal_at": now}
            self.store.append(
                stream,
                [
                    ev.derived_event(ev.INCIDENT_OPENED, stream, opened, now, subject="gateway"),
                    ev.derived_event(ev.PLAN_PROPOSED, stream, {"plan": plan.to_dict()}, now),
                ],
                expected_version=0,
            )
        return super().run(action, target, params)


def test_an_incident_stored_while_a_round_walks_is_decided_in_that_round(
    tmp_path: Path,
) -> None:
    adapter = StoresAnIncident()
    h = make_harness(tmp_path, adapter=adapter, action_workers=0)
    try:
        adapter.store, adapter.clock = h.warden.store, h.clock
        h.fail("payments")
        for _ in range(40):
            h.clock.advance(0.5)
            h.tick()
            if adapter.calls:
                break
        # The very round that restarted payments (and saw gateway's plan stored meanwhile)
        # decided gateway's step and acted on it: the plan did not wait for the next round.
        assert [c[1] for c in adapter.calls] == ["payments", "gateway"]
        decided = [e for e in h.events(ev.DECISION_RECORDED) if e.stream == "incident-elsewhere"]
        assert len(decided) == 1
    finally:
        h.close()


def _verifying_unprobed(tmp_path: Path) -> tuple[Harness, Incident]:
    """A harness whose payments incident verifies, with no probe to ask about it."""
    h = make_harness(tmp_path, verification_timeout_s=60)
    del h.warden.runtime.probes["payments"]  # only a stored probe result can tell
    h.fail("payments")
    h.settle(rounds=6)
    (incident,) = h.incidents("payments")
    assert incident.state is State.VERIFYING
    assert h.warden.runtime.interpreter.waits(incident)  # a round skips it
    h.settle(rounds=4)
    assert h.incidents("payments")[0] is incident  # the skipped rounds wrote nothing
    return h, incident


def test_a_verifying_incident_is_asked_again_when_its_health_changes(tmp_path: Path) -> None:
    h, _ = _verifying_unprobed(tmp_path)
    try:
        h.probes["payments"].healthy = True
        h.observe("payments")  # folded next round: the health it waits on changed
        h.tick()
        assert h.incidents("payments")[0].state is State.RESOLVED
    finally:
        h.close()


def test_a_verifying_incident_is_asked_again_at_its_timeout(tmp_path: Path) -> None:
    h, incident = _verifying_unprobed(tmp_path)
    try:
        h.clock.advance(61)
        assert not h.warden.runtime.interpreter.waits(incident)
        h.tick()
        assert h.incidents("payments")[0].state is not State.VERIFYING
    finally:
        h.close()
