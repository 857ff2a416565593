"""Versions in a running Warden: loaded, shadow, canary, rollback. Runtime (shell).

The :class:`LifecycleController` rides on the reconcile loop (a listener and a tick hook,
like the runbook watcher). It records which versions of agents, runbooks, policy bundles
and model settings are loaded (``warden.versions.loaded``), folds promotions and
rollbacks from the ``lifecycle`` stream (:mod:`warden.domain.versions`) and applies them
at once: which runbook version acts for which service, the autonomy cap of a promoted
agent, the policy bundle in force and the one in canary (the gate asks it for the canary's
services). Candidates propose in shadow; their plans are decided
by the live policy and recorded in the shadow stream, never acted on. A canary whose
remediations succeed less often than the previous version's, or that trips a guardrail,
is rolled back automatically, as an audited event.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from warden.agents.canary import CanaryAgent
from warden.agents.protocol import is_slow
from warden.agents.versioning import versions_of
from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain import versions as vs
from warden.domain.canonical import canonical_json
from warden.domain.control import AUTONOMY_LEVELS
from warden.domain.errors import ConfigError, WardenError
from warden.domain.ids import derived_id, incident_stream
from warden.domain.incident import State
from warden.governance.gate import CanaryBundle
from warden.governance.policy import PolicyBundle
from warden.runtime.candidates import LIFECYCLE_STREAMS, lifecycle_events

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from warden.agents.protocol import Agent
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.promotion import PromotionPolicy
    from warden.runtime.loop import Runtime

log = logging.getLogger(__name__)

BUNDLE = "policy"
"""The name of the policy bundle's track (the live bundle and its shadow candidate)."""
MODEL = "model"
CLOSING = frozenset(
    {ev.INCIDENT_RESOLVED, ev.INCIDENT_ESCALATED, ev.INCIDENT_ROLLED_BACK, ev.INCIDENT_RELAPSED}
)


@dataclass(frozen=True, slots=True)
class RunbookVersion:
    """One loaded runbook as the lifecycle sees it (the runbooks layer hands these over)."""

    name: str
    version: str
    mode: str
    agent: object  # the runbook's agent in the runtime's list (it is not a plain agent)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """The remediations of one version: closed, and how many held."""

    closed: int = 0
    held: int = 0

    @property
    def rate(self) -> float | None:
        """The remediation success rate (None before any closed)."""
        return self.held / self.closed if self.closed else None


def made_by(incident: Incident, kind: str = "agent") -> str:
    """The version that planned ``incident`` ("" unknown), or for a bundle that decided it."""
    plan = incident.plan
    if plan is None:
        return ""
    if kind == "bundle":
        return incident.decisions[0].bundle_version if incident.decisions else ""
    return dict(incident.plan_versions).get("agent") or plan.agent_version


def remediation_outcomes(incidents: Sequence[Incident]) -> Outcomes:
    """Closed remediations (a step was intended) and those that held, as the KPIs count."""
    remediated = [i for i in incidents if i.state.terminal and i.intended]
    return Outcomes(len(remediated), sum(1 for i in remediated if i.state is State.RESOLVED))


class LifecycleController:
    """Keeps a runtime's versions as the lifecycle stream says; see the module docstring."""

    def __init__(
        self,
        runtime: Runtime,
        policy: PromotionPolicy,
        *,
        runbooks: Callable[[], Sequence[RunbookVersion]] = tuple,
        shadow_agents: Sequence[Agent] = (),
        model_settings: Mapping[str, Any] | None = None,
        keep_dir: Path | None = None,
    ) -> None:
        self.runtime = runtime
        self.policy = policy
        self.runbooks = runbooks
        # Every agent that began as a candidate, and those proposing in shadow now.
        self.candidates = list(shadow_agents)
        self.shadow_agents = list(shadow_agents)
        self._placed: dict[str, str] = {}
        self._seen: tuple[object, ...] = ()
        self._held: tuple[object, ...] = ()
        self._applied = False  # the lifecycle or what is loaded changed since _apply
        self.keep_dir = keep_dir
        self._model_version = (
            vs.content_version(canonical_json(_without_secrets(dict(model_settings))).decode())
            if model_settings
            else ""
        )
        self._base_caps = dict(runtime.settings.agent_caps)
        self._bundles: dict[str, PolicyBundle] = {}
        self._keep_bundle(runtime.gate.bundle)
        self.lifecycle = vs.fold(lifecycle_events(runtime.store))
        self._loaded: tuple[tuple[str, str, str, str], ...] = self._last_loaded()
        self._restore_kept_bundles()
        # Incidents a candidate agent is to be asked about, and those already asked.
        self._to_ask: list[str] = []
        self._asked: set[str] = set()
        # Slow candidates asked off the loop's thread whose answers have not come yet.
        self._thinking: list[tuple[str, Agent]] = []
        self._tripped: dict[tuple[str, str], str] = {}
        self._closed = True  # an incident closed since the canaries were last looked at
        runtime.subscribe(self._observe)
        runtime.tick_hooks.append(self.on_tick)
        self.record_loaded()
        self._apply()

    # -- what is loaded ------------------------------------------------------------------

    def loaded(self) -> tuple[tuple[str, str, str, str], ...]:
        """Every loaded version as (kind, name, version, mode), sorted."""
        entries: set[tuple[str, str, str, str]] = set()
        runbooks = self.runbooks()
        watched = {id(r.agent) for r in runbooks} | {id(a) for a in self.candidates}
        for agent in self.runtime.agents:
            if id(agent) not in watched and not isinstance(agent, CanaryAgent):
                entries.add(("agent", agent.name, versions_of(agent)["agent"], vs.LIVE))
        # A candidate is loaded as one wherever it acts: promotions say where.
        for agent in self.candidates:
            entries.add(("agent", agent.name, versions_of(agent)["agent"], vs.SHADOW))
        for runbook in runbooks:
            entries.add(("runbook", runbook.name, runbook.version, runbook.mode))
        files = self.runtime.policies.current if self.runtime.policies else self.runtime.gate.bundle
        for version in self._bundles:
            entries.add(
                ("bundle", BUNDLE, version, vs.LIVE if version == files.version else "kept")
            )
        if self.runtime.shadow is not None:
            entries.add(("bundle", BUNDLE, self.runtime.shadow.bundle.version, vs.SHADOW))
        if self._model_version:
            entries.add((MODEL, MODEL, self._model_version, vs.LIVE))
        return tuple(sorted(entries))

    def _what_is_loaded(self) -> tuple[object, ...]:
        """A cheap fingerprint of what :meth:`loaded` lists: the objects, not their versions."""
        runtime = self.runtime
        return (
            tuple(map(id, runtime.agents)),
            tuple(map(id, self.shadow_agents)),
            runtime.gate.bundle,
            runtime.policies.current if runtime.policies is not None else None,
            runtime.shadow.bundle if runtime.shadow is not None else None,
        )

    def record_loaded(self) -> None:
        """Record the loaded versions when they differ from those last recorded."""
        seen = self._what_is_loaded()
        if seen == self._seen:
            return  # the same objects: the same versions (agents and bundles never change)
        self._seen = seen
        self._held = (*self.runtime.agents, *self.shadow_agents)  # their ids stay theirs
        self._applied = False
        self._keep_bundle(self.runtime.gate.bundle)
        if self.runtime.policies is not None:
            self._keep_bundle(self.runtime.policies.current)
        if self.runtime.shadow is not None:
            self._keep_bundle(self.runtime.shadow.bundle)
        entries = self.loaded()
        if entries == self._loaded:
            return
        self._loaded = entries
        data = {
            "versions": [{"kind": k, "name": n, "version": v, "mode": m} for k, n, v, m in entries]
        }
        when = ev.format_time(self.runtime.clock.now())
        key = vs.content_version(canonical_json(data).decode(), when)
        self._append(ev.derived_event(ev.VERSIONS_LOADED, ev.LIFECYCLE_STREAM, data, when, key=key))

    def _last_loaded(self) -> tuple[tuple[str, str, str, str], ...]:
        last = None
        for event in self.runtime.store.read_stream(ev.LIFECYCLE_STREAM):
            if event.type == ev.VERSIONS_LOADED:
                last = event
        if last is None:
            return ()
        return tuple(
            sorted(
                (str(e["kind"]), str(e["name"]), str(e["version"]), str(e.get("mode", vs.LIVE)))
                for e in last.data.get("versions") or ()
            )
        )

    # -- following the log ---------------------------------------------------------------

    def _append(self, event: ev.Event) -> None:
        """Append a lifecycle event and fold it now: it takes effect before the next event."""
        (stored,) = self.runtime.store.append(ev.LIFECYCLE_STREAM, [event])
        self._fold(stored)

    def _fold(self, event: ev.Event) -> None:
        if event.position <= self.lifecycle.position and self.lifecycle.position:
            return
        self.lifecycle = vs.observe(self.lifecycle, event)
        self._applied = False
        if event.type in (ev.VERSION_PROMOTED, ev.VERSION_ROLLED_BACK):
            self._apply()

    def _observe(self, event: ev.Event) -> None:
        if event.stream in LIFECYCLE_STREAMS:
            self._fold(event)
            return
        if not event.stream.startswith("incident-"):
            return
        incident_id = event.stream.removeprefix("incident-")
        asks = event.type in (ev.PLAN_PROPOSED, ev.INCIDENT_ESCALATED) and self.shadow_agents
        if asks and incident_id not in self._asked:
            self._asked.add(incident_id)
            self._to_ask.append(incident_id)
        if event.type in CLOSING:
            self._closed = True
        if event.type == ev.DECISION_RECORDED:
            reasons = (event.data.get("decision") or {}).get("reasons") or ()
            tripped = [r for r in reasons if str(r.get("policy_id", "")).startswith("guardrail:")]
            if tripped:
                bundle = str((event.data.get("decision") or {}).get("bundle_version", ""))
                self._note_trip(incident_id, str(tripped[0].get("policy_id")), bundle)

    def _note_trip(self, incident_id: str, guardrail: str, bundle: str) -> None:
        incident = self.runtime.incidents.get(incident_id)
        if incident is None or incident.plan is None:
            return
        for track in self.lifecycle.tracks.values():
            canary = track.canary
            if canary is None:
                continue
            if track.kind == "bundle":
                mine = bundle == canary.version
            else:
                mine = track.name == incident.plan.agent and made_by(incident) == canary.version
            if mine:
                self._tripped[track.key] = (
                    f"guardrail {guardrail} tripped on incident {incident_id}"
                )

    # -- applying ------------------------------------------------------------------------

    def _apply(self) -> None:
        """Autonomy caps of promoted agents and runbooks, and the bundle in force."""
        self._applied = True
        caps = dict(self._base_caps)
        for track in self.lifecycle.tracks.values():
            if track.kind in ("agent", "runbook") and track.stage == "supervised":
                current = caps.get(track.name, AUTONOMY_LEVELS[-1])
                caps[track.name] = min(current, "supervised", key=AUTONOMY_LEVELS.index)
        settings = self.runtime.settings
        if dict(settings.agent_caps) != caps:
            self.runtime.settings = replace(settings, agent_caps=tuple(sorted(caps.items())))
        bundle = self.lifecycle.tracks.get(("bundle", BUNDLE))
        live = bundle.live if bundle is not None else ""
        gate = self.runtime.gate
        if live in self._bundles and gate.bundle.version != live:
            gate.bundle = self._bundles[live]
        canary = bundle.canary if bundle is not None else None
        candidate = self._bundles.get(canary.version) if canary is not None else None
        if candidate is None or canary is None:
            gate.canary = None
        elif gate.canary is None or gate.canary.bundle is not candidate:
            gate.canary = CanaryBundle(candidate, canary.covers)
        self._move_agents()

    def _move_agents(self) -> None:
        """Each candidate agent where its track says: live, in canary, or in shadow."""
        for agent in self.candidates:
            track = self.lifecycle.tracks.get(("agent", agent.name))
            version = versions_of(agent)["agent"]
            want, canary = vs.SHADOW, None
            found = track.canary if track is not None else None
            if track is not None and track.live == version:
                want = vs.LIVE
            elif found is not None and found.version == version:
                want, canary = "canary", found
            if self._placed.get(agent.name, vs.SHADOW) == want:
                continue
            self._placed[agent.name] = want
            self.shadow_agents = [a for a in self.shadow_agents if a is not agent]
            agents = self.runtime.agents
            agents[:] = [
                a
                for a in agents
                if a is not agent and not (isinstance(a, CanaryAgent) and a.agent is agent)
            ]
            if want == vs.SHADOW:
                self.shadow_agents.append(agent)
                continue
            acting = agent if canary is None else CanaryAgent(agent, canary.covers)
            at = len(agents) - 1 if agents and agents[-1].name == "escalation" else len(agents)
            agents.insert(at, acting)

    def runbook_role(self, name: str, version: str, mode: str, service: str) -> str:
        """Whether this runbook version acts, shadows or idles for ``service``."""
        track = self.lifecycle.tracks.get(("runbook", name))
        if track is None or version not in track.loaded:
            return mode
        return track.role(version, service)

    # -- bundles kept for a rollback -----------------------------------------------------

    def _keep_bundle(self, bundle: PolicyBundle) -> None:
        if bundle.version in self._bundles:
            return
        self._bundles[bundle.version] = bundle
        if self.keep_dir is None:
            return
        kept = self.keep_dir / "bundle" / bundle.version.rpartition("@")[2]
        if kept.exists():
            return
        try:
            kept.mkdir(parents=True)
            for path in sorted(bundle.directory.iterdir()):
                if path.is_file():
                    shutil.copy2(path, kept / path.name)
            (kept / "NAME").write_text(bundle.name, encoding="utf-8")
        except OSError as exc:
            log.warning("policy bundle %s not kept for a rollback: %s", bundle.version, exc)

    def _restore_kept_bundles(self) -> None:
        """Bundles kept by earlier runs: a rollback restores one across a restart."""
        track = self.lifecycle.tracks.get(("bundle", BUNDLE))
        if self.keep_dir is None or track is None:
            return
        canary = (track.canary.version,) if track.canary is not None else ()
        for version in (track.live, *canary, *track.retired):
            if not version or version in self._bundles:
                continue
            kept = self.keep_dir / "bundle" / version.rpartition("@")[2]
            try:
                name = (kept / "NAME").read_text(encoding="utf-8")
                bundle = PolicyBundle(kept, name)
            except (OSError, ConfigError) as exc:
                log.warning("policy bundle %s cannot be restored: %s", version, exc)
                continue
            if bundle.version == version:
                self._bundles[version] = bundle

    # -- shadow --------------------------------------------------------------------------

    def decide_in_shadow(self, incident: Incident, plan: Plan) -> list[dict[str, Any]]:
        """How the live policy decides each step of ``plan`` for ``incident``; nothing acts."""
        stream = incident_stream(derived_id("shadow", incident.id, plan.agent, plan.agent_version))
        when = ev.format_time(self.runtime.clock.now())
        opened = ev.derived_event(
            ev.INCIDENT_OPENED,
            stream,
            {
                "incident_id": stream.removeprefix("incident-"),
                "service": incident.service,
                "summary": incident.summary,
                "first_signal_at": incident.first_signal_at,
                "evidence": list(incident.evidence_ids),
                "severity": incident.severity,
                "kind": incident.kind,
                "detected_by": incident.detected_by,
            },
            when,
        )
        proposed = ev.derived_event(ev.PLAN_PROPOSED, stream, {"plan": plan.to_dict()}, when)
        hypothetical = incident_fold.apply(incident_fold.apply(None, opened), proposed)
        situation = self.runtime.interpreter.situation()
        decided = []
        for index, step in enumerate(plan.steps):
            decision = self.runtime.gate.decide(hypothetical, index, situation).decision
            decided.append(
                {
                    "index": index,
                    "action": step.action,
                    "target": step.target,
                    "outcome": decision.outcome.value,
                    "policy": decision.reasons[0].policy_id if decision.reasons else "",
                    "bundle": decision.bundle_version,
                }
            )
        return decided

    def record_runbook_shadow(
        self, data: dict[str, Any], plan: Plan | None, kind: str, event: ev.Event
    ) -> None:
        """Record a candidate runbook's plan, decided by the live policy, in the shadow stream.

        ``data`` is the record the runbook gives (its name, version, service, plan).
        """
        if plan is not None and plan.steps:
            opened = _as_incident(str(data["service"]), kind, event)
            data = {**data, "decisions": self.decide_in_shadow(opened, plan)}
        key = f"{data['name']}:{data['version']}:{event.id}"
        self._shadow_record(ev.RUNBOOK_SHADOWED, data, key)

    def _ask_shadow_agents(self) -> None:
        """Ask each candidate agent about the incidents the live agents planned or escalated.

        A slow candidate (a model agent) is asked off the loop's thread, as a live one is
        (:meth:`warden.remediation.planning.Planner.ask_slow`); its answer is recorded on
        a later round, when it has come.
        """
        asking, self._to_ask = self._to_ask, []
        if not asking and not self._thinking:
            return
        world = self.runtime.world()
        incidents = self.runtime.incidents
        pairs = [
            (incident_id, agent)
            for incident_id in asking
            if incident_id in incidents
            for agent in self.shadow_agents
            if incidents[incident_id].kind in agent.handles or "*" in agent.handles
        ]
        pairs, self._thinking = [*self._thinking, *pairs], []
        for incident_id, agent in pairs:
            incident = incidents[incident_id]
            track = self.lifecycle.tracks.get(("agent", agent.name))
            if track is not None and versions_of(agent)["agent"] in track.rolled_back:
                continue  # rolled back: loaded, idle; a new version may try again
            if is_slow(agent):
                answer = self.runtime.planner.ask_slow(agent, incident, world, shadow=True)
                if answer is None:
                    self._thinking.append((incident_id, agent))  # still thinking
                    continue
                plan = answer.plan
            else:
                try:
                    plan = agent.propose(incident, world)
                except WardenError as exc:
                    log.warning("shadow agent %s failed on %s: %s", agent.name, incident_id, exc)
                    continue
            self._record_agent_shadow(agent, incident, plan)

    def _record_agent_shadow(self, agent: Agent, incident: Incident, plan: Plan | None) -> None:
        """Record a candidate agent's plan, decided by the live policy, in the shadow stream."""
        version = versions_of(agent)["agent"]
        data: dict[str, Any] = {
            "kind": "agent",
            "name": agent.name,
            "version": version,
            "incident_id": incident.id,
            "event_id": incident.evidence_ids[0] if incident.evidence_ids else "",
            "event_time": incident.first_signal_at,
            "service": incident.service,
            "plan": plan.to_dict() if plan is not None else None,
        }
        if plan is not None and plan.steps:
            data["decisions"] = self.decide_in_shadow(incident, plan)
        key = f"{agent.name}:{version}:{incident.id}"
        self._shadow_record(ev.AGENT_SHADOWED, data, key)

    def _shadow_record(self, type_: str, data: dict[str, Any], key: str) -> None:
        when = ev.format_time(self.runtime.clock.now())
        event = ev.derived_event(
            type_, ev.SHADOW_STREAM, data, when, key=key, subject=str(data.get("service", ""))
        )
        self.runtime.store.append(ev.SHADOW_STREAM, [event])

    # -- canary --------------------------------------------------------------------------

    def check_canaries(self) -> None:
        """Roll back a canary that trips a guardrail or succeeds less than its predecessor."""
        closed, self._closed = self._closed, False
        for track in list(self.lifecycle.tracks.values()):
            canary = track.canary
            if canary is None:
                continue
            reason = self._tripped.pop(track.key, "")
            if not reason and not closed:
                continue
            evidence: dict[str, Any] = {}
            if not reason:
                mine, theirs = self.outcomes(track, canary.version, canary.previous)
                evidence = {
                    "canary": {"version": canary.version, "closed": mine.closed, "held": mine.held},
                    "previous": {
                        "version": canary.previous,
                        "closed": theirs.closed,
                        "held": theirs.held,
                    },
                }
                if mine.closed < self.policy.canary.min_outcomes or mine.rate is None:
                    continue
                baseline = theirs.rate if theirs.rate is not None else 1.0
                if mine.rate >= baseline:
                    continue
                reason = (
                    f"remediation success rate {mine.rate:.0%} in the canary"
                    f" ({mine.held} of {mine.closed}) is below the previous version's"
                    f" {baseline:.0%}"
                )
            self.roll_back_automatically(track, reason, evidence)

    def outcomes(self, track: vs.Track, *versions: str) -> list[Outcomes]:
        """The remediation outcomes of each version of ``track``'s agent, runbook or bundle.

        An agent's or runbook's are the incidents it planned; a bundle's, those it decided.
        """
        incidents = self.runtime.incidents.values()
        planned: dict[str, list[Incident]] = {v: [] for v in versions}
        for incident in incidents:
            plan = incident.plan
            if plan is None or (track.kind != "bundle" and plan.agent != track.name):
                continue
            version = made_by(incident, track.kind)
            if version in planned:
                planned[version].append(incident)
        return [remediation_outcomes(planned[v]) for v in versions]

    def roll_back_automatically(
        self, track: vs.Track, reason: str, evidence: Mapping[str, Any]
    ) -> None:
        """Append the rollback of ``track``'s canary (it takes effect at once)."""
        canary = track.canary
        assert canary is not None
        data = {
            "kind": track.kind,
            "name": track.name,
            "version": canary.version,
            "restored": canary.previous,
            "reason": reason,
            "by": "warden",
            "automatic": True,
            "evidence": dict(evidence),
        }
        when = ev.format_time(self.runtime.clock.now())
        key = f"{track.kind}:{track.name}:{canary.version}:{canary.since}"
        log.warning(
            "canary %s %s %s rolled back: %s", track.kind, track.name, canary.version, reason
        )
        self._append(
            ev.derived_event(ev.VERSION_ROLLED_BACK, ev.LIFECYCLE_STREAM, data, when, key=key)
        )

    # -- each round ----------------------------------------------------------------------

    def on_tick(self) -> None:
        """Record what is loaded, ask candidate agents, watch the canaries."""
        self.record_loaded()
        if not self._applied:
            self._apply()
        self._ask_shadow_agents()
        self.check_canaries()


def _as_incident(service: str, kind: str, event: ev.Event) -> Incident:
    """The incident a candidate's match would have opened (for deciding its plan)."""
    opened = ev.derived_event(
        ev.INCIDENT_OPENED,
        incident_stream(derived_id("shadow", kind, service, event.id)),
        {
            "incident_id": derived_id("shadow", kind, service, event.id),
            "service": service,
            "summary": f"shadow {kind} on {event.type} {event.id}",
            "first_signal_at": event.time,
            "evidence": [event.id],
            "severity": str(event.data.get("severity") or "major"),
            "kind": kind,
        },
        event.time,
    )
    return incident_fold.apply(None, opened)


def _without_secrets(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if "key" not in k.lower() or k.endswith("_env")}


__all__ = [
    "BUNDLE",
    "LifecycleController",
    "Outcomes",
    "RunbookVersion",
    "made_by",
    "remediation_outcomes",
]
