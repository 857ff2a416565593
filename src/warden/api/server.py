"""The API and console on a real socket: uvicorn in a background thread. Edge (API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import uvicorn

from warden.ingest.serving import base_url, bind, start_in_thread, stop_thread

if TYPE_CHECKING:
    import threading

    from fastapi import FastAPI

    from warden.api.context import ApiContext


class ApiServer:
    """Serves an ASGI app from a thread; binds at once so a taken port fails here."""

    def __init__(
        self, app: FastAPI, ctx: ApiContext, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.ctx = ctx
        self._socket = bind(host, port, 256, "the API", "api.port in warden.yaml, or --port")
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
        return base_url(self._socket)

    def start(self) -> None:
        """Serve in a background thread; returns once connections are accepted."""
        self._thread = start_in_thread(self._server, self._socket, "API")

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
        stop_thread(self._server, self._thread)
        self._thread = None
        self._socket.close()
