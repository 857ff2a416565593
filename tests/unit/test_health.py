"""Health folded from probe events: failure runs, and the run of successes since recovery."""

from __future__ import annotations

from warden.domain import events as ev
from warden.domain.health import SUCCESSES_KEPT, Health, observe


def probe(n: int, ok: bool) -> ev.Event:
    return ev.Event(
        id=f"p{n}",
        source="test",
        type=ev.PROBE_SUCCEEDED if ok else ev.PROBE_FAILED,
        time=f"2026-11-25T12:00:{n:02d}.000000Z",
        data={"service": "payments", "error": "" if ok else "refused"},
    )


def fold(*results: bool) -> Health:
    health = Health("payments")
    for n, ok in enumerate(results):
        health = observe(health, probe(n, ok))
    return health


def test_healthy_since_is_the_first_success_of_the_current_run() -> None:
    assert fold(True, True, True).healthy_since == probe(0, True).time
    recovered = fold(True, False, False, True, True)
    assert recovered.healthy_since == probe(3, True).time
    assert recovered.successes == ("p3", "p4")
    assert recovered.failing_since == ""


def test_a_failure_ends_the_run_of_successes() -> None:
    failing = fold(True, True, False)
    assert (failing.healthy_since, failing.successes) == ("", ())
    assert failing.failing_since == probe(2, False).time
    assert failing.consecutive_failures == 1


def test_only_the_latest_successes_are_kept() -> None:
    many = fold(*([True] * (SUCCESSES_KEPT + 3)))
    assert len(many.successes) == SUCCESSES_KEPT
    assert many.successes[-1] == f"p{SUCCESSES_KEPT + 2}"
    assert many.healthy_since == probe(0, True).time
