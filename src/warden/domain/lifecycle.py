"""The incident lifecycle as a pure reconciler: what to do next, as commands. Pure core (domain).

:func:`next_commands` looks at one incident, what the loop folded from the log (a
:class:`View`) and the time, and returns the :class:`Command` s that move it on: append
these events, decide step i, run step i, run compensation j, ask the agents, probe a
service, hold or release leases. It reads no clock, does no I/O and starts no thread;
the runtime's interpreter carries the commands out and the results come back as events.
The rules are written down in docs/lifecycle.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from warden.domain import briefing, merging, verification
from warden.domain import events as ev
from warden.domain.commands import (
    Append,
    Command,
    Decide,
    HoldLeases,
    LifecycleSettings,
    Plan,
    Probe,
    Recover,
    ReleaseLeases,
    RunCompensation,
    RunStep,
    View,
    append_to,
    closing,
    incident_event,
    targets_of,
)
from warden.domain.control import AUTONOMY_LEVELS
from warden.domain.decisions import Decision, Outcome
from warden.domain.ids import derived_id, incident_stream, service_stream
from warden.domain.incident import Incident, State, apply
from warden.domain.joining import ALERT_KINDS
from warden.domain.undoing import compensate, fail_plan, in_flight

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from warden.domain.catalog import Catalog

__all__ = [
    "Append",
    "Command",
    "Decide",
    "HoldLeases",
    "LifecycleSettings",
    "Plan",
    "Probe",
    "Recover",
    "ReleaseLeases",
    "RunCompensation",
    "RunStep",
    "View",
    "Waiting",
    "backoff_s",
    "closing_commands",
    "decided_again",
    "decision_events",
    "denied_by_control",
    "fail_plan",
    "incident_event",
    "next_commands",
    "next_due",
    "versions_of_decision",
    "waits_on",
]


# -- the reconciler ------------------------------------------------------------------


def next_commands(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    """What moves ``incident`` on from where it stands; empty while it waits."""
    state = incident.state
    if state.terminal:
        return []
    if state is State.OPEN:
        return _open(incident, view, settings, now)
    if state in (State.PLANNED, State.EXECUTING):
        return _execute(incident, view, settings, now)
    if state is State.AWAITING_APPROVAL:
        return _await_approval(incident, view, settings, now)
    if state is State.VERIFYING:
        return _verify(incident, view, settings, now)
    return compensate(incident, view, settings, now)


# A deadline passed only strictly after it ("more than N s") is due this much later: the
# first moment a clock with microseconds (as event times have) reads past it.
JUST_AFTER = timedelta(microseconds=1)


def next_due(
    incidents: Iterable[Incident],
    settings: LifecycleSettings,
    now: datetime,
    known: Mapping[str, Incident] | None = None,
    catalog: Catalog | None = None,
) -> datetime | None:
    """The first moment after ``now`` when time alone may move one of ``incidents`` on.

    That is, when :func:`next_commands` may say something else of it without any input;
    None: until input arrives, nothing will. Between rounds an open incident waits on
    input (a probe, a signal, an approval) or on one of the lifecycle's timers: a warning
    alert's wait, a retry's backoff, an approval request's expiry, a verification's quiet
    periods and deadline, a held compensation's limit, the wait of a plan merged into an
    incident that resolved. A loop with nothing arrived may sleep until the first instead
    of polling. ``known``: every incident by id, to find the leader a merged incident
    follows. ``catalog``: to look only at the quiet periods of the checks a plan has
    (without it, at every check's). Timers of the shell (lease waits and renewals) are
    not here: see the runtime's ``next_due``.
    """
    due = [
        moment
        for incident in incidents
        for moment in _timers(incident, settings, known or {}, catalog)
        if moment > now
    ]
    return min(due, default=None)


def _timers(
    incident: Incident,
    settings: LifecycleSettings,
    known: Mapping[str, Incident],
    catalog: Catalog | None,
) -> list[datetime]:
    """The moments the branch of :func:`next_commands` ``incident`` is in compares with."""
    state = incident.state
    if state.terminal:
        return []

    def after(stamp: str, seconds: float, strictly: bool = False) -> list[datetime]:
        if not stamp:
            return []
        moment = ev.parse_time(stamp) + timedelta(seconds=seconds)
        return [moment + JUST_AFTER if strictly else moment]

    if state is State.OPEN:
        # A warning alone waits before it pages (see _open).
        if incident.kind in ALERT_KINDS and incident.severity == "minor":
            return after(incident.first_signal_at, settings.minor_alert_wait_s)
        return []
    if state in (State.PLANNED, State.EXECUTING):
        retry = incident.retry_due(incident.next_step) if incident.step_hashes else None
        found = after(retry or "", 0.0)
        leader = known.get(incident.merged_into) if incident.merged_into else None
        if leader is not None and leader.state is State.RESOLVED:
            # A follower whose own service still shows waits this long, then escalates.
            found += after(leader.closed_at, settings.verification_timeout_s, strictly=True)
        return found
    if state is State.AWAITING_APPROVAL:
        hash_ = incident.step_hashes[incident.next_step]
        return [m for h, e in incident.approval_requests if h == hash_ for m in after(e, 0.0)]
    if state is State.VERIFYING:
        started = incident.verification_started_at
        kinds = _check_kinds(incident, catalog) if catalog is not None else verification.READS
        quiet = {verification.READS.get(k, verification.UNKNOWN_READS).quiet_s for k in kinds}
        found = after(started, settings.verification_timeout_s, strictly=True)
        return found + [m for q in sorted(quiet) if q for m in after(started, q)]
    # Compensating: a compensation the kill switch holds escalates after a while.
    return after(incident.compensation_held_at, settings.compensation_hold_s, strictly=True)


# Denials by an operator's control, which the operator can lift: the kill switch, and the
# autonomy levels where Warden does not act.
KILL_SWITCH_DENIAL = "guardrail:kill-switch"
AUTONOMY_DENIALS = ("autonomy:observe", "autonomy:recommend")


def denied_by_control(incident: Incident) -> str:
    """The control whose denial escalated ``incident`` ("" when it closed another way).

    Its plan's latest decision is a deny by the kill switch, or by an autonomy level where
    Warden only observes or recommends.
    """
    if incident.state is not State.ESCALATED or not incident.decisions:
        return ""
    last = incident.decisions[-1]
    if last.outcome is not Outcome.DENY or not last.reasons:
        return ""
    policy = last.reasons[0].policy_id
    return policy if policy == KILL_SWITCH_DENIAL or policy in AUTONOMY_DENIALS else ""


def decided_again(incident: Incident, view: View) -> str:
    """Whether the fault ``incident`` was escalated on is decided again, and under which key.

    A kill switch released, or an autonomy level changed, after an incident was escalated
    because that control denied its plan: the fault, if its detector still sees it, is
    opened again (under the key returned, the time of the change) and planned and decided
    under the controls now in force. Returns "" while the control still holds: the kill
    switch engaged for a target's domain, or an autonomy level that still does not act.
    """
    control = denied_by_control(incident)
    changed = view.controls.changed_at
    if not control or not changed or ev.parse_time(changed) <= ev.parse_time(incident.closed_at):
        return ""
    assert incident.plan is not None, "a denied incident had a plan"
    domains = {view.topology.domain_of(s.target) for s in incident.plan.steps}
    if control == KILL_SWITCH_DENIAL:
        held = any(view.controls.halted(d) for d in domains)
        return "" if held else changed
    if view.default_autonomy:
        levels = {
            view.controls.autonomy_for(view.environment, d, view.default_autonomy) for d in domains
        }
        if all(AUTONOMY_LEVELS.index(lv) <= AUTONOMY_LEVELS.index("recommend") for lv in levels):
            return ""
    return changed


def closing_commands(incident: Incident) -> list[Command]:
    """What follows an incident into a terminal state: its leases go."""
    if not incident.state.terminal or incident.plan is None:
        return []
    return [ReleaseLeases(incident.id, targets_of(incident))]


def _open(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    observed = view.world.health.get(incident.service)
    if incident.kind == "service_down" and observed is not None and observed.healthy:
        return [
            closing(incident, ev.INCIDENT_RESOLVED, "recovered before any action was taken", now)
        ]
    if incident.kind in ALERT_KINDS and incident.severity == "minor":
        # A warning pages only when it lasts: one that resolves first closes unpaged.
        age = (now - ev.parse_time(incident.first_signal_at)).total_seconds()
        if age < settings.minor_alert_wait_s:
            return []
    return [Plan(incident.id)]


def _execute(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    assert incident.plan is not None
    if incident.in_flight is not None:
        return in_flight(incident, view)
    index = incident.next_step
    if index >= len(incident.step_hashes):
        started = incident_event(
            incident, ev.VERIFICATION_STARTED, {"checks": verifications(incident, view)}, now
        )
        return [append_to(incident, started)]
    failure = incident.last_failure(index)
    if failure is not None:
        return _after_failure(incident, view, index, failure, now)
    if incident.decision_for(incident.step_hashes[index]) is None:
        merged = merging.follow(incident, view, settings, now)
        return merged if merged is not None else [Decide(incident.id, index)]
    return _run(incident, view, index, now)


def _run(incident: Incident, view: View, index: int, now: datetime) -> list[Command]:
    """Act on step ``index`` if its latest decision allows it, else give the plan up."""
    decision = incident.decision_for(incident.step_hashes[index])
    if decision is None or decision.outcome is not Outcome.ALLOW:
        why = decision.describe() if decision is not None else "no decision"
        return fail_plan(incident, view, f"denied: {why}", now)
    attempt = incident.attempts(index) + 1
    key = derived_id("idempotency", incident.id, incident.step_hashes[index])
    return [
        HoldLeases(incident.id, targets_of(incident)),
        RunStep(incident.id, index, attempt, key),
    ]


def _after_failure(
    incident: Incident, view: View, index: int, failure: tuple[int, int, bool], now: datetime
) -> list[Command]:
    assert incident.plan is not None
    _, attempt, retryable = failure
    spec = view.catalog.get(incident.plan.steps[index].action)
    max_attempts = spec.max_attempts if spec else 1
    due = incident.retry_due(index)
    if due is not None:
        return _run(incident, view, index, now) if now >= ev.parse_time(due) else []
    if retryable and attempt < max_attempts:
        # The target's own Retry-After wins when it asks for longer than the backoff.
        delay = max(backoff_s(incident.id, index, attempt), incident.retry_hint(index, attempt))
        due_at = ev.format_time(now + timedelta(seconds=delay))
        retry = incident_event(
            incident,
            ev.STEP_RETRY_SCHEDULED,
            {"index": index, "attempt": attempt + 1, "due_at": due_at, "delay_s": delay},
            now,
            key=f"{index}:{attempt + 1}",
        )
        return [append_to(incident, retry)]
    why = "not retryable" if not retryable else f"{attempt} of {max_attempts} attempts used"
    return fail_plan(incident, view, f"step {index} failed ({why})", now)


def _await_approval(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    index = incident.next_step
    hash_ = incident.step_hashes[index]
    rejected = view.rejected.get(incident.id, ())
    if rejected:
        # A person who may decide said no: nothing runs, and a human takes it from here.
        reason = f"proposal {hash_[:12]} rejected by {', '.join(rejected)}"
        return [closing(incident, ev.INCIDENT_ESCALATED, reason, now, notify=False)]
    if incident.id in view.approved:
        return [Decide(incident.id, index, approved=True)]
    expires_at = next((e for h, e in incident.approval_requests if h == hash_), "")
    if not expires_at or now < ev.parse_time(expires_at):
        return []
    pending = incident.decision_for(hash_)
    needed = max(1, pending.approvers) if pending else 1
    counted = list(view.counted.get(incident.id, ()))
    fallback = settings.approval_fallback
    expired = incident_event(
        incident,
        ev.APPROVAL_EXPIRED,
        {
            "step_hash": hash_,
            "fallback": fallback,
            "approvals": counted,
            "ignored": list(view.ignored.get(incident.id, ())),
        },
        now,
        key=hash_,
    )
    reason = f"approval expired at {expires_at} with {len(counted)} of {needed} approvals"
    if fallback == "do_nothing":
        reason += "; fallback do_nothing: no action taken"
    else:
        reason = briefing.page(incident, view.world, reason)
    after = apply(incident, expired)
    closed = incident_event(
        after,
        ev.INCIDENT_ESCALATED,
        {"reason": reason, "notify": fallback == "escalate"},
        now,
    )
    return [Append(incident_stream(incident.id), (expired, closed), incident.version)]


def _verify(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    # Renew: the targets stay this incident's until it closes.
    commands: list[Command] = [HoldLeases(incident.id, targets_of(incident), renew_only=True)]
    started = ev.parse_time(incident.verification_started_at)
    checks = [
        verification.check(kind, incident.service, view.world, started)
        for kind in verifications(incident, view)
    ]
    if all(c.passed for c in checks):
        return commands + _pass(incident, checks, now)
    if (now - started).total_seconds() > settings.verification_timeout_s:
        waiting = "; ".join(c.detail for c in checks if not c.passed)
        reason = f"not verified {settings.verification_timeout_s:g} s after acting: {waiting}"
        failed = incident_event(incident, ev.VERIFICATION_FAILED, {"reason": reason}, now)
        after = apply(incident, failed)
        rest = fail_plan(after, view, reason, now)
        return [*commands, append_to(incident, failed), *rest]
    if any(c.kind == "health_probe" and not c.passed for c in checks):
        commands.append(Probe(incident.service))
    return commands


@dataclass(frozen=True, slots=True)
class Waiting:
    """What a verifying incident's answer rests on while it waits.

    Until ``until``, :func:`next_commands` gives the same answer as long as the incident,
    the catalog, the settings and, where ``health`` or ``signals`` says so, the service's
    health and signals stay as they are.
    """

    until: datetime
    health: bool
    signals: bool


def waits_on(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> Waiting | None:
    """For an incident in verification that waits at ``now``: what its wait rests on.

    None for an incident in any other state: those are asked again every round. Time
    changes the answer at the verification timeout, and at the end of any check's quiet
    period still ahead (``verification.READS``).
    """
    if incident.state is not State.VERIFYING:
        return None
    started = ev.parse_time(incident.verification_started_at)
    reads = [
        verification.READS.get(kind, verification.UNKNOWN_READS)
        for kind in verifications(incident, view)
    ]
    ends = [started + timedelta(seconds=settings.verification_timeout_s)]
    ends += [started + timedelta(seconds=r.quiet_s) for r in reads if r.quiet_s]
    ahead = [end for end in ends if end > now]  # past ones no longer change anything
    return Waiting(
        min(ahead, default=now),
        any(r.health for r in reads),
        any(r.signals for r in reads),
    )


def _pass(incident: Incident, checks: list[verification.Check], now: datetime) -> list[Command]:
    commands: list[Command] = []
    recovered = _recovered_batches(incident, now)
    if recovered:
        # Before the resolution: after a crash between the two, verification passes
        # again and these are appended again, as no-ops (derived ids).
        commands.append(Append(service_stream(incident.service), tuple(recovered), None))
    passed = incident_event(
        incident,
        ev.VERIFICATION_PASSED,
        {"checks": [{"kind": c.kind, "detail": c.detail} for c in checks]},
        now,
    )
    first_signal = ev.parse_time(incident.first_signal_at)
    resolved = incident_event(
        incident,
        ev.INCIDENT_RESOLVED,
        {
            "reason": "verified: " + "; ".join(c.detail for c in checks),
            "mttr_s": round((now - first_signal).total_seconds(), 3),
            "time_to_detect_s": round(
                (ev.parse_time(incident.opened_at) - first_signal).total_seconds(), 3
            ),
        },
        now,
    )
    commands.append(Append(incident_stream(incident.id), (passed, resolved), incident.version))
    return commands


def _recovered_batches(incident: Incident, now: datetime) -> list[ev.Event]:
    """Batches this incident quarantined, and verified quiet after, are failures no more.

    The pipeline would report them recovered only if it reprocessed them itself; the
    quarantine took them out of its way, so without these they would stay open failures
    and shadow every later failure of the service.
    """
    assert incident.plan is not None
    return [
        ev.derived_event(
            ev.BATCH_RECOVERED,
            incident_stream(incident.id),
            {"service": incident.service, "pipeline": params["pipeline"], "batch": batch},
            ev.format_time(now),
            key=f"{params['pipeline']}/{batch}",
            subject=incident.service,
            correlation_id=incident.correlation_id,
            traceparent=incident.traceparent,
        )
        for index, step in enumerate(incident.plan.steps)
        if step.action == "quarantine_batch"
        and index in incident.succeeded
        and index not in incident.compensated
        for params in [dict(step.params)]
        for batch in [str(params["batch"])]
    ]


def verifications(incident: Incident, view: View) -> list[str]:
    """The kinds of check the plan's steps are verified by, in plan order, once each."""
    return _check_kinds(incident, view.catalog)


def _check_kinds(incident: Incident, catalog: Catalog) -> list[str]:
    assert incident.plan is not None
    kinds: list[str] = []
    for step in incident.plan.steps:
        spec = catalog.get(step.action)
        kind = spec.verification if spec else "health_probe"
        if kind not in kinds:
            kinds.append(kind)
    return kinds


# -- decisions -----------------------------------------------------------------------


def versions_of_decision(incident: Incident, decision: Decision) -> dict[str, str]:
    """The versions behind a decision on the incident's plan: agent, model, bundle."""
    found = dict(incident.plan_versions)
    plan = incident.plan
    if plan is not None and plan.agent_version and "agent" not in found:
        found["agent"] = plan.agent_version
    found["bundle"] = decision.bundle_version
    return dict(sorted(found.items()))


def decision_events(
    incident: Incident,
    decision: Decision,
    context: Mapping[str, Any] | None,
    settings: LifecycleSettings,
    now: datetime,
) -> list[ev.Event]:
    """The events that record a decision on the next step (and ask for approval if needed)."""
    index = incident.next_step
    data: dict[str, Any] = {
        "decision": decision.to_dict(),
        "index": index,
        "describe": decision.describe(),
        # Every version that made this decision: the plan's (agent, model) and the bundle's.
        "versions": versions_of_decision(incident, decision),
    }
    if context is not None:
        data["context"] = dict(context)
    recorded = incident_event(
        incident, ev.DECISION_RECORDED, data, now, key=f"{index}:{len(incident.decisions)}"
    )
    events = [recorded]
    if decision.outcome is Outcome.NEEDS_APPROVAL:
        assert incident.plan is not None
        expires = now + timedelta(seconds=settings.approval_timeout_s)
        events.append(
            incident_event(
                incident,
                ev.APPROVAL_REQUESTED,
                {
                    "step_hash": decision.step_hash,
                    "proposal": {
                        "incident": incident.id,
                        "index": index,
                        "step": incident.plan.steps[index].to_dict(),
                        "agent": incident.plan.agent,
                        "rationale": incident.plan.rationale,
                        "confidence": incident.plan.confidence,
                    },
                    "approvers": decision.approvers,
                    "approver_roles": list(decision.approver_roles),
                    "expires_at": ev.format_time(expires),
                    "fallback": settings.approval_fallback,
                },
                now,
                key=decision.step_hash,
            )
        )
    return events


def backoff_s(incident_id: str, index: int, attempt: int) -> float:
    """Exponential backoff with jitter for the retry after ``attempt``: 1 s, 2 s, 4 s, ...

    capped at 60 s, times a jitter factor in [0.5, 1.5) derived from the step, so replay
    schedules the same retry at the same time.
    """
    base = min(60.0, 2.0 ** (attempt - 1))
    jitter = 0.5 + int(derived_id("jitter", incident_id, str(index), str(attempt))[:8], 16) / 2**32
    return round(base * jitter, 3)
