"""The change timeline and the step that reverts a recorded change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warden.domain import events as ev
from warden.domain.changes import CHANGE_RECORDED, Change, Changes, observe
from warden.domain.events import format_time
from warden.domain.plans import Step
from warden.domain.reverts import renewal, revert

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def recorded(when: float, **data: object) -> ev.Event:
    return ev.Event(id=f"e{when}", source="test", type=CHANGE_RECORDED, time=at(when), data=data)


def deployed(when: float, version: str, previous: str | None = None) -> ev.Event:
    data: dict[str, object] = {"service": "search", "version": version}
    if previous is not None:
        data["previous_version"] = previous
    return ev.Event(id=f"d{when}", source="t", type=ev.DEPLOY_COMPLETED, time=at(when), data=data)


def change(kind: str, field: str, value: str, previous: str | None) -> Change:
    return Change(at(0), "svc", f"{kind}/svc", kind, field, value, previous, "bob", "e1")


def test_a_first_record_is_a_starting_state_and_the_next_keeps_what_it_replaced() -> None:
    log = observe(
        Changes(),
        recorded(-100, service="p", resource="config/p", kind="config", field="pool", value=20),
    )
    assert log.changes[0].is_change is False
    log = observe(
        log, recorded(10, service="p", resource="config/p", kind="config", field="pool", value=0)
    )
    latest = log.changes[-1]
    assert (latest.previous, latest.value, latest.is_change) == ("20", "0", True)
    assert log.value_of("config/p", "pool") == "0"
    assert log.resources_of("p", "config") == ("config/p",)
    assert [c.resource for c in log.about(["p"])] == ["config/p"]
    assert log.about(["q"]) == ()


def test_deploys_join_the_timeline_with_the_version_they_replaced() -> None:
    log = observe(observe(Changes(), deployed(-7200, "v3.1")), deployed(-60, "v3.2"))
    latest = log.changes[-1]
    assert latest.is_deploy and latest.previous == "v3.1" and latest.value == "v3.2"
    assert observe(Changes(), deployed(0, "v2", previous="v1")).changes[0].previous == "v1"


def test_other_events_leave_the_timeline_alone() -> None:
    other = ev.Event(id="x", source="t", type=ev.METRIC_SAMPLED, time=at(0), data={})
    assert observe(Changes(), other) == Changes()


@pytest.mark.parametrize(
    ("kind", "field", "value", "previous", "step"),
    [
        (
            "config",
            "pool",
            "0",
            "20",
            Step("restore_config", "config/svc", (("field", "pool"), ("value", "20"))),
        ),
        (
            "feature_flag",
            "enabled",
            "true",
            "false",
            Step("restore_flag", "feature_flag/svc", (("field", "enabled"), ("value", "false"))),
        ),
        (
            "network_rule",
            "allow",
            "edge",
            "shop,edge",
            Step(
                "restore_network_rule",
                "network_rule/svc",
                (("field", "allow"), ("value", "shop,edge")),
            ),
        ),
        (
            "route",
            "selector",
            "app=x",
            "app=y",
            Step("restore_route", "route/svc", (("field", "selector"), ("value", "app=y"))),
        ),
        ("deployment", "image", "v8", "v7", Step("rollback_deploy", "svc", (("version", "v7"),))),
        ("deployment", "replicas", "0", "3", Step("scale_service", "svc", (("replicas", 3),))),
        (
            "quota",
            "limit",
            "2",
            "5",
            Step("raise_quota", "quota/svc", (("field", "limit"), ("value", "5"))),
        ),
    ],
)
def test_a_revert_puts_back_the_recorded_value(
    kind: str, field: str, value: str, previous: str, step: Step
) -> None:
    assert revert(change(kind, field, value, previous)) == step


@pytest.mark.parametrize(
    ("kind", "field", "value", "previous"),
    [
        ("config", "pool", "0", None),  # nothing recorded before: nothing to put back
        ("credential", "status", "revoked", "active"),  # a revocation is a decision
        ("scheduled_job", "schedule", "*/5", "*/10"),
        ("quota", "limit", "9", "5"),  # a raised quota starves no one
        ("deployment", "replicas", "3", "0"),  # scaling back to zero is no revert
        ("other", "x", "1", "2"),
    ],
)
def test_what_cannot_be_reverted(kind: str, field: str, value: str, previous: str | None) -> None:
    assert revert(change(kind, field, value, previous)) is None


def test_an_expired_credential_is_rotated_a_revoked_one_is_not() -> None:
    expired = change("credential", "status", "expired", "valid")
    assert renewal(expired) == Step("rotate_credential", "credential/svc")
    assert renewal(change("credential", "status", "revoked", "active")) is None
    assert renewal(change("config", "status", "expired", "valid")) is None
