"""The API and console on a real socket: uvicorn in a background thread. Edge (API)."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from warden.api.context import ApiContext

_START_TIMEOUT_S = 10.0


class ApiServer:
    """Serves an ASGI app from a thread; binds at once so a taken port fails here."""

    def __init__(
        self, app: FastAPI, ctx: ApiContext, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.ctx = ctx
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._socket = socket.create_server((host, port), family=family, backlog=256)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"the API cannot listen on {host}:{port}: {reason}; free that port or choose"
                " another (api.port in warden.yaml, or --port)"
            ) from None
        config = uvicorn.Config(
            app,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8400``."""
        host, port = self._socket.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> None:
        """Serve in a background thread; returns once connections are accepted."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the API server stopped while starting; see the log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start in {_START_TIMEOUT_S:g} s")
            time.sleep(0.005)

    def serve_forever(self, stop: threading.Event) -> None:
        """Start, wait until ``stop`` is set, then stop."""
        self.start()
        try:
            while not stop.wait(0.2):
                if self._thread is not None and not self._thread.is_alive():
                    raise RuntimeError("the API server stopped; see the log")
        finally:
            self.stop()

    def stop(self) -> None:
        """End live streams, finish requests in flight, close the socket."""
        self.ctx.stopping.set()
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
            self._thread = None
        self._socket.close()
