"""Health folded from probe events: failure runs, and the run of successes since recovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import warden.ingest
from warden.domain import events as ev
from warden.domain import health as kinds
from warden.domain.events import PROBE_FAILED, PROBE_SUCCEEDED, Event
from warden.domain.health import PROCESS_CAUSES, SUCCESSES_KEPT, Cause, Health, observe


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


# -- the kind of a failure -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        ("connection refused", None, kinds.REFUSED),
        ("timed out after 0.5 s", None, kinds.TIMEOUT),
        ("cannot resolve host: Name or service not known", None, kinds.DNS),
        ("connection closed without a response", None, kinds.RESET),
        ("HTTP 503", 503, kinds.HTTP_STATUS),
        ("latency 812 ms above 500 ms", 200, kinds.LATENCY),
        ("check command exit code 2: no", None, kinds.EXIT_CODE),
        ("TLS error: CERTIFICATE_VERIFY_FAILED", None, kinds.TLS),
        ("no route to host", None, kinds.UNREACHABLE),
        ("something odd", None, kinds.OTHER),
    ],
)
def test_older_results_get_their_kind_from_the_error(
    error: str, status: int | None, kind: str
) -> None:
    assert kinds.failure_kind(error, status) == kind


def _failed(**data: object) -> Event:
    return Event(
        id="e", source="s", type=PROBE_FAILED, time="2026-11-25T12:00:00.000000Z",
        data={"service": "api", "probe": "p", **data},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        ({"error": "connection refused", "kind": "refused"}, Cause.EXITED),
        ({"error": "check command exit code 1", "kind": "exit_code"}, Cause.EXITED),
        ({"error": "timed out after 0.5 s"}, Cause.PATH),  # an older log: no kind recorded
        ({"error": "HTTP 403", "status": 403, "kind": "http_status"}, Cause.PATH),
        ({"error": "HTTP 502", "status": 502, "kind": "http_status"}, Cause.UPSTREAM),
        ({"error": "HTTP 500", "status": 500, "kind": "http_status"}, Cause.ERRORS),
        ({"error": "HTTP 404", "status": 404, "kind": "http_status"}, Cause.PATH),
        ({"error": "HTTP 503"}, Cause.UPSTREAM),  # an older log: status from the text
        ({"error": "slow: 3000 ms over 1000 ms"}, Cause.SLOW),
    ],
)
def test_the_kind_says_what_the_failure_points_at(data: dict[str, object], cause: Cause) -> None:
    folded = observe(Health("api"), _failed(**data))
    assert folded.cause is cause
    assert folded.process_fault == (cause in PROCESS_CAUSES)
    assert folded.path_fault == (cause is Cause.PATH)


def test_the_stored_kind_decides_not_the_error_text() -> None:
    # A probe that connected and then heard nothing says "hung" whatever its text reads;
    # the text alone would say the path timed out.
    folded = observe(Health("api"), _failed(error="connect timed out after 0.5 s", kind=kinds.HUNG))
    assert folded.cause is Cause.HUNG and folded.process_fault
    older = observe(Health("api"), _failed(error="connect timed out after 0.5 s"))
    assert older.cause is Cause.PATH


@given(st.sampled_from(kinds.FAILURE_KINDS), st.one_of(st.none(), st.integers(100, 599)))
def test_a_success_clears_the_kind_and_no_fault_is_both(kind: str, status: int | None) -> None:
    folded = observe(Health("api"), _failed(error="x", kind=kind, status=status))
    assert not (folded.process_fault and folded.path_fault)
    assert folded.last_kind == kind
    ok = Event(
        id="f", source="s", type=PROBE_SUCCEEDED, time="2026-11-25T12:00:01.000000Z",
        data={"service": "api", "probe": "p"},
    )  # fmt: skip
    healed = observe(folded, ok)
    assert (healed.last_kind, healed.last_status, healed.process_fault) == ("", None, False)


def test_the_probe_failed_schema_admits_every_failure_kind() -> None:
    # A kind the schema does not list would quarantine every probe failure of that kind.
    schema = json.loads(
        (Path(warden.ingest.__file__).parent / "schemas" / "warden.probe.failed@1.json").read_text()
    )
    assert set(schema["properties"]["kind"]["enum"]) == set(kinds.FAILURE_KINDS)
