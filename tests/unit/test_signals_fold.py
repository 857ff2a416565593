"""Folding a metric sample into a service's signals changes its metrics and nothing else."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from warden.domain import events as ev
from warden.domain.signals import SAMPLES_KEPT, Signals, observe


def event(type_: str, n: int, **data: Any) -> ev.Event:
    return ev.Event(
        id=f"e{n}",
        source="test",
        type=type_,
        time=f"2026-11-25T12:00:{n:02d}.000000Z",
        data={"service": "payments", **data},
    )


def everything_known() -> Signals:
    signals = Signals("payments")
    for said in (
        event(ev.DEPLOY_COMPLETED, 1, version="v1"),
        event(ev.DEPLOY_COMPLETED, 2, version="v2"),
        event(ev.BATCH_FAILED, 3, pipeline="etl", batch="b1", reason="oom"),
        event(ev.DRIFT_DETECTED, 4, field="replicas", desired="3", observed="1"),
        event(ev.ALERT_FIRING, 5, fingerprint="f1", alertname="HighErrors", labels={"a": "b"}),
        event(ev.METRIC_SAMPLED, 6, metric="latency_ms", value=120),
    ):
        signals = observe(signals, said)
    return signals


def test_every_field_of_signals_is_known_here() -> None:
    # A new field must be carried by observe's metric branch, which builds Signals whole.
    assert [f.name for f in fields(Signals)] == [
        "service", "deploys", "metrics", "failed_batches", "drift", "alerts",
    ]  # fmt: skip


def test_a_sample_changes_only_the_metrics() -> None:
    before = everything_known()
    assert all(getattr(before, f.name) for f in fields(Signals))  # nothing left empty
    after = observe(before, event(ev.METRIC_SAMPLED, 7, metric="errors", value=3))
    for field in fields(Signals):
        if field.name != "metrics":
            assert getattr(after, field.name) == getattr(before, field.name), field.name
    assert [name for name, _ in after.metrics] == ["errors", "latency_ms"]
    assert after.latest("errors") == 3.0
    assert after.series("latency_ms") == before.series("latency_ms")


def test_a_series_keeps_its_latest_samples() -> None:
    signals = Signals("payments")
    for n in range(SAMPLES_KEPT + 5):
        signals = observe(signals, event(ev.METRIC_SAMPLED, n % 60, metric="cpu", value=n))
    series = signals.series("cpu")
    assert len(series) == SAMPLES_KEPT
    assert series[-1].value == SAMPLES_KEPT + 4
