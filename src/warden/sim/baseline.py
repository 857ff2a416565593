"""A human on-call baseline on the same fault schedule: page, acknowledge, diagnose, act.

Each phase takes a log-normal time (a median and a spread): the defaults below, a baseline
file's (by fault class), then the scenario's own ``baseline.on_call``. The draws are
seeded, so the same scenario and seed give the same baseline. Simulation (edge).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.sim.format import OnCallTimes, Rota, Scenario


@dataclass(frozen=True, slots=True)
class Phase:
    """A log-normal duration: half of the draws are below ``median_s``."""

    median_s: float
    spread: float = 0.5  # sigma of the underlying normal

    def draw(self, rng: random.Random, scale: float = 1.0) -> float:
        """One duration in seconds."""
        return self.median_s * scale * math.exp(rng.gauss(0.0, self.spread))


@dataclass(frozen=True, slots=True)
class OnCall:
    """How a person on call responds.

    Attributes:
        alert_delay: From the first symptom to the page (alert rule ``for:`` and grouping).
        acknowledge: From the page to someone looking.
        diagnose: From looking to knowing what to do (times the scenario's difficulty).
        act: Carrying the fix out (times the scenario's ``baseline.action_s`` / 120 s).
        right_first: The chance the first diagnosis is right; a wrong one costs another
            diagnosis and another action.
        evidence_factor: How much of the diagnosis an escalation with the facts saves.
    """

    alert_delay: Phase = Phase(120.0, 0.3)
    acknowledge: Phase = Phase(300.0, 0.6)
    diagnose: Phase = Phase(900.0, 0.7)
    act: Phase = Phase(120.0, 0.3)
    right_first: float = 0.8
    evidence_factor: float = 0.5

    def changed(self, times: OnCallTimes | None) -> OnCall:
        """These response times with the ones ``times`` sets."""
        if times is None:
            return self
        given: dict[str, Any] = {
            name: Phase(part.median_s, part.spread)
            for name in ("alert_delay", "acknowledge", "diagnose", "act")
            if (part := getattr(times, name)) is not None
        }
        if times.right_first is not None:
            given["right_first"] = times.right_first
        if times.evidence_factor is not None:
            given["evidence_factor"] = times.evidence_factor
        return replace(self, **given) if given else self


@dataclass(frozen=True, slots=True)
class OnCallRota:
    """Response times for every fault class, with some classes' own (a baseline file)."""

    default: OnCall = field(default_factory=OnCall)
    by_class: Mapping[str, OnCall] = field(default_factory=dict)

    @classmethod
    def from_file(cls, rota: Rota) -> OnCallRota:
        """The rota a checked baseline file describes, over the defaults."""
        default = OnCall().changed(rota)
        return cls(default, {k: default.changed(v) for k, v in rota.fault_classes.items()})

    def for_scenario(self, scenario: Scenario) -> OnCall:
        """The times for this scenario: its class's, then its own ``baseline.on_call``."""
        chosen = self.by_class.get(scenario.fault_class, self.default)
        return chosen.changed(scenario.baseline.on_call)


@dataclass(frozen=True, slots=True)
class HumanOutcome:
    """When each phase of the human response ended (seconds from the scenario start)."""

    paged_at: float | None
    acknowledged_at: float | None
    fixed_at: float | None
    mttr_s: float | None
    pages: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""

        def seconds(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "paged_at": seconds(self.paged_at),
            "acknowledged_at": seconds(self.acknowledged_at),
            "fixed_at": seconds(self.fixed_at),
            "mttr_s": self.mttr_s,
            "pages": self.pages,
        }


def _first_symptom(scenario: Scenario) -> float | None:
    """When something a monitor pages on first shows: a fault, or an alert without one."""
    moments = [f.at for f in scenario.faults]
    moments += [s.at for s in scenario.signals if s.alert is not None and s.fault is None]
    return min(moments) if moments else None


def respond(
    scenario: Scenario,
    seed: int,
    model: OnCall | OnCallRota | None = None,
    *,
    paged_at: float | None = None,
    evidence: bool = False,
) -> HumanOutcome:
    """The person on call's response to the scenario.

    Args:
        scenario: The incident.
        seed: Seeds the draws (with the scenario's name).
        model: The response times (or a rota of them by fault class); the defaults
            describe a typical rota. The scenario's ``baseline.on_call`` wins over both.
        paged_at: When a page arrives instead of the monitor's own (Warden escalated).
        evidence: Whether the page carried the facts that speed the diagnosis.

    Returns:
        The phases' end times; ``mttr_s`` is None when nothing needed fixing.
    """
    if not isinstance(model, OnCallRota):
        model = OnCallRota(model or OnCall())
    model = model.for_scenario(scenario)
    rng = random.Random(f"baseline:{scenario.name}:{seed}")
    symptom = _first_symptom(scenario)
    page = model.alert_delay.draw(rng)
    ack = model.acknowledge.draw(rng)
    if symptom is None and paged_at is None:
        return HumanOutcome(None, None, None, None, 0)
    start = symptom if symptom is not None else 0.0
    paged = start + page if paged_at is None else min(paged_at, start + page)
    acknowledged = paged + ack
    roots = [f for f in scenario.faults if f.id in scenario.root_causes()]
    if not roots:
        # Nothing to fix: the person looks, finds nothing wrong, goes back to bed.
        return HumanOutcome(paged, acknowledged, None, None, 1)
    first_fault = min(f.at for f in roots)
    scale = scenario.baseline.difficulty * (model.evidence_factor if evidence else 1.0)
    act_scale = scenario.baseline.action_s / model.act.median_s
    done = acknowledged + model.diagnose.draw(rng, scale) + model.act.draw(rng, act_scale)
    if rng.random() > model.right_first:
        done += model.diagnose.draw(rng, scale / 2) + model.act.draw(rng, act_scale)
    return HumanOutcome(paged, acknowledged, done, round(done - first_fault, 3), 1)
