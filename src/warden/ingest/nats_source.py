"""NATS JetStream source: a durable pull consumer, and a publish helper. Data plane (shell).

Messages carry structured-mode CloudEvents JSON. A message is acked only after its event
is durably stored (or quarantined); if the consumer dies in between, JetStream redelivers
it after ``ack_wait`` and the store's idempotent append drops the second copy. Publishers
set ``Nats-Msg-Id`` to the event id so a re-publish inside the stream's duplicate window
is dropped by the server too; the consumer refuses a message whose ``Nats-Msg-Id`` and
event id disagree. The connection authenticates with the server's own means (user and
password, a token, or a ``.creds`` file); events it stores record it as their sender, and
Warden's own event types are refused unless ``allow_types`` grants them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from warden.domain.errors import ConfigError
from warden.domain.events import Event
from warden.ingest.pipeline import Admit, Origin, Refuse, Tally
from warden.ingest.senders import read_secret, type_list

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable, Callable, Sequence

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import PubAck

    from warden.ingest.pipeline import Job, Outcome, Pipeline

__all__ = [
    "MSG_ID_HEADER",
    "NatsSource",
    "ensure_stream",
    "job_for_message",
    "publish_event",
    "publish_events",
]

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
DEFAULT_STREAM = "WARDEN_EVENTS"
DEFAULT_SUBJECT = "warden.events.>"


async def ensure_stream(
    js: JetStreamContext,
    name: str = DEFAULT_STREAM,
    subjects: Sequence[str] = (DEFAULT_SUBJECT,),
    *,
    duplicate_window_s: float = 120.0,
) -> None:
    """Create the stream when it does not exist (file storage, a duplicate window)."""
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=list(subjects),
                storage=StorageType.FILE,
                duplicate_window=duplicate_window_s,
            )
        )


def _cloudevent(event: Event | dict[str, Any]) -> dict[str, Any]:
    return event.to_cloudevent() if isinstance(event, Event) else dict(event)


async def publish_event(
    js: JetStreamContext, subject: str, event: Event | dict[str, Any], *, timeout_s: float = 5.0
) -> PubAck:
    """Publish one event as structured-mode JSON with ``Nats-Msg-Id`` = its id.

    Returns:
        The server's acknowledgement; ``duplicate`` is true when the server dropped it
        as a re-publish of an id seen inside the stream's duplicate window.
    """
    raw = _cloudevent(event)
    headers = {MSG_ID_HEADER: str(raw.get("id", ""))} if raw.get("id") else None
    payload = json.dumps(raw, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return await js.publish(subject, payload, timeout=timeout_s, headers=headers)


async def _log_error(exc: Exception) -> None:
    log.warning("nats: %s", exc or type(exc).__name__)


def publish_events(
    servers: str | list[str], subject: str, events: Sequence[Event | dict[str, Any]]
) -> list[PubAck]:
    """Connect, publish each event with :func:`publish_event`, disconnect (blocking)."""

    async def main() -> list[PubAck]:
        nc = await nats.connect(
            servers,
            connect_timeout=2,
            max_reconnect_attempts=2,
            reconnect_time_wait=0.5,
            error_cb=_log_error,
        )
        try:
            js = nc.jetstream()
            return [await publish_event(js, subject, e) for e in events]
        finally:
            await nc.close()

    return asyncio.run(main())


def job_for_message(
    subject: str, data: bytes, headers: dict[str, str] | None, origin: Origin | None = None
) -> Job:
    """The pipeline job for one message's body and headers, sent by ``origin``.

    A body without an ``id`` takes its ``Nats-Msg-Id``; a body whose ``id`` differs from
    the ``Nats-Msg-Id`` is refused, since the two de-duplications would disagree.
    """
    source = f"nats:{subject}"
    msg_id = (headers or {}).get(MSG_ID_HEADER, "")
    if not msg_id:
        return Admit(data, source, origin=origin)
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        return Admit(data, source, origin=origin)
    if not isinstance(raw, dict):
        return Admit(data, source, origin=origin)
    if "id" not in raw:
        return Admit({**raw, "id": msg_id}, source, origin=origin)
    if raw["id"] != msg_id:
        return Refuse(
            data.decode("utf-8", errors="replace"),
            source,
            f"id: the event id {raw['id']!r} differs from its {MSG_ID_HEADER} {msg_id!r}"
            " (publish with Nats-Msg-Id = event id)",
        )
    return Admit(data, source, origin=origin)


@dataclass(frozen=True, slots=True)
class NatsSettings:
    """Where and how to consume.

    Attributes:
        servers: NATS server URLs.
        stream: The JetStream stream (created when missing).
        subject: The subject filter of the consumer (and of a created stream).
        durable: The durable consumer's name; consumers with one name share the work.
        batch: Messages fetched per pull.
        fetch_timeout_s: How long one pull waits for messages (also the stop latency).
        ack_wait_s: How long JetStream waits for an ack before redelivering.
        max_deliver: Deliveries before JetStream gives up on a message (-1: no limit).
    """

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    stream: str = DEFAULT_STREAM
    subject: str = DEFAULT_SUBJECT
    durable: str = "warden-ingest"
    batch: int = 32
    fetch_timeout_s: float = 1.0
    ack_wait_s: float = 30.0
    max_deliver: int = -1


class NatsSource:
    """A durable JetStream pull consumer feeding the pipeline; acks after storing."""

    name = "nats"

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        stream: str = DEFAULT_STREAM,
        subject: str = DEFAULT_SUBJECT,
        durable: str = "warden-ingest",
        batch: int = 32,
        fetch_timeout_s: float = 1.0,
        ack_wait_s: float = 30.0,
        max_deliver: int = -1,
        user: str = "",
        password: str | None = None,
        password_env: str | None = None,
        password_file: str | None = None,
        token: str | None = None,
        token_env: str | None = None,
        token_file: str | None = None,
        creds: str = "",
        allow_types: Sequence[str] = (),
        before_ack: Callable[[Msg, Outcome], Awaitable[None]] | None = None,
    ) -> None:
        """Create the consumer; nothing connects until :meth:`consume` or :meth:`run`.

        Args:
            servers: NATS server URL(s).
            stream: The stream to consume (created with ``subject`` when missing).
            subject: The consumer's subject filter.
            durable: The durable consumer name.
            batch: Messages per pull.
            fetch_timeout_s: Longest wait of one pull.
            ack_wait_s: Redelivery delay for unacked messages.
            max_deliver: Delivery attempts before JetStream gives up (-1: unlimited).
            user: The NATS user (with a password).
            password: The password inline (better: ``password_env`` / ``password_file``).
            password_env: The environment variable holding the password.
            password_file: The file holding the password.
            token: The NATS token inline (better: ``token_env`` / ``token_file``).
            token_env: The environment variable holding the token.
            token_file: The file holding the token.
            creds: A NATS ``.creds`` file (JWT and NKey seed).
            allow_types: Warden's own event types (``warden.*``) accepted from the stream.
            before_ack: Awaited after a message is stored and before it is acked (a
                seam for crash tests and metrics).
        """
        listed = (servers,) if isinstance(servers, str) else tuple(servers)
        self.settings = NatsSettings(
            listed, stream, subject, durable, batch, fetch_timeout_s, ack_wait_s, max_deliver
        )
        where = "sources.nats"
        secrets = {
            "password": password,
            "password_env": password_env,
            "password_file": password_file,
            "token": token,
            "token_env": token_env,
            "token_file": token_file,
        }
        self._password = read_secret(where, secrets, "password")
        self._token = read_secret(where, secrets, "token")
        if bool(user) != bool(self._password):
            raise ConfigError(f"{where}: user and password go together (password_env: VAR)")
        if sum(map(bool, (user, self._token, creds))) > 1:
            raise ConfigError(f"{where}: authenticate one way: user/password, token or creds")
        if creds and not Path(creds).expanduser().is_file():
            raise ConfigError(f"{where}.creds: no such file {creds}")
        self._user = user
        self._creds = str(Path(creds).expanduser()) if creds else ""
        who = user or ("creds" if creds else "token" if self._token else "connection")
        self.origin = Origin(
            f"nats/{who}",
            type_list(f"{where}.allow_types", list(allow_types)),
            where + ".allow_types",
        )
        self.before_ack = before_ack
        self.redelivered = 0

    def _credentials(self) -> dict[str, Any]:
        """The ``nats.connect`` options that authenticate the connection."""
        if self._user:
            return {"user": self._user, "password": self._password}
        if self._token:
            return {"token": self._token}
        if self._creds:
            return {"user_credentials": self._creds}
        return {}

    def run(self, pipeline: Pipeline, stop: threading.Event) -> Tally:
        """Consume until ``stop`` is set (blocking); returns what this run ingested."""
        return asyncio.run(self.consume(pipeline, stop.is_set))

    async def consume(self, pipeline: Pipeline, should_stop: Callable[[], bool]) -> Tally:
        """Pull, store, ack, until ``should_stop()``; returns what this run ingested."""
        before = pipeline.statistics()
        nc = await nats.connect(
            list(self.settings.servers),
            connect_timeout=2,
            error_cb=_log_error,
            **self._credentials(),
        )
        try:
            subscription = await self._subscribe(nc)
            while not should_stop():
                try:
                    messages = await subscription.fetch(
                        self.settings.batch, timeout=self.settings.fetch_timeout_s
                    )
                except TimeoutError:  # nothing to fetch (nats' own TimeoutError included)
                    continue
                for message in messages:
                    await self._handle(pipeline, message)
        finally:
            await nc.close()
        return pipeline.statistics().since(before)

    async def _subscribe(self, nc: Client) -> JetStreamContext.PullSubscription:
        js = nc.jetstream()
        settings = self.settings
        await ensure_stream(js, settings.stream, [settings.subject])
        config = ConsumerConfig(
            durable_name=settings.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=settings.ack_wait_s,
            max_deliver=settings.max_deliver,
            filter_subject=settings.subject,
        )
        return await js.pull_subscribe(
            settings.subject, durable=settings.durable, stream=settings.stream, config=config
        )

    async def _handle(self, pipeline: Pipeline, message: Msg) -> None:
        if message.metadata.num_delivered > 1:
            self.redelivered += 1
        job = job_for_message(message.subject, message.data, message.headers, self.origin)
        try:
            (outcome,) = await asyncio.to_thread(pipeline.process, [job])
        except Exception as exc:  # the store failed: let JetStream redeliver later
            log.warning("nats: cannot store message on %s: %s", message.subject, exc)
            await message.nak(delay=1.0)
            return
        if self.before_ack is not None:
            await self.before_ack(message, outcome)
        await message.ack()
