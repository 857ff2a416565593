"""Rule agent: a deploy followed by a jump in error rate is rolled back. Decisioning plane.

A deploy is bad when, within a window after the version change, the error rate rises above
an absolute threshold and a multiple of the pre-deploy baseline, and stays there: the
latest ``min_samples`` samples or more are all above that limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from statistics import median
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain.events import parse_time
from warden.domain.identity_memo import by_identity
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.signals import Deploy, Sample, Signals
    from warden.domain.world import World

SLO_LIMIT = "error_rate_slo"


@dataclass(frozen=True, slots=True)
class _Regression:
    """What the agent found after the latest deploy of one service."""

    deploy: Deploy
    previous: str
    threshold: float
    baseline: float | None
    limit: float
    bad: tuple[Sample, ...]
    last_good: str
    last_good_checked: bool


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class BadDeployAgent:
    """Rolls a service back to its last good version when a deploy raised its error rate.

    Error rates are fractions (0.05 is 5%). The threshold is the service's declared
    ``error_rate_slo`` limit (the level verification checks), else ``error_rate_threshold``;
    the limit is that threshold, raised to ``baseline_factor`` times the pre-deploy baseline
    (the median of the last ``baseline_samples`` samples before the deploy) when higher.
    """

    error_rate_threshold: float = 0.05
    baseline_factor: float = 3.0
    window_s: float = 900.0
    min_samples: int = 2
    baseline_samples: int = 5
    metric: str = "error_rate"
    name: str = "bad-deploy"
    handles: frozenset[str] = frozenset({"bad_deploy"})
    priority: int = 60
    evidence_needed: tuple[str, ...] = (
        "an error rate above the SLO and baseline_factor times the pre-deploy baseline,"
        " within window_s after a deploy, for min_samples samples",
        "an earlier version to roll back to",
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.error_rate_threshold <= 1.0:
            raise ValueError("error_rate_threshold must be a fraction in (0, 1]")
        if self.baseline_factor < 1.0:
            raise ValueError("baseline_factor must be at least 1")
        if self.window_s <= 0:
            raise ValueError("window_s must be positive")
        if self.min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        if self.baseline_samples < 1:
            raise ValueError("baseline_samples must be at least 1")

    def detect(self, world: World) -> list[Detection]:
        """Services whose error rate rose past the limit after their latest deploy."""
        found = []
        for service in sorted(world.signals):
            regression = self._assess(world, service)
            if regression is None:
                continue
            latest = regression.bad[-1].value
            found.append(
                Detection(
                    service=service,
                    summary=(
                        f"{service} error rate at {_pct(latest)} since the deploy of"
                        f" {regression.deploy.version} at {regression.deploy.time}"
                        f" (limit {_pct(regression.limit)})"
                    ),
                    first_signal_at=regression.bad[0].time,
                    evidence=self._evidence(regression),
                    kind="bad_deploy",
                )
            )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Roll back to the last good version while the error rate is still too high."""
        regression = self._assess(world, incident.service)
        if regression is None or not regression.last_good:
            return None
        service = incident.service
        deploy = regression.deploy
        baseline = (
            f"{self.baseline_factor:g}x the pre-deploy baseline of {_pct(regression.baseline)}"
            if regression.baseline is not None
            else "no pre-deploy baseline was sampled"
        )
        checked = (
            "which ran with its error rate under the threshold"
            if regression.last_good_checked
            else "whose error rate was never sampled"
        )
        return Plan(
            agent=self.name,
            steps=(Step("rollback_deploy", service, (("version", regression.last_good),)),),
            rationale=(
                f"{service} changed from {regression.previous or 'an unknown version'} to"
                f" {deploy.version} at {deploy.time} (event {deploy.event_id}); within"
                f" {self.window_s:g} s its {self.metric} rose to"
                f" {_pct(regression.bad[-1].value)} over {len(regression.bad)} samples since"
                f" {regression.bad[0].time}, above the limit of {_pct(regression.limit)}"
                f" ({_pct(regression.threshold)}; {baseline}); the error rate is still"
                f" high, so the deploy is the likely cause and {regression.last_good}, the"
                f" last version before it {checked}, is deployed again"
            ),
            evidence=self._evidence(regression),
            confidence=self._confidence(regression),
            expected_outcome=(
                f"{service} runs {regression.last_good} and its {self.metric} falls below"
                f" {_pct(regression.limit)}"
                + (
                    f", back towards {_pct(regression.baseline)}"
                    if regression.baseline is not None
                    else ""
                )
            ),
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        signals = world.signals_of(incident.service)
        regression = self._assess(world, incident.service)
        if regression is None:
            return (
                f"{self.name}: the {self.metric} of {incident.service} is not above the limit"
                f" after its latest deploy ({signals.version or 'no deploy seen'}) any more"
            )
        if not regression.last_good:
            return (
                f"{self.name}: no earlier version of {incident.service} than"
                f" {regression.deploy.version} is known, so there is nothing to roll back to"
            )
        return ""

    # -- the rule ----------------------------------------------------------------------

    def _threshold(self, limits: tuple[tuple[str, str], ...]) -> float:
        """The service's declared ``error_rate_slo`` (what verification checks), else ours."""
        declared = dict(limits).get(SLO_LIMIT)
        try:
            slo = float(declared) if declared is not None else None
        except ValueError:
            slo = None
        return slo if slo is not None and 0.0 < slo <= 1.0 else self.error_rate_threshold

    def _assess(self, world: World, service: str) -> _Regression | None:
        return _regression(self, world.signals_of(service), world.limits.get(service, ()))

    def _judge(self, signals: Signals, limits: tuple[tuple[str, str], ...]) -> _Regression | None:
        """:meth:`_assess` of one service's signals and declared limits (not of the time)."""
        if not signals.deploys:
            return None
        deploy = signals.deploys[-1]
        deployed_at = parse_time(deploy.time)
        before: list[Sample] = []
        after: list[Sample] = []
        for sample in signals.series(self.metric):
            (before if parse_time(sample.time) < deployed_at else after).append(sample)
        threshold = self._threshold(limits)
        # The limit is never below the threshold: when the latest sample is not above the
        # threshold there is no run of bad samples, so skip the baseline (asked every round).
        if not after or after[-1].value <= threshold:
            return None
        kept = before[-self.baseline_samples :]
        baseline = median(s.value for s in kept) if kept else None
        limit = threshold
        if baseline is not None:
            limit = max(limit, self.baseline_factor * baseline)
        # The current run of samples above the limit: a dip below it ends a run, so
        # errors that come back after a recovery are a new fault, with a new first signal.
        start = len(after)
        while start > 0 and after[start - 1].value > limit:
            start -= 1
        bad = tuple(after[start:])
        onset = next((s for s in after if s.value > limit), None)
        window_end = deployed_at + timedelta(seconds=self.window_s)
        if (
            len(bad) < self.min_samples  # also: the errors went away, nothing to roll back
            or onset is None
            or parse_time(onset.time) > window_end  # errors began too late to blame the deploy
        ):
            return None
        last_good, checked = self._last_good(signals, deploy.version, threshold)
        previous = signals.deploys[-2].version if len(signals.deploys) > 1 else ""
        return _Regression(deploy, previous, threshold, baseline, limit, bad, last_good, checked)

    def _last_good(self, signals: Signals, current: str, threshold: float) -> tuple[str, bool]:
        """The latest earlier version that did not run above the threshold.

        Returns the version and whether samples showed it healthy ("" when none is known).
        """
        timed = [(parse_time(s.time), s.value) for s in signals.series(self.metric)]
        deploys = signals.deploys
        for index in range(len(deploys) - 2, -1, -1):
            candidate = deploys[index]
            if candidate.version == current:
                continue
            start = parse_time(candidate.time)
            end = parse_time(deploys[index + 1].time)
            ran = [value for at, value in timed if start <= at < end]
            if not ran:
                return candidate.version, False
            if median(ran) <= threshold:
                return candidate.version, True
        return "", False

    def _evidence(self, regression: _Regression) -> tuple[str, ...]:
        return (regression.deploy.event_id, *(s.event_id for s in regression.bad))

    def _confidence(self, regression: _Regression) -> float:
        score = 0.6
        if regression.baseline is not None:
            score += 0.1  # a measured jump, not only an absolute level
        if regression.last_good_checked:
            score += 0.05  # the rollback target is known to have run well
        # Persistence: every bad sample past the minimum rules out a blip.
        score += min(0.09, 0.03 * (len(regression.bad) - self.min_samples))
        # Magnitude: how far the typical bad sample is above the limit.
        excess = median(s.value for s in regression.bad) / regression.limit - 1.0
        score += min(0.1, 0.05 * excess)
        return round(min(0.95, score), 2)


@by_identity()
def _regression(
    agent: BadDeployAgent, signals: Signals, limits: tuple[tuple[str, str], ...]
) -> _Regression | None:
    """:meth:`BadDeployAgent._judge`, remembered while the signals are the same object."""
    return agent._judge(signals, limits)
