"""The ``world`` variable runbooks read: what changed since the deploy, which dependency fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warden.domain import events as ev
from warden.domain.changes import CHANGE_RECORDED, Changes, observe
from warden.domain.events import format_time
from warden.domain.health import Health
from warden.domain.signals import Deploy, Signals
from warden.domain.world import World
from warden.runbooks.model import world_variable

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def flag_flip(when: float, service: str) -> ev.Event:
    data = {
        "service": service,
        "resource": f"flag/{service}-checkout",
        "kind": "feature_flag",
        "field": "enabled",
        "value": "true",
        "previous": "false",
        "by": "carol",
    }
    return ev.Event(id=f"flip-{when}", source="t", type=CHANGE_RECORDED, time=at(when), data=data)


def world(*changes: ev.Event, failing: tuple[str, ...] = ()) -> World:
    timeline = Changes()
    for change in changes:
        timeline = observe(timeline, change)
    deploys = (Deploy(at(0), "v1", "d1"), Deploy(at(100), "v2", "d2"))
    return World(
        now=T0 + timedelta(seconds=300),
        health={s: Health(s, consecutive_failures=3, failing_since=at(200)) for s in failing},
        depends_on={"payments": ("ledger",)},
        signals={"payments": Signals("payments", deploys=deploys)},
        changes=timeline,
    )


def test_a_deploy_with_nothing_after_it_shows_no_later_change() -> None:
    seen = world_variable(world(flag_flip(50, "payments")), "payments")
    assert seen["deployed_at"] == at(100)
    assert seen["changes_since_deploy"] == []
    assert seen["failing_dependencies"] == []


def test_a_flag_flip_after_the_deploy_is_a_later_change_on_the_service_or_its_dependency() -> None:
    own = world_variable(world(flag_flip(150, "payments")), "payments")
    assert len(own["changes_since_deploy"]) == 1
    assert "flag/payments-checkout enabled false -> true by carol" in own["changes_since_deploy"][0]
    downstream = world_variable(world(flag_flip(150, "ledger")), "payments")
    assert len(downstream["changes_since_deploy"]) == 1
    unrelated = world_variable(world(flag_flip(150, "search")), "payments")
    assert unrelated["changes_since_deploy"] == []


def test_a_failing_dependency_is_listed() -> None:
    seen = world_variable(world(failing=("ledger", "search")), "payments")
    assert seen["failing_dependencies"] == ["ledger"]


def test_a_service_never_deployed_lists_every_kept_change() -> None:
    seen = world_variable(world(flag_flip(150, "ledger")), "ledger")
    assert seen["deployed_at"] == ""
    assert len(seen["changes_since_deploy"]) == 1
