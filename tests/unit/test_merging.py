"""One proposal per action and target (pure core): plans of several incidents merge."""

from __future__ import annotations

from tests.builders import SETTINGS, at, view
from tests.lifecycle_stories import planned, then
from warden.domain import events as ev
from warden.domain import lifecycle as lc
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.health import Health
from warden.domain.incident import Incident, State, apply
from warden.domain.merging import leaders
from warden.domain.plans import Plan, Step
from warden.domain.world import World

RESTART = Plan("service-down", (Step("restart_service", "cart"),), "cart is down", ("p1",), 0.9)


def decided(incident: Incident, outcome: Outcome = Outcome.NEEDS_APPROVAL) -> Incident:
    decision = Decision(outcome, incident.step_hashes[0], (Reason("p", "m"),), 1)
    return then(incident, ev.DECISION_RECORDED, 30, decision=decision.to_dict())


def run(incident: Incident, found: list[lc.Command]) -> Incident:
    for command in found:
        assert isinstance(command, lc.Append), found
        for event in command.events:
            incident = apply(incident, event)
    return incident


def types(found: list[lc.Command]) -> list[str]:
    return [e.type for c in found if isinstance(c, lc.Append) for e in c.events]


def test_the_first_decided_or_opened_incident_leads_each_action_and_target() -> None:
    cart = planned("cart", "cart", 10)
    profile = planned("profile", "profile", 5)
    other = planned("web", "web", 1, RESTART)
    assert leaders([cart, profile, other]) == {
        ("open_circuit", "redis"): "profile",
        ("restart_service", "cart"): "web",
    }
    # A decision made already leads, whenever it was opened.
    assert leaders([decided(cart), profile])[("open_circuit", "redis")] == "cart"


def test_three_incidents_with_one_open_circuit_give_one_decision() -> None:
    first, second, third = (planned(n, n, s) for n, s in (("cart", 1), ("profile", 2), ("web", 3)))
    incidents = {i.id: i for i in (first, second, third)}
    now = at(40)
    shared = view(leaders=leaders(incidents.values()), incidents=incidents)
    assert lc.next_commands(first, shared, SETTINGS, now) == [lc.Decide("cart", 0)]
    for follower in (second, third):
        found = lc.next_commands(follower, shared, SETTINGS, now)
        assert types(found) == [ev.PLAN_MERGED]
        merged = run(follower, found)
        assert merged.merged_into == "cart"
        assert merged.state is State.PLANNED
        # Merged, it waits: no decision and no approval request of its own.
        assert lc.next_commands(merged, shared, SETTINGS, now) == []


def test_a_follower_resolves_with_its_leader_once_its_own_evidence_cleared() -> None:
    leader = then(planned("cart", "cart", 1), ev.INCIDENT_RESOLVED, 50, reason="verified")
    follower = then(planned("profile", "profile", 2), ev.PLAN_MERGED, 3, into="cart")
    incidents = {"cart": leader, "profile": follower}
    healthy = World(now=at(60), health={"profile": Health("profile")})
    shared = view(world=healthy, leaders=leaders(incidents.values()), incidents=incidents)
    found = lc.next_commands(follower, shared, SETTINGS, at(60))
    assert types(found) == [ev.INCIDENT_RESOLVED]
    assert "resolved with incident cart" in run(follower, found).close_reason
    # Its own probe still failing: probed while a verification could take, then escalated
    # (the very step ran and did not help it), never decided and approved again.
    failing = World(now=at(60), health={"profile": Health("profile", consecutive_failures=2)})
    alone = view(world=failing, leaders=leaders(incidents.values()), incidents=incidents)
    assert lc.next_commands(follower, alone, SETTINGS, at(60)) == [lc.Probe("profile")]
    late = lc.next_commands(follower, alone, SETTINGS, at(50 + SETTINGS.verification_timeout_s + 1))
    assert types(late) == [ev.INCIDENT_ESCALATED]
    assert (
        "open_circuit on redis ran in incident cart and verified there"
        in run(follower, late).close_reason
    )


def test_a_follower_of_an_escalated_leader_closes_without_a_page_of_its_own() -> None:
    leader = then(planned("cart", "cart", 1), ev.INCIDENT_ESCALATED, 50, reason="denied")
    follower = then(planned("profile", "profile", 2), ev.PLAN_MERGED, 3, into="cart")
    incidents = {"cart": leader, "profile": follower}
    shared = view(leaders=leaders(incidents.values()), incidents=incidents)
    found = lc.next_commands(follower, shared, SETTINGS, at(60))
    closed = run(follower, found)
    assert closed.state is State.ESCALATED
    assert closed.pages == ()
    assert leader.pages == (ev.format_time(at(50)),)


def test_a_warning_alert_alone_waits_before_it_is_planned_and_paged() -> None:
    def opened_alert(severity: str) -> Incident:
        return apply(
            None,
            ev.Event(
                f"o-{severity}", "t", ev.INCIDENT_OPENED, ev.format_time(at(0)),
                {"incident_id": severity, "service": "log-shipper", "kind": "alert",
                 "severity": severity, "first_signal_at": ev.format_time(at(0))},
            ),
        )  # fmt: skip

    minor = opened_alert("minor")
    assert lc.next_commands(minor, view(), SETTINGS, at(60)) == []
    later = at(SETTINGS.minor_alert_wait_s)
    assert lc.next_commands(minor, view(), SETTINGS, later) == [lc.Plan("minor")]
    assert lc.next_commands(opened_alert("critical"), view(), SETTINGS, at(1)) == [
        lc.Plan("critical")
    ]
