"""`warden policy check|test|explain` as a user types them."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from warden.cli.main import app
from warden.governance.policy import BUILTIN_BUNDLE

if TYPE_CHECKING:
    from pathlib import Path

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_builtin_bundle_checks_and_its_tests_pass() -> None:
    code, out = invoke("policy", "check", str(BUILTIN_BUNDLE))
    assert code == 0, out
    assert "valid" in out
    assert "policies, version default@" in out
    code, out = invoke("policy", "test", str(BUILTIN_BUNDLE))
    assert code == 0, out
    assert "10 passed, 0 failed" in out


def test_a_failing_case_fails_the_run(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(BUILTIN_BUNDLE, bundle)
    (bundle / "tests" / "mine.tests.yaml").write_text(
        "cases:\n"
        "  - name: wrong on purpose\n"
        "    principal: service-down\n"
        "    action: restart_service\n"
        "    resource: payments\n"
        "    expect: deny\n"
    )
    code, out = invoke("policy", "test", str(bundle))
    assert code == 1
    assert "expected deny, got allow" in out
    assert "10 passed, 1 failed" in out


def test_a_case_with_a_mistyped_context_fails_strictly(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(BUILTIN_BUNDLE, bundle)
    (bundle / "tests" / "typo.tests.yaml").write_text(
        "cases:\n"
        "  - name: confidence as text\n"
        "    action: restart_service\n"
        "    resource: payments\n"
        "    context: {confidence_pct: high}\n"
        "    expect: allow\n"
    )
    code, out = invoke("policy", "test", str(bundle))
    assert code == 1
    assert "policy-error" in out


def test_broken_bundle_is_refused_with_the_engine_message(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(BUILTIN_BUNDLE, bundle)
    (bundle / "bad.cedar").write_text(
        '@id("typo") permit (principal, action, resource) when { context.confidance > 1 };'
    )
    code, out = invoke("policy", "check", str(bundle))
    assert code == 2
    assert "does not validate" in out
    assert "confidance" in out


def test_explain_lists_matched_and_unmatched_policies() -> None:
    code, out = invoke(
        "policy", "explain", "--action", "restart_service", "--resource", "payments",
        "--set", "recent_actions_on_target=3", "--source",
    )  # fmt: skip
    assert code == 0, out
    assert "decision: deny" in out
    lines = {line.split("│")[2].strip(): line for line in out.splitlines() if "│" in line}
    assert "yes" in lines["restart-storm"]
    assert "yes" in lines["autonomous-low-risk"]
    assert "no" in lines["change-freeze"]
    assert "forbid(principal, action, resource)" in out


def test_explain_refuses_unknown_context_keys() -> None:
    code, out = invoke(
        "policy", "explain", "--action", "restart_service", "--resource", "p", "--set", "foo=1"
    )
    assert code == 2
    assert "with a key among: environment, domain" in out


def test_explain_takes_the_risk_from_the_catalog_and_names_unknown_actions() -> None:
    code, out = invoke("policy", "explain", "--action", "rollback_deploy", "--resource", "p")
    assert code == 0, out
    assert "policy-error" not in out and "error:" not in out
    assert "decision: needs_approval(1)" in out  # rollback_deploy is a medium-risk action
    code, out = invoke("policy", "explain", "--action", "rollback_deploi", "--resource", "p")
    assert code == 2
    assert "not in the catalog (did you mean 'rollback_deploy'?)" in out
