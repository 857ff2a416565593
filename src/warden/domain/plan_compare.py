"""Comparing a candidate's plan steps with the live or recorded ones: one rule. Pure core (domain).

`warden shadow` (a candidate beside the live side, :mod:`warden.domain.promotion`) and
`warden evaluate` (a candidate against history, :mod:`warden.replay.agreement`) both ask
the same question of two step lists; :func:`compare_steps` answers it for both. Two plans
are the same when they have the same steps in the same order, a step being its action, its
target and its parameters (sorted, as text). Each caller keeps the form it shows a step in
(a triple, or ``action(target: k=v)``); :func:`step_key` is the triple.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping, Sequence

SAME = "same plan"
DIFFERENT = "different plan"
ONLY_CANDIDATE = "only shadow"  # the candidate proposed where the other side had no plan
ONLY_LIVE = "only live"  # the other side had a plan where the candidate proposed none
NEITHER = "neither"  # no plan on either side

StepKey = tuple[str, str, str]
"""A step as compared: (action, target, parameters as ``k=v`` text, sorted, comma-joined)."""


def compare_steps(live: Sequence[Hashable], candidate: Sequence[Hashable]) -> str:
    """The verdict on two plans' steps: :data:`SAME`, :data:`DIFFERENT`, or who had none.

    ``live`` is the side the candidate is measured against (the live version, or what
    the record says was done); both lists are in plan order, in the same form.
    """
    if not live and not candidate:
        return NEITHER
    if not live:
        return ONLY_CANDIDATE
    if not candidate:
        return ONLY_LIVE
    return SAME if tuple(live) == tuple(candidate) else DIFFERENT


def same_steps(live: Sequence[Hashable], candidate: Sequence[Hashable]) -> bool:
    """Whether the two plans do the same (no plan on either side counts as the same)."""
    return compare_steps(live, candidate) in (SAME, NEITHER)


def step_key(action: str, target: str, params: Mapping[str, Any] | None) -> StepKey:
    """One step as :func:`compare_steps` compares it."""
    items = (params or {}).items()
    shown = ",".join(f"{k}={v}" for k, v in sorted((str(k), str(v)) for k, v in items))
    return (str(action), str(target), shown)


def plan_keys(plan: Mapping[str, Any] | None) -> tuple[StepKey, ...]:
    """A stored plan's steps (its JSON form) as compared; () for no plan."""
    if not plan:
        return ()
    keys = []
    for step in plan.get("steps") or ():
        params = step.get("params") or {}
        found = params if isinstance(params, dict) else dict(params)
        keys.append(step_key(step.get("action", ""), step.get("target", ""), found))
    return tuple(keys)


__all__ = [
    "DIFFERENT",
    "NEITHER",
    "ONLY_CANDIDATE",
    "ONLY_LIVE",
    "SAME",
    "StepKey",
    "compare_steps",
    "plan_keys",
    "same_steps",
    "step_key",
]
