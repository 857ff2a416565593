"""The public API is exactly the names ``warden.__all__`` lists; each one imports."""

from __future__ import annotations

import subprocess
import sys

import warden

PUBLIC = {
    # ports: what users implement, and the clocks and in-memory store that implement them
    "ActionAdapter",
    "ActionChecker",
    "ActionResult",
    "Clock",
    "EventStore",
    "Lease",
    "Leases",
    "ManualClock",
    "MemoryEventStore",
    "MemoryLeases",
    "SystemClock",
    # agents
    "Agent",
    "Detection",
    "SlowAgent",
    "Summarizer",
    # the domain an agent or a policy test speaks
    "ActionSpec",
    "Catalog",
    "Decision",
    "Event",
    "Incident",
    "Outcome",
    "Plan",
    "Reason",
    "Risk",
    "State",
    "Step",
    "World",
    # the one error tree
    "ConcurrencyConflict",
    "ConfigError",
    "InvalidTransition",
    "PermanentError",
    "PolicyDenied",
    "TemporaryError",
    "ValidationError",
    "WardenError",
    "__version__",
}


def test_all_is_pinned_sorted_and_without_repeats() -> None:
    assert set(warden.__all__) == PUBLIC
    assert list(warden.__all__) == sorted(PUBLIC)


def test_every_public_name_is_warden_s_own_and_imports() -> None:
    namespace: dict[str, object] = {}
    exec("from warden import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC
    for name in PUBLIC - {"__version__"}:
        value = getattr(warden, name)
        assert value.__module__.startswith("warden."), name


def test_the_api_imports_in_a_fresh_interpreter() -> None:
    # Catches an import cycle that an already-imported package would hide.
    names = ", ".join(sorted(PUBLIC))
    done = subprocess.run(
        [sys.executable, "-c", f"from warden import {names}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
