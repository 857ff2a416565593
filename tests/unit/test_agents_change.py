"""ChangeAgent and CapacityAgent: revert the change a symptom followed; free a saturated resource."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warden.agents.capacity import CapacityAgent
from warden.agents.change import ChangeAgent
from warden.domain import events as ev
from warden.domain.changes import CHANGE_RECORDED, Changes, observe
from warden.domain.events import format_time
from warden.domain.health import Health
from warden.domain.incident import Incident, State
from warden.domain.plans import Step
from warden.domain.relapse import Remedy
from warden.domain.signals import Sample, Signals
from warden.domain.world import World

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def down(service: str, error: str = "connection refused", since: float = 65) -> Health:
    return Health(
        service,
        consecutive_failures=3,
        failing_since=at(since),
        evidence=(f"{service}-1", f"{service}-2", f"{service}-3"),
        last_error=error,
        last_seen_at=at(since + 10),
    )


def up(service: str) -> Health:
    return Health(service, last_success_at=at(0), last_seen_at=at(0))


def timeline(*changes: tuple[float, str, str, str, str, object, object | None]) -> Changes:
    log = Changes()
    for when, service, resource, kind, field, value, previous in changes:
        data: dict[str, object] = {
            "service": service,
            "resource": resource,
            "kind": kind,
            "field": field,
            "value": value,
        }
        if previous is not None:
            data["previous"] = previous
        event = ev.Event(
            id=f"chg-{resource}-{when}", source="t", type=CHANGE_RECORDED, time=at(when), data=data
        )
        log = observe(log, event)
    return log


def world(
    *health: Health,
    changes: Changes | None = None,
    depends_on: Mapping[str, Sequence[str]] | None = None,
    signals: Sequence[Signals] = (),
    remedies: tuple[Remedy, ...] = (),
    now: float = 80,
) -> World:
    return World(
        now=T0 + timedelta(seconds=now),
        health={h.service: h for h in health},
        depends_on={k: tuple(v) for k, v in (depends_on or {}).items()},
        signals={s.service: s for s in signals},
        changes=changes or Changes(),
        remedies=remedies,
    )


def incident(service: str, kind: str = "service_down") -> Incident:
    return Incident(
        id="inc-1",
        service=service,
        state=State.OPEN,
        opened_at=at(75),
        first_signal_at=at(65),
        summary="x",
        kind=kind,
    )


POOL = timeline(
    (-604800, "payments", "config/payments", "config", "db_pool_size", 20, None),
    (60, "payments", "config/payments", "config", "db_pool_size", 0, None),
)


def test_a_crash_after_a_config_change_restores_the_config() -> None:
    w = world(down("payments"), up("orders"), changes=POOL, depends_on={"orders": ["payments"]})
    (found,) = ChangeAgent().detect(w)
    assert found.service == "payments" and found.kind == "change"
    assert "config/payments db_pool_size 20 -> 0" in found.summary
    plan = ChangeAgent().propose(incident("payments"), w)
    assert plan is not None
    assert plan.steps == (
        Step("restore_config", "config/payments", (("field", "db_pool_size"), ("value", "20"))),
    )
    assert plan.confidence >= 0.7  # a low-risk revert may run in autonomous mode
    assert plan.evidence[0] == "chg-config/payments-60"


def test_a_change_long_before_the_symptom_is_not_a_suspect() -> None:
    late = world(down("payments", since=2000), changes=POOL, now=2020)
    assert ChangeAgent().detect(late) == []
    assert ChangeAgent().propose(incident("payments"), late) is None
    assert "no recorded change" in ChangeAgent().why_no_plan(incident("payments"), late)


def test_a_dependency_change_is_reverted_for_its_caller_once() -> None:
    rule = timeline(
        (-9000, "payments", "netpol/p", "network_rule", "allow_from", "shop,edge", None),
        (60, "payments", "netpol/p", "network_rule", "allow_from", "edge", None),
    )
    w = world(
        down("orders", "HTTP 503"),
        down("gateway", "HTTP 503"),
        up("payments"),
        changes=rule,
        depends_on={"gateway": ["orders"], "orders": ["payments"]},
    )
    detections = ChangeAgent().detect(w)
    assert [d.service for d in detections] == ["orders"]  # nearest to the change, one per change
    plan = ChangeAgent().propose(incident("orders"), w)
    assert plan is not None
    assert plan.steps[0].action == "restore_network_rule" and plan.steps[0].target == "netpol/p"


def test_a_dependency_change_does_not_explain_a_caller_whose_process_exited() -> None:
    deploy = timeline(
        (-86400, "orders", "deployment/orders", "deployment", "image", "v1", None),
        (50, "orders", "deployment/orders", "deployment", "image", "v2", "v1"),
    )
    errors = Signals(
        "orders", metrics=(("error_rate", tuple(Sample(at(t), 0.25, f"e{t}") for t in (55, 60))),)
    )
    w = world(
        down("gateway"),  # connection refused: nothing listens on the gateway
        up("orders"),
        changes=deploy,
        depends_on={"gateway": ["orders"]},
        signals=[errors],
    )
    assert ChangeAgent().propose(incident("gateway"), w) is None
    # The changed service itself is still the suspect's own incident.
    (found,) = ChangeAgent().detect(w)
    assert found.service == "orders"
    plan = ChangeAgent().propose(incident("orders", "change"), w)
    assert plan is not None and plan.steps[0].target == "orders"
    # A caller that answers 503 is what a dependency's change does: still reverted for it.
    starved = world(
        down("gateway", "HTTP 503"), up("orders"), changes=deploy,
        depends_on={"gateway": ["orders"]}, signals=[errors],
    )  # fmt: skip
    assert ChangeAgent().propose(incident("gateway"), starved) is not None


def test_a_revoked_credential_is_left_to_a_human() -> None:
    revoked = timeline(
        (-9000, "payments", "secret/psp", "credential", "status", "active", None),
        (60, "payments", "secret/psp", "credential", "status", "revoked", None),
    )
    errors = Signals(
        "payments",
        metrics=(("error_rate", (Sample(at(65), 0.97, "m1"), Sample(at(80), 0.97, "m2"))),),
    )
    w = world(up("payments"), changes=revoked, signals=[errors])
    assert ChangeAgent().detect(w) == []
    assert ChangeAgent().propose(incident("payments"), w) is None
    assert "cannot be reverted" in ChangeAgent().why_no_plan(incident("payments"), w)


def test_an_expired_certificate_is_rotated_without_waiting_for_a_symptom() -> None:
    expired = timeline(
        (-9000, "edge", "cert/edge", "credential", "status", "valid", None),
        (60, "edge", "cert/edge", "credential", "status", "expired", None),
    )
    w = world(up("edge"), changes=expired)
    (found,) = ChangeAgent().detect(w)
    assert found.service == "edge"
    plan = ChangeAgent().propose(incident("edge", "change"), w)
    assert plan is not None and plan.steps == (Step("rotate_credential", "cert/edge"),)


def test_after_a_relapsed_restart_the_services_own_older_change_is_the_suspect() -> None:
    deploys = Changes()
    for when, version in ((-864000, "v3.1"), (-7200, "v3.2")):
        event = ev.Event(
            id=f"d{when}",
            source="t",
            type=ev.DEPLOY_COMPLETED,
            time=at(when),
            data={"service": "search", "version": version},
        )
        deploys = observe(deploys, event)
    hung = down("search", "no answer within 0.5 s after connecting", since=340)
    w = world(hung, changes=deploys, now=360)
    assert ChangeAgent().propose(incident("search"), w) is None  # 2 h old: not a suspect
    restarted = (Remedy(at(100), "restart_service", "search", "search", "inc-0"),)
    looped = world(hung, changes=deploys, remedies=restarted, now=360)
    plan = ChangeAgent().propose(incident("search"), looped)
    assert plan is not None
    assert plan.steps == (Step("rollback_deploy", "search", (("version", "v3.1"),)),)
    assert "relapsed" in plan.rationale
    # A circuit opened for it (its dependency failed) is no restart of it: no loop.
    isolated = (Remedy(at(100), "open_circuit", "search-db", "search", "inc-0"),)
    calm = world(hung, changes=deploys, remedies=isolated, now=360)
    assert ChangeAgent().propose(incident("search"), calm) is None


def test_same_inputs_same_detections_and_plans() -> None:
    w = world(down("payments"), changes=POOL)
    agent = ChangeAgent()
    assert agent.detect(w) == agent.detect(w)
    assert agent.propose(incident("payments"), w) == agent.propose(incident("payments"), w)


# -- capacity --------------------------------------------------------------------------


def used(service: str, name: str, *values: float) -> Signals:
    samples = tuple(Sample(at(15 * i), v, f"{name}-{i}") for i, v in enumerate(values))
    return Signals(service, metrics=((name, samples),))


def test_a_full_quota_is_raised() -> None:
    quota = timeline((-9000, "uploads", "quota/bucket", "quota", "limit_tib", 5, None))
    w = world(
        down("uploads", "HTTP 507"),
        changes=quota,
        signals=[used("uploads", "bucket_used_ratio", 0.8, 0.8, 1.0)],
    )
    (found,) = CapacityAgent().detect(w)
    assert found.service == "uploads" and found.kind == "capacity"
    plan = CapacityAgent().propose(incident("uploads", "capacity"), w)
    assert plan is not None
    assert plan.steps == (
        Step("raise_quota", "quota/bucket", (("field", "limit_tib"), ("value", "7.5"))),
    )


def test_a_scheduled_job_on_a_saturated_dependency_is_suspended() -> None:
    job = timeline((-9000, "db", "job/reindex", "scheduled_job", "schedule", "*/10 * * * *", None))
    w = world(
        down("catalog", "no answer within 0.5 s after connecting"),
        up("db"),
        changes=job,
        depends_on={"catalog": ["db"]},
        signals=[used("db", "cpu_utilisation", 0.35, 0.35, 0.98)],
    )
    (found,) = CapacityAgent().detect(w)
    assert found.service == "db"  # the root, not the starved caller
    plan = CapacityAgent().propose(incident("db", "capacity"), w)
    assert plan is not None and plan.steps == (Step("suspend_job", "job/reindex"),)


def test_a_full_disk_with_no_known_remedy_goes_to_a_human() -> None:
    w = world(down("orders-db"), signals=[used("orders-db", "disk_used_ratio", 1.0, 1.0)])
    (found,) = CapacityAgent().detect(w)
    assert found.service == "orders-db"
    assert CapacityAgent().propose(incident("orders-db", "capacity"), w) is None
    why = CapacityAgent().why_no_plan(incident("orders-db", "capacity"), w)
    assert "disk_used_ratio at 100%" in why and "by hand" in why


def test_saturation_that_hurts_no_one_is_not_an_incident() -> None:
    w = world(up("db"), signals=[used("db", "cpu_utilisation", 0.3, 0.95)])
    assert CapacityAgent().detect(w) == []
