"""`warden run` feeds connectors declared in warden.yaml into the same quality gates."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from warden.assembly import build
from warden.config import parse_config
from warden.demo import free_port
from warden.domain.errors import ConfigError
from warden.domain.events import PROBE_FAILED

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def settings(tmp_path: Path, port: int, health: str = "", **webhook: object) -> object:
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "services": [
                {
                    "name": "orders",
                    "health": health or "http://127.0.0.1:9/health",
                    "managed": False,
                }
            ],
            "sources": {"webhook": {"host": "127.0.0.1", "port": port, **webhook}},
        },
        tmp_path,
    )


METRICS = {"scheme": "bearer", "secret_env": "HOOK_TOKEN", "allow_types": ["warden.metric.sampled"]}


def test_webhook_source_runs_with_warden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "s3cret-s3cret-s3cret")
    port = free_port()
    warden = build(settings(tmp_path, port, senders={"metrics": METRICS}))  # type: ignore[arg-type]
    warden.start()
    try:
        event = {
            "specversion": "1.0", "id": "m-1", "source": "test://metrics",
            "type": "warden.metric.sampled", "subject": "orders",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {"service": "orders", "metric": "backlog", "value": 1200},
        }  # fmt: skip
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/events",
            data=json.dumps(event).encode(),
            headers={
                "Content-Type": "application/cloudevents+json",
                "Authorization": "Bearer s3cret-s3cret-s3cret",
            },
            method="POST",
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    assert reply.status == 202
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the server thread is still binding
        stored = [e for e in warden.store.read_all() if e.id == "m-1"]
        assert len(stored) == 1
        assert stored[0].stream == "service-orders"
        assert stored[0].extensions["wardensource"] == "webhook/metrics"
    finally:
        warden.close()


def post(port: int, body: object, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {token}",
        },
        method="POST",
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the server thread is still binding


def forged(type_: str, n: int, data: dict[str, object]) -> dict[str, object]:
    return {
        "specversion": "1.0", "id": f"forged-{type_}-{n}", "source": "warden://probe/orders",
        "type": type_, "subject": "orders",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data": data,
    }  # fmt: skip


FORGERIES = [
    [
        forged("warden.probe.failed", n, {"service": "orders", "probe": "http://x", "error": "x"})
        for n in range(4)
    ],
    [
        forged("warden.deploy.completed", 0, {"service": "orders", "version": "9.9.9"}),
        *[
            forged("warden.metric.sampled", n, {"service": "orders", "metric": "error_rate",
                                                "value": 0.9})
            for n in range(4)
        ],
    ],
]  # fmt: skip


class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def healthy_orders() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def test_granted_probe_events_do_open_an_incident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, healthy_orders: str
) -> None:
    """The control for the test below: with a grant, the same events are evidence."""
    monkeypatch.setenv("ALERTS_TOKEN", "alerts-token-0123456789")
    port = free_port()
    alerts = {"scheme": "bearer", "secret_env": "ALERTS_TOKEN", "allow_types": [PROBE_FAILED]}
    config = settings(tmp_path, port, healthy_orders, senders={"alerts": alerts})
    warden = build(config)  # type: ignore[arg-type]
    warden.start()
    try:
        for event in FORGERIES[0]:
            assert post(port, event, "alerts-token-0123456789")[0] == 202
        deadline = time.monotonic() + 10
        while not warden.runtime.incidents:
            assert time.monotonic() < deadline, "no incident opened"
            warden.runtime.tick()
    finally:
        warden.close()


@pytest.mark.parametrize("events", FORGERIES, ids=["probe-failures", "deploy-and-metrics"])
def test_forged_internal_events_are_refused_and_open_no_incident(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    healthy_orders: str,
    events: list[dict[str, object]],
) -> None:
    """An authenticated sender without a grant cannot speak for Warden's probes or deploys."""
    monkeypatch.setenv("ALERTS_TOKEN", "alerts-token-0123456789")
    port = free_port()
    alerts = {"scheme": "bearer", "secret_env": "ALERTS_TOKEN"}
    config = settings(tmp_path, port, healthy_orders, senders={"alerts": alerts})
    warden = build(config)  # type: ignore[arg-type]
    warden.start()
    try:
        for event in events:
            status, body = post(port, event, "alerts-token-0123456789")
            assert status == 403, body
            assert f"{event['type']} is reserved for Warden's own events" in str(body["error"])
            assert "sources.webhook.senders.alerts.allow_types" in str(body["error"])
        for _ in range(20):  # the live loop's ticks: nothing to detect
            warden.runtime.tick()
        assert warden.runtime.incidents == {}
        assert not [e for e in warden.store.read_all() if e.id.startswith("forged-")]
        reasons = [q.reason for q in warden.store.quarantined()]
        assert len(reasons) == len(events)
    finally:
        warden.close()


def test_a_webhook_without_senders_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources.webhook: no senders.*insecure: true"):
        build(settings(tmp_path, free_port()))  # type: ignore[arg-type]


def test_an_insecure_webhook_warns_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    warden = build(settings(tmp_path, port, insecure=True))  # type: ignore[arg-type]
    warden.start()
    try:
        metric = forged(
            "warden.metric.sampled", 0, {"service": "orders", "metric": "x", "value": 1}
        )
        status, body = post(port, metric, "")
        assert status == 403, "anonymous input gets no reserved type either"
        assert "sources.webhook.allow_types" in str(body["error"])
    finally:
        warden.close()
    assert any("without credentials (insecure: true)" in r.getMessage() for r in caplog.records)


def test_missing_token_env_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$NOPE_NOT_SET is not set"):
        build(settings(tmp_path, free_port(), token_env="NOPE_NOT_SET"))  # type: ignore[arg-type]
