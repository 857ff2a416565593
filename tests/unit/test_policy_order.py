"""A decision's reasons, and so its label, do not depend on the order policies are written in.

Cedar reports the policies that matched in no fixed order (it changes from one process to
the next); the bundle ranks them: forbids, then approvals (most approvers first), then
allows, by id within each.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from warden.domain.decisions import Outcome
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle, PolicyRequest

if TYPE_CHECKING:
    from pathlib import Path

# Every one of these matches CONTEXT; they decide needs_approval(2) unless a forbid is in.
POLICIES = {
    "allow-b": '@id("allow-b") @message("b") permit (principal, action, resource);',
    "allow-a": '@id("allow-a") @message("a") permit (principal, action, resource);',
    "ask-one": (
        '@id("ask-one") @outcome("needs_approval") @approvers("1") @message("one")'
        " permit (principal, action, resource);"
    ),
    "ask-two": (
        '@id("ask-two") @outcome("needs_approval") @approvers("2") @message("two")'
        " permit (principal, action, resource);"
    ),
}
FORBIDS = {
    "stop-z": '@id("stop-z") @message("z") forbid (principal, action, resource);',
    "stop-y": (
        '@id("stop-y") @message("y") forbid (principal, action, resource)'
        " when { context.change_freeze };"
    ),
}
CONTEXT = {
    "autonomy": "autonomous",
    "risk": "low",
    "confidence_pct": 90,
    "blast_radius_pct": 10,
    "recent_actions_on_target": 0,
    "change_freeze": True,
    "environment": "staging",
    "severity": "major",
}


def write_bundle(directory: Path, names: list[str], files: int) -> PolicyBundle:
    """The named policies in the given order, spread over ``files`` files."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    shutil.copy(BUILTIN_BUNDLE / "warden.cedarschema", directory / "warden.cedarschema")
    texts = {**POLICIES, **FORBIDS}
    for n in range(files):
        chosen = names[n::files]
        (directory / f"{n}.cedar").write_text("\n".join(texts[name] for name in chosen) + "\n")
    return PolicyBundle(directory, "order")


def ask(bundle: PolicyBundle) -> tuple[Outcome, list[str], int]:
    verdict = bundle.evaluate(PolicyRequest("service-down", "restart_service", "payments", CONTEXT))
    return verdict.outcome, [r.policy_id for r in verdict.reasons], verdict.approvers


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(sorted(POLICIES)), files=st.integers(1, 3))
def test_approval_outcome_names_the_deciding_policy_first_whatever_the_order(
    tmp_path_factory: object, order: list[str], files: int
) -> None:
    directory = tmp_path_factory.mktemp("bundle")  # type: ignore[attr-defined]
    bundle = write_bundle(directory / "b", order, files)
    assert ask(bundle) == (
        Outcome.NEEDS_APPROVAL,
        ["ask-two", "ask-one", "allow-a", "allow-b"],
        2,
    )


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(sorted({**POLICIES, **FORBIDS})), files=st.integers(1, 3))
def test_deny_names_the_forbids_first_then_the_permits_they_overrode(
    tmp_path_factory: object, order: list[str], files: int
) -> None:
    directory = tmp_path_factory.mktemp("bundle")  # type: ignore[attr-defined]
    bundle = write_bundle(directory / "b", order, files)
    outcome, reasons, _ = ask(bundle)
    assert outcome is Outcome.DENY
    assert reasons == ["stop-y", "stop-z", "ask-two", "ask-one", "allow-a", "allow-b"]


def test_a_bundle_keeps_its_policies_in_the_order_they_are_written(tmp_path: Path) -> None:
    # explain and policy tests list policies in this order.
    order = ["stop-z", "allow-b", "ask-one", "allow-a", "ask-two", "stop-y"]
    bundle = write_bundle(tmp_path / "b", order, 1)
    assert [p.id for p in bundle.policies.values()] == order
