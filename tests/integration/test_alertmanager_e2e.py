"""A real Alertmanager 0.25 posting to the real webhook: firing, re-sends, resolved.

Skips when the `prometheus-alertmanager` binary (Debian package) is missing. Set
WARDEN_CAPTURE_ALERTMANAGER=1 to refresh the captured payloads in tests/fixtures/alertmanager/.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.builders import wait_for
from warden.ingest.alertmanager import ALERT_FIRING, ALERT_RESOLVED, resolution_for
from warden.ingest.auth import SenderAuth
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import Pipeline
from warden.ingest.registry import SchemaRegistry
from warden.ingest.senders import Sender, sender_from_options
from warden.ingest.webhook import Request, Response, WebhookApp, WebhookSettings
from warden.ingest.webhook_server import WebhookServer
from warden.ingest.writer import IngestWriter
from warden.ports import SystemClock

from .alertmanager import (
    HTTP_CONFIGS,
    TOKEN,
    needs_alertmanager,
    post_alerts,
    running_alertmanager,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from warden.domain.events import Event
    from warden.store.sqlite import SQLiteEventStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "alertmanager"

pytestmark = needs_alertmanager


class RecordingApp(WebhookApp):
    """The real app, keeping every Alertmanager body it answered (to capture fixtures)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: list[tuple[int, bytes]] = []

    async def handle_async(self, request: Request, sender: Sender | None = None) -> Response:
        response = await super().handle_async(request, sender)
        if request.path == "/v1/alertmanager":
            self.bodies.append((response.status, request.body))
        return response


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.fixture(params=sorted(HTTP_CONFIGS))
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def webhook(store: SQLiteEventStore, scheme: str) -> Iterator[tuple[RecordingApp, WebhookServer]]:
    writer = IngestWriter(Pipeline(IngestGate(store, SchemaRegistry(), SystemClock())))
    writer.start()
    options = {"scheme": scheme, "secret_env": "AM_SECRET"}
    if scheme == "basic":
        options["username"] = "alertmanager"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AM_SECRET", TOKEN)
        auth = SenderAuth([sender_from_options("alertmanager", options)])
    app = RecordingApp(writer, SystemClock(), WebhookSettings(auth=auth))
    server = WebhookServer(app)
    server.start()
    yield app, server
    server.stop()
    writer.close()


@pytest.fixture
def alertmanager(
    tmp_path: Path, webhook: tuple[RecordingApp, WebhookServer], scheme: str
) -> Iterator[int]:
    with running_alertmanager(tmp_path, webhook[1].url, scheme) as port:
        yield port


def of_type(store: SQLiteEventStore, type_: str) -> list[Event]:
    return [e for e in store.read_all() if e.type == type_]


def test_real_alertmanager_firing_resends_and_resolved(
    alertmanager: int, webhook: tuple[RecordingApp, WebhookServer], store: SQLiteEventStore
) -> None:
    app, _ = webhook
    started = now_text()
    payments = {
        "labels": {"alertname": "ServiceDown", "service": "payments", "severity": "critical"},
        "annotations": {"summary": "payments is down"},
        "startsAt": started,
        "generatorURL": "http://prometheus.example/graph?g0.expr=up%3D%3D0",
    }
    orders = {
        "labels": {"alertname": "ServiceDown", "job": "orders", "instance": "orders:8080"},
        "annotations": {"summary": "orders is down"},
        "startsAt": started,
    }
    post_alerts(alertmanager, [payments, orders])

    # Firing: two events, then Alertmanager re-sends the group every repeat_interval.
    wait_for(lambda: len(of_type(store, ALERT_FIRING)) == 2, "two firing events")
    wait_for(lambda: len(app.bodies) >= 3, "two re-sends of the firing notification")
    assert all(status == 202 for status, _ in app.bodies), app.bodies
    firing = {e.subject: e for e in of_type(store, ALERT_FIRING)}
    assert sorted(firing) == ["orders", "payments"]
    assert firing["payments"].stream == "service-payments"
    assert firing["orders"].data["labels"]["instance"] == "orders:8080"
    assert firing["orders"].extensions["wardensource"] == "webhook/alertmanager"
    assert len(of_type(store, ALERT_FIRING)) == 2, "re-sends must not add events"
    first_capture = app.bodies[0][1]

    # Resolved: one event for payments, tied to its firing event.
    post_alerts(alertmanager, [{**payments, "endsAt": now_text()}])
    wait_for(lambda: len(of_type(store, ALERT_RESOLVED)) == 1, "the resolved event")
    wait_for(lambda: len(app.bodies) >= 5, "a re-send after the resolution")
    (resolved,) = of_type(store, ALERT_RESOLVED)
    resolution = resolution_for(resolved)
    assert resolution is not None
    assert resolution.service == "payments"
    assert resolution.firing_event_id == firing["payments"].id
    assert resolved.correlation_id == firing["payments"].correlation_id
    assert len(of_type(store, ALERT_FIRING)) == 2
    assert len(of_type(store, ALERT_RESOLVED)) == 1
    assert store.quarantined() == []
    assert app.statistics().get("refused 401", 0) == 0

    if os.environ.get("WARDEN_CAPTURE_ALERTMANAGER"):
        resolved_capture = next(body for _, body in app.bodies if b'"status":"resolved"' in body)
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for name, body in [("firing.json", first_capture), ("resolved.json", resolved_capture)]:
            parsed = json.loads(body)
            (FIXTURES / name).write_text(json.dumps(parsed, indent=2) + "\n", encoding="utf-8")


def test_real_alertmanager_without_the_token_is_refused(
    tmp_path: Path, alertmanager: int, webhook: tuple[RecordingApp, WebhookServer]
) -> None:
    app, _ = webhook
    app.auth = SenderAuth.bearer("another-token-0123456789")
    post_alerts(
        alertmanager,
        [{"labels": {"alertname": "Down", "service": "x"}, "startsAt": now_text()}],
    )
    wait_for(lambda: app.statistics().get("refused 401", 0) >= 1, "a 401 answer")
    assert app.writer.pipeline.statistics().total == 0
