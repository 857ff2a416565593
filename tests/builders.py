"""Builders shared by tests: one valid event to vary, one candidate policy bundle."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from warden.governance.policy import BUILTIN_BUNDLE

if TYPE_CHECKING:
    from pathlib import Path

FROZEN_RESTARTS = "no-restarts.cedar"


def probe_cloudevent(**overrides: Any) -> dict[str, Any]:
    """A valid structured-mode ``warden.probe.failed`` CloudEvent, with ``overrides`` applied."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e1",
        "source": "warden://probe/payments",
        "type": "warden.probe.failed",
        "time": "2026-11-25T12:00:00Z",
        "subject": "payments",
        "data": {"service": "payments", "probe": "http://x/health", "error": "refused"},
    }
    event.update(overrides)
    return event


def frozen_restarts_bundle(directory: Path) -> Path:
    """The built-in bundle plus a forbid on restart_service (policy ``no-restarts``)."""
    shutil.copytree(BUILTIN_BUNDLE, directory)
    (directory / FROZEN_RESTARTS).write_text(
        '@id("no-restarts") @message("restarts are frozen")\n'
        'forbid (principal, action == Action::"restart_service", resource);\n'
    )
    return directory
