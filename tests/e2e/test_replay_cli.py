"""`warden replay` as a user types it: same decisions, a candidate's differences, bad input."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from tests.builders import frozen_restarts_bundle, recorded_outage
from warden.cli.main import app
from warden.governance.policy import BUILTIN_BUNDLE

if TYPE_CHECKING:
    from pathlib import Path

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_the_history_replays_to_the_same_decisions(tmp_path: Path) -> None:
    config = recorded_outage(tmp_path)
    code, out = invoke("replay", "-s", str(tmp_path / "state"), "-c", str(config))
    assert code == 0, out
    assert "1 incidents recorded, 1 in the replay" in out
    assert "same decisions as recorded" in out


def test_a_candidate_bundle_lists_its_differences_and_exits_1(tmp_path: Path) -> None:
    config = recorded_outage(tmp_path)
    candidate = tmp_path / "next"
    shutil.copytree(BUILTIN_BUNDLE, candidate)
    (candidate / "supervised.cedar").write_text(
        '@id("humans-restart") @outcome("needs_approval") @approvers("1")\n'
        '@message("every restart waits for a human")\n'
        'permit (principal, action == Action::"restart_service", resource);\n'
        '@id("no-autonomous-restarts") @message("not on its own")\n'
        'forbid (principal, action == Action::"restart_service", resource)'
        " when { context.approvals == 0 };\n"
    )
    args = ("replay", "-s", str(tmp_path / "state"), "-c", str(config), "--policy-dir")
    code, out = invoke(*args, str(candidate))
    assert code == 1, out
    assert "differences" in out
    assert "no-autonomous-restarts" in out
    code, out = invoke(*args, str(candidate), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["identical"] is False
    assert {d["what"] for d in report["differences"]} >= {"decisions", "final state"}


def test_bad_input_gets_a_readable_error(tmp_path: Path) -> None:
    code, out = invoke("replay", "-s", str(tmp_path / "nothing"), "-c", str(tmp_path / "no.yaml"))
    assert code == 2
    assert "no " in out and "give --config" in out
    config = recorded_outage(tmp_path)
    code, out = invoke("replay", "-s", str(tmp_path / "empty"), "-c", str(config))
    assert code == 2
    assert "no Warden state in" in out
    code, out = invoke(
        "replay", "-s", str(tmp_path / "state"), "-c", str(config), "--policy-dir", "missing"
    )
    assert code == 2
    assert "no policy bundle at missing/" in out


def test_warden_shadow_lists_where_the_candidate_decided_otherwise(tmp_path: Path) -> None:
    frozen_restarts_bundle(tmp_path / "next")
    recorded_outage(tmp_path, "shadow_policy_dir: next\n")
    code, out = invoke("shadow", "-s", str(tmp_path / "state"))
    assert code == 0, out
    assert "1 steps decided by both" in out and "agreed on 0 (0%)" in out
    assert "allow (autonomous-low-risk)" in out
    assert "deny (no-restarts)" in out
    code, out = invoke("shadow", "-s", str(tmp_path / "state"), "--json")
    report = json.loads(out)
    assert (report["compared"], report["agree"]) == (1, 0)
    assert report["differences"][0]["shadow"]["policy"] == "no-restarts"


def test_warden_shadow_without_a_shadow_bundle_says_how_to_set_one(tmp_path: Path) -> None:
    recorded_outage(tmp_path)
    code, out = invoke("shadow", "-s", str(tmp_path / "state"))
    assert code == 0
    assert "set shadow_policy_dir in warden.yaml" in out
    code, out = invoke("shadow", "-s", str(tmp_path / "none"))
    assert code == 2
    assert "no Warden state in" in out
