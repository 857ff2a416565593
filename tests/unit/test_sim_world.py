"""The simulated targets: probe answers from active faults, and the response model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.sim.loader import parse
from warden.sim.world import SimAdapter, SimWorld

if TYPE_CHECKING:
    from collections.abc import Callable

SCENARIO = parse("""
version: 1
name: world
title: the response model
fault_class: test
topology:
  services: [{name: api, version: v2}, {name: db, kind: datastore}, {name: web}]
  resources: [{id: config/api, kind: config, owner: api}]
faults:
  - {id: crash, at: 0, kind: crash, target: api}
  - {id: quiet, at: 0, kind: error, target: db, effects: []}
  - {id: loop, at: 0, kind: exit_loop, target: config/api, rearm: {after_restart_s: 10}}
  - {id: flap, at: 0, kind: change, target: web, field: f, to: x,
     effects: [{service: web, probe: flapping, period_s: 30}]}
responses:
  - {action: restart_service, target: api, effect: heals_for, heals_s: 20, faults: [crash]}
  - {action: rollback_deploy, target: api, effect: fixes, faults: [crash]}
  - {action: restore_config, target: config/api, effect: fixes, faults: [loop]}
  - {action: drain_service, target: db, effect: harmful, harm: [{service: web, probe: timeout}]}
expect: {decision: act, actions: [{action: rollback_deploy, target: api}]}
""")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.due: list[tuple[float, Callable[[], None]]] = []

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        self.due.append((self.now + delay, action))

    def advance(self, to: float) -> None:
        self.now = to
        for item in sorted((d for d in self.due if d[0] <= to), key=lambda d: d[0]):
            self.due.remove(item)
            item[1]()


def world() -> tuple[SimWorld, Clock]:
    clock = Clock()
    made = SimWorld(SCENARIO, lambda: clock.now, clock.schedule)
    for fault in ("crash", "quiet", "flap"):
        made.activate(fault)
    return made, clock


def test_a_crash_refuses_and_an_empty_effect_list_is_silent() -> None:
    made, _ = world()
    assert made.probe("api").error == "connection refused"
    assert made.probe("db").ok


def test_flapping_alternates_with_its_period() -> None:
    made, clock = world()
    assert made.probe("web").ok
    clock.advance(31)
    assert not made.probe("web").ok
    clock.advance(61)
    assert made.probe("web").ok


def test_heals_for_relapses_and_fixes_holds() -> None:
    made, clock = world()
    adapter = SimAdapter(made)
    adapter.run("restart_service", "api", {"idempotency_key": "k1"})
    assert made.probe("api").ok
    clock.advance(21)
    assert not made.probe("api").ok
    assert made.faults["crash"].relapses == 1
    result = adapter.run("rollback_deploy", "api", {"version": "v1", "idempotency_key": "k2"})
    assert result.output["undo_params"] == {"version": "v2"}
    clock.advance(100)
    assert made.probe("api").ok and made.faults["crash"].fixed
    assert [c.key for c in made.calls] == ["k1", "k2"]


def test_a_fault_that_rearms_after_a_restart() -> None:
    made, clock = world()
    made.activate("loop")
    made.apply("rollback_deploy", "api", {}, "k0")  # fixes the crash, not the loop
    assert made.faults["loop"].active and made.faults["crash"].fixed
    adapter = SimAdapter(made)
    adapter.run("start_service", "api", {})  # unmatched: the re-arming fault heals a while
    assert not made.faults["loop"].active
    clock.advance(11)
    assert made.faults["loop"].active
    made.apply("restore_config", "config/api", {}, "k3")
    assert made.faults["loop"].fixed and made.probe("api").ok


def test_a_harmful_action_adds_its_harm() -> None:
    made, _ = world()
    call = made.apply("drain_service", "db", {}, "k")
    assert call.effect == "harmful"
    assert made.harmed() == ["harm-1:drain_service:db"]
    assert made.probe("web").error == "no answer within 0.5 s after connecting"


def test_an_unlisted_action_has_no_effect() -> None:
    made, _ = world()
    assert made.apply("open_circuit", "web", {}, "k").effect == "no_effect"
    assert not made.probe("api").ok
