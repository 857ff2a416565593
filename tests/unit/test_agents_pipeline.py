"""PipelineCorruptionAgent: failed batches are quarantined, then the pipeline replayed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warden.agents.pipeline import PipelineCorruptionAgent
from warden.domain import events as ev
from warden.domain.events import format_time
from warden.domain.incident import Incident, State
from warden.domain.plans import Step
from warden.domain.signals import FailedBatch, Signals, observe
from warden.domain.world import World

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def failed(
    t: float,
    batch: str,
    checkpoint: str = "cp-41",
    pipeline: str = "orders-etl",
    reason: str = "checksum mismatch",
) -> FailedBatch:
    return FailedBatch(at(t), pipeline, batch, reason, checkpoint, f"ev-{pipeline}-{batch}-{t:g}")


def world(*batches: FailedBatch) -> World:
    return World(
        now=T0 + timedelta(seconds=60), signals={"etl": Signals("etl", failed_batches=batches)}
    )


def incident() -> Incident:
    return Incident(
        id="inc-1",
        service="etl",
        state=State.OPEN,
        opened_at=at(30),
        first_signal_at=at(10),
        summary="corruption",
        kind="pipeline_corruption",
    )


FAULT = world(failed(10, "b-42"), failed(20, "b-43", checkpoint="cp-42"))


def test_failed_batches_are_detected() -> None:
    (found,) = PipelineCorruptionAgent().detect(FAULT)
    assert found.kind == "pipeline_corruption"
    assert found.service == "etl"
    assert found.first_signal_at == at(10)
    assert found.evidence == ("ev-orders-etl-b-42-10", "ev-orders-etl-b-43-20")
    assert "2 failed batches" in found.summary
    assert "checksum mismatch" in found.summary


def test_plan_quarantines_then_replays_from_the_checkpoint_before_the_first_failure() -> None:
    plan = PipelineCorruptionAgent().propose(incident(), FAULT)
    assert plan is not None
    assert plan.agent == "pipeline-corruption"
    assert plan.steps == (
        Step("quarantine_batch", "etl", (("batch", "b-42"), ("pipeline", "orders-etl"))),
        Step("quarantine_batch", "etl", (("batch", "b-43"), ("pipeline", "orders-etl"))),
        Step(
            "replay_from_checkpoint", "etl", (("checkpoint", "cp-41"), ("pipeline", "orders-etl"))
        ),
    )
    assert plan.evidence == ("ev-orders-etl-b-42-10", "ev-orders-etl-b-43-20")
    for fact in ("b-42, b-43", "checksum mismatch", "cp-41", "Quarantining"):
        assert fact in plan.rationale
    assert plan.confidence == 0.87  # 0.85 + 0.05 (reasons given) - 0.03 (a second batch)
    assert "orders-etl reprocesses from cp-41" in plan.expected_outcome


def test_a_batch_reported_twice_is_quarantined_once() -> None:
    plan = PipelineCorruptionAgent().propose(
        incident(), world(failed(10, "b-42"), failed(15, "b-42"))
    )
    assert plan is not None
    assert [s.action for s in plan.steps] == ["quarantine_batch", "replay_from_checkpoint"]
    assert plan.evidence == ("ev-orders-etl-b-42-10", "ev-orders-etl-b-42-15")
    assert plan.confidence == 0.9


def test_without_a_checkpoint_only_quarantine() -> None:
    plan = PipelineCorruptionAgent().propose(incident(), world(failed(10, "b-42", checkpoint="")))
    assert plan is not None
    assert [s.action for s in plan.steps] == ["quarantine_batch"]
    assert "not replayed" in plan.rationale
    assert plan.confidence == 0.75


def test_two_pipelines_quarantine_everything_before_any_replay() -> None:
    w = world(
        failed(10, "b-1", pipeline="a", checkpoint="a-0"),
        failed(12, "b-9", pipeline="b", checkpoint="b-8"),
    )
    plan = PipelineCorruptionAgent().propose(incident(), w)
    assert plan is not None
    assert [(s.action, dict(s.params)["pipeline"]) for s in plan.steps] == [
        ("quarantine_batch", "a"),
        ("quarantine_batch", "b"),
        ("replay_from_checkpoint", "a"),
        ("replay_from_checkpoint", "b"),
    ]


def test_too_many_failed_batches_go_to_a_human() -> None:
    w = world(*(failed(i, f"b-{i}") for i in range(4)))
    agent = PipelineCorruptionAgent(max_batches=3)
    assert agent.detect(w) != []
    assert agent.propose(incident(), w) is None
    assert "exceed the limit of 3" in agent.why_no_plan(incident(), w)


def test_no_failed_batch_nothing_to_do() -> None:
    agent = PipelineCorruptionAgent()
    assert agent.detect(world()) == []
    assert agent.propose(incident(), world()) is None
    assert "no failed batch" in agent.why_no_plan(incident(), world())


def test_same_inputs_same_plans() -> None:
    agent = PipelineCorruptionAgent()
    assert agent.detect(FAULT) == agent.detect(FAULT)
    assert agent.propose(incident(), FAULT) == agent.propose(incident(), FAULT)
    assert agent.why_no_plan(incident(), FAULT) == ""


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batches"):
        PipelineCorruptionAgent(max_batches=0)


def test_a_recovered_batch_closes_only_its_own_pipeline_s_failure() -> None:
    signals = Signals(
        "etl", failed_batches=(failed(10, "b-1"), failed(11, "b-1", pipeline="billing-etl"))
    )
    recovered = ev.Event(
        id="r1",
        source="test",
        type=ev.BATCH_RECOVERED,
        time=at(40),
        data={"service": "etl", "pipeline": "orders-etl", "batch": "b-1"},
    )
    after = observe(signals, recovered)
    assert [(b.pipeline, b.batch) for b in after.failed_batches] == [("billing-etl", "b-1")]
