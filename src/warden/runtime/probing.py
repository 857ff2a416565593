"""Probe threads: each service is probed on its interval, with jitter. Runtime (shell).

When workers share a log, each service is probed by one of them at a time: the one that
holds the lease ``probe:<service>``. Otherwise every worker's results would count, and a
failure threshold of three in a row would be met N times sooner with N workers.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING

from warden.ingest.probes import Probe, jittered

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.ports import Leases
    from warden.runtime import Runtime


class ProbeLoop:
    """One daemon thread per probed service, feeding results into the runtime."""

    def __init__(
        self,
        runtime: Runtime,
        probes: Mapping[str, Probe],
        interval_s: float,
        jitter: float,
        *,
        leases: Leases | None = None,
        holder: str = "",
    ) -> None:
        """Create the loop; nothing is probed before :meth:`start`.

        Args:
            runtime: Where results go.
            probes: One probe per service.
            interval_s: Seconds between probes of one service.
            jitter: The fraction of the interval each wait varies by.
            leases: Shared leases: probe a service only while holding ``probe:<service>``.
            holder: This worker's name in those leases.
        """
        self.runtime = runtime
        self.probes = probes
        self.interval_s = interval_s
        self.jitter = jitter
        self.leases = leases
        self.holder = holder
        # Long enough to outlast a slow probe and the jitter; short enough to hand over fast.
        self.lease_ttl_s = max(3 * interval_s, 2.0)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start probing every service."""
        for service, probe in sorted(self.probes.items()):
            thread = threading.Thread(
                target=self._watch, args=(service, probe), name=f"probe-{service}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _watch(self, service: str, probe: Probe) -> None:
        rng = random.Random()
        while not self._stop.is_set():
            if self._owns(service):
                self.runtime.record_probe(service, repr(probe), probe.check(), "watch")
            self._stop.wait(jittered(self.interval_s, self.jitter, rng))

    def _owns(self, service: str) -> bool:
        if self.leases is None:
            return True
        resource = f"probe:{service}"
        return self.leases.acquire(resource, self.holder, self.lease_ttl_s, time.time()) is not None

    def stop(self) -> None:
        """Stop probing and wait for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self.leases is not None:  # another worker takes over without waiting for expiry
            for service in self.probes:
                self.leases.release(f"probe:{service}", self.holder)
