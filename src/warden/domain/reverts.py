"""The catalog step that undoes a recorded change, when one can. Pure core (domain).

Every revert puts back the value the change replaced, as recorded: a deploy is rolled
back to the previous revision, a configuration or flag value restored, a network rule or
route object re-applied, a replica count scaled back, a lowered quota raised again. A
credential change is never reverted (a revocation is a decision; an expiry is renewed by
rotation, see :func:`renewal`), nor a scheduled job's schedule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.domain.plans import Step

if TYPE_CHECKING:
    from warden.domain.changes import Change

RESTORE_BY_KIND = {
    "config": "restore_config",
    "feature_flag": "restore_flag",
    "network_rule": "restore_network_rule",
    "route": "restore_route",
}
EXPIRED_WORDS = ("expired", "expiring")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def revert(change: Change) -> Step | None:
    """The step that puts back what ``change`` replaced (None when it cannot be reverted)."""
    previous = change.previous
    if previous is None or not change.is_change:
        return None
    if change.is_deploy:
        return Step("rollback_deploy", change.service, (("version", previous),))
    if change.is_scaling:
        count = _number(previous)
        if count is None or count < 1 or not count.is_integer():
            return None
        return Step("scale_service", change.service, (("replicas", int(count)),))
    if change.kind == "quota":
        before, now = _number(previous), _number(change.value)
        if before is None or now is None or before <= now:
            return None  # a raised quota never starves anyone
        return Step("raise_quota", change.resource, (("field", change.field), ("value", previous)))
    action = RESTORE_BY_KIND.get(change.kind)
    if action is None:
        return None
    return Step(action, change.resource, (("field", change.field), ("value", previous)))


def renewal(change: Change) -> Step | None:
    """Rotation of a credential that expired (None for any other change, a revocation too)."""
    if change.kind != "credential":
        return None
    if not any(w in change.value.lower() for w in EXPIRED_WORDS):
        return None
    return Step("rotate_credential", change.resource)


__all__ = ["RESTORE_BY_KIND", "renewal", "revert"]
