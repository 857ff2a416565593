"""Rule agent: failed pipeline batches are quarantined, then replayed. Decisioning plane.

One plan per service: every failed batch is moved aside, then each pipeline reprocesses
from the last good checkpoint before its first failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain.events import parse_time
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.signals import FailedBatch, Signals
    from warden.domain.world import World


@dataclass(frozen=True, slots=True)
class _Corruption:
    """The failed batches of one pipeline, first failure first, and where to replay from."""

    pipeline: str
    batches: tuple[FailedBatch, ...]  # one per batch id, its first failure
    event_ids: tuple[str, ...]  # every failure report, repeats included
    checkpoint: str  # the last good checkpoint before the first failure ("" if unknown)


@dataclass(frozen=True, slots=True)
class PipelineCorruptionAgent:
    """Quarantines failed batches and replays their pipeline from the last good checkpoint.

    More than ``max_batches`` open failures on one service point at a broken source rather
    than at single batches: the agent then proposes nothing and a human is called.
    """

    max_batches: int = 10
    name: str = "pipeline-corruption"
    handles: frozenset[str] = frozenset({"pipeline_corruption"})
    priority: int = 50
    evidence_needed: tuple[str, ...] = (
        "failed batches of a pipeline",
        "a last good checkpoint to replay from",
    )

    def __post_init__(self) -> None:
        if self.max_batches < 1:
            raise ValueError("max_batches must be at least 1")

    def detect(self, world: World) -> list[Detection]:
        """Services with open failed batches, one detection per service."""
        found = []
        for service in sorted(world.signals):
            signals = world.signals_of(service)
            corrupt = _corruptions(signals)
            if not corrupt:
                continue
            count = sum(len(c.batches) for c in corrupt)
            first = min((b for c in corrupt for b in c.batches), key=lambda b: parse_time(b.time))
            names = ", ".join(c.pipeline for c in corrupt)
            found.append(
                Detection(
                    service=service,
                    summary=(
                        f"{count} failed batch{'es' if count > 1 else ''} in pipeline"
                        f"{'s' if len(corrupt) > 1 else ''} {names} of {service}"
                        f" (first: {first.batch}: {first.reason or 'no reason given'})"
                    ),
                    first_signal_at=first.time,
                    evidence=_evidence(corrupt),
                    kind="pipeline_corruption",
                )
            )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Quarantine every failed batch, then replay each pipeline from its checkpoint."""
        corrupt = _corruptions(world.signals_of(incident.service))
        count = sum(len(c.batches) for c in corrupt)
        if not corrupt or count > self.max_batches:
            return None
        service = incident.service
        quarantines = tuple(
            Step("quarantine_batch", service, (("batch", b.batch), ("pipeline", c.pipeline)))
            for c in corrupt
            for b in c.batches
        )
        replays = tuple(
            Step(
                "replay_from_checkpoint",
                service,
                (("checkpoint", c.checkpoint), ("pipeline", c.pipeline)),
            )
            for c in corrupt
            if c.checkpoint
        )
        parts = []
        for c in corrupt:
            batches = ", ".join(b.batch for b in c.batches)
            reasons = sorted({b.reason for b in c.batches if b.reason})
            text = (
                f"pipeline {c.pipeline} reported {len(c.event_ids)} failure"
                f"{'s' if len(c.event_ids) > 1 else ''} of batch"
                f"{'es' if len(c.batches) > 1 else ''} {batches} since {c.batches[0].time}"
                f" ({'; '.join(reasons) or 'no reason given'})"
            )
            if c.checkpoint:
                text += f"; its last good checkpoint before that is {c.checkpoint}"
            else:
                text += "; no good checkpoint was reported, so it is not replayed"
            parts.append(text)
        rationale = (
            f"on {service}, {'; '.join(parts)}. Quarantining the failed batches first keeps"
            " every consumer from reading corrupt data"
        )
        if replays:
            rationale += (
                "; replaying from the last good checkpoint then rebuilds the output the"
                " corrupt batches spoiled"
            )
        replayed = [c for c in corrupt if c.checkpoint]
        outcome = f"no consumer reads the {count} quarantined batch{'es' if count > 1 else ''}"
        if replayed:
            outcome += "; " + ", ".join(
                f"{c.pipeline} reprocesses from {c.checkpoint}" for c in replayed
            )
            outcome += " and its batches complete without failure"
        return Plan(
            agent=self.name,
            steps=(*quarantines, *replays),
            rationale=rationale,
            evidence=_evidence(corrupt),
            confidence=_confidence(corrupt),
            expected_outcome=outcome,
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        corrupt = _corruptions(world.signals_of(incident.service))
        count = sum(len(c.batches) for c in corrupt)
        if not corrupt:
            return f"{self.name}: no failed batch of {incident.service} is open any more"
        if count > self.max_batches:
            return (
                f"{self.name}: {count} failed batches exceed the limit of {self.max_batches};"
                " corruption this wide points at the source, not at single batches"
            )
        return ""


def _corruptions(signals: Signals) -> tuple[_Corruption, ...]:
    """The open failures of a service, grouped by pipeline (sorted by name)."""
    by_pipeline: dict[str, list[FailedBatch]] = {}
    for failure in sorted(signals.failed_batches, key=lambda b: parse_time(b.time)):
        by_pipeline.setdefault(failure.pipeline, []).append(failure)
    found = []
    for pipeline in sorted(by_pipeline):
        reports = by_pipeline[pipeline]
        firsts: dict[str, FailedBatch] = {}
        for report in reports:
            firsts.setdefault(report.batch, report)
        # Replay from before the earliest failure: a later checkpoint would skip it.
        found.append(
            _Corruption(
                pipeline,
                tuple(firsts.values()),
                tuple(r.event_id for r in reports),
                reports[0].last_good_checkpoint,
            )
        )
    return tuple(found)


def _evidence(corrupt: tuple[_Corruption, ...]) -> tuple[str, ...]:
    return tuple(i for c in corrupt for i in c.event_ids)


def _confidence(corrupt: tuple[_Corruption, ...]) -> float:
    replayable = all(c.checkpoint for c in corrupt)
    # A failed batch with a known good checkpoint is the textbook case for this cure.
    score = 0.85 if replayable else 0.7
    if all(b.reason for c in corrupt for b in c.batches):
        score += 0.05  # every failure says what was wrong with the data
    # Many failed batches make a single bad input less likely, and the replay less sure.
    batches = sum(len(c.batches) for c in corrupt)
    score -= min(0.15, 0.03 * (batches - 1))
    return round(min(0.95, max(0.6, score)), 2)
