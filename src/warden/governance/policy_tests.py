"""Policy test cases that users keep next to their policies, and their runner. Control plane.

A test file (``*.tests.yaml``) lists requests with the decision each must get::

    defaults:
      principal: service-down
      context: {environment: production, autonomy: autonomous}
    cases:
      - name: a confident restart runs on its own
        action: restart_service
        resource: payments
        context: {confidence_pct: 95}
        expect: allow
        policies: [autonomous-low-risk]      # optional: exactly these matched
      - name: stopping needs two people
        action: stop_service
        resource: payments
        expect: needs_approval(2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from warden.domain.decisions import outcome_label
from warden.domain.errors import ConfigError
from warden.governance.policy import PolicyBundle, PolicyRequest, Verdict

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_CONTEXT: dict[str, Any] = {
    "environment": "development",
    "domain": "default",
    "autonomy": "autonomous",
    "risk": "low",
    "idempotent": False,
    "confidence_pct": 90,
    "severity": "major",
    "blast_radius_pct": 10,
    "fleet_size": 10,
    "recent_actions_on_target": 0,
    "recent_actions_of_action": 0,
    "change_freeze": False,
    "approvals": 0,
    "approval_roles": [],
}
_EXPECT = re.compile(r"^(allow|deny|needs_approval)(?:\((\d+)\))?$")


@dataclass(frozen=True, slots=True)
class PolicyCase:
    """One request and the decision it must get."""

    file: str
    name: str
    request: PolicyRequest
    outcome: str
    approvers: int | None
    policies: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What the bundle said for one case, and whether that was expected."""

    case: PolicyCase
    verdict: Verdict
    passed: bool
    why: str


def load_cases(path: Path) -> list[PolicyCase]:
    """Read one test file; every mistake names the file and the case."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("cases"), list):
        raise ConfigError(f"{path}: expected a mapping with a list of 'cases'")
    defaults = raw.get("defaults") or {}
    cases = []
    for i, item in enumerate(raw["cases"]):
        where = f"{path}: cases[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = set(item) - {"name", "principal", "action", "resource", "context", "expect",
                               "policies"}  # fmt: skip
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        match = _EXPECT.match(str(item.get("expect", "")))
        if match is None:
            wrong = item.get("expect")
            raise ConfigError(
                f"{where}: expect must be allow, deny or needs_approval(n), not {wrong!r}"
            )
        for key in ("action", "resource"):
            if not isinstance(item.get(key), str):
                raise ConfigError(f"{where}: {key} is required")
        context = {
            **DEFAULT_CONTEXT,
            **(defaults.get("context") or {}),
            **(item.get("context") or {}),
        }
        policies = item.get("policies")
        cases.append(
            PolicyCase(
                file=path.name,
                name=str(item.get("name", f"case {i}")),
                request=PolicyRequest(
                    principal=str(item.get("principal", defaults.get("principal", "agent"))),
                    action=item["action"],
                    resource=item["resource"],
                    context=context,
                ),
                outcome=match.group(1),
                approvers=int(match.group(2)) if match.group(2) else None,
                policies=tuple(map(str, policies)) if isinstance(policies, list) else None,
            )
        )
    return cases


def run_case(bundle: PolicyBundle, case: PolicyCase, entities: Any = None) -> CaseResult:
    """Evaluate one case strictly (the request is checked against the schema too)."""
    verdict = bundle.evaluate(case.request, entities, strict=True)
    problems = []
    if verdict.outcome.value != case.outcome:
        got = outcome_label(verdict.outcome.value, verdict.approvers)
        problems.append(f"expected {case.outcome}, got {got}")
    elif case.approvers is not None and verdict.approvers != case.approvers:
        problems.append(f"expected {case.approvers} approvers, got {verdict.approvers}")
    matched = tuple(r.policy_id for r in verdict.reasons)
    if case.policies is not None and sorted(matched) != sorted(case.policies):
        problems.append(f"expected policies {list(case.policies)}, matched {list(matched)}")
    return CaseResult(case, verdict, not problems, "; ".join(problems))


def find_test_files(directory: Path) -> list[Path]:
    """Every ``*.tests.yaml`` in the bundle directory or its ``tests/`` folder."""
    return sorted([*directory.glob("*.tests.yaml"), *directory.glob("tests/*.tests.yaml")])
