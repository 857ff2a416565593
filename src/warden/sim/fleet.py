"""The fleet run: a generated fleet over simulated days, one real Warden per domain. Simulation.

Each domain is a shard with its own Warden (agents, Cedar gate and guardrails, lifecycle,
executor) on the in-memory store. A fleet spends most of its time healthy, so the run
does only what can change something: a service is probed while a fault touches it (and
once more when it clears; a healthy answer after a healthy one is not stored anyway), and
a shard ticks when input arrived, every ``tick_s`` while its ticks add events, and when
the first timer of an open incident falls due (the core says when: a verification or an
approval deadline, a retry, a held compensation, a lease) or the simulated approver
answers. What Warden does not fix the person on call does: paged by Warden's escalation,
or by the alert, after the baseline's response times; each fault ends recovered,
escalated, open or cleared. Domains share nothing, so worker processes run them one at
a time each, every domain on its own clock, and the report is the same however many.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import random
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any

import simpy

from warden.domain import events as ev
from warden.domain.incident import State
from warden.sim import feed
from warden.sim.baseline import OnCall, OnCallRota, respond
from warden.sim.driver import START, SimClock, SimRuntime, open_runtime, state_directory
from warden.sim.fleetgen import Fleet, Instance, generate
from warden.sim.lab import summarize
from warden.sim.safety import safety_violations
from warden.sim.scoring import Score, score
from warden.sim.trace import Escalation, FaultOutcome, Move, Trace
from warden.sim.world import FaultState, SimAdapter, SimWorld, answers
from warden.store.memory import MemoryEventStore, MemoryLeases

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Sequence
    from multiprocessing import Queue

    from warden.sim.format import Response, Scenario, Signal

APPROVER = "sim-approver"
ON_CALL = "on-call"
OUTCOMES = ("recovered", "escalated", "open", "cleared")


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The fleet's size, seed, autonomy level, approver delay and on-call model."""

    services: int = 500
    days: float = 30.0
    faults: int = 10_000
    seed: int = 0
    autonomy: str = "autonomous"
    approval_delay_s: float = 120.0
    on_call: OnCall | OnCallRota = field(default_factory=OnCall)
    tick_s: float = 1.0
    probe_interval_s: float = 5.0


class _FleetWorld(SimWorld):
    """The world of one shard: an action meets the response model of the fault on its target now.

    A shard holds every instance's responses; a restart today must not answer with the
    response written for last week's crash of the same service.
    """

    shard: _Shard

    def _matching(self, action: str, target: str, params: dict[str, Any]) -> Response | None:
        instance = self.shard.instance_at(self.scenario.owner_of(target), self.now())
        if instance is None:
            return None
        for response in instance.scenario.responses:
            if answers(response, action, target, params):
                return response
        return None


def until_next_beat(now: float, phase: float, interval: float) -> float:
    """Seconds from ``now`` to the next beat of a schedule ``phase + k * interval`` after it.

    Never zero: when ``now`` sits on a beat (or rounding puts it there), the next one is a
    whole interval away. A zero delay would repeat the same instant forever.
    """
    beats = math.floor((now - phase) / interval) + 1
    delay = phase + beats * interval - now
    # Below the clock's resolution the sum ``now + delay`` is ``now`` again.
    return delay if now + delay > now else delay + interval


class _Shard:
    """One domain: its simulated services and the Warden that runs them."""

    def __init__(
        self, run: FleetRun, domain: str, scenario: Scenario, instances: list[Instance]
    ) -> None:
        self.run = run
        self.env = run.env
        self.domain = domain
        self.scenario = scenario
        self.instances = instances
        self.world = _FleetWorld(scenario, run.now, run.schedule, on_change=self._changed)
        self.world.shard = self
        self.runtime: SimRuntime = open_runtime(
            scenario,
            run.settings.autonomy,
            run.state_dir / domain,
            run.clock,
            SimAdapter(self.world),
            store=MemoryEventStore(),
            leases=MemoryLeases(),
        )
        self.loop = self.runtime.warden.runtime
        self.loop.subscribe(self._seen)
        rng = random.Random(f"fleet-probes:{run.settings.seed}:{domain}")
        interval = run.settings.probe_interval_s
        self.phase = {s: rng.random() * interval for s in scenario.service_names()}
        self.probing: set[str] = set()
        self.instance_of = {f.id: i for i in instances for f in i.scenario.faults}
        self.by_service: dict[str, list[Instance]] = defaultdict(list)
        for instance in instances:
            for service in instance.services():
                self.by_service[service].append(instance)
        self.starts = {s: [i.start for i in found] for s, found in self.by_service.items()}
        self.alerts: dict[str, list[Signal]] = defaultdict(list)  # fault id -> its alerts
        self.firing: dict[int, float] = {}  # id(signal) -> when it started firing
        # Metric series that stopped on a faulty value (paged, or past their end): the
        # fault's clearing sends their recovered sample, as a live series would show.
        self.stopped: dict[str, list[Signal]] = defaultdict(list)  # fault id -> series
        self.paged: dict[str, float] = {}  # instance name -> Warden's first page
        # Services whose fault a person took over: their repeats are not fed until fixed.
        self.silenced: set[str] = set()
        self.stray_pages = 0  # escalations on a service with no fault in its window
        self.awaiting: dict[str, float] = {}
        self.poked = False
        self.wake: simpy.Event | None = None
        self.reasons: Counter[str] = Counter(start=1)  # why each round ran

    # -- who is where --------------------------------------------------------------------

    def instance_at(self, service: str, at: float) -> Instance | None:
        """The fault instance whose window holds ``service`` at ``at``, if any."""
        found = self.by_service.get(service)
        if not found:
            return None
        index = bisect_right(self.starts[service], at) - 1
        if index < 0:
            return None
        instance = found[index]
        return instance if at < instance.end else None

    # -- processes -----------------------------------------------------------------------

    def start(self) -> None:
        """Feed the starting history; schedule the shard's faults, signals, probes and ticks."""
        past = sorted(
            (rev.at, n, res.id, res, rev)
            for res in self.scenario.topology.resources
            for n, rev in enumerate(res.history)
        )
        for at, _, _, res, rev in past:
            feed.send_change(
                self.runtime, res.owner, res.id, res.kind, rev.field, None, rev.value, rev.by,
                START + timedelta(seconds=at),
            )  # fmt: skip
        for name in self.scenario.service_names():
            self.runtime.record_probe(name, self.world.probe(name))
        for instance in self.instances:
            self.env.process(self._instance(instance))
        for fault in self.scenario.faults:
            self.env.process(self._fault(fault.id, fault.at))
        for signal in self.scenario.signals:
            if signal.alert is not None and signal.fault is not None:
                self.alerts[signal.fault].append(signal)
                self.env.process(self._alert(signal))
            else:
                self.env.process(self._signal(signal))
        self.env.process(self._ticks())

    def poke(self) -> None:
        """Something arrived: tick soon."""
        self.poked = True
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def _ticks(self) -> Generator[Any, Any, None]:
        settings = self.run.settings
        while True:
            self.poked = False
            before = self.runtime.store.head()
            self.loop.tick()
            self._approve()
            if self.runtime.store.head() != before:
                self.poked = True
            yield self.env.timeout(settings.tick_s)
            if self.poked:
                self.reasons["events added"] += 1
                continue
            self.wake = self.env.event()
            quiet = self._quiet_s()
            if quiet is not None:
                yield self.wake | self.env.timeout(quiet)
                self.reasons["input (timer set)" if self.wake.triggered else "timer due"] += 1
            else:
                yield self.wake
                self.reasons["input"] += 1
            self.wake = None
            now = float(self.env.now)
            aligned = math.ceil(now / settings.tick_s) * settings.tick_s
            if aligned > now:
                yield self.env.timeout(aligned - now)

    def _quiet_s(self) -> float | None:
        """How long a shard waits for input before its next round; None: until input comes.

        Nothing moves an incident between inputs but its timers: the core says when the
        first of them falls due (:meth:`warden.runtime.loop.Runtime.next_due`), and the
        simulated approver answers a request ``approval_delay_s`` after it saw it. Input
        still wakes the shard at once.
        """
        settings = self.run.settings
        due = [seen + settings.approval_delay_s for seen in self.awaiting.values()]
        timer = self.loop.next_due()
        if timer is not None:
            due.append((timer - START).total_seconds())
        if not due:
            return None
        return max(settings.tick_s, min(due) - float(self.env.now))

    def _instance(self, instance: Instance) -> Generator[Any, Any, None]:
        """At its first fault: the alert pages the person on call, as it would without Warden."""
        yield self.env.timeout(instance.start)
        human = respond(instance.scenario, self.run.settings.seed, self.run.settings.on_call)
        if human.fixed_at is not None:
            self.run.schedule(
                max(0.0, human.fixed_at - float(self.env.now)), lambda: self._by_hand(instance)
            )

    def _fault(self, fault_id: str, at: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(at)
        fault = self.world.faults[fault_id].fault
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
                self.run.clock.now(),
            )
            self.poke()
        self.world.activate(fault_id)

    def _signal(self, signal: Signal) -> Generator[Any, Any, None]:
        yield self.env.timeout(signal.at)
        state = self.world.faults[signal.fault] if signal.fault is not None else None
        while True:
            active = state is None or state.active
            if signal.probe is not None:
                self.world.force_probe(signal.probe, signal.until)
                self._watch(signal.probe.service)
            else:
                feed.send_signal(self.runtime, signal, self.run.clock.now(), active)
                self.poke()
            done = state is not None and state.fixed and not state.active
            owner = self.instance_of.get(signal.fault or "")
            if signal.every_s is None or done or (owner is not None and owner.name in self.paged):
                self._stop(signal, active)  # a fixed fault's series ends recovered
                return
            yield self.env.timeout(signal.every_s)
            if signal.until is not None and self.env.now > signal.until:
                self._stop(signal, active)
                return

    def _stop(self, signal: Signal, active: bool) -> None:
        """A series ends: one whose last sample was faulty shows its recovery when it comes.

        Monitoring does not stop while a person works on a fault or after the scripted
        series ends; without its recovered sample Warden would keep a faulty value as the
        service's latest for the rest of the run.
        """
        if not active or signal.metric is None or signal.fault is None:
            return
        if self.world.faults[signal.fault].active:
            self.stopped[signal.fault].append(signal)  # sent when the fault clears
        else:
            feed.send_signal(self.runtime, signal, self.run.clock.now(), active=False)
            self.poke()

    def _alert(self, signal: Signal) -> Generator[Any, Any, None]:
        yield self.env.timeout(signal.at)
        assert signal.fault is not None
        self._alert_follows(signal, self.world.faults[signal.fault])

    def _alert_follows(self, signal: Signal, state: FaultState) -> None:
        """Fire an alert while its fault is active (from its time), resolve it when it clears."""
        now = float(self.env.now)
        if now < signal.at or (signal.until is not None and now > signal.until):
            return
        assert signal.alert is not None
        started = self.firing.get(id(signal))
        when = self.run.clock.now()
        if state.active and started is None:
            self.firing[id(signal)] = now
            feed.send_alert(self.runtime, signal.alert, "firing", when, when)
            self.poke()
        elif not state.active and started is not None:
            del self.firing[id(signal)]
            starts = START + timedelta(seconds=started)
            feed.send_alert(self.runtime, signal.alert, "resolved", starts, when)
            self.poke()

    def _changed(self, state: FaultState) -> None:
        """A fault took effect or cleared: probe what it touches, move its alerts."""
        for service in dict.fromkeys(e[0] for e in state.effects):
            self._watch(service)
        for signal in self.alerts.get(state.fault.id, ()):
            self._alert_follows(signal, state)
        if not state.active:
            for signal in self.stopped.pop(state.fault.id, ()):
                feed.send_signal(self.runtime, signal, self.run.clock.now(), active=False)
                self.poke()

    # -- probes --------------------------------------------------------------------------

    def _watch(self, service: str) -> None:
        if service in self.probing or service not in self.phase:
            return
        self.probing.add(service)
        self.env.process(self._probe(service))

    def _probe(self, service: str) -> Generator[Any, Any, None]:
        """Probe on the service's own schedule until it answers well with nothing on it."""
        interval = self.run.settings.probe_interval_s
        phase = self.phase[service]
        while True:
            yield self.env.timeout(until_next_beat(float(self.env.now), phase, interval))
            if service in self.silenced:
                self.probing.discard(service)
                return
            result = self.world.probe(service)
            before = self.runtime.store.head()
            self.runtime.record_probe(service, result)
            if self.runtime.store.head() != before:
                self.poke()
            forced = self.world.forced.get(service)
            if result.ok and not self.world.reaching(service) and forced is None:
                self.probing.discard(service)
                return

    # -- people --------------------------------------------------------------------------

    def _approve(self) -> None:
        """The simulated approver answers every request after a delay."""
        now = float(self.env.now)
        waiting = set()
        for incident in self.loop.open_incidents():
            if incident.state is not State.AWAITING_APPROVAL:
                continue
            waiting.add(incident.id)
            seen = self.awaiting.setdefault(incident.id, now)
            if now - seen >= self.run.settings.approval_delay_s:
                self.runtime.approve(incident.id, APPROVER, self.run.clock.now())
                self.awaiting.pop(incident.id, None)
                self.poke()
        for gone in set(self.awaiting) - waiting:
            del self.awaiting[gone]

    def _seen(self, event: ev.Event) -> None:
        """Warden paged: the person on call takes over the fault on that service."""
        if event.type != ev.INCIDENT_ESCALATED:
            return
        now = float(self.env.now)
        instance = self.instance_at(event.subject, now)
        if instance is None:
            self.stray_pages += 1
            return
        if instance.name in self.paged:
            return
        self.paged[instance.name] = now
        self.silenced |= instance.services()
        expect = instance.scenario.expect
        text = f"{event.data.get('reason', '')} {event.subject}".lower()
        carried = expect.decision == "escalate" and all(
            f.lower() in text for f in expect.escalation_facts
        )
        human = respond(
            instance.scenario,
            self.run.settings.seed,
            self.run.settings.on_call,
            paged_at=now,
            evidence=carried,
        )
        if human.fixed_at is not None:
            self.run.schedule(max(0.0, human.fixed_at - now), lambda: self._by_hand(instance))

    def _by_hand(self, instance: Instance) -> None:
        """The person on call fixes what is still broken in an instance (and any harm done)."""
        services = instance.services()
        self.silenced -= services
        for service in services:
            self._watch(service)
        for fault in instance.scenario.faults:
            if fault.root_cause:
                self.world.repair(fault.id, ON_CALL)
        for harm in self.world.harmed():
            state = self.world.faults[harm]
            if state.active and self.scenario.owner_of(state.fault.target) in services:
                self.world.repair(harm, ON_CALL)

    # -- the result ----------------------------------------------------------------------

    def results(self) -> tuple[list[dict[str, Any]], list[str], int]:
        """One row per instance, the safety violations, and the events in the log."""
        events = self.runtime.events()
        calls = {c.key: c for c in self.world.calls}
        unsafe = safety_violations(events, calls)
        executed: dict[str, list[Move]] = defaultdict(list)
        for call in self.world.calls:
            owner = self.scenario.owner_of(call.target)
            found = self.instance_at(owner, call.at)
            if found is not None:
                executed[found.name].append(
                    Move(call.at, call.action, call.target, call.params, call.effect)
                )
        proposed: dict[str, list[Move]] = defaultdict(list)
        granted: Counter[str] = Counter()
        escalations: dict[str, list[Escalation]] = defaultdict(list)
        opened: dict[str, list[float]] = defaultdict(list)
        summaries: dict[str, str] = {}
        for event in events:
            if event.type not in _TRACED:
                continue
            at = self.run.seconds(event.time)
            if event.type == ev.INCIDENT_OPENED:
                summaries[event.stream] = str(event.data.get("summary", ""))
            found = self.instance_at(event.subject, at)
            if event.type == ev.APPROVAL_REQUESTED:
                # A proposal is judged where its step would act, as a call that ran is
                # (an incident's subject may be a healthy caller of the faulty service).
                step = event.data["proposal"]["step"]
                owner = self.scenario.owner_of(str(step["target"]))
                found = self.instance_at(owner, at) or found
            if found is None:
                continue
            if event.type == ev.INCIDENT_OPENED:
                opened[found.name].append(at)
            elif event.type == ev.APPROVAL_REQUESTED:
                proposed[found.name].append(
                    Move(
                        at, str(step["action"]), str(step["target"]), dict(step.get("params") or {})
                    )
                )
            elif event.type == ev.APPROVAL_GRANTED:
                granted[found.name] += 1
            else:
                text = f"{summaries.get(event.stream, '')} {event.data.get('reason', '')}"
                escalations[found.name].append(Escalation(at, text.strip()))
        rows = []
        for instance in self.instances:
            name = instance.name
            trace = Trace(
                scenario=name,
                autonomy=self.run.settings.autonomy,
                seed=self.run.settings.seed,
                duration_s=instance.end - instance.start,
                executed=tuple(executed[name]),
                proposed=tuple(proposed[name]),
                approvals_granted=granted[name],
                escalations=tuple(escalations[name]),
                incidents=len(opened[name]),
                first_incident_at=min(opened[name], default=None),
                faults=tuple(self._outcome(f.id) for f in instance.scenario.faults),
                harmed=tuple(h for h in self.world.harmed() if self._harmed_in(h) is instance),
            )
            rows.append(self._row(instance, score(instance.scenario, trace)))
        return rows, unsafe, len(events)

    def _harmed_in(self, harm: str) -> Instance | None:
        """The instance a harmful action hit: the one on its target when it happened."""
        state = self.world.faults[harm]
        return self.instance_at(self.scenario.owner_of(state.fault.target), state.activations[0])

    def _outcome(self, fault_id: str) -> FaultOutcome:
        """A fault's life as Warden's score sees it: fixed only when Warden fixed it."""
        s = self.world.faults[fault_id]
        return FaultOutcome(
            s.fault.id,
            s.fault.root_cause,
            tuple(s.activations),
            tuple(s.clearings),
            s.fixed and s.fixed_by == "warden",
            s.relapses,
            s.active,
        )

    def _row(self, instance: Instance, result: Score) -> dict[str, Any]:
        scenario = instance.scenario
        roots = [self.world.faults[f] for f in scenario.root_causes()]
        handover = result.mttr_s
        if not roots:
            outcome = "escalated" if result.pages else "cleared"
        elif result.mttr_s is not None:
            outcome = "recovered"
        elif any(r.active or not r.fixed for r in roots):
            outcome = "open"
        else:
            outcome = "escalated"
            first = min(r.activations[0] for r in roots if r.activations)
            handover = round(max(r.clearings[-1] for r in roots) - first, 3)
        baseline = respond(scenario, self.run.settings.seed, self.run.settings.on_call)
        return {
            "name": scenario.name,
            "title": scenario.title,
            "domain": instance.domain,
            "fault_class": scenario.fault_class,
            "at_s": instance.start,
            "expected": scenario.expect.decision,
            "outcome": outcome,
            "baseline": {"mttr_s": baseline.mttr_s, "pages": baseline.pages},
            "runs": {
                self.run.settings.autonomy: {
                    **result.to_dict(),
                    "mttr_with_handover_s": handover,
                    "paged_by_warden": instance.name in self.paged,
                    "phases": None,
                }
            },
        }

    def close(self) -> None:
        """Stop the shard's Warden (its audit log is not projected: the run is thrown away)."""
        self.loop.close()


_TRACED = frozenset(
    {ev.INCIDENT_OPENED, ev.APPROVAL_REQUESTED, ev.APPROVAL_GRANTED, ev.INCIDENT_ESCALATED}
)


@dataclass(frozen=True, slots=True)
class ShardResult:
    """What one domain's run leaves for the report (picklable: a worker process sends it)."""

    domain: str
    rows: list[dict[str, Any]]
    unsafe: list[str]
    events: int
    ticks: dict[str, int]
    stray_pages: int
    faults_injected: int


class FleetRun:
    """Some domains of a fleet (all by default) on one simulated clock.

    Domains share nothing but the clock: each has its own Warden, store, world and seeded
    probe phases, so a domain runs the same beside any others or alone, in any process.
    """

    def __init__(
        self,
        fleet: Fleet,
        settings: FleetSettings,
        state_dir: Path,
        domains: Sequence[str] | None = None,
    ) -> None:
        self.fleet = fleet
        self.settings = settings
        self.state_dir = state_dir
        self.env = simpy.Environment()
        self.clock = SimClock(START, lambda: float(self.env.now))
        by_domain: dict[str, list[Instance]] = defaultdict(list)
        for instance in fleet.instances:
            by_domain[instance.domain].append(instance)
        chosen = fleet.domains() if domains is None else domains
        self.shards = [_Shard(self, d, fleet.shard(d), by_domain.get(d, [])) for d in chosen]

    def now(self) -> float:
        """Simulated seconds since the start."""
        return float(self.env.now)

    def seconds(self, stamp: str) -> float:
        """A log timestamp as simulated seconds."""
        return round((ev.parse_time(stamp) - START).total_seconds(), 3)

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Call ``action`` ``delay`` simulated seconds from now."""

        def later() -> Generator[Any, Any, None]:
            yield self.env.timeout(delay)
            action()

        self.env.process(later())

    def execute(self, progress: Callable[[float], None] | None = None) -> list[ShardResult]:
        """Run to the end; returns what each domain leaves for the report."""
        for shard in self.shards:
            shard.start()
        duration = self.fleet.duration_s
        steps = 100
        for k in range(1, steps + 1):
            self.env.run(until=duration * k / steps)
            if progress is not None:
                progress(k / steps)
        results = []
        for shard in self.shards:
            shard.loop.tick()
            rows, violations, events = shard.results()
            results.append(
                ShardResult(
                    domain=shard.domain,
                    rows=rows,
                    unsafe=[f"{shard.domain}: {v}" for v in violations],
                    events=events,
                    ticks=dict(shard.reasons),
                    stray_pages=shard.stray_pages,
                    faults_injected=len(shard.world.faults) - len(shard.world.harmed()),
                )
            )
            shard.close()
        return results


def fleet_report(
    fleet: Fleet, settings: FleetSettings, results: Sequence[ShardResult]
) -> dict[str, Any]:
    """The report of a whole fleet from its domains' results, however they were run.

    Results are merged in the fleet's domain order, so the report (and its digest) does
    not depend on how the domains were split between processes.
    """
    by_domain = {r.domain: r for r in results}
    ordered = [by_domain[d] for d in fleet.domains()]
    rows = sorted((row for r in ordered for row in r.rows), key=lambda r: r["name"])
    unsafe = [u for r in ordered for u in r.unsafe]
    ticks: Counter[str] = Counter()
    for r in ordered:
        ticks.update(r.ticks)
    level = settings.autonomy
    summary = summarize(rows, [level])
    summary[level]["safety_violations"] = len(unsafe)
    summary[level]["pages_without_fault"] = sum(r.stray_pages for r in ordered)
    outcomes = Counter(r["outcome"] for r in rows)
    decisions = Counter(r["runs"][level]["decision"] for r in rows)
    events = sum(r.events for r in ordered)
    report = {
        "format": "warden-fleet-report/1",
        "seed": settings.seed,
        "levels": [level],
        "approval_delay_s": settings.approval_delay_s,
        "max_duration_s": None,
        "fleet": {**fleet.counts(), "days": fleet.days},
        "faults_injected": sum(r.faults_injected for r in ordered),
        "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES},
        "decisions": dict(sorted(decisions.items())),
        "by_class": by_class(rows, level),
        "safety_violations": unsafe,
        "events": events,
        "ticks": sum(ticks.values()),
        # Why each round ran: input arrived (with or without a timer set), the previous
        # round added events, or the first timer of an open incident fell due.
        "ticks_by_reason": dict(sorted(ticks.items())),
        "scenarios": rows,
        "summary": summary,
    }
    report["digest"] = digest(report)
    return report


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    middle = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return round(middle, 3)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def by_class(rows: list[dict[str, Any]], level: str) -> dict[str, dict[str, Any]]:
    """Per fault class: counts, verdicts, outcomes and MTTRs (Warden's, with handover, on call)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["fault_class"]].append(row)
    out: dict[str, dict[str, Any]] = {}
    for fault_class in sorted(grouped):
        found = grouped[fault_class]
        runs = [r["runs"][level] for r in found]
        verdicts = Counter(r["verdict"] for r in runs)
        outcomes = Counter(r["outcome"] for r in found)
        out[fault_class] = {
            "faults": len(found),
            **{v: verdicts.get(v, 0) for v in ("RIGHT", "MISS", "WRONG")},
            **{o: outcomes.get(o, 0) for o in OUTCOMES},
            "warden_mttr_median_s": _median([r["mttr_s"] for r in runs if r["mttr_s"] is not None]),
            "handover_mttr_mean_s": _mean(
                [r["mttr_with_handover_s"] for r in runs if r["mttr_with_handover_s"] is not None]
            ),
            "baseline_mttr_mean_s": _mean(
                [r["baseline"]["mttr_s"] for r in found if r["baseline"]["mttr_s"] is not None]
            ),
            "actions": sum(r["actions"] for r in runs),
            "approvals": sum(r["approvals"] for r in runs),
            "pages": sum(r["pages"] for r in runs),
        }
    return out


# How the run went, not what it decided: left out of the digest.
_TIMINGS = (
    "wall_s", "cpu_s", "events_per_s", "digest", "workers", "cpu_s_by_worker", "cpu_s_by_domain",
)  # fmt: skip


def digest(report: dict[str, Any]) -> str:
    """A digest of what the run decided and measured (not of how long it took)."""
    kept = {k: v for k, v in report.items() if k not in _TIMINGS}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


MAX_WORKERS = 8


def default_workers() -> int:
    """One worker process per core, at most :data:`MAX_WORKERS`."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def heaviest_first(fleet: Fleet) -> list[str]:
    """The fleet's domains, those with the most work (faults and services) first.

    Worker processes take the next domain when they finish one, so the longest start
    first and the short ones fill in at the end.
    """
    weight: Counter[str] = Counter(s.domain for s in fleet.services)
    weight.update(i.domain for i in fleet.instances)
    return sorted(fleet.domains(), key=lambda d: (-weight[d], d))


class WorkerLost(RuntimeError):
    """A worker process of the fleet died before its domains were done; no report."""


def run_fleet(
    settings: FleetSettings,
    progress: Callable[[str, float], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Generate the fleet and run it; ``progress(phase, fraction)`` reports along the way.

    ``workers`` processes (default :func:`default_workers`) each run one domain at a
    time on its own clock, taking the next when done; one runs them all in this
    process. The report is the same whatever the number: only its timings differ.
    """
    started, cpu = time.perf_counter(), time.process_time()
    fleet = generate(settings.services, settings.days, settings.faults, settings.seed)
    if progress is not None:
        progress("generated", 0.0)
    count = max(1, min(default_workers() if workers is None else workers, len(fleet.domains())))
    if count == 1:
        results = _run_domains(fleet, settings, None, progress)
        worker_cpu: list[float] = []
        domain_cpu: dict[str, float] = {}  # domains interleave on one clock here
    else:
        results, worker_cpu, domain_cpu = _run_in_processes(
            settings, heaviest_first(fleet), count, progress
        )
    report = fleet_report(fleet, settings, results)
    report["wall_s"] = round(time.perf_counter() - started, 3)
    # The figure on a shared machine: this process's CPU and every worker's.
    report["cpu_s"] = round(time.process_time() - cpu + sum(worker_cpu), 3)
    report["cpu_s_by_worker"] = [round(c, 3) for c in worker_cpu]
    report["cpu_s_by_domain"] = domain_cpu
    report["workers"] = count
    report["events_per_s"] = round(report["events"] / report["wall_s"], 1)
    return report


def _run_domains(
    fleet: Fleet,
    settings: FleetSettings,
    domains: Sequence[str] | None,
    progress: Callable[[str, float], None] | None,
) -> list[ShardResult]:
    """Run ``domains`` (None: all) of ``fleet`` here, in a throwaway state directory."""
    with state_directory() as directory:
        run = FleetRun(fleet, settings, Path(directory), domains)
        if progress is not None:
            progress("built", 0.0)
        return run.execute(None if progress is None else lambda f: progress("running", f))


# A worker process's own: its progress queue, and the fleet it generated (once).
_worker_state: dict[str, Any] = {}


def _start_worker(queue: Queue[tuple[str, float]]) -> None:
    _worker_state["progress"] = queue


def _run_domain(settings: FleetSettings, domain: str) -> tuple[ShardResult, int, float, float]:
    """In a worker: run one domain; its result, the pid, the CPU seconds so far, the domain's.

    The worker generates the fleet from the seed the first time (cheaper than receiving
    it) and keeps it for the next domains.
    """
    started = time.process_time()
    kept = _worker_state.get("fleet")
    if kept is None or kept[0] != settings:
        generated = generate(settings.services, settings.days, settings.faults, settings.seed)
        kept = _worker_state["fleet"] = (settings, generated)
    queue = _worker_state.get("progress")

    def report(phase: str, fraction: float) -> None:
        if queue is not None and phase == "running":
            queue.put((domain, fraction))

    (result,) = _run_domains(kept[1], settings, [domain], report)
    now = time.process_time()
    return result, os.getpid(), now, now - started


def _run_in_processes(
    settings: FleetSettings,
    domains: list[str],
    workers: int,
    progress: Callable[[str, float], None] | None,
) -> tuple[list[ShardResult], list[float], dict[str, float]]:
    """Run each domain in a pool of ``workers`` processes.

    Returns the results, each worker's CPU seconds and each domain's (the longest bound
    the wall time from below, however many workers).

    Spawned, not forked: a worker starts clean of whatever this process holds (threads,
    open stores). Progress is the mean over the domains of how far each has run.
    """
    context = multiprocessing.get_context("spawn")
    queue: Queue[tuple[str, float]] = context.Queue()
    fractions = dict.fromkeys(domains, 0.0)
    results: list[ShardResult] = []
    cpu: dict[int, float] = {}
    cpu_of: dict[str, float] = {}
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(queue,)
    ) as pool:
        pending = {pool.submit(_run_domain, settings, d) for d in domains}
        if progress is not None:
            progress("built", 0.0)
        try:
            _collect(pending, queue, fractions, results, cpu, cpu_of, progress)
        except BrokenProcessPool:
            pool.shutdown(wait=False, cancel_futures=True)
            unfinished = sorted(set(domains) - {r.domain for r in results})
            raise WorkerLost(
                f"a fleet worker process died (killed, or out of memory) with"
                f" {len(unfinished)} of {len(domains)} domains unfinished"
                f" ({', '.join(unfinished[:5])}{', ...' if len(unfinished) > 5 else ''});"
                f" fix: run again with fewer --workers or a smaller fleet"
                f" ({workers} workers ran here)"
            ) from None
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # what has not started, never will
            raise
    by_domain = {d: round(cpu_of[d], 3) for d in domains}
    return results, [cpu[pid] for pid in sorted(cpu)], by_domain


def _collect(
    pending: set[Future[tuple[ShardResult, int, float, float]]],
    queue: Queue[tuple[str, float]],
    fractions: dict[str, float],
    results: list[ShardResult],
    cpu: dict[int, float],
    cpu_of: dict[str, float],
    progress: Callable[[str, float], None] | None,
) -> None:
    """Gather the domains' results as they come, and their progress meanwhile."""
    while pending:
        finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        for future in finished:
            result, pid, seconds, own = future.result()  # a worker's failure is raised here
            results.append(result)
            fractions[result.domain] = 1.0
            cpu[pid] = max(cpu.get(pid, 0.0), seconds)
            cpu_of[result.domain] = own
        with contextlib.suppress(Empty):
            while True:
                domain, fraction = queue.get_nowait()
                fractions[domain] = max(fractions[domain], fraction)
        if progress is not None:
            progress("running", sum(fractions.values()) / len(fractions))


__all__ = [
    "FleetRun",
    "FleetSettings",
    "ShardResult",
    "WorkerLost",
    "by_class",
    "default_workers",
    "digest",
    "fleet_report",
    "heaviest_first",
    "run_fleet",
]
