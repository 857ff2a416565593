"""Local process supervision: one service's process group, started, polled, stopped, reaped.

POSIX only; used by `warden.execution.adapters.process`. Action plane.
"""

from __future__ import annotations

import json
import logging
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
from warden.execution.adapters.http_routes import SECRET_REFERENCE
from warden.execution.adapters.procfs import cmdline, group_of, runs, start_ticks
from warden.ports import ActionResult
from warden.store.private import private_dir, private_file

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from warden.ports import Clock

__all__ = [
    "INHERITED",
    "Adopted",
    "ProcessSpec",
    "ProcessStatistics",
    "SupervisedProcess",
    "child_environment",
    "signal_group",
]

INHERITED = ("PATH", "HOME", "LANG")
"""The only variables of Warden's own environment a managed process inherits unasked."""


def child_environment(
    declared: Mapping[str, str], parent: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a managed process: :data:`INHERITED` plus what its config declares.

    Raises:
        ConfigError: a ``${NAME}`` reference names a variable ``parent`` does not have.
    """
    outer: Mapping[str, str] = os.environ if parent is None else parent
    env = {name: outer[name] for name in INHERITED if name in outer}
    for key, template in declared.items():
        missing = [n for n in SECRET_REFERENCE.findall(template) if n not in outer]
        if missing:
            raise ConfigError(
                f"env.{key}: ${{{missing[0]}}} is not set; export {missing[0]} for Warden"
            )
        env[key] = SECRET_REFERENCE.sub(lambda m: outer[m.group(1)], template)
    return env


log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_POLL_INTERVAL_S = 0.02


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """A process declared in configuration.

    Attributes:
        name: The service name, used as the action target and for the log file name.
        argv: The program and its arguments; never a shell string.
        cwd: Working directory, or None for the adapter's own.
        env: The variables the process gets besides :data:`INHERITED` (never the rest of
            Warden's environment, which holds its keys and tokens); ``${NAME}`` in a
            value is replaced by Warden's variable ``NAME`` at each start.
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
    try:
        child_environment(env)
    except ConfigError as exc:  # found now, not when the process is first started
        return str(exc)
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
        adopted: The running process was left by an earlier Warden and taken over.
    """

    name: str
    running: bool
    pid: int | None
    started_at: datetime | None
    starts: int
    restarts: int
    last_exit_code: int | None
    pids: tuple[int, ...]
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class Adopted:
    """A process an earlier adapter started, found still running: not our child.

    ``start_ticks`` (its start time in /proc) tells it from a later process that got the
    same pid once it ended.
    """

    pid: int
    start_ticks: str


@dataclass(slots=True)
class SupervisedProcess:
    """One service: its current process and what happened to it; not thread-safe.

    The process leads its own session and process group. Stopping signals the whole
    group; a leader found dead has what is left of its group killed before it is reaped
    (the unreaped leader keeps the group id from being reused), so it leaves no orphans.
    The caller (`LocalProcessAdapter`) guards each instance with its lock.

    With a ``pid_path``, every start is recorded there (pid, start time, argv), so that
    after Warden itself stopped without stopping its services, the next adapter takes
    the running process over (:meth:`adopt`) instead of starting a second copy.
    """

    spec: ProcessSpec
    log_path: Path
    pid_path: Path | None = None
    adopted: Adopted | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: datetime | None = None
    starts: int = 0
    restarts: int = 0
    last_exit_code: int | None = None
    pids: list[int] = field(default_factory=list)
    restarted: bool = False
    pid_before_restart: int | None = None

    @property
    def pid(self) -> int | None:
        """The pid of the current (or last) process, started or adopted."""
        if self.proc is not None:
            return self.proc.pid
        return self.adopted.pid if self.adopted is not None else None

    def statistics(self) -> ProcessStatistics:
        """A snapshot; polls the process first, so a crash shows."""
        alive = self.alive()
        return ProcessStatistics(
            name=self.spec.name,
            running=alive,
            pid=self.pid,
            started_at=self.started_at,
            starts=self.starts,
            restarts=self.restarts,
            last_exit_code=self.last_exit_code,
            pids=tuple(self.pids),
            adopted=alive and self.adopted is not None,
        )

    def adopt(self) -> bool:
        """Take over the process an earlier adapter recorded, if that very process runs.

        It must still run with the recorded start time (not a later process given the
        same pid) and the spec's argv, and lead its own process group. A record that
        fails any of these is removed.
        """
        if self.pid_path is None or not self.pid_path.exists():
            return False
        try:
            record = json.loads(self.pid_path.read_text())
            pid, ticks = int(record["pid"]), str(record["start_ticks"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable pid record %s", self.pid_path)
            self._forget_pid()
            return False
        if (
            start_ticks(pid) != ticks
            or cmdline(pid) != self.spec.argv
            or group_of(pid) != pid
            or not runs(pid, ticks)
        ):
            self._forget_pid()
            return False
        self.adopted = Adopted(pid, ticks)
        self.pids.append(pid)
        log.info("%s: took over pid %d, started by an earlier Warden", self.spec.name, pid)
        return True

    def spawn(self, clock: Clock) -> ActionResult:
        """Start a new process (the caller knows none runs); its start time from ``clock``."""
        spec = self.spec
        try:
            env = child_environment(spec.env)
        except ConfigError as exc:
            return ActionResult(ok=False, detail=f"cannot start {spec.name}: {exc}", output={})
        try:
            private_dir(self.log_path.parent)
            with private_file(self.log_path).open("ab") as log:
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
        self.adopted = None
        self.started_at = clock.now()
        self.starts += 1
        self.pids.append(proc.pid)
        self._record_pid(proc.pid)
        return ActionResult(
            ok=True,
            detail=f"{spec.name} started (pid {proc.pid})",
            output={"pid": proc.pid, "started": True},
        )

    def stop(self) -> ActionResult:
        """SIGTERM to the group, SIGKILL after the stop timeout; reap the leader."""
        name = self.spec.name
        if not self.alive():
            return ActionResult(ok=True, detail=f"{name} already stopped", output={"pid": None})
        if self.adopted is not None:
            return self._stop_adopted(self.adopted)
        proc = self.proc
        assert proc is not None
        pid = proc.pid
        signal_group(pid, signal.SIGTERM)
        state = _wait_exited(pid, self.spec.stop_timeout_s)
        if state != _GONE:
            # SIGKILL the group in every case: the leader if it ignored SIGTERM, and what
            # it left behind. Until it is reaped below, the leader holds the group id.
            signal_group(pid, signal.SIGKILL)
        code = proc.wait()
        self.last_exit_code = code
        self._forget_pid()
        graceful = state != _RUNNING
        how = "stopped" if graceful else f"killed after {self.spec.stop_timeout_s:g} s"
        return ActionResult(
            ok=True,
            detail=f"{name} {how} (pid {pid}, exit {code})",
            output={"pid": pid, "exit_code": code, "graceful": graceful},
        )

    def alive(self) -> bool:
        """Poll the leader; when it has died, clear out its group and reap it."""
        if self.adopted is not None:
            if runs(self.adopted.pid, self.adopted.start_ticks):
                return True
            # Not our child: its exit status went to its parent, and its group id may be
            # reused already, so nothing is signalled.
            self.adopted = None
            self.last_exit_code = None
            self._forget_pid()
            return False
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return False
        state = _leader_state(proc.pid)
        if state == _RUNNING:
            return True
        if state == _ZOMBIE:
            signal_group(proc.pid, signal.SIGKILL)
        self.last_exit_code = proc.wait()
        self._forget_pid()
        return False

    def _stop_adopted(self, adopted: Adopted) -> ActionResult:
        """Stop a process this adapter did not start: signal its group, watch /proc."""
        name, pid = self.spec.name, adopted.pid
        signal_group(pid, signal.SIGTERM)
        graceful = _wait_gone(adopted, self.spec.stop_timeout_s)
        if not graceful:
            if runs(pid, adopted.start_ticks):
                signal_group(pid, signal.SIGKILL)
            _wait_gone(adopted, max(1.0, self.spec.stop_timeout_s))
        self.adopted = None
        self.last_exit_code = None
        self._forget_pid()
        how = "stopped" if graceful else f"killed after {self.spec.stop_timeout_s:g} s"
        return ActionResult(
            ok=True,
            detail=f"{name} {how} (pid {pid}, taken over from an earlier Warden)",
            output={"pid": pid, "exit_code": None, "graceful": graceful},
        )

    def _record_pid(self, pid: int) -> None:
        if self.pid_path is None:
            return
        ticks = start_ticks(pid)
        if ticks is None:
            return  # it died already; alive() will find out
        record = {"pid": pid, "start_ticks": ticks, "argv": list(self.spec.argv)}
        try:
            private_dir(self.pid_path.parent)
            temp = self.pid_path.with_suffix(".pid.tmp")
            private_file(temp).write_text(json.dumps(record))
            temp.replace(self.pid_path)
        except OSError as exc:
            log.warning(
                "%s: cannot record pid %d in %s: %s", self.spec.name, pid, self.pid_path, exc
            )

    def _forget_pid(self) -> None:
        if self.pid_path is not None:
            self.pid_path.unlink(missing_ok=True)


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


def _wait_gone(adopted: Adopted, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for an adopted process to end; True when it did."""
    deadline = time.monotonic() + timeout_s
    while runs(adopted.pid, adopted.start_ticks):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL_S)
    return True


def signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True
