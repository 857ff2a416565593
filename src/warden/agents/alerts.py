"""Alert agent: an alert firing at its source opens an incident for its service. Decisioning.

It proposes nothing itself; agents that know the alert's cause may, and otherwise the
escalation agent pages a human with a summary. An alert on a service whose dependency
fails is a symptom of that cascade: the root's incident carries it, so one cascade pages
once; warning and info alerts alone are context, not a page. An alert that maps to several
services (a namespace rule) is detected once, on the first of them; one no rule maps opens
an ``alert_unmapped`` incident that pages with its labels. A resolved alert closes the
incident once all of its evidence cleared, or annotates it (see ``Runtime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain import evidence

if TYPE_CHECKING:
    from warden.domain.health import Health
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.signals import Alert
    from warden.domain.world import World

_SEVERITY = {"critical": "critical", "page": "critical", "warning": "minor", "info": "minor"}


def labels_text(alert: Alert) -> str:
    """An alert's labels as Alertmanager shows them: ``{alertname="X", job="y"}``."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in alert.labels) + "}"


@dataclass(frozen=True, slots=True)
class AlertAgent:
    """Opens one incident per service with firing alerts."""

    name: str = "alerts"
    handles: frozenset[str] = frozenset()
    priority: int = 0
    evidence_needed: tuple[str, ...] = (
        "a firing alert of page severity, or any alert on a failing service",
        "no failing dependency that explains it (then it is evidence of the root)",
    )

    def detect(self, world: World) -> list[Detection]:
        """Services with alerts firing, the earliest alert first."""
        found = []
        for service, signals in sorted(world.signals.items()):
            # A fan-out alert is detected on the first of its services only.
            alerts = sorted(
                (a for a in signals.alerts if not a.services or a.services[0] == service),
                key=lambda a: a.started_at,
            )
            if not alerts:
                continue
            if not alerts[0].unmapped:
                if not self._pages(tuple(alerts), world.health.get(service)):
                    continue
                if evidence.upstream(service, world, threshold=1):
                    continue  # a symptom of a failing dependency: evidence of the root's incident
            first = alerts[0]
            names = ", ".join(sorted({a.alertname for a in alerts}))
            if first.unmapped:
                summary = (
                    f"alert {first.alertname or '(no alertname)'} firing on no known service"
                    f" (labels {labels_text(first)})"
                )
            else:
                summary = f"{service}: alert {names} firing"
                shared = sorted({s for a in alerts for s in a.services if s != service})
                if shared:
                    summary += f" (also on {', '.join(shared)})"
            summary += f" ({first.summary})" if first.summary else ""
            found.append(
                Detection(
                    service=service,
                    summary=summary,
                    first_signal_at=first.started_at,
                    evidence=tuple(a.event_id for a in alerts),
                    severity=_SEVERITY.get(first.severity, "major"),
                    kind="alert_unmapped" if first.unmapped else "alert",
                )
            )
        return found

    @staticmethod
    def _pages(alerts: tuple[Alert, ...], health: Health | None) -> bool:
        """Whether the alerts call for an incident: one pages, or the service fails too.

        Warning and info alerts with nothing else wrong are context (shown with any
        incident of the service), not a page: a disk 78% full, a traffic spike.
        """
        if any(_SEVERITY.get(a.severity.lower(), "major") != "minor" for a in alerts):
            return True
        return health is not None and not health.healthy

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Nothing: the alert says something is wrong, not what to do."""
        return None
