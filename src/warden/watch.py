"""Probe threads: each service is probed on its interval, with jitter. Runtime (shell)."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

from warden.ingest.probes import Probe, jittered

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.runtime import Runtime


class ProbeLoop:
    """One daemon thread per probed service, feeding results into the runtime."""

    def __init__(
        self, runtime: Runtime, probes: Mapping[str, Probe], interval_s: float, jitter: float
    ) -> None:
        self.runtime = runtime
        self.probes = probes
        self.interval_s = interval_s
        self.jitter = jitter
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
            self.runtime.record_probe(service, repr(probe), probe.check(), "watch")
            self._stop.wait(jittered(self.interval_s, self.jitter, rng))

    def stop(self) -> None:
        """Stop probing and wait for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
