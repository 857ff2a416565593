"""The webhook on a real socket: an asyncio HTTP/1.1 server (uvicorn). Data plane (shell).

One event-loop thread serves every connection, so a burst of senders costs sockets, not
threads; the loop hands events to the :class:`~warden.ingest.writer.IngestWriter` and
answers when they are stored, without blocking other requests meanwhile. Memory stays
bounded under overload: past ``max_in_flight`` requests being served, a new one gets
``503`` with ``Retry-After`` before its body is read.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
import uvicorn

from warden.domain.errors import ConfigError
from warden.ingest.cloudevents import GenericRoute
from warden.ingest.webhook import (
    QUARANTINE_PREFIX_BYTES,
    Request,
    Response,
    WebhookApp,
    WebhookSettings,
)
from warden.ingest.writer import IngestWriter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, MutableMapping

    from warden.ingest.pipeline import Pipeline, Tally
    from warden.ports import Clock

    _Scope = MutableMapping[str, Any]
    _Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    _Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["WebhookServer", "WebhookSource"]

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0


class _Asgi:
    """Turns ASGI messages into :class:`Request` and a :class:`Response` back."""

    def __init__(self, app: WebhookApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # only the event loop's thread touches it

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are refused by the server
        if self.in_flight >= self.max_in_flight:
            busy = self.app.refuse_busy(f"{self.in_flight} requests are being served")
            await _send(send, busy, close=True)  # the body was not read
            return
        self.in_flight += 1
        try:
            await self._serve(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _serve(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        request = await self._read(scope, headers, receive)
        if request is None:
            return  # the sender went away mid-body; nobody to answer
        try:
            response = await self.app.handle_async(request)
        except Exception:
            log.exception("webhook: unexpected failure")
            response = Response(500, {"error": "internal error; the input was not taken"})
        # Only part of the body was read: the connection cannot carry another request.
        whole = request.declared_length <= self.app.settings.max_body_bytes
        await _send(send, response, close=not whole)

    async def _read(
        self, scope: _Scope, headers: Mapping[str, str], receive: _Receive
    ) -> Request | None:
        limit = self.app.settings.max_body_bytes
        chunked = "content-length" not in headers and "transfer-encoding" in headers
        # The HTTP parser has already refused a Content-Length that is not a number.
        declared = int(headers.get("content-length", "0") or 0)
        # A body declared too big is read only as far as quarantine keeps; a chunked one
        # until it passes the limit.
        keep = QUARANTINE_PREFIX_BYTES if declared > limit else limit + 1
        parts: list[bytes] = []
        received = 0
        more = True
        while more and received < keep:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            parts.append(chunk)
            received += len(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(parts)
        if chunked:
            declared = received
        return Request(scope["method"], scope["path"], headers, body, declared, chunked)


async def _send(send: _Send, response: Response, *, close: bool) -> None:
    payload = orjson.dumps(response.body, default=str)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class WebhookServer:
    """The webhook app on a real socket, served from a background thread."""

    def __init__(
        self,
        app: WebhookApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_in_flight: int = 256,
    ) -> None:
        """Bind the socket now, so a taken port fails here with the OS's reason.

        Args:
            app: What answers requests.
            host: The address to listen on (``0.0.0.0`` or ``::`` for every interface).
            port: The port; 0 picks a free one (see :attr:`port`).
            max_in_flight: Requests served at once (their bodies are in memory); more
                get 503 with ``Retry-After``.
        """
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._socket = socket.create_server((host, port), family=family, backlog=1024)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"the webhook cannot listen on {host}:{port}: {reason}; free that port or"
                " choose another (sources.webhook.port)"
            ) from None
        config = uvicorn.Config(
            _Asgi(app, max_in_flight),
            loop="uvloop",
            http="httptools",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, round(app.settings.wait_timeout_s)),
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        host = self._socket.getsockname()[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread; returns once the server accepts connections.

        Raises:
            RuntimeError: The server did not start (its error is in the log).
        """
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="webhook", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the webhook server stopped while starting; see the log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the webhook server did not start in {_START_TIMEOUT_S:g} s")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop accepting, finish requests in flight, close the socket."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
            self._thread = None
        self._socket.close()


class WebhookSource:
    """The webhook as a :class:`~warden.ingest.sources.Source`: serves until stopped."""

    name = "webhook"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8088,
        *,
        token: str = "",
        routes: Mapping[str, GenericRoute] | None = None,
        capacity: int = 64,
        max_body_bytes: int = 1024 * 1024,
        max_in_flight: int = 256,
        clock: Clock | None = None,
        on_ready: Callable[[WebhookServer], None] | None = None,
    ) -> None:
        if type(port) is not int or not 0 <= port <= 65535:
            raise ConfigError(
                f"sources.webhook.port: {port!r} is not a port; give a number from 1 to 65535"
            )
        self.host = host
        self.port = port
        self.capacity = capacity
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.on_ready = on_ready
        self.settings = WebhookSettings(
            token=token,
            routes=dict(routes) if routes is not None else {"default": GenericRoute()},
            max_body_bytes=max_body_bytes,
        )

    def run(self, pipeline: Pipeline, stop: threading.Event) -> Tally:
        """Serve until ``stop`` is set; then drain the queue. Returns what it ingested."""
        before = pipeline.statistics()
        writer = IngestWriter(pipeline, capacity=self.capacity)
        writer.start()
        clock = self.clock or pipeline.gate.clock
        app = WebhookApp(writer, clock, self.settings)
        server = WebhookServer(app, self.host, self.port, max_in_flight=self.max_in_flight)
        try:
            server.start()
            if self.on_ready is not None:
                self.on_ready(server)
            stop.wait()
        finally:
            server.stop()
            writer.close()
        return pipeline.statistics().since(before)
