"""What a page tells the human: facts, neighbours, changes, what was tried, a next step. Pure core.

Every escalation carries the same briefing, whoever writes it (the escalation agent when
no agent proposes, the lifecycle when a plan is denied, fails or does not verify): the
alerts firing, the health of the service and of its neighbours in the topology, the
recent changes, what was tried with its outcome, and the suggested next step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.domain.decisions import Outcome

if TYPE_CHECKING:
    from warden.domain.health import Health
    from warden.domain.incident import Incident
    from warden.domain.signals import Alert, Signals
    from warden.domain.world import World

__all__ = ["facts", "health_text", "next_step", "page", "tried"]


def _count(n: int, what: str, plural: str = "s") -> str:
    return f"{n} {what}{plural if n != 1 else ''}"


def health_text(service: str, seen: Health | None) -> str:
    """One service's probe state in words."""
    if seen is None or not seen.last_seen_at:
        return f"{service} was never probed"
    if seen.healthy:
        since = f" (last success {seen.last_success_at})" if seen.last_success_at else ""
        return f"{service} answers its probe{since}"
    return (
        f"{service} failed {seen.consecutive_failures} probes in a row since"
        f" {seen.failing_since} ({seen.last_error or 'no error text'})"
    )


def _alert(alert: Alert) -> str:
    shown = f"{alert.alertname or '(no alertname)'} since {alert.started_at}"
    if alert.summary:
        shown += f" ({alert.summary})"
    if alert.unmapped:
        shown += " labels {" + ", ".join(f'{k}="{v}"' for k, v in alert.labels) + "}"
    return shown


def _alerts(incident: Incident, world: World) -> list[Alert]:
    """The incident's own alerts and those on its service, still firing, oldest first."""
    ids = set(incident.evidence_ids)
    found = {a.event_id: a for a in world.signals_of(incident.service).alerts}
    for signals in world.signals.values():
        found.update((a.event_id, a) for a in signals.alerts if a.event_id in ids)
    return sorted(found.values(), key=lambda a: (a.started_at, a.event_id))


def _signals(signals: Signals) -> list[str]:
    parts = []
    if signals.deploys:
        before = f" (before: {signals.previous_version})" if signals.previous_version else ""
        parts.append(f"version {signals.version}{before}")
    for metric, samples in signals.metrics:
        parts.append(f"{metric} {samples[-1].value:g} ({_count(len(samples), 'sample')})")
    if signals.failed_batches:
        pipelines = ", ".join(sorted({b.pipeline for b in signals.failed_batches}))
        failed = _count(len(signals.failed_batches), "failed batch", "es")
        parts.append(f"{failed} ({pipelines})")
    for drift in signals.drift:
        parts.append(f"drift: {drift.field} is {drift.observed}, desired {drift.desired}")
    for alert in signals.alerts:
        parts.append(f"alert {alert.alertname} firing")
    return parts


def _evidence(seen: Health | None, signals: Signals) -> str:
    counts = (
        (len(seen.evidence) if seen else 0, "failed probe"),
        (len(signals.alerts), "firing alert"),
        (len(signals.deploys), "deploy"),
        (sum(len(s) for _, s in signals.metrics), "metric sample"),
        (len(signals.failed_batches), "failed batch report"),
        (len(signals.drift), "drift report"),
    )
    shown = [_count(n, what, "es" if what.endswith("batch") else "s") for n, what in counts if n]
    return ", ".join(shown) or "no events about the service"


def _neighbour(service: str, world: World) -> str:
    text = health_text(service, world.health.get(service))
    firing = sorted({a.alertname for a in world.signals_of(service).alerts})
    return text + (f", alerts {', '.join(firing)} firing" if firing else "")


def _callers(service: str, world: World) -> list[str]:
    return sorted(s for s, deps in world.depends_on.items() if service in deps)


def _changes(incident: Incident, world: World) -> list[str]:
    """Deploys and drift on the service and its dependencies, latest first."""
    found = []
    for service in (incident.service, *sorted(world.depends_on.get(incident.service, ()))):
        signals = world.signals_of(service)
        if signals.deploys:
            deploy = signals.deploys[-1]
            was = f" (was {signals.previous_version})" if signals.previous_version else ""
            found.append(
                (deploy.time, f"{service} deployed {deploy.version}{was} at {deploy.time}")
            )
        for drift in signals.drift:
            found.append(
                (
                    drift.since,
                    f"{service} {drift.field} changed to {drift.observed} at {drift.since}",
                )
            )
    return [text for _, text in sorted(found, reverse=True)]


def tried(incident: Incident) -> str:
    """What Warden tried for the incident, step by step, with the outcome of each."""
    if incident.plan is None:
        return "nothing yet"
    done = []
    for index, step in enumerate(incident.plan.steps):
        what = f"{step.action} on {step.target}"
        decision = (
            incident.decision_for(incident.step_hashes[index])
            if index < len(incident.step_hashes)
            else None
        )
        if index in incident.compensated:
            done.append(f"{what}: ran, then undone")
        elif index in incident.succeeded:
            done.append(f"{what}: ran")
        elif incident.last_failure(index) is not None:
            done.append(f"{what}: failed after {_count(incident.attempts(index), 'attempt')}")
        elif decision is not None and decision.outcome is Outcome.DENY:
            done.append(f"{what}: denied ({decision.describe()})")
        elif decision is not None and decision.outcome is Outcome.NEEDS_APPROVAL:
            done.append(f"{what}: waited for approval")
        else:
            done.append(f"{what}: not run")
    if incident.verification_started_at and not incident.verified_at:
        done.append("the service did not verify healthy after acting")
    return "; ".join(done)


def next_step(incident: Incident, world: World) -> str:
    """The step a person should take first, from what is known."""
    if incident.kind == "alert_unmapped":
        return (
            "map this alert to a service (alerts: rules, service_labels or namespaces in"
            " warden.yaml), then look at the service it is about"
        )
    deps = sorted(world.depends_on.get(incident.service, ()))
    failing = [d for d in deps if _failing(world.health.get(d))]
    if failing:
        them = "it and it fails" if len(failing) == 1 else "them and they fail"
        return f"start with {', '.join(failing)}: {incident.service} depends on {them}"
    signals = world.signals_of(incident.service)
    if signals.previous_version:
        return (
            f"if the trouble began with {signals.version}, roll {incident.service} back to"
            f" {signals.previous_version}"
        )
    if signals.drift:
        drift = signals.drift[-1]
        return f"restore {drift.field} of {incident.service} to {drift.desired}"
    if incident.plan is not None:
        step = incident.plan.steps[min(incident.next_step, len(incident.plan.steps) - 1)]
        if incident.verification_started_at and not incident.verified_at:
            return (
                f"{step.action} on {step.target} did not help: look for what changed on"
                f" {incident.service}, or for a cause upstream"
            )
        return f"decide on {step.action} on {step.target} yourself, or find the cause first"
    return f"look at {incident.service}'s logs and what changed before {incident.first_signal_at}"


def _failing(seen: Health | None) -> bool:
    return seen is not None and not seen.healthy


def facts(incident: Incident, world: World) -> list[str]:
    """The facts of a briefing, one ``label: text`` per line, the incident's own first."""
    service = incident.service
    seen = world.health.get(service)
    signals = world.signals_of(service)
    lines = [f"health: {health_text(service, seen)}"]
    alerts = _alerts(incident, world)
    lines.append(f"alerts firing: {'; '.join(map(_alert, alerts)) or 'none'}")
    deps = sorted(world.depends_on.get(service, ()))
    if deps:
        lines.append(f"dependencies: {'; '.join(_neighbour(d, world) for d in deps)}")
    callers = _callers(service, world)
    if callers:
        lines.append(f"callers: {'; '.join(_neighbour(c, world) for c in callers)}")
    lines.append(f"signals: {', '.join(_signals(signals)) or 'none'}")
    lines.append(f"recent changes: {'; '.join(_changes(incident, world)) or 'none recorded'}")
    lines.append(f"evidence now: {_evidence(seen, signals)}")
    lines.append(f"tried: {tried(incident)}")
    return lines


def page(incident: Incident, world: World, reason: str) -> str:
    """A whole page: why a human is needed, the facts, and the suggested next step."""
    return ". ".join([reason, *facts(incident, world), f"next step: {next_step(incident, world)}"])
