"""The CLI as a newcomer types it: -c and -s mean the same everywhere, errors keep examples."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import typer
from typer.testing import CliRunner, Result

from tests.cli import commands
from warden.cli.main import app
from warden.domain.catalog import BUILTIN_ACTIONS

if TYPE_CHECKING:
    from pathlib import Path

ENV = {"COLUMNS": "300"}


def warden(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=ENV)


ALL = commands(typer.main.get_group(app))
WITH_STATE = [(n, c) for n, c in ALL if any(p.name == "state_dir" for p in c.params)]


def test_the_audit_finds_the_commands_that_keep_state() -> None:
    names = {n for n, _ in WITH_STATE}
    assert {"incidents", "approve", "replay", "audit verify", "quarantine list", "api"} <= names


@pytest.mark.parametrize(("name", "command"), WITH_STATE, ids=[n for n, _ in WITH_STATE])
def test_every_command_with_state_takes_the_same_c_and_s(name: str, command: Any) -> None:
    options = {p.name: p for p in command.params}
    assert sorted(options["state_dir"].opts) == ["--state-dir", "-s"], name
    if name not in ("demo", "drill"):  # these write their own configuration
        assert sorted(options["config"].opts) == ["--config", "-c"], name


def config_with_state(tmp_path: Path) -> Path:
    config = tmp_path / "warden.yaml"
    config.write_text(
        "state_dir: mystate\nservices:\n  - {name: web, health: 'http://127.0.0.1:9/'}\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    "argv",
    [
        ["incidents"],
        ["replay"],
        ["report"],
        ["shadow"],
        ["versions"],
        ["rollback", "runbook", "restart-on-oom"],
        ["promote", "runbook", "restart-on-oom", "--to", "canary"],
        ["quarantine", "list"],
        ["user", "list"],
        ["api"],
        ["audit", "key"],
        ["audit", "verify", "--trust-dir", "trust"],
    ],
    ids=" ".join,
)
def test_commands_read_the_state_dir_of_the_config_they_are_given(
    tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_with_state(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = warden(*argv, "-c", str(config))
    assert ".warden" not in result.output
    assert not (tmp_path / ".warden").exists()
    if result.exit_code:  # nothing there yet: the error names the config's state_dir
        assert f"no Warden state in {tmp_path / 'mystate'}/" in result.output, result.output
    else:  # the audit keys are made, or the log is read, where the config says
        mine = tmp_path / "mystate"
        assert (mine / "audit").is_dir() or f"{mine}/audit/log.jsonl" in result.output


def test_state_dir_wins_over_the_config(tmp_path: Path) -> None:
    config = config_with_state(tmp_path)
    other = tmp_path / "elsewhere"
    result = warden("incidents", "-c", str(config), "-s", str(other))
    assert f"no Warden state in {other}/" in result.output
    trust = str(tmp_path / "trust")
    result = warden("audit", "verify", "-s", str(other), "--trust-dir", trust)  # refused once
    assert "No such option" not in result.output
    assert str(other) in result.output


def test_an_unusable_config_is_one_error_line(tmp_path: Path) -> None:
    result = warden("incidents", "-c", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "missing.yaml" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_error_messages_keep_their_examples(tmp_path: Path) -> None:
    config = tmp_path / "warden.yaml"
    config.write_text(
        "services:\n  - {name: web, health: 'http://127.0.0.1:9/',"
        " argv: 'python3 -m http.server'}\n",
        encoding="utf-8",
    )
    for argv in (
        ["run", "-c", str(config), "--metrics-port", "0"],
        ["config", "check", "-c", str(config)],
    ):
        result = warden(*argv)
        assert result.exit_code == 2
        assert "[python, -m, myservice] instead of 'python3 -m http.server'" in result.output


def test_actions_lists_the_catalog_with_its_contract() -> None:
    result = warden("actions")
    assert result.exit_code == 0, result.output
    for spec in BUILTIN_ACTIONS:
        assert spec.name in result.output
    line = next(x for x in result.output.splitlines() if "rollback_deploy" in x)
    assert "medium" in line
    assert "version (string, required)" in line
    assert "error_rate" in line
    assert "deploy_version (needs version from the run)" in line
    listed = json.loads(warden("actions", "--json").output)
    assert [a["name"] for a in listed] == sorted(a.name for a in BUILTIN_ACTIONS)
    assert next(a for a in listed if a["name"] == "stop_service")["compensation"] == "start_service"
