"""Warden: governed, agentic remediation for distributed systems.

The names here are the public API; everything else is internal and may change.
"""

from warden.agents.protocol import Agent, Detection
from warden.domain.catalog import ActionSpec, Catalog, Risk
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.errors import (
    ConcurrencyConflict,
    ConfigError,
    InvalidTransition,
    PermanentError,
    PolicyDenied,
    TemporaryError,
    ValidationError,
    WardenError,
)
from warden.domain.events import Event
from warden.domain.incident import Incident, State
from warden.domain.plans import Plan, Step
from warden.domain.world import World

__version__ = "0.1.0"

__all__ = [
    "ActionSpec",
    "Agent",
    "Catalog",
    "ConcurrencyConflict",
    "ConfigError",
    "Decision",
    "Detection",
    "Event",
    "Incident",
    "InvalidTransition",
    "Outcome",
    "PermanentError",
    "Plan",
    "PolicyDenied",
    "Reason",
    "Risk",
    "State",
    "Step",
    "TemporaryError",
    "ValidationError",
    "WardenError",
    "World",
    "__version__",
]
