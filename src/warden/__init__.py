"""Warden: governed, agentic remediation for distributed systems.

The names here are the public API; everything else is internal and may change.
"""

from warden.agents.protocol import Agent, Detection, SlowAgent, Summarizer
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
from warden.ports import (
    ActionAdapter,
    ActionChecker,
    ActionResult,
    Clock,
    EventStore,
    Lease,
    Leases,
    ManualClock,
    SystemClock,
)
from warden.store.memory import MemoryEventStore, MemoryLeases

__version__ = "0.1.0"

__all__ = [
    "ActionAdapter",
    "ActionChecker",
    "ActionResult",
    "ActionSpec",
    "Agent",
    "Catalog",
    "Clock",
    "ConcurrencyConflict",
    "ConfigError",
    "Decision",
    "Detection",
    "Event",
    "EventStore",
    "Incident",
    "InvalidTransition",
    "Lease",
    "Leases",
    "ManualClock",
    "MemoryEventStore",
    "MemoryLeases",
    "Outcome",
    "PermanentError",
    "Plan",
    "PolicyDenied",
    "Reason",
    "Risk",
    "SlowAgent",
    "State",
    "Step",
    "Summarizer",
    "SystemClock",
    "TemporaryError",
    "ValidationError",
    "WardenError",
    "World",
    "__version__",
]
