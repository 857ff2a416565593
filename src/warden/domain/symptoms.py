"""Symptoms read from sampled metrics: error rate, latency and saturation above their baseline.

Pure core (domain). Each metric is judged against its own history by
:mod:`warden.domain.baseline`; a declared SLO (``limits: {error_rate_slo: 0.02}``,
``latency_slo_ms``) is a floor under the threshold, so a rise that stays inside the SLO
is no symptom. Agents read symptoms as evidence: which metric, its baseline, the threshold
it crossed, the value observed, since when, and the ids of the samples that show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from warden.domain.baseline import BaselineRule, Shift, assess
from warden.domain.identity_memo import by_identity

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.signals import Signals
    from warden.domain.world import World

ERROR_RATE_HIGH = "error_rate_high"
LATENCY_HIGH = "latency_high"
SATURATION_HIGH = "saturation_high"
SYMPTOM_KINDS = (ERROR_RATE_HIGH, LATENCY_HIGH, SATURATION_HIGH)

# Which metrics speak of what, by a word in their name (error_rate, http_error_ratio;
# latency_ms, latency_p99_ms, request_duration_s; cpu_utilization, disk_io_util, ...).
_WORDS = (
    (ERROR_RATE_HIGH, ("error_rate", "error_ratio", "errors_ratio")),
    (LATENCY_HIGH, ("latency", "duration")),
    (SATURATION_HIGH, ("saturation", "util", "cpu", "memory")),
)
# The floors: an error rate must rise by 2 points (0.02) at least; a latency by half its
# baseline; a saturation by 5 points and a quarter of its baseline.
DEFAULT_RULES: Mapping[str, BaselineRule] = {
    ERROR_RATE_HIGH: BaselineRule(min_shift=0.02),
    LATENCY_HIGH: BaselineRule(min_ratio=0.5),
    SATURATION_HIGH: BaselineRule(min_shift=0.05, min_ratio=0.25),
}
# Declared limits that are floors under a kind's threshold.
SLO_LIMITS = {ERROR_RATE_HIGH: "error_rate_slo", LATENCY_HIGH: "latency_slo_ms"}


def symptom_kind(metric: str) -> str | None:
    """The symptom a metric can show, or None for metrics no detector reads."""
    for kind, words in _WORDS:
        if any(word in metric for word in words):
            return kind
    return None


@dataclass(frozen=True, slots=True)
class Symptom:
    """One metric of one service sustained above its baseline."""

    service: str
    kind: str  # error_rate_high, latency_high or saturation_high
    metric: str
    baseline: float  # median of the normal samples
    threshold: float  # what the samples exceeded
    observed: float  # the latest sample
    since: str  # time of the first sample of the rise
    evidence: tuple[str, ...] = ()  # event ids of the samples of the rise
    samples: int = 0  # how many samples the baseline was learned from

    def describe(self) -> str:
        """One line for people, e.g. ``error_rate 0.12 above its baseline 0.004 (...)``."""
        return (
            f"{self.metric} {self.observed:g} above its baseline {self.baseline:g}"
            f" (threshold {self.threshold:g}, learned from {self.samples} samples)"
            f" since {self.since}"
        )


@dataclass(frozen=True, slots=True)
class Detectors:
    """The rule each symptom kind is judged by."""

    rules: Mapping[str, BaselineRule] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def of(self, signals: Signals, limits: Mapping[str, str] | None = None) -> list[Symptom]:
        """The symptoms one service's metrics show now, by metric name."""
        return list(_found(self, signals, tuple((limits or {}).items())))

    def in_world(self, world: World) -> list[Symptom]:
        """Every symptom of every service, by service then metric."""
        return [
            symptom
            for service in sorted(world.signals)
            for symptom in _found(self, world.signals_of(service), world.limits.get(service, ()))
        ]


@by_identity()
def _found(
    detectors: Detectors, signals: Signals, limits: tuple[tuple[str, str], ...]
) -> tuple[Symptom, ...]:
    """:meth:`Detectors.of`, remembered while the service's signals are the same object."""
    found = []
    declared = dict(limits)
    for metric, samples in signals.metrics:
        kind = symptom_kind(metric)
        rule = detectors.rules.get(kind) if kind else None
        if kind is None or rule is None:
            continue
        shift = _assess(tuple(s.value for s in samples), rule, _floor(declared, kind, metric))
        if shift is None:
            continue
        run = samples[shift.onset :]
        found.append(
            Symptom(
                service=signals.service,
                kind=kind,
                metric=metric,
                baseline=shift.baseline,
                threshold=shift.threshold,
                observed=shift.observed,
                since=run[0].time,
                evidence=tuple(s.event_id for s in run),
                samples=shift.samples,
            )
        )
    return tuple(found)


@lru_cache(maxsize=4096)
def _assess(values: tuple[float, ...], rule: BaselineRule, floor: float | None) -> Shift | None:
    """:func:`assess`, remembered: agents ask every round, a series changes per sample."""
    return assess(values, rule, floor)


def _floor(limits: Mapping[str, str], kind: str, metric: str) -> float | None:
    name = SLO_LIMITS.get(kind)
    if name is None or name not in limits:
        return None
    if kind == LATENCY_HIGH and not metric.endswith("_ms"):
        return None  # the SLO is in milliseconds; the metric is not
    try:
        return float(limits[name])
    except ValueError:
        return None


def symptoms(world: World) -> list[Symptom]:
    """Every symptom in the world, judged by the default rules."""
    return Detectors().in_world(world)


__all__ = [
    "DEFAULT_RULES",
    "ERROR_RATE_HIGH",
    "LATENCY_HIGH",
    "SATURATION_HIGH",
    "SLO_LIMITS",
    "SYMPTOM_KINDS",
    "Detectors",
    "Symptom",
    "symptom_kind",
    "symptoms",
]
