"""A runbook: trigger, condition, throttle and plan template, and the agent that runs it. Shell.

A runbook is an agent: it watches the events the runtime folds, and an event that passes
its trigger and condition (and is not throttled) becomes a detection, then a plan, under
the runbook's own name and version. Policy, guardrails, approvals and the executor treat
that plan like any agent's. Throttling is decided from event times and the incidents in
the history, never from a wall clock, so replay and restart decide the same.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.agents.protocol import Detection
from warden.domain import events as ev
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta

    from warden.domain.incident import Incident
    from warden.domain.world import World
    from warden.runbooks.expr import Expression, Template

KIND_PREFIX = "runbook:"
_UNDEFINED = re.compile(r"Undefined variable or function: '((?:event|world)__\w+)'")
MODES = ("live", "shadow")


@dataclass(frozen=True, slots=True)
class Trigger:
    """Which events a runbook looks at: types, and for alerts their names and labels."""

    types: frozenset[str]
    alertnames: frozenset[str] = frozenset()
    labels: tuple[tuple[str, str], ...] = ()

    def why_not(self, event: ev.Event) -> str:
        """Why ``event`` does not pass ("" when it does)."""
        if event.type not in self.types:
            return f"type {event.type} is not one of {', '.join(sorted(self.types))}"
        if self.alertnames and event.data.get("alertname") not in self.alertnames:
            return f"alertname {event.data.get('alertname')!r} is not watched"
        if self.labels:
            labels = event.data.get("labels") or {}
            for name, value in self.labels:
                if labels.get(name) != value:
                    return f"label {name}={labels.get(name)!r}, the trigger wants {value!r}"
        return ""


@dataclass(frozen=True, slots=True)
class StepTemplate:
    """One step of the plan: a catalog action, its target and parameters as templates."""

    action: str
    target: Template
    params: tuple[tuple[str, Template], ...] = ()


@dataclass(frozen=True, slots=True)
class Runbook:
    """A remediation rule written as data, loaded from one YAML file."""

    name: str
    version: str
    path: str
    trigger: Trigger
    steps: tuple[StepTemplate, ...]
    rationale: Template
    confidence: float
    service: Template
    condition: Expression | None = None
    group_by: Template | None = None
    once_within: timedelta | None = None
    expected_outcome: Template | None = None
    priority: int = 60
    mode: str = "live"
    description: str = ""

    @property
    def kind(self) -> str:
        """The incident kind its detections open; only this runbook plans it."""
        return KIND_PREFIX + self.name

    reads_world: bool = field(init=False, default=False)
    """Whether any expression reads ``world`` (the world is built only then)."""

    def __post_init__(self) -> None:
        templates = [self.service, self.rationale, self.group_by, self.expected_outcome]
        templates += [s.target for s in self.steps]
        templates += [t for s in self.steps for _, t in s.params]
        reads = (self.condition is not None and self.condition.reads_world) or any(
            t is not None and t.reads_world for t in templates
        )
        object.__setattr__(self, "reads_world", reads)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a runbook made of one event: matched or not, why, and the plan if it fires."""

    runbook: str
    matched: bool
    reason: str
    service: str = ""
    key: str = ""
    plan: Plan | None = None
    throttled_by: str = ""


def event_variable(event: ev.Event) -> dict[str, Any]:
    """The ``event`` variable expressions read."""
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time,
        "data": event.data,
    }


def world_variable(world: World, service: str) -> dict[str, Any]:
    """The ``world`` variable: what is known about ``service`` (see ``expr.WORLD_SCHEMA``)."""
    health = world.health.get(service)
    signals = world.signals_of(service)
    depends_on = world.depends_on.get(service, ())
    deployed_at = signals.deploys[-1].time if signals.deploys else ""
    return {
        "service": service,
        "healthy": health.healthy if health is not None else True,
        "consecutive_failures": health.consecutive_failures if health is not None else 0,
        "failing_since": health.failing_since if health is not None else "",
        "last_error": health.last_error if health is not None else "",
        "version": signals.version,
        "previous_version": signals.previous_version,
        "metrics": {name: s[-1].value for name, s in signals.metrics if s},
        "alerts": sorted({a.alertname for a in signals.alerts}),
        "isolated": service in world.isolated,
        "depends_on": list(depends_on),
        "deployed_at": deployed_at,
        "changes_since_deploy": _changes_since(world, (service, *depends_on), deployed_at),
        "failing_dependencies": sorted(
            d for d in depends_on if d in world.health and not world.health[d].healthy
        ),
        "limits": dict(world.limits.get(service, ())),
    }


def _changes_since(world: World, services: tuple[str, ...], deployed_at: str) -> list[str]:
    """Other changes to ``services``' objects after ``deployed_at`` (all kept, when "")."""
    after = ev.parse_time(deployed_at) if deployed_at else None
    return [
        c.describe()
        for c in world.changes.about(services)
        if not c.is_deploy and (after is None or ev.parse_time(c.time) > after)
    ]


def evaluate(
    runbook: Runbook,
    event: ev.Event,
    world: Callable[[str], dict[str, Any]] | None,
    last_fired: Callable[[str, str], str] = lambda runbook, key: "",
) -> Verdict:
    """Run ``runbook`` on ``event``: trigger, condition, throttle, then the plan.

    Args:
        runbook: The runbook.
        event: The event, as stored.
        world: Gives the ``world`` variable of a service when an expression reads it.
        last_fired: The event time at which ``runbook`` last fired for a group key ("").
    """
    why = runbook.trigger.why_not(event)
    if why:
        return Verdict(runbook.name, False, f"trigger: {why}")
    variables: dict[str, Any] = {"event": event_variable(event)}
    if runbook.reads_world and world is not None:
        variables["world"] = world(str(event.data.get("service") or event.subject))
    try:
        if runbook.condition is not None:
            value = runbook.condition.evaluate(variables)
            if value is not True:
                return Verdict(
                    runbook.name, False, f"condition {runbook.condition.source!r} is {value!r}"
                )
        service = str(runbook.service.render(variables))
        key = str(runbook.group_by.render(variables)) if runbook.group_by is not None else service
    except Exception as exc:  # a field the event lacks, a type mismatch: no match, explained
        return Verdict(runbook.name, False, f"condition could not be evaluated: {_error(exc)}")
    if not service:
        return Verdict(runbook.name, False, "the service template gave an empty name")
    if runbook.once_within is not None:
        previous = last_fired(runbook.name, key)
        # The event's own time is parsed once here, not remembered; the last firing's is.
        if (
            previous
            and ev.parse_time_once(event.time) - ev.parse_time(previous) < runbook.once_within
        ):
            return Verdict(
                runbook.name,
                False,
                f"throttled: already fired for {key!r} at {previous}, once within"
                f" {_span(runbook.once_within)}",
                service,
                key,
                throttled_by=previous,
            )
    try:
        plan = render_plan(runbook, event, variables)
    except Exception as exc:  # a template that cannot render for this event
        return Verdict(runbook.name, False, f"plan could not be rendered: {_error(exc)}")
    return Verdict(runbook.name, True, "matched", service, key, plan)


def render_plan(runbook: Runbook, event: ev.Event, variables: dict[str, Any]) -> Plan:
    """The runbook's plan for one event."""
    steps = tuple(
        Step(
            s.action,
            str(s.target.render(variables)),
            tuple(sorted((name, t.render(variables)) for name, t in s.params)),
        )
        for s in runbook.steps
    )
    expected = runbook.expected_outcome
    return Plan(
        agent=runbook.name,
        steps=steps,
        rationale=str(runbook.rationale.render(variables)),
        evidence=(event.id,),
        confidence=runbook.confidence,
        expected_outcome=str(expected.render(variables)) if expected is not None else "",
        agent_version=runbook.version,
    )


def _error(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the event has no field {exc.args[0]!r}"
    undefined = _UNDEFINED.search(str(exc))
    if undefined:
        return f"the event has no field {undefined.group(1).replace('__', '.')!r}"
    return f"{type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=64)  # a few windows, spelled in every throttled verdict
def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s"


@dataclass(slots=True)
class RunbookAgent:
    """One runbook as an agent: matches become detections, then its plans.

    ``observe`` is called with every event the runtime folds, in log order; ``detect``
    hands over what matched since, and ``propose`` gives the plan an incident was opened
    for. ``last_fired`` (the throttle) is kept from the incidents the runbook opened, which
    are in the history, so it survives a restart.
    """

    runbook: Runbook
    world: Callable[[], World] | None = None  # set by the runtime's wiring
    # Whether this version acts, proposes in shadow or idles for a service ("live",
    # "shadow", "idle"); set by the lifecycle (canary, promotion, rollback). Without it
    # the runbook's own mode decides.
    role: Callable[[Runbook, str], str] | None = None
    _pending: dict[tuple[str, str], tuple[Verdict, ev.Event]] = field(default_factory=dict)
    _plans: dict[tuple[str, str], Plan] = field(default_factory=dict)
    fired: dict[str, str] = field(default_factory=dict)
    shadowed: list[tuple[Verdict, ev.Event]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The runbook's name: its identity in policy, audit and KPIs."""
        return self.runbook.name

    @property
    def owner_rule(self) -> bool:
        """A runbook states its owner's rule: its trigger and condition are its evidence."""
        return True

    @property
    def version(self) -> str:
        """The content hash of the runbook's file."""
        return self.runbook.version

    @property
    def handles(self) -> frozenset[str]:
        """Only the incidents this runbook opened."""
        return frozenset({self.runbook.kind})

    @property
    def priority(self) -> int:
        """As written in the runbook (60 by default: above the built-in rule agents)."""
        return self.runbook.priority

    def last_fired(self, runbook: str, key: str) -> str:
        """When this runbook last fired for ``key`` ("" never)."""
        return self.fired.get(key, "")

    def observe(self, event: ev.Event) -> Verdict | None:
        """Look at one folded event; a match waits for :meth:`detect`."""
        if event.type == ev.INCIDENT_OPENED:
            self._remember(event)
            return None
        if event.type not in self.runbook.trigger.types:
            return None
        # The world is offered only to a runbook that reads it: evaluate asks no other.
        reads = self.world is not None and self.runbook.reads_world
        verdict = evaluate(self.runbook, event, self._world_of if reads else None, self.last_fired)
        if not verdict.matched:
            return verdict
        role = self.runbook.mode if self.role is None else self.role(self.runbook, verdict.service)
        if role == "idle":
            return verdict
        self.fired[verdict.key] = event.time
        if role == "shadow":
            self.shadowed.append((verdict, event))
        else:
            self._pending[(verdict.service, event.time)] = (verdict, event)
        return verdict

    def _world_of(self, service: str) -> dict[str, Any]:
        """The ``world`` variable of ``service``, as the runtime sees it now."""
        assert self.world is not None  # offered to evaluate only then
        return world_variable(self.world(), service)

    def _remember(self, opened: ev.Event) -> None:
        data = opened.data
        if data.get("kind") != self.runbook.kind:
            return
        key = str(data.get("group_key") or data.get("service", ""))
        when = str(data.get("first_signal_at", ""))
        if when > self.fired.get(key, ""):
            self.fired[key] = when

    def detect(self, world: World) -> list[Detection]:
        """What matched since the last call, one detection per service and event time."""
        found = []
        for (service, when), (verdict, event) in sorted(self._pending.items()):
            plan = verdict.plan
            if plan is None:
                continue
            self._plans[(service, when)] = plan
            found.append(
                Detection(
                    service=service,
                    summary=f"runbook {self.name} matched {event.type} {event.id}: "
                    + plan.rationale,
                    first_signal_at=when,
                    evidence=(event.id,),
                    severity=str(event.data.get("severity") or "major"),
                    kind=self.runbook.kind,
                    group_key=verdict.key,
                )
            )
        self._pending.clear()
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """The plan rendered when the incident's event matched."""
        return self._plans.pop((incident.service, incident.first_signal_at), None)

    def take_shadowed(self) -> list[tuple[Verdict, ev.Event]]:
        """What the runbook would have done in shadow since the last call."""
        taken, self.shadowed = self.shadowed, []
        return taken


__all__ = [
    "KIND_PREFIX",
    "MODES",
    "Runbook",
    "RunbookAgent",
    "StepTemplate",
    "Trigger",
    "Verdict",
    "evaluate",
    "event_variable",
    "render_plan",
    "world_variable",
]
