"""A candidate replayed on a real store where people approved one restart and rejected another."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from tests.builders import frozen_restarts_bundle, judged_outages
from tests.integration.lifecycle_world import CautiousRestarts
from warden.config import load_config
from warden.domain import events as ev
from warden.domain.errors import ValidationError
from warden.ingest.registry import SchemaRegistry
from warden.replay import replay
from warden.sim.candidate import find_candidates
from warden.sim.evaluation import LibraryScore, evaluated_data, record_evaluation, run_history
from warden.store.location import open_event_store

if TYPE_CHECKING:
    from pathlib import Path

    from warden.config import WardenConfig
    from warden.replay.agreement import Agreement

RESTART_ON_PROBE_FAILURE = """\
name: restart-on-probe-failure
trigger:
  events: [warden.probe.failed]
{condition}throttle: {{once_within: 10m}}
plan:
  steps:
    - action: restart_service
      target: "{{{{ event.data.service }}}}"
  rationale: "{{{{ event.data.service }}}} failed a probe"
  confidence: 0.9
"""


def judged_history(tmp_path: Path) -> tuple[list[ev.Event], WardenConfig]:
    """The recorded history of the judged outages, and its configuration."""
    config = judged_outages(tmp_path)
    store = open_event_store(tmp_path / "state")
    try:
        history = store.read_all()
    finally:
        store.close()
    return history, load_config(config)


def evaluated(tmp_path: Path, target: str) -> Agreement:
    history, config = judged_history(tmp_path)
    (candidate,) = find_candidates(target)
    return run_history(candidate, history, config)


def runbook(tmp_path: Path, condition: str = "") -> str:
    path = tmp_path / "candidate.yaml"
    path.write_text(RESTART_ON_PROBE_FAILURE.format(condition=condition))
    return str(path)


def test_a_runbook_that_restarts_on_every_failure_agrees_with_alice_not_with_bob(
    tmp_path: Path,
) -> None:
    result = evaluated(tmp_path, runbook(tmp_path))
    by_service = {c.service: c for c in result.comparisons}
    assert set(by_service) == {"payments", "orders"}
    assert by_service["payments"].human == "approved" and by_service["payments"].agree
    assert by_service["orders"].human == "rejected" and not by_service["orders"].agree
    assert by_service["orders"].candidate == ("restart_service(orders)",)
    assert result.to_dict() == {"agree": 1, "differ": 1, "total": 2, "human_agreement": 50.0}


def test_a_runbook_that_leaves_orders_alone_agrees_with_both(tmp_path: Path) -> None:
    only_payments = 'condition: event.data.service == "payments"\n'
    result = evaluated(tmp_path, runbook(tmp_path, only_payments))
    assert result.to_dict() == {"agree": 1, "differ": 0, "total": 1, "human_agreement": 100.0}


def test_a_bundle_that_forbids_restarts_agrees_with_the_rejection_only(tmp_path: Path) -> None:
    bundle = frozen_restarts_bundle(tmp_path / "frozen")
    result = evaluated(tmp_path, str(bundle))
    by_service = {c.service: c for c in result.comparisons}
    assert by_service["payments"].candidate == () and not by_service["payments"].agree
    assert by_service["orders"].candidate == () and by_service["orders"].agree
    assert result.human_agreement == 50.0


def test_the_recorded_event_holds_exactly_the_scores_and_fits_its_schema(tmp_path: Path) -> None:
    history = evaluated(tmp_path, runbook(tmp_path))
    (candidate,) = find_candidates(str(tmp_path / "candidate.yaml"))
    data = evaluated_data(candidate, LibraryScore(()), history)
    store = open_event_store(tmp_path / "state")
    try:
        when = datetime(2026, 12, 1, tzinfo=UTC)
        record_evaluation(store, data, when, SchemaRegistry())
        (stored,) = store.read_stream(ev.CANDIDATES_STREAM)
        broken = {**data, "library": {"right": 1, "miss": 0, "total": 1}}
        with pytest.raises(ValidationError, match="wrong"):
            record_evaluation(store, broken, when, SchemaRegistry())
    finally:
        store.close()
    assert stored.type == ev.CANDIDATE_EVALUATED
    assert stored.data == {
        "kind": "runbook",
        "name": "restart-on-probe-failure",
        "version": candidate.version,
        "library": {"right": 0, "miss": 0, "wrong": 0, "total": 0},
        "history": {"agree": 1, "differ": 1, "total": 2, "human_agreement": 50.0},
    }


class LateRestarts(CautiousRestarts):
    """A candidate agent below the built-in ones: another agent always plans first."""

    name = "late-restarts"
    priority = -100


def test_an_agent_below_the_one_that_plans_first_is_still_heard_and_never_acts(
    tmp_path: Path,
) -> None:
    history, live = judged_history(tmp_path)
    (candidate,) = find_candidates(f"{__name__}:LateRestarts")
    # Live in the replay it is never asked: the built-in agent plans every outage first.
    report = replay(history, live, agents=candidate.agents(live))
    assert {v.agent for v in report.replayed if v.agent} == {"service-down"}
    # Asked beside it, as in shadow, its restarts count against what people did.
    result = run_history(candidate, history, live)
    by_service = {c.service: c for c in result.comparisons}
    assert by_service["payments"].candidate == ("restart_service(payments)",)
    assert by_service["payments"].human == "approved" and by_service["payments"].agree
    assert by_service["orders"].human == "rejected" and not by_service["orders"].agree
    assert result.to_dict() == {"agree": 1, "differ": 1, "total": 2, "human_agreement": 50.0}
    # In shadow it never acts: no step of the replay was planned by it.
    beside = replace(live, shadow_agents=("late-restarts",))
    again = replay(history, beside, agents=candidate.agents(beside))
    assert {v.agent for v in again.replayed if v.agent} == {"service-down"}
    assert {r["name"] for r in again.shadowed} == {"late-restarts"}
