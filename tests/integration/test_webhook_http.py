"""The webhook over real HTTP: endpoints, errors, auth, backpressure, and fuzzing."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import probe_cloudevent as probe
from warden.domain.events import PROBE_FAILED
from warden.ingest.auth import SenderAuth
from warden.ingest.cloudevents import GenericRoute
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import Pipeline
from warden.ingest.registry import SchemaRegistry
from warden.ingest.senders import Sender
from warden.ingest.webhook import QUARANTINE_PREFIX_BYTES, Request, WebhookApp, WebhookSettings
from warden.ingest.webhook_server import WebhookServer
from warden.ingest.writer import IngestWriter
from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "alertmanager"
TOKEN = "t0ken"
TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Served:
    def __init__(self, store: SQLiteEventStore, clock: ManualClock, **settings: Any) -> None:
        self.store = store
        self.writer = IngestWriter(
            Pipeline(IngestGate(store, SchemaRegistry(), clock)),
            capacity=settings.pop("capacity", 8),
        )
        routes = {"default": GenericRoute(), "deploys": GenericRoute(subject_key="service")}
        max_in_flight = settings.pop("max_in_flight", 256)
        # The probe events these tests post are Warden's own type: the sender is granted it.
        sender = Sender("tests", "bearer", TOKEN.encode(), allow_types=frozenset({PROBE_FAILED}))
        auth = SenderAuth([sender])
        self.app = WebhookApp(
            self.writer, clock, WebhookSettings(auth=auth, routes=routes, **settings)
        )
        self.server = WebhookServer(self.app, max_in_flight=max_in_flight)

    def post(
        self, path: str, body: bytes | str | dict[str, Any] | list[Any], **headers: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if isinstance(body, dict | list):
            body = json.dumps(body)
        sent = {**AUTH, "Content-Type": "application/cloudevents+json"}
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        sent = {k: v for k, v in sent.items() if v}
        return request(self.server.port, "POST", path, body, sent)


def request(
    port: int, method: str, path: str, body: bytes | str | None, headers: dict[str, str]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        payload = json.loads(response.read() or b"{}")
        return response.status, payload, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def wait_queued(web: Served, count: int) -> None:
    deadline = time.monotonic() + 5
    while web.writer.statistics().queued < count:
        assert time.monotonic() < deadline, f"{count} requests never queued"
        time.sleep(0.01)


@pytest.fixture
def served(store: SQLiteEventStore, clock: ManualClock) -> Iterator[Callable[..., Served]]:
    running: list[Served] = []

    def start(start_writer: bool = True, **settings: Any) -> Served:
        s = Served(store, clock, **settings)
        if start_writer:
            s.writer.start()
        s.server.start()
        running.append(s)
        return s

    yield start
    for s in running:
        s.server.stop()
        s.writer.close()


@pytest.fixture
def web(served: Callable[..., Served]) -> Served:
    return served()


def test_structured_event_is_stored_with_trace_context(web: Served) -> None:
    status, body, _ = web.post(
        "/v1/events", probe(), traceparent=TRACEPARENT, X_Correlation_Id="req-1"
    )
    assert status == 202, body
    assert body["accepted"] == 1
    assert body["events"] == [{"verdict": "accepted", "id": "e1", "stream": "service-payments"}]
    (event,) = web.store.read_stream("service-payments")
    assert (event.traceparent, event.correlation_id) == (TRACEPARENT, "req-1")
    status, body, _ = web.post("/v1/events", probe())
    assert (status, body["duplicate"]) == (202, 1)


def test_binary_and_batch_modes(web: Served) -> None:
    data = probe()["data"]
    status, body, _ = web.post(
        "/v1/events",
        data,
        Content_Type="application/json",
        ce_specversion="1.0",
        ce_id="b1",
        ce_source="warden://x",
        ce_type="warden.probe.failed",
        ce_time="2026-11-25T11:59:00Z",
        ce_subject="orders",
        traceparent=TRACEPARENT,
    )
    assert status == 202, body
    (event,) = web.store.read_stream("service-orders")
    assert event.traceparent == TRACEPARENT
    assert event.correlation_id == "b1"
    batch = [probe(id="x1"), probe(id="x2")]
    status, body, _ = web.post(
        "/v1/events", batch, Content_Type="application/cloudevents-batch+json"
    )
    assert (status, body["accepted"]) == (202, 2)


def test_generic_json_route_and_idempotency_key(web: Served) -> None:
    status, body, _ = web.post(
        "/v1/json/deploys",
        {"service": "orders", "version": "1.2"},
        Content_Type="application/json",
        Idempotency_Key="deploy-77",
    )
    assert status == 202, body
    (event,) = web.store.read_stream("service-orders")
    assert event.type == "warden.webhook.received"
    assert event.data == {"service": "orders", "version": "1.2"}
    again = web.post(
        "/v1/json/deploys",
        {"service": "orders", "version": "1.2"},
        Idempotency_Key="deploy-77",
    )
    assert again[1]["duplicate"] == 1
    status, body, _ = web.post("/v1/json/nope", {})
    assert status == 404
    assert "/v1/json/default" in body["known"]


@pytest.mark.parametrize(
    ("path", "payload", "headers", "status", "reason"),
    [
        ("/v1/events", "{not json", {}, 400, "not JSON"),
        ("/v1/events", probe(type="acme.unknown"), {}, 400, "no schema registered"),
        ("/v1/events", probe(data={"service": "x"}), {}, 400, "'probe' is a required property"),
        ("/v1/events", probe(time="2026-11-25T13:00:00Z"), {}, 400, "in the future"),
        ("/v1/events", probe(traceparent="bad"), {}, 400, "traceparent"),
        (
            "/v1/events",
            "hi",
            {"Content_Type": "text/plain", "ce_specversion": "1.0"},
            415,
            "must be JSON",
        ),
        ("/v1/json/default", "[1, 2]", {}, 400, "must be a JSON object"),
        ("/v1/alertmanager", '{"version": "3"}', {}, 400, "unsupported webhook version"),
    ],
)
def test_bad_input_gets_a_readable_error_and_lands_in_quarantine(
    web: Served, path: str, payload: Any, headers: dict[str, str], status: int, reason: str
) -> None:
    got, body, _ = web.post(path, payload, **headers)
    assert got == status, body
    assert reason in body["error"]
    assert body["quarantined"] == 1
    (item,) = web.store.quarantined()
    assert reason in item.reason
    assert item.id == body["events"][0]["quarantine_id"]
    assert item.source == "webhook:" + path.removeprefix("/v1/").replace("events", "cloudevents")
    assert web.store.read_all() == []


@pytest.mark.parametrize("auth", ["", "Bearer wrong", "Basic dDBrZW4=", f"bearer {TOKEN}x"])
def test_requests_without_the_token_get_401_and_are_not_kept(web: Served, auth: str) -> None:
    status, body, headers = web.post("/v1/events", probe(), Authorization=auth)
    assert status == 401
    assert "expects Authorization: Bearer <token>" in body["error"]
    assert TOKEN not in json.dumps(body)
    assert headers["www-authenticate"].startswith("Bearer")
    assert web.store.quarantined() == []
    assert web.store.read_all() == []


def test_token_scheme_is_case_insensitive(web: Served) -> None:
    assert web.post("/v1/events", probe(), Authorization=f"bearer {TOKEN}")[0] == 202


def test_unknown_paths_and_methods(web: Served) -> None:
    assert request(web.server.port, "GET", "/nope", None, AUTH)[0] == 404
    assert request(web.server.port, "GET", "/nope", None, {})[0] == 401, "no hints before auth"
    assert request(web.server.port, "GET", "/v1/events", None, AUTH)[0] == 405
    status, body, _ = request(web.server.port, "GET", "/healthz", None, {})
    assert (status, body) == (200, {"status": "ok", "queued": 0, "capacity": 8})
    assert request(web.server.port, "POST", "/healthz", b"", AUTH)[0] == 405


def test_an_oversized_body_gets_413_and_its_start_is_quarantined(
    served: Callable[..., Served],
) -> None:
    web = served(max_body_bytes=1000)
    status, body, _ = web.post("/v1/events", "x" * (QUARANTINE_PREFIX_BYTES + 5000))
    assert status == 413
    assert f"body is {QUARANTINE_PREFIX_BYTES + 5000} bytes, the limit is 1000" in body["error"]
    (item,) = web.store.quarantined()
    assert len(item.payload) == QUARANTINE_PREFIX_BYTES


def test_a_chunked_body_is_accepted(web: Served) -> None:
    body = json.dumps(probe(id="chunked")).encode()
    conn = http.client.HTTPConnection("127.0.0.1", web.server.port, timeout=5)
    try:
        pieces = iter([body[:10], body[10:]])
        conn.request("POST", "/v1/events", body=pieces, headers=AUTH, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 202, response.read()
    finally:
        conn.close()
    assert [e.id for e in web.store.read_all()] == ["chunked"]


def test_a_chunked_body_over_the_limit_gets_413_and_its_start_is_quarantined(
    served: Callable[..., Served],
) -> None:
    web = served(max_body_bytes=1000)
    conn = http.client.HTTPConnection("127.0.0.1", web.server.port, timeout=5)
    try:
        pieces = iter([b"y" * 700] * 3)
        conn.request("POST", "/v1/events", body=pieces, headers=AUTH, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413
        assert response.getheader("connection") == "close"  # the rest was not read
        assert "body is over the limit of 1000 bytes" in json.loads(response.read())["error"]
    finally:
        conn.close()
    (item,) = web.store.quarantined()
    assert item.payload.startswith("y" * 1000)
    assert web.post("/v1/events", probe())[0] == 202


def test_keep_alive_serves_several_requests_on_one_connection(web: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", web.server.port, timeout=5)
    try:
        for n in range(3):
            conn.request("POST", "/v1/events", json.dumps(probe(id=f"k{n}")), AUTH)
            response = conn.getresponse()
            assert response.status == 202
            response.read()
    finally:
        conn.close()
    assert len(web.store.read_all()) == 3


def test_garbage_on_the_socket_does_not_take_the_server_down(web: Served) -> None:
    with socket.create_connection(("127.0.0.1", web.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nAuthorization: Bearer t0ken\r\nContent-Length: -5\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", web.server.port), timeout=5) as sock:
        sock.sendall(b"\x00\xff garbage \r\n\r\n")
        assert sock.recv(100)
    assert web.post("/v1/events", probe())[0] == 202


def test_alertmanager_endpoint_with_a_captured_payload(
    store: SQLiteEventStore, served: Callable[..., Served]
) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 13, tzinfo=UTC))
    web = Served(store, clock)
    web.writer.start()
    web.server.start()
    try:
        firing = (FIXTURES / "firing.json").read_bytes()
        status, body, _ = web.post("/v1/alertmanager", firing, Content_Type="application/json")
        assert (status, body["accepted"]) == (202, 2), body
        status, body, _ = web.post("/v1/alertmanager", firing, Content_Type="application/json")
        assert (status, body["duplicate"]) == (202, 2)
        resolved = (FIXTURES / "resolved.json").read_bytes()
        status, body, _ = web.post("/v1/alertmanager", resolved)
        assert (status, body["accepted"], body["duplicate"]) == (202, 1, 1)
    finally:
        web.server.stop()
        web.writer.close()


def test_backpressure_answers_429_with_retry_after_and_loses_nothing(
    served: Callable[..., Served],
) -> None:
    web = served(start_writer=False, capacity=1)
    answers: list[int] = []
    first = threading.Thread(
        target=lambda: answers.append(web.post("/v1/events", probe(id="q1"))[0])
    )
    first.start()
    wait_queued(web, 1)
    status, body, headers = web.post("/v1/events", probe(id="q2"))
    assert status == 429
    assert headers["retry-after"] == "1"
    assert "queue is full" in body["error"]
    status, _, headers = web.post("/v1/alertmanager", (FIXTURES / "firing.json").read_bytes())
    assert (status, headers["retry-after"]) == (503, "1")  # Alertmanager retries 5xx only
    web.writer.start()
    first.join(5)
    assert answers == [202]
    assert [e.id for e in web.store.read_all()] == ["q1"]
    assert web.store.quarantined() == []


def test_past_max_in_flight_a_request_gets_503_before_its_body_is_read(
    served: Callable[..., Served],
) -> None:
    web = served(start_writer=False, capacity=16, max_in_flight=2)
    answers: list[int] = []
    waiting = [
        threading.Thread(target=lambda n=n: answers.append(web.post("/v1/events", probe(id=n))[0]))
        for n in ("w1", "w2")
    ]
    for thread in waiting:
        thread.start()
    wait_queued(web, 2)
    status, body, headers = web.post("/v1/events", probe(id="w3"))
    assert (status, headers["retry-after"], headers["connection"]) == (503, "1", "close")
    assert "busy (2 requests are being served)" in body["error"]
    web.writer.start()
    for thread in waiting:
        thread.join(5)
    assert answers == [202, 202]
    assert sorted(e.id for e in web.store.read_all()) == ["w1", "w2"]
    assert web.app.statistics()["busy 503"] == 1
    assert web.post("/v1/events", probe(id="w3"))[0] == 202


def test_a_store_that_does_not_confirm_in_time_gets_503(served: Callable[..., Served]) -> None:
    web = served(start_writer=False, wait_timeout_s=0.1)
    status, body, headers = web.post("/v1/events", probe(id="late"))
    assert status == 503
    assert "did not confirm" in body["error"]
    assert headers["retry-after"] == "1"
    web.writer.start()
    web.writer.close()
    assert [e.id for e in web.store.read_all()] == ["late"], "queued work is still written"


# -- fuzzing the app (no sockets, so hundreds of cases stay fast) -----------------------------


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookApp]:
    store = SQLiteEventStore(tmp_path_factory.mktemp("fuzz") / "events.db")
    writer = IngestWriter(
        Pipeline(
            IngestGate(store, SchemaRegistry(), ManualClock(datetime(2026, 11, 25, 13, tzinfo=UTC)))
        )
    )
    writer.start()
    settings = WebhookSettings(auth=SenderAuth.open(), max_body_bytes=2000)
    yield WebhookApp(writer, writer.pipeline.gate.clock, settings)
    writer.close()
    store.close()


HEADER_NAMES = st.sampled_from(
    [
        "content-type", "ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time",
        "ce-subject", "ce-schemaversion", "ce-traceparent", "traceparent",
        "x-correlation-id", "idempotency-key", "authorization", "ce-",
    ]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "application/cloudevents+json", "application/cloudevents-batch+json",
            "application/json", "text/plain", "1.0", "2026-11-25T12:00:00Z", TRACEPARENT,
            "warden.probe.failed", "%ff%00", "99999999999999999999999",
        ]
    ),
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(list(probe())), JSON, max_size=7).map(
        lambda d: json.dumps({**probe(), **d}).encode()
    ),
    st.binary(min_size=2001, max_size=2100),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["/v1/events", "/v1/alertmanager", "/v1/json/default"]),
    st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=8),
    BODIES,
)
def test_fuzzed_requests_never_crash_and_every_refusal_is_quarantined(
    fuzz_app: WebhookApp, path: str, headers: dict[str, str], body: bytes
) -> None:
    store = fuzz_app.writer.pipeline.gate.store
    before = len(store.quarantined())
    response = fuzz_app.handle(Request("POST", path, headers, body, len(body)))
    added = len(store.quarantined()) - before
    assert response.status in (202, 400, 403, 413, 415), response
    if response.status == 202:
        assert added == 0
    else:
        assert added == response.body["quarantined"] >= 1
        assert isinstance(response.body["error"], str)
        assert response.body["error"]


# -- fuzzing the socket: raw bytes against the real HTTP server --------------------------------

VALID_REQUEST = (
    b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\n"
    b"Content-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n%s"
)


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` and then a request asking to close; read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        received = b""
        try:
            sock.sendall(data + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionError, TimeoutError):
            pass  # a mangled Content-Length may leave the server waiting for more body
        return received


def mutated(data: bytes, cuts: list[tuple[int, bytes]]) -> bytes:
    for at, insert in cuts:
        at %= len(data) + 1
        data = data[:at] + insert + data[at + len(insert) :]
    return data


@pytest.fixture(scope="module")
def socket_fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store = SQLiteEventStore(tmp_path_factory.mktemp("socket-fuzz") / "events.db")
    web = Served(store, ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC)), max_body_bytes=2000)
    web.writer.start()
    web.server.start()
    yield web
    web.server.stop()
    web.writer.close()
    store.close()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(min_value=0, max_value=2),
    st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=12)), max_size=3),
    st.binary(max_size=64),
)
def test_raw_bytes_on_the_socket_never_take_the_server_down(
    socket_fuzz: Served, copies: int, cuts: list[tuple[int, bytes]], tail: bytes
) -> None:
    body = json.dumps(probe(id="fuzz")).encode()
    data = mutated((VALID_REQUEST % (len(body), body)) * copies, cuts) + tail
    answer = raw_exchange(socket_fuzz.server.port, data)
    statuses = [int(line[9:12]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert all(status in (200, 202, 400, 401, 404, 405, 413, 415) for status in statuses)
    if 202 in statuses:
        assert [e.id for e in socket_fuzz.store.read_all() if e.id == "fuzz"] == ["fuzz"]
    status, _, _ = request(socket_fuzz.server.port, "GET", "/healthz", None, {})
    assert status == 200
