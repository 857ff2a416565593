"""A real Alertmanager posting to Warden's webhook, feeding a real runtime.

Alerts mapped by label rules join incidents as evidence and never close one whose probe
still fails; an alert that maps to nothing pages once, with its labels.

Skips when the `prometheus-alertmanager` binary (Debian package) is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.builders import wait_for
from warden.domain import events as ev
from warden.domain.incident import State
from warden.ingest.auth import SenderAuth
from warden.ingest.pipeline import Pipeline
from warden.ingest.webhook import WebhookApp, WebhookSettings
from warden.ingest.webhook_server import WebhookServer
from warden.ingest.writer import IngestWriter

from .alertmanager import TOKEN, needs_alertmanager, post_alerts, running_alertmanager
from .harness import Harness, make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from warden.domain.incident import Incident

pytestmark = needs_alertmanager


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    # Supervised: the probe's incident waits for an approval, so nothing acts before the
    # alert comes and goes.
    h = make_harness(tmp_path, autonomy="supervised")
    yield h
    h.close()


@dataclass
class Wired:
    port: int  # Alertmanager's
    app: WebhookApp  # Warden's webhook


@pytest.fixture
def alertmanager(tmp_path: Path, harness: Harness) -> Iterator[Wired]:
    """Alertmanager -> Warden's webhook (the fleet's alert rules) -> the harness's runtime."""
    writer = IngestWriter(Pipeline(harness.warden.runtime.ingest))
    writer.start()
    settings = WebhookSettings(
        auth=SenderAuth.bearer(TOKEN, "alertmanager"),
        alert_routing=harness.warden.config.fleet_alert_routing,
    )
    app = WebhookApp(writer, harness.clock, settings)
    server = WebhookServer(app)
    server.start()
    try:
        with running_alertmanager(tmp_path, server.url) as port:
            yield Wired(port, app)
    finally:
        server.stop()
        writer.close()


def stored(h: Harness, type_: str, **data: str) -> list[ev.Event]:
    return [e for e in h.events(type_) if all(e.data.get(k) == v for k, v in data.items())]


def alert(h: Harness, labels: dict[str, str], *, resolved: bool = False) -> dict[str, Any]:
    """An alert as Prometheus posts it, dated by the harness's clock."""
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {"summary": f"{labels['alertname']} fired"},
        "startsAt": ev.format_time(h.clock.now()),
    }
    return body


def test_a_resolved_alert_never_closes_the_incident_of_a_probe_that_still_fails(
    alertmanager: Wired, harness: Harness
) -> None:
    h = harness
    h.probes["payments"].error = "HTTP 404"
    h.fail("payments", 3)
    h.settle(2)
    (probe_incident,) = h.incidents("payments")
    assert probe_incident.kind == "service_down"
    assert not probe_incident.state.terminal or probe_incident.state is State.ESCALATED

    # HighErrorRate, labelled service_name (once quarantined): it joins the open incident.
    firing = alert(
        h, {"alertname": "HighErrorRate", "service_name": "payments", "severity": "page"}
    )
    post_alerts(alertmanager.port, [firing])
    wait_for(lambda: stored(h, ev.ALERT_FIRING, service="payments"), "the firing alert")
    (fired,) = stored(h, ev.ALERT_FIRING, service="payments")
    assert fired.data["mapped_by"] == "label service_name=payments"
    h.fail("payments", 1)
    h.settle(3)
    (joined,) = h.incidents("payments")
    assert joined.id == probe_incident.id, "the alert opened no incident of its own"
    assert fired.id in joined.evidence_ids

    # The alert resolves at the source while the probe still answers 404.
    h.clock.advance(5)
    post_alerts(alertmanager.port, [{**firing, "endsAt": ev.format_time(h.clock.now())}])
    wait_for(lambda: stored(h, ev.ALERT_RESOLVED, service="payments"), "the resolution")
    h.settle(3)
    h.fail("payments", 3)
    h.settle(3)
    incidents = h.incidents("payments")
    assert not [i for i in incidents if i.state is State.RESOLVED], [
        (i.state, i.close_reason) for i in incidents
    ]
    current: Incident = next(i for i in incidents if i.id == probe_incident.id)
    assert any(
        "resolved at the source" in n and "still showing: payments failed" in n
        for n in current.notes
    ), current.notes
    assert h.warden.store.quarantined() == []


def test_namespace_and_unmapped_alerts_page_once_each(alertmanager: int, harness: Harness) -> None:
    h = harness
    namespace = alert(h, {"alertname": "QuotaAlmostFull", "namespace": "shop", "severity": "page"})
    unmapped = alert(h, {"alertname": "NodeDown", "cluster": "eu-1", "severity": "critical"})
    post_alerts(alertmanager.port, [namespace, unmapped])
    wait_for(lambda: len(h.events(ev.ALERT_FIRING)) == 2, "both alerts")
    h.settle(2)
    # Alertmanager re-sends the group every repeat_interval: no second page.
    sent = sum(alertmanager.app.statistics().values())
    wait_for(lambda: sum(alertmanager.app.statistics().values()) >= sent + 2, "two re-sends")
    h.settle(2)
    by_kind = {i.kind: i for i in h.incidents() if i.kind.startswith("alert")}
    orders = by_kind["alert"]
    assert orders.service == "orders"  # the only service of domain shop
    assert orders.state is State.ESCALATED
    lost = by_kind["alert_unmapped"]
    assert lost.state is State.ESCALATED
    assert lost.service.startswith("unmapped/NodeDown/")
    pages = [e for e in h.events(ev.INCIDENT_ESCALATED) if e.stream == f"incident-{lost.id}"]
    assert len(pages) == 1
    reason = str(pages[0].data["reason"])
    assert 'cluster="eu-1"' in reason
    assert "next step: map this alert to a service" in reason
    assert len(h.events(ev.INCIDENT_ESCALATED)) == 2
    assert h.warden.store.quarantined() == []
