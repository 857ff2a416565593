"""Resilience KPIs from a scripted history whose expected figures are worked out by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.kpi_history import DAY, T0, Script
from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.incident import State, fold
from warden.domain.kpis import Summary, incident_facts, nearest_rank, resilience_report

if TYPE_CHECKING:
    from warden.store.sqlite import SQLiteEventStore


def history() -> Script:
    """Six incidents; the comment on each line is what the KPIs should take from it."""
    s = Script()
    s.add("service-payments", ev.PROBE_FAILED, 0, {"service": "payments"})  # not an incident
    a = s.incident("a", "payments")  # resolved, fully automated
    a.opened(10, first_signal=0)  # detect 10
    a.planned(12)
    a.decided(13, 0, Outcome.ALLOW, "v1")  # decide 3, latency 1
    a.intended(14, 0).finished(16, 0, duration_ms=1500)  # action 1.5
    a.verified(17, 20).add(ev.INCIDENT_RESOLVED, 20)  # MTTR 20

    b = s.incident("b", "orders", steps=2)  # resolved after a human approval
    b.opened(104, first_signal=100)  # detect 4
    b.planned(105)
    b.decided(107, 0, Outcome.NEEDS_APPROVAL, "v1", approvers=1)  # decide 3, latency 2
    b.approved(130, 0, "alice")
    b.decided(131, 0, Outcome.ALLOW, "v1")  # latency 1 (from the approval)
    b.intended(132, 0).finished(135, 0)  # action 3.0 (intent -> result)
    b.decided(139, 1, Outcome.ALLOW, "v2")  # latency 4 (from step 0's result); drift v1 -> v2
    b.intended(140, 1).finished(141, 1, duration_ms=800)  # action 0.8
    b.verified(142, 150).add(ev.INCIDENT_RESOLVED, 150)  # MTTR 50

    c = s.incident("c", "gateway")  # escalated after a failed step
    c.opened(206, first_signal=200)  # detect 6
    c.planned(207)
    c.decided(210, 0, Outcome.ALLOW, "v2")  # decide 4, latency 3
    c.intended(211, 0).finished(216, 0, ok=False, duration_ms=5000)  # action 5.0, failed
    c.add(ev.INCIDENT_ESCALATED, 217)

    d = s.incident("d", "search")  # denied, escalated
    d.opened(302, first_signal=300)  # detect 2
    d.planned(303)
    d.decided(308, 0, Outcome.DENY, "v1")  # decide 6, latency 5; drift v2 -> v1
    d.add(ev.INCIDENT_ESCALATED, 309)

    e = s.incident("e", "cache")  # recovered before any action: automated
    e.opened(403, first_signal=400)  # detect 3
    e.add(ev.INCIDENT_RESOLVED, 410)  # MTTR 10

    s.add("control", ev.KILL_SWITCH_ENGAGED, 500, {"by": "ops"})

    f = s.incident("f", "search")  # still open, the next day
    f.opened(DAY, first_signal=DAY - 5)  # detect 5
    f.planned(DAY + 1)
    return s


def test_the_scripted_history_is_legal() -> None:
    streams = {e.stream for e in history().events if e.stream.startswith("incident-")}
    for stream in streams:
        assert fold(e for e in history().events if e.stream == stream) is not None


def test_every_kpi_over_all_time() -> None:
    r = resilience_report(history().events)
    assert (r.incidents, r.open, r.resolved, r.escalated, r.rolled_back) == (6, 1, 3, 2, 0)
    assert r.closed == 5
    assert r.automated == 2  # a and e; b needed alice
    assert r.automation_coverage == pytest.approx(2 / 5)
    # remediations (a step ran): a, b held; c failed; d (denied) and e (no step) are none
    assert (r.remediations, r.remediations_held) == (3, 2)
    assert r.remediation_success_rate == pytest.approx(2 / 3)
    assert r.escalations_per_incident == pytest.approx(2 / 6)
    # MTTR: [10, 20, 50]
    assert r.mttr == Summary(count=3, mean=pytest.approx(80 / 3), p50=20, p90=50, p99=50, max=50)
    # time to detect: [2, 3, 4, 5, 6, 10]
    assert r.time_to_detect == Summary(count=6, mean=5, p50=4, p90=10, p99=10, max=10)
    # time to decide: [3, 3, 4, 6]
    assert r.time_to_decide == Summary(count=4, mean=4, p50=3, p90=6, p99=6, max=6)
    # action duration: [0.8, 1.5, 3.0, 5.0]
    assert r.action_duration == Summary(
        count=4, mean=pytest.approx(10.3 / 4), p50=1.5, p90=5.0, p99=5.0, max=5.0
    )
    # decision latency: [1, 1, 2, 3, 4, 5]
    assert r.decision_latency == Summary(
        count=6, mean=pytest.approx(16 / 6), p50=2, p90=5, p99=5, max=5
    )
    assert (r.decisions_allowed, r.decisions_denied, r.decisions_needing_approval) == (4, 1, 1)
    assert r.decisions == 6
    assert r.approvals == 1
    assert (r.actions_succeeded, r.actions_failed) == (3, 1)
    # bundle versions in decision order: v1 v1 v1 v2 v2 v1 -> two changes
    assert r.policy_changes == 2
    assert r.policy_versions == ("v1", "v2")
    # from the first signal (0 s) to f's last event (1 day + 1 s)
    assert r.period_days == pytest.approx((DAY + 1) / DAY)
    assert r.escalations_per_day == pytest.approx(2 / ((DAY + 1) / DAY))
    assert r.policy_changes_per_day == pytest.approx(2 / ((DAY + 1) / DAY))
    assert r.kill_switch_engagements == 1
    assert [f.incident_id for f in r.facts] == ["a", "b", "c", "d", "e", "f"]
    assert [f.state for f in r.facts] == [
        State.RESOLVED, State.RESOLVED, State.ESCALATED, State.ESCALATED, State.RESOLVED,
        State.PLANNED,
    ]  # fmt: skip


def test_a_range_takes_the_incidents_opened_in_it() -> None:
    # [100 s, 300 s) holds b (opened at 104) and c (206); d opened at 302 is out.
    r = resilience_report(
        history().events, since=T0 + timedelta(seconds=100), until=T0 + timedelta(seconds=300)
    )
    assert [f.incident_id for f in r.facts] == ["b", "c"]
    assert (r.incidents, r.resolved, r.escalated, r.automated) == (2, 1, 1, 0)
    assert r.automation_coverage == 0.0
    assert r.remediation_success_rate == pytest.approx(0.5)
    assert r.mttr.count == 1 and r.mttr.mean == 50
    assert r.time_to_detect == Summary(count=2, mean=5, p50=4, p90=6, p99=6, max=6)
    assert r.time_to_decide == Summary(count=2, mean=3.5, p50=3, p90=4, p99=4, max=4)
    # b: 2, 1, 4; c: 3
    assert r.decision_latency == Summary(count=4, mean=2.5, p50=2, p90=4, p99=4, max=4)
    assert r.policy_changes == 1  # v1 v1 v2 v2
    assert r.period_days == pytest.approx(200 / DAY)
    assert r.escalations_per_day == pytest.approx(1.0)  # a 200 s window counts as one day
    assert r.kill_switch_engagements == 0  # engaged at 500 s


def test_rates_per_day_over_a_long_range() -> None:
    r = resilience_report(history().events, since=T0, until=T0 + timedelta(days=2))
    assert r.incidents == 6
    assert r.period_days == pytest.approx(2.0)
    assert r.escalations_per_day == pytest.approx(1.0)
    assert r.policy_changes_per_day == pytest.approx(1.0)
    assert r.kill_switch_engagements == 1


def test_an_empty_range_has_no_ratios() -> None:
    r = resilience_report(history().events, since=T0 + timedelta(days=5))
    assert r.incidents == 0
    assert r.mttr == Summary()
    assert r.automation_coverage is None
    assert r.remediation_success_rate is None
    assert r.escalations_per_incident is None
    assert r.period_days is None
    assert r.escalations_per_day is None


def test_replaying_the_stored_history_gives_the_same_report(store: SQLiteEventStore) -> None:
    script = history()
    for event in script.events:
        store.append(event.stream, [replace(event, stream="", position=0)])
    live = resilience_report(script.events)
    replayed = resilience_report(store.read_all())
    assert replace(replayed, facts=()) == replace(live, facts=())
    assert [f.incident_id for f in replayed.facts] == [f.incident_id for f in live.facts]


def test_facts_keep_one_record_per_incident_stream() -> None:
    facts = incident_facts(history().events)
    assert sorted(facts) == [f"incident-{n}" for n in "abcdef"]
    b = facts["incident-b"]
    assert b.needed_a_human and not b.automated
    assert [a.duration_s for a in b.actions] == [3.0, 0.8]
    assert facts["incident-f"].mttr_s is None


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 11)]
    assert nearest_rank(values, 50) == 5
    assert nearest_rank(values, 90) == 9
    assert nearest_rank(values, 99) == 10
    assert nearest_rank([7.0], 1) == 7
    with pytest.raises(ValueError, match="percent"):
        nearest_rank(values, 0)


def test_bounds_must_be_aware_and_ordered() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        resilience_report([], since=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="must be after"):
        resilience_report([], since=T0, until=T0)
