"""NATS adapter: runs actions by publishing a JSON message to JetStream. Action plane.

``Nats-Msg-Id`` is the step's idempotency key, so a re-publish inside the stream's
duplicate window is stored once. The asyncio client lives on a private event loop thread
behind a synchronous ``run()``. Results follow `warden.execution.adapters.registry`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from nats.aio.client import Client
from nats.errors import (
    BadSubjectError,
    MaxPayloadError,
    NoRespondersError,
)
from nats.errors import Error as NatsError
from nats.js.errors import (
    APIError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)

from warden.domain.errors import ConfigError
from warden.execution.adapters.registry import (
    RunStatistics,
    RunTally,
    failed,
    json_template_names,
    render_json,
    render_text,
    template_names,
)
from warden.ports import ActionResult

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence
    from types import TracebackType

__all__ = ["MSG_ID_HEADER", "NatsPublishAdapter", "NatsRoute", "derived_key"]

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
_SUBJECT_TEMPLATE = re.compile(r"[^\s*>]+")
_TOKEN_VALUE = re.compile(r"[A-Za-z0-9_-]+")
_STREAM_NAME = re.compile(r"[^\s.*>/\\]+")
_CLOSE_TIMEOUT_S = 5.0
_NO_MESSAGE_FOUND = 10037  # JetStream's error code for "no message found"


@dataclass(frozen=True, slots=True)
class NatsRoute:
    """How one action is run as a JetStream publish.

    Attributes:
        subject: Subject template; ``{target}`` and ``{param}`` values must be single
            subject tokens (letters, digits, ``_`` and ``-``).
        body: JSON template of the message; None sends ``{"action", "target", "params",
            "idempotency_key"}``.
        headers: Extra static headers.
        stream: The stream expected to store the message (``Nats-Expected-Stream``); also
            what `NatsPublishAdapter.check` reads. None accepts whichever stream answers.
        timeout_s: How long to wait for the JetStream ack.
    """

    subject: str
    body: Any = field(default=None, hash=False)
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    stream: str | None = None
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        problem = _route_problem(self)
        if problem:
            raise ConfigError(f"config error: {problem}")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "body", json.loads(json.dumps(self.body)))


def _route_problem(route: NatsRoute) -> str:
    subject: object = route.subject
    if not isinstance(subject, str) or not _SUBJECT_TEMPLATE.fullmatch(subject):
        return (
            f"subject: {subject!r} is not a subject to publish to; write dot-separated"
            " tokens without spaces or wildcards, e.g. warden.notify.{target}"
        )
    if "" in subject.split("."):
        return f"subject: {subject!r} has an empty token"
    try:
        template_names(subject)
    except ConfigError as exc:
        return f"subject: {exc}"
    try:
        json.dumps(route.body)
        json_template_names(route.body)
    except ConfigError as exc:
        return f"body: {exc}"
    except (TypeError, ValueError) as exc:
        return f"body: not a JSON template ({exc})"
    headers: object = route.headers
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in v and "\r" not in v
        for k, v in headers.items()
    ):
        return "headers: expected a mapping of header names to one-line strings"
    if any(k.lower() == MSG_ID_HEADER.lower() for k in headers):
        return f"headers: {MSG_ID_HEADER} is set from the step's idempotency key; remove it"
    stream: object = route.stream
    if stream is not None and (not isinstance(stream, str) or not _STREAM_NAME.fullmatch(stream)):
        return f"stream: {stream!r} is not a stream name (no spaces, '.', '*', '>' or slashes)"
    timeout: object = route.timeout_s
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return f"timeout_s: {timeout!r} is not a positive number of seconds"
    return ""


def derived_key(action: str, target: str, params: Mapping[str, Any]) -> str:
    """The idempotency key used when the step gives none: a digest of the arguments.

    Equal arguments give equal keys, so a repeated call inside the stream's duplicate
    window is stored once, as the port requires.
    """
    canonical = json.dumps(
        [action, target, {k: v for k, v in params.items() if k != "idempotency_key"}],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "warden-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


class NatsPublishAdapter:
    """Publishes one JetStream message per action run; safe to call again.

    Success means JetStream acked the message (``output["duplicate"]`` says whether the
    stream already held it). Ack timeouts, no responders (no stream on the subject, or
    JetStream down), connection failures and JetStream 503s are retryable; other JetStream
    errors, bad subjects and oversized messages are permanent.

    The client connects on the first run and reconnects by itself; `close` ends the
    connection and the loop thread::

        with NatsPublishAdapter("nats://127.0.0.1:4222", routes) as adapter:
            adapter.run("notify", "payments", {"idempotency_key": "k1"})
    """

    def __init__(
        self,
        servers: str | Sequence[str],
        routes: Mapping[str, NatsRoute],
        *,
        connect_timeout_s: float = 2.0,
        name: str = "warden-actions",
    ) -> None:
        """Create an adapter; nothing connects until the first run.

        Args:
            servers: NATS URL or URLs.
            routes: Action name -> how to publish it.
            connect_timeout_s: How long a run waits for a connection before it gives up
                (retryably).
            name: Client name shown by the server.
        """
        for action, route in routes.items():
            if not isinstance(route, NatsRoute):
                raise ConfigError(f"config error: {action}: expected a NatsRoute")
        self._servers = [servers] if isinstance(servers, str) else list(servers)
        if not self._servers:
            raise ConfigError("config error: servers: give at least one nats:// URL")
        self._routes = dict(routes)
        self._connect_timeout_s = connect_timeout_s
        self._name = name
        self._tally = RunTally()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._nc: Client | None = None
        self._connecting: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"NatsPublishAdapter(servers=[{self._shown_servers()}], actions={self.actions()!r})"

    def _shown_servers(self) -> str:
        return ", ".join(_display_server(s) for s in self._servers)

    def actions(self) -> list[str]:
        """The action names this adapter runs."""
        return list(self._routes)

    def statistics(self) -> RunStatistics:
        """Counts of runs by outcome, and of checks."""
        return self._tally.snapshot()

    # -- the ActionAdapter port ------------------------------------------------------

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Publish the action's message and wait for the JetStream ack.

        Returns:
            ``ok=True`` with ``stream``, ``seq``, ``duplicate``, ``subject`` and
            ``msg_id``; otherwise a failed result with ``retryable`` and ``retry_after_s``.
        """
        return self._tally.ran(self._run(action, target, params))

    def check(
        self, action: str, target: str, params: Mapping[str, Any] | None = None
    ) -> bool | None:
        """Whether the message of this run is in the route's stream.

        Reads the last message on the run's subject: True when it carries this run's
        ``Nats-Msg-Id``, False when the subject holds no message at all.

        Returns:
            True, False, or None when it cannot be told (no ``stream`` on the route, a
            later message on the subject, no connection).
        """
        self._tally.checked()
        route = self._routes.get(action)
        if route is None or route.stream is None:
            return None
        prepared = _prepare(route, action, target, dict(params or {}))
        if isinstance(prepared, ActionResult):
            return None
        subject, _payload, msg_id = prepared
        try:
            found: bool | None = self._call(
                self._last_msg_id(route.stream, subject, msg_id), route.timeout_s
            )
        except (
            _Closed,
            _NotConnected,
            NatsError,
            OSError,
            TimeoutError,
            concurrent.futures.CancelledError,
        ):
            return None
        return found

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and stop the loop thread; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._disconnect(), loop).result(_CLOSE_TIMEOUT_S)
        except (
            concurrent.futures.TimeoutError,
            concurrent.futures.CancelledError,
            NatsError,
            OSError,
        ) as exc:
            log.warning("NATS action adapter: closing the connection failed: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CLOSE_TIMEOUT_S)

    def __enter__(self) -> NatsPublishAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------

    def _run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        route = self._routes.get(action)
        if route is None:
            return failed(
                f"unknown action {action!r} (known: {', '.join(self._routes) or 'none'})",
                retryable=False,
            )
        prepared = _prepare(route, action, target, params)
        if isinstance(prepared, ActionResult):
            return prepared
        subject, payload, msg_id = prepared
        facts: dict[str, Any] = {"subject": subject, "msg_id": msg_id}
        headers = {**route.headers, MSG_ID_HEADER: msg_id}
        try:
            ack = self._call(
                self._publish(subject, payload, headers, route.stream, route.timeout_s),
                route.timeout_s,
            )
        except _Closed:
            return failed("the NATS action adapter is closed", retryable=False, output=facts)
        except _NotConnected as exc:
            return failed(
                f"cannot connect to NATS at {self._shown_servers()} within"
                f" {self._connect_timeout_s:g} s ({exc})",
                retryable=True,
                output=facts,
            )
        except (NoStreamResponseError, NoRespondersError):
            return failed(
                f"no JetStream stream answered on {subject!r}; create a stream that captures"
                " it, or check that JetStream is up",
                retryable=True,
                output=facts,
            )
        except APIError as exc:
            retry = isinstance(exc, ServiceUnavailableError) or exc.code == 503
            return failed(
                f"JetStream refused the message on {subject!r}: {exc.description or exc}"
                f" (code {exc.code}, error {exc.err_code})",
                retryable=retry,
                output=facts,
            )
        except (BadSubjectError, MaxPayloadError) as exc:
            what = type(exc).__name__
            return failed(f"cannot publish on {subject!r}: {what}", retryable=False, output=facts)
        except (TimeoutError, concurrent.futures.CancelledError):
            return failed(
                f"no JetStream ack on {subject!r} within the timeout; a retry re-publishes"
                f" with the same {MSG_ID_HEADER}, which the stream de-duplicates",
                retryable=True,
                output=facts,
            )
        except (NatsError, OSError) as exc:
            return failed(
                f"lost NATS at {self._shown_servers()}: {type(exc).__name__} {exc}".rstrip(),
                retryable=True,
                output=facts,
            )
        stream, seq, duplicate = ack
        said = "already stored" if duplicate else "stored"
        return ActionResult(
            ok=True,
            detail=f"published to {subject!r}: {said} in {stream} at seq {seq}",
            output={**facts, "stream": stream, "seq": seq, "duplicate": duplicate},
        )

    def _call(self, coro: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
        """Run a coroutine on the loop thread and wait for it, a little past its own timeout."""
        loop = self._ensure_loop()
        if loop is None:
            coro.close()
            raise _Closed
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(self._connect_timeout_s + timeout_s + 1.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            if self._closed:
                return None
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_serve, args=(loop, ready), name="warden-nats-actions", daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _client(self) -> Client:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._nc is not None and not self._nc.is_closed:
                return self._nc
            nc = Client()

            errors: list[Exception] = []

            async def on_error(exc: Exception) -> None:
                errors.append(exc)
                log.warning("NATS action adapter: %s: %s", type(exc).__name__, exc)

            try:
                await asyncio.wait_for(
                    nc.connect(
                        servers=self._servers,
                        name=self._name,
                        connect_timeout=self._connect_timeout_s,  # type: ignore[arg-type]
                        reconnect_time_wait=1,
                        max_reconnect_attempts=-1,
                        error_cb=on_error,
                    ),
                    self._connect_timeout_s,
                )
            except TimeoutError:
                await nc.close()
                last = f"{type(errors[-1]).__name__}: {errors[-1]}" if errors else "no answer"
                raise _NotConnected(last) from None
            except BaseException:
                await nc.close()
                raise
            self._nc = nc
            return nc

    async def _publish(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str],
        stream: str | None,
        timeout_s: float,
    ) -> tuple[str, int, bool]:
        nc = await self._client()
        ack = await nc.jetstream().publish(
            subject, payload, timeout=timeout_s, stream=stream, headers=headers
        )
        return ack.stream, ack.seq, bool(ack.duplicate)

    async def _last_msg_id(self, stream: str, subject: str, msg_id: str) -> bool | None:
        nc = await self._client()
        try:
            msg = await nc.jetstream().get_last_msg(stream, subject)
        except NotFoundError as exc:
            if exc.err_code == _NO_MESSAGE_FOUND:
                return False
            raise
        found = (msg.headers or {}).get(MSG_ID_HEADER)
        return True if found == msg_id else None

    async def _disconnect(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = None


class _Closed(Exception):
    """Raised inside the adapter when a run comes after `close`."""


class _NotConnected(Exception):
    """No connection within the connect timeout; carries the last connection error."""


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    """The loop thread: run until stopped, then cancel what is left and close the loop."""
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _prepare(
    route: NatsRoute, action: str, target: str, params: dict[str, Any]
) -> tuple[str, bytes, str] | ActionResult:
    """The subject, payload and message id of a run, or the failed result saying why not."""
    given = params.get("idempotency_key")
    msg_id = given if isinstance(given, str) and given else derived_key(action, target, params)
    values = {**params, "target": target, "action": action, "idempotency_key": msg_id}

    def token(text: str) -> str:
        if not _TOKEN_VALUE.fullmatch(text):
            raise _BadToken(text)
        return text

    try:
        subject = render_text(route.subject, values, token)
        if route.body is None:
            rest = {k: v for k, v in params.items() if k != "idempotency_key"}
            message: Any = {
                "action": action,
                "target": target,
                "params": rest,
                "idempotency_key": msg_id,
            }
        else:
            message = render_json(route.body, values)
        payload = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
    except KeyError as exc:
        return failed(
            f"{action}: the subject or body template needs param {exc.args[0]!r}, which the"
            " step does not give",
            retryable=False,
        )
    except _BadToken as exc:
        return failed(
            f"{action}: {exc.args[0]!r} cannot be a subject token; use letters, digits,"
            " '_' and '-' only",
            retryable=False,
        )
    except (TypeError, ValueError) as exc:
        return failed(f"{action}: params are not JSON ({exc})", retryable=False)
    return subject, payload, msg_id


class _BadToken(ValueError):
    """A template value that would change the subject's shape."""


def _display_server(url: str) -> str:
    """A server URL without user info, which may hold a password or token."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
