"""What is observed of each field, with the event that first showed its value (drift's cause)."""

from __future__ import annotations

from warden.domain import drift
from warden.domain import events as ev


def event(id_: str, type_: str, time: str, **data: object) -> ev.Event:
    return ev.Event(id_, "test://", type_, f"2026-11-25T12:00:0{time}.000000Z", dict(data))


def test_a_value_keeps_the_event_that_first_showed_it() -> None:
    seen: dict[tuple[str, str], drift.Observation] = {}
    drift.observe(seen, event("a", ev.PROBE_FAILED, "1", service="web"))
    drift.observe(seen, event("b", ev.PROBE_FAILED, "2", service="web"))
    assert seen[("web", "running")] == drift.Observation(
        "false", "a", "2026-11-25T12:00:01.000000Z"
    )
    drift.observe(seen, event("c", ev.PROBE_SUCCEEDED, "3", service="web"))
    assert (seen[("web", "running")].value, seen[("web", "running")].event_id) == ("true", "c")


def test_state_reports_are_spelled_as_the_configuration_spells_them() -> None:
    seen: dict[tuple[str, str], drift.Observation] = {}
    report = event("r", ev.STATE_OBSERVED, "1", service="db", fields={"replicas": 2, "tls": True})
    drift.observe(seen, report)
    drift.observe(seen, event("x", ev.METRIC_SAMPLED, "2", service="db", metric="m", value=1))
    assert drift.values(seen) == {"db": {"replicas": "2", "tls": "true"}}
    assert {o.event_id for o in seen.values()} == {"r"}
