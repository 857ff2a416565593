"""Folding a metric sample into a service's signals changes its metrics and nothing else."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from warden.domain import events as ev
from warden.domain.signals import SAMPLES_KEPT, Sample, Signals, observe


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


def test_every_field_of_a_sample_is_known_here() -> None:
    # observe builds a Sample through its slot setters, in this order.
    assert [f.name for f in fields(Sample)] == ["time", "value", "event_id"]


def _samples_model(
    start: dict[str, list[Sample]], folded: list[tuple[str, float, int]]
) -> tuple[tuple[str, tuple[Sample, ...]], ...]:
    """The metrics a fold must give: a series folded into keeps its last SAMPLES_KEPT."""
    series = {name: list(kept) for name, kept in start.items()}
    for name, value, n in folded:
        kept = [*series.get(name, []), Sample(f"t{n}", float(value), f"e{n}")]
        series[name] = kept[-SAMPLES_KEPT:]
    return tuple(sorted((name, tuple(kept)) for name, kept in series.items()))


@given(
    start=st.dictionaries(
        st.sampled_from(["cpu", "errors", "latency_ms"]),
        st.integers(0, SAMPLES_KEPT + 2),
        max_size=3,
    ),
    folded=st.lists(
        st.tuples(st.sampled_from(["cpu", "errors", "latency_ms"]), st.integers(-5, 5)),
        max_size=40,
    ),
)
def test_samples_fold_into_sorted_series_of_the_latest(
    start: dict[str, int], folded: list[tuple[str, int]]
) -> None:
    # Series of every length up to past the limit, one metric or several, new or known.
    kept = {
        name: [Sample(f"s{name}{i}", float(i), f"s{name}{i}") for i in range(size)]
        for name, size in start.items()
    }
    base = everything_known()
    signals = Signals(
        "payments",
        base.deploys,
        tuple(sorted((name, tuple(samples)) for name, samples in kept.items())),
        base.failed_batches,
        base.drift,
        base.alerts,
    )
    numbered = [(name, value, n) for n, (name, value) in enumerate(folded)]
    for name, value, n in numbered:
        said = ev.Event(
            id=f"e{n}", source="test", type=ev.METRIC_SAMPLED, time=f"t{n}",
            data={"service": "payments", "metric": name, "value": value},
        )  # fmt: skip
        signals = observe(signals, said)
    assert signals.metrics == _samples_model(kept, numbered)
    assert (signals.service, signals.deploys, signals.failed_batches) == (
        "payments", base.deploys, base.failed_batches,
    )  # fmt: skip
    assert (signals.drift, signals.alerts) == (base.drift, base.alerts)
    assert all(type(s.value) is float for _, series in signals.metrics for s in series)
