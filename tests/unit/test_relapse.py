"""Relapses: a fix that did not hold is recorded as a failure, never as a resolution."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden.domain import events as ev
from warden.domain.errors import InvalidTransition
from warden.domain.events import format_time
from warden.domain.incident import Incident, State, apply
from warden.domain.kpis import incident_facts, summarise
from warden.domain.relapse import Remedy, before, relapsed, remember

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def resolved(service: str = "search", closed: float = 100, acted: bool = True) -> Incident:
    return Incident(
        id=f"inc-{service}-{closed}",
        service=service,
        state=State.RESOLVED,
        opened_at=at(0),
        first_signal_at=at(0),
        summary="down",
        intended=((0, 1),) if acted else (),
        closed_at=at(closed),
    )


def test_a_failure_soon_after_a_fix_is_a_relapse_of_it() -> None:
    fixed = resolved()
    assert relapsed([fixed], "search", at(300), 1800) == fixed
    assert relapsed([fixed], "search", at(2000), 1800) is None  # it held long enough
    assert relapsed([fixed], "other", at(300), 1800) is None
    assert relapsed([fixed], "search", at(50), 1800) is None  # failed before it closed


def test_only_symptoms_relapse() -> None:
    fixed = resolved()
    assert relapsed([fixed], "search", at(300), 1800, kind="drift") is None
    drifted = replace(fixed, kind="drift")
    assert relapsed([drifted], "search", at(300), 1800) is None
    assert relapsed([fixed], "search", at(300), 1800, kind="change") == fixed


def test_a_fault_that_went_by_itself_did_not_relapse() -> None:
    untouched = resolved(acted=False)
    assert relapsed([untouched], "search", at(300), 1800) is None


def test_the_latest_fix_is_the_one_that_relapsed() -> None:
    older, newer = resolved(closed=100), resolved(closed=200)
    found = relapsed([older, newer], "search", at(300), 1800)
    assert found == newer


def test_remedies_before_a_failure_within_the_window() -> None:
    remedies = remember((), Remedy(at(100), "restart_service", "search", "search", "i1"))
    assert before(remedies, "search", at(340), 1800) == remedies
    assert before(remedies, "search", at(90), 1800) == ()
    assert before(remedies, "search", at(5000), 1800) == ()
    assert before(remedies, "search", "", 1800) == ()


def _stream(relapse: bool) -> list[ev.Event]:
    """An incident fixed by a restart, verified, resolved; then (maybe) relapsed."""
    stream = "incident-i1"

    def event(type_: str, when: float, **data: object) -> ev.Event:
        return ev.Event(
            id=f"{type_}-{when}", source="t", type=type_, time=at(when), data=data, stream=stream
        )

    events = [
        event(
            ev.INCIDENT_OPENED,
            0,
            incident_id="i1",
            service="search",
            summary="down",
            first_signal_at=at(0),
        ),
        event(ev.STEP_INTENDED, 10, index=0, action="restart_service", target="search"),
        event(ev.STEP_SUCCEEDED, 11, index=0),
        event(ev.VERIFICATION_STARTED, 12),
        event(ev.INCIDENT_RESOLVED, 20, reason="verified"),
    ]
    if relapse:
        events.append(event(ev.INCIDENT_RELAPSED, 200, reason="failed again"))
    return events


@given(st.lists(st.booleans(), min_size=1, max_size=8))
def test_a_relapse_is_never_counted_as_a_success(relapses: list[bool]) -> None:
    streams = []
    for n, relapse in enumerate(relapses):
        events = _stream(relapse)
        streams.extend(replace(e, stream=f"incident-i{n}", id=f"{e.id}-{n}") for e in events)
    report = summarise(incident_facts(streams).values())
    held = relapses.count(False)
    assert report.relapsed == relapses.count(True)
    assert report.resolved == held
    assert report.closed == len(relapses)
    assert report.remediation_success_rate == pytest.approx(held / len(relapses))
    assert report.mttr.count == held
    assert report.automated == held


def test_only_a_remediated_resolution_can_relapse() -> None:
    opened = ev.Event(
        id="o",
        source="t",
        type=ev.INCIDENT_OPENED,
        time=at(0),
        data={"incident_id": "i", "service": "s", "summary": "x", "first_signal_at": at(0)},
    )
    incident = apply(None, opened)
    said = ev.Event(id="r", source="t", type=ev.INCIDENT_RELAPSED, time=at(5), data={})
    with pytest.raises(InvalidTransition):
        apply(incident, said)  # still open: nothing to relapse
    quiet = apply(
        incident, ev.Event(id="q", source="t", type=ev.INCIDENT_RESOLVED, time=at(3), data={})
    )
    with pytest.raises(InvalidTransition):
        apply(quiet, said)  # resolved before any step ran: no fix failed
    fixed = replace(quiet, intended=((0, 1),))
    assert apply(fixed, said).state is State.RELAPSED
    assert apply(fixed, said).state.terminal


def test_the_index_by_service_follows_the_incidents_as_they_grow_and_change() -> None:
    # The runtime looks for a relapse among the service's own incidents, from the
    # planner's index; it must agree with a scan of every incident at each moment.
    from warden.remediation.planning import Planner

    planner = Planner([])
    incidents: dict[str, Incident] = {}
    assert planner.of_service(incidents, "search") == []
    first, other = resolved(closed=100), resolved("other", closed=150)
    incidents |= {first.id: first, other.id: other}
    assert planner.of_service(incidents, "search") == [first]
    later = resolved(closed=200)
    incidents[later.id] = later  # appended after the index was built
    assert planner.of_service(incidents, "search") == [first, later]
    assert relapsed(planner.of_service(incidents, "search"), "search", at(300), 1800) == later
    reopened = replace(later, state=State.OPEN)
    incidents[later.id] = reopened  # folded anew: the index yields the current incident
    assert planner.of_service(incidents, "search") == [first, reopened]
    assert relapsed(planner.of_service(incidents, "search"), "search", at(300), 1800) == first
    # Another mapping, or one that shrank, is indexed afresh.
    assert planner.of_service({other.id: other}, "search") == []
    del incidents[first.id]
    assert planner.of_service(incidents, "search") == [reopened]
    assert planner.of_service(incidents, "other") == [other]


def test_remedies_before_a_failure_follow_each_new_remedy() -> None:
    # The answer is remembered per remedies tuple; a step that succeeded makes a new one.
    failed = at(400)
    first = remember((), Remedy(at(100), "restart_service", "search", "search", "i1"))
    assert before(first, "search", failed, 1800) == first
    second = remember(first, Remedy(at(200), "rollback", "search", "search", "i2"))
    assert before(second, "search", failed, 1800) == second
    assert before(first, "search", failed, 1800) == first
    assert before(second, "other", failed, 1800) == ()
