"""The webhook app: CloudEvents, Alertmanager and generic JSON endpoints. Data plane (shell).

Socket-free: :mod:`warden.ingest.webhook_server` puts it on HTTP. Routes (all ``POST``,
answering JSON):

- ``/v1/events`` — CloudEvents 1.0: structured, binary (``ce-*`` headers) or batch mode.
- ``/v1/alertmanager`` — Prometheus Alertmanager webhook version 4, one event per alert.
- ``/v1/json/<route>`` — any JSON object, wrapped into an event of the route's type.
- ``GET /healthz`` — liveness and the ingest queue's depth.

``202`` is sent only once every event of the request is durably stored (or a duplicate
of one that is). Bad input gets ``4xx`` with a JSON ``error`` and lands in quarantine with
its reason. A full queue gets ``429`` (``503`` for Alertmanager, which retries only 5xx)
with ``Retry-After``; unauthenticated requests get ``401`` (naming the scheme expected)
and are not kept. Every event stored records its sender (``wardensource``); Warden's own
event types are refused unless the sender is granted them (see
:func:`warden.ingest.pipeline.is_reserved`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from warden.domain.errors import TemporaryError
from warden.domain.ids import derived_id
from warden.ingest.alertmanager import parse_webhook
from warden.ingest.auth import ANONYMOUS, Denied, Pending, SenderAuth
from warden.ingest.cloudevents import GenericRoute, TraceContext, parse_cloudevents, wrap_json
from warden.ingest.pipeline import Admit, Origin, Refuse, Tally, Verdict

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.ingest.alert_routing import AlertRouting
    from warden.ingest.pipeline import Job, Outcome
    from warden.ingest.senders import Sender
    from warden.ingest.writer import IngestWriter
    from warden.ports import Clock

__all__ = [
    "QUARANTINE_PREFIX_BYTES",
    "Request",
    "Response",
    "WebhookApp",
    "WebhookSettings",
    "unauthenticated",
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
        declared_length: The Content-Length sent; for a chunked body, the bytes received
            (reading stops once they pass the limit); -1 when the length is unknown.
        chunked: The body came with ``Transfer-Encoding: chunked``.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    declared_length: int = 0
    chunked: bool = False


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
        auth: Who may send (bearer, basic or Standard Webhooks senders), or
            ``SenderAuth.open()`` to take anyone; required.
        routes: Generic JSON routes by name (``/v1/json/<name>``).
        max_body_bytes: The largest body read; larger requests get 413.
        wait_timeout_s: How long a request waits for the store before a 503.
        sender: The CloudEvents ``source`` of wrapped generic JSON events.
        alert_routing: The rules from Alertmanager labels to services.
    """

    auth: SenderAuth | None = None
    routes: Mapping[str, GenericRoute] = field(default_factory=lambda: {"default": GenericRoute()})
    max_body_bytes: int = 1024 * 1024
    wait_timeout_s: float = 10.0
    sender: str = "warden://webhook"
    alert_routing: AlertRouting | None = None


def _json_error(status: int, error: str, **extra: Any) -> Response:
    return Response(status, {"error": error, **extra})


class WebhookApp:
    """Routes requests to parsers and the writer; knows nothing of sockets."""

    def __init__(self, writer: IngestWriter, clock: Clock, settings: WebhookSettings) -> None:
        if settings.auth is None:
            raise ValueError("WebhookSettings.auth: name the senders, or SenderAuth.open()")
        self.writer = writer
        self.clock = clock
        self.settings = settings
        self.auth: SenderAuth = settings.auth
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}

    def statistics(self) -> dict[str, int]:
        """Requests seen per route and status, e.g. ``{"alertmanager 202": 3}``."""
        with self._lock:
            return dict(self._requests)

    def handle(self, request: Request, sender: Sender | None = None) -> Response:
        """Answer one request, blocking until its events are stored; never raises.

        ``sender`` is who the server already authenticated; ``None`` checks the request.
        """
        route, reply = self._route(request, sender)
        if isinstance(reply, Future):
            futures.wait([reply], timeout=self.settings.wait_timeout_s)
            reply = self._settle(route, reply)
        return self._count(route, reply)

    async def handle_async(self, request: Request, sender: Sender | None = None) -> Response:
        """Answer one request from an event loop, which stays free while the store works."""
        route, reply = self._route(request, sender)
        if isinstance(reply, Future):
            # asyncio.wait never cancels what it waits for: on a timeout the events stay
            # queued and are still written, as with the blocking path.
            waiting = asyncio.wrap_future(reply)
            await asyncio.wait([waiting], timeout=self.settings.wait_timeout_s)
            if waiting.done() and not waiting.cancelled():
                waiting.exception()  # read here, or asyncio logs it as never retrieved
            reply = self._settle(route, reply)
        return self._count(route, reply)

    def _count(self, route: str, response: Response) -> Response:
        with self._lock:
            key = f"{route} {response.status}"
            self._requests[key] = self._requests.get(key, 0) + 1
        return response

    def _settle(self, route: str, future: Future[list[Outcome]]) -> Response:
        """The answer to a request whose events went to the writer."""
        if not future.done():
            return self._retry_later(
                503,
                f"the event store did not confirm within {self.settings.wait_timeout_s:g} s",
                self.writer.retry_after_s,
            )
        failure = future.exception()
        if failure is not None:  # the store failed; the sender should retry
            log.warning("webhook %s: store failed: %s", route, failure)
            return self._retry_later(503, "the event store failed; retry later", 1.0)
        return _answer(future.result())

    def _route(
        self, request: Request, sender: Sender | None
    ) -> tuple[str, Response | Future[list[Outcome]]]:
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
        if sender is None:
            checked = self.authenticate(request)
            if isinstance(checked, Denied):
                return name, unauthenticated(checked)
            sender = checked
        return name, self._ingest(name, request, sender)

    def needs_sender(self, request: Request) -> bool:
        """Whether the request must be authenticated (everything but the health check)."""
        health = (request.path.rstrip("/") or "/") == "/healthz"
        return not (health and request.method in ("GET", "HEAD"))

    def authenticate(self, request: Request) -> Sender | Denied:
        """Who sent ``request``, from its headers and, for a signature, its body."""
        checked = self.auth.check_headers(request.headers)
        if isinstance(checked, Pending):
            return self.auth.verify(checked, request.body)
        return checked

    def refuse(self, response: Response) -> Response:
        """Count an answer the server gave before the app saw the request."""
        return self._count("refused", response)

    def _jobs(self, name: str, request: Request, sender: Sender) -> list[Job]:
        jobs = self._parse(name, request)
        where = "sources.webhook." + (
            "allow_types" if sender.name == ANONYMOUS else f"senders.{sender.name}.allow_types"
        )
        origin = Origin(f"webhook/{sender.name}", sender.allow_types, where)
        return [replace(j, origin=origin) if isinstance(j, Admit) else j for j in jobs]

    def _parse(self, name: str, request: Request) -> list[Job]:
        source = f"webhook:{name}"
        limit = self.settings.max_body_bytes
        if request.declared_length < 0:
            return [Refuse("", source, "a Content-Length header is required", 411)]
        if request.declared_length > limit:
            kept = request.body[:QUARANTINE_PREFIX_BYTES].decode("utf-8", errors="replace")
            size = (
                f"over the limit of {limit} bytes"
                if request.chunked
                else f"{request.declared_length} bytes, the limit is {limit}"
            )
            reason = f"body is {size} (quarantine keeps the first {len(kept)} characters)"
            return [Refuse(kept, source, reason, 413)]
        context = TraceContext.from_headers(request.headers)
        if name == "cloudevents":
            return parse_cloudevents(request.headers, request.body, source=source)
        if name == "alertmanager":
            return parse_webhook(
                request.body,
                received_at=self.clock.now(),
                context=context,
                source=source,
                routing=self.settings.alert_routing,
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

    def _ingest(
        self, name: str, request: Request, sender: Sender
    ) -> Response | Future[list[Outcome]]:
        jobs = self._jobs(name, request, sender)
        try:
            return self.writer.submit_nowait(jobs)
        except TemporaryError as exc:
            # Alertmanager retries 5xx answers only; other senders understand 429.
            return self._retry_later(503 if name == "alertmanager" else 429, str(exc), exc.delay)

    def refuse_busy(self, why: str) -> Response:
        """The answer to a request turned away before it was read: 503, retry later."""
        busy = self._retry_later(503, f"the webhook is busy ({why})", self.writer.retry_after_s)
        return self._count("busy", busy)

    def _retry_later(self, status: int, error: str, delay: float) -> Response:
        seconds = str(max(1, math.ceil(delay)))
        return Response(
            status, {"error": error, "retry_after_s": int(seconds)}, (("Retry-After", seconds),)
        )


def unauthenticated(denied: Denied) -> Response:
    """401 with the reason and the schemes expected; nothing of the request is echoed."""
    headers = (("WWW-Authenticate", denied.challenge),) if denied.challenge else ()
    return Response(401, {"error": f"not authenticated: {denied.reason}"}, headers)


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
