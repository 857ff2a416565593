"""The demo fleet: small local HTTP services Warden supervises in drills. Edge (demo).

`free_port` finds a port for a service to listen on; `JsonHandler` is what the demo
services' request handlers share: JSON bodies in, JSON answers out.
"""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["JsonHandler", "free_port"]

_BODY_LIMIT = 64 * 1024


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that reads a JSON object body and answers JSON."""

    def read_object(self) -> dict[str, Any] | None:
        """The request's JSON object (empty body: ``{}``); None, answered 400, if not one."""
        try:
            length = min(int(self.headers.get("Content-Length") or 0), _BODY_LIMIT)
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.reply(400, {"error": "the body must be a JSON object"})
            return None
        return body

    def reply(self, status: int, payload: dict[str, Any]) -> None:
        """Answer ``payload`` as JSON with ``status``."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (another process may still take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
