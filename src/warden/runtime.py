"""The reconcile loop that wires the four planes together. Runtime (shell).

Each tick reads the new events from the store and folds them (health, controls,
incidents), lets agents detect faults and open incidents, then moves every open incident
one step: plan, decide, execute, verify, close. The runtime's own appends come back
through the same tail, so live operation and replay fold the very same history.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from warden.domain import control, drift, health, incident, verification
from warden.domain import events as ev
from warden.domain import signals as sig
from warden.domain.catalog import Catalog
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.errors import ConcurrencyConflict
from warden.domain.ids import derived_id, incident_stream, service_stream, traceparent_for
from warden.domain.incident import Incident, State
from warden.domain.topology import Topology
from warden.domain.world import World
from warden.governance.approvals import ApprovalSettings, tally
from warden.governance.context import ActionRecord, FreezeWindow, Situation

if TYPE_CHECKING:
    from warden.agents.protocol import Agent, Detection
    from warden.execution.executor import Executor
    from warden.governance.bundles import BundleWatcher
    from warden.governance.gate import DecisionGate
    from warden.ingest.gate import IngestGate
    from warden.ingest.probes import Probe, ProbeResult
    from warden.ports import Clock, EventStore, Leases

HISTORY_KEPT = timedelta(hours=1)

EventListener = Callable[[ev.Event], None]


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
class _Folded:
    health: dict[str, health.Health] = field(default_factory=dict)
    controls: control.Controls = field(default_factory=control.Controls)
    incidents: dict[str, Incident] = field(default_factory=dict)
    actions: deque[ActionRecord] = field(default_factory=deque)
    signals: dict[str, sig.Signals] = field(default_factory=dict)
    reported: dict[str, dict[str, str]] = field(default_factory=dict)
    open_drift: dict[tuple[str, str], str] = field(default_factory=dict)
    position: int = 0


class Runtime:
    """Drives incidents from detection to a terminal state."""

    def __init__(
        self,
        store: EventStore,
        ingest: IngestGate,
        agents: Sequence[Agent],
        gate: DecisionGate,
        executor: Executor,
        probes: Mapping[str, Probe],
        clock: Clock,
        settings: RuntimeSettings,
        *,
        catalog: Catalog | None = None,
        topology: Topology | None = None,
        policies: BundleWatcher | None = None,
        leases: Leases | None = None,
        after_tick: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.ingest = ingest
        self.agents = list(agents)
        self.gate = gate
        self.executor = executor
        self.probes = dict(probes)
        self.clock = clock
        self.settings = settings
        self.catalog = catalog or Catalog()
        self.topology = topology or Topology()
        self.policies = policies
        self.leases = leases
        self.after_tick = after_tick
        self._lease_wait: dict[str, float] = {}
        # Configured autonomy rules come first; audited changes in the log override them.
        self._state = _Folded(controls=control.Controls(autonomy=settings.autonomy_rules))
        self._listeners: list[EventListener] = []
        self._last_verification_probe: dict[str, float] = {}
        self._last_probe_ok: dict[str, bool] = {}
        self._probe_lock = threading.Lock()
        self._last_policy_poll = 0.0
        # What agents may read of the configuration: limits, and desired state as desired.*.
        limits: dict[str, dict[str, str]] = {s: dict(v) for s, v in settings.limits.items()}
        for service, fields in settings.desired.items():
            for name, value in fields.items():
                limits.setdefault(service, {})[f"desired.{name}"] = value
        self._limits = {s: tuple(sorted(v.items())) for s, v in limits.items()}

    # -- observation -------------------------------------------------------------------

    def subscribe(self, listener: EventListener) -> None:
        """Call ``listener`` with every event the runtime folds, in log order."""
        self._listeners.append(listener)

    @property
    def incidents(self) -> dict[str, Incident]:
        """Every incident seen so far, by id."""
        return dict(self._state.incidents)

    @property
    def controls(self) -> control.Controls:
        """The kill switches, autonomy levels and policy version in force."""
        return self._state.controls

    def world(self) -> World:
        """What agents see now."""
        depends = {n.name: n.depends_on for n in self.topology.services.values()}
        return World(
            now=self.clock.now(),
            health=dict(self._state.health),
            depends_on=depends,
            signals=dict(self._state.signals),
            limits=self._limits,
        )

    def detect_drift(self) -> None:
        """Compare desired with observed state; record drifts that appeared or went away."""
        if not self.settings.desired:
            return
        observed = drift.observed_state(self._state.health, self._state.reported)
        when = ev.format_time(self.clock.now())
        for change in drift.changes(self.settings.desired, observed, self._state.open_drift):
            type_ = ev.DRIFT_DETECTED if change.appeared else ev.DRIFT_RESOLVED
            event = ev.derived_event(
                type_,
                service_stream(change.service),
                {
                    "service": change.service,
                    "field": change.field,
                    "desired": change.desired,
                    "observed": change.observed,
                },
                when,
                key=f"{change.field}:{change.observed}:{when}",
                subject=change.service,
            )
            self.store.append(service_stream(change.service), [event])

    def record_probe(self, service: str, probe: str, result: ProbeResult, purpose: str) -> None:
        """Store a probe result through the quality gates.

        Failures are always stored; a success only when it changes what is known (the
        first after failures) or when it verifies a remediation, so a healthy fleet does
        not flood the log.
        """
        with self._probe_lock:
            previous = self._last_probe_ok.get(service)
            self._last_probe_ok[service] = result.ok
        if result.ok and previous is True and purpose == "watch":
            return
        now = ev.format_time(self.clock.now())
        data: dict[str, Any] = {
            "service": service,
            "probe": probe,
            "latency_ms": round(result.latency_ms, 2),
            "status": result.status,
            "purpose": purpose,
        }
        if not result.ok:
            data["error"] = result.error
        event_id = uuid.uuid4().hex
        raw = ev.Event(
            id=event_id,
            source=f"warden://probe/{service}",
            type=ev.PROBE_SUCCEEDED if result.ok else ev.PROBE_FAILED,
            time=now,
            data=data,
            subject=service,
            correlation_id=event_id,
        ).to_cloudevent()
        self.ingest.admit(raw, service_stream(service), f"probe:{service}")

    # -- the loop ----------------------------------------------------------------------

    def tail(self) -> list[ev.Event]:
        """Fold every event appended since the last call; returns them."""
        fresh = self.store.read_all(self._state.position)
        for event in fresh:
            self._fold(event)
            self._state.position = event.position
            for listener in self._listeners:
                listener(event)
        return fresh

    def _fold(self, event: ev.Event) -> None:
        state = self._state
        if event.type in (ev.PROBE_FAILED, ev.PROBE_SUCCEEDED):
            service = str(event.data.get("service", event.subject))
            current = state.health.get(service, health.Health(service))
            state.health[service] = health.observe(current, event)
        elif event.stream == ev.CONTROL_STREAM:
            state.controls = control.observe(state.controls, event)
        elif event.type in sig.SIGNAL_TYPES:
            service = sig.service_of(event)
            current_signals = state.signals.get(service, sig.Signals(service))
            state.signals[service] = sig.observe(current_signals, event)
            if event.type == ev.DRIFT_DETECTED:
                drifted = (service, str(event.data["field"]))
                state.open_drift[drifted] = str(event.data["observed"])
            elif event.type == ev.DRIFT_RESOLVED:
                state.open_drift.pop((service, str(event.data["field"])), None)
        elif event.type == ev.STATE_OBSERVED:
            drift.observe_report(state.reported, event)
        elif event.type in incident.INCIDENT_EVENT_TYPES:
            key = event.stream.removeprefix("incident-")
            folded = incident.apply(state.incidents.get(key), event)
            state.incidents[key] = folded
            if folded.state.terminal and self.leases is not None and folded.plan is not None:
                for target in {s.target for s in folded.plan.steps}:
                    self.leases.release(target, f"{self.executor.worker}:{folded.id}")
            if event.type == ev.STEP_INTENDED:
                state.actions.append(
                    ActionRecord(event.moment, str(event.data["action"]), str(event.data["target"]))
                )
                while state.actions and event.moment - state.actions[0].at > HISTORY_KEPT:
                    state.actions.popleft()

    def tick(self) -> int:
        """One round: fold, detect, move each open incident one step. Returns events added."""
        added = len(self.tail())
        self._reload_policies()
        self.detect_drift()
        added += len(self.tail())
        for agent in self.agents:
            for detection in agent.detect(self.world()):
                self._open(detection)
        added += len(self.tail())
        for incident_id in sorted(self._state.incidents):
            current = self._state.incidents[incident_id]
            if not current.state.terminal:
                try:
                    self._advance(current)
                except ConcurrencyConflict:
                    pass  # another worker moved this incident first; the tail shows how
                added += len(self.tail())
        if self.after_tick is not None:
            self.after_tick()
        return added

    def run(self, should_stop: Callable[[], bool], period_s: float = 0.1) -> None:
        """Tick until ``should_stop`` says so."""
        while not should_stop():
            started = time.monotonic()
            self.tick()
            time.sleep(max(0.0, period_s - (time.monotonic() - started)))

    # -- policy bundle -----------------------------------------------------------------

    def _reload_policies(self) -> None:
        if self.policies is None:
            return
        now = time.monotonic()
        first = self._last_policy_poll == 0.0
        if not first and now - self._last_policy_poll < self.settings.policy_poll_s:
            return
        self._last_policy_poll = now
        reload = self.policies.poll()
        when = ev.format_time(self.clock.now())
        if reload is not None and reload.bundle is None:
            rejected = ev.derived_event(
                ev.POLICY_REJECTED,
                ev.CONTROL_STREAM,
                {"error": reload.error, "serving": self.gate.bundle.version},
                when,
                key=f"{reload.error}:{when}",
            )
            self.store.append(ev.CONTROL_STREAM, [rejected])
            return
        if reload is not None and reload.bundle is not None:
            self.gate.bundle = reload.bundle
        version = self.gate.bundle.version
        if self._state.controls.policy_version != version:
            loaded = ev.derived_event(
                ev.POLICY_LOADED,
                ev.CONTROL_STREAM,
                {"version": version, "directory": str(self.gate.bundle.directory)},
                when,
                key=f"{version}:{when}",
            )
            self.store.append(ev.CONTROL_STREAM, [loaded])
        self.tail()

    # -- incident lifecycle ------------------------------------------------------------

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

    def _open(self, detection: Detection) -> None:
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
        candidates = [
            (agent, plan)
            for agent in self.agents
            if current.kind in agent.handles or "*" in agent.handles
            for plan in [agent.propose(current, world)]
            if plan is not None
        ]
        if not candidates:
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
            delay = backoff_s(current.id, index, attempt)
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
        self._close(current, ev.INCIDENT_ESCALATED, reason)

    def _compensable(self, current: Incident) -> list[int]:
        """Completed steps with a runnable compensation, last first."""
        assert current.plan is not None
        found = []
        for index in sorted(current.succeeded, reverse=True):
            spec = self.catalog.get(current.plan.steps[index].action)
            if spec is not None and spec.compensation and self.executor.can_run(spec.compensation):
                found.append(index)
        return found

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
        if current.compensated:
            undone = ", ".join(str(i) for i in current.compensated)
            self._close(
                current, ev.INCIDENT_ROLLED_BACK, f"steps {undone} undone; a human follows up"
            )
        else:
            self._close(current, ev.INCIDENT_ESCALATED, "nothing could be undone")

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
        counted = tally(current, pending, self.settings.approvals)
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


def load_incidents(store: EventStore) -> dict[str, Incident]:
    """Every incident in the store, folded from its stream, by id."""
    found: dict[str, Incident] = {}
    for stream in store.streams("incident-"):
        folded = incident.fold(store.read_stream(stream))
        if folded is not None:
            found[folded.id] = folded
    return found


__all__ = ["EventListener", "Runtime", "RuntimeSettings", "load_incidents"]
