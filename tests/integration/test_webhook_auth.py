"""Webhook senders over real HTTP: Standard Webhooks signatures, basic auth, slow clients."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain.events import PROBE_FAILED
from warden.ingest.auth import SenderAuth, sign
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import Pipeline
from warden.ingest.registry import SchemaRegistry
from warden.ingest.senders import Sender, hmac_key
from warden.ingest.webhook import WebhookApp, WebhookSettings
from warden.ingest.webhook_server import WebhookServer
from warden.ingest.writer import IngestWriter
from warden.ports import SystemClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from warden.store.sqlite import SQLiteEventStore

TOKEN = "bearer-token-0123456789"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PASSWORD = "basic-password-0123456789"
CE = "application/cloudevents+json"


def event(event_id: str, type_: str = "warden.webhook.received") -> bytes:
    body = {
        "specversion": "1.0", "id": event_id, "source": "test://sender", "type": type_,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data": {},
    }  # fmt: skip
    if type_ == PROBE_FAILED:
        body["subject"] = "orders"
        body["data"] = {"service": "orders", "probe": "http://x/health", "error": "refused"}
    return json.dumps(body).encode()


def signed(body: bytes, msg_id: str = "", stamp: int = 0, secret: str = SECRET) -> dict[str, str]:
    msg_id = msg_id or uuid.uuid4().hex
    stamp = stamp or int(time.time())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
        "Content-Type": CE,
    }


class Hook:
    def __init__(self, store: SQLiteEventStore, **limits: Any) -> None:
        self.store = store
        self.writer = IngestWriter(Pipeline(IngestGate(store, SchemaRegistry(), SystemClock())))
        senders = [
            Sender("alerts", "bearer", TOKEN.encode()),
            Sender("ci", "basic", PASSWORD.encode(), username="ci"),
            Sender("deployer", "hmac", hmac_key(SECRET, "test"), allow_types=frozenset({PROBE_FAILED})),
        ]  # fmt: skip
        settings = WebhookSettings(auth=SenderAuth(senders), max_body_bytes=200_000)
        self.app = WebhookApp(self.writer, SystemClock(), settings)
        self.server = WebhookServer(self.app, **limits)

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request("POST", "/v1/events", body, {"Content-Type": CE, **headers})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def stored(self, event_id: str) -> list[str]:
        return [
            e.extensions.get("wardensource", "") for e in self.store.read_all() if e.id == event_id
        ]


@pytest.fixture
def hook(store: SQLiteEventStore, request: pytest.FixtureRequest) -> Iterator[Hook]:
    made = Hook(store, **getattr(request, "param", {}))
    made.writer.start()
    made.server.start()
    yield made
    made.server.stop()
    made.writer.close()


def test_a_standard_webhooks_signature_is_accepted_once(hook: Hook) -> None:
    body = event("s-1", PROBE_FAILED)
    headers = signed(body, msg_id="msg_1")
    assert hook.post(body, headers)[0] == 202
    assert hook.stored("s-1") == ["webhook/deployer"], "the sender is recorded, and granted"
    status, answer = hook.post(body, headers)
    assert status == 401
    assert "webhook-id was already used" in answer["error"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda b, h: (b + b" ", h), "does not match the body"),
        (lambda b, h: (b, {**h, "webhook-id": "other"}), "does not match the body"),
        (lambda b, h: (b, signed(b, stamp=int(time.time()) - 301)), "outside the 300 s tolerance"),
        (lambda b, h: (b, signed(b, stamp=int(time.time()) + 301)), "ahead"),
        (lambda b, h: (b, {**h, "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"}), "no well-formed"),
        (lambda b, h: (b, {**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}), "no well"),
        (lambda b, h: (b, {**h, "webhook-timestamp": "soon"}), "integer seconds"),
        (lambda b, h: (b, signed(b, secret="whsec_" + base64.b64encode(b"k" * 32).decode())), "match"),
    ],
)  # fmt: skip
def test_a_bad_signature_gets_401_naming_the_scheme(hook: Hook, tamper: Any, reason: str) -> None:
    body = event("s-2")
    sent_body, headers = tamper(body, signed(body))
    status, answer = hook.post(sent_body, headers)
    assert status == 401
    assert reason in answer["error"]
    assert "Standard Webhooks signature" in answer["error"]
    assert SECRET[6:20] not in json.dumps(answer)
    assert hook.store.read_all() == []
    assert hook.store.quarantined() == [], "unauthenticated input is not kept"


def test_basic_auth_and_the_recorded_sender(hook: Hook) -> None:
    good = base64.b64encode(f"ci:{PASSWORD}".encode()).decode()
    assert hook.post(event("b-1"), {"Authorization": f"Basic {good}"})[0] == 202
    assert hook.stored("b-1") == ["webhook/ci"]
    wrong = base64.b64encode(f"alerts:{PASSWORD}".encode()).decode()
    status, answer = hook.post(event("b-2"), {"Authorization": f"Basic {wrong}"})
    assert (status, "wrong basic credentials" in answer["error"]) == (401, True)


def test_a_sender_cannot_forge_its_recorded_identity(hook: Hook) -> None:
    body = json.loads(event("f-1"))
    body["wardensource"] = "webhook/deployer"
    assert hook.post(json.dumps(body).encode(), {"Authorization": f"Bearer {TOKEN}"})[0] == 202
    assert hook.stored("f-1") == ["webhook/alerts"]


def test_an_ungranted_sender_gets_403_for_warden_types(hook: Hook) -> None:
    status, answer = hook.post(event("p-1", PROBE_FAILED), {"Authorization": f"Bearer {TOKEN}"})
    assert status == 403
    assert "senders.alerts.allow_types" in answer["error"]
    assert hook.stored("p-1") == []
    assert len(hook.store.quarantined()) == 1


# -- slow clients --------------------------------------------------------------------------------


def open_slow(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head)
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    got = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return got
        got += chunk


@pytest.mark.parametrize(
    "hook", [{"max_in_flight": 8, "max_pending": 4, "body_timeout_s": 2.0}], indirect=True
)
def test_slow_unauthenticated_bodies_do_not_lock_out_senders(hook: Hook) -> None:
    """300 slow bodies without credentials, 40 with plausible signatures; the token keeps working."""
    port = hook.server.port
    anonymous = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"
    socks = [open_slow(port, anonymous) for _ in range(300)]
    for n in range(40):  # well-formed Standard Webhooks headers, a made-up signature
        fake = signed(b"whatever", msg_id=f"slow-{n}")
        head = "".join(f"{k}: {v}\r\n" for k, v in fake.items())
        socks.append(
            open_slow(port, f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{head}"
                      "Content-Length: 100000\r\n\r\n{".encode())
        )  # fmt: skip
    try:
        latencies = []
        for n in range(30):
            started = time.monotonic()
            status, answer = hook.post(event(f"ok-{n}"), {"Authorization": f"Bearer {TOKEN}"})
            latencies.append(time.monotonic() - started)
            assert status == 202, answer
        # The anonymous ones were answered 401 and closed without their bodies being read.
        assert read_until_closed(socks[0], 5).startswith(b"HTTP/1.1 401")
        assert max(latencies) < 1.0, latencies
        stats = hook.app.statistics()
        assert stats["refused 401"] == 300
        assert stats.get("busy 503", 0) >= 40 - 4, "past max_pending, signed ones are turned away"
        # The pending ones that got in are cut by the body timeout.
        cut = [read_until_closed(s, 5) for s in socks[300:]]
        assert sum(c.startswith(b"HTTP/1.1 408") for c in cut) == 4
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("hook", [{"header_timeout_s": 0.5}], indirect=True)
def test_a_slow_head_is_cut_after_the_header_timeout(hook: Hook) -> None:
    started = time.monotonic()
    sock = open_slow(hook.server.port, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    idle = socket.create_connection(("127.0.0.1", hook.server.port), timeout=10)
    try:
        sock.sendall(b"a")  # trickling keeps nothing alive: the clock is per request head
        answer = read_until_closed(sock, 5)
        assert 0.4 < time.monotonic() - started < 3
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert read_until_closed(idle, 5).startswith(b"HTTP/1.1 408")
    finally:
        sock.close()
        idle.close()
    assert hook.post(event("after"), {"Authorization": f"Bearer {TOKEN}"})[0] == 202


@pytest.mark.parametrize("hook", [{"header_timeout_s": 0.3}], indirect=True)
def test_a_head_that_waited_while_the_server_was_busy_is_served(hook: Hook) -> None:
    # The sender connects, then sends its whole request at once; the server's loop is
    # busy for longer than the head deadline meanwhile (an overload does that). The head
    # was in the socket in time: the sender is served, not told it was too slow.
    sock = socket.create_connection(("127.0.0.1", hook.server.port), timeout=10)
    busy, wake = socket.socketpair()
    try:
        time.sleep(0.1)  # accepted: the head's clock runs
        (loop,) = {s.get_loop() for s in hook.server._server.servers}

        # Busy for 1 s while handling another socket (as under an overload): the head
        # arrives meanwhile and its deadline falls due; the loop runs due timers before it
        # reads sockets again.
        def work() -> None:
            loop.remove_reader(busy.fileno())
            busy.recv(1)
            time.sleep(1.0)

        loop.call_soon_threadsafe(loop.add_reader, busy.fileno(), work)
        time.sleep(0.05)
        wake.send(b"x")
        time.sleep(0.1)
        body = event("busy-1")
        head = (
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: {CE}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        answer = read_until_closed(sock, 10)
    finally:
        sock.close()
        busy.close()
        wake.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer
    assert hook.stored("busy-1") == ["webhook/alerts"]


@pytest.mark.parametrize("hook", [{"body_timeout_s": 0.5}], indirect=True)
def test_an_authenticated_slow_body_is_cut_after_the_body_timeout(hook: Hook) -> None:
    head = f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    sock = open_slow(hook.server.port, f"{head}Content-Length: 500\r\n\r\n{{".encode())
    try:
        answer = read_until_closed(sock, 5)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 0.5 s" in answer
    assert hook.app.statistics()["refused 408"] == 1
    assert hook.store.read_all() == []
