"""When an incident's timers fall due: the moment time alone changes the lifecycle's answer."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.builders import SETTINGS, at, view
from tests.lifecycle_stories import (
    OPEN_CIRCUIT,
    Story,
    awaiting,
    compensating,
    planned,
    then,
    verifying,
)
from warden.domain import events as ev
from warden.domain import lifecycle as lc
from warden.domain import verification
from warden.domain.catalog import Catalog
from warden.domain.control import Controls
from warden.domain.health import Health
from warden.domain.incident import Incident, apply
from warden.domain.merging import leaders
from warden.domain.plans import Plan, Step
from warden.domain.world import World

SECOND = timedelta(seconds=1)


BEFORE = at(-3600)  # long before any timer


def due_of(*incidents: Incident, now: datetime = BEFORE) -> datetime | None:
    return lc.next_due(incidents, SETTINGS, now, {i.id: i for i in incidents}, Catalog())


def test_an_incident_waiting_on_input_only_has_nothing_due() -> None:
    assert due_of(Story().incident) is None  # planned: decided on the next round
    assert due_of(Story().decided().incident) is None
    closed = Story().then(ev.INCIDENT_ESCALATED, reason="r").incident
    assert due_of(closed) is None
    assert lc.next_due([], SETTINGS, BEFORE) is None


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
    assert due_of(minor, now=due) is None
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
    assert due_of(story.incident, now=due) is None


def test_an_approval_request_is_due_when_it_expires() -> None:
    story = awaiting()
    due = due_of(story.incident)
    assert due == at(60)
    assert lc.next_commands(story.incident, view(), SETTINGS, due - SECOND) == []
    assert lc.next_commands(story.incident, view(counted={"inc1": ()}), SETTINGS, due)
    assert due_of(story.incident, now=due) is None  # expired: nothing left to wait for


def test_a_verification_is_due_when_its_deadline_has_passed() -> None:
    story = verifying()  # open_circuit and start_service: verified by their probes
    started = ev.parse_time(story.incident.verification_started_at)
    timeout = started + timedelta(seconds=SETTINGS.verification_timeout_s)
    due = due_of(story.incident)
    assert due == timeout + lc.JUST_AFTER  # passed only strictly after it
    waiting = lc.next_commands(story.incident, view(), SETTINGS, timeout)
    assert not [c for c in waiting if isinstance(c, lc.Append)]
    failed = lc.next_commands(story.incident, view(), SETTINGS, due)
    assert [c for c in failed if isinstance(c, lc.Append)]
    assert due_of(story.incident, now=due) is None


def test_a_quiet_period_of_a_check_is_due_only_when_the_plan_has_that_check() -> None:
    quarantine = Plan(
        "pipeline", (Step("quarantine_batch", "etl", {"pipeline": "etl", "batch": "b7"}),),
        "a corrupt batch", ("e1",), 0.9,
    )  # fmt: skip
    story = Story(quarantine).decided().ran().then(ev.VERIFICATION_STARTED)
    started = ev.parse_time(story.incident.verification_started_at)
    quiet = started + timedelta(seconds=verification.QUIET_PERIOD_S)
    assert due_of(story.incident) == quiet  # the batch check passes from then on
    # Past the quiet period, the deadline is next; without a catalog, every check's period.
    assert due_of(story.incident, now=quiet) == started + timedelta(
        seconds=SETTINGS.verification_timeout_s, microseconds=1
    )
    probed = verifying().incident
    assert lc.next_due([probed], SETTINGS, BEFORE) == ev.parse_time(
        probed.verification_started_at
    ) + timedelta(seconds=verification.QUIET_PERIOD_S)


def test_a_held_compensation_is_due_when_it_was_held_too_long() -> None:
    story = compensating()
    engaged = Controls(kill_switch=True, set_by="alice", reason="drill")
    assert due_of(story.incident) is None  # runs its compensation on the next round
    held = lc.next_commands(story.incident, view(controls=engaged), SETTINGS, at(30))
    story.then(ev.COMPENSATION_HELD, **held[0].events[0].data)  # type: ignore[union-attr]
    since = ev.parse_time(story.incident.compensation_held_at)
    due = due_of(story.incident)
    assert due == since + timedelta(seconds=SETTINGS.compensation_hold_s) + lc.JUST_AFTER
    hold_ends = due - lc.JUST_AFTER
    assert lc.next_commands(story.incident, view(controls=engaged), SETTINGS, hold_ends) == []
    assert lc.next_commands(story.incident, view(controls=engaged), SETTINGS, due)  # escalated


def test_a_follower_of_a_resolved_leader_is_due_when_its_own_service_had_long_enough() -> None:
    leader = then(planned("cart", "cart", 1), ev.INCIDENT_RESOLVED, 50, reason="verified")
    follower = then(planned("profile", "profile", 2, OPEN_CIRCUIT), ev.PLAN_MERGED, 3, into="cart")
    incidents = {"cart": leader, "profile": follower}
    due = lc.next_due([follower], SETTINGS, at(60), incidents)
    assert due == at(50) + timedelta(seconds=SETTINGS.verification_timeout_s) + lc.JUST_AFTER
    # The leader unknown: nothing to wait for.
    assert lc.next_due([follower], SETTINGS, at(60)) is None
    failing = World(now=at(60), health={"profile": Health("profile", consecutive_failures=2)})
    alone = view(world=failing, leaders=leaders(incidents.values()), incidents=incidents)
    ends = due - lc.JUST_AFTER
    assert lc.next_commands(follower, alone, SETTINGS, ends) == [lc.Probe("profile")]
    late = lc.next_commands(follower, alone, SETTINGS, due)
    assert [c for c in late if isinstance(c, lc.Append)]


def test_the_first_timer_of_several_incidents_is_due() -> None:
    approval = awaiting().incident
    checks = verifying().incident
    assert due_of(approval, checks) == min(due_of(approval), due_of(checks))  # type: ignore[type-var]
