"""Verification of a remediation's expected outcome, per kind of check. Pure core (domain).

Each catalog action names how its effect is verified; an incident is verified when every
check of its plan passes on signals that arrived after verification started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.events import parse_time

if TYPE_CHECKING:
    from datetime import datetime

    from warden.domain.world import World

DEFAULT_ERROR_RATE_SLO = 0.05
QUIET_PERIOD_S = 5.0
RECOVERY_QUIET_S = 15.0  # probes are not recorded while they pass: no failure this long


@dataclass(frozen=True, slots=True)
class Check:
    """The state of one verification."""

    kind: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Reads:
    """What one kind of check reads besides the time verification started.

    ``health`` and ``signals``: the service's health and signals; ``quiet_s``: the
    seconds after the start at which time alone can change the answer (0: never).
    Between two rounds where these stayed the same, the check answers the same, so a
    round need not ask again (see ``lifecycle.waits_on``). Kept in step with
    :func:`check`; test_verification_reads checks every kind against it.
    """

    health: bool
    signals: bool
    quiet_s: float = 0.0


READS = {
    "health_probe": Reads(health=True, signals=False),
    "stopped": Reads(health=True, signals=False),
    # Without error-rate samples it is the "recovered" check.
    "error_rate": Reads(health=True, signals=True, quiet_s=RECOVERY_QUIET_S),
    "backlog": Reads(health=False, signals=True),
    "batch": Reads(health=False, signals=True, quiet_s=QUIET_PERIOD_S),
    "recovered": Reads(health=True, signals=True, quiet_s=RECOVERY_QUIET_S),
    "drift": Reads(health=False, signals=True),
}
UNKNOWN_READS = Reads(health=False, signals=False)  # an unknown kind never passes


def _after(time: str, started: datetime) -> bool:
    return bool(time) and parse_time(time) >= started


def check(kind: str, service: str, world: World, started: datetime) -> Check:
    """Whether the ``kind`` check of ``service`` passes on signals since ``started``."""
    signals = world.signals_of(service)
    if kind == "health_probe":
        seen = world.health.get(service)
        ok = seen is not None and seen.healthy and _after(seen.last_success_at, started)
        return Check(kind, ok, f"{service} answers its health probe" if ok else "not healthy yet")
    if kind == "stopped":
        seen = world.health.get(service)
        ok = seen is not None and not seen.healthy and _after(seen.last_seen_at, started)
        return Check(kind, ok, f"{service} no longer answers" if ok else "still answering")
    if kind == "error_rate":
        if not signals.series("error_rate"):
            # No error rate is sampled for this service: its probe is what can tell.
            return _recovered(service, world, started)
        slo = float(world.limit(service, "error_rate_slo") or DEFAULT_ERROR_RATE_SLO)
        fresh = [s for s in signals.series("error_rate") if _after(s.time, started)]
        if not fresh:
            return Check(kind, False, "no error-rate sample since acting")
        ok = fresh[-1].value <= slo
        return Check(kind, ok, f"error rate {fresh[-1].value:.1%} against SLO {slo:.1%}")
    if kind == "backlog":
        fresh = [s for s in signals.series("backlog") if _after(s.time, started)]
        if len(fresh) < 2:
            return Check(kind, False, "waiting for two backlog samples since acting")
        ok = fresh[-1].value <= fresh[-2].value
        return Check(kind, ok, f"backlog {fresh[-2].value:g} -> {fresh[-1].value:g}")
    if kind == "batch":
        newer = [b for b in signals.failed_batches if _after(b.time, started)]
        quiet = (world.now - started).total_seconds() >= QUIET_PERIOD_S
        ok = not newer and quiet
        detail = (
            f"{len(newer)} batches failed since acting"
            if newer
            else f"no failed batch for {QUIET_PERIOD_S:g} s"
        )
        return Check(kind, ok, detail)
    if kind == "recovered":
        return _recovered(service, world, started)
    if kind == "drift":
        ok = not signals.drift
        return Check(kind, ok, "observed state matches desired" if ok else "drift remains")
    return Check(kind, False, f"unknown verification {kind!r}")


def _recovered(service: str, world: World, started: datetime) -> Check:
    """The symptoms are gone: the probe passes, the error rate is within its SLO."""
    seen = world.health.get(service)
    if seen is not None and not seen.healthy:
        return Check("recovered", False, f"{service} still fails its probe ({seen.last_error})")
    waited = (world.now - started).total_seconds()
    if waited < RECOVERY_QUIET_S:
        return Check("recovered", False, f"watching {service} for {RECOVERY_QUIET_S:g} s")
    series = world.signals_of(service).series("error_rate")
    if series:
        slo = float(world.limit(service, "error_rate_slo") or DEFAULT_ERROR_RATE_SLO)
        fresh = [s for s in series if _after(s.time, started)]
        if not fresh:
            return Check("recovered", False, "no error-rate sample since acting")
        if fresh[-1].value > slo:
            return Check(
                "recovered", False, f"error rate {fresh[-1].value:.1%} above SLO {slo:.1%}"
            )
    return Check("recovered", True, f"{service} answers its probe and its errors are in bounds")
