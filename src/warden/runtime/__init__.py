"""The runtime: the reconcile loop, the probe threads that feed it, start-up from snapshots.

``loop`` wires the four planes together and moves every incident one step a round;
``probing`` probes each service on its interval; ``snapshots`` lets the loop start from
the newest snapshot instead of the whole log. Runtime (shell).
"""

from warden.runtime.loop import EventListener, Runtime, RuntimeSettings, backoff_s, load_incidents

__all__ = ["EventListener", "Runtime", "RuntimeSettings", "backoff_s", "load_incidents"]
