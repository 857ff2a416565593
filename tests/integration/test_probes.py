"""HTTP and TCP probes against real local servers, and the demo service they watch."""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from warden.demo import free_port
from warden.demo.service import build_server
from warden.domain import health
from warden.domain.errors import ConfigError
from warden.ingest.probes import HttpProbe, ProbeResult, TcpProbe, jittered, timed_out

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True


def handler(status: int = 200, delay_s: float = 0.0) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if delay_s:
                time.sleep(delay_s)  # the slowness under test, not a wait
            body = b"{}"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[ThreadingHTTPServer], int]]:
    """Run servers on background threads; returns their port; shuts them down after."""
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(server: ThreadingHTTPServer) -> int:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        running.append((server, thread))
        return int(server.server_address[1])

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()


def http_server(status: int = 200, delay_s: float = 0.0) -> ThreadingHTTPServer:
    return QuietServer(("127.0.0.1", 0), handler(status, delay_s))


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A socket that accepts connections into its backlog and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def fetch(port: int, path: str) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# -- HTTP ----------------------------------------------------------------------------------


def test_http_probe_passes_on_the_expected_status(
    serve: Callable[[ThreadingHTTPServer], int],
) -> None:
    port = serve(build_server("payments", 0))
    result = HttpProbe(f"http://127.0.0.1:{port}/health", timeout_s=1.0).check()
    assert result.ok, result
    assert result.status == 200
    assert result.error == ""
    assert 0 < result.latency_ms < 1000


def test_http_probe_fails_on_another_status(
    serve: Callable[[ThreadingHTTPServer], int],
) -> None:
    port = serve(http_server(status=503))
    result = HttpProbe(f"http://127.0.0.1:{port}/health", timeout_s=1.0).check()
    assert result == ProbeResult(
        ok=False, latency_ms=result.latency_ms, status=503, error="HTTP 503", kind="http_status"
    )


def test_http_probe_expect_status(serve: Callable[[ThreadingHTTPServer], int]) -> None:
    port = serve(http_server(status=204))
    url = f"http://127.0.0.1:{port}/"
    assert HttpProbe(url, timeout_s=1.0, expect_status=204).check().ok
    assert HttpProbe(url, timeout_s=1.0).check().error == "HTTP 204"


def test_http_probe_reports_connection_refused() -> None:
    result = HttpProbe(f"http://127.0.0.1:{free_port()}/health", timeout_s=1.0).check()
    assert not result.ok
    assert result.status is None
    assert result.error == "connection refused"


def test_http_probe_times_out(silent_listener: int) -> None:
    start = time.monotonic()
    result = HttpProbe(f"http://127.0.0.1:{silent_listener}/health", timeout_s=0.2).check()
    elapsed = time.monotonic() - start
    assert not result.ok
    assert result.error == "no answer within 0.2 s after connecting"
    assert result.status is None
    assert 0.15 < elapsed < 1.0


def test_http_probe_timeout_covers_the_whole_check(
    serve: Callable[[ThreadingHTTPServer], int],
) -> None:
    port = serve(http_server(delay_s=0.5))
    result = HttpProbe(f"http://127.0.0.1:{port}/", timeout_s=0.15).check()
    assert result.error == "no answer within 0.15 s after connecting"
    assert result.latency_ms < 450


def test_http_probe_latency_threshold(serve: Callable[[ThreadingHTTPServer], int]) -> None:
    port = serve(http_server(delay_s=0.12))
    url = f"http://127.0.0.1:{port}/"
    slow = HttpProbe(url, timeout_s=2.0, latency_threshold_ms=50).check()
    assert not slow.ok
    assert slow.status == 200
    assert slow.latency_ms >= 100
    assert slow.error == f"latency {slow.latency_ms:.0f} ms above 50 ms"
    assert HttpProbe(url, timeout_s=2.0, latency_threshold_ms=2000).check().ok


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://example.com/"}, "must be http"),
        ({"url": "http:///health"}, "must be http"),
        ({"url": "http://127.0.0.1:99999/"}, "out of range"),
        ({"url": "http://127.0.0.1/", "timeout_s": 0}, "timeout_s must be a positive"),
        ({"url": "http://127.0.0.1/", "latency_threshold_ms": 0}, "latency_threshold_ms"),
    ],
)
def test_http_probe_refuses_bad_config(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HttpProbe(**{"timeout_s": 1.0, **kwargs})


# -- TCP -----------------------------------------------------------------------------------


def test_tcp_probe_connects(silent_listener: int) -> None:
    result = TcpProbe("127.0.0.1", silent_listener, timeout_s=1.0).check()
    assert result.ok, result
    assert result.status is None
    assert result.error == ""


def test_tcp_probe_reports_connection_refused() -> None:
    result = TcpProbe("127.0.0.1", free_port(), timeout_s=1.0).check()
    assert not result.ok
    assert result.error == "connection refused"


@pytest.mark.parametrize(
    ("host", "port", "timeout_s"),
    [("", 80, 1.0), ("127.0.0.1", 0, 1.0), ("127.0.0.1", 70000, 1.0), ("127.0.0.1", 80, -1)],
)
def test_tcp_probe_refuses_bad_config(host: str, port: int, timeout_s: float) -> None:
    with pytest.raises(ConfigError):
        TcpProbe(host, port, timeout_s)


# -- scheduling ----------------------------------------------------------------------------


def test_jittered_stays_within_its_band_and_is_reproducible() -> None:
    values = [jittered(10.0, 0.2, random.Random(7)) for _ in range(3)]
    assert values[0] == values[1] == values[2]
    rng = random.Random(1)
    spread = [jittered(10.0, 0.2, rng) for _ in range(500)]
    assert all(8.0 <= v <= 12.0 for v in spread)
    assert min(spread) < 8.5
    assert max(spread) > 11.5
    assert jittered(5.0, 0.0, rng) == 5.0


@pytest.mark.parametrize(
    ("interval", "fraction"), [(0.0, 0.1), (-1.0, 0.1), (1.0, 1.0), (1.0, -0.1)]
)
def test_jittered_refuses_bad_arguments(interval: float, fraction: float) -> None:
    with pytest.raises(ConfigError):
        jittered(interval, fraction, random.Random(0))


# -- the demo service the probes watch ------------------------------------------------------


def test_demo_chain_reports_the_failing_hop(
    serve: Callable[[ThreadingHTTPServer], int],
) -> None:
    dead = free_port()
    orders = serve(build_server("orders", 0, f"http://127.0.0.1:{dead}"))
    gateway = serve(build_server("gateway", 0, f"http://127.0.0.1:{orders}"))
    status, body = fetch(gateway, "/checkout")
    assert status == 502
    assert body == {
        "service": "gateway",
        "status": "error",
        "failed_hop": f"orders -> http://127.0.0.1:{dead}",
        "error": "connection refused",
    }
    status, body = fetch(gateway, "/health")
    assert (status, body["service"], body["status"]) == (200, "gateway", "ok")
    assert fetch(gateway, "/nope")[0] == 404


def test_demo_chain_works_end_to_end(serve: Callable[[ThreadingHTTPServer], int]) -> None:
    payments = serve(build_server("payments", 0))
    orders = serve(build_server("orders", 0, f"http://127.0.0.1:{payments}"))
    assert fetch(orders, "/") == (
        200,
        {"service": "orders", "status": "ok", "chain": ["orders", "payments"]},
    )


def test_demo_downstream_timeout_is_a_502(
    serve: Callable[[ThreadingHTTPServer], int], silent_listener: int
) -> None:
    orders = build_server(
        "orders", 0, f"http://127.0.0.1:{silent_listener}", downstream_timeout_s=0.1
    )
    status, body = fetch(serve(orders), "/checkout")
    assert status == 502
    assert body["error"] == "timed out after 0.1 s"
    assert body["failed_hop"] == f"orders -> http://127.0.0.1:{silent_listener}"


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A loopback listener that accepts nothing and whose accept queue is full.

    What a stopped (SIGSTOP) or deadlocked server looks like once a few probes queued up:
    the kernel drops further SYNs, so a connect times out though nothing is in between.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(8):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        queued.append(client)
    time.sleep(0.05)  # let the handshakes that fit complete
    try:
        yield port
    finally:
        for client in queued:
            client.close()
        server.close()


@pytest.mark.parametrize("make", ["http", "tcp"])
def test_a_connect_timeout_on_loopback_points_at_the_process(full_backlog: int, make: str) -> None:
    probe = (
        HttpProbe(f"http://127.0.0.1:{full_backlog}/health", timeout_s=0.3)
        if make == "http"
        else TcpProbe("127.0.0.1", full_backlog, timeout_s=0.3)
    )
    result = probe.check()
    assert not result.ok
    assert result.kind == health.HUNG
    assert "on loopback" in result.error
    # The diagnosis reads it as a process that is alive and answers nothing.
    assert health.cause(result.kind, result.status) is health.Cause.HUNG


def test_a_connect_timeout_elsewhere_points_at_the_path() -> None:
    result = timed_out("orders.internal", 0.5, time.perf_counter(), connected=False)
    assert result.kind == health.TIMEOUT
    assert health.cause(result.kind, result.status) is health.Cause.PATH
    assert timed_out("::1", 0.5, time.perf_counter(), connected=False).kind == health.HUNG
