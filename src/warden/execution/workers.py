"""A bounded pool of workers that act on stored intents off the loop's thread. Action plane.

The loop writes an intent and hands it here; a worker calls the adapter and appends the
result, which the loop folds on a later round. The loop never waits for an action. With
no workers (replay, simulations on a manual clock) each intent is acted on at once, in
the caller's thread, so the same history gives the same order of events.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.incident import Incident
    from warden.execution.executor import Executor, Intent, StepRun

log = logging.getLogger(__name__)


class ActionWorkers:
    """Runs intents through the executor on at most ``size`` threads (0: inline)."""

    def __init__(self, executor: Executor, size: int = 0) -> None:
        self.executor = executor
        self.size = size
        self._pool = (
            ThreadPoolExecutor(size, thread_name_prefix="warden-action") if size > 0 else None
        )
        self._lock = threading.Lock()
        self._running: dict[str, tuple[Future[StepRun], Intent]] = {}

    def submit(self, intent: Intent) -> None:
        """Act on ``intent``: now when inline, else on a worker."""
        if self._pool is None:
            self.executor.perform(intent)
            return
        future = self._pool.submit(self._perform, intent)
        with self._lock:
            self._running[intent.incident.id] = (future, intent)

    def _perform(self, intent: Intent) -> StepRun:
        try:
            return self.executor.perform(intent)
        except Exception:
            # The intent stays without a result: the loop reconciles it by the action's check.
            log.exception("recording the result of %s failed", intent.action)
            raise

    def running(self, incidents: Mapping[str, Incident]) -> frozenset[str]:
        """Incidents whose action a worker has in hand (or whose result is not folded yet).

        An entry goes once its result shows in ``incidents`` (what the loop folded), or once
        its worker failed to record one: that intent is then reconciled like any other.
        """
        with self._lock:
            for incident_id, (future, intent) in list(self._running.items()):
                if not future.done():
                    continue
                current = incidents.get(incident_id)
                if future.exception() is not None or current is None or _settled(current, intent):
                    del self._running[incident_id]
            return frozenset(self._running)

    def close(self) -> None:
        """Wait for the actions under way (each bounded by its timeout); drop queued ones.

        A dropped intent has no result; the next start reconciles it, never repeats it
        blindly.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _settled(incident: Incident, intent: Intent) -> bool:
    if incident.state.terminal:
        return True
    if intent.compensation:
        return incident.compensation_in_flight != intent.index
    return incident.in_flight != (intent.index, intent.attempt)
