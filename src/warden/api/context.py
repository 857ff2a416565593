"""What the API's handlers share: the store, the state directory, approval settings. Edge (API)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from warden.api.sessions import Sessions
from warden.domain.kpis import KpiSettings
from warden.governance.approvals import ApprovalSettings

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from warden.config import WardenConfig
    from warden.ports import EventStore


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class ApiContext:
    """The store the API reads and writes, and where the audit log of that state lives.

    ``store`` must be safe to call from several threads (both Warden stores are).
    ``stopping`` is set when the server shuts down, so live streams end.
    """

    store: EventStore
    state_dir: Path
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    environment: str = "development"
    default_autonomy: str = "autonomous"
    now: Callable[[], datetime] = _now
    sessions: Sessions = field(default_factory=Sessions)
    stopping: threading.Event = field(default_factory=threading.Event)
    # How often a live stream looks for new events.
    poll_s: float = 0.5
    # The relapse window, prices and services the KPIs are computed with.
    kpis: KpiSettings = field(default_factory=KpiSettings)
    # The configuration in force, when known: quarantine replay applies its redaction.
    config: WardenConfig | None = None


def context_for(config: WardenConfig, store: EventStore) -> ApiContext:
    """The API context of a loaded ``warden.yaml``, over ``store`` (opened by the caller)."""
    return ApiContext(
        store=store,
        state_dir=config.state_dir,
        approvals=config.approvals,
        environment=config.environment,
        default_autonomy=config.autonomy,
        kpis=config.kpi_settings,
        config=config,
    )
