"""Driving one incident through its lifecycle: plan, decide, act, verify, undo, close. Runtime.

The :class:`Remediation` half of the runtime: every method moves one incident one step,
appending the events that say so; the loop in ``runtime.py`` folds those events back.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from warden.domain import control, isolation, verification
from warden.domain import events as ev
from warden.domain import health as health_fold
from warden.domain import signals as sig
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.ids import derived_id, incident_stream, service_stream, traceparent_for
from warden.domain.incident import Incident, State
from warden.governance.approvals import ApprovalSettings, tally
from warden.governance.context import ActionRecord, FreezeWindow, Situation

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.agents.protocol import Agent, Detection
    from warden.domain.catalog import Catalog
    from warden.domain.plans import Plan
    from warden.domain.topology import Topology
    from warden.domain.world import World
    from warden.execution.executor import Executor
    from warden.governance.gate import DecisionGate
    from warden.ingest.probes import Probe
    from warden.ports import Clock, EventStore, Leases

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The knobs of the loop that are not the planes' own."""

    environment: str = "development"
    autonomy: str = "autonomous"
    verification_timeout_s: float = 15.0
    verification_probe_every_s: float = 0.2
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    freezes: tuple[FreezeWindow, ...] = ()
    policy_poll_s: float = 1.0
    autonomy_rules: tuple[control.AutonomyRule, ...] = ()
    agent_caps: tuple[tuple[str, str], ...] = ()
    desired: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    limits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    lease_ttl_s: float = 30.0
    lease_wait_s: float = 120.0


@dataclass
class Folded:
    """What the loop knows, folded from the log."""

    health: dict[str, health_fold.Health] = field(default_factory=dict)
    controls: control.Controls = field(default_factory=control.Controls)
    incidents: dict[str, Incident] = field(default_factory=dict)
    actions: deque[ActionRecord] = field(default_factory=deque)
    signals: dict[str, sig.Signals] = field(default_factory=dict)
    reported: dict[str, dict[str, str]] = field(default_factory=dict)
    open_drift: dict[tuple[str, str], str] = field(default_factory=dict)
    isolated: dict[str, isolation.Isolation] = field(default_factory=dict)
    position: int = 0


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a slow agent answered: a plan, or None for nothing to offer."""

    plan: Plan | None


class Remediation:
    """Incident lifecycle steps; mixed into :class:`warden.runtime.Runtime`."""

    store: EventStore
    agents: list[Agent]
    gate: DecisionGate
    executor: Executor
    probes: dict[str, Probe]
    clock: Clock
    settings: RuntimeSettings
    catalog: Catalog
    topology: Topology
    leases: Leases | None
    _state: Folded
    _lease_wait: dict[str, float]
    _last_verification_probe: dict[str, float]
    _asking: dict[tuple[str, str], Future[Plan | None]]
    _slow_pool: ThreadPoolExecutor | None

    def tail(self) -> list[ev.Event]:
        """Fold new events (provided by the runtime)."""
        raise NotImplementedError

    def world(self) -> World:
        """What agents see now (provided by the runtime)."""
        raise NotImplementedError

    def record_probe(self, service: str, probe: str, result: Any, purpose: str) -> None:
        """Store a probe result (provided by the runtime)."""
        raise NotImplementedError

    def _append(self, current: Incident | None, incident_id: str, *events: ev.Event) -> None:
        stream = incident_stream(incident_id)
        version = current.version if current is not None else 0
        self.store.append(stream, list(events), expected_version=version)

    def _event(
        self, current: Incident, type_: str, data: dict[str, Any], key: str = ""
    ) -> ev.Event:
        return ev.derived_event(
            type_,
            incident_stream(current.id),
            data,
            ev.format_time(self.clock.now()),
            key=key,
            subject=current.service,
            correlation_id=current.correlation_id,
            traceparent=current.traceparent,
        )

    def _open(self, detection: Detection, detected_by: str) -> None:
        incident_id = derived_id(
            "incident", detection.kind, detection.service, detection.first_signal_at
        )
        if incident_id in self._state.incidents:
            return
        if any(
            i.service == detection.service and not i.state.terminal
            for i in self._state.incidents.values()
        ):
            return
        opened = ev.derived_event(
            ev.INCIDENT_OPENED,
            incident_stream(incident_id),
            {
                "incident_id": incident_id,
                "service": detection.service,
                "summary": detection.summary,
                "first_signal_at": detection.first_signal_at,
                "evidence": list(detection.evidence),
                "severity": detection.severity,
                "kind": detection.kind,
                "detected_by": detected_by,
            },
            ev.format_time(self.clock.now()),
            subject=detection.service,
            correlation_id=incident_id,
            traceparent=traceparent_for(incident_id),
        )
        self._append(None, incident_id, opened)

    def _advance(self, current: Incident) -> None:
        state = current.state
        if state is State.OPEN:
            self._plan(current)
        elif state in (State.PLANNED, State.EXECUTING):
            self._decide_or_execute(current)
        elif state is State.AWAITING_APPROVAL:
            self._await_approval(current)
        elif state is State.VERIFYING:
            self._verify(current)
        elif state is State.COMPENSATING:
            self._compensate(current)

    def _close(self, current: Incident, type_: str, reason: str, **extra: Any) -> None:
        self._append(current, current.id, self._event(current, type_, {"reason": reason, **extra}))

    def _refreshed(self, incident_id: str) -> Incident:
        self.tail()
        return self._state.incidents[incident_id]

    def _plan(self, current: Incident) -> None:
        world = self.world()
        observed = world.health.get(current.service)
        if current.kind == "service_down" and observed is not None and observed.healthy:
            self._close(current, ev.INCIDENT_RESOLVED, "recovered before any action was taken")
            return
        handling = [a for a in self.agents if current.kind in a.handles or "*" in a.handles]
        candidates = [
            (agent, plan)
            for agent in handling
            if not getattr(agent, "slow", False)
            for plan in [agent.propose(current, world)]
            if plan is not None
        ]
        top = max((agent.priority for agent, _ in candidates), default=None)
        for agent in handling:
            if not getattr(agent, "slow", False) or (top is not None and top > agent.priority):
                continue  # a plan from a higher priority is in hand: no need to ask
            asked = self._ask_slow(agent, current, world)
            if asked is None:
                return  # still thinking; the incident is planned on a later round
            if asked.plan is not None:
                candidates.append((agent, asked.plan))
        if not candidates:
            cleared = self._cleared(current, world)
            if cleared:
                self._close(current, ev.INCIDENT_RESOLVED, cleared)
                return
            summary = self._escalation_summary(current, world)
            self._close(current, ev.INCIDENT_ESCALATED, summary)
            return
        # The documented rule: higher agent priority wins, then higher confidence, then
        # the agent name, so the choice is deterministic; losers are recorded, not dropped.
        ranked = sorted(candidates, key=lambda c: (-c[0].priority, -c[1].confidence, c[0].name))
        winner_agent, winner = ranked[0]
        events = [
            self._event(
                current,
                ev.PLAN_REJECTED,
                {
                    "plan": plan.to_dict(),
                    "reason": (
                        f"{winner_agent.name} (priority {winner_agent.priority}, confidence"
                        f" {winner.confidence:.2f}) won over {agent.name} (priority"
                        f" {agent.priority}, confidence {plan.confidence:.2f})"
                    ),
                },
                key=agent.name,
            )
            for agent, plan in ranked[1:]
        ]
        events.append(self._event(current, ev.PLAN_PROPOSED, {"plan": winner.to_dict()}))
        self._append(current, current.id, *events)

    def _ask_slow(self, agent: Agent, current: Incident, world: World) -> _Answer | None:
        """A slow agent's proposal, asked off the loop's thread; None while it thinks.

        A model behind an HTTP endpoint can take seconds to answer; meanwhile the loop goes
        on moving other incidents, probing and verifying.
        """
        key = (current.id, agent.name)
        future = self._asking.get(key)
        if future is None:
            if self._slow_pool is None:
                self._slow_pool = ThreadPoolExecutor(2, thread_name_prefix="warden-propose")
            self._asking[key] = self._slow_pool.submit(agent.propose, current, world)
            return None
        if not future.done():
            return None
        del self._asking[key]
        try:
            return _Answer(future.result())
        except Exception:  # an agent that raises proposes nothing; the loop goes on
            log.exception("agent %s failed while proposing for %s", agent.name, current.id)
            return _Answer(None)

    def _forget_closed(self) -> None:
        """Drop questions to slow agents about incidents that closed meanwhile."""
        for key in [k for k in self._asking if self._state.incidents[k[0]].state.terminal]:
            self._asking.pop(key).cancel()

    def close_agents(self) -> None:
        """Stop asking slow agents; answers still on their way are dropped."""
        if self._slow_pool is not None:
            self._slow_pool.shutdown(wait=False, cancel_futures=True)
            self._slow_pool = None
        self._asking.clear()

    def _cleared(self, current: Incident, world: World) -> str:
        """Why an incident nobody can act on needs no human: its fault is gone ("" if not).

        Planning usually follows detection in the same round; it comes later after a
        restart or when another worker opened the incident, and the fault may have
        cleared meanwhile. Only the agent that detected it can tell.
        """
        detector = next((a for a in self.agents if a.name == current.detected_by), None)
        if detector is None:
            return ""
        if any(
            d.service == current.service and d.kind == current.kind for d in detector.detect(world)
        ):
            return ""
        return (
            f"recovered before any action was taken: {detector.name} no longer detects"
            f" {current.kind} on {current.service}"
        )

    def _escalation_summary(self, current: Incident, world: World) -> str:
        for agent in self.agents:
            summarize = getattr(agent, "summarize", None)
            if summarize is not None and (current.kind in agent.handles or "*" in agent.handles):
                return str(summarize(current, world))
        return (
            f"no agent proposed a plan for {current.kind} on {current.service}: {current.summary}"
        )

    def situation(self, approvers: tuple[str, ...] = (), roles: tuple[str, ...] = ()) -> Situation:
        """Everything around a decision now: controls, topology, history, freezes."""
        return Situation(
            now=self.clock.now(),
            environment=self.settings.environment,
            default_autonomy=self.settings.autonomy,
            controls=self._state.controls,
            topology=self.topology,
            history=tuple(self._state.actions),
            freezes=self.settings.freezes,
            approvers=approvers,
            approval_roles=roles,
            agent_caps=dict(self.settings.agent_caps),
        )

    def _decide_or_execute(self, current: Incident) -> None:
        assert current.plan is not None
        if current.in_flight is not None:
            self._recover(current)
            return
        index = current.next_step
        if index >= len(current.step_hashes):
            kinds = self._verifications(current)
            started = self._event(current, ev.VERIFICATION_STARTED, {"checks": kinds})
            self._append(current, current.id, started)
            return
        failure = current.last_failure(index)
        if failure is not None:
            self._after_failure(current, index, failure)
            return
        decision = current.decision_for(current.step_hashes[index])
        if decision is None:
            ruling = self.gate.decide(current, index, self.situation())
            self._record(current, ruling.decision, ruling.context)
            return
        if decision.outcome is Outcome.DENY:
            self._fail_plan(current, f"denied: {decision.describe()}")
            return
        self._run_step(current, index)

    def _run_step(self, current: Incident, index: int) -> None:
        blocked = self.gate.blocked(current, index, self.situation())
        if blocked is not None:
            self._fail_plan(current, f"stopped before acting: {blocked[0]}: {blocked[1]}")
            return
        if not self._hold_leases(current):
            return
        self.executor.run_next_step(current, self._state.controls)

    def _hold_leases(self, current: Incident) -> bool:
        """Take (or renew) the lease on every target of the plan; False while one is busy.

        Leases are held from the first step until the incident closes, so no other agent,
        incident or worker acts on those resources in between.
        """
        if self.leases is None:
            return True
        assert current.plan is not None
        now = self.clock.now().timestamp()
        targets = sorted({s.target for s in current.plan.steps})
        for target in targets:
            holder = f"{self.executor.worker}:{current.id}"
            lease = self.leases.acquire(target, holder, self.settings.lease_ttl_s, now)
            if lease is None:
                busy = self.leases.holder(target, now)
                waited_since = self._lease_wait.setdefault(current.id, now)
                if now - waited_since > self.settings.lease_wait_s:
                    who = busy.holder if busy else "?"
                    self._fail_plan(
                        current,
                        f"{target} stayed busy ({who}) for {self.settings.lease_wait_s:g} s",
                    )
                return False
        self._lease_wait.pop(current.id, None)
        return True

    def _after_failure(self, current: Incident, index: int, failure: tuple[int, int, bool]) -> None:
        assert current.plan is not None
        _, attempt, retryable = failure
        spec = self.catalog.get(current.plan.steps[index].action)
        max_attempts = spec.max_attempts if spec else 1
        due = current.retry_due(index)
        if due is not None:
            if self.clock.now() >= ev.parse_time(due):
                self._run_step(current, index)
            return
        if retryable and attempt < max_attempts:
            # The target's own Retry-After wins when it asks for longer than the backoff.
            delay = max(backoff_s(current.id, index, attempt), current.retry_hint(index, attempt))
            due_at = ev.format_time(self.clock.now() + timedelta(seconds=delay))
            retry = self._event(
                current,
                ev.STEP_RETRY_SCHEDULED,
                {"index": index, "attempt": attempt + 1, "due_at": due_at, "delay_s": delay},
                key=f"{index}:{attempt + 1}",
            )
            self._append(current, current.id, retry)
            return
        why = "not retryable" if not retryable else f"{attempt} of {max_attempts} attempts used"
        self._fail_plan(current, f"step {index} failed ({why})")

    def _fail_plan(self, current: Incident, reason: str) -> None:
        """Undo completed steps in reverse when any can be undone; else escalate."""
        if self._compensable(current):
            started = self._event(current, ev.COMPENSATION_STARTED, {"reason": reason})
            self._append(current, current.id, started)
            return
        left = self._not_undone(current)
        self._close(
            current, ev.INCIDENT_ESCALATED, f"{reason}; left as is: {left}" if left else reason
        )

    def _compensable(self, current: Incident) -> list[int]:
        """Completed steps with a runnable compensation, last first."""
        return [
            i
            for i in sorted(current.succeeded, reverse=True)
            if not self._why_not_undone(current, i)
        ]

    def _why_not_undone(self, current: Incident, index: int) -> str:
        """Why completed step ``index`` cannot be compensated ("" when it can)."""
        assert current.plan is not None
        step = current.plan.steps[index]
        spec = self.catalog.get(step.action)
        if spec is None or not spec.compensation:
            return f"step {index} ({step.action}) has no compensation"
        if not self.executor.can_run(spec.compensation):
            return f"step {index} ({step.action}): no adapter runs {spec.compensation}"
        missing = spec.missing_undo(current.output_of(index))
        if missing:
            return (
                f"step {index} ({step.action}) cannot be undone: its result did not report"
                f" undo_params {', '.join(missing)}, and {spec.compensation} with the step's"
                " own parameters would only repeat it"
            )
        return ""

    def _not_undone(self, current: Incident) -> str:
        """The completed steps no compensation will undo, with why, for the human."""
        assert current.plan is not None
        reasons = [
            why
            for index in sorted(current.succeeded)
            if index not in current.compensated
            and self.catalog.get(current.plan.steps[index].action) is not None
            for why in [self._why_not_undone(current, index)]
            if why
        ]
        return "; ".join(reasons)

    def _compensate(self, current: Incident) -> None:
        if current.compensation_in_flight is not None:
            self._recover(current)
            return
        if current.compensation_failed:
            failed = ", ".join(map(str, current.compensation_failed))
            self._close(current, ev.INCIDENT_ESCALATED, f"compensation of step {failed} failed")
            return
        done = set(current.compensating)
        floor = min(done) if done else len(current.step_hashes)
        pending = [i for i in self._compensable(current) if i < floor]
        if pending:
            if self._hold_leases(current):
                self.executor.run_compensation(current, pending[0])
            return
        left = self._not_undone(current)
        if current.compensated:
            undone = ", ".join(str(i) for i in current.compensated)
            reason = f"steps {undone} undone; a human follows up"
            self._close(current, ev.INCIDENT_ROLLED_BACK, f"{reason} ({left})" if left else reason)
        else:
            reason = "nothing could be undone"
            self._close(current, ev.INCIDENT_ESCALATED, f"{reason}: {left}" if left else reason)

    def _recover(self, current: Incident) -> None:
        """An intent without a result: Warden stopped mid-step. Settle it, never guess."""
        outcome = self.executor.reconcile(current)
        if not outcome.settled:
            self._close(
                current, ev.INCIDENT_ESCALATED, f"outcome unknown after restart: {outcome.how}"
            )

    def _verifications(self, current: Incident) -> list[str]:
        assert current.plan is not None
        kinds = []
        for step in current.plan.steps:
            spec = self.catalog.get(step.action)
            kind = spec.verification if spec else "health_probe"
            if kind not in kinds:
                kinds.append(kind)
        return kinds

    def _record(self, current: Incident, decision: Decision, context: Any) -> None:
        index = current.next_step
        data: dict[str, Any] = {
            "decision": decision.to_dict(),
            "index": index,
            "describe": decision.describe(),
        }
        if context is not None:
            data["context"] = context.to_cedar()
        recorded = self._event(
            current, ev.DECISION_RECORDED, data, key=f"{index}:{len(current.decisions)}"
        )
        events = [recorded]
        if decision.outcome is Outcome.NEEDS_APPROVAL:
            assert current.plan is not None
            expires = self.clock.now() + timedelta(seconds=self.settings.approvals.timeout_s)
            events.append(
                self._event(
                    current,
                    ev.APPROVAL_REQUESTED,
                    {
                        "step_hash": decision.step_hash,
                        "proposal": {
                            "incident": current.id,
                            "index": index,
                            "step": current.plan.steps[index].to_dict(),
                            "agent": current.plan.agent,
                            "rationale": current.plan.rationale,
                            "confidence": current.plan.confidence,
                        },
                        "approvers": decision.approvers,
                        "approver_roles": list(decision.approver_roles),
                        "expires_at": ev.format_time(expires),
                        "fallback": self.settings.approvals.fallback,
                    },
                    key=decision.step_hash,
                )
            )
        self._append(current, current.id, *events)

    def _await_approval(self, current: Incident) -> None:
        index = current.next_step
        hash_ = current.step_hashes[index]
        pending = current.decision_for(hash_)
        assert pending is not None
        counted = tally(
            current, pending, self.settings.approvals, frozenset(a.name for a in self.agents)
        )
        if counted.met:
            # Approvals lift the need for approval, never a guardrail or a forbid.
            ruling = self.gate.decide(
                current, index, self.situation(counted.counted, counted.roles)
            )
            if ruling.decision.outcome is Outcome.DENY:
                self._record(current, ruling.decision, ruling.context)
                return
            reasons = (
                Reason("approval", f"approved by {', '.join(counted.counted)}"),
                *ruling.decision.reasons,
            )
            granted = Decision(Outcome.ALLOW, hash_, reasons, 0, ruling.decision.bundle_version)
            self._record(current, granted, ruling.context)
            return
        expires_at = next((e for h, e in current.approval_requests if h == hash_), "")
        if expires_at and self.clock.now() >= ev.parse_time(expires_at):
            fallback = self.settings.approvals.fallback
            expired = self._event(
                current,
                ev.APPROVAL_EXPIRED,
                {"step_hash": hash_, "fallback": fallback, "approvals": list(counted.counted)},
                key=hash_,
            )
            self._append(current, current.id, expired)
            reason = f"approval expired at {expires_at} with {len(counted.counted)} of"
            reason += f" {counted.needed} approvals"
            if fallback == "do_nothing":
                reason += "; fallback do_nothing: no action taken"
            self._close(
                self._refreshed(current.id),
                ev.INCIDENT_ESCALATED,
                reason,
                notify=fallback == "escalate",
            )

    def _verify(self, current: Incident) -> None:
        self._hold_leases(current)  # renew: the targets stay ours until the incident closes
        started = ev.parse_time(current.verification_started_at)
        world = self.world()
        checks = [
            verification.check(kind, current.service, world, started)
            for kind in self._verifications(current)
        ]
        if all(c.passed for c in checks):
            self._pass(current, checks)
            return
        now = self.clock.now()
        if (now - started).total_seconds() > self.settings.verification_timeout_s:
            waiting = "; ".join(c.detail for c in checks if not c.passed)
            reason = (
                f"not verified {self.settings.verification_timeout_s:g} s after acting: {waiting}"
            )
            failed = self._event(current, ev.VERIFICATION_FAILED, {"reason": reason})
            self._append(current, current.id, failed)
            self._fail_plan(self._refreshed(current.id), reason)
            return
        if any(c.kind == "health_probe" and not c.passed for c in checks):
            self._probe_for_verification(current.service)

    def _pass(self, current: Incident, checks: list[verification.Check]) -> None:
        recovered = self._recovered_batches(current)
        if recovered:
            # Before the resolution: after a crash between the two, verification passes
            # again and these are appended again, as no-ops (derived ids).
            self.store.append(service_stream(current.service), recovered)
        passed = self._event(
            current,
            ev.VERIFICATION_PASSED,
            {"checks": [{"kind": c.kind, "detail": c.detail} for c in checks]},
        )
        now = self.clock.now()
        first_signal = ev.parse_time(current.first_signal_at)
        resolved = self._event(
            current,
            ev.INCIDENT_RESOLVED,
            {
                "reason": "verified: " + "; ".join(c.detail for c in checks),
                "mttr_s": round((now - first_signal).total_seconds(), 3),
                "time_to_detect_s": round(
                    (ev.parse_time(current.opened_at) - first_signal).total_seconds(), 3
                ),
            },
        )
        self._append(current, current.id, passed, resolved)

    def _recovered_batches(self, current: Incident) -> list[ev.Event]:
        """Batches this incident quarantined, and verified quiet after, are failures no more.

        The pipeline would report them recovered only if it reprocessed them itself; the
        quarantine took them out of its way, so without these they would stay open
        failures and shadow every later failure of the service.
        """
        assert current.plan is not None
        return [
            ev.derived_event(
                ev.BATCH_RECOVERED,
                incident_stream(current.id),
                {"service": current.service, "pipeline": params["pipeline"], "batch": batch},
                ev.format_time(self.clock.now()),
                key=f"{params['pipeline']}/{batch}",
                subject=current.service,
                correlation_id=current.correlation_id,
                traceparent=current.traceparent,
            )
            for index, step in enumerate(current.plan.steps)
            if step.action == "quarantine_batch"
            and index in current.succeeded
            and index not in current.compensated
            for params in [dict(step.params)]
            for batch in [str(params["batch"])]
        ]

    def _probe_for_verification(self, service: str) -> None:
        probe = self.probes.get(service)
        if probe is None:
            return
        last = self._last_verification_probe.get(service, 0.0)
        if time.monotonic() - last < self.settings.verification_probe_every_s:
            return
        self._last_verification_probe[service] = time.monotonic()
        self.record_probe(service, repr(probe), probe.check(), "verification")


def backoff_s(incident_id: str, index: int, attempt: int) -> float:
    """Exponential backoff with jitter for the retry after ``attempt``: 1 s, 2 s, 4 s, ...

    capped at 60 s, times a jitter factor in [0.5, 1.5) derived from the step, so replay
    schedules the same retry at the same time.
    """
    base = min(60.0, 2.0 ** (attempt - 1))
    jitter = 0.5 + int(derived_id("jitter", incident_id, str(index), str(attempt))[:8], 16) / 2**32
    return round(base * jitter, 3)
