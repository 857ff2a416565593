"""NATS adapter: runs actions by publishing a JSON message to JetStream. Action plane.

The asyncio client lives on a private event loop thread behind a synchronous ``run()``;
what a run publishes is in `warden.execution.adapters.nats_routes`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
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
from warden.execution.adapters.base import (
    ClosingContext,
    RoutedAdapter,
    failed,
    without_userinfo,
)
from warden.execution.adapters.nats_routes import (
    MSG_ID_HEADER,
    NatsRoute,
    derived_key,
    render_message,
)
from warden.ports import ActionResult

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping, Sequence

__all__ = ["MSG_ID_HEADER", "NatsPublishAdapter", "NatsRoute", "derived_key"]

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT_S = 5.0
_NO_MESSAGE_FOUND = 10037  # JetStream's error code for "no message found"


class NatsPublishAdapter(RoutedAdapter[NatsRoute], ClosingContext):
    """Publishes one JetStream message per action run; safe to call again.

    ``Nats-Msg-Id`` is the step's idempotency key, so a re-publish inside the stream's
    duplicate window is stored once. Success means JetStream acked the message; its output
    holds ``stream``, ``seq``, ``duplicate`` (whether the stream already held it),
    ``subject`` and ``msg_id``. Ack timeouts, no responders (no stream on the subject, or
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
        super().__init__(routes, NatsRoute, "a NatsRoute")
        self._servers = [servers] if isinstance(servers, str) else list(servers)
        if not self._servers:
            raise ConfigError("config error: servers: give at least one nats:// URL")
        self._connect_timeout_s = connect_timeout_s
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._nc: Client | None = None
        self._connecting: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"NatsPublishAdapter(servers=[{self._shown_servers()}], actions={self.actions()!r})"

    def _shown_servers(self) -> str:
        return ", ".join(without_userinfo(s) for s in self._servers)

    # -- the ActionAdapter port (`run` is TalliedAdapter's: it counts `_run`) ----------

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
        prepared = render_message(route, action, target, dict(params or {}))
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

    # -- internals -------------------------------------------------------------------

    def _run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Publish the action's message and wait for the JetStream ack."""
        route = self._routes.get(action)
        if route is None:
            return self._unknown_action(action)
        prepared = render_message(route, action, target, params)
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
