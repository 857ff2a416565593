"""When an incident's timers fall due: the moment time alone changes the lifecycle's answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tests.builders import SETTINGS, at, view
from tests.unit.test_lifecycle import Story, awaiting, compensating, verifying
from tests.unit.test_merging import OPEN_CIRCUIT, planned, then
from warden.domain import events as ev
from warden.domain import lifecycle as lc
from warden.domain import verification
from warden.domain.control import Controls
from warden.domain.health import Health
from warden.domain.incident import Incident, apply
from warden.domain.merging import leaders
from warden.domain.world import World

SECOND = timedelta(seconds=1)


def due_of(*incidents: Incident) -> datetime | None:
    return lc.next_due(incidents, SETTINGS, {i.id: i for i in incidents})


def test_an_incident_waiting_on_input_only_has_nothing_due() -> None:
    assert due_of(Story().incident) is None  # planned: decided on the next round
    assert due_of(Story().decided().incident) is None
    closed = Story().then(ev.INCIDENT_ESCALATED, reason="r").incident
    assert due_of(closed) is None
    assert lc.next_due([], SETTINGS) is None


def test_a_warning_alert_is_due_when_it_has_lasted_long_enough() -> None:
    def opened(severity: str) -> Incident:
        data = {"incident_id": severity, "service": "log-shipper", "kind": "alert",
                "severity": severity, "first_signal_at": ev.format_time(at(0))}  # fmt: skip
        return apply(
            None, ev.Event(severity, "t", ev.INCIDENT_OPENED, data["first_signal_at"], data)
        )

    minor = opened("minor")
    due = due_of(minor)
    assert due == at(0) + timedelta(seconds=SETTINGS.minor_alert_wait_s)
    assert lc.next_commands(minor, view(), SETTINGS, due - SECOND) == []
    assert lc.next_commands(minor, view(), SETTINGS, due) == [lc.Plan("minor")]
    assert due_of(opened("critical")) is None  # planned at once, no timer


def test_a_retry_is_due_at_its_due_time() -> None:
    story = Story().decided().ran(ok=False)
    (retry,) = lc.next_commands(story.incident, view(), SETTINGS, at(10))[0].events  # type: ignore[union-attr]
    story.then(ev.STEP_RETRY_SCHEDULED, **retry.data)
    due = due_of(story.incident)
    assert due == ev.parse_time(retry.data["due_at"])
    assert lc.next_commands(story.incident, view(), SETTINGS, due - SECOND / 10) == []
    assert isinstance(lc.next_commands(story.incident, view(), SETTINGS, due)[1], lc.RunStep)


def test_an_approval_request_is_due_when_it_expires() -> None:
    story = awaiting()
    due = due_of(story.incident)
    assert due == at(60)
    assert lc.next_commands(story.incident, view(), SETTINGS, due - SECOND) == []
    late = lc.next_commands(story.incident, view(counted={"inc1": ()}), SETTINGS, due + SECOND)
    assert late  # expired: escalated


def test_a_verification_is_due_at_its_quiet_period_and_its_deadline() -> None:
    story = verifying()
    started = ev.parse_time(story.incident.verification_started_at)
    # A batch check passes only after its quiet period: the first moment to look again.
    assert due_of(story.incident) == started + timedelta(seconds=verification.QUIET_PERIOD_S)
    # A deadline shorter than any quiet period is the first timer.
    short = replace(SETTINGS, verification_timeout_s=2.0)
    timeout = started + timedelta(seconds=2.0)
    assert lc.next_due([story.incident], short) == timeout
    waiting = lc.next_commands(story.incident, view(), short, timeout)
    assert not [c for c in waiting if isinstance(c, lc.Append)]  # not yet: strictly after
    failed = lc.next_commands(story.incident, view(), short, timeout + SECOND)
    assert [c for c in failed if isinstance(c, lc.Append)]


def test_a_held_compensation_is_due_when_it_was_held_too_long() -> None:
    story = compensating()
    engaged = Controls(kill_switch=True, set_by="alice", reason="drill")
    assert due_of(story.incident) is None  # runs its compensation on the next round
    held = lc.next_commands(story.incident, view(controls=engaged), SETTINGS, at(30))
    story.then(ev.COMPENSATION_HELD, **held[0].events[0].data)  # type: ignore[union-attr]
    since = ev.parse_time(story.incident.compensation_held_at)
    due = due_of(story.incident)
    assert due == since + timedelta(seconds=SETTINGS.compensation_hold_s)
    assert lc.next_commands(story.incident, view(controls=engaged), SETTINGS, due) == []
    late = lc.next_commands(story.incident, view(controls=engaged), SETTINGS, due + SECOND)
    assert late  # escalated


def test_a_follower_of_a_resolved_leader_is_due_when_its_own_service_had_long_enough() -> None:
    leader = then(planned("cart", "cart", 1), ev.INCIDENT_RESOLVED, 50, reason="verified")
    follower = then(planned("profile", "profile", 2, OPEN_CIRCUIT), ev.PLAN_MERGED, 3, into="cart")
    incidents = {"cart": leader, "profile": follower}
    due = lc.next_due([follower], SETTINGS, incidents)
    assert due == at(50) + timedelta(seconds=SETTINGS.verification_timeout_s)
    assert lc.next_due([follower], SETTINGS) is None  # the leader unknown: nothing to wait for
    failing = World(now=at(60), health={"profile": Health("profile", consecutive_failures=2)})
    alone = view(world=failing, leaders=leaders(incidents.values()), incidents=incidents)
    assert lc.next_commands(follower, alone, SETTINGS, due) == [lc.Probe("profile")]
    late = lc.next_commands(follower, alone, SETTINGS, due + SECOND)
    assert [c for c in late if isinstance(c, lc.Append)]


def test_the_first_timer_of_several_incidents_is_due() -> None:
    approval = awaiting().incident
    checks = verifying().incident
    assert due_of(approval, checks) == min(due_of(approval), due_of(checks))  # type: ignore[type-var]
