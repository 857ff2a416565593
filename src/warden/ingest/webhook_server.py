"""The webhook on a real socket: an asyncio HTTP/1.1 server (uvicorn). Data plane (shell).

One event-loop thread serves every connection, so a burst of senders costs sockets, not
threads; the loop hands events to the :class:`~warden.ingest.writer.IngestWriter` and
answers when they are stored, without blocking other requests meanwhile. Memory stays
bounded under overload: past ``max_in_flight`` requests being served, a new one gets
``503`` with ``Retry-After`` before its body is read. Requests are authenticated from
their headers before they count or are read, and slow clients are cut: a request head
must arrive within ``header_timeout_s``, a body within ``body_timeout_s`` (408).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import uvicorn

from warden.domain.errors import ConfigError
from warden.ingest.auth import DEFAULT_TOLERANCE_S, Denied, Pending, SenderAuth
from warden.ingest.cloudevents import GenericRoute
from warden.ingest.head_timeout import protocol_with_head_timeout
from warden.ingest.senders import Sender, senders_from_options
from warden.ingest.serving import base_url, bind, start_in_thread, stop_thread
from warden.ingest.webhook import (
    QUARANTINE_PREFIX_BYTES,
    Request,
    Response,
    WebhookApp,
    WebhookSettings,
    unauthenticated,
)
from warden.ingest.writer import IngestWriter

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence

    from warden.ingest.alert_routing import AlertRouting
    from warden.ingest.pipeline import Pipeline, Tally
    from warden.ports import Clock

    _Scope = MutableMapping[str, Any]
    _Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    _Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["WebhookServer", "WebhookSource"]

log = logging.getLogger(__name__)


class _Asgi:
    """Turns ASGI messages into :class:`Request` and a :class:`Response` back.

    A request is authenticated from its headers before it counts against
    ``max_in_flight`` and before its body is read: one without valid credentials gets 401
    at once. A Standard Webhooks request whose headers pass (timestamp in the window, a
    well-formed signature, a fresh id) still needs its body to prove itself, so it is read
    under a separate, small budget (``max_pending``): unauthenticated slow bodies can
    fill that one, never the pool that authenticated senders use.
    """

    def __init__(self, app: WebhookApp, limits: _Limits) -> None:
        self.app = app
        self.limits = limits
        # only the event loop's thread touches these
        self.in_flight = 0
        self.pending = 0

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are refused by the server
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        head = Request(scope["method"], scope["path"], headers)
        checked: Sender | Pending | Denied | None = None
        if self.app.needs_sender(head):
            checked = self.app.auth.check_headers(headers)
        if isinstance(checked, Denied):
            await _send(send, self.app.refuse(unauthenticated(checked)), close=True)
            return
        request: Request | None = None
        if isinstance(checked, Pending):
            if self.pending >= self.limits.max_pending:
                why = f"{self.pending} signed requests are being verified"
                await _send(send, self.app.refuse_busy(why), close=True)
                return
            self.pending += 1
            try:
                request = await self._read(scope, headers, receive, send)
            finally:
                self.pending -= 1
            if request is None:
                return
            if request.declared_length > self.app.settings.max_body_bytes:
                too_big = self.app.refuse(_too_large(self.app.settings.max_body_bytes))
                await _send(send, too_big, close=True)
                return
            checked = self.app.auth.verify(checked, request.body)
            if isinstance(checked, Denied):
                await _send(send, self.app.refuse(unauthenticated(checked)), close=True)
                return
        if self.in_flight >= self.limits.max_in_flight:
            busy = self.app.refuse_busy(f"{self.in_flight} requests are being served")
            await _send(send, busy, close=request is None)  # close: the body was not read
            return
        self.in_flight += 1
        try:
            await self._serve(scope, headers, receive, send, request, checked)
        finally:
            self.in_flight -= 1

    async def _serve(
        self,
        scope: _Scope,
        headers: Mapping[str, str],
        receive: _Receive,
        send: _Send,
        request: Request | None,
        sender: Sender | None,
    ) -> None:
        if request is None:
            request = await self._read(scope, headers, receive, send)
            if request is None:
                return  # the sender went away or was too slow; answered if possible
        try:
            response = await self.app.handle_async(request, sender)
        except Exception:
            log.exception("webhook: unexpected failure")
            response = Response(500, {"error": "internal error; the input was not taken"})
        # Only part of the body was read: the connection cannot carry another request.
        whole = request.declared_length <= self.app.settings.max_body_bytes
        await _send(send, response, close=not whole)

    async def _read(
        self, scope: _Scope, headers: Mapping[str, str], receive: _Receive, send: _Send
    ) -> Request | None:
        """The body, or ``None`` when the sender left or did not finish in time (408)."""
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                return await self._read_body(scope, headers, receive)
        except TimeoutError:
            late = Response(
                408, {"error": f"the body did not arrive within {self.limits.body_timeout_s:g} s"}
            )
            await _send(send, self.app.refuse(late), close=True)
            return None

    async def _read_body(
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


def _too_large(limit: int) -> Response:
    return Response(413, {"error": f"the body is over the limit of {limit} bytes"})


@dataclass(frozen=True, slots=True)
class _Limits:
    max_in_flight: int
    max_pending: int
    body_timeout_s: float


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
        max_pending: int = 32,
        header_timeout_s: float = 10.0,
        body_timeout_s: float = 30.0,
    ) -> None:
        """Bind the socket now, so a taken port fails here with the OS's reason.

        Args:
            app: What answers requests.
            host: The address to listen on (``0.0.0.0`` or ``::`` for every interface).
            port: The port; 0 picks a free one (see :attr:`port`).
            max_in_flight: Authenticated requests served at once (their bodies are in
                memory); more get 503 with ``Retry-After``.
            max_pending: Signed requests whose bodies are read to check the signature,
                at once; more get 503.
            header_timeout_s: A request head not complete in this time is cut (408).
            body_timeout_s: A body not complete in this time is cut (408).
        """
        if max_in_flight < 1 or max_pending < 1:
            raise ValueError("max_in_flight and max_pending must be at least 1")
        if header_timeout_s <= 0 or body_timeout_s <= 0:
            raise ValueError("header_timeout_s and body_timeout_s must be positive")
        self.app = app
        self._socket = bind(host, port, 1024, "the webhook", "sources.webhook.port")
        self.asgi = _Asgi(app, _Limits(max_in_flight, max_pending, body_timeout_s))
        config = uvicorn.Config(
            self.asgi,
            loop="uvloop",
            http=protocol_with_head_timeout(header_timeout_s),
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
        return base_url(self._socket)

    def start(self) -> None:
        """Serve in a background thread; returns once the server accepts connections.

        Raises:
            RuntimeError: The server did not start (its error is in the log).
        """
        self._thread = start_in_thread(self._server, self._socket, "webhook")

    def stop(self) -> None:
        """Stop accepting, finish requests in flight, close the socket."""
        stop_thread(self._server, self._thread)
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
        senders: Mapping[str, Mapping[str, Any]] | None = None,
        token: str = "",
        insecure: bool = False,
        allow_types: Sequence[str] = (),
        auth: SenderAuth | None = None,
        replay_tolerance_s: float = DEFAULT_TOLERANCE_S,
        routes: Mapping[str, GenericRoute] | None = None,
        capacity: int = 64,
        max_body_bytes: int = 1024 * 1024,
        max_in_flight: int = 256,
        max_pending: int = 32,
        header_timeout_s: float = 10.0,
        body_timeout_s: float = 30.0,
        clock: Clock | None = None,
        on_ready: Callable[[WebhookServer], None] | None = None,
        alert_routing: AlertRouting | None = None,
    ) -> None:
        """Configure the webhook; secrets are read now, so a missing one fails at start.

        Args:
            host: The address to listen on.
            port: The port (0: any free one).
            senders: Who may send, by name: ``{scheme: bearer|basic|hmac, secret_env: VAR
                | secret_file: PATH, username: (basic), allow_types: [warden.* types]}``.
            token: One more bearer sender, named ``token`` (``warden ingest serve --token``).
            insecure: Also take requests without credentials (a warning is logged).
            allow_types: Warden's own types such anonymous requests may send.
            auth: A ready :class:`SenderAuth`, instead of the three options above.
            replay_tolerance_s: How far a signature's timestamp may be from now.
            routes: Generic JSON routes by name.
            capacity: Requests that may wait for the store before 429.
            max_body_bytes: The largest body taken (413 past it).
            max_in_flight: Authenticated requests served at once.
            max_pending: Signed requests being read to check their signature at once.
            header_timeout_s: Longest wait for a request head.
            body_timeout_s: Longest wait for a request body.
            clock: The event clock (default: the pipeline's).
            on_ready: Called once the server listens.
            alert_routing: The rules from Alertmanager labels to services (``alerts:``).

        Raises:
            ConfigError: When no sender is named and ``insecure`` is not set, or a
                sender's options or secret are unusable.
        """
        if auth is None:
            found = senders_from_options("sources.webhook.senders", senders)
            if token:
                found.append(Sender("token", "bearer", token.encode("utf-8")))
            if not found and not insecure:
                raise ConfigError(
                    "sources.webhook: no senders, so nobody could send; name them"
                    " (senders: {NAME: {scheme: bearer|basic|hmac, secret_env: VAR}}), or take"
                    " unauthenticated input with insecure: true"
                )
            if allow_types and not insecure:
                raise ConfigError(
                    "sources.webhook.allow_types: grants types to anonymous senders, so it"
                    " needs insecure: true; grant a named sender with senders.NAME.allow_types"
                )
            auth = SenderAuth(
                found,
                insecure=insecure,
                anonymous_allow_types=allow_types,
                tolerance_s=replay_tolerance_s,
            )
        if type(port) is not int or not 0 <= port <= 65535:
            raise ConfigError(
                f"sources.webhook.port: {port!r} is not a port; give a number from 1 to 65535"
            )
        self.host = host
        self.port = port
        self.capacity = capacity
        self.max_in_flight = max_in_flight
        self.max_pending = max_pending
        self.timeouts_s = (header_timeout_s, body_timeout_s)
        self.clock = clock
        self.on_ready = on_ready
        self.settings = WebhookSettings(
            auth=auth,
            routes=dict(routes) if routes is not None else {"default": GenericRoute()},
            max_body_bytes=max_body_bytes,
            alert_routing=alert_routing,
        )

    def run(self, pipeline: Pipeline, stop: threading.Event) -> Tally:
        """Serve until ``stop`` is set; then drain the queue. Returns what it ingested."""
        before = pipeline.statistics()
        writer = IngestWriter(pipeline, capacity=self.capacity)
        writer.start()
        clock = self.clock or pipeline.gate.clock
        app = WebhookApp(writer, clock, self.settings)
        server = WebhookServer(
            app,
            self.host,
            self.port,
            max_in_flight=self.max_in_flight,
            max_pending=self.max_pending,
            header_timeout_s=self.timeouts_s[0],
            body_timeout_s=self.timeouts_s[1],
        )
        try:
            server.start()
            if app.auth.insecure:
                log.warning(
                    "webhook on %s takes requests without credentials (insecure: true);"
                    " name senders under sources.webhook.senders to require them",
                    server.url,
                )
            if self.on_ready is not None:
                self.on_ready(server)
            stop.wait()
        finally:
            server.stop()
            writer.close()
        return pipeline.statistics().since(before)
