"""What the API and the console show: incidents, pending approvals, controls, as JSON. Edge (API).

Plain functions from the store's folds to JSON-ready dicts, shared by the JSON routes and
the console's templates, so both show the same thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warden.demo.timeline import describe
from warden.domain import control as control_fold
from warden.domain import events as ev
from warden.domain.ids import incident_stream
from warden.domain.incident import State, fold_all
from warden.governance.approvals import tally
from warden.governance.identity import approval_payload
from warden.operations import users
from warden.runtime import load_incidents

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from warden.api.context import ApiContext
    from warden.domain.incident import Incident
    from warden.ports import EventStore

__all__ = [
    "controls",
    "find_incident",
    "history",
    "incident_detail",
    "incident_summary",
    "pending_approvals",
    "timeline",
]


def incident_summary(incident: Incident) -> dict[str, Any]:
    """One incident in a list: id, service, state, times, summary."""
    return {
        "id": incident.id,
        "service": incident.service,
        "state": incident.state.value,
        "severity": incident.severity,
        "kind": incident.kind,
        "summary": incident.summary,
        "opened_at": incident.opened_at,
        "first_signal_at": incident.first_signal_at,
        "closed_at": incident.closed_at,
        "close_reason": incident.close_reason,
        "detected_by": incident.detected_by,
        "agent": incident.plan.agent if incident.plan is not None else "",
    }


def incident_detail(ctx: ApiContext, incident: Incident) -> dict[str, Any]:
    """One incident in full: its plan, each step's hash, decision with reasons, approvals."""
    plan = incident.plan
    steps = []
    for index, hash_ in enumerate(incident.step_hashes):
        decision = incident.decision_for(hash_)
        step = plan.steps[index] if plan is not None and index < len(plan.steps) else None
        steps.append(
            {
                "index": index,
                "step_hash": hash_,
                "action": step.action if step else "",
                "target": step.target if step else "",
                "params": dict(step.params) if step else {},
                "decision": decision.to_dict() if decision is not None else None,
                "approvals": [_approval_view(a) for a in incident.approvals_of(hash_)],
                "rejections": [_approval_view(a) for a in incident.rejections_of(hash_)],
                "succeeded": index in incident.succeeded,
            }
        )
    return {
        **incident_summary(incident),
        "evidence": list(incident.evidence_ids),
        "correlation_id": incident.correlation_id,
        "plan": plan.to_dict() if plan is not None else None,
        "steps": steps,
        "next_step": incident.next_step,
        "verified_at": incident.verified_at,
        "notes": list(incident.notes),
        "pending": _pending(ctx, incident),
    }


def _approval_view(data: dict[str, str]) -> dict[str, str]:
    keep = ("approver", "decision", "signed_at", "key", "reason")
    return {k: data.get(k, "") for k in keep}


def find_incident(store: EventStore, prefix: str) -> Incident | None:
    """The one incident whose id starts with ``prefix`` (the whole id is fastest)."""
    if len(prefix) >= 8:
        events = store.read_stream(incident_stream(prefix))
        if events:
            return fold_all(events).get(prefix)
    matches = [i for i in load_incidents(store).values() if i.id.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


def timeline(store: EventStore, incident: Incident) -> list[dict[str, Any]]:
    """The incident's events, oldest first, each with a label and a line of text."""
    out = []
    for event in store.read_stream(incident_stream(incident.id)):
        shown = describe(event)
        out.append(
            {
                "position": event.position,
                "time": event.time,
                "type": event.type,
                "label": shown[0] if shown else "",
                "text": shown[1] if shown else event.type,
                "data": event.data,
            }
        )
    return out


def _pending(ctx: ApiContext, incident: Incident) -> dict[str, Any] | None:
    """The approval an incident awaits: step, hash, reasons, quorum, expiry; None if none."""
    if incident.state is not State.AWAITING_APPROVAL:
        return None
    hash_ = incident.step_hashes[incident.next_step]
    decision = incident.decision_for(hash_)
    if decision is None:
        return None
    agents = frozenset({incident.plan.agent}) if incident.plan is not None else frozenset()
    counted = tally(incident, decision, ctx.approvals, agents, users=users(ctx.store))
    step = incident.plan.steps[incident.next_step] if incident.plan is not None else None
    expires_at = next((e for h, e in incident.approval_requests if h == hash_), "")
    return {
        "incident_id": incident.id,
        "service": incident.service,
        "summary": incident.summary,
        "step_index": incident.next_step,
        "step_hash": hash_,
        "action": step.action if step else "",
        "target": step.target if step else "",
        "params": dict(step.params) if step else {},
        "rationale": incident.plan.rationale if incident.plan is not None else "",
        "confidence": incident.plan.confidence if incident.plan is not None else 0.0,
        "agent": incident.plan.agent if incident.plan is not None else "",
        "reasons": [r.to_dict() for r in decision.reasons],
        "roles": list(decision.approver_roles),
        "needed": counted.needed,
        "counted": list(counted.counted),
        "rejected": list(counted.rejected),
        "ignored": [{"approver": who, "why": why} for who, why in counted.ignored],
        "expires_at": expires_at,
    }


def pending_approvals(ctx: ApiContext) -> list[dict[str, Any]]:
    """Every approval awaited now, oldest incident first."""
    found = load_incidents(ctx.store).values()
    waiting = [i for i in found if i.state is State.AWAITING_APPROVAL]
    return [p for i in sorted(waiting, key=lambda i: i.opened_at) if (p := _pending(ctx, i))]


def signing_payload(
    name: str, incident: Incident, decision: str, signed_at: str, nonce: str, reason: str
) -> dict[str, str]:
    """What a person signs to approve or reject the step ``incident`` awaits now."""
    hash_ = incident.step_hashes[incident.next_step]
    payload = approval_payload(name, incident.id, hash_, decision, signed_at, nonce, reason)
    return {
        "incident_id": incident.id,
        "step_hash": hash_,
        "approver": name,
        "decision": decision,
        "signed_at": signed_at,
        "nonce": nonce,
        "reason": reason,
        "payload": payload.decode("utf-8"),
    }


def controls(ctx: ApiContext) -> dict[str, Any]:
    """The kill switches and autonomy rules in force, folded from the control stream."""
    state = control_fold.Controls()
    for event in ctx.store.read_stream(ev.CONTROL_STREAM):
        state = control_fold.observe(state, event)
    return {
        "kill_switch": {
            "engaged": state.kill_switch,
            "by": state.set_by,
            "reason": state.reason,
            "since": state.since,
            "domains": [{"domain": d, "reason": r} for d, r in state.killed_domains],
        },
        "autonomy": {
            "environment": ctx.environment,
            "default": ctx.default_autonomy,
            "rules": [
                {"environment": r.environment, "domain": r.domain, "level": r.level}
                for r in state.autonomy
            ],
        },
        "policy_version": state.policy_version,
    }


def history(store: EventStore, page: int = 1000) -> Iterator[ev.Event]:
    """Every event of the log in order, read a page at a time."""
    position = 0
    while True:
        found = store.read_all(position, limit=page)
        yield from found
        if len(found) < page:
            return
        position = found[-1].position


def kpi_summary(rows: list[tuple[str, str, str]]) -> list[dict[str, str]]:
    """KPI rows (name, value, detail) as JSON."""
    return [{"name": n, "value": v, "detail": d} for n, v, d in rows]


def moment_text(moment: datetime | None) -> str:
    """An aware datetime as RFC 3339, or ""."""
    return ev.format_time(moment) if moment is not None else ""
