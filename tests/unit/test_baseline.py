"""Baselines learned from metric series: what fires, what never does, and the symptoms."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from warden.agents.anomaly import AnomalyAgent
from warden.domain import events as ev
from warden.domain.baseline import BaselineRule, assess, threshold
from warden.domain.signals import Signals, observe
from warden.domain.symptoms import (
    DEFAULT_RULES,
    ERROR_RATE_HIGH,
    LATENCY_HIGH,
    SATURATION_HIGH,
    symptom_kind,
    symptoms,
)
from warden.domain.world import World

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
rules = st.builds(
    BaselineRule,
    min_samples=st.integers(3, 30),
    window=st.just(40),
    k=st.floats(1.0, 10.0),
    sustain=st.integers(1, 5),
    min_shift=st.floats(0.0, 10.0),
    min_ratio=st.floats(0.0, 1.0),
)


@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(0, 200), rules)
def test_a_constant_series_never_fires(value: float, length: int, rule: BaselineRule) -> None:
    assert assess([value] * length, rule) is None


@given(
    centre=st.floats(-1000, 1000, allow_nan=False),
    noise=st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=0, max_size=200),
    amplitude=st.floats(0.0, 5.0),
    rule=rules,
)
@example(centre=0.0, noise=[0.0] * 20 + [1.0] * 10, amplitude=1.0, rule=BaselineRule(3, 40, 1.0))
def test_noise_of_bounded_amplitude_never_fires(
    centre: float, noise: list[float], amplitude: float, rule: BaselineRule
) -> None:
    """Whatever its shape, noise within +-a never fires once the floor covers 2a."""
    # 2a, and a hair more for the rounding of centre + a * n (the centre reaches 1,000).
    floor = 2 * amplitude * (1 + 1e-9) + 1e-9
    covering = BaselineRule(
        rule.min_samples, rule.window, rule.k, rule.sustain, max(rule.min_shift, floor)
    )
    series = [centre + amplitude * n for n in noise]
    assert assess(series, covering) is None


@given(
    baseline=st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=3, max_size=60),
    rule=rules,
    excess=st.floats(0.01, 1000.0),
    extra=st.integers(0, 5),
)
@example(baseline=[0.0, 1.0, 0.25, 1.0, 0.0], rule=BaselineRule(3, 40, 1.0, 1), excess=1.0, extra=0)
def test_a_sustained_shift_beyond_the_threshold_fires_after_the_minimum_samples(
    baseline: list[float], rule: BaselineRule, excess: float, extra: int
) -> None:
    # A baseline of noise within +-1 and a floor of 2: every sample of it is normal, so
    # the detector learns from all of it (the latest window).
    rule = BaselineRule(
        rule.min_samples, rule.window, rule.k, rule.sustain, max(rule.min_shift, 2.0)
    )
    baseline = (baseline * rule.min_samples)[: max(len(baseline), rule.min_samples)]
    assert assess(baseline, rule) is None
    centre, spread, limit = threshold(baseline[-rule.window :], rule)
    assert limit >= centre + rule.k * spread  # beyond k scaled MADs, and the floor
    high = limit + excess
    shifted = assess([*baseline, *[high] * (rule.sustain + extra)], rule)
    assert shifted is not None
    assert (shifted.baseline, shifted.threshold) == (centre, limit)
    assert (shifted.onset, shifted.observed) == (len(baseline), high)
    # One sample short of sustain is no shift yet: a spike is not an incident.
    assert assess([*baseline, *[high] * (rule.sustain - 1)], rule) is None


@given(rule=rules, values=st.lists(finite, max_size=40))
def test_nothing_fires_before_the_minimum_samples_and_a_sustained_run(
    rule: BaselineRule, values: list[float]
) -> None:
    """The first min_samples samples only teach; a shift then needs sustain samples."""
    assert assess(values[: rule.min_samples + rule.sustain - 1], rule) is None


def test_a_spike_is_not_an_incident_and_a_shift_holds_until_it_clears() -> None:
    rule = BaselineRule(min_samples=5, window=40, k=6.0, sustain=3)
    calm = [0.01, 0.012, 0.009, 0.011, 0.01, 0.01]
    assert assess([*calm, 0.5, 0.01, 0.5, 0.01], rule) is None
    shift = assess([*calm, 0.5, 0.5, 0.5], rule)
    assert shift is not None
    assert shift.baseline == pytest.approx(0.01)
    # Hysteresis: one low sample does not clear it; sustain samples below halfway do.
    assert assess([*calm, 0.5, 0.5, 0.5, 0.01], rule) is not None
    assert assess([*calm, 0.5, 0.5, 0.5, 0.01, 0.01, 0.01], rule) is None


def test_a_declared_slo_is_a_floor_under_the_threshold() -> None:
    rule = BaselineRule(min_samples=5, window=40, sustain=2, min_shift=0.005)
    series = [0.001] * 10 + [0.015] * 3
    assert assess(series, rule) is not None
    assert assess(series, rule, floor=0.02) is None


def test_gaussian_noise_does_not_fire_with_the_default_rules() -> None:
    """Realistic noise: 2,000 samples of each kind around their level, fixed seeds."""
    for seed in range(3):
        rng = random.Random(seed)
        for kind, level, sigma in (
            (ERROR_RATE_HIGH, 0.01, 0.003),
            (LATENCY_HIGH, 120.0, 15.0),
            (SATURATION_HIGH, 0.4, 0.03),
        ):
            series = [max(0.0, rng.gauss(level, sigma)) for _ in range(2000)]
            rule = DEFAULT_RULES[kind]
            for end in range(rule.min_samples, len(series), 101):
                assert assess(series[max(0, end - 160) : end], rule) is None, (kind, seed, end)


# -- symptoms and the detector agent ---------------------------------------------------------

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _signals(service: str, metric: str, values: list[float]) -> Signals:
    signals = Signals(service)
    for i, value in enumerate(values):
        signals = observe(
            signals,
            ev.Event(
                id=f"{metric}-{i}",
                source="test",
                type=ev.METRIC_SAMPLED,
                time=ev.format_time(START + timedelta(seconds=15 * i)),
                data={"service": service, "metric": metric, "value": value},
            ),
        )
    return signals


@pytest.mark.parametrize(
    ("metric", "kind"),
    [
        ("error_rate", ERROR_RATE_HIGH),
        ("http_error_ratio", ERROR_RATE_HIGH),
        ("latency_p99_ms", LATENCY_HIGH),
        ("request_duration_seconds", LATENCY_HIGH),
        ("cpu_utilization", SATURATION_HIGH),
        ("disk_io_util", SATURATION_HIGH),
        ("request_rate", None),
        ("backlog", None),
    ],
)
def test_metrics_map_to_the_symptom_they_can_show(metric: str, kind: str | None) -> None:
    assert symptom_kind(metric) == kind


def test_a_shift_in_error_rate_is_a_symptom_with_its_evidence() -> None:
    values = [0.004, 0.005, 0.003] * 8 + [0.12, 0.13, 0.12]
    world = World(now=START, signals={"orders": _signals("orders", "error_rate", values)})
    (symptom,) = symptoms(world)
    assert (symptom.service, symptom.kind, symptom.metric) == (
        "orders",
        ERROR_RATE_HIGH,
        "error_rate",
    )
    assert symptom.baseline == pytest.approx(0.004)
    assert symptom.observed == 0.12
    assert symptom.evidence == ("error_rate-24", "error_rate-25", "error_rate-26")
    assert symptom.since == ev.format_time(START + timedelta(seconds=15 * 24))
    assert symptom.samples == 24
    (detection,) = AnomalyAgent().detect(world)
    assert detection.kind == ERROR_RATE_HIGH
    assert detection.evidence == symptom.evidence
    assert "baseline 0.004" in detection.summary and "0.12" in detection.summary


def test_a_rise_inside_the_declared_slo_is_no_symptom() -> None:
    values = [100.0, 110.0, 95.0] * 8 + [220.0] * 4
    signals = {"web": _signals("web", "latency_p99_ms", values)}
    assert [s.kind for s in symptoms(World(now=START, signals=signals))] == [LATENCY_HIGH]
    slo = {"web": (("latency_slo_ms", "500"),)}
    assert symptoms(World(now=START, signals=signals, limits=slo)) == []


def test_too_few_samples_are_not_judged() -> None:
    """The scenario lab's no-fault load spike: 8 samples at 90 ms, then 220 ms."""
    values = [90.0] * 8 + [220.0] * 40
    world = World(
        now=START, signals={"storefront": _signals("storefront", "latency_p99_ms", values)}
    )
    assert symptoms(world) == []
    assert AnomalyAgent().detect(world) == []


@settings(max_examples=25)
@given(st.integers(3, 40), st.integers(1, 5), st.floats(0.5, 10))
def test_the_agent_takes_its_settings(min_samples: int, sustain: int, k: float) -> None:
    agent = AnomalyAgent(min_samples=min_samples, sustain=sustain, k=k)
    rule = agent.detectors.rules[ERROR_RATE_HIGH]
    assert (rule.min_samples, rule.sustain, rule.k) == (min_samples, sustain, k)
    with pytest.raises(ValueError, match="min_samples"):
        AnomalyAgent(min_samples=2)
