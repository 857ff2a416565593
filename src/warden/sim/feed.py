"""Signals of a scenario as the events connectors would send. Simulation (edge).

Alerts become Alertmanager webhook notifications (raw labels) parsed by the real
Alertmanager connector; metrics, deploys, state changes, failed batches and log lines
become CloudEvents; all go through the real ingest gate.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.changes import CHANGE_RECORDED, KINDS
from warden.domain.ids import derived_id, service_stream
from warden.ingest.alertmanager import parse_webhook
from warden.ingest.cloudevents import TraceContext

if TYPE_CHECKING:
    from datetime import datetime

    from warden.sim.driver import SimRuntime
    from warden.sim.format import AlertSignal, Signal

SOURCE = "sim://connector"
_LOG_TYPE = "warden.webhook.received"


def _cloudevent(type_: str, data: dict[str, Any], when: datetime, key: str) -> dict[str, Any]:
    stamp = ev.format_time(when)
    return {
        "specversion": ev.SPEC_VERSION,
        "id": derived_id("sim", type_, key, stamp),
        "source": SOURCE,
        "type": type_,
        "time": stamp,
        "subject": str(data.get("service", "")),
        "datacontenttype": "application/json",
        "schemaversion": 1,
        "data": data,
    }


def send(runtime: SimRuntime, type_: str, data: dict[str, Any], when: datetime, key: str) -> None:
    """One event about a service through the ingest gate."""
    service = str(data.get("service", ""))
    runtime.admit(_cloudevent(type_, data, when, key), service_stream(service))


def fingerprint(alert: AlertSignal) -> str:
    """The alert's fingerprint: given, or derived from its labels as Alertmanager does."""
    if alert.fingerprint:
        return alert.fingerprint
    return derived_id("alert", *sorted(f"{k}={v}" for k, v in alert.labels.items()))[:16]


def send_alert(
    runtime: SimRuntime, alert: AlertSignal, status: str, starts_at: datetime, when: datetime
) -> None:
    """One Alertmanager webhook notification with one alert, through the real connector."""
    labels = dict(alert.labels)
    group = {"alertname": labels.get("alertname", "")}
    body = {
        "version": "4",
        "groupKey": "{}:" + json.dumps(group, sort_keys=True),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": alert.receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": dict(alert.annotations),
        "externalURL": "http://alertmanager.sim.invalid",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": dict(alert.annotations),
                "startsAt": ev.format_time(starts_at),
                "endsAt": ev.format_time(when) if status == "resolved" else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.sim.invalid/graph",
                "fingerprint": fingerprint(alert),
            }
        ],
    }
    jobs = parse_webhook(
        json.dumps(body),
        received_at=when,
        context=TraceContext.from_headers({}),
        routing=runtime.warden.config.fleet_alert_routing,
    )
    runtime.pipeline.process(jobs)


def send_signal(runtime: SimRuntime, signal: Signal, when: datetime, active: bool) -> None:
    """A non-alert signal at one time; ``active`` says whether its fault is in effect."""
    if signal.metric is not None:
        metric = signal.metric
        value = metric.value if active else metric.recovered
        if value is None:
            return
        data: dict[str, Any] = {"service": metric.service, "metric": metric.name, "value": value}
        if metric.unit:
            data["unit"] = metric.unit
        send(runtime, ev.METRIC_SAMPLED, data, when, f"{metric.service}:{metric.name}")
        return
    if not active:
        return
    if signal.change is not None:
        change = signal.change
        data = {"service": change.service, "version": change.version}
        if change.previous_version:
            data["previous_version"] = change.previous_version
        if change.by:
            data["by"] = change.by
        send(runtime, ev.DEPLOY_COMPLETED, data, when, f"{change.service}:{change.version}")
    elif signal.batch is not None:
        batch = signal.batch
        data = {
            "service": batch.service,
            "pipeline": batch.pipeline,
            "batch": batch.batch,
            "reason": batch.reason,
        }
        if batch.last_good_checkpoint:
            data["last_good_checkpoint"] = batch.last_good_checkpoint
        send(runtime, ev.BATCH_FAILED, data, when, f"{batch.pipeline}:{batch.batch}")
    elif signal.log is not None:
        log = signal.log
        send(
            runtime,
            _LOG_TYPE,
            {"service": log.service, "log": log.line},
            when,
            f"{log.service}:{log.line}",
        )


def send_change(
    runtime: SimRuntime,
    owner: str,
    resource: str,
    kind: str,
    field: str,
    old: Any,
    new: Any,
    by: str,
    when: datetime,
) -> None:
    """A change to an object, as its system reports it: a deploy, or a recorded change."""
    if kind == "deployment" and field in ("image", "version", "revision"):
        data: dict[str, Any] = {"service": owner, "version": str(new), "by": by}
        if old is not None:
            data["previous_version"] = str(old)
        send(runtime, ev.DEPLOY_COMPLETED, data, when, f"{resource}:{field}:{new}")
        return
    value = new if isinstance(new, str | int | float | bool) else str(new)
    data = {
        "service": owner,
        "resource": resource,
        "kind": kind if kind in KINDS else "other",
        "field": field,
        "value": value,
    }
    if old is not None:
        data["previous"] = old if isinstance(old, str | int | float | bool) else str(old)
    if by:
        data["by"] = by
    send(runtime, CHANGE_RECORDED, data, when, f"{resource}:{field}:{new}")
