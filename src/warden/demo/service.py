"""A tiny HTTP service for the demo fleet, chained to a downstream one. Edge (demo).

Run it as ``python -m warden.demo.service --name orders --port 8102
--downstream http://127.0.0.1:8103``; it stops cleanly on SIGTERM or SIGINT.

For drills it takes faults through ``POST /admin/fault`` (``{"slow_ms": 600}``), deploys
through ``POST /admin/deploy`` (``{"version": "v2-broken"}``: a version ending in
``-broken`` fails every checkout; the version survives restarts in ``--version-file``),
and isolates its downstream through ``POST /admin/circuit`` (``{"dependency": "bank",
"state": "open"}``: checkouts then answer 200, degraded, without calling it). With
``--report URL`` it sends its deploys and its own error rate (the share of checkouts
failing in its code, not downstream) to Warden's webhook once a second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from warden.demo import JsonHandler, free_port
from warden.demo.report import Reporter
from warden.ingest.probes import describe_network_error

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = ["BROKEN_SUFFIX", "DemoServer", "ServiceState", "build_server", "free_port", "main"]

_BODY_LIMIT = 64 * 1024
BROKEN_SUFFIX = "-broken"
"""A deployed version whose name ends so fails every checkout: the drills' bad version."""
_WINDOW_S = 3.0


@dataclass
class ServiceState:
    """What drills change at run time: latency, version, circuit; and recent outcomes."""

    version: str = "v1"
    version_file: str | None = None
    slow_ms: float = 0.0
    circuit_open: bool = False
    outcomes: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=10_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load_version(self) -> None:
        """Read the deployed version kept by an earlier process, if any."""
        if self.version_file and os.path.exists(self.version_file):
            with open(self.version_file, encoding="utf-8") as f:
                self.version = f.read().strip() or self.version

    def deploy(self, version: str) -> str:
        """Switch to ``version``, keep it for the next start; returns the previous one."""
        with self.lock:
            previous, self.version = self.version, version
            if self.version_file:
                temp = self.version_file + ".tmp"
                with open(temp, "w", encoding="utf-8") as f:
                    f.write(version)
                os.replace(temp, self.version_file)
        return previous

    def record(self, own_error: bool) -> None:
        """Count one checkout; ``own_error`` when it failed in this service's own code."""
        with self.lock:
            self.outcomes.append((time.monotonic(), own_error))

    def error_rate(self) -> float | None:
        """The share of recent checkouts that failed here, or None without any."""
        since = time.monotonic() - _WINDOW_S
        with self.lock:
            recent = [bad for at, bad in self.outcomes if at >= since]
        return sum(recent) / len(recent) if recent else None


class DemoServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its service name and its downstream."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        name: str,
        downstream: str | None,
        downstream_timeout_s: float,
        state: ServiceState | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        """Bind and listen; serve with ``serve_forever``.

        Args:
            address: Host and port to listen on.
            name: The service name, reported by ``/health`` and in the chain.
            downstream: Base URL of the next service, or None for the end of the chain.
            downstream_timeout_s: How long a call to the downstream may take.
            state: Its version, faults and circuit; a fresh ``v1`` by default.
            reporter: Where deploys go; none by default.
        """
        self.downstream_name = ""
        self.state = state or ServiceState()
        self.reporter = reporter or Reporter(None, name)
        self.name = name
        self.downstream = downstream
        self.downstream_timeout_s = downstream_timeout_s
        super().__init__(address, _Handler)


class _Handler(JsonHandler):
    server: DemoServer
    server_version = "warden-demo"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        state = self.server.state
        if state.slow_ms:
            time.sleep(state.slow_ms / 1000)
        if path == "/health":
            self.reply(
                200,
                {
                    "service": self.server.name,
                    "status": "ok",
                    "pid": os.getpid(),
                    "version": state.version,
                },
            )
        elif path in ("/", "/checkout"):
            status, payload = _checkout(self.server)
            state.record(own_error=status == 500)
            self.reply(status, payload)
        else:
            self.reply(404, {"service": self.server.name, "error": f"no route {path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_object()
        if body is None:
            return
        self.reply(*_admin(self.server, path, body))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = getattr(code, "value", code)
        sys.stderr.write(f"{self.server.name}: {self.command} {self.path} {status}\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access and error lines; `log_request` writes one line."""


def _admin(server: DemoServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Carry out one admin request: a fault, a deploy or a circuit change."""
    state, name = server.state, server.name
    if path == "/admin/fault":
        slow = body.get("slow_ms", 0)
        if isinstance(slow, bool) or not isinstance(slow, int | float) or not 0 <= slow <= 60_000:
            return 400, {"error": "slow_ms must be a number of milliseconds in [0, 60000]"}
        state.slow_ms = float(slow)
        return 200, {"service": name, "slow_ms": state.slow_ms}
    if path == "/admin/deploy":
        if body.get("service", name) != name:
            return 409, {"error": f"this is {name}, not {body.get('service')}"}
        version = body.get("version")
        if not isinstance(version, str) or not 0 < len(version) <= 200:
            return 400, {"error": "version must be a non-empty string"}
        previous = state.deploy(version)
        event = {"service": name, "version": version, "previous_version": previous}
        event["by"] = str(body.get("by") or "admin")
        server.reporter.send("warden.deploy.completed", event)
        return 200, {"service": name, "version": version, "previous_version": previous}
    if path == "/admin/circuit":
        dependency = body.get("dependency")
        if server.downstream_name and dependency != server.downstream_name:
            return 409, {"error": f"{name} calls {server.downstream_name}, not {dependency}"}
        wanted = body.get("state")
        if wanted not in ("open", "closed"):
            return 400, {"error": 'state must be "open" or "closed"'}
        state.circuit_open = wanted == "open"
        return 200, {"service": name, "dependency": body.get("dependency"), "circuit": wanted}
    return 404, {"service": name, "error": f"no admin route {path}"}


def _checkout(server: DemoServer) -> tuple[int, dict[str, Any]]:
    """Call the downstream's ``/checkout``; 200 when the whole chain works, else 502.

    A broken version answers 500 without calling anyone; an open circuit answers 200,
    degraded, without calling the downstream.
    """
    name = server.name
    version = server.state.version
    if version.endswith(BROKEN_SUFFIX):
        return 500, {"service": name, "status": "error", "error": f"version {version} is broken"}
    if server.downstream is not None and server.state.circuit_open:
        return 200, {"service": name, "status": "degraded", "chain": [name], "circuit": "open"}
    if server.downstream is None:
        return 200, {"service": name, "status": "ok", "chain": [name]}
    hop = f"{name} -> {server.downstream}"
    parts = urlsplit(server.downstream)
    conn = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=server.downstream_timeout_s
    )
    try:
        conn.request("GET", parts.path.rstrip("/") + "/checkout")
        response = conn.getresponse()
        body = response.read(_BODY_LIMIT)
    except (OSError, http.client.HTTPException) as exc:
        reason = describe_network_error(exc, server.downstream_timeout_s)
        return 502, {"service": name, "status": "error", "failed_hop": hop, "error": reason}
    finally:
        conn.close()
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if response.status == 200:
        chain = payload.get("chain")
        rest = [str(s) for s in chain] if isinstance(chain, list) else []
        return 200, {"service": name, "status": "ok", "chain": [name, *rest]}
    # Report the deepest failing hop: the downstream may already name it.
    return 502, {
        "service": name,
        "status": "error",
        "failed_hop": str(payload.get("failed_hop") or hop),
        "error": str(payload.get("error") or f"HTTP {response.status}"),
    }


def build_server(
    name: str,
    port: int,
    downstream: str | None = None,
    *,
    host: str = "127.0.0.1",
    downstream_timeout_s: float = 1.0,
    state: ServiceState | None = None,
    reporter: Reporter | None = None,
) -> DemoServer:
    """Bind a demo service; the caller runs ``serve_forever`` and ``server_close``.

    Raises:
        OSError: When the address cannot be bound (for example, the port is taken).
    """
    return DemoServer((host, port), name, downstream, downstream_timeout_s, state, reporter)


def _report_errors(server: DemoServer, stop: threading.Event) -> None:
    """Send the service's own error rate once a second while it has traffic."""
    while not stop.wait(1.0):
        rate = server.state.error_rate()
        if rate is not None:
            data = {"service": server.name, "metric": "error_rate", "value": rate}
            server.reporter.send("warden.metric.sampled", data)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m warden.demo.service", description="A tiny chained HTTP service."
    )
    parser.add_argument("--name", required=True, help="service name, e.g. orders")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--downstream", help="base URL of the next service in the chain")
    parser.add_argument(
        "--downstream-timeout", type=float, default=1.0, help="seconds to wait for it"
    )
    parser.add_argument(
        "--version-file", help="keeps the deployed version across restarts (default: v1)"
    )
    parser.add_argument(
        "--downstream-name", default="", help="the downstream's service name (for circuits)"
    )
    parser.add_argument("--report", help="Warden's /v1/events URL for deploys and error rates")
    args = parser.parse_args(argv)
    if args.downstream is not None:
        parts = urlsplit(args.downstream)
        if parts.scheme != "http" or not parts.hostname:
            parser.error(f"--downstream must be an http:// URL, not {args.downstream!r}")
    if args.downstream_timeout <= 0:
        parser.error("--downstream-timeout must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one demo service until SIGTERM or SIGINT; returns the exit status."""
    args = _parse(argv)
    state = ServiceState(version_file=args.version_file)
    state.load_version()
    try:
        server = build_server(
            args.name,
            args.port,
            args.downstream,
            host=args.host,
            downstream_timeout_s=args.downstream_timeout,
            state=state,
            reporter=Reporter(args.report, args.name),
        )
        server.downstream_name = args.downstream_name
    except OSError as exc:
        sys.stderr.write(
            f"{args.name}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n"
        )
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it must not run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(
        f"{args.name}: listening on http://{args.host}:{args.port} (pid {os.getpid()},"
        f" version {state.version})\n"
    )
    stop_reports = threading.Event()
    if args.report:
        threading.Thread(
            target=_report_errors, args=(server, stop_reports), name="reports", daemon=True
        ).start()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        stop_reports.set()
        server.server_close()
    sys.stderr.write(f"{args.name}: stopped\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
