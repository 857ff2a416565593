"""The action catalog: every action Warden may run, with its contract. Pure core (domain).

Nothing outside the catalog ever runs, and no parameter outside the action's JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


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
    max_attempts: int = 3
    # What the step's result must report under ``undo_params`` for its compensation to
    # undo it (the version it replaced, the count before): the step's own parameters
    # would only do it again.
    undo_needs: tuple[str, ...] = ()

    def missing_undo(self, output: Mapping[str, Any]) -> tuple[str, ...]:
        """The undo parameters a step's ``output`` lacks for its compensation."""
        reported = output.get("undo_params") or {}
        return tuple(n for n in self.undo_needs if n not in reported)


_NO_PARAMS: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}


def _params(required: tuple[str, ...], **properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": properties,
    }


_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
_VALUE = {"type": "string", "maxLength": 2000}
_BATCH = _params(("pipeline", "batch"), pipeline=_TEXT, batch=_TEXT)
# The parameter shapes of the actions that put something back (a revert, or an undo):
# each is defined once, and what an undo needs reported is its required parameters.
_FIELD_VALUE = _params(("field", "value"), field=_TEXT, value=_VALUE)
_VERSION = _params(("version",), version=_TEXT)
_REPLICAS = _params(("replicas",), replicas={"type": "integer", "minimum": 1, "maximum": 1000})


def _undo_needs(shape: dict[str, Any]) -> tuple[str, ...]:
    """What a step's result must report for an undo whose parameters have ``shape``."""
    return tuple(shape["required"])


def _restore(name: str, what: str, risk: Risk = Risk.LOW) -> ActionSpec:
    """Put one field of an object back to a recorded value; undone the same way."""
    return ActionSpec(
        name=name,
        description=(
            f"Set one field of a {what} back to a recorded value (the one a change replaced);"
            " reports the value it replaced, which its undo puts back."
        ),
        risk=risk,
        idempotent=True,
        timeout_s=60.0,
        params_schema=_FIELD_VALUE,
        verification="recovered",
        compensation=name,
        undo_needs=_undo_needs(_FIELD_VALUE),
    )


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
        verification="stopped",
        compensation="start_service",
    ),
    ActionSpec(
        name="rollback_deploy",
        description="Deploy the last good version of a service again.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=120.0,
        params_schema=_VERSION,
        verification="error_rate",
        compensation="deploy_version",
        undo_needs=_undo_needs(_VERSION),
    ),
    ActionSpec(
        name="deploy_version",
        description="Deploy a given version of a service (rolls a rollback forward).",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=120.0,
        params_schema=_VERSION,
    ),
    ActionSpec(
        name="open_circuit",
        description="Stop callers from sending traffic to a failing dependency.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=10.0,
        params_schema=_NO_PARAMS,
        compensation="close_circuit",
    ),
    ActionSpec(
        name="close_circuit",
        description="Let callers reach the dependency again.",
        risk=Risk.LOW,
        idempotent=True,
        timeout_s=10.0,
        params_schema=_NO_PARAMS,
    ),
    ActionSpec(
        name="drain_service",
        description="Take a service out of rotation, letting in-flight work finish.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=60.0,
        params_schema=_NO_PARAMS,
        compensation="restore_service",
    ),
    ActionSpec(
        name="restore_service",
        description="Put a drained service back into rotation.",
        risk=Risk.LOW,
        idempotent=True,
        timeout_s=30.0,
        params_schema=_NO_PARAMS,
    ),
    ActionSpec(
        name="quarantine_batch",
        description="Move a corrupt batch or partition aside so nothing consumes it.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=60.0,
        params_schema=_BATCH,
        verification="batch",
        # No compensation: the batch is quarantined because it failed, so undoing the
        # quarantine (when a later step is denied or fails) would feed known-corrupt data
        # to the pipeline again. It stays aside; release_batch is a human's call.
    ),
    ActionSpec(
        name="release_batch",
        description="Return a quarantined batch to its pipeline.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=60.0,
        params_schema=_BATCH,
    ),
    ActionSpec(
        name="replay_from_checkpoint",
        description="Reprocess a pipeline from its last good checkpoint.",
        risk=Risk.MEDIUM,
        idempotent=False,
        timeout_s=600.0,
        params_schema=_params(("pipeline", "checkpoint"), pipeline=_TEXT, checkpoint=_TEXT),
        verification="batch",
    ),
    ActionSpec(
        name="scale_consumers",
        description="Set the number of consumers of a queue, within the service's limits.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=120.0,
        params_schema=_REPLICAS,
        verification="backlog",
        compensation="scale_consumers",
        undo_needs=_undo_needs(_REPLICAS),
    ),
    ActionSpec(
        name="reconcile_state",
        description="Bring one observed field of a service back to its desired value.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=120.0,
        params_schema=_params(("field", "desired"), field=_TEXT, desired=_TEXT),
        verification="drift",
    ),
    # Reverting a recorded change: each puts back what the change replaced.
    _restore("restore_config", "configuration object"),
    _restore("restore_flag", "feature flag"),
    _restore("restore_network_rule", "network rule (re-applies the recorded rule)"),
    _restore("restore_route", "routing object (re-applies the recorded route)"),
    _restore("raise_quota", "quota (its limit)", Risk.MEDIUM),
    ActionSpec(
        name="scale_service",
        description="Set the replica count of a service (back to a recorded count).",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=180.0,
        params_schema=_REPLICAS,
        verification="recovered",
        compensation="scale_service",
        undo_needs=_undo_needs(_REPLICAS),
    ),
    ActionSpec(
        name="suspend_job",
        description="Suspend a scheduled job: no new run starts, the running one is stopped.",
        risk=Risk.MEDIUM,
        idempotent=True,
        timeout_s=60.0,
        params_schema=_NO_PARAMS,
        verification="recovered",
        compensation="resume_job",
    ),
    ActionSpec(
        name="resume_job",
        description="Resume a suspended scheduled job.",
        risk=Risk.LOW,
        idempotent=True,
        timeout_s=60.0,
        params_schema=_NO_PARAMS,
        verification="recovered",
    ),
    ActionSpec(
        name="rotate_credential",
        description=(
            "Issue a new credential or certificate from its issuer and put it in place; the"
            " old one stays valid until it expires, so nothing needs undoing."
        ),
        risk=Risk.MEDIUM,
        idempotent=False,
        timeout_s=300.0,
        params_schema=_NO_PARAMS,
        verification="recovered",
        max_attempts=1,
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

    def known(self, names: Iterable[str]) -> frozenset[str]:
        """Those of ``names`` that are actions in the catalog (one set operation)."""
        return frozenset(self._actions.keys() & set(names))
