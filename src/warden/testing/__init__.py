"""Test support shipped with Warden so users can test their agents and policies.

Fakes here are real, small implementations of the ports that stand for systems outside
Warden (the services it heals); Warden's own store, gate and policy engine are always
the real ones (``MemoryEventStore`` passes the store's contract suite). ``ManualClock``
lives in :mod:`warden.ports`, so replay and simulation use it too; it is re-exported here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from warden.domain.ids import derived_id
from warden.ingest.probes import ProbeResult
from warden.ports import ActionResult, ManualClock


class CountingIds:
    """Ids that are the same on every run: the n-th id of a seed is always the same."""

    def __init__(self, seed: str = "") -> None:
        self.seed = seed
        self._count = itertools.count(1)

    def new_id(self) -> str:
        """The next id of the sequence, 32 hex digits."""
        return derived_id("id", self.seed, str(next(self._count)))


@dataclass
class ScriptedProbe:
    """A probe whose answer the test sets: healthy, or failing with ``error``."""

    healthy: bool = True
    error: str = "connection refused"
    checks: int = 0  # how many times it was asked

    def check(self) -> ProbeResult:
        """The scripted answer."""
        self.checks += 1
        if self.healthy:
            return ProbeResult(True, 1.0, 200, "")
        return ProbeResult(False, 1.0, None, self.error)


@dataclass
class RecordingAdapter:
    """Pretends to act on services; records every call and heals the matching probe.

    ``script`` scripts outcomes per action, consumed in order: ``"ok"``, ``"retry"`` (a
    retryable failure), ``"fail"`` (a permanent one); ``checks`` answers crash
    reconciliation (``check``) per action: True, False or None (cannot tell); ``undo``
    gives the ``undo_params`` a successful run of an action reports (what it replaced).
    """

    probes: dict[str, ScriptedProbe] = field(default_factory=dict)
    fail: bool = False
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    script: dict[str, list[str]] = field(default_factory=dict)
    checks: dict[str, bool | None] = field(default_factory=dict)
    undo: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, action: str, target: str, params: dict[str, Any] | None = None) -> bool | None:
        """Whether the effect of ``action`` holds, as scripted."""
        return self.checks.get(action)

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Record the call; a start or restart makes the target's probe healthy."""
        params = dict(params)
        self.keys.append(str(params.pop("idempotency_key", "")))
        self.calls.append((action, target, params))
        planned = self.script.get(action)
        outcome = planned.pop(0) if planned else ("fail" if self.fail else "ok")
        if outcome != "ok":
            retryable = outcome == "retry"
            return ActionResult(
                False, f"{action} {target} failed (scripted)", {"retryable": retryable}
            )
        probe = self.probes.get(target)
        if probe is not None and action in ("start_service", "restart_service"):
            probe.healthy = True
        if probe is not None and action == "stop_service":
            probe.healthy = False
        output = {"undo_params": dict(self.undo[action])} if action in self.undo else {}
        return ActionResult(True, f"{action} {target} done", output)


__all__ = ["CountingIds", "ManualClock", "RecordingAdapter", "ScriptedProbe"]
