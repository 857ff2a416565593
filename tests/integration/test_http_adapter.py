"""The HTTP action adapter against a real local HTTP server: templates, retries, secrets."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain.errors import ConfigError, PermanentError, TemporaryError
from warden.execution.adapters.http import HttpActionAdapter, HttpCheck, HttpRoute, retry_after_s
from warden.execution.adapters.registry import RunStatistics, build_adapters, retry_hint
from warden.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from warden.ports import ActionResult

SECRET = "s3cr3t-t0ken-a1b2c3"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    echo_headers: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Peer:
    """A scripted HTTP server: replies queued per path, every request recorded.

    A request with an Idempotency-Key it has applied before is answered from memory and
    not applied again, as a well-behaved target API would.
    """

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.script: dict[str, list[Reply]] = defaultdict(list)
        self.applied: dict[str, int] = defaultdict(int)
        self.release = threading.Event()
        self.lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                path = self.path.split("?", 1)[0]
                with peer.lock:
                    peer.requests.append(seen)
                    queued = peer.script[path]
                    reply = queued.pop(0) if queued else Reply()
                    key = self.headers.get("Idempotency-Key") or ""
                    replayed = bool(key) and peer.applied[key] > 0
                    if key and reply.status < 300:
                        peer.applied[key] += 0 if replayed else 1
                if reply.delay_s:
                    peer.release.wait(reply.delay_s)
                if reply.echo_headers:
                    payload: Any = {"you_sent": dict(self.headers.items())}
                elif reply.body is None:
                    payload = {"path": self.path, "replayed": replayed}
                else:
                    payload = reply.body
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up on a slow reply; nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def reply(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.script[path].extend(replies)

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    p.thread.start()
    yield p
    p.release.set()
    p.server.shutdown()
    p.server.server_close()
    p.thread.join(5)


@pytest.fixture
def env() -> dict[str, str]:
    return {"DEPLOY_TOKEN": SECRET}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def adapter_for(peer: Peer, env: dict[str, str], **route: Any) -> HttpActionAdapter:
    fields: dict[str, Any] = {
        "url": peer.base + "/services/{target}/rollback",
        "headers": {"Authorization": "Bearer ${DEPLOY_TOKEN}"},
        "timeout_s": 2.0,
        **route,
    }
    return HttpActionAdapter({"rollback_deploy": HttpRoute(**fields)}, env=env)


def assert_no_secret(*things: object) -> None:
    for thing in things:
        assert SECRET not in repr(thing)
        assert SECRET not in str(thing)


def test_post_fills_templates_and_sends_key_and_secret(peer: Peer, env: dict[str, str]) -> None:
    adapter = adapter_for(
        peer,
        env,
        url=peer.base + "/services/{target}/rollback?to={version}",
        body={"service": "{target}", "replicas": "{replicas}", "note": "to {version}"},
    )
    result = adapter.run(
        "rollback_deploy",
        "pay/ments api",
        {"version": "v1.2&x=1", "replicas": 3, "idempotency_key": "key-1"},
    )
    assert result.ok, result.detail
    (seen,) = peer.requests
    assert seen.method == "POST"
    assert seen.path == "/services/pay%2Fments%20api/rollback?to=v1.2%26x%3D1"
    assert json.loads(seen.body) == {
        "service": "pay/ments api",
        "replicas": 3,
        "note": "to v1.2&x=1",
    }
    assert seen.headers["Idempotency-Key"] == "key-1"
    assert seen.headers["Authorization"] == f"Bearer {SECRET}"
    assert seen.headers["Content-Type"] == "application/json"
    assert result.output["status"] == 200
    assert result.output["json"]["replayed"] is False
    assert "POST" in result.detail and "200" in result.detail
    assert_no_secret(result, adapter, adapter._routes)


def test_undo_params_in_the_answer_are_passed_to_compensation(
    peer: Peer, env: dict[str, str]
) -> None:
    peer.reply(
        "/services/payments/rollback",
        Reply(body={"deployed": "v1", "undo_params": {"version": "v2"}}),
        Reply(body={"deployed": "v1", "undo_params": "v2"}),  # not an object: ignored
    )
    adapter = adapter_for(peer, env)
    result = adapter.run("rollback_deploy", "payments", {"version": "v1"})
    assert result.ok
    assert result.output["undo_params"] == {"version": "v2"}
    again = adapter.run("rollback_deploy", "payments", {"version": "v1"})
    assert again.ok
    assert "undo_params" not in again.output


def test_same_key_twice_is_applied_once(peer: Peer, env: dict[str, str]) -> None:
    adapter = adapter_for(peer, env)
    params = {"idempotency_key": "step-7"}
    first = adapter.run("rollback_deploy", "payments", params)
    again = adapter.run("rollback_deploy", "payments", params)
    assert first.ok and again.ok
    assert [r.headers["Idempotency-Key"] for r in peer.requests] == ["step-7", "step-7"]
    assert peer.applied == {"step-7": 1}
    assert again.output["json"]["replayed"] is True
    assert adapter.statistics() == RunStatistics(runs=2, succeeded=2)


def test_503_with_retry_after_seconds_is_retryable(peer: Peer, env: dict[str, str]) -> None:
    peer.reply("/services/payments/rollback", Reply(503, {"error": "busy"}, {"Retry-After": "7"}))
    result = adapter_for(peer, env).run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is True
    assert result.output["retry_after_s"] == 7.0
    assert result.output["status"] == 503
    assert result.output["json"] == {"error": "busy"}
    assert "retry after 7 s" in result.detail
    hint = retry_hint(result)
    assert isinstance(hint, TemporaryError) and hint.delay == 7.0


def test_429_with_retry_after_date_uses_the_clock(peer: Peer, env: dict[str, str]) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    when = format_datetime(clock.now() + timedelta(seconds=90), usegmt=True)
    peer.reply("/services/payments/rollback", Reply(429, headers={"Retry-After": when}))
    route = HttpRoute(url=peer.base + "/services/{target}/rollback")
    adapter = HttpActionAdapter({"rollback_deploy": route}, env=env, clock=clock)
    result = adapter.run("rollback_deploy", "payments", {})
    assert result.output["retryable"] is True
    assert result.output["retry_after_s"] == 90.0


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses(peer: Peer, env: dict[str, str], status: int) -> None:
    peer.reply("/services/payments/rollback", Reply(status))
    result = adapter_for(peer, env).run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is True
    assert result.output["retry_after_s"] is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_permanent(peer: Peer, env: dict[str, str], status: int) -> None:
    peer.reply("/services/payments/rollback", Reply(status, {"error": "no such service"}))
    adapter = adapter_for(peer, env)
    result = adapter.run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert result.output["status"] == status
    assert isinstance(retry_hint(result), PermanentError)
    assert adapter.statistics().permanent_failures == 1


def test_slow_target_times_out_as_retryable(peer: Peer, env: dict[str, str]) -> None:
    peer.reply("/services/payments/rollback", Reply(delay_s=10))
    adapter = adapter_for(peer, env, timeout_s=0.3)
    started = time.monotonic()
    result = adapter.run("rollback_deploy", "payments", {"idempotency_key": "k"})
    assert time.monotonic() - started < 3
    assert not result.ok
    assert result.output["retryable"] is True
    assert "0.3 s" in result.detail and "Idempotency-Key" in result.detail


def test_connection_refused_is_retryable(env: dict[str, str]) -> None:
    route = HttpRoute(url=f"http://127.0.0.1:{closed_port()}/x/{{target}}")
    adapter = HttpActionAdapter({"poke": route}, env=env)
    result = adapter.run("poke", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is True
    assert "cannot reach" in result.detail


def test_redirects_are_not_followed(peer: Peer, env: dict[str, str]) -> None:
    peer.reply("/services/payments/rollback", Reply(302, headers={"Location": "/elsewhere"}))
    result = adapter_for(peer, env).run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert result.output["location"] == "/elsewhere"
    assert peer.paths() == ["/services/payments/rollback"]


def test_unexpected_2xx_is_a_failure(peer: Peer, env: dict[str, str]) -> None:
    peer.reply("/services/payments/rollback", Reply(200))
    result = adapter_for(peer, env, expect_status=[202]).run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert "expected 202" in result.detail


def test_missing_param_sends_nothing(peer: Peer, env: dict[str, str]) -> None:
    adapter = adapter_for(peer, env, body={"version": "{version}"})
    result = adapter.run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert "'version'" in result.detail
    unknown = adapter.run("no_such_action", "payments", {})
    assert not unknown.ok and "rollback_deploy" in unknown.detail
    assert peer.requests == []


def test_long_body_is_truncated(peer: Peer, env: dict[str, str]) -> None:
    peer.reply("/services/payments/rollback", Reply(200, b"x" * 10_000))
    route = HttpRoute(url=peer.base + "/services/{target}/rollback")
    adapter = HttpActionAdapter({"rollback_deploy": route}, env=env, max_body_bytes=100)
    result = adapter.run("rollback_deploy", "payments", {})
    assert result.ok
    assert result.output["body"] == "x" * 100
    assert result.output["body_truncated"] is True
    assert "json" not in result.output


# -- secrets -------------------------------------------------------------------------------


def test_secret_echoed_by_the_target_is_redacted(
    peer: Peer, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    peer.reply("/services/payments/rollback", Reply(200, echo_headers=True))
    peer.reply("/services/payments/rollback", Reply(500, echo_headers=True))
    adapter = adapter_for(peer, env)
    ok = adapter.run("rollback_deploy", "payments", {})
    failure = adapter.run("rollback_deploy", "payments", {})
    assert peer.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert ok.ok and ok.output["json"]["you_sent"]["Authorization"] == "Bearer [REDACTED]"
    assert not failure.ok and "[REDACTED]" in failure.output["body"]
    assert_no_secret(ok, failure, ok.output, failure.output, retry_hint(failure), adapter)
    assert SECRET not in caplog.text


def test_missing_secret_names_the_variable_only(peer: Peer) -> None:
    adapter = adapter_for(peer, {})
    result = adapter.run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert "DEPLOY_TOKEN" in result.detail
    assert peer.requests == []


def test_secret_that_breaks_the_request_is_not_echoed(peer: Peer) -> None:
    bad = f"{SECRET}\r\nX-Injected: 1"
    adapter = adapter_for(peer, {"DEPLOY_TOKEN": bad})
    result = adapter.run("rollback_deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert_no_secret(result, result.output)
    assert peer.requests == []


def test_secrets_are_refused_outside_headers() -> None:
    with pytest.raises(ConfigError, match=r"url: .*header values only"):
        HttpRoute(url="https://api.example/x?token=${DEPLOY_TOKEN}")
    with pytest.raises(ConfigError, match=r"body: .*header values only"):
        HttpRoute(url="https://api.example/x", body={"token": "${DEPLOY_TOKEN}"})


# -- check (crash reconciliation) ------------------------------------------------------------


def test_check_reads_the_effect(peer: Peer, env: dict[str, str]) -> None:
    check = HttpCheck(
        url=peer.base + "/services/{target}",
        headers={"Authorization": "Bearer ${DEPLOY_TOKEN}"},
        expect={"version": "{version}"},
    )
    adapter = adapter_for(peer, env, check=check)
    params = {"version": "v1"}
    peer.reply("/services/payments", Reply(200, {"version": "v1", "replicas": 3}))
    assert adapter.check("rollback_deploy", "payments", params) is True
    peer.reply("/services/payments", Reply(200, {"version": "v2"}))
    assert adapter.check("rollback_deploy", "payments", params) is False
    peer.reply("/services/payments", Reply(404))
    assert adapter.check("rollback_deploy", "payments", params) is False
    peer.reply("/services/payments", Reply(503))
    assert adapter.check("rollback_deploy", "payments", params) is None
    assert adapter.check("rollback_deploy", "payments") is None  # {version} unknown
    assert all(r.method == "GET" for r in peer.requests)
    assert peer.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert len(peer.requests) == 4
    assert adapter.statistics().checks == 5


def test_check_without_a_route_or_a_peer_is_unknown(env: dict[str, str]) -> None:
    route = HttpRoute(
        url="http://127.0.0.1:1/x", check=HttpCheck(url=f"http://127.0.0.1:{closed_port()}/x")
    )
    adapter = HttpActionAdapter({"a": route, "b": HttpRoute(url="http://127.0.0.1:1/y")}, env=env)
    assert adapter.check("a", "t") is None
    assert adapter.check("b", "t") is None
    assert adapter.check("zzz", "t") is None


# -- Retry-After and configuration ------------------------------------------------------------


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_s("120", now) == 120.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after_s("soon", now) is None
    assert retry_after_s(None, now) is None


def test_registry_builds_http_actions(peer: Peer, env: dict[str, str]) -> None:
    config = {
        "actions": {
            "rollback_deploy": {
                "adapter": "http",
                "method": "put",
                "url": peer.base + "/services/{target}/rollback",
                "headers": {"Authorization": "Bearer ${DEPLOY_TOKEN}"},
                "body": {"to": "{version}"},
                "expect_status": 200,
                "check": {"url": peer.base + "/services/{target}", "expect": {"up": True}},
            }
        },
        "services": ["left alone"],
    }
    with build_adapters(config, env=env) as adapters:
        assert list(adapters) == ["rollback_deploy"]
        result: ActionResult = adapters["rollback_deploy"].run(
            "rollback_deploy", "payments", {"version": "v9"}
        )
        assert result.ok, result.detail
        peer.reply("/services/payments", Reply(200, {"up": True}))
        assert adapters.check("rollback_deploy", "payments") is True
    assert [(r.method, r.path) for r in peer.requests] == [
        ("PUT", "/services/payments/rollback"),
        ("GET", "/services/payments"),
    ]
    assert json.loads(peer.requests[0].body) == {"to": "v9"}
    assert_no_secret(adapters)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"adapter": "http"}, r"actions\.a\.url: required"),
        ({"adapter": "http", "url": "ftp://x/{target}"}, r"actions\.a\.url: .*not an http"),
        (
            {"adapter": "http", "url": "https://x/", "methd": "GET"},
            r"actions\.a\.methd: unknown key",
        ),
        ({"adapter": "http", "url": "https://x/", "method": "BREW"}, r"actions\.a\.method: .*POST"),
        ({"adapter": "http", "url": "https://x/{tar get}"}, r"actions\.a\.url: .*stray brace"),
        ({"adapter": "http", "url": "https://x/", "timeout_s": 0}, r"actions\.a\.timeout_s"),
        ({"adapter": "http", "url": "https://x/", "expect_status": ["ok"]}, r"a\.expect_status"),
        (
            {"adapter": "http", "url": "https://x/", "check": {"expect": {}}},
            r"actions\.a\.check\.url: required",
        ),
        (
            {"adapter": "http", "url": "https://x/", "check": {"url": "https://x/", "every": 1}},
            r"actions\.a\.check\.every: unknown key",
        ),
    ],
)
def test_registry_http_config_errors(action: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_adapters({"actions": {"a": action}})
