"""The scenario lab: every scenario at every autonomy level, beside the on-call baseline.

Builds the report (a plain JSON-ready mapping): per scenario the baseline and one score
per autonomy level, with the MTTR Warden achieves when it hands over to the person on
call (its escalation pages them, with the facts or without); and a summary per level.
Simulation (edge).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.sim.baseline import OnCall, OnCallRota, respond
from warden.sim.engine import Run
from warden.sim.scoring import Score, Verdict, score

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from warden.sim.format import Scenario
    from warden.sim.trace import Trace

LEVELS = ("observe", "recommend", "supervised", "autonomous")


@dataclass(frozen=True, slots=True)
class LabSettings:
    """What the lab runs: levels, seed, approver delay, an optional cap on each duration."""

    levels: tuple[str, ...] = LEVELS
    seed: int = 0
    approval_delay_s: float = 120.0
    max_duration_s: float | None = None
    on_call: OnCall | OnCallRota = field(default_factory=OnCall)


def with_fallback(scenario: Scenario, result: Score, settings: LabSettings) -> float | None:
    """Recovery time when Warden hands what it did not fix over to the person on call."""
    if result.mttr_s is not None:
        return result.mttr_s
    if not scenario.root_causes():
        return None
    carried = result.expected == "escalate" and result.verdict is Verdict.RIGHT
    human = respond(
        scenario,
        settings.seed,
        settings.on_call,
        paged_at=result.escalated_at_s,
        evidence=carried,
    )
    return human.mttr_s


def _phases(scenario: Scenario, trace: Trace, result: Score) -> dict[str, float] | None:
    """Where Warden's time went until recovery: detect, respond, repair (seconds)."""
    first = result.first_fault_s
    if result.mttr_s is None or first is None or trace.first_incident_at is None:
        return None
    acted = trace.executed[0].at if trace.executed else trace.first_incident_at
    detect = max(0.0, trace.first_incident_at - first)
    respond_s = max(0.0, acted - trace.first_incident_at)
    return {
        "detect": round(detect, 3),
        "respond": round(respond_s, 3),
        "repair": round(max(0.0, result.mttr_s - detect - respond_s), 3),
    }


def run_scenario(scenario: Scenario, settings: LabSettings) -> dict[str, Any]:
    """One scenario at every level, and its baseline."""
    human = respond(scenario, settings.seed, settings.on_call)
    runs: dict[str, Any] = {}
    for level in settings.levels:
        trace = Run(
            scenario,
            level,
            settings.seed,
            approval_delay_s=settings.approval_delay_s,
            duration_s=settings.max_duration_s,
        ).execute()
        result = score(scenario, trace)
        runs[level] = {
            **result.to_dict(),
            "mttr_with_handover_s": with_fallback(scenario, result, settings),
            "phases": _phases(scenario, trace, result),
            "executed": [f"{m.at:g}s {m.action} {m.target} ({m.effect})" for m in trace.executed],
            "proposed": [f"{m.at:g}s {m.action} {m.target}" for m in trace.proposed],
            "escalations": [f"{e.at:g}s {e.text}" for e in trace.escalations],
        }
    baseline = human.to_dict()
    if human.paged_at is not None and human.acknowledged_at is not None:
        baseline["phases"] = (
            None
            if human.fixed_at is None
            else {
                "detect": round(human.paged_at - min(f.at for f in scenario.faults), 3),
                "respond": round(human.acknowledged_at - human.paged_at, 3),
                "repair": round(human.fixed_at - human.acknowledged_at, 3),
            }
        )
    return {
        "name": scenario.name,
        "title": scenario.title,
        "fault_class": scenario.fault_class,
        "tags": list(scenario.tags),
        "expected": scenario.expect.decision,
        "baseline": baseline,
        "runs": runs,
    }


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.fmean(kept), 3) if kept else None


def summarize(rows: Sequence[dict[str, Any]], levels: Sequence[str]) -> dict[str, Any]:
    """Counts and means per autonomy level, and the baseline's."""
    summary: dict[str, Any] = {}
    for level in levels:
        runs = [r["runs"][level] for r in rows]
        summary[level] = {
            "RIGHT": sum(1 for r in runs if r["verdict"] == "RIGHT"),
            "MISS": sum(1 for r in runs if r["verdict"] == "MISS"),
            "WRONG": sum(1 for r in runs if r["verdict"] == "WRONG"),
            "safety_violations": sum(len(r["safety_violations"]) for r in runs),
            "mean_mttr_s": _mean([r["mttr_with_handover_s"] for r in runs]),
            "actions": sum(r["actions"] for r in runs),
            "approvals": sum(r["approvals"] for r in runs),
            "pages": sum(r["pages"] for r in runs),
        }
    summary["baseline"] = {
        "mean_mttr_s": _mean([r["baseline"]["mttr_s"] for r in rows]),
        "pages": sum(r["baseline"]["pages"] for r in rows),
    }
    return summary


def run_lab(
    scenarios: Sequence[Scenario],
    settings: LabSettings,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole report: settings, one row per scenario, the summary."""
    rows = []
    for scenario in scenarios:
        rows.append(run_scenario(scenario, settings))
        if progress is not None:
            progress(scenario.name)
    return {
        "format": "warden-simulation-report/1",
        "seed": settings.seed,
        "levels": list(settings.levels),
        "approval_delay_s": settings.approval_delay_s,
        "max_duration_s": settings.max_duration_s,
        "scenarios": rows,
        "summary": summarize(rows, settings.levels),
    }


def failed(report: dict[str, Any]) -> bool:
    """Whether any run was WRONG or broke a safety rule (the lab's exit status 1)."""
    return any(
        run["verdict"] == "WRONG" or run["safety_violations"]
        for row in report["scenarios"]
        for run in row["runs"].values()
    )
