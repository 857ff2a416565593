"""The discrete-event run of one scenario: SimPy schedules faults, signals, probes and ticks.

The real core ticks on simulated time; simulated targets answer its probes and actions
from the response model. The same scenario, autonomy and seed give the same trace.
Simulation (edge).
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import simpy

from warden.domain import events as ev
from warden.domain.incident import State
from warden.sim import feed
from warden.sim.driver import START, SimClock, SimRuntime, open_runtime, state_directory
from warden.sim.safety import safety_violations
from warden.sim.trace import Escalation, FaultOutcome, Move, Trace
from warden.sim.world import SimAdapter, SimWorld

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from warden.sim.candidate import Candidate
    from warden.sim.format import Scenario, Signal

APPROVER = "sim-approver"


class Run:
    """One scenario at one autonomy level with one seed (and a candidate, when evaluating)."""

    def __init__(
        self,
        scenario: Scenario,
        autonomy: str = "autonomous",
        seed: int = 0,
        *,
        approval_delay_s: float = 120.0,
        duration_s: float | None = None,
        candidate: Candidate | None = None,
    ) -> None:
        self.scenario = scenario
        self.candidate = candidate
        self.autonomy = autonomy
        self.seed = seed
        self.approval_delay_s = approval_delay_s
        self.duration_s = min(duration_s or scenario.duration_s, scenario.duration_s)
        self.env = simpy.Environment()
        self.rng = random.Random(f"{scenario.name}:{seed}")
        self.clock = SimClock(START, lambda: self.env.now)
        self.world = SimWorld(scenario, lambda: float(self.env.now), self._schedule)
        self._firing: dict[int, tuple[float, float]] = {}  # signal index -> (starts_at, sent)
        self._awaiting: dict[str, float] = {}
        self._runtime: SimRuntime | None = None

    @property
    def runtime(self) -> SimRuntime:
        """The Warden under test (set while running)."""
        assert self._runtime is not None
        return self._runtime

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        def later() -> Generator[Any, Any, None]:
            yield self.env.timeout(delay)
            action()

        self.env.process(later())

    # -- processes ---------------------------------------------------------------------

    def _ticks(self) -> Generator[Any, Any, None]:
        tick_s = self.scenario.settings.tick_s
        while True:
            self._alerts()
            self.runtime.tick()
            self._approve()
            yield self.env.timeout(tick_s)

    def _probes(self, service: str) -> Generator[Any, Any, None]:
        interval = self.scenario.settings.probe_interval_s
        yield self.env.timeout(self.rng.random() * interval)
        while True:
            self.runtime.record_probe(service, self.world.probe(service))
            yield self.env.timeout(interval * (0.9 + 0.2 * self.rng.random()))

    def _fault(self, index: int) -> Generator[Any, Any, None]:
        fault = self.scenario.faults[index]
        yield self.env.timeout(fault.at)
        if fault.kind == "change":
            resource = self.scenario.resource(fault.target)
            feed.send_change(
                self.runtime,
                self.scenario.owner_of(fault.target),
                fault.target,
                resource.kind if resource is not None else "service",
                fault.field,
                fault.old,
                fault.new,
                fault.by,
                self.clock.now(),
            )
            if fault.field:
                self.world.fields[(fault.target, fault.field)] = fault.new
        self.world.activate(fault.id)

    def _signal(self, index: int) -> Generator[Any, Any, None]:
        signal = self.scenario.signals[index]
        yield self.env.timeout(signal.at)
        if signal.alert is not None:
            return  # alerts follow their fault: see _alerts
        while True:
            if signal.probe is not None:
                self.world.force_probe(signal.probe, signal.until)
            else:
                feed.send_signal(self.runtime, signal, self.clock.now(), self._active(signal))
            if signal.every_s is None:
                return
            yield self.env.timeout(signal.every_s)
            if signal.until is not None and self.env.now > signal.until:
                return

    def _control(self, index: int) -> Generator[Any, Any, None]:
        control = self.scenario.settings.controls[index]
        yield self.env.timeout(control.at)
        when = self.clock.now()
        if control.kill_switch is not None:
            engaged = control.kill_switch == "engage"
            self.world.kill_switch = engaged
            type_ = ev.KILL_SWITCH_ENGAGED if engaged else ev.KILL_SWITCH_RELEASED
            self.runtime.control(type_, {"by": control.by, "reason": "scenario"}, when)
        if control.autonomy is not None:
            data = {"by": control.by, "level": control.autonomy}
            self.runtime.control(ev.AUTONOMY_CHANGED, data, when)

    # -- alerts and approvals ----------------------------------------------------------

    def _active(self, signal: Signal) -> bool:
        if signal.fault is None:
            return True
        return self.world.faults[signal.fault].active

    def _alerts(self) -> None:
        """Fire and resolve alerts as their window and their fault say."""
        now = float(self.env.now)
        for index, signal in enumerate(self.scenario.signals):
            alert = signal.alert
            if alert is None:
                continue
            in_window = signal.at <= now and (signal.until is None or now <= signal.until)
            wanted = in_window and self._active(signal)
            firing = self._firing.get(index)
            if wanted and firing is None:
                self._firing[index] = (now, now)
                feed.send_alert(self.runtime, alert, "firing", self.clock.now(), self.clock.now())
            elif wanted and firing is not None and signal.every_s is not None:
                if now - firing[1] >= signal.every_s:  # Alertmanager's repeat_interval
                    self._firing[index] = (firing[0], now)
                    starts = START + _delta(firing[0])
                    feed.send_alert(self.runtime, alert, "firing", starts, self.clock.now())
            elif not wanted and firing is not None:
                del self._firing[index]
                starts = START + _delta(firing[0])
                feed.send_alert(self.runtime, alert, "resolved", starts, self.clock.now())

    def _approve(self) -> None:
        """The simulated approver answers every request after a delay."""
        now = float(self.env.now)
        for incident in self.runtime.incidents().values():
            if incident.state is not State.AWAITING_APPROVAL:
                self._awaiting.pop(incident.id, None)
                continue
            seen = self._awaiting.setdefault(incident.id, now)
            if now - seen >= self.approval_delay_s:
                self.runtime.approve(incident.id, APPROVER, self.clock.now())
                self._awaiting.pop(incident.id, None)

    # -- the run -----------------------------------------------------------------------

    def execute(self) -> Trace:
        """Run the scenario to its end; returns what happened."""
        with state_directory() as directory:
            adapter = SimAdapter(self.world)
            self._runtime = open_runtime(
                self.scenario,
                self.autonomy,
                Path(directory),
                self.clock,
                adapter,
                candidate=self.candidate,
            )
            try:
                self._history()
                for name in self.scenario.service_names():
                    self.runtime.record_probe(name, self.world.probe(name))
                self.env.process(self._ticks())
                for name in self.scenario.service_names():
                    self.env.process(self._probes(name))
                for index in range(len(self.scenario.faults)):
                    self.env.process(self._fault(index))
                for index in range(len(self.scenario.signals)):
                    self.env.process(self._signal(index))
                for index in range(len(self.scenario.settings.controls)):
                    self.env.process(self._control(index))
                self.env.run(until=self.duration_s)
                self.runtime.tick()
                events = self.runtime.events()
            finally:
                self.runtime.close()
        return self._trace(events)

    def _history(self) -> None:
        """The starting history: past revisions of every resource, oldest first."""
        past = sorted(
            (rev.at, n, res, rev)
            for res in self.scenario.topology.resources
            for n, rev in enumerate(res.history)
        )
        for at, _, res, rev in past:
            feed.send_change(
                self.runtime, res.owner, res.id, res.kind, rev.field, None, rev.value, rev.by,
                START + _delta(at),
            )  # fmt: skip

    # -- the trace ---------------------------------------------------------------------

    def _seconds(self, stamp: str) -> float:
        return round((ev.parse_time(stamp) - START).total_seconds(), 3)

    def _trace(self, events: list[ev.Event]) -> Trace:
        executed = []
        calls = {c.key: c for c in self.world.calls}
        for call in self.world.calls:
            executed.append(Move(call.at, call.action, call.target, call.params, call.effect))
        proposed = []
        escalations = []
        granted = 0
        incidents: dict[str, str] = {}
        opened: list[float] = []
        for event in events:
            if event.type == ev.INCIDENT_OPENED:
                incidents[event.stream] = str(event.data.get("summary", ""))
                opened.append(self._seconds(event.time))
            elif event.type == ev.APPROVAL_REQUESTED:
                step = event.data["proposal"]["step"]
                proposed.append(
                    Move(
                        self._seconds(event.time),
                        str(step["action"]),
                        str(step["target"]),
                        dict(step.get("params") or {}),
                    )
                )
            elif event.type == ev.APPROVAL_GRANTED:
                granted += 1
            elif event.type in (ev.INCIDENT_ESCALATED, ev.INCIDENT_REPAGED):
                if event.data.get("notify", True) is False:
                    continue  # closed for people who know already (a rejection): no page
                text = f"{incidents.get(event.stream, '')} {event.data.get('reason', '')}"
                escalations.append(Escalation(self._seconds(event.time), text.strip()))
        faults = tuple(
            FaultOutcome(
                s.fault.id,
                s.fault.root_cause,
                tuple(s.activations),
                tuple(s.clearings),
                s.fixed,
                s.relapses,
                s.active,
            )
            for s in self.world.faults.values()
        )
        return Trace(
            scenario=self.scenario.name,
            autonomy=self.autonomy,
            seed=self.seed,
            duration_s=self.duration_s,
            executed=tuple(executed),
            proposed=tuple(proposed),
            approvals_granted=granted,
            escalations=tuple(escalations),
            incidents=len(incidents),
            first_incident_at=min(opened, default=None),
            faults=faults,
            harmed=tuple(self.world.harmed()),
            unsafe=tuple(safety_violations(events, calls)),
        )


def _delta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
