"""Health probes over HTTP and TCP, and jittered probe scheduling. Data plane (ingest).

A probe never raises for a network failure: every failure is a `ProbeResult` with
``ok=False`` and a short reason a human can read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from warden.domain.errors import ConfigError

__all__ = [
    "HttpProbe",
    "Probe",
    "ProbeResult",
    "RandomSource",
    "TcpProbe",
    "describe_network_error",
    "jittered",
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
    """

    ok: bool
    latency_ms: float
    status: int | None
    error: str


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
            error = describe_network_error(exc, self.timeout_s)
            if isinstance(exc, TimeoutError):
                # Connected and no answer: the process is alive and wedged. No connection:
                # the way to it is cut. Diagnosis reads the difference.
                error = (
                    f"no answer within {self.timeout_s:g} s after connecting"
                    if connected
                    else f"connect {error}"
                )
            return ProbeResult(ok=False, latency_ms=_elapsed_ms(start), status=None, error=error)
        finally:
            conn.close()
        latency_ms = _elapsed_ms(start)
        if status != self.expect_status:
            return ProbeResult(
                ok=False, latency_ms=latency_ms, status=status, error=f"HTTP {status}"
            )
        threshold = self.latency_threshold_ms
        if threshold is not None and latency_ms > threshold:
            return ProbeResult(
                ok=False,
                latency_ms=latency_ms,
                status=status,
                error=f"latency {latency_ms:.0f} ms above {threshold:g} ms",
            )
        return ProbeResult(ok=True, latency_ms=latency_ms, status=status, error="")


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
        except OSError as exc:
            return ProbeResult(
                ok=False,
                latency_ms=_elapsed_ms(start),
                status=None,
                error=describe_network_error(exc, self.timeout_s),
            )
        sock.close()
        return ProbeResult(ok=True, latency_ms=_elapsed_ms(start), status=None, error="")


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
