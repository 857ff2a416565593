"""The loop's settings and what it folds from the log. Runtime (shell)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from warden.domain import changes as change_fold
from warden.domain import control, isolation
from warden.domain import health as health_fold
from warden.domain import signals as sig
from warden.domain import users as users_fold
from warden.domain.evidence import DEFAULT_FAILURE_THRESHOLD
from warden.domain.lifecycle import LifecycleSettings
from warden.domain.relapse import DEFAULT_RELAPSE_WINDOW_S
from warden.governance.approvals import ApprovalSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.incident import Incident
    from warden.domain.relapse import Remedy
    from warden.governance.context import ActionRecord, FreezeWindow


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The knobs of the loop that are not the planes' own."""

    environment: str = "development"
    autonomy: str = "autonomous"
    verification_timeout_s: float = 15.0
    verification_probe_every_s: float = 0.2
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    freezes: tuple[FreezeWindow, ...] = ()
    policy_poll_s: float = 1.0
    autonomy_rules: tuple[control.AutonomyRule, ...] = ()
    agent_caps: tuple[tuple[str, str], ...] = ()
    desired: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    limits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    lease_ttl_s: float = 30.0
    lease_wait_s: float = 120.0
    compensation_hold_s: float = 600.0  # a compensation the kill switch holds longer escalates
    action_workers: int = 0  # threads acting on intents off the loop (0: in the loop's own)
    unmanaged: frozenset[str] = frozenset()  # watched, never restarted (managed: false)
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD  # failed probes that make a failure
    relapse_window_s: float = DEFAULT_RELAPSE_WINDOW_S  # a failure this soon after a fix: relapse
    repage_after_s: float = 1800.0  # an escalated incident that goes on pages again this often
    minor_alert_wait_s: float = 900.0  # a warning alert alone pages once it fired this long

    @property
    def lifecycle(self) -> LifecycleSettings:
        """The knobs the pure lifecycle reads."""
        return LifecycleSettings(
            verification_timeout_s=self.verification_timeout_s,
            approval_timeout_s=self.approvals.timeout_s,
            approval_fallback=self.approvals.fallback,
            compensation_hold_s=self.compensation_hold_s,
            minor_alert_wait_s=self.minor_alert_wait_s,
        )


@dataclass
class Folded:
    """What the loop knows, folded from the log."""

    health: dict[str, health_fold.Health] = field(default_factory=dict)
    controls: control.Controls = field(default_factory=control.Controls)
    users: users_fold.Registry = field(default_factory=users_fold.Registry)
    incidents: dict[str, Incident] = field(default_factory=dict)
    actions: deque[ActionRecord] = field(default_factory=deque)
    signals: dict[str, sig.Signals] = field(default_factory=dict)
    reported: dict[str, dict[str, str]] = field(default_factory=dict)
    open_drift: dict[tuple[str, str], str] = field(default_factory=dict)
    isolated: dict[str, isolation.Isolation] = field(default_factory=dict)
    changes: change_fold.Changes = field(default_factory=change_fold.Changes)
    remedies: tuple[Remedy, ...] = ()
    position: int = 0
