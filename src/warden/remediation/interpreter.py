"""Carries out the pure lifecycle's commands: gate, agents, executor, leases, probes. Runtime.

:func:`warden.domain.lifecycle.next_commands` says what to do; this does it. A decision
is asked of the control plane once per step and recorded; just before acting the
guardrails are checked again, and the bundle is asked again only when what it decided
on (bundle version, kill switches, autonomy, freezes) changed since: only a changed
answer is recorded. Steps and compensations are handed to :class:`ActionWorkers` once
their intent is stored, so the loop never waits for an action. Taking the leases on a
plan's targets and writing an intent is one append; when the step was allowed this very
round, its decision goes in the same append: one transaction, one disk flush.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain import joining, merging
from warden.domain import lifecycle as lc
from warden.domain.decisions import Decision, Outcome, Reason, outcome_label
from warden.domain.errors import PolicyDenied
from warden.domain.ids import incident_stream
from warden.domain.incident import State, apply
from warden.domain.lifecycle import View
from warden.governance.approvals import tally
from warden.governance.context import Situation
from warden.ports import GroupedFlush, LeaseClaim, LeasedAppender

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

    from warden.domain.catalog import Catalog
    from warden.domain.incident import Incident
    from warden.domain.topology import Topology
    from warden.domain.users import Registry
    from warden.domain.world import World
    from warden.execution.executor import Executor
    from warden.execution.workers import ActionWorkers
    from warden.governance.gate import DecisionGate
    from warden.ports import Clock, EventStore, Leases
    from warden.remediation.planning import Planner
    from warden.remediation.state import Folded, RuntimeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Wait:
    """An incident that only waited when last advanced, and what that rested on."""

    incident: Incident
    settings: lc.LifecycleSettings
    catalog: Catalog
    since: datetime
    waiting: lc.Waiting
    health: object  # the service's health and signals then (None: none yet)
    signals: object
    probed: bool  # whether it asked for a probe


class Interpreter:
    """The shell's half of the lifecycle: one method per kind of command."""

    def __init__(
        self,
        *,
        store: EventStore,
        gate: DecisionGate,
        shadow: Callable[[], DecisionGate | None],
        executor: Executor,
        workers: ActionWorkers,
        leases: Leases | None,
        planner: Planner,
        settings: Callable[[], RuntimeSettings],
        clock: Clock,
        catalog: Catalog,
        topology: Topology,
        state: Callable[[], Folded],
        world: Callable[[], World],
        probe: Callable[[str], None],
        has_probe: Callable[[str], bool] = lambda service: True,
    ) -> None:
        self.store = store
        self.gate = gate
        self._shadow = shadow
        self.executor = executor
        self.workers = workers
        self.leases = leases
        self.planner = planner
        self._settings = settings
        self.clock = clock
        self.catalog = catalog
        self.topology = topology
        self._state = state
        self._world = world
        self._probe = probe
        self._has_probe = has_probe
        # Verifying incidents that only wait, by id: a round skips them while nothing
        # their wait rests on changed (see :meth:`waits`).
        self._waits: dict[str, _Wait] = {}
        self._lease_wait: dict[str, float] = {}
        self._renewed: dict[str, float] = {}  # when each incident's leases were last taken
        self._last_verification_probe: dict[str, float] = {}
        # What each step's decision was made on: the bundle is asked again only on a change.
        self._decided_on: dict[str, Hashable] = {}
        self._rules: tuple[RuntimeSettings, lc.LifecycleSettings] | None = None
        # A store whose commits can share a flush (the loop's round) is flushed before acting.
        self._grouped = store if isinstance(store, GroupedFlush) else None
        # Leases in the store's own database are taken in the very append of the intent.
        self._leased = (
            store if isinstance(store, LeasedAppender) and leases is not None
            and store.shares_leases(leases) else None
        )  # fmt: skip

    def _users(self) -> Registry:
        """The people registered now: approvals count only when one of them signed."""
        return self._state().users

    @property
    def settings(self) -> RuntimeSettings:
        """The runtime's settings in force."""
        return self._settings()

    @property
    def _lifecycle(self) -> lc.LifecycleSettings:
        settings = self._settings()
        if self._rules is None or self._rules[0] is not settings:
            self._rules = (settings, settings.lifecycle)
        return self._rules[1]

    # -- the view and the round ----------------------------------------------------------

    def view(self, open_ids: Iterable[str] | None = None) -> View:
        """What the pure lifecycle needs beside each incident, as folded now.

        ``open_ids``: the incidents not closed (every incident is looked at without it).
        """
        state = self._state()
        counted: dict[str, tuple[str, ...]] = {}
        rejected: dict[str, tuple[str, ...]] = {}
        ignored: dict[str, tuple[str, ...]] = {}
        approved = set()
        agents = frozenset(a.name for a in self.planner.agents)
        looked_at = (
            state.incidents.values() if open_ids is None else [state.incidents[k] for k in open_ids]
        )
        for incident in looked_at:
            if incident.state.value != "awaiting_approval":
                continue
            pending = incident.decision_for(incident.step_hashes[incident.next_step])
            if pending is None or not (incident.approvals or incident.rejections):
                continue
            given = tally(incident, pending, self.settings.approvals, agents, users=state.users)
            counted[incident.id] = given.counted
            rejected[incident.id] = given.rejected
            ignored[incident.id] = tuple(f"{who}: {why}" for who, why in given.ignored)
            if given.met:
                approved.add(incident.id)
        return View(
            world=self._world(),
            controls=state.controls,
            topology=self.topology,
            catalog=self.catalog,
            runnable=self.executor.runnable(),
            approved=frozenset(approved),
            counted=counted,
            rejected=rejected,
            ignored=ignored,
            running=self.workers.running(state.incidents),
            environment=self.settings.environment,
            default_autonomy=self.settings.autonomy,
            leaders=merging.leaders(looked_at),  # only open incidents lead
            incidents=state.incidents,
        )

    def advance(self, incident: Incident, view: View) -> bool:
        """Carry out what the lifecycle says for ``incident``, in order, while each goes.

        Returns False when there was nothing to do (the incident waits).
        """
        if self.waits(incident):
            return False
        now = self.clock.now()
        commands = lc.next_commands(incident, view, self._lifecycle, now)
        for command, hold in _with_leases(commands):
            if isinstance(command, (lc.RunStep, lc.RunCompensation)):
                self._act(incident, command, view, hold)
            elif not self.carry_out(incident, command, view):
                break
        self._note_wait(incident, view, commands, now)
        return bool(commands)

    def waits(self, incident: Incident) -> bool:
        """Whether ``incident`` still only waits, on the very inputs it waited on last.

        Then the lifecycle would ask the same again, which does nothing: renew leases
        not due yet, probe a service that has no probe. A round with many incidents in
        verification need not ask each again for every batch of events folded.
        """
        wait = self._waits.get(incident.id)
        if wait is None:
            return False
        state = self._state()
        now = self.clock.now()
        service = incident.service
        return (
            wait.incident is incident
            and wait.settings is self._lifecycle
            and wait.catalog is self.catalog
            and wait.since <= now < wait.waiting.until
            and (not wait.waiting.health or state.health.get(service) is wait.health)
            and (not wait.waiting.signals or state.signals.get(service) is wait.signals)
            and not (wait.probed and self._has_probe(service))
        )

    def _note_wait(
        self, incident: Incident, view: View, commands: list[lc.Command], now: datetime
    ) -> None:
        """Remember ``incident`` if all it was told to do is wait (see :meth:`waits`)."""
        self._waits.pop(incident.id, None)
        if incident.state is not State.VERIFYING:  # the only state whose wait is kept
            return
        only_waits = all(
            isinstance(c, lc.Probe) or (isinstance(c, lc.HoldLeases) and c.renew_only)
            for c in commands
        )
        waiting = lc.waits_on(incident, view, self._lifecycle, now) if only_waits else None
        if waiting is None:
            return
        if self.leases is not None:  # renewed when a third of the lease's time went by
            renewed = self._renewed.get(incident.id)
            if renewed is None:
                return
            due = datetime.fromtimestamp(renewed + self.settings.lease_ttl_s / 3, UTC)
            waiting = lc.Waiting(min(waiting.until, due), waiting.health, waiting.signals)
        self._waits[incident.id] = _Wait(
            incident,
            self._lifecycle,
            view.catalog,
            now,
            waiting,
            view.world.health.get(incident.service),
            view.world.signals.get(incident.service),
            any(isinstance(c, lc.Probe) for c in commands),
        )

    def carry_out(self, incident: Incident, command: lc.Command, view: View) -> bool:
        """Do one command; False when the rest of the incident's commands must wait."""
        if isinstance(command, lc.Append):
            events = list(command.events)
            if command.stream == incident_stream(incident.id):
                # One page per fault: an escalation the human already has pages nobody.
                now, repage = self.clock.now(), self.settings.repage_after_s
                events = [
                    joining.page_once(e, incident, view.incidents, repage, now) for e in events
                ]
            self.store.append(command.stream, events, command.expected_version)
            return True
        if isinstance(command, lc.Plan):
            for append in self.planner.plan(incident, view.world):
                self.carry_out(incident, append, view)
            return True
        if isinstance(command, lc.Decide):
            self._decide(incident, command, view)
            return True
        if isinstance(command, lc.HoldLeases):
            if command.renew_only and not self._renewal_due(incident.id):
                return True
            held = self._hold_leases(incident, command.targets, view)
            return held or command.renew_only
        if isinstance(command, lc.ReleaseLeases):
            self.release(command)
            return True
        if isinstance(command, (lc.RunStep, lc.RunCompensation)):
            self._act(incident, command, view, hold=())
            return True
        if isinstance(command, lc.Recover):
            self._recover(incident)
            return True
        self._probe_for_verification(command.service)
        return True

    # -- deciding ------------------------------------------------------------------------

    def situation(self, approvers: tuple[str, ...] = (), roles: tuple[str, ...] = ()) -> Situation:
        """Everything around a decision now: controls, topology, history, freezes."""
        state = self._state()
        return Situation(
            now=self.clock.now(),
            environment=self.settings.environment,
            default_autonomy=self.settings.autonomy,
            controls=state.controls,
            topology=self.topology,
            history=tuple(state.actions),
            freezes=self.settings.freezes,
            approvers=approvers,
            approval_roles=roles,
            agent_caps=dict(self.settings.agent_caps),
        )

    def _decide(self, incident: Incident, command: lc.Decide, view: View) -> None:
        index = command.index
        hash_ = incident.step_hashes[index]
        if not command.approved:
            situation = self.situation()
            ruling = self.gate.decide(incident, index, situation)
            self._record(incident, ruling.decision, ruling.context, view)
            self._decide_in_shadow(incident, index, ruling.decision, situation)
            return
        pending = incident.decision_for(hash_)
        assert pending is not None
        agents = frozenset(a.name for a in self.planner.agents)
        counted = tally(incident, pending, self.settings.approvals, agents, users=self._users())
        # Approvals lift the need for approval, never a guardrail or a forbid.
        ruling = self.gate.decide(incident, index, self.situation(counted.counted, counted.roles))
        if ruling.decision.outcome is Outcome.DENY:
            self._record(incident, ruling.decision, ruling.context)
            return
        reasons = (
            Reason("approval", f"approved by {', '.join(counted.counted)}"),
            # Approvals that did not count stay with the decision, in the audit log.
            *(Reason("approval:ignored", f"{who}: {why}") for who, why in counted.ignored),
            *ruling.decision.reasons,
        )
        granted = Decision(Outcome.ALLOW, hash_, reasons, 0, ruling.decision.bundle_version)
        self._record(incident, granted, ruling.context, view)

    def _record(
        self, incident: Incident, decision: Decision, context: Any, view: View | None = None
    ) -> None:
        """Append the decision; an allowed step runs at once, written in the same append.

        With ``view``, a step allowed now has its leases taken and its intent written in
        the decision's own append (what the lifecycle would ask next round, on the same
        inputs): one durable write from decision to action.
        """
        cedar = context.to_cedar() if context is not None else None
        now = self.clock.now()
        events = lc.decision_events(incident, decision, cedar, self._lifecycle, now)
        self._decided_on[decision.step_hash] = self._inputs(incident, incident.next_step)
        if view is not None and decision.outcome is Outcome.ALLOW:
            after = incident
            for event in events:
                after = apply(after, event)
            then = _with_leases(lc.next_commands(after, view, self._lifecycle, now))
            if len(then) == 1 and isinstance(then[0][0], lc.RunStep):
                self._act(after, then[0][0], view, then[0][1], decided=(incident, events))
                return
        self.store.append(incident_stream(incident.id), events, incident.version)

    def _inputs(self, incident: Incident, index: int) -> Hashable:
        """What a decision on a step depends on beyond the incident itself.

        While it is unchanged, the bundle gives the same answer.
        """
        assert incident.plan is not None
        now = self.clock.now()
        target = incident.plan.steps[index].target
        domain = self.topology.domain_of(target)
        freezes = tuple(f.covers(now, domain) for f in self.settings.freezes)
        return (self.gate.bundle_for(target).version, self._state().controls, freezes)

    def _decide_in_shadow(
        self, incident: Incident, index: int, live: Decision, situation: Situation
    ) -> None:
        """What the shadow bundle would decide, beside the live decision; nothing acts on it."""
        shadow = self._shadow()
        if shadow is None:
            return
        shadowed = shadow.decide(incident, index, situation).decision
        assert incident.plan is not None
        step = incident.plan.steps[index]
        data = {
            "incident_id": incident.id,
            "service": incident.service,
            "index": index,
            "step_hash": live.step_hash,
            "action": step.action,
            "target": step.target,
            "agent": incident.plan.agent,
            "live": _verdict(live),
            "shadow": _verdict(shadowed),
            "agree": _verdict(live, bundle=False) == _verdict(shadowed, bundle=False),
        }
        event = ev.derived_event(
            ev.SHADOW_DECIDED,
            ev.SHADOW_STREAM,
            data,
            ev.format_time(self.clock.now()),
            key=f"{incident.id}:{live.step_hash}:{shadowed.bundle_version}",
            subject=incident.service,
            correlation_id=incident.correlation_id,
            traceparent=incident.traceparent,
        )
        self.store.append(ev.SHADOW_STREAM, [event])

    # -- acting --------------------------------------------------------------------------

    def _act(
        self,
        incident: Incident,
        command: lc.RunStep | lc.RunCompensation,
        view: View,
        hold: tuple[str, ...],
        decided: tuple[Incident, list[ev.Event]] | None = None,
    ) -> None:
        """Take the leases on ``hold``, write the intent, hand it to a worker.

        The leases and the intent are one append when the store keeps the leases. With
        ``decided`` (the incident as stored and the decision events that allowed the step
        this round, folded into ``incident``), the decision goes in that append too and the
        re-check is skipped: it was made on the same inputs a moment ago.
        """
        if isinstance(command, lc.RunCompensation):
            intent = self.executor.compensation_intent(incident, command.index, view.controls)
        else:
            if decided is None:
                blocked = self.gate.blocked(incident, command.index, self.situation())
                if blocked is not None:
                    reason = f"stopped before acting: {blocked[0]}: {blocked[1]}"
                    for then in lc.fail_plan(incident, view, reason, self.clock.now()):
                        self.carry_out(incident, then, view)
                    return
                if not self._still_allowed(incident, command.index):
                    return
            try:
                intent = self.executor.step_intent(incident, view.controls)
            except PolicyDenied:
                if decided is None:
                    raise
                # The decision is recorded alone; the next round's RunStep says why not.
                self.store.append(incident_stream(decided[0].id), decided[1], decided[0].version)
                return
        base, before = decided if decided is not None else (incident, [])
        stored = self._append_holding(base, [*before, intent.event], hold)
        if stored is None:
            # A target is busy: the decision stands, the step waits for its leases.
            if before:
                self.store.append(incident_stream(base.id), before, base.version)
            self._lease_busy(incident, hold, view)
            return
        if self._grouped is not None:
            self._grouped.flush()  # the intent is on disk before the action starts
        self.workers.submit(self.executor.claimed(intent, stored[-1]))

    def _append_holding(
        self, incident: Incident, events: list[ev.Event], hold: tuple[str, ...]
    ) -> list[ev.Event] | None:
        """Append after ``incident`` holding the leases on ``hold``; None while one is busy."""
        stream = incident_stream(incident.id)
        if not hold or self.leases is None:
            return self.store.append(stream, events, incident.version)
        now = self.clock.now().timestamp()
        holder = f"{self.executor.worker}:{incident.id}"
        ttl = self.settings.lease_ttl_s
        if self._leased is not None:
            claim = LeaseClaim(hold, holder, ttl, now)
            stored = self._leased.append_leased(stream, events, incident.version, claim)
        elif all(self.leases.acquire(t, holder, ttl, now) is not None for t in hold):
            stored = self.store.append(stream, events, incident.version)
        else:
            stored = None
        if stored is not None:
            self._lease_wait.pop(incident.id, None)
            self._renewed[incident.id] = now
        return stored

    def _still_allowed(self, incident: Incident, index: int) -> bool:
        """Whether the bundle and autonomy in force now would allow the step again.

        An allow can be old by the time the step runs: a retry waits out its backoff, a
        lease is busy. When what the decision was made on changed meanwhile and the
        bundle now says otherwise, the fresh decision is recorded instead of acting
        (approvals already given for the step still count). Unchanged inputs give the
        same answer: the bundle is not asked again.
        """
        hash_ = incident.step_hashes[index]
        inputs = self._inputs(incident, index)
        if self._decided_on.get(hash_) == inputs:
            return True
        agents = frozenset(a.name for a in self.planner.agents)
        given = incident.decision_for(hash_)
        assert given is not None
        users = self._users()
        counted = tally(incident, given, self.settings.approvals, agents, users=users)
        ruling = self.gate.decide(incident, index, self.situation(counted.counted, counted.roles))
        fresh = ruling.decision
        if fresh.outcome is Outcome.ALLOW or (
            fresh.outcome is Outcome.NEEDS_APPROVAL
            and tally(incident, fresh, self.settings.approvals, agents, users=users).met
        ):
            self._decided_on[hash_] = inputs
            return True
        self._record(incident, fresh, ruling.context)
        return False

    def _recover(self, incident: Incident) -> None:
        """An intent without a result: Warden stopped mid-step. Settle it, never guess.

        On a shared log the intent may be another worker's, still acting (its action can
        take minutes): while that worker holds the lease on the target, it is left alone.
        """
        if self._held_by_its_worker(incident):
            return
        outcome = self.executor.reconcile(incident)
        if not outcome.settled:
            reason = f"outcome unknown after restart: {outcome.how}"
            event = lc.incident_event(
                incident, ev.INCIDENT_ESCALATED, {"reason": reason}, self.clock.now()
            )
            self.store.append(incident_stream(incident.id), [event], incident.version)

    def _held_by_its_worker(self, incident: Incident) -> bool:
        """Whether the worker that wrote the open intent still holds its target's lease."""
        if self.leases is None:
            return False
        stream = self.store.read_stream(incident_stream(incident.id))
        intents = [e for e in stream if e.type in (ev.STEP_INTENDED, ev.COMPENSATION_INTENDED)]
        if not intents:
            return False
        data = intents[-1].data
        worker = str(data.get("worker", ""))
        if not worker or worker == self.executor.worker:
            return False  # this worker's own intent, and no worker here has it: a restart
        lease = self.leases.holder(str(data.get("target", "")), self.clock.now().timestamp())
        return lease is not None and lease.holder == f"{worker}:{incident.id}"

    # -- leases and probes ---------------------------------------------------------------

    def _hold_leases(self, incident: Incident, targets: tuple[str, ...], view: View) -> bool:
        """Take (or renew) the lease on every target of the plan; False while one is busy.

        Leases are held from the first step until the incident closes, so no other agent,
        incident or worker acts on those resources in between.
        """
        if self.leases is None:
            return True
        now = self.clock.now().timestamp()
        holder = f"{self.executor.worker}:{incident.id}"
        for target in targets:
            if self.leases.acquire(target, holder, self.settings.lease_ttl_s, now) is None:
                self._lease_busy(incident, targets, view)
                return False
        self._lease_wait.pop(incident.id, None)
        self._renewed[incident.id] = now
        return True

    def _lease_busy(self, incident: Incident, targets: tuple[str, ...], view: View) -> None:
        """A target is another holder's: wait for it, and give the plan up after a while."""
        if self.leases is None:
            return
        now = self.clock.now().timestamp()
        waited_since = self._lease_wait.setdefault(incident.id, now)
        if now - waited_since <= self.settings.lease_wait_s:
            return
        busy = [(t, lease) for t in targets if (lease := self.leases.holder(t, now)) is not None]
        who = ", ".join(f"{t} ({lease.holder})" for t, lease in busy) or "?"
        reason = f"{who} stayed busy for {self.settings.lease_wait_s:g} s"
        for then in lc.fail_plan(incident, view, reason, self.clock.now()):
            self.carry_out(incident, then, view)

    def _renewal_due(self, incident_id: str) -> bool:
        """Whether a third of the lease's time went by since it was last taken or renewed.

        A lease is renewed while its incident verifies or a worker acts, not every round:
        that would be a write per incident per round.
        """
        last = self._renewed.get(incident_id)
        now = self.clock.now().timestamp()
        return last is None or now - last >= self.settings.lease_ttl_s / 3

    def next_due(self, now: float) -> float | None:
        """When a lease timer of this shell next falls due after ``now`` (timestamps).

        A plan waiting for a busy target gives up once it waited more than
        ``lease_wait_s``; a verifying or acting incident renews its leases a third of
        their time after it last took them. None: no such timer runs. The pure
        lifecycle's own timers are :func:`warden.domain.lifecycle.next_due`'s.
        """
        settings = self.settings
        due = [since + settings.lease_wait_s + 1e-6 for since in self._lease_wait.values()]
        incidents = self._state().incidents
        for incident_id, last in self._renewed.items():
            found = incidents.get(incident_id)
            if found is not None and (
                found.state is State.VERIFYING
                or found.in_flight is not None
                or found.compensation_in_flight is not None
            ):
                due.append(last + settings.lease_ttl_s / 3)
        return min((d for d in due if d > now), default=None)

    def release(self, command: lc.ReleaseLeases) -> None:
        """Give back the leases of a closed incident."""
        self._waits.pop(command.incident_id, None)
        if self.leases is None:
            return
        holder = f"{self.executor.worker}:{command.incident_id}"
        self._renewed.pop(command.incident_id, None)
        for target in command.targets:
            self.leases.release(target, holder)

    def _probe_for_verification(self, service: str) -> None:
        # Real time, not the clock: probes are paced by wall time, as the probe loop is.
        last = self._last_verification_probe.get(service, 0.0)
        if time.monotonic() - last < self.settings.verification_probe_every_s:
            return
        self._last_verification_probe[service] = time.monotonic()
        self._probe(service)


def _with_leases(commands: list[lc.Command]) -> list[tuple[lc.Command, tuple[str, ...]]]:
    """Each command with the leases it takes in its own append.

    A step or compensation run takes the leases of the :class:`~lc.HoldLeases` just
    before it (which then goes): the leases and the intent are one write.
    """
    paired: list[tuple[lc.Command, tuple[str, ...]]] = []
    for command in commands:
        prior = paired[-1][0] if paired else None
        if (
            isinstance(command, (lc.RunStep, lc.RunCompensation))
            and isinstance(prior, lc.HoldLeases)
            and not prior.renew_only
        ):
            paired[-1] = (command, prior.targets)
        else:
            paired.append((command, ()))
    return paired


def _verdict(decision: Decision, *, bundle: bool = True) -> dict[str, Any]:
    """A decision as a shadow comparison shows it: outcome, deciding policy, bundle."""
    out: dict[str, Any] = {
        "outcome": outcome_label(decision.outcome.value, decision.approvers),
        "policy": decision.reasons[0].policy_id if decision.reasons else "",
    }
    if bundle:
        out["bundle"] = decision.bundle_version
    return out
