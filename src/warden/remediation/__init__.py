"""The shell around the pure lifecycle (warden.domain.lifecycle). Runtime.

``interpreter`` carries the lifecycle's commands out (gate, agents, executor, leases,
probes, store), ``planning`` asks the agents for plans, ``state`` holds the loop's
settings and what it folds.
"""

from warden.domain.lifecycle import backoff_s
from warden.remediation.interpreter import Interpreter
from warden.remediation.state import Folded, RuntimeSettings

__all__ = ["Folded", "Interpreter", "RuntimeSettings", "backoff_s"]
