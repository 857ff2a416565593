"""Local process adapter: starts, stops and restarts configured processes. Action plane.

Each process runs in its own session and process group, so stopping a service stops
everything it spawned. POSIX only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConfigError, ValidationError
from warden.ports import ActionResult, Clock, SystemClock

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "ACTIONS",
    "AdapterStatistics",
    "LocalProcessAdapter",
    "ProcessSpec",
    "ProcessStatistics",
]

ACTIONS = ("restart_service", "start_service", "stop_service")
"""The catalog actions this adapter runs; the target is a `ProcessSpec` name."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_POLL_INTERVAL_S = 0.02


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """A process declared in configuration.

    Attributes:
        name: The service name, used as the action target and for the log file name.
        argv: The program and its arguments; never a shell string.
        cwd: Working directory, or None for the adapter's own.
        env: Variables set on top of the adapter's environment.
        log_path: Where stdout and stderr are appended; None means ``<log_dir>/<name>.log``.
        stop_timeout_s: How long a stop waits after SIGTERM before it sends SIGKILL.
    """

    name: str
    argv: tuple[str, ...]
    cwd: str | os.PathLike[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    log_path: str | os.PathLike[str] | None = None
    stop_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"config error: process name {self.name!r} is not valid "
                "(use letters, digits, '.', '_' or '-', starting with a letter or digit)"
            )
        problem = _spec_problem(self)
        if problem:
            raise ConfigError(f"config error: process {self.name!r}: {problem}")
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))


def _spec_problem(spec: ProcessSpec) -> str:
    """What is wrong with a spec's argv, env or timeout; empty when nothing is."""
    argv: object = spec.argv
    if isinstance(argv, str | bytes):
        return (
            f"argv is a string ({argv!r}); give a list of arguments instead, "
            "e.g. ['python', '-m', 'myservice'] (no shell is ever used)"
        )
    if not isinstance(argv, tuple | list):
        return f"argv must be a list of strings, not {type(argv).__name__}"
    if not argv:
        return "argv is empty; give the program and its arguments"
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):
            return f"argv[{i}] is {type(arg).__name__}, must be a string"
    if not argv[0]:
        return "argv[0] is empty; it must name the program to run"
    env: object = spec.env
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        return "env must map strings to strings"
    timeout: object = spec.stop_timeout_s
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        return f"stop_timeout_s must be a number of seconds, not {timeout!r}"
    return ""


@dataclass(frozen=True, slots=True)
class ProcessStatistics:
    """What the adapter knows about one service.

    Attributes:
        name: The service name.
        running: Whether its process is alive now.
        pid: The pid of the current (or last) process, or None if never started.
        started_at: When the current (or last) process was started.
        starts: How many processes were started for it.
        restarts: How many restarts were run on it.
        last_exit_code: The exit status of the last process that ended (negative: the
            signal that killed it), or None.
        pids: Every pid ever started for it, oldest first.
    """

    name: str
    running: bool
    pid: int | None
    started_at: datetime | None
    starts: int
    restarts: int
    last_exit_code: int | None
    pids: tuple[int, ...]


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


@dataclass(slots=True)
class _Managed:
    """Mutable bookkeeping for one service; guarded by the adapter's lock."""

    spec: ProcessSpec
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: datetime | None = None
    starts: int = 0
    restarts: int = 0
    last_exit_code: int | None = None
    pids: list[int] = field(default_factory=list)
    restarted: bool = False
    pid_before_restart: int | None = None


class LocalProcessAdapter:
    """Runs ``start_service``, ``stop_service`` and ``restart_service`` on local processes.

    Processes are started from argv lists (never through a shell), each in a new session
    so that it leads its own process group; stdout and stderr are appended to one log file
    per service. Stopping sends SIGTERM to the group, waits up to the spec's
    ``stop_timeout_s``, then sends SIGKILL; the leader is always reaped.

    The adapter notices processes that die without it (a crash, or `kill` from a chaos
    drill) by polling. When it finds a leader dead, it kills what is left of its group
    before reaping it (the unreaped leader keeps the group id from being reused), so a
    dead service never leaves orphans holding its port.

    Only processes this adapter started are managed: a new adapter does not adopt
    processes left running by another one.

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
        self._services: dict[str, _Managed] = {}
        for spec in specs:
            if spec.name in self._services:
                raise ConfigError(f"config error: process {spec.name!r} is declared twice")
            log_path = (
                Path(spec.log_path)
                if spec.log_path is not None
                else self._log_dir / f"{spec.name}.log"
            )
            self._services[spec.name] = _Managed(spec=spec, log_path=log_path)

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
            alive = self._alive(managed)
            if action == "start_service":
                return alive
            if action == "stop_service":
                return not alive
            if not alive:
                return False
            if not managed.restarted:
                return None
            assert managed.proc is not None
            return managed.proc.pid != managed.pid_before_restart

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
            if self._alive(managed):
                assert managed.proc is not None
                return ActionResult(
                    ok=True,
                    detail=f"{name} already running (pid {managed.proc.pid})",
                    output={"pid": managed.proc.pid, "started": False},
                )
            return self._spawn(managed)

    def stop(self, name: str) -> ActionResult:
        """Stop a service: SIGTERM to its group, then SIGKILL after its stop timeout.

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            return self._stop(self._get(name))

    def restart(self, name: str) -> ActionResult:
        """Stop a service if it runs, then start it again; works after a crash too.

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            managed = self._get(name)
            was_running = self._alive(managed)
            previous = managed.proc.pid if managed.proc is not None else None
            stopped = self._stop(managed)
            if not stopped.ok:
                return stopped
            started = self._spawn(managed)
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
            if self._alive(managed) and managed.proc is not None:
                return managed.proc.pid
            return None

    def running(self, name: str) -> bool:
        """Whether the service's process is alive now (it is polled, so crashes show).

        Raises:
            ValidationError: When no service has that name.
        """
        with self._lock:
            return self._alive(self._get(name))

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
            if not self._alive(managed) or managed.proc is None:
                return False
            return _signal_group(managed.proc.pid, sig)

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
                services=tuple(self._statistics(m) for m in self._services.values())
            )

    def __enter__(self) -> LocalProcessAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    # -- internals -------------------------------------------------------------------

    def _get(self, name: str) -> _Managed:
        managed = self._services.get(name)
        if managed is None:
            raise ValidationError(
                f"unknown service {name!r}",
                field="name",
                fix=f"known: {', '.join(self._services) or 'none'}",
            )
        return managed

    def _statistics(self, managed: _Managed) -> ProcessStatistics:
        alive = self._alive(managed)
        return ProcessStatistics(
            name=managed.spec.name,
            running=alive,
            pid=managed.proc.pid if managed.proc is not None else None,
            started_at=managed.started_at,
            starts=managed.starts,
            restarts=managed.restarts,
            last_exit_code=managed.last_exit_code,
            pids=tuple(managed.pids),
        )

    def _spawn(self, managed: _Managed) -> ActionResult:
        spec = managed.spec
        env = {**os.environ, **spec.env}
        try:
            managed.log_path.parent.mkdir(parents=True, exist_ok=True)
            with managed.log_path.open("ab") as log:
                proc = subprocess.Popen(
                    spec.argv,
                    cwd=spec.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            return ActionResult(
                ok=False,
                detail=f"cannot start {spec.name}: {exc.strerror or exc} ({spec.argv[0]!r})",
                output={},
            )
        managed.proc = proc
        managed.started_at = self._clock.now()
        managed.starts += 1
        managed.pids.append(proc.pid)
        return ActionResult(
            ok=True,
            detail=f"{spec.name} started (pid {proc.pid})",
            output={"pid": proc.pid, "started": True},
        )

    def _stop(self, managed: _Managed) -> ActionResult:
        name = managed.spec.name
        proc = managed.proc
        if proc is None or not self._alive(managed):
            return ActionResult(ok=True, detail=f"{name} already stopped", output={"pid": None})
        pid = proc.pid
        _signal_group(pid, signal.SIGTERM)
        state = _wait_exited(pid, managed.spec.stop_timeout_s)
        if state != _GONE:
            # SIGKILL the group in every case: the leader if it ignored SIGTERM, and what
            # it left behind. Until it is reaped below, the leader holds the group id.
            _signal_group(pid, signal.SIGKILL)
        code = proc.wait()
        managed.last_exit_code = code
        graceful = state != _RUNNING
        how = "stopped" if graceful else f"killed after {managed.spec.stop_timeout_s:g} s"
        return ActionResult(
            ok=True,
            detail=f"{name} {how} (pid {pid}, exit {code})",
            output={"pid": pid, "exit_code": code, "graceful": graceful},
        )

    def _alive(self, managed: _Managed) -> bool:
        """Poll the leader; when it has died, clear out its group and reap it."""
        proc = managed.proc
        if proc is None or proc.returncode is not None:
            return False
        state = _leader_state(proc.pid)
        if state == _RUNNING:
            return True
        if state == _ZOMBIE:
            _signal_group(proc.pid, signal.SIGKILL)
        managed.last_exit_code = proc.wait()
        return False


_RUNNING, _ZOMBIE, _GONE = "running", "zombie", "gone"


def _leader_state(pid: int) -> str:
    """Whether a child runs, has ended but is not reaped (its pid stays reserved), or is gone.

    ``gone`` means something else reaped it; its pid may already belong to another process.
    """
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return _GONE
    return _RUNNING if info is None else _ZOMBIE


def _wait_exited(pid: int, timeout_s: float) -> str:
    """Wait up to ``timeout_s`` for a child to end, without reaping it; its last state."""
    deadline = time.monotonic() + timeout_s
    while (state := _leader_state(pid)) == _RUNNING:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(_POLL_INTERVAL_S, remaining))
    return state


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True
