"""The simulated targets: fault state, probe answers and the response model. Simulation.

:class:`SimWorld` is the ground truth of a run: which faults are active, what each
service's health probe answers, and what every action did. :class:`SimProbe` and
:class:`SimAdapter` are the real ports (``Probe``, ``ActionAdapter``) over it, so the core
talks to simulated services exactly as it talks to real ones.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.domain import health as kinds
from warden.domain.catalog import Catalog
from warden.ingest.probes import ProbeResult
from warden.ports import ActionResult
from warden.sim.format import Fault

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.sim.format import Effect, ProbeSignal, Response, Scenario

RESTARTS = ("restart_service", "start_service")
# How bad a probe answer is: the worst active effect on a service is what its probe sees.
_SEVERITY = {"ok": 0, "flapping": 1, "slow": 2, "http": 3, "timeout": 4, "refused": 5}
# Fault kinds whose timeouts come from a live process that does not answer.
_ALIVE_WHEN_TIMING_OUT = frozenset({"hang", "slow", "saturation", "load", "error", "change"})
_DEFAULT_EFFECT = {
    "crash": "refused",
    "exit_loop": "refused",
    "hang": "timeout",
    "slow": "slow",
    "error": "http",
}


@dataclass
class FaultState:
    """One fault's life in a run."""

    fault: Fault
    active: bool = False
    fixed: bool = False
    activations: list[float] = field(default_factory=list)
    clearings: list[float] = field(default_factory=list)
    relapses: int = 0
    healed_by: list[str] = field(default_factory=list)
    fixed_by: str = ""  # "warden" (an action's response) or who else fixed it
    effects: tuple[tuple[str, str, int | None, float | None, float | None], ...] = ()


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One action an adapter ran, and what the response model made of it."""

    at: float
    action: str
    target: str
    params: dict[str, Any]
    key: str
    effect: str
    faults: tuple[str, ...]
    kill_switch: bool


def _effect_tuple(e: Effect) -> tuple[str, str, int | None, float | None, float | None]:
    return (e.service, e.probe, e.code, e.latency_ms, e.period_s)


def answers(response: Response, action: str, target: str, params: dict[str, Any]) -> bool:
    """Whether ``response`` is the response model's answer to this action."""
    if response.action != action or not fnmatch.fnmatchcase(target, response.target):
        return False
    wanted = response.params or {}
    return all(str(params.get(k)) == str(v) for k, v in wanted.items())


class SimWorld:
    """Fault state of every target, advanced by the scenario's schedule and by actions."""

    def __init__(
        self,
        scenario: Scenario,
        now: Callable[[], float],
        schedule: Callable[[float, Callable[[], None]], None],
        latency_threshold_ms: float = 1000.0,
        on_change: Callable[[FaultState], None] | None = None,
    ) -> None:
        self.scenario = scenario
        # Told when a fault takes effect or clears (the fleet probes only what changed).
        self.on_change = on_change
        self.now = now
        self.schedule = schedule
        self.latency_threshold_ms = latency_threshold_ms
        self.faults: dict[str, FaultState] = {}
        for fault in scenario.faults:
            state = FaultState(fault)
            state.effects = (
                self._implied(fault)
                if fault.effects is None
                else tuple(_effect_tuple(e) for e in fault.effects)
            )
            self.faults[fault.id] = state
        # Indexes, in declaration order: the faults whose effects reach each service, the
        # faults on each service, the responses by action (exact targets apart from globs).
        self._reaching: dict[str, list[FaultState]] = {}
        self._owned: dict[str, list[FaultState]] = {}
        for state in self.faults.values():
            self._index(state)
        self._exact: dict[tuple[str, str], list[tuple[int, Response]]] = {}
        self._globs: dict[str, list[tuple[int, Response]]] = {}
        for n, response in enumerate(scenario.responses):
            if any(c in response.target for c in "*?["):
                self._globs.setdefault(response.action, []).append((n, response))
            else:
                self._exact.setdefault((response.action, response.target), []).append((n, response))
        self.calls: list[ActionCall] = []
        self.forced: dict[str, tuple[ProbeSignal, float | None]] = {}
        self.kill_switch = False
        self.versions = {s.name: s.version for s in scenario.topology.services}
        self.replicas = {s.name: s.replicas for s in scenario.topology.services}
        self.fields: dict[tuple[str, str], Any] = {
            (r.id, name): value
            for r in scenario.topology.resources
            for name, value in r.fields.items()
        }
        self._harm = 0

    def _index(self, state: FaultState) -> None:
        for service in dict.fromkeys(e[0] for e in state.effects):
            self._reaching.setdefault(service, []).append(state)
        self._owned.setdefault(self.scenario.owner_of(state.fault.target), []).append(state)

    def _implied(self, fault: Fault) -> tuple[tuple[str, str, int | None, float | None, None], ...]:
        """A process fault with no effects written makes its own service's probe fail."""
        probe = _DEFAULT_EFFECT.get(fault.kind)
        if probe is None:
            return ()
        service = self.scenario.owner_of(fault.target)
        code = 500 if probe == "http" else None
        latency = (fault.latency_ms or 2500.0) if probe == "slow" else None
        return ((service, probe, code, latency, None),)

    # -- the schedule ------------------------------------------------------------------

    def activate(self, fault_id: str) -> None:
        """The fault takes effect now (first time, a relapse or a scheduled return)."""
        state = self.faults[fault_id]
        if state.fixed or state.active:
            return
        state.active = True
        if state.activations:
            state.relapses += 1
        state.activations.append(self.now())
        fault = state.fault
        if self.on_change is not None:
            self.on_change(state)
        if fault.duration_s is not None:
            started = len(state.activations)
            self.schedule(fault.duration_s, lambda: self._expire(fault_id, started))
        rearm = fault.rearm
        every = rearm.every_s if rearm is not None else None
        times = rearm.times if rearm is not None else None
        if every is not None and (times is None or len(state.activations) <= times):
            self.schedule(every, lambda: self._return(fault_id))

    def _expire(self, fault_id: str, activation: int) -> None:
        state = self.faults[fault_id]
        if state.active and len(state.activations) == activation:
            self._clear(state)

    def _return(self, fault_id: str) -> None:
        state = self.faults[fault_id]
        if not state.active:
            self.activate(fault_id)

    def _clear(self, state: FaultState) -> None:
        state.active = False
        state.clearings.append(self.now())
        if self.on_change is not None:
            self.on_change(state)

    def repair(self, fault_id: str, by: str) -> bool:
        """Someone other than Warden fixes a fault for good; False if it was fixed already."""
        state = self.faults[fault_id]
        if state.fixed:
            return False
        if state.active:
            self._clear(state)
        state.fixed = True
        state.fixed_by = by
        return True

    def reaching(self, service: str) -> bool:
        """Whether an active fault affects the probe of ``service``."""
        return any(s.active for s in self._reaching.get(service, ()))

    def force_probe(self, signal: ProbeSignal, until: float | None) -> None:
        """A scripted probe answer that holds until ``until`` (or the end)."""
        self.forced[signal.service] = (signal, until)

    def active_faults(self) -> list[FaultState]:
        """The faults in effect now."""
        return [s for s in self.faults.values() if s.active]

    # -- probes ------------------------------------------------------------------------

    def probe(self, service: str) -> ProbeResult:
        """What the health probe of ``service`` answers now."""
        now = self.now()
        forced = self.forced.get(service)
        if forced is not None and (forced[1] is None or now <= forced[1]):
            sig = forced[0]
            return self._result(sig.probe, sig.code, sig.latency_ms, None, now, now)
        worst: tuple[int, ProbeResult] = (0, ProbeResult(True, 3.0, 200, ""))
        for state in self._reaching.get(service, ()):
            if not state.active:
                continue
            for svc, probe, code, latency, period in state.effects:
                if svc != service:
                    continue
                result = self._result(
                    probe, code, latency, period, now, state.activations[-1], state.fault.kind
                )
                rank = _SEVERITY[probe] if not result.ok else 0
                if rank > worst[0]:
                    worst = (rank, result)
        return worst[1]

    def _result(
        self,
        probe: str,
        code: int | None,
        latency: float | None,
        period: float | None,
        now: float,
        since: float,
        kind: str = "partition",
    ) -> ProbeResult:
        if probe == "refused":
            return ProbeResult(False, 1.0, None, "connection refused", kinds.REFUSED)
        if probe == "timeout":
            # A process that is alive accepts the connection and never answers; a cut path
            # (a partition, a scripted timeout) does not even connect.
            if kind in _ALIVE_WHEN_TIMING_OUT:
                return ProbeResult(
                    False, 500.0, None, "no answer within 0.5 s after connecting", kinds.HUNG
                )
            return ProbeResult(False, 500.0, None, "connect timed out after 0.5 s", kinds.TIMEOUT)
        if probe == "http":
            status = code or 500
            if status < 400:
                return ProbeResult(True, 5.0, status, "")
            return ProbeResult(False, 5.0, status, f"HTTP {status}", kinds.HTTP_STATUS)
        if probe == "slow":
            spent = latency or 2500.0
            if spent > self.latency_threshold_ms:
                return ProbeResult(
                    False,
                    spent,
                    200,
                    f"slow: {spent:.0f} ms over {self.latency_threshold_ms:.0f} ms",
                    kinds.LATENCY,
                )
            return ProbeResult(True, spent, 200, "")
        if probe == "flapping":
            down = int((now - since) // (period or 30.0)) % 2 == 1
            if down:
                return ProbeResult(False, 1.0, None, "connection refused", kinds.REFUSED)
            return ProbeResult(True, 3.0, 200, "")
        return ProbeResult(True, 3.0, 200, "")

    # -- actions -----------------------------------------------------------------------

    def _matching(self, action: str, target: str, params: dict[str, Any]) -> Response | None:
        candidates = self._exact.get((action, target), []) + [
            (n, r) for n, r in self._globs.get(action, ()) if fnmatch.fnmatchcase(target, r.target)
        ]
        for _, response in sorted(candidates, key=lambda c: c[0]):
            if answers(response, action, target, params):
                return response
        return None

    def _touched(self, response: Response) -> list[FaultState]:
        if response.faults:
            return [self.faults[f] for f in response.faults]
        owner = self.scenario.owner_of
        return [
            s
            for s in self.faults.values()
            if response.target in (s.fault.target, owner(s.fault.target))
        ]

    def apply(self, action: str, target: str, params: dict[str, Any], key: str) -> ActionCall:
        """Run the response model for one action; returns what it did."""
        response = self._matching(action, target, params)
        touched: list[FaultState] = []
        effect = "no_effect"
        if response is not None:
            effect = response.effect
            touched = self._touched(response)
            if effect == "fixes":
                for state in touched:
                    if state.active:
                        self._clear(state)
                    state.fixed_by = state.fixed_by or "warden"
                    state.fixed = True
            elif effect == "heals_for":
                assert response.heals_s is not None
                for state in touched:
                    self._heal(state, response.heals_s, action)
            elif effect == "harmful":
                self._harmful(response)
        elif action in RESTARTS:
            # A fault that re-arms after a restart: the restart clears it for a while.
            for state in self._owned.get(target, ()):
                rearm = state.fault.rearm
                if state.active and rearm and rearm.after_restart_s:
                    self._heal(state, rearm.after_restart_s, action)
                    touched.append(state)
                    effect = "heals_for"
        call = ActionCall(
            self.now(),
            action,
            target,
            dict(params),
            key,
            effect,
            tuple(s.fault.id for s in touched),
            self.kill_switch,
        )
        self.calls.append(call)
        if action == "rollback_deploy" or action == "deploy_version":
            self.versions[target] = str(params.get("version", ""))
        if action in ("scale_consumers", "scale_service"):
            self.replicas[target] = int(params.get("replicas", self.replicas.get(target, 1)))
        if "field" in params and "value" in params:
            self.fields[(target, str(params["field"]))] = params["value"]
        return call

    def _heal(self, state: FaultState, seconds: float, action: str) -> None:
        if not state.active:
            return
        self._clear(state)
        state.healed_by.append(action)
        fault_id = state.fault.id
        self.schedule(seconds, lambda: self._return(fault_id))

    def _harmful(self, response: Response) -> None:
        self._harm += 1
        fault_id = f"harm-{self._harm}:{response.action}:{response.target}"
        harm = Fault.model_validate(
            {"id": fault_id, "at": 0, "kind": "error", "target": response.target,
             "effects": [e.model_dump() for e in response.harm], "root_cause": False}
        )  # fmt: skip
        state = FaultState(harm)
        state.effects = tuple(_effect_tuple(e) for e in response.harm)
        self.faults[fault_id] = state
        self._index(state)
        self.activate(fault_id)

    def harmed(self) -> list[str]:
        """Faults the response model added because an action was harmful."""
        return [f for f in self.faults if f.startswith("harm-")]


class SimProbe:
    """The ``Probe`` port over one simulated service."""

    def __init__(self, world: SimWorld, service: str) -> None:
        self.world = world
        self.service = service

    def check(self) -> ProbeResult:
        """What the service's health endpoint answers now."""
        return self.world.probe(self.service)

    def __repr__(self) -> str:
        return f"sim:{self.service}"


class SimAdapter:
    """The ``ActionAdapter`` port over the simulated world: applies the response model."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self.catalog = Catalog()

    def check(self, action: str, target: str, params: dict[str, Any] | None = None) -> bool | None:
        """Whether an action's effect holds: a simulated target cannot tell after a crash."""
        return None

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Apply one action; reports what a deploy or a scale replaced, for its undo."""
        params = dict(params)
        key = str(params.pop("idempotency_key", ""))
        before_version = self.world.versions.get(target, "")
        before_replicas = self.world.replicas.get(target, 1)
        field = str(params.get("field", ""))
        before_value = self.world.fields.get((target, field))
        call = self.world.apply(action, target, params, key)
        output: dict[str, Any] = {"effect": call.effect}
        if action in ("rollback_deploy", "deploy_version") and before_version:
            output["undo_params"] = {"version": before_version}
        if action in ("scale_consumers", "scale_service"):
            output["undo_params"] = {"replicas": before_replicas}
        if field and before_value is not None:
            text = (
                str(before_value).lower() if isinstance(before_value, bool) else str(before_value)
            )
            output["undo_params"] = {"field": field, "value": text}
        return ActionResult(True, f"{action} {target}: {call.effect} (simulated)", output)
