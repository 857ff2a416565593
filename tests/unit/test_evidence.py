"""Evidence rules: what a failure points at, starvation, the root, and when a restart is due."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from warden.domain import events as ev
from warden.domain import evidence, health
from warden.domain.changes import CHANGE_RECORDED, Changes, observe
from warden.domain.events import format_time
from warden.domain.evidence import Cause
from warden.domain.health import Health
from warden.domain.plans import Step
from warden.domain.relapse import Remedy
from warden.domain.signals import Alert, Sample, Signals
from warden.domain.world import World

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def up(service: str) -> Health:
    return Health(service, last_success_at=at(0), last_seen_at=at(0))


def down(service: str, error: str = "connection refused", since: float = 10) -> Health:
    return Health(
        service,
        consecutive_failures=4,
        failing_since=at(since),
        evidence=tuple(f"{service}-{i}" for i in range(4)),
        last_error=error,
        last_seen_at=at(since + 15),
    )


def metric(service: str, name: str, *values: float, start: float = 0) -> Signals:
    samples = tuple(
        Sample(at(start + 15 * i), v, f"{service}-{name}-{i}") for i, v in enumerate(values)
    )
    return Signals(service, metrics=((name, samples),))


def world(
    *health: Health,
    depends_on: Mapping[str, Sequence[str]] | None = None,
    signals: Sequence[Signals] = (),
    now: float = 60,
    **extra: object,
) -> World:
    return World(
        now=T0 + timedelta(seconds=now),
        health={h.service: h for h in health},
        depends_on={k: tuple(v) for k, v in (depends_on or {}).items()},
        signals={s.service: s for s in signals},
        **extra,  # type: ignore[arg-type]
    )


# -- what a probe's error points at ----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("connection refused", Cause.EXITED),
        ("connection reset", Cause.EXITED),
        ("connection closed without a response", Cause.EXITED),
        ("no answer within 0.5 s after connecting", Cause.HUNG),
        ("connect timed out after 0.5 s", Cause.PATH),
        ("timed out after 0.5 s", Cause.PATH),  # which side timed out is unknown: the path
        ("cannot resolve host: Name or service not known", Cause.PATH),
        ("TLS error: CERTIFICATE_VERIFY_FAILED", Cause.PATH),
        ("HTTP 403", Cause.PATH),
        ("HTTP 401", Cause.PATH),
        ("HTTP 404", Cause.PATH),
        ("HTTP 502", Cause.UPSTREAM),
        ("HTTP 503", Cause.UPSTREAM),
        ("HTTP 504", Cause.UPSTREAM),
        ("HTTP 500", Cause.ERRORS),
        ("HTTP 429", Cause.CAPACITY),
        ("HTTP 507", Cause.CAPACITY),
        ("slow: 3000 ms over 1000 ms", Cause.SLOW),
        ("latency 1500 ms above 1000 ms", Cause.SLOW),
        ("", Cause.UNKNOWN),
    ],
)
def test_a_probe_error_points_at_a_kind_of_cause(error: str, cause: Cause) -> None:
    assert evidence.classify(error) is cause


@pytest.mark.parametrize(
    ("name", "saturation"),
    [
        ("disk_used_ratio", True),
        ("cpu_utilisation", True),
        ("disk_io_util", True),
        ("bucket_used_ratio", True),
        ("error_rate", False),
        ("cache_hit_ratio", False),
        ("latency_p99_ms", False),
    ],
)
def test_saturation_metrics_are_known_by_name(name: str, saturation: bool) -> None:
    assert evidence.is_saturation_metric(name) is saturation


def test_saturation_needs_a_fraction_at_or_above_ninety_percent() -> None:
    calm = metric("db", "cpu_utilisation", 0.3, 0.35, 0.4)
    assert evidence.saturation(calm) is None
    hot = metric("db", "cpu_utilisation", 0.3, 0.35, 0.95)
    found = evidence.saturation(hot)
    assert found is not None and found.value == 0.95
    assert found.baseline == pytest.approx(0.325)
    assert found.exhausted is False
    assert evidence.saturation(metric("db", "disk_used_ratio", 1.0)) is not None
    assert evidence.saturation(metric("db", "error_rate", 0.99)) is None  # not a resource


# -- restarts --------------------------------------------------------------------------


def test_a_process_that_exited_with_nothing_upstream_may_be_restarted() -> None:
    w = world(down("payments"), up("orders"), depends_on={"orders": ["payments"]})
    assert evidence.restart_blockers("payments", w) == ()


def test_a_process_hung_while_alive_may_be_restarted() -> None:
    w = world(down("inventory", "no answer within 0.5 s after connecting"))
    assert evidence.restart_blockers("inventory", w) == ()


@pytest.mark.parametrize(
    ("kind", "blocked"),
    [(health.HUNG, False), (health.REFUSED, False), (health.TIMEOUT, True), (health.DNS, True)],
)
def test_the_diagnosis_reads_the_stored_kind_not_the_error_text(kind: str, blocked: bool) -> None:
    # The same text with different recorded kinds: the kind the probe saw decides.
    seen = replace(down("inventory", "connect timed out after 0.5 s"), last_kind=kind)
    w = world(seen)
    assert bool(evidence.restart_blockers("inventory", w)) is blocked
    assert (evidence.cause_of("inventory", w) in evidence.PROCESS_CAUSES) is not blocked


@pytest.mark.parametrize(
    "error",
    ["connect timed out after 0.5 s", "cannot resolve host: x", "HTTP 403", "HTTP 503", "HTTP 500"],
)
def test_a_failure_that_points_at_the_path_or_the_code_is_no_restart(error: str) -> None:
    (reason,) = evidence.restart_blockers("inventory", world(down("inventory", error)))
    assert "not at its process" in reason


def test_a_starved_service_is_not_restarted() -> None:
    w = world(
        down("auth"),
        down("orders", "HTTP 503"),
        depends_on={"orders": ["auth"]},
    )
    reasons = evidence.restart_blockers("orders", w)
    assert any("starved, not broken" in r and "auth" in r for r in reasons)
    # Even a process that exited is not restarted while its dependency explains it.
    crashed = replace(w, health={**w.health, "orders": down("orders")})
    assert any("starved" in r for r in evidence.restart_blockers("orders", crashed))


def test_a_saturated_dependency_starves_its_caller() -> None:
    w = world(
        down("catalog", "no answer within 0.5 s after connecting"),
        up("catalog-db"),
        depends_on={"catalog": ["catalog-db"]},
        signals=[metric("catalog-db", "cpu_utilisation", 0.35, 0.35, 0.98)],
    )
    assert evidence.upstream("catalog", w) == ("catalog-db",)
    assert any("starved" in r for r in evidence.restart_blockers("catalog", w))


def test_a_dependency_that_just_recovered_still_explains_its_caller() -> None:
    recovered = replace(up("auth"), healthy_since=at(50), last_success_at=at(50))
    w = world(recovered, down("orders", "HTTP 503"), depends_on={"orders": ["auth"]})
    assert evidence.upstream("orders", w) == ("auth",)
    later = replace(w, now=T0 + timedelta(seconds=50 + evidence.RECOVERY_GRACE_S + 1))
    assert evidence.upstream("orders", later) == ()


def test_the_root_is_the_deepest_failing_dependency() -> None:
    w = world(
        up("gateway"),
        down("orders", "HTTP 500"),
        down("orders-db"),
        depends_on={"gateway": ["orders"], "orders": ["orders-db"]},
    )
    assert evidence.upstream("gateway", w) == ("orders", "orders-db")
    assert evidence.callers("orders-db", w) == ("gateway", "orders")


def test_an_exhausted_resource_is_no_restart() -> None:
    w = world(down("orders-db"), signals=[metric("orders-db", "disk_used_ratio", 1.0)])
    assert any("frees none" in r for r in evidence.restart_blockers("orders-db", w))


def test_a_restart_that_relapsed_is_not_repeated() -> None:
    restarted = Remedy(at(5), "restart_service", "search", "search", "inc-1")
    w = world(down("search", "no answer within 0.5 s after connecting", since=30))
    assert evidence.restart_blockers("search", w) == ()
    looped = replace(w, remedies=(restarted,))
    assert any("loop" in r for r in evidence.restart_blockers("search", looped))


def test_a_slow_service_whose_work_piles_up_is_hung() -> None:
    slow = down("worker", "slow: 1500 ms over 1000 ms")
    calm = world(slow, signals=[metric("worker", "backlog", 40, 40, 40)])
    assert evidence.restart_blockers("worker", calm)
    piling = world(slow, signals=[metric("worker", "backlog", 40, 400, 900)])
    assert evidence.restart_blockers("worker", piling) == ()


def test_only_restarts_are_gated_here() -> None:
    w = world(down("auth"), down("orders", "HTTP 503"), depends_on={"orders": ["auth"]})
    assert evidence.step_blockers(Step("restart_service", "orders"), w)
    assert evidence.step_blockers(Step("start_service", "orders"), w)
    assert evidence.step_blockers(Step("open_circuit", "auth"), w) == ()


# -- symptoms and suspects ---------------------------------------------------------------


def _change(
    log: Changes, when: float, field: str, value: object, previous: object | None
) -> Changes:
    data: dict[str, object] = {
        "service": "pricing",
        "resource": "flag/new-pricing",
        "kind": "feature_flag",
        "field": field,
        "value": value,
    }
    if previous is not None:
        data["previous"] = previous
    event = ev.Event(
        id=f"chg-{when}", source="test", type=CHANGE_RECORDED, time=at(when), data=data
    )
    return observe(log, event)


def test_an_error_rate_above_its_limit_is_a_symptom_from_its_first_bad_sample() -> None:
    signals = metric("pricing", "error_rate", 0.003, 0.003, 0.3, 0.3)
    found = evidence.symptom("pricing", world(signals=[signals]))
    assert found is not None
    assert found.since == at(30) and found.cause is Cause.ERRORS
    assert (
        evidence.symptom("pricing", world(signals=[metric("pricing", "error_rate", 0.3)])) is None
    )


def test_a_page_alert_is_a_symptom_a_warning_is_not() -> None:
    def alerting(severity: str) -> Signals:
        alert = Alert("f1", "Burn", severity, "burning", at(20), "alert-1")
        return Signals("pricing", alerts=(alert,))

    assert evidence.symptom("pricing", world(signals=[alerting("page")])) is not None
    assert evidence.symptom("pricing", world(signals=[alerting("warning")])) is None


def test_suspects_are_changes_before_the_symptom_within_the_window() -> None:
    log = _change(Changes(), -1000, "enabled", False, None)  # the starting state
    log = _change(log, 20, "enabled", True, False)
    w = world(changes=log)
    (suspect,) = evidence.suspects("pricing", w, at(30), 900)
    assert suspect.previous == "false" and suspect.value == "true"
    assert evidence.suspects("pricing", w, at(10), 900) == ()  # after the symptom began
    assert evidence.suspects("pricing", w, at(2000), 900) == ()  # too long before


def test_changes_of_a_dependency_are_in_the_neighbourhood_of_its_callers() -> None:
    log = _change(Changes(), 20, "enabled", True, False)
    w = world(changes=log, depends_on={"storefront": ["pricing"], "other": []})
    assert evidence.neighbourhood("storefront", w) == ("storefront", "pricing")
    assert evidence.suspects("storefront", w, at(30), 900) != ()
    assert evidence.suspects("other", w, at(30), 900) == ()


# -- the invariant -----------------------------------------------------------------------

SERVICES = ("a", "b", "c", "d")
ERRORS = (
    "connection refused",
    "no answer within 0.5 s after connecting",
    "connect timed out after 0.5 s",
    "HTTP 503",
    "HTTP 500",
)


@st.composite
def fleets(draw: st.DrawFn) -> World:
    depends = {
        s: tuple(sorted(draw(st.sets(st.sampled_from([d for d in SERVICES if d != s])))))
        for s in SERVICES
    }
    health = []
    for service in SERVICES:
        failures = draw(st.integers(0, 5))
        error = draw(st.sampled_from(ERRORS)) if failures else ""
        health.append(
            Health(
                service,
                consecutive_failures=failures,
                failing_since=at(10) if failures else "",
                last_error=error,
                last_seen_at=at(20),
                last_success_at="" if failures else at(20),
            )
        )
    return world(*health, depends_on=depends)


@settings(max_examples=300)
@given(fleets())
@example(
    world(down("b"), down("a"), depends_on={"a": ["b"], "b": ["a"]})  # a cycle: both starved
)
def test_never_restart_a_service_whose_dependency_fails_with_evidence(w: World) -> None:
    for service in SERVICES:
        failing_dependency = any(
            evidence.failing(d, w) for d in w.depends_on.get(service, ()) if d != service
        )
        allowed = not evidence.restart_blockers(service, w)
        if failing_dependency:
            assert not allowed
        if allowed:
            assert evidence.cause_of(service, w) in evidence.PROCESS_CAUSES
