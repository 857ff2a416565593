"""Moving an incident one step: decide, act, retry, wait for approval. Runtime.

:class:`Remediation` is the lifecycle as the :class:`~warden.runtime.Runtime` mixes it
in: every method moves one incident one step, appending the events that say so; the
loop folds those events back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason, outcome_label
from warden.domain.ids import derived_id
from warden.domain.incident import Incident, State
from warden.governance.approvals import tally
from warden.governance.context import Situation
from warden.remediation.planning import Planning
from warden.remediation.undoing import Undoing
from warden.remediation.verifying import Verifying


class Remediation(Planning, Undoing, Verifying):
    """Incident lifecycle steps; mixed into :class:`warden.runtime.Runtime`."""

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
            situation = self.situation()
            ruling = self.gate.decide(current, index, situation)
            self._record(current, ruling.decision, ruling.context)
            self._decide_in_shadow(current, index, ruling.decision, situation)
            return
        if decision.outcome is Outcome.DENY:
            self._fail_plan(current, f"denied: {decision.describe()}")
            return
        self._run_step(current, index)

    def _decide_in_shadow(
        self, current: Incident, index: int, live: Decision, situation: Situation
    ) -> None:
        """What the shadow bundle would decide, beside the live decision; nothing acts on it."""
        if self.shadow is None:
            return
        shadowed = self.shadow.decide(current, index, situation).decision
        assert current.plan is not None
        step = current.plan.steps[index]
        data = {
            "incident_id": current.id,
            "service": current.service,
            "index": index,
            "step_hash": live.step_hash,
            "action": step.action,
            "target": step.target,
            "agent": current.plan.agent,
            "live": _verdict(live),
            "shadow": _verdict(shadowed),
            "agree": _verdict(live, bundle=False) == _verdict(shadowed, bundle=False),
        }
        event = ev.derived_event(
            ev.SHADOW_DECIDED,
            ev.SHADOW_STREAM,
            data,
            ev.format_time(self.clock.now()),
            key=f"{current.id}:{live.step_hash}:{shadowed.bundle_version}",
            subject=current.service,
            correlation_id=current.correlation_id,
            traceparent=current.traceparent,
        )
        self.store.append(ev.SHADOW_STREAM, [event])

    def _run_step(self, current: Incident, index: int) -> None:
        blocked = self.gate.blocked(current, index, self.situation())
        if blocked is not None:
            self._fail_plan(current, f"stopped before acting: {blocked[0]}: {blocked[1]}")
            return
        latest = current.decision_for(current.step_hashes[index])
        if latest is not None and latest.outcome is Outcome.DENY:
            self._fail_plan(current, f"denied: {latest.describe()}")
            return
        if not self._still_allowed(current, index):
            return
        if not self._hold_leases(current):
            return
        self.executor.run_next_step(current, self._state.controls)

    def _still_allowed(self, current: Incident, index: int) -> bool:
        """Whether the bundle and autonomy in force now would allow the step again.

        An allow can be old by the time the step runs: a retry waits out its backoff, a
        lease is busy. When the bundle or the autonomy level changed meanwhile and now
        says otherwise, the fresh decision is recorded instead of acting (approvals
        already given for the step still count).
        """
        hash_ = current.step_hashes[index]
        agents = frozenset(a.name for a in self.agents)
        given = current.decision_for(hash_)
        assert given is not None
        counted = tally(current, given, self.settings.approvals, agents, users=self._state.users)
        ruling = self.gate.decide(current, index, self.situation(counted.counted, counted.roles))
        fresh = ruling.decision
        if fresh.outcome is Outcome.ALLOW:
            return True
        if (
            fresh.outcome is Outcome.NEEDS_APPROVAL
            and tally(current, fresh, self.settings.approvals, agents, users=self._state.users).met
        ):
            return True
        self._record(current, fresh, ruling.context)
        return False

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

    def _recover(self, current: Incident) -> None:
        """An intent without a result: Warden stopped mid-step. Settle it, never guess."""
        outcome = self.executor.reconcile(current)
        if not outcome.settled:
            self._close(
                current, ev.INCIDENT_ESCALATED, f"outcome unknown after restart: {outcome.how}"
            )

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
        agents = frozenset(a.name for a in self.agents)
        counted = tally(current, pending, self.settings.approvals, agents, users=self._state.users)
        if counted.rejected:
            # A person who may decide said no: nothing runs, and a human takes it from here.
            reason = f"proposal {hash_[:12]} rejected by {', '.join(counted.rejected)}"
            self._close(current, ev.INCIDENT_ESCALATED, reason, notify=False)
            return
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
                *_ignored(counted.ignored),
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
                {
                    "step_hash": hash_,
                    "fallback": fallback,
                    "approvals": list(counted.counted),
                    "ignored": [f"{who}: {why}" for who, why in counted.ignored],
                },
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


def _ignored(ignored: tuple[tuple[str, str], ...]) -> tuple[Reason, ...]:
    """Approvals that did not count, with why, kept with the decision in the audit log."""
    return tuple(Reason("approval:ignored", f"{who}: {why}") for who, why in ignored)


def _verdict(decision: Decision, *, bundle: bool = True) -> dict[str, Any]:
    """A decision as a shadow comparison shows it: outcome, deciding policy, bundle."""
    out: dict[str, Any] = {
        "outcome": outcome_label(decision.outcome.value, decision.approvers),
        "policy": decision.reasons[0].policy_id if decision.reasons else "",
    }
    if bundle:
        out["bundle"] = decision.bundle_version
    return out


def backoff_s(incident_id: str, index: int, attempt: int) -> float:
    """Exponential backoff with jitter for the retry after ``attempt``: 1 s, 2 s, 4 s, ...

    capped at 60 s, times a jitter factor in [0.5, 1.5) derived from the step, so replay
    schedules the same retry at the same time.
    """
    base = min(60.0, 2.0 ** (attempt - 1))
    jitter = 0.5 + int(derived_id("jitter", incident_id, str(index), str(attempt))[:8], 16) / 2**32
    return round(base * jitter, 3)
