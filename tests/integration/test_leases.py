"""Leases: two agents (and two workers) racing for one resource never both act."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.domain.plans import Plan, Step
from warden.ports import ActionResult

from .harness import make_harness, permissive_bundle

if TYPE_CHECKING:
    from pathlib import Path

    from warden.domain.incident import Incident
    from warden.domain.world import World


@dataclass
class ExclusiveTarget:
    """A target that notices two actors inside it at once."""

    active: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        with self.lock:
            self.active[target] = self.active.get(target, 0) + 1
            if self.active[target] > 1:
                self.overlaps.append(target)
            self.calls.append((action, target))
        threading.Event().wait(0.05)
        with self.lock:
            self.active[target] -= 1
        return ActionResult(True, "done", {})


@dataclass(frozen=True)
class IsolateDependency:
    """Acts on payments for an incident of orders: the same resource as payments' own."""

    name: str = "isolator"
    handles: frozenset[str] = frozenset({"service_down"})
    priority: int = 10

    def detect(self, world: World) -> list[Any]:
        return []

    def propose(self, incident: Incident, world: World) -> Plan | None:
        if incident.service != "orders":
            return None
        steps = (Step("drain_service", "payments"), Step("restore_service", "payments"))
        return Plan(self.name, steps, "take payments out while orders recovers", ("e",), 0.9)


def test_two_incidents_never_act_on_one_resource_at_once(tmp_path: Path) -> None:
    from warden.agents.service_down import ServiceDownAgent

    permissive_bundle(tmp_path)
    h = make_harness(tmp_path, agents=[ServiceDownAgent(), IsolateDependency()])
    target = ExclusiveTarget()
    h.warden.runtime.executor.adapters = dict.fromkeys(h.warden.runtime.catalog.names(), target)
    try:
        h.fail("payments")
        h.fail("orders")
        for _ in range(4):
            h.tick()
        holders = {i.service: i for i in h.incidents()}
        # Both incidents want payments; the one that got the lease first acts, the other waits.
        assert not target.overlaps
        touched = [t for _, t in target.calls]
        assert touched.count("payments") >= 1
        h.settle(30)
        assert not target.overlaps
        assert all(i.state.terminal for i in h.incidents()), holders
    finally:
        h.close()


def test_two_workers_racing_never_both_act(tmp_path: Path) -> None:
    from warden.agents.service_down import ServiceDownAgent

    permissive_bundle(tmp_path)
    one = make_harness(tmp_path, agents=[ServiceDownAgent()])
    two = make_harness(tmp_path, agents=[ServiceDownAgent()])
    two.clock = one.clock
    two.warden.runtime.clock = one.clock
    two.warden.runtime.executor.clock = one.clock
    target = ExclusiveTarget()
    for h in (one, two):
        h.warden.runtime.executor.adapters = dict.fromkeys(h.warden.runtime.catalog.names(), target)
    try:
        one.fail("payments")
        errors: list[BaseException] = []

        def work(h: Any) -> None:
            try:
                for _ in range(30):
                    h.tick()
            except BaseException as exc:  # surface a worker's crash in the test
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(h,)) for h in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert not target.overlaps
        restarts = [c for c in target.calls if c == ("restart_service", "payments")]
        assert len(restarts) == 1
    finally:
        one.close()
        two.close()
