"""The /metrics endpoint over real HTTP: scraped, parsed, and stopped cleanly."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from warden.domain import events as ev
from warden.telemetry.metrics import MetricsListener, serve_metrics


def opened(n: int) -> ev.Event:
    return ev.Event(
        id=f"o{n}", source="test", type=ev.INCIDENT_OPENED, time=f"2026-11-25T12:00:0{n}.000000Z",
        data={"incident_id": f"i{n}", "service": "payments"}, stream=f"incident-i{n}", position=n,
    )  # fmt: skip


def get(url: str, accept: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_scrape_parses_and_carries_the_numbers() -> None:
    registry = CollectorRegistry()
    listener = MetricsListener(registry)
    for n in (1, 2):
        listener(opened(n))
    with serve_metrics(registry, "127.0.0.1", 0) as server:
        assert server.port > 0
        status, content_type, body = get(server.url)
        assert status == 200
        assert content_type.startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(body)}
        (total,) = (
            s for s in families["warden_incidents_opened"].samples if s.name.endswith("_total")
        )
        assert total.value == 2
        (open_,) = (s for s in families["warden_incidents"].samples if s.labels["state"] == "open")
        assert open_.value == 2
        listener(opened(3))  # live: the next scrape sees it
        _, _, again = get(server.url)
        assert "warden_incidents_opened_total 3.0" in again


def test_openmetrics_is_negotiated() -> None:
    with serve_metrics(CollectorRegistry(), "127.0.0.1", 0) as server:
        _, content_type, body = get(
            server.url, accept="application/openmetrics-text; version=1.0.0"
        )
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


def test_other_paths_are_not_found() -> None:
    with serve_metrics(CollectorRegistry(), "127.0.0.1", 0) as server:
        status, _, body = get(server.url.replace("/metrics", "/"))
    assert status == 404
    assert "/metrics" in body


def test_close_releases_the_port() -> None:
    server = serve_metrics(CollectorRegistry(), "127.0.0.1", 0)
    port = server.port
    server.close()
    with socket.socket() as probe:
        probe.settimeout(2)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))
