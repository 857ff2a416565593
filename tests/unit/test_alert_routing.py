"""Alert routing: which services an Alertmanager alert is about, on captured payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from warden.config import parse_config
from warden.domain.errors import ConfigError
from warden.ingest.alert_routing import AlertRouting, AlertRule
from warden.ingest.alertmanager import ALERT_RESOLVED, parse_webhook, resolution_for
from warden.ingest.cloudevents import TraceContext
from warden.ingest.gate import IngestGate
from warden.ingest.pipeline import Admit, Pipeline, Verdict
from warden.ingest.registry import SchemaRegistry
from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock

FIXTURES = Path(__file__).parents[1] / "fixtures" / "alertmanager"
FIRING = json.loads((FIXTURES / "firing.json").read_text())
RESOLVED = json.loads((FIXTURES / "resolved.json").read_text())
AFTER_CAPTURE = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
FLEET = {"cart": "shop", "checkout": "shop", "payments": "payments", "orders": "shop"}
ROUTING = AlertRouting(
    namespaces=(("checkout-ns", ("checkout",)),),
    rules=(AlertRule((("alertname", "QuotaExceeded"), ("team", "shop")), ("cart",)),),
).with_fleet(FLEET)


def with_labels(body: dict[str, Any], labels: dict[str, str]) -> str:
    """A captured notification whose first alert carries ``labels``.

    The resolved capture's first alert is resolved, the firing capture's is firing.
    """
    payload = json.loads(json.dumps(body))
    status = "resolved" if body is RESOLVED else "firing"
    first = next(a for a in payload["alerts"] if a["status"] == status)
    payload["alerts"] = [{**first, "labels": labels}]
    return json.dumps(payload)


def admitted(body: str, routing: AlertRouting = ROUTING) -> list[dict[str, Any]]:
    jobs = parse_webhook(body, received_at=AFTER_CAPTURE, context=TraceContext(), routing=routing)
    assert all(isinstance(j, Admit) for j in jobs), jobs
    return [j.payload for j in jobs if isinstance(j, Admit)]


@pytest.mark.parametrize(
    ("labels", "services", "mapped_by"),
    [
        ({"service_name": "cart"}, ["cart"], "label service_name=cart"),
        ({"app": "checkout", "job": "kubernetes-pods"}, ["checkout"], "label app=checkout"),
        # A job that names no service of the fleet is passed over for the next label.
        ({"job": "node-exporter", "instance": "orders:9100"}, ["orders"], "label instance"),
        ({"namespace": "shop"}, ["cart", "checkout", "orders"], "namespace shop"),
        ({"namespace": "checkout-ns"}, ["checkout"], "namespace checkout-ns"),
        ({"team": "shop", "service": "payments"}, ["payments"], "label service=payments"),
        ({"team": "shop", "alertname": "QuotaExceeded"}, ["cart"], "rule alertname="),
    ],
)
def test_labels_map_to_services(
    labels: dict[str, str], services: list[str], mapped_by: str
) -> None:
    found = admitted(with_labels(FIRING, {"alertname": "A", **labels}))
    assert [e["subject"] for e in found] == services
    assert all(e["data"]["mapped_by"].startswith(mapped_by) for e in found), found
    assert all("unmapped" not in e["data"] for e in found)


def test_a_namespace_alert_fans_out_with_one_id_per_service() -> None:
    found = admitted(with_labels(FIRING, {"alertname": "A", "namespace": "shop"}))
    assert len({e["id"] for e in found}) == 3
    assert all(e["data"]["services"] == ["cart", "checkout", "orders"] for e in found)


def test_an_alert_nothing_maps_is_kept_unmapped_with_its_labels() -> None:
    labels = {"alertname": "DiskFull", "cluster": "eu-1", "job": "node-exporter"}
    (event,) = admitted(with_labels(FIRING, labels))
    fingerprint = FIRING["alerts"][0]["fingerprint"]
    assert event["subject"] == f"unmapped/DiskFull/{fingerprint}"
    assert event["data"]["unmapped"] is True
    assert event["data"]["labels"] == labels


def test_unmapped_and_fanned_out_alerts_pass_the_schema_gate(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    pipeline = Pipeline(IngestGate(store, SchemaRegistry(), ManualClock(AFTER_CAPTURE)))
    bodies = [
        with_labels(FIRING, {"alertname": "DiskFull"}),
        with_labels(FIRING, {"alertname": "A", "namespace": "shop"}),
        with_labels(RESOLVED, {"alertname": "A", "namespace": "shop"}),
    ]
    for body in bodies:
        jobs = parse_webhook(
            body, received_at=AFTER_CAPTURE, context=TraceContext(), routing=ROUTING
        )
        outcomes = pipeline.process(jobs)
        assert all(o.verdict is Verdict.ACCEPTED for o in outcomes), outcomes
    assert store.quarantined() == []
    store.close()


def test_a_resolution_names_the_firing_event_of_its_own_service() -> None:
    firing = admitted(with_labels(FIRING, {"alertname": "A", "namespace": "shop"}))
    resolved_body = json.loads(with_labels(RESOLVED, {"alertname": "A", "namespace": "shop"}))
    resolved_body["alerts"][0]["startsAt"] = FIRING["alerts"][0]["startsAt"]
    resolved_body["alerts"][0]["fingerprint"] = FIRING["alerts"][0]["fingerprint"]
    resolved_body["groupKey"] = FIRING["groupKey"]
    resolved = admitted(json.dumps(resolved_body))
    by_service = {e["subject"]: e["id"] for e in firing}
    for event in resolved:
        assert event["type"] == ALERT_RESOLVED
        assert event["data"]["firing_event_id"] == by_service[event["subject"]]


def test_without_a_fleet_any_service_label_value_is_the_service() -> None:
    (event,) = admitted(with_labels(FIRING, {"alertname": "A", "job": "x"}), AlertRouting())
    assert event["subject"] == "x"


def test_the_alerts_section_builds_the_routing() -> None:
    config = parse_config(
        {
            "services": [
                {"name": "cart", "health": "http://127.0.0.1:1/h", "domain": "shop"},
                {"name": "web", "health": "http://127.0.0.1:2/h"},
            ],
            "alerts": {
                "service_labels": ["app", "service"],
                "namespaces": {"storefront": ["web", "cart"]},
                "rules": [{"match": {"alertname": "Q"}, "services": ["web"]}],
            },
            "escalation": {"repage_after_s": 600, "minor_alert_wait_s": 0},
        },
        Path("."),
    )
    routing = config.fleet_alert_routing
    assert routing.service_labels == ("app", "service")
    assert routing.route({"namespace": "storefront"}).services == ("web", "cart")
    assert routing.route({"namespace": "shop"}).services == ("cart",)  # the domain's
    assert routing.route({"alertname": "Q", "app": "cart"}).services == ("web",)
    assert routing.route({"job": "cart"}).unmapped  # job is not among the labels
    assert (config.repage_after_s, config.minor_alert_wait_s) == (600, 0)


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        (
            {"namespaces": {"shop": ["carts"]}},
            "alerts.namespaces.shop[0]: unknown service 'carts' (did you mean 'cart'?)",
        ),
        (
            {"rules": [{"match": {"app": "x"}, "services": ["kart"]}]},
            "alerts.rules[0].services[0]: unknown service 'kart' (did you mean 'cart'?)",
        ),
        ({"service_labels": ["app", "app"]}, "alerts.service_labels: app listed twice"),
        ({"service_labels": ["bad-label"]}, "a Prometheus label name is required"),
        ({"service_labels": []}, "alerts.service_labels"),
        ({"rules": [{"match": {}, "services": ["cart"]}]}, "alerts.rules[0].match"),
        ({"labels": ["app"]}, "alerts.labels"),
    ],
)
def test_mistakes_in_the_alerts_section_are_named_precisely(
    alerts: dict[str, Any], message: str
) -> None:
    raw = {"services": [{"name": "cart", "health": "http://127.0.0.1:1/h"}], "alerts": alerts}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, Path("."))
    assert message in str(caught.value), str(caught.value)


def test_resolution_for_reads_the_recorded_firing_event() -> None:
    (event,) = admitted(with_labels(RESOLVED, {"alertname": "A", "service_name": "cart"}))
    from warden.domain.events import Event

    stored = Event(
        id=event["id"],
        source=event["source"],
        type=event["type"],
        time=event["time"],
        data=event["data"],
        subject=event["subject"],
    )
    resolution = resolution_for(stored)
    assert resolution is not None
    assert resolution.service == "cart"
    assert resolution.firing_event_id == event["data"]["firing_event_id"]
