"""The action catalog: every action Warden may run, with its contract. Pure core (domain).

Nothing outside the catalog ever runs, and no parameter outside the action's JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Risk(StrEnum):
    """How much harm a wrong run of the action can do."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What an action needs, how risky it is, and how it is checked and undone."""

    name: str
    description: str
    risk: Risk
    idempotent: bool
    timeout_s: float
    params_schema: dict[str, Any]
    verification: str = "health_probe"
    compensation: str | None = None


_NO_PARAMS: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}

BUILTIN_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="restart_service",
        description="Stop a service's process (SIGTERM, then SIGKILL) and start it again.",
        risk=Risk.LOW,
        idempotent=False,
        timeout_s=15.0,
        params_schema=_NO_PARAMS,
    ),
    ActionSpec(
        name="start_service",
        description="Start a service's process if it is not running.",
        risk=Risk.LOW,
        idempotent=True,
        timeout_s=10.0,
        params_schema=_NO_PARAMS,
        compensation="stop_service",
    ),
    ActionSpec(
        name="stop_service",
        description="Stop a service's process.",
        risk=Risk.HIGH,
        idempotent=True,
        timeout_s=15.0,
        params_schema=_NO_PARAMS,
        compensation="start_service",
    ),
)


class Catalog:
    """The actions Warden knows, by name."""

    def __init__(self, actions: tuple[ActionSpec, ...] = BUILTIN_ACTIONS) -> None:
        self._actions = {a.name: a for a in actions}

    def get(self, name: str) -> ActionSpec | None:
        """The spec of an action, or None when it is not in the catalog."""
        return self._actions.get(name)

    def names(self) -> list[str]:
        """Every action name, sorted."""
        return sorted(self._actions)
