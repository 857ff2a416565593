"""The scenario lab end to end: every library scenario through the real core, reduced.

Runs each scenario at the autonomous level, cut to a few simulated minutes, and prints the
score table. Only verdicts known to hold today are asserted (a plain crash is restarted,
a quiet control is left alone); everything must be free of safety violations.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.builders import LIBRARY
from warden.cli.main import app
from warden.sim.engine import Run
from warden.sim.lab import LabSettings, run_lab
from warden.sim.loader import find, load
from warden.sim.report import render_html, score_table

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REDUCED = LabSettings(
    levels=("supervised", "autonomous"), seed=7, approval_delay_s=60.0, max_duration_s=360.0
)


def test_every_library_scenario_runs_with_no_safety_violation() -> None:
    scenarios = [load(f) for f in find(LIBRARY)]
    report = run_lab(scenarios, REDUCED)
    Console(width=160).print(score_table(report))
    runs = {row["name"]: row["runs"]["autonomous"] for row in report["scenarios"]}
    assert len(runs) == len(scenarios) >= 30
    unsafe = {
        (row["name"], level): run["safety_violations"]
        for row in report["scenarios"]
        for level, run in row["runs"].items()
        if run["safety_violations"]
    }
    assert unsafe == {}
    assert runs["process-crash"]["verdict"] == "RIGHT"
    assert runs["process-crash"]["executed"][0].split()[1:3] == ["restart_service", "payments"]
    assert runs["no-fault-quiet"]["verdict"] == "RIGHT"
    assert runs["hang-deadlock"]["verdict"] == "RIGHT"
    # Under the kill switch nothing runs, whatever the verdict.
    assert runs["kill-switch-engaged"]["actions"] == 0
    summary = report["summary"]["autonomous"]
    assert summary["RIGHT"] + summary["MISS"] + summary["WRONG"] == len(scenarios)
    page = render_html(report)
    assert page.count("<svg") == 4
    assert "process-crash" in page


def test_the_same_seed_gives_the_same_report() -> None:
    chosen = [
        load(LIBRARY / f"{n}.yaml")
        for n in ("process-crash", "deploy-error-rate", "backlog-slow-consumer")
    ]
    settings = LabSettings(levels=("supervised", "autonomous"), seed=3, max_duration_s=400.0)
    first = json.dumps(run_lab(chosen, settings), sort_keys=True)
    again = json.dumps(run_lab(chosen, settings), sort_keys=True)
    assert first == again


def test_a_restart_that_relapses_is_not_repeated_and_the_change_is_reverted() -> None:
    """GC thrash from a release: a restart heals for 240 s, then it relapses.

    The lab sees the relapse, and Warden rolls the release back instead of restarting again.
    """
    trace = Run(load(LIBRARY / "hang-gc-pauses.yaml"), "autonomous", 0).execute()
    (gc,) = [f for f in trace.faults if f.id == "gc-thrash"]
    actions = [m.action for m in trace.executed]
    assert actions.count("restart_service") == 1
    assert gc.relapses >= 1
    assert "rollback_deploy" in actions and gc.fixed


def test_the_cli_writes_the_reports_and_exits_by_the_verdicts(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "report"
    ok = runner.invoke(
        app,
        ["simulate", str(LIBRARY / "process-crash.yaml"), "--autonomy", "autonomous",
         "--out", str(out), "--seed", "1"],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "RIGHT" in ok.output
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["autonomous"]["RIGHT"] == 1
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    # A scenario whose author forbids the restart Warden makes: a WRONG run exits 1.
    text = (LIBRARY / "process-crash.yaml").read_text()
    forbidding = tmp_path / "forbidding.yaml"
    forbidding.write_text(
        text.replace("name: process-crash", "name: process-crash-forbidden").replace(
            "forbidden: [", 'forbidden: ["restart_service:payments", '
        )
    )
    wrong = runner.invoke(
        app,
        ["simulate", str(forbidding), "--autonomy", "autonomous",
         "--out", str(tmp_path / "w"), "--max-duration", "400"],
    )  # fmt: skip
    assert wrong.exit_code == 1, wrong.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\n")
    refused = runner.invoke(app, ["simulate", str(bad)])
    assert refused.exit_code == 2
    assert "bad.yaml: title: a required field is missing" in refused.output
    levels = runner.invoke(app, ["simulate", str(bad), "--autonomy", "yolo"])
    assert levels.exit_code == 2
    schema = runner.invoke(app, ["simulate", "--schema"])
    assert schema.exit_code == 0
    assert json.loads(schema.output)["properties"]["version"]["const"] == 1
