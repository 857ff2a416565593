"""Input builders shared by the ingest tests: one valid event to vary per test."""

from __future__ import annotations

from typing import Any


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
