"""Evidence, rule by rule (pure core): what still shows, what a resolved alert does, joining."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain import events as ev
from warden.domain.errors import InvalidTransition
from warden.domain.health import Health
from warden.domain.incident import Incident, State, apply
from warden.domain.joining import (
    Sighting,
    on_alert_resolved,
    outstanding,
    page_once,
    where_it_goes,
)
from warden.domain.signals import Alert, Signals
from warden.domain.world import World

if TYPE_CHECKING:
    from warden.domain.commands import Append

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REPAGE_S = 1800.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return ev.format_time(at(seconds))


def event(type_: str, seconds: float, **data: Any) -> ev.Event:
    return ev.Event(f"{type_}@{seconds}", "test", type_, stamp(seconds), data)


def opened(
    kind: str = "service_down", service: str = "api", evidence: tuple[str, ...] = ("p1",)
) -> Incident:
    return apply(
        None,
        event(
            ev.INCIDENT_OPENED,
            10,
            incident_id=f"{kind}-{service}",
            service=service,
            kind=kind,
            first_signal_at=stamp(0),
            evidence=list(evidence),
            detected_by="service-down" if kind == "service_down" else "alerts",
        ),
    )


FAILING_404 = Health(
    "api", consecutive_failures=5, failing_since=stamp(0), last_error="HTTP 404",
    last_seen_at=stamp(20),
)  # fmt: skip
HEALTHY = Health("api", last_success_at=stamp(20), last_seen_at=stamp(20))
ERRORS = Alert("fp1", "HighErrorRate", "page", "5xx 40%", stamp(5), "alert-1")


def world(health: Health | None = None, *alerts: Alert, seconds: float = 30) -> World:
    return World(
        now=at(seconds),
        health={"api": health} if health else {},
        signals={"api": Signals("api", alerts=alerts)},
    )


def resolved_event(firing: str = "alert-1") -> ev.Event:
    return event(
        ev.ALERT_RESOLVED,
        25,
        service="api",
        alertname="HighErrorRate",
        fingerprint="fp1",
        firing_event_id=firing,
    )


def only_event(command: Append | None) -> ev.Event:
    assert command is not None
    (found,) = command.events
    return found


# -- what still shows ----------------------------------------------------------------------


def test_a_failing_probe_and_a_firing_alert_are_outstanding() -> None:
    incident = opened(evidence=("p1", "alert-1"))
    left = outstanding(incident, world(FAILING_404, ERRORS))
    assert left == (
        f"alert HighErrorRate firing since {stamp(5)}",
        "api failed its last 5 probes (HTTP 404)",
    )
    assert outstanding(incident, world(HEALTHY)) == ()


def test_a_kind_only_its_detector_judges_never_clears_by_probe_or_alert() -> None:
    incident = opened(kind="backlog_growth")
    assert outstanding(incident, world(HEALTHY)) == ("the backlog_growth alerts detected",)


# -- a resolved alert ---------------------------------------------------------------------


def test_the_issue_case_a_resolved_alert_leaves_a_failing_probe_incident_open() -> None:
    # HighErrorRate fired and joined the probe's incident; it resolves while the probe 404s.
    incident = opened(evidence=("p1", "alert-1"))
    said = only_event(on_alert_resolved(resolved_event(), [incident], world(FAILING_404), at(25)))
    assert said.type == ev.INCIDENT_ANNOTATED
    assert "still showing: api failed its last 5 probes (HTTP 404)" in said.data["note"]
    assert apply(incident, said).state is State.OPEN


def test_a_resolved_alert_closes_an_untouched_incident_once_everything_cleared() -> None:
    incident = opened(kind="alert", evidence=("alert-1",))
    said = only_event(on_alert_resolved(resolved_event(), [incident], world(HEALTHY), at(25)))
    assert said.type == ev.INCIDENT_RESOLVED
    assert "all of its evidence has cleared, no action was needed" in said.data["reason"]


def test_a_resolved_alert_leaves_open_an_incident_with_another_alert_firing() -> None:
    other = Alert("fp2", "LatencyHigh", "page", "", stamp(6), "alert-2")
    incident = opened(kind="alert", evidence=("alert-1", "alert-2"))
    said = only_event(on_alert_resolved(resolved_event(), [incident], world(None, other), at(25)))
    assert said.type == ev.INCIDENT_ANNOTATED
    assert "alert LatencyHigh firing" in said.data["note"]


def test_a_resolved_alert_prefers_the_incident_holding_it_and_ignores_others() -> None:
    holder = opened(kind="alert", service="web", evidence=("alert-1",))
    unrelated = opened(service="api", evidence=("p1",))
    command = on_alert_resolved(resolved_event(), [unrelated, holder], world(FAILING_404), at(25))
    assert command is not None
    assert command.stream == f"incident-{holder.id}"
    assert only_event(command).type == ev.INCIDENT_RESOLVED
    assert on_alert_resolved(resolved_event("gone"), [], world(), at(25)) is None


# -- joining -------------------------------------------------------------------------------


def sighting(kind: str = "alert", first: float = 5, *evidence: str) -> Sighting:
    return Sighting("api", kind, stamp(first), evidence or ("alert-1",), "api: alert firing")


def test_an_alert_on_a_service_with_an_open_incident_joins_it_as_evidence() -> None:
    incident = opened()
    joining = where_it_goes(sighting(), [incident], REPAGE_S, at(30))
    assert joining is not None
    (added,) = joining.events
    assert added.type == ev.EVIDENCE_ADDED
    after = apply(incident, added)
    assert after.evidence_ids == ("p1", "alert-1")
    assert after.state is State.OPEN
    # Seen again: nothing new to add.
    again = where_it_goes(sighting(), [after], REPAGE_S, at(31))
    assert again is not None
    assert again.events == ()


def test_a_detectors_fault_is_not_absorbed_by_an_alert_only_incident() -> None:
    alert_only = opened(kind="alert", evidence=("alert-1",))
    assert where_it_goes(sighting("service_down", 8, "p9"), [alert_only], REPAGE_S, at(30)) is None


def escalated(incident: Incident, seconds: float) -> Incident:
    return apply(incident, event(ev.INCIDENT_ESCALATED, seconds, reason="needs a human"))


def test_an_escalated_incident_holds_its_fault_and_re_pages_on_the_cadence() -> None:
    incident = escalated(opened(), 60)
    assert incident.pages == (stamp(60),)
    # A minute later the same streak of failures (restart storm capped): no page.
    same = sighting("service_down", 0, "p7")
    joining = where_it_goes(same, [incident], REPAGE_S, at(120))
    assert joining is not None
    assert joining.events == ()
    # An alert on the service joins it as evidence.
    joining = where_it_goes(sighting(), [incident], REPAGE_S, at(130))
    assert joining is not None
    assert [e.type for e in joining.events] == [ev.EVIDENCE_ADDED]
    # The same fault still there after the cadence: one re-page.
    joining = where_it_goes(same, [incident], REPAGE_S, at(60 + REPAGE_S))
    assert joining is not None
    (repage,) = joining.events
    assert repage.type == ev.INCIDENT_REPAGED
    after = apply(incident, repage)
    assert after.pages == (stamp(60), stamp(60 + REPAGE_S))
    assert after.state is State.ESCALATED


def test_a_fault_that_cleared_and_came_back_is_a_new_incident_paged_once() -> None:
    first = escalated(opened(), 60)
    came_back = sighting("service_down", 100, "p9")
    assert where_it_goes(came_back, [first], REPAGE_S, at(110)) is None
    second = opened(service="api", evidence=("p9",))
    page = event(ev.INCIDENT_ESCALATED, 120, reason="restart-storm: stop and call a human")
    incidents = {"first": first, "second": replace(second, id="second")}
    quiet = page_once(page, incidents["second"], incidents, REPAGE_S, at(120))
    assert quiet.data["notify"] is False
    assert quiet.data["paged_with"] == first.id
    assert apply(incidents["second"], quiet).pages == ()
    # After the cadence, or for another kind, it pages.
    assert page_once(page, incidents["second"], incidents, REPAGE_S, at(60 + REPAGE_S)) is page
    other = replace(incidents["second"], kind="failing_dependency")
    assert page_once(page, other, incidents, REPAGE_S, at(120)) is page


def test_a_closing_nobody_is_paged_for_holds_nothing() -> None:
    quiet = apply(opened(), event(ev.INCIDENT_ESCALATED, 60, reason="rejected", notify=False))
    assert quiet.pages == ()
    assert where_it_goes(sighting("service_down", 70, "p2"), [quiet], REPAGE_S, at(80)) is None


def test_a_resolved_incident_takes_no_evidence_and_only_escalations_re_page() -> None:
    resolved = apply(opened(kind="alert"), event(ev.INCIDENT_RESOLVED, 20, reason="gone"))
    with pytest.raises(InvalidTransition, match="only an open or escalated incident"):
        apply(resolved, event(ev.EVIDENCE_ADDED, 30, evidence=["x"]))
    with pytest.raises(InvalidTransition, match="only an escalation re-pages"):
        apply(opened(), event(ev.INCIDENT_REPAGED, 30, evidence=[]))
