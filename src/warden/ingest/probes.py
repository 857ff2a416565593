"""Health probes over HTTP, TCP and check commands, and jittered scheduling. Data plane.

A probe never raises for a network failure: every failure is a `ProbeResult` with
``ok=False``, a short reason a human can read and the kind of failure (refused, timeout,
DNS, HTTP status, exit code, ...: :mod:`warden.domain.health`), which tells a fault of the
process from a fault of the path to it.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from warden.domain import health as kinds
from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CommandProbe",
    "HttpProbe",
    "Probe",
    "ProbeResult",
    "RandomSource",
    "TcpProbe",
    "describe_network_error",
    "jittered",
    "network_failure_kind",
    "tcp_address",
    "timed_out",
]

_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe saw.

    Attributes:
        ok: Whether the target passed.
        latency_ms: Time from the start of the probe to its outcome.
        status: The HTTP status, when a response came (None for TCP probes).
        error: Why it failed, e.g. ``"connection refused"``; empty when ``ok``.
        kind: The kind of failure (``warden.domain.health.FAILURE_KINDS``); empty when
            ``ok``, or when the probe did not say (it is then told from ``error``).
        exit_code: A check command's exit code (negative: killed by that signal).
    """

    ok: bool
    latency_ms: float
    status: int | None
    error: str
    kind: str = ""
    exit_code: int | None = None


class Probe(Protocol):
    """Anything that can check a target once."""

    def check(self) -> ProbeResult:
        """Check the target once; never raises for network failures."""
        ...


class RandomSource(Protocol):
    """The part of `random.Random` that `jittered` needs, so tests can seed it."""

    def random(self) -> float:
        """A float in [0, 1)."""
        ...


def _positive_timeout(timeout_s: float) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
        raise ConfigError(
            f"config error: probe timeout_s must be a positive number, not {timeout_s!r}"
        )
    return float(timeout_s)


def network_failure_kind(exc: BaseException) -> str:
    """The kind of a network failure (see :mod:`warden.domain.health`)."""
    if isinstance(exc, TimeoutError):
        return kinds.TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return kinds.REFUSED
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
        return kinds.RESET
    if isinstance(exc, socket.gaierror):
        return kinds.DNS
    if isinstance(exc, ssl.SSLError):
        return kinds.TLS
    if isinstance(exc, http.client.HTTPException):
        return kinds.PROTOCOL
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return kinds.UNREACHABLE
    return kinds.OTHER


def _network_failure(exc: BaseException, start: float, timeout_s: float) -> ProbeResult:
    return ProbeResult(
        ok=False,
        latency_ms=_elapsed_ms(start),
        status=None,
        error=describe_network_error(exc, timeout_s),
        kind=network_failure_kind(exc),
    )


def timed_out(host: str, timeout_s: float, start: float, *, connected: bool) -> ProbeResult:
    """A probe that timed out, saying whether the process or the path is the likely cause.

    Connected and no answer: the process is alive and wedged. No connection on loopback:
    no network lies between, so the listener's accept queue is full and the process
    accepts nothing (stopped, deadlocked). No connection elsewhere: the way to it is cut.
    """
    if connected:
        error, kind = f"no answer within {timeout_s:g} s after connecting", kinds.HUNG
    elif _is_loopback(host):
        error = f"no answer: connect timed out after {timeout_s:g} s on loopback (nothing accepts)"
        kind = kinds.HUNG
    else:
        error, kind = f"connect timed out after {timeout_s:g} s", kinds.TIMEOUT
    return ProbeResult(ok=False, latency_ms=_elapsed_ms(start), status=None, error=error, kind=kind)


def _is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def describe_network_error(exc: BaseException, timeout_s: float) -> str:
    """A short human-readable reason for a network failure.

    Args:
        exc: What the socket or HTTP client raised.
        timeout_s: The timeout in force, quoted when the failure is a timeout.

    Returns:
        A reason such as ``"connection refused"`` or ``"timed out after 0.5 s"``.
    """
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP response ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


class HttpProbe:
    """GET a URL and expect a status, optionally within a latency threshold."""

    def __init__(
        self,
        url: str,
        timeout_s: float,
        latency_threshold_ms: float | None = None,
        expect_status: int = 200,
    ) -> None:
        """Create a probe; nothing is sent yet.

        Args:
            url: An ``http://`` or ``https://`` URL.
            timeout_s: The most the whole check may take, connect to last byte read.
            latency_threshold_ms: Fail a response that took longer than this.
            expect_status: The status that counts as healthy.

        Raises:
            ConfigError: When the URL or a limit is not valid.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"config error: probe url {url!r} must be http:// or https:// with a host"
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"config error: probe url {url!r}: {exc}") from None
        if latency_threshold_ms is not None and latency_threshold_ms <= 0:
            raise ConfigError("config error: probe latency_threshold_ms must be positive")
        self.url = url
        self.timeout_s = _positive_timeout(timeout_s)
        self.latency_threshold_ms = latency_threshold_ms
        self.expect_status = expect_status
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port if port is not None else (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def __repr__(self) -> str:
        return f"HttpProbe({self.url!r}, timeout_s={self.timeout_s:g})"

    def check(self) -> ProbeResult:
        """GET the URL once and judge the response; never raises for network failures."""
        start = time.perf_counter()
        deadline = start + self.timeout_s
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        connected = False
        try:
            conn.connect()
            connected = True
            _limit(conn, deadline)
            conn.request("GET", self._path, headers={"User-Agent": "warden-probe"})
            _limit(conn, deadline)
            response = conn.getresponse()
            _limit(conn, deadline)
            response.read(_BODY_LIMIT)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError):
                return timed_out(self._host, self.timeout_s, start, connected=connected)
            return _network_failure(exc, start, self.timeout_s)
        finally:
            conn.close()
        latency_ms = _elapsed_ms(start)
        if status != self.expect_status:
            return ProbeResult(
                ok=False,
                latency_ms=latency_ms,
                status=status,
                error=f"HTTP {status}",
                kind=kinds.HTTP_STATUS,
            )
        threshold = self.latency_threshold_ms
        if threshold is not None and latency_ms > threshold:
            return ProbeResult(
                ok=False,
                latency_ms=latency_ms,
                status=status,
                error=f"latency {latency_ms:.0f} ms above {threshold:g} ms",
                kind=kinds.LATENCY,
            )
        return ProbeResult(ok=True, latency_ms=latency_ms, status=status, error="")


def tcp_address(url: str) -> tuple[str, int]:
    """The host and port of a ``tcp://host:port`` health target.

    Raises:
        ConfigError: The URL is not ``tcp://`` with a host and a port from 1 to 65535.
    """
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname:
        raise ConfigError(f"config error: {url!r} is not tcp://host:port")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None or not 0 < port < 65536:
        raise ConfigError(
            f"config error: {url!r} needs a port from 1 to 65535 (e.g. tcp://127.0.0.1:5432)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(
            f"config error: {url!r}: a TCP check takes only a host and a port, no path,"
            " query or user"
        )
    return parts.hostname, port


class TcpProbe:
    """Open a TCP connection and close it again."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        """Create a probe; nothing is sent yet.

        Args:
            host: A host name or address.
            port: A TCP port, 1 to 65535.
            timeout_s: The most the connect may take.

        Raises:
            ConfigError: When the host, port or timeout is not valid.
        """
        if not host:
            raise ConfigError("config error: probe host must not be empty")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"config error: probe port must be 1 to 65535, not {port!r}")
        self.host = host
        self.port = port
        self.timeout_s = _positive_timeout(timeout_s)

    def __repr__(self) -> str:
        return f"TcpProbe({self.host!r}, {self.port}, timeout_s={self.timeout_s:g})"

    def check(self) -> ProbeResult:
        """Connect once; never raises for network failures."""
        start = time.perf_counter()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except TimeoutError:
            return timed_out(self.host, self.timeout_s, start, connected=False)
        except OSError as exc:
            return _network_failure(exc, start, self.timeout_s)
        sock.close()
        return ProbeResult(ok=True, latency_ms=_elapsed_ms(start), status=None, error="")


_OUTPUT_LIMIT = 4096


class CommandProbe:
    """Run a check command: exit code 0 is healthy, anything else (or no exit in time) not.

    The command runs without a shell, in its own process group (killed whole when it
    overruns), with only the environment it is given: the assembly gives it what a managed
    process gets (``PATH``, ``HOME``, ``LANG`` and the service's ``env:``), never Warden's
    keys and tokens.
    """

    def __init__(
        self,
        argv: Sequence[str],
        timeout_s: float,
        *,
        env: Mapping[str, str],
        cwd: str | None = None,
    ) -> None:
        """Create a probe; nothing runs yet.

        Args:
            argv: The command and its arguments, e.g. ``["pg_isready", "-q"]``.
            timeout_s: How long the command may run before it is killed and fails.
            env: Its whole environment.
            cwd: Where it runs (default: Warden's working directory).

        Raises:
            ConfigError: When the command is empty or the timeout not positive.
        """
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ConfigError(
                f"config error: a check command is a non-empty list of arguments, not {argv!r}"
            )
        if not argv[0]:
            raise ConfigError("config error: a check command needs a program to run")
        self.argv = tuple(argv)
        self.timeout_s = _positive_timeout(timeout_s)
        self.env = dict(env)
        self.cwd = cwd

    def __repr__(self) -> str:
        # The program only: arguments may carry credentials, and this names the probe in
        # every event it records.
        more = len(self.argv) - 1
        args = f" + {more} argument{'s' if more != 1 else ''}" if more else ""
        return f"CommandProbe({self.argv[0]!r}{args}, timeout_s={self.timeout_s:g})"

    def check(self) -> ProbeResult:
        """Run the command once; never raises for a command that fails or cannot run."""
        start = time.perf_counter()
        try:
            child = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return ProbeResult(
                ok=False,
                latency_ms=_elapsed_ms(start),
                status=None,
                error=f"cannot run {self.argv[0]}: {reason[:1].lower()}{reason[1:]}",
                kind=kinds.NOT_RUN,
            )
        try:
            output, _ = child.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            return ProbeResult(
                ok=False,
                latency_ms=_elapsed_ms(start),
                status=None,
                error=f"check command timed out after {self.timeout_s:g} s",
                kind=kinds.TIMEOUT,
            )
        latency_ms = _elapsed_ms(start)
        code = child.returncode
        if code == 0:
            return ProbeResult(ok=True, latency_ms=latency_ms, status=None, error="", exit_code=0)
        said = _last_line(output)
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return ProbeResult(
            ok=False,
            latency_ms=latency_ms,
            status=None,
            error=f"check command {how}" + (f": {said}" if said else ""),
            kind=kinds.EXIT_CODE,
            exit_code=code,
        )


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """Kill the command and whatever it started, then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    try:
        child.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a grandchild outside the group holds the pipe
        child.kill()
        child.wait()


def _last_line(output: bytes | None) -> str:
    """The last non-empty line a command printed, bounded, for the failure's reason."""
    text = (output or b"")[-_OUTPUT_LIMIT:].decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def jittered(interval_s: float, jitter_fraction: float, rng: RandomSource) -> float:
    """A probe interval spread by up to ``± jitter_fraction``, so probes do not align.

    Args:
        interval_s: The nominal interval, in seconds.
        jitter_fraction: How far to spread, in [0, 1): 0.1 gives 90 % to 110 %.
        rng: The random source; seed it for reproducible schedules.

    Returns:
        A positive interval in ``[interval_s * (1 - f), interval_s * (1 + f))``.

    Raises:
        ConfigError: When the interval is not positive or the fraction not in [0, 1).
    """
    if interval_s <= 0:
        raise ConfigError(f"config error: probe interval must be positive, not {interval_s!r}")
    if not 0 <= jitter_fraction < 1:
        raise ConfigError(f"config error: probe jitter must be in [0, 1), not {jitter_fraction!r}")
    return interval_s * (1 + jitter_fraction * (2 * rng.random() - 1))


def _limit(conn: http.client.HTTPConnection, deadline: float) -> None:
    """Shrink the socket timeout to what is left of the probe's overall deadline."""
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise TimeoutError("probe deadline passed")
    if conn.sock is not None:
        conn.sock.settimeout(remaining)


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
