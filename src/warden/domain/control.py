"""Operator controls that hold whatever policy says, folded from the control stream. Pure core."""

from __future__ import annotations

from dataclasses import dataclass

from warden.domain import events as ev


@dataclass(frozen=True, slots=True)
class Controls:
    """The kill switch and who set it."""

    kill_switch: bool = False
    set_by: str = ""
    reason: str = ""
    since: str = ""


def observe(controls: Controls, event: ev.Event) -> Controls:
    """Fold one control event."""
    if event.type == ev.KILL_SWITCH_ENGAGED:
        return Controls(
            True, str(event.data.get("by", "")), str(event.data.get("reason", "")), event.time
        )
    if event.type == ev.KILL_SWITCH_RELEASED:
        return Controls(False, str(event.data.get("by", "")), "", event.time)
    return controls
