"""Pages a human can act on (pure core): alerts, neighbours, changes, what was tried, next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warden.agents.alerts import AlertAgent
from warden.agents.escalation import EscalationAgent
from warden.domain import briefing
from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.health import Health
from warden.domain.incident import Incident, State, apply
from warden.domain.plans import Plan, Step
from warden.domain.signals import Alert, Deploy, Signals
from warden.domain.world import World

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return ev.format_time(T0 + timedelta(seconds=seconds))


ERRORS = Alert("fp1", "HighErrorRate", "page", "cart 5xx 60%", at(10), "a1")
WORLD = World(
    now=T0 + timedelta(seconds=120),
    health={
        "cart": Health("cart", last_success_at=at(0), last_seen_at=at(100)),
        "redis": Health(
            "redis", consecutive_failures=4, failing_since=at(5), last_error="connection refused",
            last_seen_at=at(100),
        ),
        "web": Health("web", last_success_at=at(0), last_seen_at=at(100)),
    },
    depends_on={"cart": ("redis",), "web": ("cart",)},
    signals={
        "cart": Signals(
            "cart", alerts=(ERRORS,),
            deploys=(Deploy(at(-600), "v1", "d1"), Deploy(at(-60), "v2", "d2")),
        ),
        "web": Signals("web", alerts=(Alert("fp2", "HighErrorRate", "page", "", at(12), "a2"),)),
    },
)  # fmt: skip


def alert_incident() -> Incident:
    return Incident(
        id="inc-1",
        service="cart",
        state=State.OPEN,
        opened_at=at(20),
        first_signal_at=at(10),
        summary="cart: alert HighErrorRate firing",
        kind="alert",
        evidence_ids=("a1",),
    )


def test_a_page_while_an_alert_fires_names_it_and_never_says_signals_none() -> None:
    text = EscalationAgent().summarize(alert_incident(), WORLD)
    assert "alerts firing: HighErrorRate since" in text
    assert "(cart 5xx 60%)" in text
    assert "signals: none" not in text
    assert "evidence now: 1 firing alert, 2 deploys" in text


def test_a_page_shows_the_neighbours_the_changes_and_a_next_step() -> None:
    text = EscalationAgent().summarize(alert_incident(), WORLD)
    assert "dependencies: redis failed 4 probes in a row" in text
    assert "callers: web answers its probe" in text
    assert "alerts HighErrorRate firing" in text  # on the caller
    assert f"recent changes: cart deployed v2 (was v1) at {at(-60)}" in text
    assert "tried: nothing yet" in text
    assert "next step: start with redis: cart depends on it and it fails" in text


def test_what_was_tried_and_its_outcome() -> None:
    plan = Plan("service-down", (Step("restart_service", "cart"),), "down", ("p",), 0.9)
    incident = apply(
        None,
        ev.Event("o", "t", ev.INCIDENT_OPENED, at(20),
                 {"incident_id": "i", "service": "cart", "first_signal_at": at(10)}),
    )  # fmt: skip
    incident = apply(
        incident, ev.Event("p", "t", ev.PLAN_PROPOSED, at(21), {"plan": plan.to_dict()})
    )
    denied = Decision(Outcome.DENY, incident.step_hashes[0], (Reason("restart-storm", "cap"),))
    incident = apply(
        incident, ev.Event("d", "t", ev.DECISION_RECORDED, at(22), {"decision": denied.to_dict()})
    )
    assert briefing.tried(incident).startswith("restart_service on cart: denied (deny")
    quiet = World(now=T0, health={"cart": Health("cart")})
    page = briefing.page(incident, quiet, "denied")
    assert page.startswith("denied. health: ")
    assert "next step: decide on restart_service on cart yourself" in page


def test_an_unmapped_alert_is_detected_once_with_its_labels() -> None:
    lost = Alert(
        "fp9", "NodeDown", "critical", "", at(1), "a9",
        labels=(("alertname", "NodeDown"), ("cluster", "eu-1")), unmapped=True,
    )  # fmt: skip
    shared = Alert("fp3", "Quota", "page", "", at(2), "a3", services=("cart", "web"))
    world = World(
        now=T0,
        signals={
            "unmapped/NodeDown/fp9": Signals("unmapped/NodeDown/fp9", alerts=(lost,)),
            "cart": Signals("cart", alerts=(shared,)),
            "web": Signals("web", alerts=(shared,)),
        },
    )
    found = {d.service: d for d in AlertAgent().detect(world)}
    assert sorted(found) == ["cart", "unmapped/NodeDown/fp9"]  # a fan-out: its first only
    assert found["cart"].summary.startswith("cart: alert Quota firing (also on web)")
    unmapped = found["unmapped/NodeDown/fp9"]
    assert unmapped.kind == "alert_unmapped"
    assert 'cluster="eu-1"' in unmapped.summary
    incident = Incident("u", unmapped.service, State.OPEN, at(3), at(1), unmapped.summary,
                        kind="alert_unmapped", evidence_ids=("a9",))  # fmt: skip
    assert "next step: map this alert to a service" in EscalationAgent().summarize(incident, world)
