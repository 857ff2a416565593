"""Serving an ASGI app with uvicorn from a background thread, on a socket bound at once. Shell.

The webhook (:mod:`warden.ingest.webhook_server`) and the API (:mod:`warden.api.server`)
both bind first, so a taken port fails in the constructor with the fix, then serve from a
daemon thread and return once connections are accepted.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

START_TIMEOUT_S = 10.0

__all__ = ["START_TIMEOUT_S", "base_url", "bind", "start_in_thread", "stop_thread"]


def bind(host: str, port: int, backlog: int, what: str, fix: str) -> socket.socket:
    """A listening socket on ``host:port``; a ConfigError naming ``what`` and ``fix`` if not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"{what} cannot listen on {host}:{port}: {reason}; free that port or choose"
            f" another ({fix})"
        ) from None


def base_url(sock: socket.socket) -> str:
    """The base URL of a bound socket, e.g. ``http://127.0.0.1:8080`` or ``http://[::1]:80``."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def start_in_thread(server: uvicorn.Server, sock: socket.socket, name: str) -> threading.Thread:
    """Serve from a daemon thread named ``name``; returns it once connections are accepted.

    Raises:
        RuntimeError: The server stopped, or did not start in :data:`START_TIMEOUT_S`.
    """
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the {name} server stopped while starting; see the log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {name} server did not start in {START_TIMEOUT_S:g} s")
        time.sleep(0.005)
    return thread


def stop_thread(server: uvicorn.Server, thread: threading.Thread | None) -> None:
    """Ask the server to exit (requests in flight finish) and wait for its thread."""
    if thread is not None:
        server.should_exit = True
        thread.join()
