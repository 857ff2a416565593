"""The pure lifecycle, rule by rule: incidents in, commands out; no store, thread or clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.builders import LIFECYCLE_START as T0
from tests.builders import SETTINGS, at, view
from tests.lifecycle_stories import Story, awaiting, compensating, verifying
from warden.domain import events as ev
from warden.domain import lifecycle as lc
from warden.domain.control import Controls
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.health import Health
from warden.domain.ids import derived_id
from warden.domain.incident import Incident, State
from warden.domain.plans import Plan, Step
from warden.domain.world import World


def commands(story: Story, now: datetime, **overrides: Any) -> list[lc.Command]:
    return lc.next_commands(story.incident, view(**overrides), SETTINGS, now)


def appended(found: list[lc.Command]) -> list[str]:
    return [e.type for c in found if isinstance(c, lc.Append) for e in c.events]


def reason_of(found: list[lc.Command]) -> str:
    return next(
        str(e.data["reason"])
        for c in found
        if isinstance(c, lc.Append)
        for e in c.events
        if "reason" in e.data
    )


# -- planning and deciding ---------------------------------------------------------------


def test_an_open_incident_asks_the_agents() -> None:
    story = Story(plan=None)
    assert commands(story, at(5)) == [lc.Plan("inc1")]


def test_a_service_back_before_any_plan_is_resolved_without_acting() -> None:
    story = Story(plan=None)
    healthy = World(now=at(5), health={"payments": Health("payments")})
    found = commands(story, at(5), world=healthy)
    assert appended(found) == [ev.INCIDENT_RESOLVED]
    assert reason_of(found) == "recovered before any action was taken"


def test_a_planned_step_is_decided_once_then_run_with_its_idempotency_key() -> None:
    story = Story()
    assert commands(story, at(5)) == [lc.Decide("inc1", 0)]
    story.decided()
    key = derived_id("idempotency", "inc1", story.incident.step_hashes[0])
    assert commands(story, at(6)) == [
        lc.HoldLeases("inc1", ("orders", "payments")),
        lc.RunStep("inc1", 0, 1, key),
    ]


def test_a_denied_first_step_escalates_and_a_denied_later_step_compensates() -> None:
    first = Story().decided(Outcome.DENY)
    found = commands(first, at(5))
    assert appended(found) == [ev.INCIDENT_ESCALATED]
    assert reason_of(found).startswith("denied: ")
    later = Story().decided().ran().decided(Outcome.DENY)
    assert appended(commands(later, at(9))) == [ev.COMPENSATION_STARTED]


def test_a_decision_is_recorded_with_an_approval_request_when_needed() -> None:
    story = Story()
    decision = Decision(Outcome.NEEDS_APPROVAL, story.incident.step_hashes[0], (), 1)
    events = lc.decision_events(story.incident, decision, None, SETTINGS, at(5))
    assert [e.type for e in events] == [ev.DECISION_RECORDED, ev.APPROVAL_REQUESTED]
    assert events[1].data["expires_at"] == ev.format_time(at(65))


# -- retries -----------------------------------------------------------------------------


def test_a_retryable_failure_is_retried_after_its_backoff() -> None:
    story = Story().decided().ran(ok=False)
    found = commands(story, at(10))
    assert appended(found) == [ev.STEP_RETRY_SCHEDULED]
    (retry,) = found[0].events  # type: ignore[union-attr]
    delay = lc.backoff_s("inc1", 0, 1)
    assert retry.data["due_at"] == ev.format_time(at(10 + delay))
    story.then(ev.STEP_RETRY_SCHEDULED, **retry.data)
    assert commands(story, at(10 + delay / 2)) == []  # waits out the backoff
    assert [type(c) for c in commands(story, at(10 + delay))] == [lc.HoldLeases, lc.RunStep]
    run = commands(story, at(10 + delay))[1]
    assert isinstance(run, lc.RunStep) and run.attempt == 2


def test_backoff_grows_and_is_capped() -> None:
    delays = [lc.backoff_s("inc1", 0, attempt) for attempt in range(1, 12)]
    assert all(0.5 * min(60, 2 ** (a - 1)) <= d < 1.5 * 60 for a, d in enumerate(delays, 1))
    assert delays[-1] < 90 and delays[0] < 1.5


def test_a_step_gives_up_after_its_attempts_or_when_not_retryable() -> None:
    story = Story().decided()
    for attempt in range(1, 4):
        story.ran(ok=False)
        if attempt < 3:
            due = ev.format_time(at(story.n))
            story.then(ev.STEP_RETRY_SCHEDULED, index=0, attempt=attempt + 1, due_at=due)
    found = commands(story, at(60))
    assert appended(found) == [ev.INCIDENT_ESCALATED]
    assert reason_of(found).startswith("step 0 failed (3 of 3 attempts used). health: ")
    permanent = Story().decided().ran(ok=False, retryable=False)
    reason = reason_of(commands(permanent, at(9)))
    assert reason.startswith("step 0 failed (not retryable). ")
    # The page says what was tried, with its outcome, and what to do next.
    assert "tried: open_circuit on orders: failed after 1 attempt" in reason
    assert "next step: " in reason


def test_a_retry_whose_allow_was_replaced_by_a_deny_is_not_run() -> None:
    story = Story().decided().ran(ok=False)
    story.then(ev.STEP_RETRY_SCHEDULED, index=0, attempt=2, due_at=ev.format_time(at(3)))
    story.decided(Outcome.DENY)
    assert appended(commands(story, at(30))) == [ev.INCIDENT_ESCALATED]


# -- approvals ---------------------------------------------------------------------------


def test_an_approved_step_is_decided_again_with_its_approvals() -> None:
    story = awaiting()
    assert commands(story, at(10)) == []
    assert commands(story, at(10), approved=frozenset({"inc1"})) == [
        lc.Decide("inc1", 0, approved=True)
    ]


def test_an_expired_approval_escalates_or_does_nothing_as_configured() -> None:
    story = awaiting()
    found = commands(story, at(61), counted={"inc1": ()})
    assert appended(found) == [ev.APPROVAL_EXPIRED, ev.INCIDENT_ESCALATED]
    closing = found[0].events[1]  # type: ignore[union-attr]
    assert closing.data["notify"] is True
    assert "with 0 of 1 approvals. health: " in closing.data["reason"]
    assert "tried: open_circuit on orders: waited for approval" in closing.data["reason"]
    quiet = lc.LifecycleSettings(approval_fallback="do_nothing")
    found = lc.next_commands(story.incident, view(), quiet, at(61))
    assert reason_of(found).endswith("; fallback do_nothing: no action taken")


# -- compensation ------------------------------------------------------------------------


def test_compensations_run_last_step_first() -> None:
    story = compensating()
    hashes = story.incident.step_hashes
    found = commands(story, at(30))
    assert found[1] == lc.RunCompensation("inc1", 1, derived_id("compensation", "inc1", hashes[1]))
    story.then(ev.COMPENSATION_INTENDED, index=1).then(ev.COMPENSATION_SUCCEEDED, index=1)
    assert commands(story, at(31))[1] == lc.RunCompensation(
        "inc1", 0, derived_id("compensation", "inc1", hashes[0])
    )
    story.then(ev.COMPENSATION_INTENDED, index=0).then(ev.COMPENSATION_SUCCEEDED, index=0)
    found = commands(story, at(32))
    assert appended(found) == [ev.INCIDENT_ROLLED_BACK]
    assert reason_of(found) == "steps 1, 0 undone; a human follows up"


def test_a_failed_compensation_escalates() -> None:
    story = compensating().then(ev.COMPENSATION_INTENDED, index=1)
    story.then(ev.COMPENSATION_FAILED, index=1)
    assert reason_of(commands(story, at(30))) == "compensation of step 1 failed"


def test_the_kill_switch_holds_a_compensation_until_released_or_too_long() -> None:
    story = compensating()
    engaged = Controls(kill_switch=True, set_by="alice", reason="drill")
    found = commands(story, at(30), controls=engaged)
    assert appended(found) == [ev.COMPENSATION_HELD]
    held = found[0].events[0]  # type: ignore[union-attr]
    assert held.data["reason"] == "kill switch engaged by alice: drill"
    assert not [c for c in found if isinstance(c, lc.RunCompensation)]
    story.then(ev.COMPENSATION_HELD, **held.data)
    assert commands(story, at(60), controls=engaged) == []  # waits, visibly held
    # Released: it resumes.
    assert isinstance(commands(story, at(61))[1], lc.RunCompensation)
    # Held beyond compensation_hold_s: a human takes over.
    late = commands(story, at(story.n + SETTINGS.compensation_hold_s + 1), controls=engaged)
    assert appended(late) == [ev.INCIDENT_ESCALATED]
    assert "held for 120 s" in reason_of(late)


def test_a_domain_kill_switch_holds_only_compensations_in_its_domain() -> None:
    story = compensating()  # step 1 acts on payments (domain payments)
    shop_halted = Controls(killed_domains=(("shop", "shop drill"),))
    assert isinstance(commands(story, at(30), controls=shop_halted)[1], lc.RunCompensation)
    payments_halted = Controls(killed_domains=(("payments", "drill"),))
    assert appended(commands(story, at(30), controls=payments_halted)) == [ev.COMPENSATION_HELD]


def test_steps_that_cannot_be_undone_are_named_when_escalating() -> None:
    story = Story(
        Plan(agent="a", steps=(Step("restart_service", "payments"),), rationale="r",
             evidence=(), confidence=0.9)
    ).decided().ran()  # fmt: skip
    found = lc.fail_plan(story.incident, view(), "not verified", at(9))
    assert reason_of(found).startswith(
        "not verified; left as is: step 0 (restart_service) has no compensation. "
    )
    unrunnable = lc.fail_plan(
        Story().decided().ran().incident, view(runnable=frozenset()), "x", at(9)
    )
    assert "no adapter runs close_circuit" in reason_of(unrunnable)


def test_a_denied_replay_leaves_the_corrupt_batch_quarantined() -> None:
    # The batch was quarantined because it failed: undoing the quarantine when the replay
    # is denied would feed the corrupt data to the pipeline again.
    batch = (("batch", "b-7"), ("pipeline", "ingest"))
    plan = Plan(
        agent="pipeline-corruption",
        steps=(
            Step("quarantine_batch", "payments", batch),
            Step(
                "replay_from_checkpoint",
                "payments",
                (("checkpoint", "c-6"), ("pipeline", "ingest")),
            ),
        ),
        rationale="batch b-7 failed",
        evidence=("e1",),
        confidence=0.9,
    )
    story = Story(plan).decided().ran().decided(Outcome.DENY)
    found = commands(story, at(9))
    assert appended(found) == [ev.INCIDENT_ESCALATED]
    assert "left as is: step 0 (quarantine_batch)" in reason_of(found)
    assert not [c for c in found if isinstance(c, lc.RunCompensation)]


# -- verification ------------------------------------------------------------------------


def test_verification_probes_while_waiting_and_fails_after_its_deadline() -> None:
    story = verifying()
    started = ev.parse_time(story.incident.verification_started_at)
    waiting = commands(story, started + timedelta(seconds=5))
    assert waiting == [
        lc.HoldLeases("inc1", ("orders", "payments"), renew_only=True),
        lc.Probe("payments"),
    ]
    late = commands(story, started + timedelta(seconds=16))
    assert appended(late) == [ev.VERIFICATION_FAILED, ev.COMPENSATION_STARTED]
    first, second = (c for c in late if isinstance(c, lc.Append))
    assert second.expected_version == first.expected_version + 1  # type: ignore[operator]


def test_verification_passes_on_a_fresh_success_and_resolves() -> None:
    story = verifying()
    started = story.incident.verification_started_at
    fresh = ev.format_time(ev.parse_time(started) + timedelta(seconds=1))
    world = World(
        now=at(20),
        health={"payments": Health("payments", last_success_at=fresh, last_seen_at=fresh)},
    )
    found = commands(story, at(20), world=world)
    assert appended(found) == [ev.VERIFICATION_PASSED, ev.INCIDENT_RESOLVED]


def test_verification_starts_when_every_step_succeeded() -> None:
    story = Story().both_steps_done()
    assert appended(commands(story, at(20))) == [ev.VERIFICATION_STARTED]


# -- in flight, leases -------------------------------------------------------------------


def test_an_intent_without_result_is_left_to_its_worker_or_recovered() -> None:
    story = Story().decided()
    story.then(ev.STEP_INTENDED, index=0, attempt=1, step_hash=story.incident.step_hashes[0])
    assert commands(story, at(9), running=frozenset({"inc1"})) == [
        lc.HoldLeases("inc1", ("orders", "payments"), renew_only=True)
    ]
    assert commands(story, at(9)) == [lc.Recover("inc1")]


def test_leases_are_released_when_the_incident_closes() -> None:
    story = Story().decided()
    assert lc.closing_commands(story.incident) == []
    story.then(ev.INCIDENT_ESCALATED, reason="r")
    assert story.incident.state is State.ESCALATED
    assert lc.closing_commands(story.incident) == [lc.ReleaseLeases("inc1", ("orders", "payments"))]
    assert commands(story, at(20)) == []


# -- decided again after a control is lifted -------------------------------------------------


def denied_by(policy_id: str) -> Incident:
    story = Story(Plan("service-down", (Step("restart_service", "payments"),), "down", ("e",), 0.9))
    hash_ = story.incident.step_hashes[0]
    decision = Decision(Outcome.DENY, hash_, (Reason(policy_id, "held"),))
    story.then(ev.DECISION_RECORDED, decision=decision.to_dict())
    story.then(ev.INCIDENT_ESCALATED, reason=f"denied: {policy_id}")
    return story.incident


def controls_changed(seconds: float, **fields: Any) -> Controls:
    return Controls(changed_at=ev.format_time(at(seconds)), **fields)


def test_an_incident_denied_by_the_kill_switch_is_decided_again_once_it_is_released() -> None:
    incident = denied_by("guardrail:kill-switch")
    assert lc.denied_by_control(incident) == "guardrail:kill-switch"
    closed = ev.parse_time(incident.closed_at)
    later = (closed - T0).total_seconds() + 30
    # Released after the escalation: decided again, under the time of the release.
    released = view(controls=controls_changed(later))
    assert lc.decided_again(incident, released) == ev.format_time(at(later))
    # Still engaged (for everything, or for the target's domain): not yet.
    engaged = controls_changed(later, kill_switch=True, reason="drill")
    assert lc.decided_again(incident, view(controls=engaged)) == ""
    domain = controls_changed(later, killed_domains=(("payments", "db work"),))
    assert lc.decided_again(incident, view(controls=domain)) == ""
    other = controls_changed(later, killed_domains=(("shop", "other"),))
    assert lc.decided_again(incident, view(controls=other)) != ""
    # A change before the escalation is what it was escalated under: nothing new.
    assert lc.decided_again(incident, view(controls=controls_changed(0))) == ""
    assert lc.decided_again(incident, view()) == ""


def test_an_incident_denied_by_its_autonomy_level_is_decided_again_when_it_rises() -> None:
    from warden.domain.control import AutonomyRule

    incident = denied_by("autonomy:recommend")
    later = (ev.parse_time(incident.closed_at) - T0).total_seconds() + 30

    def level(name: str, domain: str = "*") -> lc.View:
        rules = (AutonomyRule("*", domain, name),)
        return view(
            controls=controls_changed(later, autonomy=rules),
            environment="staging",
            default_autonomy="recommend",
        )

    assert lc.decided_again(incident, level("autonomous")) != ""
    assert lc.decided_again(incident, level("supervised")) != ""
    assert lc.decided_again(incident, level("observe")) == ""
    assert lc.decided_again(incident, level("autonomous", domain="shop")) == ""  # not its domain


@pytest.mark.parametrize(
    "policy_id",
    ["guardrail:confidence-floor", "restart-storm", "guardrail:rate-limit", "change-freeze"],
)
def test_other_denials_are_not_decided_again_by_a_control_change(policy_id: str) -> None:
    incident = denied_by(policy_id)
    assert lc.denied_by_control(incident) == ""
    later = (ev.parse_time(incident.closed_at) - T0).total_seconds() + 30
    assert lc.decided_again(incident, view(controls=controls_changed(later))) == ""


def test_an_incident_that_closed_another_way_is_not_decided_again() -> None:
    story = Story().decided().ran()
    story.then(ev.INCIDENT_ESCALATED, reason="step 1 failed")
    assert lc.denied_by_control(story.incident) == ""
    open_one = Story().decided(Outcome.DENY).incident  # denied, not yet escalated
    assert lc.denied_by_control(open_one) == ""
