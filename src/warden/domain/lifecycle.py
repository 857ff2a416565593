"""The incident lifecycle as a pure reconciler: what to do next, as commands. Pure core (domain).

:func:`next_commands` looks at one incident, what the loop folded from the log (a
:class:`View`) and the time, and returns the :class:`Command` s that move it on: append
these events, decide step i, run step i, run compensation j, ask the agents, probe a
service, hold or release leases. It reads no clock, does no I/O and starts no thread;
the runtime's interpreter carries the commands out and the results come back as events.
The rules are written down in docs/lifecycle.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain import verification
from warden.domain.decisions import Decision, Outcome
from warden.domain.ids import derived_id, incident_stream, service_stream
from warden.domain.incident import Incident, State, apply

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from warden.domain.catalog import Catalog
    from warden.domain.control import Controls
    from warden.domain.topology import Topology
    from warden.domain.world import World

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
    "backoff_s",
    "closing_commands",
    "decision_events",
    "fail_plan",
    "incident_event",
    "next_commands",
]


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Append:
    """Append ``events`` to ``stream``, expecting it at ``expected_version`` (None: any)."""

    stream: str
    events: tuple[ev.Event, ...]
    expected_version: int | None


@dataclass(frozen=True, slots=True)
class Plan:
    """Ask the agents for a plan (and close the incident when none can act)."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class Decide:
    """Ask the control plane about step ``index``; ``approved``: with the approvals given."""

    incident_id: str
    index: int
    approved: bool = False


@dataclass(frozen=True, slots=True)
class HoldLeases:
    """Take or renew the leases on ``targets``; ``renew_only``: go on even when one is busy."""

    incident_id: str
    targets: tuple[str, ...]
    renew_only: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseLeases:
    """Let go of the leases on ``targets``: the incident is closed."""

    incident_id: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunStep:
    """Re-check the guardrails, write the intent, hand the step to a worker."""

    incident_id: str
    index: int
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class RunCompensation:
    """Write the compensation's intent and hand it to a worker."""

    incident_id: str
    index: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Recover:
    """An intent without a result that no worker here runs: settle it by the action's check."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class Probe:
    """Probe ``service`` now (a verification waits on its health)."""

    service: str


Command = (
    Append
    | Plan
    | Decide
    | HoldLeases
    | ReleaseLeases
    | RunStep
    | RunCompensation
    | Recover
    | Probe
)


# -- inputs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    """The lifecycle's knobs (the shell's settings hold them too)."""

    verification_timeout_s: float = 15.0
    approval_timeout_s: float = 900.0
    approval_fallback: str = "escalate"
    compensation_hold_s: float = 600.0  # a compensation held longer escalates


@dataclass(frozen=True, slots=True)
class View:
    """What the loop folded from the log, beside the incident itself.

    ``runnable``: the actions an adapter runs; ``counted``: for incidents awaiting
    approval, the approvals that count (the control plane's tally) and ``approved`` those
    where they are enough; ``running``: incidents with a step or compensation in the
    hands of one of this process's workers.
    """

    world: World
    controls: Controls
    topology: Topology
    catalog: Catalog
    runnable: frozenset[str] = frozenset()
    approved: frozenset[str] = frozenset()
    running: frozenset[str] = frozenset()
    counted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# -- the reconciler ------------------------------------------------------------------


def next_commands(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    """What moves ``incident`` on from where it stands; empty while it waits."""
    state = incident.state
    if state.terminal:
        return []
    if state is State.OPEN:
        return _open(incident, view, now)
    if state in (State.PLANNED, State.EXECUTING):
        return _execute(incident, view, now)
    if state is State.AWAITING_APPROVAL:
        return _await_approval(incident, view, settings, now)
    if state is State.VERIFYING:
        return _verify(incident, view, settings, now)
    return _compensate(incident, view, settings, now)


def closing_commands(incident: Incident) -> list[Command]:
    """What follows an incident into a terminal state: its leases go."""
    if not incident.state.terminal or incident.plan is None:
        return []
    return [ReleaseLeases(incident.id, _targets(incident))]


def _open(incident: Incident, view: View, now: datetime) -> list[Command]:
    observed = view.world.health.get(incident.service)
    if incident.kind == "service_down" and observed is not None and observed.healthy:
        return [
            _close(incident, ev.INCIDENT_RESOLVED, "recovered before any action was taken", now)
        ]
    return [Plan(incident.id)]


def _execute(incident: Incident, view: View, now: datetime) -> list[Command]:
    assert incident.plan is not None
    if incident.in_flight is not None:
        return _in_flight(incident, view)
    index = incident.next_step
    if index >= len(incident.step_hashes):
        started = incident_event(
            incident, ev.VERIFICATION_STARTED, {"checks": verifications(incident, view)}, now
        )
        return [_append(incident, started)]
    failure = incident.last_failure(index)
    if failure is not None:
        return _after_failure(incident, view, index, failure, now)
    if incident.decision_for(incident.step_hashes[index]) is None:
        return [Decide(incident.id, index)]
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
        HoldLeases(incident.id, _targets(incident)),
        RunStep(incident.id, index, attempt, key),
    ]


def _in_flight(incident: Incident, view: View) -> list[Command]:
    """A worker here runs it: keep the leases; nobody does (a restart): settle it."""
    if incident.id in view.running:
        return [HoldLeases(incident.id, _targets(incident), renew_only=True)]
    return [Recover(incident.id)]


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
        return [_append(incident, retry)]
    why = "not retryable" if not retryable else f"{attempt} of {max_attempts} attempts used"
    return fail_plan(incident, view, f"step {index} failed ({why})", now)


def _await_approval(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    index = incident.next_step
    hash_ = incident.step_hashes[index]
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
        {"step_hash": hash_, "fallback": fallback, "approvals": counted},
        now,
        key=hash_,
    )
    reason = f"approval expired at {expires_at} with {len(counted)} of {needed} approvals"
    if fallback == "do_nothing":
        reason += "; fallback do_nothing: no action taken"
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
    commands: list[Command] = [HoldLeases(incident.id, _targets(incident), renew_only=True)]
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
        return [*commands, _append(incident, failed), *rest]
    if any(c.kind == "health_probe" and not c.passed for c in checks):
        commands.append(Probe(incident.service))
    return commands


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
    assert incident.plan is not None
    kinds: list[str] = []
    for step in incident.plan.steps:
        spec = view.catalog.get(step.action)
        kind = spec.verification if spec else "health_probe"
        if kind not in kinds:
            kinds.append(kind)
    return kinds


# -- failing and undoing -------------------------------------------------------------


def fail_plan(incident: Incident, view: View, reason: str, now: datetime) -> list[Command]:
    """Undo completed steps in reverse when any can be undone; else escalate."""
    if _compensable(incident, view):
        started = incident_event(incident, ev.COMPENSATION_STARTED, {"reason": reason}, now)
        return [_append(incident, started)]
    left = _not_undone(incident, view)
    return [
        _close(
            incident,
            ev.INCIDENT_ESCALATED,
            f"{reason}; left as is: {left}" if left else reason,
            now,
        )
    ]


def _compensate(
    incident: Incident, view: View, settings: LifecycleSettings, now: datetime
) -> list[Command]:
    if incident.compensation_in_flight is not None:
        return _in_flight(incident, view)
    if incident.compensation_failed:
        failed = ", ".join(map(str, incident.compensation_failed))
        return [
            _close(incident, ev.INCIDENT_ESCALATED, f"compensation of step {failed} failed", now)
        ]
    done = set(incident.compensating)
    floor = min(done) if done else len(incident.step_hashes)
    pending = [i for i in _compensable(incident, view) if i < floor]
    if pending:
        return _undo(incident, view, settings, pending[0], now)
    left = _not_undone(incident, view)
    if incident.compensated:
        undone = ", ".join(str(i) for i in incident.compensated)
        reason = f"steps {undone} undone; a human follows up"
        return [
            _close(incident, ev.INCIDENT_ROLLED_BACK, f"{reason} ({left})" if left else reason, now)
        ]
    reason = "nothing could be undone"
    return [_close(incident, ev.INCIDENT_ESCALATED, f"{reason}: {left}" if left else reason, now)]


def _undo(
    incident: Incident, view: View, settings: LifecycleSettings, index: int, now: datetime
) -> list[Command]:
    """Compensate step ``index``, unless the kill switch holds every side effect now."""
    assert incident.plan is not None
    target = incident.plan.steps[index].target
    halted = view.controls.halted(view.topology.domain_of(target))
    if halted is None:
        key = derived_id("compensation", incident.id, incident.step_hashes[index])
        return [
            HoldLeases(incident.id, _targets(incident)),
            RunCompensation(incident.id, index, key),
        ]
    if not incident.compensation_held_at:
        held = incident_event(
            incident,
            ev.COMPENSATION_HELD,
            {"index": index, "target": target, "reason": halted},
            now,
            key=f"{index}:{ev.format_time(now)}",
        )
        return [_append(incident, held)]
    since = ev.parse_time(incident.compensation_held_at)
    if (now - since).total_seconds() > settings.compensation_hold_s:
        reason = (
            f"compensation of step {index} held for {settings.compensation_hold_s:g} s"
            f" ({halted}); a human takes over"
        )
        left = _not_undone(incident, view, pending_too=True)
        return [_close(incident, ev.INCIDENT_ESCALATED, f"{reason}; left as is: {left}", now)]
    return []


def _compensable(incident: Incident, view: View) -> list[int]:
    """Completed steps with a runnable compensation, last first."""
    return [
        i for i in sorted(incident.succeeded, reverse=True) if not why_not_undone(incident, view, i)
    ]


def why_not_undone(incident: Incident, view: View, index: int) -> str:
    """Why completed step ``index`` cannot be compensated ("" when it can)."""
    assert incident.plan is not None
    step = incident.plan.steps[index]
    spec = view.catalog.get(step.action)
    if spec is None or not spec.compensation:
        return f"step {index} ({step.action}) has no compensation"
    if spec.compensation not in view.runnable or view.catalog.get(spec.compensation) is None:
        return f"step {index} ({step.action}): no adapter runs {spec.compensation}"
    missing = spec.missing_undo(incident.output_of(index))
    if missing:
        return (
            f"step {index} ({step.action}) cannot be undone: its result did not report"
            f" undo_params {', '.join(missing)}, and {spec.compensation} with the step's"
            " own parameters would only repeat it"
        )
    return ""


def _not_undone(incident: Incident, view: View, *, pending_too: bool = False) -> str:
    """The completed steps no compensation will undo, with why, for the human."""
    assert incident.plan is not None
    reasons = []
    for index in sorted(incident.succeeded):
        if index in incident.compensated:
            continue
        if view.catalog.get(incident.plan.steps[index].action) is None:
            continue
        why = why_not_undone(incident, view, index)
        if not why and pending_too:
            why = f"step {index} ({incident.plan.steps[index].action}) not undone"
        if why:
            reasons.append(why)
    return "; ".join(reasons)


# -- decisions -----------------------------------------------------------------------


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


# -- helpers -------------------------------------------------------------------------


def _targets(incident: Incident) -> tuple[str, ...]:
    assert incident.plan is not None
    return tuple(sorted({s.target for s in incident.plan.steps}))


def incident_event(
    incident: Incident, type_: str, data: dict[str, Any], now: datetime, key: str = ""
) -> ev.Event:
    """An event of ``incident``'s stream, derived (replay gives it the same id)."""
    return ev.derived_event(
        type_,
        incident_stream(incident.id),
        data,
        ev.format_time(now),
        key=key,
        subject=incident.service,
        correlation_id=incident.correlation_id,
        traceparent=incident.traceparent,
    )


def _append(incident: Incident, *events: ev.Event) -> Append:
    return Append(incident_stream(incident.id), events, incident.version)


def _close(incident: Incident, type_: str, reason: str, now: datetime, **extra: Any) -> Append:
    return _append(incident, incident_event(incident, type_, {"reason": reason, **extra}, now))
