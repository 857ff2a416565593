"""The one rule by which shadow and evaluation compare a candidate's plan with another."""

from __future__ import annotations

import pytest

from warden.domain import promotion as pr
from warden.domain.plan_compare import (
    DIFFERENT,
    NEITHER,
    ONLY_CANDIDATE,
    ONLY_LIVE,
    SAME,
    compare_steps,
    plan_keys,
    same_steps,
    step_key,
)
from warden.domain.plans import Plan, Step
from warden.replay.agreement import APPROVED, NONE, REJECTED, agrees

RESTART = step_key("restart_service", "payments", {})
SCALE = step_key("scale_out", "orders", {"replicas": 3, "zone": "b"})


@pytest.mark.parametrize(
    ("live", "candidate", "verdict"),
    [
        ((RESTART,), (RESTART,), SAME),
        ((RESTART, SCALE), (RESTART, SCALE), SAME),
        ((RESTART, SCALE), (SCALE, RESTART), DIFFERENT),  # order matters
        ((RESTART,), (RESTART, SCALE), DIFFERENT),  # one more step is another plan
        ((RESTART,), (SCALE,), DIFFERENT),
        ((), (RESTART,), ONLY_CANDIDATE),
        ((RESTART,), (), ONLY_LIVE),
        ((), (), NEITHER),
    ],
)
def test_two_plans_get_one_verdict(
    live: tuple[object, ...], candidate: tuple[object, ...], verdict: str
) -> None:
    assert compare_steps(live, candidate) == verdict
    assert same_steps(live, candidate) is (verdict in (SAME, NEITHER))


def test_a_step_is_its_action_target_and_sorted_parameters() -> None:
    assert SCALE == ("scale_out", "orders", "replicas=3,zone=b")
    assert step_key("scale_out", "orders", {"zone": "b", "replicas": "3"}) == SCALE
    assert step_key("scale_out", "orders", {"replicas": 4, "zone": "b"}) != SCALE
    assert step_key("restart_service", "payments", None) == RESTART
    # A stored plan (its JSON, params as a mapping or as pairs) gives the same keys.
    plan = Plan("a", (Step("scale_out", "orders", (("replicas", 3), ("zone", "b"))),), "", (), 0.9)
    assert plan_keys(plan.to_dict()) == (SCALE,)
    pairs = [["zone", "b"], ["replicas", 3]]
    stored = {"steps": [{"action": "scale_out", "target": "orders", "params": pairs}]}
    assert plan_keys(stored) == (SCALE,)
    assert plan_keys(None) == () and plan_keys({}) == ()


def test_shadow_and_evaluation_give_the_same_answer_for_the_same_plans() -> None:
    cases = [((RESTART,), (RESTART,)), ((RESTART,), (SCALE,)), ((RESTART,), ()), ((), ())]
    for live, candidate in cases:
        proposal = pr.Proposal("payments", "t1", ("e1",), candidate)
        incident = pr.LiveIncident("i1", "payments", "t1", ("e1",), live)
        verdicts = [c.verdict for c in pr.compare([proposal], [incident])]
        same = same_steps(live, candidate)
        # Shadow: same plan exactly when the steps are the same (no verdict for two silences).
        assert verdicts == ([] if not live and not candidate else [compare_steps(live, candidate)])
        # Evaluation: approved or Warden alone agree exactly then; a rejection the opposite.
        assert agrees(live, APPROVED, candidate) is same
        assert agrees(live, NONE, candidate) is same
        assert agrees(live, REJECTED, candidate) is not same
