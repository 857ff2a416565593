"""Opening incidents and choosing a plan among the agents' proposals. Runtime (shell).

The interpreter's answer to the lifecycle's ``Plan`` command. Slow agents (a model
endpoint) are asked off the loop's thread, and an incident nobody can act on is resolved
when its detector no longer sees the fault, else escalated.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from warden.agents.protocol import Summarizer, is_owner_rule, is_slow
from warden.agents.versioning import versions_of
from warden.domain import events as ev
from warden.domain import evidence
from warden.domain.commands import Append, append_to
from warden.domain.commands import incident_event as _event
from warden.domain.ids import derived_id, incident_stream, traceparent_for
from warden.domain.incident import State
from warden.domain.joining import ALERT_KINDS, Sighting, where_it_goes
from warden.domain.relapse import DEFAULT_RELAPSE_WINDOW_S

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from warden.agents.protocol import Agent, Detection
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.world import World

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlowAnswer:
    """What a slow agent answered: a plan, or None for nothing to offer."""

    plan: Plan | None


class Planner:
    """Opens incidents from detections and plans them with the agents."""

    def __init__(
        self,
        agents: list[Agent],
        *,
        failure_threshold: int = evidence.DEFAULT_FAILURE_THRESHOLD,
        relapse_window_s: float = DEFAULT_RELAPSE_WINDOW_S,
    ) -> None:
        self.agents = agents  # the runtime's own list: agents added later plan too
        self.failure_threshold = failure_threshold
        self.relapse_window_s = relapse_window_s
        self._asking: dict[tuple[str, str, str], Future[Plan | None]] = {}
        self._slow_pool: ThreadPoolExecutor | None = None
        # Incident ids by service: the mapping indexed, how many of its keys, the index.
        self._index: tuple[Mapping[str, Incident], int, dict[str, list[str]]] | None = None

    def open(
        self,
        detection: Detection,
        detected_by: str,
        incidents: Mapping[str, Incident],
        now: datetime,
        decided_again: Callable[[Incident], str] | None = None,
        source_traceparent: str = "",
        repage_after_s: float = 1800.0,
    ) -> Append | None:
        """The opening of an incident for a detection, or its evidence joining one.

        A service's open incident, or its escalated one, takes the detection as evidence
        (and re-pages on the cadence; :func:`warden.domain.joining.where_it_goes`). A
        fault still seen after its incident was resolved without any action opens a
        successor incident. ``decided_again`` says whether a fault whose incident a
        control closed is opened again, and under which key
        (:func:`warden.domain.lifecycle.decided_again`). The incident continues the trace
        of its first evidence that carried a W3C ``source_traceparent``; without one it
        starts a trace derived from its id.
        """
        parts = ("incident", detection.kind, detection.service, detection.first_signal_at)
        incident_id = derived_id(*parts)
        own = incidents.get(incident_id)
        if own is not None and not own.state.terminal and detection.kind not in ALERT_KINDS:
            return None  # the incident of this very detection is open: nothing new (fast path)
        # A control that closed this fault's incident has changed: it is decided again,
        # once per change, rather than joining the closed incident as evidence.
        again = decided_again(own) if own is not None and decided_again is not None else ""
        if again:
            incident_id = derived_id(*parts, again)
            if incident_id in incidents:
                return None
        else:
            sighting = Sighting(
                detection.service,
                detection.kind,
                detection.first_signal_at,
                detection.evidence,
                detection.summary,
            )
            mine = self.of_service(incidents, detection.service)
            joining = where_it_goes(sighting, mine, repage_after_s, now)
            if joining is not None:
                return append_to(joining.incident, *joining.events) if joining.events else None
            if any(not i.state.terminal and i.kind not in ALERT_KINDS for i in mine):
                return None  # one incident per service: the open one already holds this fault
            while incident_id in incidents:
                earlier = incidents[incident_id]
                if earlier.state is not State.RESOLVED or earlier.intended:
                    return None  # an action ran and verified: the detector's view may lag
                # Closed as resolved before any action, yet the fault is still seen.
                incident_id = derived_id(*parts, "after", incident_id)
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
            }
            | ({"group_key": detection.group_key} if detection.group_key else {}),
            ev.format_time(now),
            subject=detection.service,
            correlation_id=incident_id,
            traceparent=source_traceparent or traceparent_for(incident_id),
        )
        return Append(incident_stream(incident_id), (opened,), 0)

    def plan(self, current: Incident, world: World) -> list[Append]:
        """The plan chosen among the agents' proposals, or the incident's closing.

        Empty while a slow agent still thinks: the incident is planned on a later round.
        """
        now = world.now
        handling = [a for a in self.agents if current.kind in a.handles or "*" in a.handles]
        candidates = [
            (agent, plan)
            for agent in handling
            if not is_slow(agent)
            for plan in [agent.propose(current, world)]
            if plan is not None
        ]
        top = max((agent.priority for agent, _ in candidates), default=None)
        for agent in handling:
            if not is_slow(agent) or (top is not None and top > agent.priority):
                continue  # a plan from a higher priority is in hand: no need to ask
            asked = self.ask_slow(agent, current, world)
            if asked is None:
                return []  # still thinking; the incident is planned on a later round
            if asked.plan is not None:
                candidates.append((agent, asked.plan))
        # The evidence rules hold for every agent's plan, a model's or a plugin's too; a
        # runbook's plan is its owner's explicit rule (policy and approvals still judge it).
        refused: list[tuple[Agent, Plan, str]] = []
        kept: list[tuple[Agent, Plan]] = []
        for agent, plan in candidates:
            why = "" if is_owner_rule(agent) else self._unsupported(plan, world)
            if why:
                refused.append((agent, plan, why))
            else:
                kept.append((agent, plan))
        candidates = kept
        rejections = [
            _event(
                current,
                ev.PLAN_REJECTED,
                {"plan": plan.to_dict(), "reason": f"the evidence does not support it: {why}"},
                now,
                key=f"evidence:{agent.name}",
            )
            for agent, plan, why in refused
        ]
        if not candidates:
            cleared = self._cleared(current, world)
            if cleared:
                return [
                    _append(
                        current, _event(current, ev.INCIDENT_RESOLVED, {"reason": cleared}, now)
                    )
                ]
            summary = self._escalation_summary(current, world)
            if refused:
                summary += "; refused on evidence: " + "; ".join(
                    f"{plan.steps[0].action} {plan.steps[0].target} from {agent.name} ({why})"
                    for agent, plan, why in refused
                )
            escalated = _event(current, ev.INCIDENT_ESCALATED, {"reason": summary}, now)
            return [_append(current, *rejections, escalated)]
        # The documented rule: higher agent priority wins, then higher confidence, then
        # the agent name, so the choice is deterministic; losers are recorded, not dropped.
        ranked = sorted(candidates, key=lambda c: (-c[0].priority, -c[1].confidence, c[0].name))
        winner_agent, winner = ranked[0]
        events = [
            _event(
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
                now,
                key=agent.name,
            )
            for agent, plan in ranked[1:]
        ]
        # The versions that made the plan (the agent's, its model settings'), beside it.
        proposed = {"plan": winner.to_dict(), "versions": versions_of(winner_agent)}
        events.append(_event(current, ev.PLAN_PROPOSED, proposed, now))
        return [_append(current, *rejections, *events)]

    def _unsupported(self, plan: Plan, world: World) -> str:
        """Why the evidence does not support a step of ``plan`` ("" when it does)."""
        for step in plan.steps:
            reasons = evidence.step_blockers(
                step, world, self.failure_threshold, self.relapse_window_s
            )
            if reasons:
                return f"{step.action} {step.target}: " + "; ".join(reasons)
        return ""

    def ask_slow(
        self, agent: Agent, current: Incident, world: World, *, shadow: bool = False
    ) -> SlowAnswer | None:
        """A slow agent's proposal, asked off the loop's thread; None while it thinks.

        A model behind an HTTP endpoint can take seconds to answer; meanwhile the loop goes
        on moving other incidents, probing and verifying. A candidate in ``shadow`` is
        asked through the same pool; its question outlives the incident's closing, since
        its answer is recorded, not acted on.
        """
        key = (current.id, agent.name, "shadow" if shadow else "")
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
            return SlowAnswer(future.result())
        except Exception:  # an agent that raises proposes nothing; the loop goes on
            log.exception("agent %s failed while proposing for %s", agent.name, current.id)
            return SlowAnswer(None)

    def of_service(self, incidents: Mapping[str, Incident], service: str) -> list[Incident]:
        """The incidents of one service, in the order of ``incidents``.

        The runtime's incidents only grow (a fold never drops one, and an incident keeps
        its service), so their ids are indexed by service as they appear; another mapping,
        or one that shrank, is indexed afresh.
        """
        index = self._index
        if index is None or index[0] is not incidents or len(incidents) < index[1]:
            index = (incidents, 0, {})
        seen, ids = index[1], index[2]
        if len(incidents) > seen:
            for key in islice(incidents, seen, None):
                ids.setdefault(incidents[key].service, []).append(key)
            index = (incidents, len(incidents), ids)
        self._index = index
        try:
            return [incidents[key] for key in ids.get(service, ())]
        except KeyError:  # one was dropped after all: look at every incident
            self._index = None
            return [i for i in incidents.values() if i.service == service]

    def forget_closed(self, incidents: Mapping[str, Incident]) -> None:
        """Drop questions to slow agents about incidents that closed meanwhile."""
        for key in [k for k in self._asking if not k[2] and incidents[k[0]].state.terminal]:
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
            if isinstance(agent, Summarizer) and (
                current.kind in agent.handles or "*" in agent.handles
            ):
                return agent.summarize(current, world)
        return (
            f"no agent proposed a plan for {current.kind} on {current.service}: {current.summary}"
        )


def _append(current: Incident, *events: ev.Event) -> Append:
    return Append(incident_stream(current.id), events, current.version)
