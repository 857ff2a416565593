"""The order a round moves incidents in: news first, and an incident stored mid-round next."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from warden.domain import events as ev
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.domain.plans import Plan, Step

from .harness import Harness, make_harness, policy_bundle

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from warden.domain.incident import Incident
    from warden.domain.lifecycle import View


def store_planned(h: Harness, incident_id: str) -> None:
    """An incident opened and planned, as another thread (or process) stores one."""
    service = f"svc-{incident_id}"  # one each: no incident waits for another's target
    stream = incident_stream(incident_id)
    now = ev.format_time(h.clock.now())
    plan = Plan("test", (Step("restart_service", service),), "test", (), 0.9)
    opened = ev.derived_event(
        ev.INCIDENT_OPENED,
        stream,
        {"incident_id": incident_id, "service": service, "first_signal_at": now},
        now,
        subject=service,
    )
    proposed = ev.derived_event(ev.PLAN_PROPOSED, stream, {"plan": plan.to_dict()}, now)
    h.warden.store.append(stream, [opened, proposed], expected_version=0)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    # Every step waits for two approvers: incidents stay open, and one approval is news.
    policy_bundle(
        tmp_path,
        "two.cedar",
        '@id("two") @outcome("needs_approval") @approvers("2") @message("two approve")\n'
        "permit (principal, action, resource);\n",
    )
    harness = make_harness(tmp_path)
    yield harness
    harness.close()


def record_moves(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the incidents the loop moves, in order."""
    moved: list[str] = []
    interpreter = h.warden.runtime.interpreter
    advance = interpreter.advance

    def noted(incident: Incident, view: View) -> bool:
        moved.append(incident.id)
        return advance(incident, view)

    monkeypatch.setattr(interpreter, "advance", noted)
    return moved


def test_a_round_moves_incidents_with_news_first(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = record_moves(h, monkeypatch)
    for name in ("inc-a", "inc-b", "inc-c"):
        store_planned(h, name)
    h.tick()
    assert moved == ["inc-a", "inc-b", "inc-c"]  # all new: by id
    assert {i.state for i in h.incidents()} == {State.AWAITING_APPROVAL}
    moved.clear()
    h.tick()
    assert moved == ["inc-a", "inc-b", "inc-c"]  # nothing new: by id
    # A newly planned incident, last by id, and an approval on another: they go first.
    store_planned(h, "inc-z")
    h.approve(h.warden.runtime.incidents["inc-c"], "alice")
    moved.clear()
    h.tick()
    assert moved == ["inc-c", "inc-z", "inc-a", "inc-b"]
    # What a round wrote itself (inc-z's decision) is no news in the next.
    moved.clear()
    h.tick()
    assert moved == ["inc-a", "inc-b", "inc-c", "inc-z"]


def test_an_incident_stored_mid_round_is_moved_next_in_the_same_round(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("inc-a", "inc-b", "inc-c"):
        store_planned(h, name)
    h.tick()
    moved = record_moves(h, monkeypatch)
    advance = h.warden.runtime.interpreter.advance

    def storing(incident: Incident, view: View) -> bool:
        acted = advance(incident, view)
        if incident.id == "inc-a":
            store_planned(h, "inc-y")  # stored while the round walks
            acted = True  # the loop reads the log back after a move that acted
        return acted

    monkeypatch.setattr(h.warden.runtime.interpreter, "advance", storing)
    h.tick()
    assert moved == ["inc-a", "inc-y", "inc-b", "inc-c"]
    (decided,) = [e for e in h.warden.store.read_stream(incident_stream("inc-y"))
                  if e.type == ev.DECISION_RECORDED]  # fmt: skip
    assert decided.data["decision"]["outcome"] == "needs_approval"
