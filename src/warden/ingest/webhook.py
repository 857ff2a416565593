"""HTTP webhook source: CloudEvents, Alertmanager and generic JSON endpoints. Data plane (shell).

Routes (all ``POST``, answering JSON):

- ``/v1/events`` — CloudEvents 1.0: structured, binary (``ce-*`` headers) or batch mode.
- ``/v1/alertmanager`` — Prometheus Alertmanager webhook version 4, one event per alert.
- ``/v1/json/<route>`` — any JSON object, wrapped into an event of the route's type.
- ``GET /healthz`` — liveness and the ingest queue's depth.

``202`` is sent only once every event of the request is durably stored (or a duplicate
of one that is). Bad input gets ``4xx`` with a JSON ``error`` and lands in quarantine with
its reason. A full queue gets ``429`` (``503`` for Alertmanager, which retries only 5xx)
with ``Retry-After``; unauthenticated requests get ``401`` and are not kept.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import threading
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from warden.domain.errors import TemporaryError
from warden.domain.ids import derived_id
from warden.ingest.alertmanager import parse_webhook
from warden.ingest.cloudevents import GenericRoute, TraceContext, parse_cloudevents, wrap_json
from warden.ingest.pipeline import Refuse, Tally, Verdict
from warden.ingest.writer import IngestWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from warden.ingest.pipeline import Job, Outcome, Pipeline
    from warden.ports import Clock

__all__ = [
    "Request",
    "Response",
    "WebhookApp",
    "WebhookServer",
    "WebhookSettings",
    "WebhookSource",
]

log = logging.getLogger(__name__)

QUARANTINE_PREFIX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the app sees it.

    Attributes:
        method: ``GET``, ``POST``, ...
        path: The path without the query string.
        headers: Header names in lower case.
        body: The body (only a prefix when ``declared_length`` is over the limit).
        declared_length: The Content-Length sent, or -1 when none was.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    declared_length: int = 0


@dataclass(frozen=True, slots=True)
class Response:
    """What to answer: a status, a JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """How the webhook behaves.

    Attributes:
        token: When set, every POST needs ``Authorization: Bearer <token>``.
        routes: Generic JSON routes by name (``/v1/json/<name>``).
        max_body_bytes: The largest body read; larger requests get 413.
        wait_timeout_s: How long a request waits for the store before a 503.
        sender: The CloudEvents ``source`` of wrapped generic JSON events.
    """

    token: str = ""
    routes: Mapping[str, GenericRoute] = field(default_factory=lambda: {"default": GenericRoute()})
    max_body_bytes: int = 1024 * 1024
    wait_timeout_s: float = 10.0
    sender: str = "warden://webhook"


def _json_error(status: int, error: str, **extra: Any) -> Response:
    return Response(status, {"error": error, **extra})


class WebhookApp:
    """Routes requests to parsers and the writer; knows nothing of sockets."""

    def __init__(self, writer: IngestWriter, clock: Clock, settings: WebhookSettings) -> None:
        self.writer = writer
        self.clock = clock
        self.settings = settings
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}

    def statistics(self) -> dict[str, int]:
        """Requests seen per route and status, e.g. ``{"alertmanager 202": 3}``."""
        with self._lock:
            return dict(self._requests)

    def handle(self, request: Request) -> Response:
        """Answer one request; never raises for anything a client can send."""
        route, response = self._route(request)
        with self._lock:
            key = f"{route} {response.status}"
            self._requests[key] = self._requests.get(key, 0) + 1
        return response

    def _route(self, request: Request) -> tuple[str, Response]:
        path = request.path.rstrip("/") or "/"
        if path == "/healthz":
            if request.method not in ("GET", "HEAD"):
                return "healthz", _json_error(405, "use GET")
            stats = self.writer.statistics()
            return "healthz", Response(
                200,
                {
                    "status": "ok" if stats.running else "stopped",
                    "queued": stats.queued,
                    "capacity": stats.capacity,
                },
            )
        if path == "/v1/events":
            name = "cloudevents"
        elif path == "/v1/alertmanager":
            name = "alertmanager"
        elif path.startswith("/v1/json/") and path.count("/") == 3:
            name = "json/" + path.rsplit("/", 1)[1]
            if name[5:] not in self.settings.routes:
                known = ", ".join(f"/v1/json/{r}" for r in sorted(self.settings.routes))
                return name, _json_error(404, f"unknown route {path}", known=known or "none")
        else:
            return "unknown", _json_error(
                404,
                f"no endpoint {path}",
                endpoints=["/v1/events", "/v1/alertmanager", "/v1/json/<route>"],
            )
        if request.method != "POST":
            return name, _json_error(405, f"use POST on {path}")
        if not self._authorized(request):
            return name, Response(
                401,
                {"error": "missing or wrong bearer token"},
                (("WWW-Authenticate", 'Bearer realm="warden"'),),
            )
        return name, self._ingest(name, request)

    def _authorized(self, request: Request) -> bool:
        if not self.settings.token:
            return True
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("utf-8", "replace"), self.settings.token.encode("utf-8")
        )

    def _jobs(self, name: str, request: Request) -> list[Job]:
        source = f"webhook:{name}"
        limit = self.settings.max_body_bytes
        if request.declared_length < 0:
            return [
                Refuse("", source, "a Content-Length header is required (no chunked bodies)", 411)
            ]
        if request.declared_length > limit:
            kept = request.body[:QUARANTINE_PREFIX_BYTES].decode("utf-8", errors="replace")
            reason = (
                f"body is {request.declared_length} bytes, the limit is {limit}"
                f" (quarantine keeps the first {len(kept)} characters)"
            )
            return [Refuse(kept, source, reason, 413)]
        context = TraceContext.from_headers(request.headers)
        if name == "cloudevents":
            return parse_cloudevents(request.headers, request.body, source=source)
        if name == "alertmanager":
            return parse_webhook(
                request.body, received_at=self.clock.now(), context=context, source=source
            )
        route = self.settings.routes[name[5:]]
        key = request.headers.get("idempotency-key", "").strip()
        event_id = derived_id("webhook", name, key) if key else uuid.uuid4().hex
        return [
            wrap_json(
                request.body,
                route,
                event_id=event_id,
                received_at=self.clock.now(),
                context=context,
                source=source,
                sender=self.settings.sender,
            )
        ]

    def _ingest(self, name: str, request: Request) -> Response:
        jobs = self._jobs(name, request)
        try:
            future = self.writer.submit_nowait(jobs)
        except TemporaryError as exc:
            # Alertmanager retries 5xx answers only; other senders understand 429.
            return self._retry_later(503 if name == "alertmanager" else 429, str(exc), exc.delay)
        try:
            outcomes = future.result(timeout=self.settings.wait_timeout_s)
        except FutureTimeout:
            return self._retry_later(
                503,
                f"the event store did not confirm within {self.settings.wait_timeout_s:g} s",
                self.writer.retry_after_s,
            )
        except Exception as exc:  # the store failed; the sender should retry
            log.warning("webhook %s: store failed: %s", name, exc)
            return self._retry_later(503, "the event store failed; retry later", 1.0)
        return _answer(outcomes)

    def _retry_later(self, status: int, error: str, delay: float) -> Response:
        seconds = str(max(1, math.ceil(delay)))
        return Response(
            status, {"error": error, "retry_after_s": int(seconds)}, (("Retry-After", seconds),)
        )


def _answer(outcomes: list[Outcome]) -> Response:
    tally = Tally().add(outcomes)
    body: dict[str, Any] = {
        "accepted": tally.accepted,
        "duplicate": tally.duplicate,
        "quarantined": tally.quarantined,
        "events": [o.to_dict() for o in outcomes],
    }
    refused = [o for o in outcomes if o.verdict is Verdict.QUARANTINED]
    if not refused:
        return Response(202, body)
    first = refused[0]
    body["error"] = first.reason
    status = first.status if 400 <= first.status < 500 else 400
    return Response(status, body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30.0
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (~40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        try:
            request = self._read()
            response = self.server.app.handle(request)
        except Exception:
            log.exception("webhook: unexpected failure")
            response = _json_error(500, "internal error; the input was not taken")
        self._write(response)

    def _read(self) -> Request:
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw_length = headers.get("content-length")
        length = -1
        if raw_length is not None:
            length = int(raw_length) if raw_length.strip().isdigit() else -1
        elif "transfer-encoding" not in headers:
            length = 0
        body = b""
        limit = self.server.app.settings.max_body_bytes
        if 0 < length <= limit:
            body = self.rfile.read(length)
        elif length > limit:
            body = self.rfile.read(min(length, QUARANTINE_PREFIX_BYTES))
        if length < 0 or length > limit:
            self.close_connection = True  # the rest of the body was not read
        return Request(self.command, self.path.split("?", 1)[0], headers, body, length)

    def _write(self, response: Response) -> None:
        payload = json.dumps(response.body, default=str).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook %s - %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 overflows under a burst of new connections; the
    # kernel then drops SYNs and senders wait out a 1 s retransmission before being heard.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: WebhookApp) -> None:
        self.app = app
        super().__init__(address, _Handler)


class WebhookServer:
    """The webhook app on a real socket, served from a background thread."""

    def __init__(self, app: WebhookApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = _Server((host, port), app)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        host = self._server.server_address[0]
        return f"http://{host if isinstance(host, str) else host.decode()}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="webhook",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, wait for the serving thread, close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


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
        clock: Clock | None = None,
        on_ready: Callable[[WebhookServer], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.capacity = capacity
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
        server = WebhookServer(WebhookApp(writer, clock, self.settings), self.host, self.port)
        server.start()
        try:
            if self.on_ready is not None:
                self.on_ready(server)
            stop.wait()
        finally:
            server.stop()
            writer.close()
        return pipeline.statistics().since(before)
