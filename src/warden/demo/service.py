"""A tiny HTTP service for the demo fleet, chained to a downstream one. Edge (demo).

Run it as ``python -m warden.demo.service --name orders --port 8102
--downstream http://127.0.0.1:8103``; it stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from warden.demo import free_port
from warden.ingest.probes import describe_network_error

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = ["DemoServer", "build_server", "free_port", "main"]

_BODY_LIMIT = 64 * 1024


class DemoServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its service name and its downstream."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        name: str,
        downstream: str | None,
        downstream_timeout_s: float,
    ) -> None:
        """Bind and listen; serve with ``serve_forever``.

        Args:
            address: Host and port to listen on.
            name: The service name, reported by ``/health`` and in the chain.
            downstream: Base URL of the next service, or None for the end of the chain.
            downstream_timeout_s: How long a call to the downstream may take.
        """
        self.name = name
        self.downstream = downstream
        self.downstream_timeout_s = downstream_timeout_s
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: DemoServer
    server_version = "warden-demo"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self._reply(200, {"service": self.server.name, "status": "ok", "pid": os.getpid()})
        elif path in ("/", "/checkout"):
            self._reply(*_checkout(self.server))
        else:
            self._reply(404, {"service": self.server.name, "error": f"no route {path}"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = getattr(code, "value", code)
        sys.stderr.write(f"{self.server.name}: {self.command} {self.path} {status}\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access and error lines; `log_request` writes one line."""


def _checkout(server: DemoServer) -> tuple[int, dict[str, Any]]:
    """Call the downstream's ``/checkout``; 200 when the whole chain works, else 502."""
    name = server.name
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
) -> DemoServer:
    """Bind a demo service; the caller runs ``serve_forever`` and ``server_close``.

    Raises:
        OSError: When the address cannot be bound (for example, the port is taken).
    """
    return DemoServer((host, port), name, downstream, downstream_timeout_s)


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
    try:
        server = build_server(
            args.name,
            args.port,
            args.downstream,
            host=args.host,
            downstream_timeout_s=args.downstream_timeout,
        )
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
        f"{args.name}: listening on http://{args.host}:{args.port} (pid {os.getpid()})\n"
    )
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    sys.stderr.write(f"{args.name}: stopped\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
