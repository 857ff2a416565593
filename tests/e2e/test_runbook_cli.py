"""`warden runbook check|test|explain` and `warden config check` as a user types them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from warden.cli.main import app

EXAMPLES = Path(__file__).parents[2] / "examples" / "runbooks"
runner = CliRunner()


def copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLES, tmp_path / "runbooks"))


def test_the_example_cases_pass(tmp_path: Path) -> None:
    result = runner.invoke(app, ["runbook", "test", str(copy(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "9 passed, 0 failed" in result.output


def test_a_failing_case_exits_1_and_says_why(tmp_path: Path) -> None:
    directory = copy(tmp_path)
    cases = directory / "restart-on-oom.cases.yaml"
    cases.write_text(cases.read_text().replace("decision: allow", "decision: deny", 1))
    result = runner.invoke(app, ["runbook", "test", str(directory)])
    assert result.exit_code == 1
    assert "1 failed" in result.output
    assert "expected decision deny" in result.output.replace("\n", " ").replace("│", "")


def test_a_broken_runbook_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    directory = copy(tmp_path)
    path = directory / "rollback-on-errors.yaml"
    path.write_text(path.read_text().replace("world.previous_version !=", "world.prev !="))
    result = runner.invoke(app, ["runbook", "check", str(directory)])
    assert result.exit_code == 2
    assert "rollback-on-errors.yaml line 8" in result.output
    assert "the world has no field 'prev'" in result.output
    config = tmp_path / "warden.yaml"
    config.write_text(
        'services:\n  - {name: api, health: "http://127.0.0.1:9/health"}\nrunbooks_dir: runbooks\n'
    )
    checked = runner.invoke(app, ["config", "check", "-c", str(config)])
    assert checked.exit_code == 2
    assert "rollback-on-errors.yaml line 8" in checked.output


def test_explain_shows_which_runbook_matched_and_why_the_others_did_not(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "type": "warden.alert.firing",
                "data": {
                    "alertname": "KubePodOOMKilled",
                    "service": "api",
                    "fingerprint": "f",
                    "labels": {"namespace": "prod"},
                },
            }
        )
    )
    result = runner.invoke(
        app, ["runbook", "explain", str(event), "-r", str(copy(tmp_path)), "--json"]
    )
    assert result.exit_code == 0, result.output
    verdicts = {v["runbook"]: v for v in json.loads(result.output)["verdicts"]}
    assert verdicts["restart-on-oom"]["matched"]
    assert verdicts["restart-on-oom"]["plan"]["steps"][0]["target"] == "api"
    assert not verdicts["rollback-on-errors"]["matched"]
    assert "trigger" in verdicts["rollback-on-errors"]["reason"]
