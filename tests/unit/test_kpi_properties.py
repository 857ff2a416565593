"""Invariants of the KPIs over generated histories (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.kpi_history import T0, Script
from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.incident import State
from warden.domain.kpis import KpiSettings, Prices, resilience_report
from warden.telemetry.report import report_json

if TYPE_CHECKING:
    from tests.kpi_history import Scripted

OUTCOMES = ("held", "untouched", "denied", "failed", "approved", "open", "relapsed")
WINDOW = 600.0
PRICED = KpiSettings(relapse_window_s=WINDOW, prices=Prices(0.1, 5, 2))


def write(s: Scripted, outcome: str, t: float, bundle: str) -> None:
    """One incident of ``outcome``, its first signal at ``t``."""
    s.opened(t + 5, first_signal=t)
    if outcome == "untouched":
        s.add(ev.INCIDENT_RESOLVED, t + 9, {"reason": "recovered"})
        return
    s.planned(t + 6)
    if outcome == "open":
        return
    if outcome == "denied":
        s.decided(t + 7, 0, Outcome.DENY, bundle).escalated(t + 8)
        return
    if outcome == "approved":
        s.decided(t + 7, 0, Outcome.NEEDS_APPROVAL, bundle, approvers=1).asked(t + 7, 0)
        s.approved(t + 30, 0, "alice")
    s.decided(t + 31, 0, Outcome.ALLOW, bundle).intended(t + 32, 0)
    if outcome == "failed":
        s.finished(t + 35, 0, ok=False).escalated(t + 36)
        return
    s.finished(t + 35, 0).verified(t + 36, t + 40)
    s.add(ev.INCIDENT_RESOLVED, t + 40, {"reason": "verified"})
    if outcome == "relapsed":
        s.add(ev.INCIDENT_RELAPSED, t + 60, {"reason": "again"})


incidents = st.lists(
    st.tuples(
        st.sampled_from(("a", "b", "c")),
        st.sampled_from(OUTCOMES),
        st.integers(0, 40).map(lambda n: n * 250.0),
        st.sampled_from(("bp@v1", "bp@v2")),
    ),
    max_size=8,
)


def script_of(specs: list[tuple[str, str, float, str]]) -> Script:
    s = Script()
    for n, (service, outcome, t, bundle) in enumerate(specs):
        write(s.incident(f"i{n}", service), outcome, t, bundle)
    return s


@given(incidents, st.lists(st.booleans(), max_size=5))
@settings(max_examples=150, deadline=None)
def test_ratios_are_shares_and_counts_nest(
    specs: list[tuple[str, str, float, str]], shadow: list[bool]
) -> None:
    s = script_of(specs)
    for n, agree in enumerate(shadow):
        s.shadow(n * 10.0, "bp@v1", "bp@v2", agree=agree)
    r = resilience_report(s.events, settings=PRICED)
    for ratio in (
        r.automation_coverage,
        r.remediation_success_rate,
        r.escalations_per_incident,
        r.fleet.policy_drift.rate,
        r.fleet.observability.probe_share,
    ):
        assert ratio is None or 0.0 <= ratio <= 1.0
    assert r.remediations_held <= r.remediations <= r.closed <= r.incidents
    assert r.automated <= r.resolved
    assert r.cost.page_minutes >= 0.0
    assert r.cost.total is not None and r.cost.total >= 0.0
    # nothing to divide by is n/a, never 0
    assert (r.remediation_success_rate is None) == (r.remediations == 0)
    assert (r.automation_coverage is None) == (r.closed == 0)
    assert (r.fleet.policy_drift.rate is None) == (not shadow)


@given(
    st.floats(0.0, 2 * WINDOW),
    st.sampled_from(("held", "approved")),
    st.sampled_from(OUTCOMES),
)
@settings(max_examples=150, deadline=None)
def test_a_relapse_within_the_window_is_never_a_success(
    gap: float, fixed: str, next_outcome: str
) -> None:
    s = Script()
    write(s.incident("first", "payments"), fixed, 0.0, "bp@v1")  # resolved at 40 s
    write(s.incident("again", "payments"), next_outcome, 40.0 + gap, "bp@v1")
    r = resilience_report(s.events, settings=KpiSettings(relapse_window_s=WINDOW))
    first = next(f for f in r.facts if f.incident_id == "first")
    if gap <= WINDOW:
        assert first.state is State.RELAPSED
        assert not first.automated
    else:
        assert first.state is State.RESOLVED
    counted = {f.incident_id for f in r.facts if f.remediated and f.state is State.RESOLVED}
    assert r.remediations_held == len(counted)
    assert ("first" in counted) == (gap > WINDOW)


@given(
    st.lists(
        st.tuples(st.sampled_from(OUTCOMES), st.integers(0, 20).map(lambda n: n * 100.0)),
        min_size=1,
        max_size=5,
    ),
    st.randoms(use_true_random=False),
)
@settings(max_examples=100, deadline=None)
def test_the_order_of_unrelated_incidents_changes_nothing(
    specs: list[tuple[str, float]], rnd: object
) -> None:
    # Each incident on its own service: their events may interleave in any order.
    streams: list[list[ev.Event]] = []
    for n, (outcome, t) in enumerate(specs):
        s = Script()
        s.signal(ev.PROBE_FAILED, f"svc{n}", t)
        write(s.incident(f"i{n}", f"svc{n}"), outcome, t, f"bp@v{n % 2}")
        streams.append(s.events)
    in_order = [e for stream in streams for e in stream]
    pending = [list(stream) for stream in streams]
    shuffled: list[ev.Event] = []
    while any(pending):
        choice = rnd.choice([p for p in pending if p])  # type: ignore[attr-defined]
        shuffled.append(choice.pop(0))
    renumbered = [replace(e, position=i + 1) for i, e in enumerate(shuffled)]
    until = T0 + timedelta(days=1)
    one = resilience_report(in_order, until=until, settings=PRICED)
    other = resilience_report(renumbered, until=until, settings=PRICED)
    assert report_json(one) == report_json(other)
