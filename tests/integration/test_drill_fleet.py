"""The drill fleet's files: a configuration Warden loads, a bundle whose cases pass."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from warden.config import load_config
from warden.demo.drill_fleet import DRILL_TOKEN_ENV, FLEET_FILE, MANAGED, DrillFleet
from warden.governance.policy import PolicyBundle
from warden.governance.policy_tests import find_test_files, load_cases, run_case

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_the_written_config_loads_and_runs_all_but_the_outside_bank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = DrillFleet.create(tmp_path / "drill")
    monkeypatch.setenv(DRILL_TOKEN_ENV, fleet.token)
    config = load_config(fleet.write("autonomous", builtin_policies=False))
    assert [s.name for s in config.services if s.managed] == list(MANAGED)
    assert not config.service("bank").managed
    assert config.policy_dir == fleet.state_dir / "drill-policies"
    # Services report with the token Warden's webhook checks, never Warden's own secrets.
    env = dict(config.service("orders").env)
    assert env["WARDEN_REPORT_TOKEN"] == fleet.token
    senders = config.sources["webhook"]["senders"]
    assert senders["fleet"]["secret_env"] == DRILL_TOKEN_ENV
    # Warden's deploy action reaches orders' admin route, naming the target it acts on.
    rollback = config.adapters["actions"]["rollback_deploy"]
    assert rollback["url"] == fleet.url("orders", "/admin/deploy")
    assert rollback["body"]["service"] == "{target}"
    found = json.loads((fleet.state_dir / FLEET_FILE).read_text())
    assert found["ready"] is False and set(found["services"]) == {*MANAGED, "bank"}
    assert DrillFleet.from_file(fleet.state_dir / FLEET_FILE).ports == fleet.ports


def test_builtin_policies_leave_the_policy_dir_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = DrillFleet.create(tmp_path / "drill")
    monkeypatch.setenv(DRILL_TOKEN_ENV, fleet.token)
    config = load_config(fleet.write("supervised", builtin_policies=True))
    assert config.policy_dir is None
    assert config.autonomy == "supervised"


def test_the_drill_bundle_passes_its_own_cases(tmp_path: Path) -> None:
    fleet = DrillFleet.create(tmp_path / "drill")
    fleet.write("autonomous", builtin_policies=False)
    bundle_dir = fleet.state_dir / "drill-policies"
    bundle = PolicyBundle(bundle_dir)
    [cases_file] = find_test_files(bundle_dir)
    cases = load_cases(cases_file)
    assert len(cases) == 5
    failed = [r for r in (run_case(bundle, c) for c in cases) if not r.passed]
    assert failed == []
