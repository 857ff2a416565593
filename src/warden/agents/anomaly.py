"""Detector agent: error rate, latency or saturation sustained above its baseline. Decisioning.

Signals that are not probes: each sampled metric is judged against a baseline learned
from its own series (:mod:`warden.domain.symptoms`), so a service can be found in trouble
while its health probe still passes. The agent opens the incident with the symptom as
evidence (metric, baseline, threshold, observed value, since when) and proposes nothing
itself: no built-in action cures a rise without knowing its cause. A cause-specific agent
(a bad deploy, a failing dependency) acts; otherwise the incident goes to a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain.baseline import BaselineRule
from warden.domain.symptoms import DEFAULT_RULES, SYMPTOM_KINDS, Detectors

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.world import World

_WHAT = {
    "error_rate_high": "error rate",
    "latency_high": "latency",
    "saturation_high": "saturation",
}


def _rules(min_samples: int, sustain: int, k: float) -> dict[str, BaselineRule]:
    return {
        kind: BaselineRule(
            min_samples=min_samples,
            window=max(rule.window, min_samples),
            k=k,
            sustain=sustain,
            min_shift=rule.min_shift,
            min_ratio=rule.min_ratio,
        )
        for kind, rule in DEFAULT_RULES.items()
    }


@dataclass(frozen=True, slots=True)
class AnomalyAgent:
    """Opens an incident when a metric stays ``k`` spreads above its learned baseline.

    ``min_samples`` normal samples are needed before a metric is judged; ``sustain`` high
    samples in a row make a shift (and as many back under halfway clear it).
    """

    min_samples: int = 20
    sustain: int = 3
    k: float = 6.0
    name: str = "anomaly"
    handles: frozenset[str] = frozenset(SYMPTOM_KINDS)
    priority: int = 20
    # It opens incidents and proposes nothing: its evidence names the symptom, not a fix.
    evidence_needed: tuple[str, ...] = (
        "a metric sustained k spreads above the baseline learned from its own series",
    )
    detectors: Detectors = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules = _rules(self.min_samples, self.sustain, self.k)  # raises ValueError when bad
        object.__setattr__(self, "detectors", Detectors(rules))

    def detect(self, world: World) -> list[Detection]:
        """One detection per service: its first symptom (error rate, latency, saturation)."""
        found: dict[str, Detection] = {}
        ranked = sorted(self.detectors.in_world(world), key=lambda s: (s.service, s.kind))
        for symptom in ranked:
            if symptom.service in found:
                continue
            found[symptom.service] = Detection(
                service=symptom.service,
                summary=f"{symptom.service} {_WHAT[symptom.kind]}: {symptom.describe()}",
                first_signal_at=symptom.since,
                evidence=symptom.evidence,
                kind=symptom.kind,
            )
        return list(found.values())

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Nothing: a rise is a symptom; the cure depends on its cause."""
        return None

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """What the person the incident goes to should know."""
        shown = [
            s.describe()
            for s in self.detectors.of(
                world.signals_of(incident.service), dict(world.limits.get(incident.service, ()))
            )
        ]
        now = "; ".join(shown) if shown else "the metrics are back within their baseline"
        return (
            f"{self.name}: a metric shift is a symptom, not a cause; no built-in action cures"
            f" it without one (now: {now})"
        )
