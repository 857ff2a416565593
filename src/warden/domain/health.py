"""Observed health of services, folded from probe events. Pure core (domain)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from warden.domain import events as ev

EVIDENCE_KEPT = 20
SUCCESSES_KEPT = 5


@dataclass(frozen=True, slots=True)
class Health:
    """What the probes say about one service."""

    service: str
    consecutive_failures: int = 0
    failing_since: str = ""
    evidence: tuple[str, ...] = ()
    last_error: str = ""
    last_success_at: str = ""
    last_seen_at: str = ""
    healthy_since: str = ""  # the first success of the current run of successes
    successes: tuple[str, ...] = ()  # ids of the latest successes of that run

    @property
    def healthy(self) -> bool:
        """True while the latest probe passed (or none failed yet)."""
        return self.consecutive_failures == 0


def observe(health: Health, event: ev.Event) -> Health:
    """Fold one probe event into a service's health."""
    if event.type == ev.PROBE_FAILED:
        return replace(
            health,
            consecutive_failures=health.consecutive_failures + 1,
            failing_since=health.failing_since or event.time,
            evidence=(*health.evidence, event.id)[-EVIDENCE_KEPT:],
            last_error=str(event.data.get("error", "")),
            last_seen_at=event.time,
            healthy_since="",
            successes=(),
        )
    if event.type == ev.PROBE_SUCCEEDED:
        return replace(
            health,
            consecutive_failures=0,
            failing_since="",
            evidence=(),
            last_error="",
            last_success_at=event.time,
            last_seen_at=event.time,
            healthy_since=(
                health.healthy_since
                if health.healthy_since and health.consecutive_failures == 0
                else event.time
            ),
            successes=(*health.successes, event.id)[-SUCCESSES_KEPT:],
        )
    return health
