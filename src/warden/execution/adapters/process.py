"""Local process adapter: starts, stops and restarts configured services. Action plane.

The actions and their checks; each service's process group is supervised by
`warden.execution.adapters.process_supervision`. POSIX only.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConfigError, ValidationError
from warden.execution.adapters.base import ClosingContext
from warden.execution.adapters.process_supervision import (
    ProcessSpec,
    ProcessStatistics,
    SupervisedProcess,
    signal_group,
)
from warden.ports import ActionResult, Clock, SystemClock

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

__all__ = [
    "ACTIONS",
    "AdapterStatistics",
    "LocalProcessAdapter",
    "ProcessSpec",
    "ProcessStatistics",
]

ACTIONS = ("restart_service", "start_service", "stop_service")
"""The catalog actions this adapter runs; the target is a `ProcessSpec` name."""


@dataclass(frozen=True, slots=True)
class AdapterStatistics:
    """A snapshot of every service the adapter manages, in declaration order."""

    services: tuple[ProcessStatistics, ...]

    def service(self, name: str) -> ProcessStatistics:
        """The statistics of one service.

        Raises:
            KeyError: When no service has that name.
        """
        for stats in self.services:
            if stats.name == name:
                return stats
        raise KeyError(name)


class LocalProcessAdapter(ClosingContext):
    """Runs ``start_service``, ``stop_service`` and ``restart_service`` on local processes.

    Processes are started from argv lists (never through a shell), each in a new session
    so that it leads its own process group; stdout and stderr are appended to one log file
    per service. Stopping sends SIGTERM to the group, waits up to the spec's
    ``stop_timeout_s``, then sends SIGKILL; the leader is always reaped.

    The adapter notices processes that die without it (a crash, or `kill` from a chaos
    drill) by polling. When it finds a leader dead, it kills what is left of its group
    before reaping it (the unreaped leader keeps the group id from being reused), so a
    dead service never leaves orphans holding its port.

    Every start is recorded beside the logs (``<log_dir>/<name>.pid``: pid, start time,
    argv). A new adapter on the same directory takes over a recorded process that still
    runs (same start time and argv), so a Warden that stopped without stopping its
    services neither starts a second copy nor loses the way to stop the first.

    Use it as a context manager to be sure nothing is left running::

        with LocalProcessAdapter(specs, log_dir) as fleet:
            fleet.start_all()
            ...
    """

    def __init__(
        self,
        specs: Iterable[ProcessSpec],
        log_dir: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
    ) -> None:
        """Create an adapter; nothing is started yet.

        Args:
            specs: The processes it manages; names must be unique.
            log_dir: Directory for per-service log files; created if missing.
            clock: Where start times come from; the system clock by default.

        Raises:
            ConfigError: When two specs share a name.
        """
        self._log_dir = Path(log_dir)
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._services: dict[str, SupervisedProcess] = {}
        for spec in specs:
            if spec.name in self._services:
                raise ConfigError(f"config error: process {spec.name!r} is declared twice")
            log_path = (
                Path(spec.log_path)
                if spec.log_path is not None
                else self._log_dir / f"{spec.name}.log"
            )
            managed = SupervisedProcess(
                spec=spec, log_path=log_path, pid_path=self._log_dir / f"{spec.name}.pid"
            )
            managed.adopt()
            self._services[spec.name] = managed

    # -- the ActionAdapter port ------------------------------------------------------

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Run one catalog action on a service; safe to call again with the same arguments.

        Args:
            action: ``start_service``, ``stop_service`` or ``restart_service``.
            target: The name of a configured process.
            params: Must be empty: these actions take no parameters (the executor's
                ``idempotency_key`` is accepted and ignored: a restart is checked, not keyed).

        Returns:
            The result; ``ok=False`` with the reason for an unknown action, an unknown
            target, unexpected parameters, or a process that could not be started.
        """
        if action not in ACTIONS:
            return ActionResult(
                ok=False,
                detail=f"unknown action {action!r} (known: {', '.join(ACTIONS)})",
                output={},
            )
        if target not in self._services:
            return ActionResult(
                ok=False,
                detail=f"unknown service {target!r} (known: {', '.join(self.names())})",
                output={},
            )
        params = {k: v for k, v in params.items() if k != "idempotency_key"}
        if params:
            return ActionResult(
                ok=False,
                detail=f"{action} takes no parameters, got {sorted(params)}",
                output={},
            )
        if action == "start_service":
            return self.start(target)
        if action == "stop_service":
            return self.stop(target)
        return self.restart(target)

    def check(self, action: str, target: str, params: dict[str, Any] | None = None) -> bool | None:
        """Whether the effect of an action on a service holds now.

        ``start_service`` holds while the process runs, ``stop_service`` while it does not,
        and ``restart_service`` while a process runs whose pid differs from the one that
        ran before the last restart.

        Args:
            action: A catalog action name.
            target: A service name.
            params: The step's parameters; unused, processes are checked by pid.

        Returns:
            True or False when it can be established; None for an unknown action or
            target, or for a restart this adapter never ran on a process that is running.
        """
        with self._lock:
            managed = self._services.get(target)
            if managed is None or action not in ACTIONS:
                return None
            alive = managed.alive()
            if action == "start_service":
                return alive
            if action == "stop_service":
                return not alive
            if not alive:
                return False
            if not managed.restarted:
                return None
            return managed.pid != managed.pid_before_restart

    # -- direct control --------------------------------------------------------------

    def names(self) -> list[str]:
        """The configured service names, in declaration order."""
        return list(self._services)

    def start(self, name: str) -> ActionResult:
        """Start a service unless it is already running.

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            managed = self._get(name)
            if managed.alive():
                return ActionResult(
                    ok=True,
                    detail=f"{name} already running (pid {managed.pid})",
                    output={"pid": managed.pid, "started": False},
                )
            return managed.spawn(self._clock)

    def stop(self, name: str) -> ActionResult:
        """Stop a service: SIGTERM to its group, then SIGKILL after its stop timeout.

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            return self._get(name).stop()

    def restart(self, name: str) -> ActionResult:
        """Stop a service if it runs, then start it again; works after a crash too.

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            managed = self._get(name)
            was_running = managed.alive()
            previous = managed.pid
            stopped = managed.stop()
            if not stopped.ok:
                return stopped
            started = managed.spawn(self._clock)
            if not started.ok:
                return started
            managed.restarts += 1
            managed.restarted = True
            managed.pid_before_restart = previous
            pid = started.output["pid"]
            if previous is None:
                was = "never started"
            else:
                was = f"pid {previous}" + ("" if was_running else ", not running")
            return ActionResult(
                ok=True,
                detail=f"{name} restarted (pid {pid}, was {was})",
                output={
                    "pid": pid,
                    "previous_pid": previous,
                    "was_running": was_running,
                    "restarts": managed.restarts,
                },
            )

    def start_all(self) -> dict[str, ActionResult]:
        """Start every service not running, in declaration order."""
        with self._lock:
            return {name: self.start(name) for name in self._services}

    def stop_all(self) -> dict[str, ActionResult]:
        """Stop every service, in reverse declaration order, leaving no process behind."""
        with self._lock:
            return {name: self.stop(name) for name in reversed(self._services)}

    def pid(self, name: str) -> int | None:
        """The pid of the service's running process, or None when it is not running.

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            managed = self._get(name)
            return managed.pid if managed.alive() else None

    def running(self, name: str) -> bool:
        """Whether the service's process is alive now (it is polled, so crashes show).

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            return self._get(name).alive()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> bool:
        """Send a signal to the service's process group behind the adapter's back.

        Meant for chaos drills: nothing is recorded and nothing is reaped; the adapter
        finds out the way it would after a real crash, by polling.

        Args:
            name: The service name.
            sig: The signal to send; SIGKILL by default.

        Returns:
            True when the signal was sent, False when the service was not running.

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            managed = self._get(name)
            pid = managed.pid
            if not managed.alive() or pid is None:
                return False
            return signal_group(pid, sig)

    def log_path(self, name: str) -> Path:
        """The file the service's output is appended to.

        Raises:
            ValidationError: When no service has that name.
        """
        return self._get(name).log_path

    def statistics(self) -> AdapterStatistics:
        """A snapshot of every service: pid, start time, start and restart counts."""
        with self._lock:
            return AdapterStatistics(
                services=tuple(m.statistics() for m in self._services.values())
            )

    def close(self) -> None:
        """Stop every service, as `stop_all` does; what the end of a ``with`` block runs."""
        self.stop_all()

    # -- internals -------------------------------------------------------------------

    def _get(self, name: str) -> SupervisedProcess:
        managed = self._services.get(name)
        if managed is None:
            raise ValidationError(
                f"unknown service {name!r}",
                field="name",
                fix=f"known: {', '.join(self._services) or 'none'}",
            )
        return managed
