"""Local process supervision: one service's process group, started, polled, stopped, reaped.

POSIX only; used by `warden.execution.adapters.process`. Action plane.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from warden.domain.errors import ConfigError
from warden.ports import ActionResult

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from warden.ports import Clock

__all__ = ["ProcessSpec", "ProcessStatistics", "SupervisedProcess", "signal_group"]

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


@dataclass(slots=True)
class SupervisedProcess:
    """One service: its current process and what happened to it; not thread-safe.

    The process leads its own session and process group. Stopping signals the whole
    group; a leader found dead has what is left of its group killed before it is reaped
    (the unreaped leader keeps the group id from being reused), so it leaves no orphans.
    The caller (`LocalProcessAdapter`) guards each instance with its lock.
    """

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

    def statistics(self) -> ProcessStatistics:
        """A snapshot; polls the process first, so a crash shows."""
        alive = self.alive()
        return ProcessStatistics(
            name=self.spec.name,
            running=alive,
            pid=self.proc.pid if self.proc is not None else None,
            started_at=self.started_at,
            starts=self.starts,
            restarts=self.restarts,
            last_exit_code=self.last_exit_code,
            pids=tuple(self.pids),
        )

    def spawn(self, clock: Clock) -> ActionResult:
        """Start a new process (the caller knows none runs); its start time from ``clock``."""
        spec = self.spec
        env = {**os.environ, **spec.env}
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
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
        self.proc = proc
        self.started_at = clock.now()
        self.starts += 1
        self.pids.append(proc.pid)
        return ActionResult(
            ok=True,
            detail=f"{spec.name} started (pid {proc.pid})",
            output={"pid": proc.pid, "started": True},
        )

    def stop(self) -> ActionResult:
        """SIGTERM to the group, SIGKILL after the stop timeout; reap the leader."""
        name = self.spec.name
        proc = self.proc
        if proc is None or not self.alive():
            return ActionResult(ok=True, detail=f"{name} already stopped", output={"pid": None})
        pid = proc.pid
        signal_group(pid, signal.SIGTERM)
        state = _wait_exited(pid, self.spec.stop_timeout_s)
        if state != _GONE:
            # SIGKILL the group in every case: the leader if it ignored SIGTERM, and what
            # it left behind. Until it is reaped below, the leader holds the group id.
            signal_group(pid, signal.SIGKILL)
        code = proc.wait()
        self.last_exit_code = code
        graceful = state != _RUNNING
        how = "stopped" if graceful else f"killed after {self.spec.stop_timeout_s:g} s"
        return ActionResult(
            ok=True,
            detail=f"{name} {how} (pid {pid}, exit {code})",
            output={"pid": pid, "exit_code": code, "graceful": graceful},
        )

    def alive(self) -> bool:
        """Poll the leader; when it has died, clear out its group and reap it."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return False
        state = _leader_state(proc.pid)
        if state == _RUNNING:
            return True
        if state == _ZOMBIE:
            signal_group(proc.pid, signal.SIGKILL)
        self.last_exit_code = proc.wait()
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


def signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True
