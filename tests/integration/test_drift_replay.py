"""A drift is named and dated by the observation that revealed it, so its incident replays.

Live, a drift is noticed at whatever moment the loop ticks; replay ticks at other moments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.agents.drift import DriftAgent
from warden.config import ServiceConfig
from warden.domain import events as ev
from warden.replay import replay

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from pathlib import Path

SERVICES = (
    ServiceConfig(
        "inventory",
        "http://127.0.0.1:9/health",
        managed=False,
        domain="shop",
        desired=(("replicas", "3"), ("running", "true")),
    ),
)


def drifted(tmp_path: Path, noticed_after_s: float) -> Harness:
    """Replicas reported as 2 (3 desired); the loop ticks ``noticed_after_s`` later."""
    h = make_harness(tmp_path, agents=[DriftAgent(grace_s=5)], services=SERVICES)
    h.clock.advance(1)
    h.ingest(ev.STATE_OBSERVED, "inventory", fields={"replicas": 2})
    h.clock.advance(noticed_after_s)
    h.tick()
    return h


def test_the_drift_event_is_a_function_of_the_observation_not_of_the_tick(
    tmp_path: Path,
) -> None:
    early, late = drifted(tmp_path / "a", 0.0), drifted(tmp_path / "b", 3.37)
    try:
        (first,) = early.events(ev.DRIFT_DETECTED)
        (second,) = late.events(ev.DRIFT_DETECTED)
        (report,) = late.events(ev.STATE_OBSERVED)
        assert (first.id, first.time) == (second.id, second.time)
        assert second.time == report.time
    finally:
        early.close()
        late.close()


def test_a_drift_incident_noticed_between_replay_ticks_replays_the_same(tmp_path: Path) -> None:
    h = drifted(tmp_path, 0.37)
    try:
        for _ in range(5):
            h.clock.advance(1.73)
            h.tick()
        (incident,) = h.incidents("inventory")
        assert (incident.kind, incident.state.value) == ("drift", "awaiting_approval")
        h.approve(incident, "alice")
        h.clock.advance(0.29)
        h.tick()
        h.clock.advance(0.41)
        h.ingest(ev.STATE_OBSERVED, "inventory", fields={"replicas": 3})
        h.settle()
        done = h.warden.runtime.incidents[incident.id]
        assert done.state.value == "resolved", done.close_reason
        agents = [DriftAgent(grace_s=5)]
        report = replay(h.warden.store.read_all(), h.warden.config, agents=agents)
    finally:
        h.close()
    assert report.differences == ()
    assert [v.incident_id for v in report.replayed] == [incident.id]
