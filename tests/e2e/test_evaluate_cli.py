"""`warden evaluate` as a user types it: the examples, a bad runbook, an agent, --record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from tests.builders import LIBRARY, judged_outages, register
from warden.cli.main import app
from warden.domain import events as ev
from warden.store.location import open_event_store

if TYPE_CHECKING:
    from tests.builders import Person

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "runbooks"
RESTART_ON_EVERY_FAILURE = """\
name: restart-on-every-failure
trigger:
  events: [warden.probe.failed]
throttle: {once_within: 10m}
plan:
  steps:
    - action: restart_service
      target: "{{ event.data.service }}"
  rationale: "{{ event.data.service }} failed a probe"
  confidence: 0.9
"""
QUIET_AGENT = """\
class Quiet:
    name = "quiet"
    handles = frozenset()
    priority = 0

    def detect(self, world):
        return []

    def propose(self, incident, world):
        return None


class Lazy(Quiet):
    name = "service-down"  # in place of the built-in agent of that name
    handles = frozenset({"service_down"})


class Chatty(Quiet):
    name = "chatty"
    slow = True  # asks a model endpoint
"""


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def library(tmp_path: Path, *names: str) -> Path:
    """A few scenarios of the library, copied (the whole library takes half a minute)."""
    chosen = tmp_path / "scenarios"
    chosen.mkdir()
    for name in names:
        shutil.copy(LIBRARY / f"{name}.yaml", chosen)
    return chosen


def bad_runbook(tmp_path: Path) -> Path:
    path = tmp_path / "restart-on-every-failure.yaml"
    path.write_text(RESTART_ON_EVERY_FAILURE)
    return path


def test_the_example_runbooks_have_no_wrong_on_the_scenarios_they_touch(tmp_path: Path) -> None:
    scenarios = library(
        tmp_path, "deploy-error-rate", "third-party-outage", "feature-flag-change",
        "revoked-credentials", "process-crash",
    )  # fmt: skip
    code, out = invoke("evaluate", str(EXAMPLES), "--scenarios", str(scenarios), "--json")
    assert code == 0, out
    scores = {c["name"]: c for c in json.loads(out)["candidates"]}
    assert set(scores) == {"restart-on-oom", "rollback-on-errors"}
    for found in scores.values():
        assert found["library"]["wrong"] == 0, found["scenarios"]
        assert found["library"]["total"] == 5
        assert found["history"] == {"agree": 0, "differ": 0, "total": 0, "human_agreement": None}


@pytest.mark.slow
def test_the_example_runbooks_have_no_wrong_on_the_whole_library() -> None:
    code, out = invoke("evaluate", str(EXAMPLES), "--scenarios", str(LIBRARY))
    assert code == 0, out
    assert "runbook rollback-on-errors" in out and "runbook restart-on-oom" in out
    assert "WRONG" in out


def test_a_runbook_that_restarts_on_every_failure_is_wrong_and_exits_1(tmp_path: Path) -> None:
    scenarios = library(tmp_path, "partition-zone", "failing-dependency-callers-first")
    candidate = str(bad_runbook(tmp_path))
    code, out = invoke("evaluate", candidate, "--scenarios", str(scenarios))
    assert code == 1, out
    assert "scenarios restart-on-every-failure changed (and any WRONG)" in out
    assert "ran forbidden restart_service" in out
    code, out = invoke("evaluate", candidate, "--scenarios", str(scenarios), "--json")
    assert code == 1
    (found,) = json.loads(out)["candidates"]
    assert found["library"] == {"right": 0, "miss": 0, "wrong": 2, "total": 2}
    assert sorted(found["changed"]) == ["failing-dependency-callers-first", "partition-zone"]
    assert {s["baseline"] for s in found["scenarios"]} == {"RIGHT"}


def test_history_is_compared_and_recorded_with_an_operators_token(tmp_path: Path) -> None:
    config = judged_outages(tmp_path)
    state = tmp_path / "state"
    store = open_event_store(state)
    try:
        # Registered when the history ends: a replay runs on to its last recorded input.
        last = store.read_all()[-1].moment
        olga: Person = register(store, "olga", "operator", last)
        viewer: Person = register(store, "val", "viewer", last)
    finally:
        store.close()
    scenarios = library(tmp_path, "process-crash")
    args = ["evaluate", str(bad_runbook(tmp_path)), "--scenarios", str(scenarios)]
    args += ["-s", str(state), "-c", str(config)]
    code, out = invoke(*args)
    assert code == 0, out
    assert "50%" in out and "past incidents where restart-on-every-failure differs" in out
    code, out = invoke(*args, "--record")
    assert code == 2 and "no credential given" in out
    code, out = invoke(*args, "--record", "--token-file", str(viewer.token_file(tmp_path)))
    assert code == 2 and "evaluate" in out
    code, out = invoke(*args, "--record", "--token-file", str(olga.token_file(tmp_path)))
    assert code == 0, out
    assert "recorded 1 evaluation(s)" in out
    store = open_event_store(state)
    try:
        (recorded,) = store.read_stream(ev.CANDIDATES_STREAM)
    finally:
        store.close()
    assert recorded.type == ev.CANDIDATE_EVALUATED
    assert recorded.data["library"] == {"right": 1, "miss": 0, "wrong": 0, "total": 1}
    assert recorded.data["history"] == {
        "agree": 1, "differ": 1, "total": 2, "human_agreement": 50.0,
    }  # fmt: skip
    assert set(recorded.data) == {"kind", "name", "version", "library", "history"}


def test_an_agent_plugin_is_scored_and_a_model_agent_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "candidate_agents.py").write_text(QUIET_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    scenarios = library(tmp_path, "process-crash", "no-fault-quiet")
    code, out = invoke(
        "evaluate", "candidate_agents:Quiet", "--scenarios", str(scenarios), "--json"
    )
    assert code == 0, out
    (found,) = json.loads(out)["candidates"]
    assert found["kind"] == "agent" and found["name"] == "quiet"
    assert found["version"].startswith("quiet@")
    assert found["library"] == {"right": 2, "miss": 0, "wrong": 0, "total": 2}
    assert found["changed"] == []
    code, out = invoke("evaluate", "candidate_agents:Lazy", "--scenarios", str(scenarios), "--json")
    assert code == 0, out
    (found,) = json.loads(out)["candidates"]
    assert found["library"] == {"right": 1, "miss": 1, "wrong": 0, "total": 2}
    assert found["changed"] == ["process-crash"]
    code, out = invoke("evaluate", "candidate_agents:Chatty", "--scenarios", str(scenarios))
    assert code == 2
    assert "asks a model endpoint; evaluation never calls one" in out


def test_bad_input_gets_one_readable_line(tmp_path: Path) -> None:
    code, out = invoke("evaluate", str(tmp_path / "nothing.txt"))
    assert code == 2 and "no runbook, policy bundle or agent" in out
    code, out = invoke("evaluate", "no_such_module:Agent")
    assert code == 2 and "cannot be loaded" in out
    code, out = invoke("evaluate", str(EXAMPLES), "--record")
    assert code == 2 and "--record needs the state" in out
    code, out = invoke("evaluate", str(EXAMPLES), "--autonomy", "bold")
    assert code == 2 and "--autonomy 'bold'" in out
