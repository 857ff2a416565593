"""The KPI fold's memory is bounded by services x hours, not by events; the listener's too."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.kpi_history import DAY, T0, Script, at
from warden.config import load_config
from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.errors import ConfigError
from warden.domain.kpis import History, KpiSettings, Retention, page_minutes, resilience_report
from warden.telemetry.metrics import MetricsListener
from warden.telemetry.report import report_json

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SERVICES = tuple(f"svc{n}" for n in range(10))
RETAIN_LIMIT_BYTES = 256_000  # growth once its hours are full; one object an event: >5 MB


def probes(
    count: int, *, days: float = 2, start: float = 0, recoveries: bool = False
) -> Iterator[ev.Event]:
    """``count`` probe results for the ten services, evenly over ``days`` from T0 + start."""
    step = days * DAY / count
    for n in range(count):
        service = SERVICES[n % len(SERVICES)]
        ok = recoveries and n % 2 == 1
        yield ev.Event(
            id=f"p{n}",
            source="test",
            type=ev.PROBE_SUCCEEDED if ok else ev.PROBE_FAILED,
            time=at(start + n * step),
            data={"service": service},
            stream=f"service-{service}",
            position=n + 1,
            subject=service,
        )


def folded(count: int, retention: Retention | None = None, **kw: bool) -> History:
    history = History(retention=retention)
    for event in probes(count, **kw):
        history.observe(event)
    return history


@pytest.mark.slow
def test_the_fold_of_a_history_grows_with_hours_not_with_probe_results() -> None:
    small, big = folded(20_000), folded(200_000)
    for history in (small, big):
        fleet = history.fleet
        assert len(fleet.signals) == len(SERVICES) * 48  # one bucket per service and hour
        assert len(fleet.spans) == 48
        assert len(fleet.first_seen) == len(SERVICES)
    assert small.fleet.size() == big.fleet.size()
    seen = big.report().fleet.observability
    assert seen.signals == 200_000
    assert seen.signals_by_kind == (("probe", 200_000),)
    assert seen.signals_per_service_hour == pytest.approx(200_000 / 10 / 48, rel=1e-3)


@pytest.mark.slow
def test_the_live_fold_keeps_the_latest_hours_and_folds_the_rest_into_totals() -> None:
    day = Retention(hours=24)
    small, big = (folded(n, day, recoveries=True) for n in (20_000, 200_000))
    for history in (small, big):
        assert len(history.fleet.spans) == 24
        assert len(history.fleet.signals) == len(SERVICES) * 24
        assert sum(len(r) for r in history.fleet.recoveries.values()) <= len(SERVICES)
    assert small.fleet.size() == big.fleet.size()
    whole = folded(200_000, recoveries=True).report()
    assert report_json(big.report()) == report_json(whole)  # totals: exactly the same figures


def test_a_range_of_a_live_fold_must_begin_in_the_hours_it_keeps() -> None:
    live = folded(20_000, Retention(hours=24))
    whole = folded(20_000)
    horizon = T0 + timedelta(days=1)
    assert live.report(since=horizon).fleet == whole.report(since=horizon).fleet
    with pytest.raises(ValueError, match=r"since must not be before .*older hours are folded"):
        live.report(since=horizon - timedelta(minutes=1))
    with pytest.raises(ValueError, match="until must not be before"):
        live.report(until=T0 + timedelta(hours=3))


def test_a_range_counts_the_whole_hours_it_touches() -> None:
    # Signals are counted per hour: a range edge inside an hour takes all of that hour.
    s = Script()
    s.signal(ev.PROBE_FAILED, "web", 10 * 60)  # 12:10
    s.signal(ev.DRIFT_DETECTED, "web", 50 * 60)  # 12:50
    s.shadow(70 * 60, "bp@v1", "bp@v2", agree=False)  # 13:10
    half = T0 + timedelta(minutes=30)
    r = resilience_report(s.events, since=half, until=half + timedelta(minutes=10))
    assert r.fleet.observability.signals == 2  # 12:10 and 12:50, both in the 12:00 hour
    assert r.fleet.config_drift.drifts == 1
    assert r.fleet.policy_drift.compared == 0  # the 13:00 hour is not touched
    later = resilience_report(s.events, since=T0 + timedelta(minutes=61))
    assert later.fleet.policy_drift.compared == 1
    assert later.fleet.observability.with_probes == 1  # coverage stays exact: before until
    assert later.fleet.observability.signals == 0  # the probe and the drift: 12:00 hour


def storm(s: Script, count: int) -> None:
    """``count`` incidents on web, an hour apart, each paged and ended by a recovery."""
    for n in range(count):
        t = n * 3600.0
        s.signal(ev.PROBE_FAILED, "web", t)
        i = s.incident(f"i{n}", "web")
        i.opened(t + 5, first_signal=t).planned(t + 6)
        if n % 3 == 0:
            i.decided(t + 7, 0, Outcome.ALLOW, "bp@v1").intended(t + 8, 0).finished(t + 10, 0)
            i.verified(t + 11, t + 40).add(ev.INCIDENT_RESOLVED, t + 40, {"reason": "ok"})
        else:
            i.decided(t + 7, 0, Outcome.DENY, "bp@v1").escalated(t + 9)
        for m in range(30):  # probe results every minute, the first ones fail
            kind = ev.PROBE_FAILED if m < 5 + n % 7 else ev.PROBE_SUCCEEDED
            s.signal(kind, "web", t + 60 + 60 * m)


def test_the_live_fold_keeps_the_latest_closed_incidents_and_counts_the_others() -> None:
    s = Script()
    storm(s, 60)
    window = 600.0
    live = History(retention=Retention(hours=6, closed_incidents=5, relapse_window_s=window))
    whole = History()
    for event in s.events:
        live.observe(event)
        whole.observe(event)
    settings = KpiSettings(relapse_window_s=window)
    kept, every = live.report(settings=settings), whole.report(settings=settings)
    assert len(live.incidents) <= 2 * 5 + 1  # compacted hourly, or after five more incidents
    states = {f.state for f in every.facts}
    for state in states:
        assert sum(1 for f in kept.facts if f.state is state) + live.folded_states[state] == sum(
            1 for f in every.facts if f.state is state
        )
    by_id = {f.incident_id: f for f in every.facts}
    assert kept.facts == tuple(by_id[f.incident_id] for f in kept.facts)
    # Pages still end at the same recovery: the recoveries kept are the ones pages need.
    recovered = whole.fleet.recoveries["web"]
    assert kept.cost.page_minutes > 0
    assert kept.cost.page_minutes == sum(
        page_minutes(f, recovered, whole.last_at) for f in kept.facts
    )
    assert sum(len(r) for r in live.fleet.recoveries.values()) <= len(live.incidents) + 1


@pytest.mark.slow
def test_the_listener_holds_no_more_after_100k_more_probe_results() -> None:
    # A day of probe results fills the hours kept; the next day's only replace them.
    listener = MetricsListener(CollectorRegistry(), retention=Retention(hours=24))
    for event in probes(20_000, days=1, recoveries=True):
        listener(event)
    kept = listener.statistics()
    ev._parse_time.cache_clear()  # a bounded cache of every module's, not the listener's
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for event in probes(100_000, days=1, start=DAY, recoveries=True):
            listener(event)
        ev._parse_time.cache_clear()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    assert grown < RETAIN_LIMIT_BYTES
    held = listener.statistics()
    assert held.fleet_keys == kept.fleet_keys + len(SERVICES)  # the first day, as totals
    assert kept.incidents == 0
    assert held.incidents == 0
    assert held.fleet_keys <= 24 * len(SERVICES) + 24 + 3 * len(SERVICES)
    assert listener.report().fleet.observability.signals == 120_000


def test_the_listener_counts_the_incidents_it_let_go_by_state() -> None:
    s = Script()
    storm(s, 30)
    registry = CollectorRegistry()
    retention = Retention(hours=6, closed_incidents=3)
    listener = MetricsListener(
        registry, settings=KpiSettings(relapse_window_s=600), retention=retention
    )
    for event in s.events:
        listener(event)
    every = resilience_report(s.events, settings=KpiSettings(relapse_window_s=600))
    assert listener.statistics().folded_incidents > 0
    for state in ("resolved", "escalated", "relapsed"):
        expected = sum(1 for f in every.facts if f.state.value == state)
        assert registry.get_sample_value("warden_incidents", {"state": state}) == expected


def test_kpis_retention_in_warden_yaml_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    head = "services:\n  - {name: web, health: 'http://127.0.0.1:1/'}\n"
    path.write_text(head)
    assert load_config(path).kpi_retention == Retention(hours=7 * 24, closed_incidents=1000)
    path.write_text(head + "kpis:\n  retain_days: 2\n  retain_closed_incidents: 50\n")
    assert load_config(path).kpi_retention == Retention(hours=48, closed_incidents=50)
    path.write_text(head + "kpis:\n  retain_days: 0\n")
    with pytest.raises(
        ConfigError, match=r"line 4: kpis\.retain_days: expected a whole number >= 1, got 0"
    ):
        load_config(path)


SIGNAL_TYPES = (ev.PROBE_FAILED, ev.PROBE_SUCCEEDED, ev.ALERT_FIRING, ev.DRIFT_DETECTED)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 5 * DAY),
            st.sampled_from(("web", "db", "mq")),
            st.sampled_from((*SIGNAL_TYPES, "shadow")),
            st.booleans(),
        ),
        max_size=80,
    ),
    st.integers(1, 30),
)
def test_a_live_fold_of_signals_in_time_order_reports_what_the_whole_fold_does(
    signals: list[tuple[float, str, str, bool]], hours: int
) -> None:
    s = Script()
    for t, service, type_, agree in sorted(signals):
        if type_ == "shadow":
            s.shadow(t, "bp@v1", f"bp@{service}", agree=agree)
        else:
            s.signal(type_, service, t)
    live = History(retention=Retention(hours=hours))
    for event in s.events:
        live.observe(event)
    whole = resilience_report(s.events)
    # per hour kept: 3 services x 3 kinds, 3 drifting, 3 bundle pairs, its span; beside them
    # first moments (9), the latest recovery (3) and the folded totals (9 + 3 + 3)
    assert live.fleet.size() <= hours * 16 + 9 + 3 + 15
    assert report_json(live.report()) == report_json(whole)
