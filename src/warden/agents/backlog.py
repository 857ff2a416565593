"""Rule agent: a queue backlog that keeps growing gets more consumers, within limits.

Decisioning plane. The new consumer count follows the backlog's growth and never passes
the service's declared ``max_consumers``; at the cap the agent proposes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.signals import Sample, Signals
    from warden.domain.world import World

MAX_CONSUMERS = "max_consumers"
DESIRED_CONSUMERS = "desired.consumers"


@dataclass(frozen=True, slots=True)
class _Growth:
    """A run of strictly growing backlog samples ending with the latest one."""

    run: tuple[Sample, ...]

    @property
    def increases(self) -> int:
        return len(self.run) - 1

    @property
    def relative(self) -> float:
        """Growth over the run as a share of where it started (inf from zero)."""
        first, last = self.run[0].value, self.run[-1].value
        return (last - first) / first if first > 0 else math.inf


@dataclass(frozen=True, slots=True)
class _Scaling:
    """Where the consumers stand and where the agent would take them."""

    current: int | None
    source: str  # where ``current`` came from: the metric's event id, or the config key
    cap: int | None
    wanted: int | None  # before the cap
    target: int | None  # after the cap; None when no safe target exists

    @property
    def capped(self) -> bool:
        """True when the cap holds the target below what the growth asks for."""
        return self.wanted is not None and self.target is not None and self.target < self.wanted


def _whole(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and value >= 1 else None


@dataclass(frozen=True, slots=True)
class BacklogAgent:
    """Scales the consumers of a queue whose backlog grows past ``threshold``.

    The backlog must have grown over ``min_increases`` consecutive samples and stand above
    ``threshold``. Consumers grow in proportion to the backlog's relative growth over that
    run (doubling the backlog asks for twice the consumers), by at least one and at most
    ``max_scale_factor`` times, and never above the ``max_consumers`` limit of the service;
    without a declared limit the agent does not scale at all.
    """

    threshold: float = 1000.0
    min_increases: int = 3
    max_scale_factor: float = 2.0
    metric: str = "backlog"
    consumers_metric: str = "consumers"
    name: str = "backlog"
    handles: frozenset[str] = frozenset({"backlog_growth"})
    priority: int = 50
    evidence_needed: tuple[str, ...] = (
        "a backlog growing min_increases times in a row",
        "consumers below max_consumers",
    )

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError("threshold must not be negative")
        if self.min_increases < 1:
            raise ValueError("min_increases must be at least 1")
        if self.max_scale_factor <= 1.0:
            raise ValueError("max_scale_factor must be above 1")

    def detect(self, world: World) -> list[Detection]:
        """Services whose backlog grows past the threshold, one detection per service."""
        found = []
        for service in sorted(world.signals):
            growth = self._growth(world.signals_of(service))
            if growth is None:
                continue
            first, last = growth.run[0], growth.run[-1]
            found.append(
                Detection(
                    service=service,
                    summary=(
                        f"{service} {self.metric} grew {growth.increases} samples in a row,"
                        f" from {first.value:g} to {last.value:g} (threshold {self.threshold:g})"
                    ),
                    first_signal_at=first.time,
                    evidence=tuple(s.event_id for s in growth.run),
                    kind="backlog_growth",
                )
            )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Scale the consumers up, in proportion to the growth, within the declared cap."""
        signals = world.signals_of(incident.service)
        growth = self._growth(signals)
        if growth is None:
            return None
        scaling = self._scaling(incident.service, world, growth)
        if scaling.target is None or scaling.current is None or scaling.cap is None:
            return None
        service = incident.service
        first, last = growth.run[0], growth.run[-1]
        measured = scaling.source != DESIRED_CONSUMERS
        rationale = (
            f"the {self.metric} of {service} grew over {growth.increases} consecutive"
            f" samples from {first.value:g} at {first.time} to {last.value:g} at {last.time},"
            f" past the threshold of {self.threshold:g}: the {scaling.current} consumers"
            f" ({'sampled' if measured else 'as declared in desired state'}) do not keep"
            f" up. The backlog grew {_share(growth.relative)}, so the consumers grow"
            f" to {scaling.wanted} (at least one more, at most {self.max_scale_factor:g}x)"
        )
        if scaling.capped:
            rationale += (
                f", capped at max_consumers = {scaling.cap}: that may not be enough, and the"
                " cap is reached"
            )
        else:
            rationale += f", within max_consumers = {scaling.cap}"
        evidence = tuple(s.event_id for s in growth.run)
        if measured:
            evidence += (scaling.source,)
        return Plan(
            agent=self.name,
            steps=(Step("scale_consumers", service, (("replicas", scaling.target),)),),
            rationale=rationale,
            evidence=evidence,
            confidence=self._confidence(growth, scaling),
            expected_outcome=(
                f"with {scaling.target} consumers (was {scaling.current}) the {self.metric}"
                f" of {service} stops growing and falls back below {self.threshold:g}"
            ),
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        service = incident.service
        growth = self._growth(world.signals_of(service))
        if growth is None:
            return (
                f"{self.name}: the {self.metric} of {service} is no longer growing past"
                f" {self.threshold:g}"
            )
        scaling = self._scaling(service, world, growth)
        if scaling.cap is None:
            return (
                f"{self.name}: {service} declares no {MAX_CONSUMERS} limit, and Warden does"
                " not scale without a declared cap"
            )
        if scaling.current is None:
            return (
                f"{self.name}: the number of consumers of {service} is unknown (no"
                f" {self.consumers_metric!r} metric sampled and no {DESIRED_CONSUMERS}"
                " declared)"
            )
        if scaling.target is None:
            return (
                f"{self.name}: {service} already runs {scaling.current} consumers, at or"
                f" above its {MAX_CONSUMERS} of {scaling.cap}: scaling further is not allowed"
            )
        return ""

    # -- the rule ----------------------------------------------------------------------

    def _growth(self, signals: Signals) -> _Growth | None:
        series = signals.series(self.metric)
        if not series or series[-1].value <= self.threshold:
            return None
        start = len(series) - 1
        while start > 0 and series[start - 1].value < series[start].value:
            start -= 1
        growth = _Growth(series[start:])
        return growth if growth.increases >= self.min_increases else None

    def _scaling(self, service: str, world: World, growth: _Growth) -> _Scaling:
        signals = world.signals_of(service)
        sampled = signals.series(self.consumers_metric)
        current: int | None
        if sampled and sampled[-1].value >= 1:
            current, source = round(sampled[-1].value), sampled[-1].event_id
        else:
            current, source = _whole(world.limit(service, DESIRED_CONSUMERS)), DESIRED_CONSUMERS
        cap = _whole(world.limit(service, MAX_CONSUMERS))
        if current is None or cap is None:
            return _Scaling(current, source, cap, None, None)
        ceiling = math.ceil(current * self.max_scale_factor)
        if math.isinf(growth.relative):
            wanted = ceiling
        else:
            wanted = min(ceiling, math.ceil(current * (1.0 + growth.relative)))
        wanted = max(current + 1, wanted)
        target = min(wanted, cap)
        return _Scaling(current, source, cap, wanted, target if target > current else None)

    def _confidence(self, growth: _Growth, scaling: _Scaling) -> float:
        score = 0.7
        # Every increase past the minimum makes a passing burst less likely.
        score += min(0.15, 0.05 * (growth.increases - self.min_increases))
        if scaling.source != DESIRED_CONSUMERS:
            score += 0.05  # the consumer count was measured, not assumed
        if growth.run[-1].value >= 2 * self.threshold:
            score += 0.05  # far past the threshold, not hovering at it
        if scaling.capped:
            score -= 0.05  # the cap leaves the cure possibly too weak
        return round(min(0.95, max(0.0, score)), 2)


def _share(relative: float) -> str:
    return "from zero" if math.isinf(relative) else f"by {relative * 100:.0f}%"
