"""Evidence rules: what a failure says about its cause, over the topology. Pure core (domain).

A failed probe's kind names its cause (:class:`warden.domain.health.Cause`, the one
taxonomy): the process exited (refused, reset) or hangs while alive (connected, no answer)
point at the process; a connect timeout, a DNS or TLS failure, HTTP 401/403/404 point at
the path; 502/503/504 at something behind the service; 429/507 at exhausted capacity. A
service whose dependency fails (its probes, or a
saturated resource) is starved, not broken; the root candidate of a cascade is the deepest
failing dependency. :func:`restart_blockers` is the rule every restart must pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from statistics import median
from typing import TYPE_CHECKING

from warden.domain import health, relapse
from warden.domain.events import parse_time
from warden.domain.health import PROCESS_CAUSES, Cause
from warden.domain.identity_memo import by_identity

if TYPE_CHECKING:
    from warden.domain.changes import Change
    from warden.domain.health import Health
    from warden.domain.plans import Step
    from warden.domain.signals import Sample, Signals
    from warden.domain.world import World

DEFAULT_FAILURE_THRESHOLD = 3
SATURATED = 0.9  # a utilisation at or above this fraction of its ceiling
EXHAUSTED = 0.98  # ... and at this one nothing is left
DEFAULT_ERROR_RATE = 0.05
# A dependency that recovered this recently still explains its caller's failure: the
# caller has not been probed enough since to show a failure of its own.
RECOVERY_GRACE_S = 30.0
PAGE_SEVERITIES = frozenset({"critical", "page", "error", "high", ""})
RESTARTS = frozenset({"restart_service", "start_service"})
# Metric names that measure how full a resource is (the USE method's saturation), as
# fractions of its capacity: bucket_used_ratio, disk_io_util, cpu_utilisation, ...
_SATURATION_WORDS = ("util", "used", "usage", "saturation", "full")
_NOT_SATURATION_WORDS = ("error", "fail", "loss", "drop", "hit", "success")


def classify(error: str) -> Cause:
    """What a probe's error text points at, for a failure recorded without its kind."""
    status = health.status_in(error)
    return health.cause(health.failure_kind(error, status), status)


@lru_cache(maxsize=4096)
def is_saturation_metric(name: str) -> bool:
    """Whether a metric measures how full a resource is, as a fraction of its capacity."""
    lowered = name.lower()
    return any(w in lowered for w in _SATURATION_WORDS) and not any(
        w in lowered for w in _NOT_SATURATION_WORDS
    )


@dataclass(frozen=True, slots=True)
class Saturation:
    """A resource of a service at or near its ceiling."""

    service: str
    metric: str
    value: float
    baseline: float | None
    sample: Sample

    @property
    def exhausted(self) -> bool:
        """Nothing is left: a restart frees none of it."""
        return self.value >= EXHAUSTED

    def describe(self) -> str:
        """One line a human reads."""
        was = f", baseline {self.baseline:.0%}" if self.baseline is not None else ""
        return f"{self.service} {self.metric} at {self.value:.0%}{was}"


@by_identity()
def saturation(signals: Signals) -> Saturation | None:
    """The fullest saturation metric of a service at or above :data:`SATURATED`, if any.

    Remembered while the service's signals are the same object.
    """
    found: Saturation | None = None
    for name, samples in signals.metrics:
        if not samples or not is_saturation_metric(name):
            continue
        latest = samples[-1]
        if not SATURATED <= latest.value <= 1.0:
            continue
        earlier = [s.value for s in samples[:-1] if s.value < SATURATED]
        baseline = median(earlier) if earlier else None
        if found is None or latest.value > found.value:
            found = Saturation(signals.service, name, latest.value, baseline, latest)
    return found


BACKLOG = "backlog"
STALLED_SAMPLES = 3


def stalled(signals: Signals, metric: str = BACKLOG) -> bool:
    """Whether the work the service consumes piles up: its last samples never fall, and rise."""
    series = signals.series(metric)[-STALLED_SAMPLES:]
    return (
        len(series) == STALLED_SAMPLES
        and all(a.value <= b.value for a, b in pairwise(series))
        and series[-1].value > series[0].value
    )


def failing(service: str, world: World, threshold: int = DEFAULT_FAILURE_THRESHOLD) -> bool:
    """Whether the service failed at least ``threshold`` probes in a row."""
    seen = world.health.get(service)
    return seen is not None and seen.consecutive_failures >= threshold


def cause_of(service: str, world: World) -> Cause:
    """What the latest failed probe of ``service`` points at (UNKNOWN when it is healthy)."""
    seen = world.health.get(service)
    if seen is None or seen.healthy:
        return Cause.UNKNOWN
    return seen.cause


def troubled(
    service: str, world: World, threshold: int = DEFAULT_FAILURE_THRESHOLD, since: str = ""
) -> str:
    """Why ``service`` is failing with evidence ("" when nothing says so).

    With ``since`` (when a caller began to fail), a failure that overlapped it counts
    too: a dependency that recovered after the caller began to fail, or a resource
    saturated at any sample since, still explains the caller's failure until the caller
    is probed again.
    """
    seen = world.health.get(service)
    if seen is not None and seen.consecutive_failures >= threshold:
        return (
            f"{service} failed {seen.consecutive_failures} probes in a row since"
            f" {seen.failing_since} ({seen.last_error or 'no error text'})"
        )
    signals = world.signals_of(service)
    full = saturation(signals)
    if full is not None:
        return full.describe()
    if not since:
        return ""
    began = parse_time(since)

    def lately(stamp: str) -> bool:
        moment = parse_time(stamp)
        return moment >= began and (world.now - moment).total_seconds() <= RECOVERY_GRACE_S

    if seen is not None and seen.healthy_since and lately(seen.healthy_since):
        return f"{service} failed until {seen.healthy_since}, after its caller began to fail"
    for name, samples in signals.metrics:
        if not is_saturation_metric(name):
            continue
        for sample in samples:
            if SATURATED <= sample.value <= 1.0 and lately(sample.time):
                return f"{service} {name} was at {sample.value:.0%} at {sample.time}"
    return ""


def upstream(
    service: str, world: World, threshold: int = DEFAULT_FAILURE_THRESHOLD
) -> tuple[str, ...]:
    """The chain of failing dependencies below ``service``, down to the deepest (the root).

    Empty when no dependency fails with evidence. Among several failing dependencies the
    one with the longest failing chain below it is followed, then the first by name. While
    ``service`` fails, a dependency whose trouble overlapped its failure counts too.
    """
    seen = world.health.get(service)
    since = seen.failing_since if seen is not None and not seen.healthy else ""
    best: tuple[str, ...] = ()

    def walk(node: str, path: tuple[str, ...]) -> None:
        nonlocal best
        below = [
            d
            for d in sorted(world.depends_on.get(node, ()))
            if d not in path and d != service and troubled(d, world, threshold, since)
        ]
        if not below and len(path) > len(best):
            best = path
        for dependency in below:
            walk(dependency, (*path, dependency))

    walk(service, ())
    return best


def callers(service: str, world: World) -> tuple[str, ...]:
    """Every service that depends on ``service``, directly or not, sorted."""
    found: set[str] = set()
    frontier = [service]
    while frontier:
        node = frontier.pop()
        for caller, deps in world.depends_on.items():
            if node in deps and caller not in found and caller != service:
                found.add(caller)
                frontier.append(caller)
    return tuple(sorted(found))


def neighbourhood(service: str, world: World) -> tuple[str, ...]:
    """``service`` and every service it depends on, directly or not, in order of distance."""
    seen = [service]
    for node in seen:
        seen.extend(d for d in sorted(world.depends_on.get(node, ())) if d not in seen)
    return tuple(seen)


def error_run(signals: Signals, limit: float, metric: str = "error_rate") -> tuple[Sample, ...]:
    """The latest unbroken run of samples above ``limit`` (empty when the last is below)."""
    series = signals.series(metric)
    start = len(series)
    while start > 0 and series[start - 1].value > limit:
        start -= 1
    return tuple(series[start:])


def error_limit(world: World, service: str, default: float = DEFAULT_ERROR_RATE) -> float:
    """The service's declared ``error_rate_slo``, else ``default``."""
    return _error_limit(world.limit(service, "error_rate_slo"), default)


def _error_limit(declared: str | None, default: float) -> float:
    try:
        value = float(declared) if declared is not None else default
    except ValueError:
        value = default
    return value if 0.0 < value <= 1.0 else default


@dataclass(frozen=True, slots=True)
class Symptom:
    """What is wrong with one service now, since when, and the events that show it."""

    service: str
    since: str
    description: str
    evidence: tuple[str, ...]
    cause: Cause


def symptom(
    service: str,
    world: World,
    threshold: int = DEFAULT_FAILURE_THRESHOLD,
    min_samples: int = 2,
) -> Symptom | None:
    """The service's failing probes, error rate above its limit, or firing page alerts."""
    return _symptom(
        service,
        world.health.get(service),
        world.signals_of(service),
        world.limits.get(service, ()),
        threshold,
        min_samples,
    )


@by_identity()
def _symptom(
    service: str,
    seen: Health | None,
    signals: Signals,
    limits: tuple[tuple[str, str], ...],
    threshold: int,
    min_samples: int,
) -> Symptom | None:
    """:func:`symptom` of what it reads, remembered while those are the same objects."""
    limit = _error_limit(dict(limits).get("error_rate_slo"), DEFAULT_ERROR_RATE)
    parts: list[tuple[str, str, tuple[str, ...], Cause]] = []
    if seen is not None and seen.consecutive_failures >= threshold:
        parts.append(
            (
                seen.failing_since,
                f"{service} failed {seen.consecutive_failures} probes in a row since"
                f" {seen.failing_since} ({seen.last_error or 'no error text'})",
                seen.evidence,
                seen.cause,
            )
        )
    run = error_run(signals, limit)
    if len(run) >= min_samples:
        parts.append(
            (
                run[0].time,
                f"{service} error rate at {run[-1].value:.1%} since {run[0].time}"
                f" (limit {limit:.1%})",
                tuple(s.event_id for s in run),
                Cause.ERRORS,
            )
        )
    alerts = [a for a in signals.alerts if a.severity.lower() in PAGE_SEVERITIES]
    if alerts:
        first = min(alerts, key=lambda a: parse_time(a.started_at))
        names = ", ".join(sorted({a.alertname for a in alerts}))
        parts.append(
            (
                first.started_at,
                f"{service}: alert {names} firing"
                + (f" ({first.summary})" if first.summary else ""),
                tuple(a.event_id for a in alerts),
                Cause.UNKNOWN,
            )
        )
    if not parts:
        return None
    parts.sort(key=lambda p: parse_time(p[0]))
    evidence: list[str] = []
    for part in parts:
        evidence.extend(i for i in part[2] if i not in evidence)
    cause = next((p[3] for p in parts if p[3] is not Cause.UNKNOWN), Cause.UNKNOWN)
    return Symptom(service, parts[0][0], "; ".join(p[1] for p in parts), tuple(evidence), cause)


def suspects(
    service: str, world: World, onset: str, window_s: float, *, scope: tuple[str, ...] = ()
) -> tuple[Change, ...]:
    """Changes in the service's neighbourhood at most ``window_s`` before ``onset``.

    Newest first; a change made after the symptom began cannot have caused it.
    """
    if not onset:
        return ()
    began = parse_time(onset)
    services = scope or neighbourhood(service, world)
    found = [
        c
        for c in world.changes.about(services)
        if 0.0 <= (began - parse_time(c.time)).total_seconds() <= window_s
    ]
    return tuple(sorted(found, key=lambda c: parse_time(c.time), reverse=True))


def restart_blockers(
    service: str,
    world: World,
    threshold: int = DEFAULT_FAILURE_THRESHOLD,
    relapse_window_s: float = relapse.DEFAULT_RELAPSE_WINDOW_S,
) -> tuple[str, ...]:
    """Why a restart of ``service`` is not warranted (empty when the evidence allows it).

    A restart needs a failing service whose probe points at the process (it exited, or
    hangs while alive), no failing dependency that explains the failure, no exhausted
    resource (a restart frees none), and no restart that already failed to hold.
    """
    seen = world.health.get(service)
    if seen is None:
        return (f"{service} was never probed: no evidence that its process is the cause",)
    if seen.healthy:
        return (f"{service} answers its probe: nothing to restart",)
    reasons: list[str] = []
    cause = seen.cause
    if cause is Cause.SLOW and stalled(world.signals_of(service)):
        cause = Cause.HUNG  # alive, answering slowly, and its own work makes no progress
    if cause not in PROCESS_CAUSES:
        reasons.append(
            f"{service} fails with {seen.last_error or 'no error text'}, which points at"
            f" {_POINTS_AT[cause]}, not at its process"
        )
    chain = upstream(service, world, threshold)
    if chain:
        root = chain[-1]
        why = troubled(root, world, threshold, seen.failing_since)
        reasons.append(
            f"{service} depends on {' -> '.join(chain)}, and {why}: {service} is starved,"
            " not broken"
        )
    full = saturation(world.signals_of(service))
    if full is not None and full.exhausted:
        reasons.append(f"{full.describe()}: a restart frees none of it")
    earlier = [
        r
        for r in relapse.before(world.remedies, service, seen.failing_since, relapse_window_s)
        if r.action in RESTARTS
    ]
    if earlier:
        last = earlier[-1]
        reasons.append(
            f"{service} was restarted at {last.at} (incident {last.incident_id}) and fails"
            f" again since {seen.failing_since}: a restart does not hold, it is a loop"
        )
    return tuple(reasons)


_POINTS_AT = {
    Cause.EXITED: "the process",
    Cause.HUNG: "the process",
    Cause.PATH: "the network path to it (timeout, DNS, TLS, access or routing)",
    Cause.UPSTREAM: "something behind it",
    Cause.ERRORS: "its code, configuration or data",
    Cause.SLOW: "saturation or a slow dependency",
    Cause.CAPACITY: "exhausted capacity",
    Cause.UNKNOWN: "no known cause",
}


def step_blockers(
    step: Step,
    world: World,
    threshold: int = DEFAULT_FAILURE_THRESHOLD,
    relapse_window_s: float = relapse.DEFAULT_RELAPSE_WINDOW_S,
) -> tuple[str, ...]:
    """Why the evidence does not support ``step`` (empty when it does), whoever proposed it."""
    if step.action in RESTARTS:
        return restart_blockers(step.target, world, threshold, relapse_window_s)
    return ()


__all__ = [
    "EXHAUSTED",
    "PROCESS_CAUSES",
    "SATURATED",
    "Cause",
    "Saturation",
    "Symptom",
    "callers",
    "cause_of",
    "classify",
    "error_limit",
    "error_run",
    "failing",
    "is_saturation_metric",
    "neighbourhood",
    "restart_blockers",
    "saturation",
    "stalled",
    "step_blockers",
    "suspects",
    "symptom",
    "troubled",
    "upstream",
]
