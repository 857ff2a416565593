"""Evaluation before promotion: a candidate scored on the scenario library and on history.

The library: every scenario run once without the candidate (the baseline) and once with
it, scored RIGHT, MISS or WRONG, and the scenarios it changed. History: the recorded
inputs replayed with the candidate live, its proposals counted against what happened and
what people did (:mod:`warden.replay.agreement`). Simulation (edge).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain.plans import Step
from warden.replay import IncidentView, replay
from warden.replay.agreement import Agreement, Past, Proposal, count, human_decision
from warden.replay.diff import step_text
from warden.runbooks.model import KIND_PREFIX
from warden.sim.engine import Run
from warden.sim.scoring import Verdict, score

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from warden.config import WardenConfig
    from warden.ingest.registry import SchemaRegistry
    from warden.ports import EventStore
    from warden.sim.candidate import Candidate
    from warden.sim.format import Scenario
    from warden.sim.trace import Trace


@dataclass(frozen=True, slots=True)
class ScenarioScore:
    """One scenario with the candidate, beside the baseline run without it."""

    scenario: str
    expected: str
    verdict: str
    why: str
    baseline: str  # the verdict without the candidate
    changed: bool  # the candidate changed the verdict or what Warden did

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "scenario": self.scenario,
            "expected": self.expected,
            "verdict": self.verdict,
            "why": self.why,
            "baseline": self.baseline,
            "changed": self.changed,
        }


@dataclass(frozen=True, slots=True)
class LibraryScore:
    """A candidate's runs of the whole library."""

    scenarios: tuple[ScenarioScore, ...]

    def counted(self, verdict: Verdict) -> int:
        """Runs that ended with ``verdict``."""
        return sum(1 for s in self.scenarios if s.verdict == verdict.value)

    def to_dict(self) -> dict[str, int]:
        """The counts as the ``library`` part of ``warden.candidate.evaluated``."""
        return {
            "right": self.counted(Verdict.RIGHT),
            "miss": self.counted(Verdict.MISS),
            "wrong": self.counted(Verdict.WRONG),
            "total": len(self.scenarios),
        }

    @property
    def changed(self) -> tuple[ScenarioScore, ...]:
        """The scenarios the candidate changed from the baseline."""
        return tuple(s for s in self.scenarios if s.changed)


def _did(trace: Trace) -> tuple[Any, ...]:
    """What Warden did in a run, as compared between baseline and candidate."""
    return (
        tuple((m.action, m.target) for m in trace.executed),
        tuple((m.action, m.target) for m in trace.proposed),
        len(trace.escalations),
    )


def run_library(
    scenarios: Sequence[Scenario],
    candidates: Sequence[Candidate],
    autonomy: str = "autonomous",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[LibraryScore]:
    """Each candidate on every scenario, one ``LibraryScore`` per candidate, in order.

    ``progress`` is called after every run (scenarios x (candidates + 1) of them).
    """
    rows: list[list[ScenarioScore]] = [[] for _ in candidates]
    for scenario in scenarios:
        before = Run(scenario, autonomy, seed).execute()
        baseline = score(scenario, before)
        if progress is not None:
            progress(scenario.name)
        for row, candidate in zip(rows, candidates, strict=True):
            after = Run(scenario, autonomy, seed, candidate=candidate).execute()
            result = score(scenario, after)
            row.append(
                ScenarioScore(
                    scenario.name,
                    scenario.expect.decision,
                    result.verdict.value,
                    result.why,
                    baseline.verdict.value,
                    result.verdict != baseline.verdict or _did(after) != _did(before),
                )
            )
            if progress is not None:
                progress(scenario.name)
    return [LibraryScore(tuple(r)) for r in rows]


def _put_forward(view: IncidentView) -> tuple[str, ...]:
    """The steps of an incident's plan that reached action or people (none when denied)."""
    denied = any(d.split(": ", 1)[-1].startswith("deny") for d in view.decisions)
    return () if denied else view.steps


def _owned(candidate: Candidate, view: IncidentView) -> bool:
    """Whether the live version of the candidate decided this incident."""
    if candidate.kind == "bundle":
        return bool(view.steps)  # a bundle decides every plan
    return view.agent == candidate.name or view.kind == KIND_PREFIX + candidate.name


def run_history(
    candidate: Candidate,
    history: Sequence[ev.Event],
    config: WardenConfig,
    progress: Callable[[int, int], None] | None = None,
) -> Agreement:
    """The candidate's proposals on replayed ``history``, against the record."""
    incidents = incident_fold.fold_all(history)
    past = [
        Past(
            i.id,
            i.service,
            i.opened_at,
            _put_forward(view),
            human_decision(i),
            _owned(candidate, view),
        )
        for i in incidents.values()
        for view in (IncidentView.of(i),)
    ]
    with tempfile.TemporaryDirectory(prefix="warden-evaluate-") as scratch:
        live = candidate.configure(config, Path(scratch))
        report = replay(history, live, agents=candidate.agents(live), progress=progress)
        proposals = [
            Proposal(v.incident_id, v.service, v.opened_at, _put_forward(v))
            for v in report.replayed
            if _owned(candidate, v)
        ]
        if candidate.kind == "agent":
            proposals += _asked_beside(candidate, history, live, report.replayed)
    return count(past, proposals)


def _asked_beside(
    candidate: Candidate,
    history: Sequence[ev.Event],
    config: WardenConfig,
    replayed: Sequence[IncidentView],
) -> list[Proposal]:
    """A candidate agent's say where another agent planned first, as shadow asks it.

    Live in the replay, the candidate is not asked about an incident an agent of higher
    priority planned. Replayed again with it in shadow (asked beside the live agents about
    every incident they planned or escalated, never acting), its would-be plans for those
    incidents count too: the steps the live policy did not deny.
    """
    others = {v.incident_id: v for v in replayed if v.agent and v.agent != candidate.name}
    if not others:
        return []
    beside = replace(config, shadow_agents=(*config.shadow_agents, candidate.name))
    shadowed = replay(history, beside, agents=candidate.agents(beside)).shadowed
    found = []
    for record in shadowed:
        if record.get("name") != candidate.name or record.get("incident_id") not in others:
            continue
        denied = any(
            str(d.get("outcome", "")).startswith("deny") for d in record.get("decisions") or ()
        )
        view = others[str(record["incident_id"])]
        steps = () if denied else _steps_of(record.get("plan"))
        found.append(Proposal(view.incident_id, view.service, view.opened_at, steps))
    return found


def _steps_of(plan: dict[str, Any] | None) -> tuple[str, ...]:
    """A stored plan's steps as replay shows them."""
    if not plan:
        return ()
    steps = (Step.from_dict(s) for s in plan.get("steps") or ())
    return tuple(step_text(s.action, s.target, dict(s.params)) for s in steps)


def evaluated_data(
    candidate: Candidate, library: LibraryScore, history: Agreement
) -> dict[str, Any]:
    """The data of ``warden.candidate.evaluated``, exactly."""
    return {
        "kind": candidate.kind,
        "name": candidate.name,
        "version": candidate.version,
        "library": library.to_dict(),
        "history": history.to_dict(),
    }


def record_evaluation(
    store: EventStore, data: dict[str, Any], when: datetime, registry: SchemaRegistry
) -> ev.Event:
    """Append ``warden.candidate.evaluated`` (checked against its schema); returns it.

    The caller has authenticated who records it (see ``warden.cli.auth.gate``).
    """
    registry.check_data(ev.CANDIDATE_EVALUATED, 1, data)
    stamp = ev.format_time(when)
    key = f"{data['kind']}:{data['name']}:{data['version']}:{stamp}"
    event = ev.derived_event(
        ev.CANDIDATE_EVALUATED, ev.CANDIDATES_STREAM, data, stamp, key=key, subject=data["name"]
    )
    (stored,) = store.append(ev.CANDIDATES_STREAM, [event])
    return stored


__all__ = [
    "LibraryScore",
    "ScenarioScore",
    "evaluated_data",
    "record_evaluation",
    "run_history",
    "run_library",
]
