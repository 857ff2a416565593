"""Prometheus Alertmanager webhook (version 4) into one event per alert. Data plane (pure).

Each alert becomes ``warden.alert.firing`` or ``warden.alert.resolved`` about the service
its labels name (:class:`~warden.ingest.alert_routing.AlertRouting`: ``service``,
``service_name``, ``app``, ``job``, ``instance``, namespace rules), one event per service;
an alert no rule maps is kept under an ``unmapped/`` name and still pages. The event id is
derived from groupKey + fingerprint + startsAt + status, so Alertmanager's re-sends (every
``repeat_interval``, and after failed deliveries) append nothing new, across restarts too.
:func:`resolution_for` tells the runtime which incident a resolved alert closes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ValidationError
from warden.domain.events import SPEC_VERSION, format_time, parse_time
from warden.domain.ids import derived_id
from warden.ingest.alert_routing import AlertRouting, unmapped_service
from warden.ingest.cloudevents import load_json
from warden.ingest.pipeline import Admit, Job, Refuse

if TYPE_CHECKING:
    from datetime import datetime

    from warden.domain.events import Event
    from warden.ingest.cloudevents import TraceContext

__all__ = [
    "ALERT_FIRING",
    "ALERT_RESOLVED",
    "SUBJECT_LABELS",
    "AlertResolution",
    "alert_event_id",
    "parse_webhook",
    "resolution_for",
]

ALERT_FIRING = "warden.alert.firing"
ALERT_RESOLVED = "warden.alert.resolved"
SUBJECT_LABELS = AlertRouting().service_labels
MAX_ALERTS = 1000
_TYPES = {"firing": ALERT_FIRING, "resolved": ALERT_RESOLVED}
_ZERO_TIME = "0001-01-01T00:00:00Z"


def alert_event_id(
    group_key: str, fingerprint: str, starts_at: str, status: str, *service: str
) -> str:
    """The id of the event for one alert notification; re-sends get the same id.

    Args:
        group_key: The notification's ``groupKey``.
        fingerprint: The alert's ``fingerprint``.
        starts_at: The alert's ``startsAt``, normalised with ``format_time``.
        status: ``firing`` or ``resolved``.
        service: The service, when the alert maps to several (one event each).
    """
    return derived_id("alertmanager", group_key, fingerprint, starts_at, status, *service)


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError("expected an object of string values", field=where)
    return dict(value)


def _string(payload: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = payload.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise ValidationError(f"{key!r} must be a non-empty string", field=where)
    return value


def _time(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValidationError("expected an RFC 3339 timestamp", field=where)
    try:
        return format_time(parse_time(value))
    except (ValueError, OverflowError) as exc:
        raise ValidationError(str(exc), field=where, fix="use RFC 3339 with an offset") from None


@dataclass(frozen=True, slots=True)
class _Notification:
    group_key: str
    receiver: str
    external_url: str
    group_labels: dict[str, str]
    truncated: int


def _notification(payload: Any) -> tuple[_Notification, list[Any]]:
    if not isinstance(payload, dict):
        raise ValidationError("the webhook body must be a JSON object", field="(root)")
    version = payload.get("version")
    if version != "4":
        raise ValidationError(
            f"unsupported webhook version {version!r:.50}",
            field="version",
            fix="Warden reads the Alertmanager webhook version 4 (Alertmanager 0.x)",
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ValidationError("'alerts' must be a list", field="alerts")
    if len(alerts) > MAX_ALERTS:
        raise ValidationError(
            f"{len(alerts)} alerts in one notification, the limit is {MAX_ALERTS}",
            field="alerts",
            fix="set max_alerts in the webhook_config",
        )
    truncated = payload.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise ValidationError("must be a non-negative integer", field="truncatedAlerts")
    return (
        _Notification(
            group_key=_string(payload, "groupKey", "groupKey"),
            receiver=_string(payload, "receiver", "receiver", required=False),
            external_url=_string(payload, "externalURL", "externalURL", required=False),
            group_labels=_labels(payload.get("groupLabels"), "groupLabels"),
            truncated=truncated,
        ),
        alerts,
    )


def _alert_events(
    alert: Any,
    index: int,
    note: _Notification,
    received_at: datetime,
    context: TraceContext,
    routing: AlertRouting,
) -> list[dict[str, Any]]:
    where = f"alerts/{index}"
    if not isinstance(alert, dict):
        raise ValidationError("an alert must be a JSON object", field=where)
    status = alert.get("status")
    if not isinstance(status, str) or status not in _TYPES:
        raise ValidationError(f"status {status!r:.50} is neither firing nor resolved", field=where)
    labels = _labels(alert.get("labels"), f"{where}/labels")
    annotations = _labels(alert.get("annotations"), f"{where}/annotations")
    fingerprint = _string(alert, "fingerprint", f"{where}/fingerprint")
    starts_at = _time(alert.get("startsAt"), f"{where}/startsAt")
    ends_raw = alert.get("endsAt")
    ends_at = None
    if isinstance(ends_raw, str) and ends_raw and not ends_raw.startswith("0001-01-01"):
        ends_at = _time(ends_raw, f"{where}/endsAt")
    route = routing.route(labels)
    alertname = labels.get("alertname", "")
    services = route.services or (unmapped_service(alertname, fingerprint),)
    moment = ends_at or format_time(received_at) if status == "resolved" else starts_at
    events = []
    for service in services:
        data: dict[str, Any] = {
            "alertname": alertname,
            "status": status,
            "fingerprint": fingerprint,
            "service": service,
            "labels": labels,
            "annotations": annotations,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "generator_url": alert.get("generatorURL", ""),
            "group_key": note.group_key,
            "group_labels": note.group_labels,
            "receiver": note.receiver,
            "external_url": note.external_url,
            "truncated_alerts": note.truncated,
            "mapped_by": route.mapped_by,
        }
        if route.unmapped:
            data["unmapped"] = True
        if len(services) > 1:
            data["services"] = list(services)
        # One service keeps the plain id; a fan-out names the service in each id.
        extra = (service,) if len(services) > 1 else ()
        event_id = alert_event_id(note.group_key, fingerprint, starts_at, status, *extra)
        if status == "resolved":
            data["firing_event_id"] = alert_event_id(
                note.group_key, fingerprint, starts_at, "firing", *extra
            )
        raw: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": event_id,
            "source": note.external_url or "warden://alertmanager",
            "type": _TYPES[status],
            "time": moment,
            "subject": service,
            "datacontenttype": "application/json",
            "schemaversion": 1,
            "data": data,
        }
        # Firing and resolved notifications of one alert share a correlation id.
        events.append(context.apply(raw, derived_id("alert", fingerprint, starts_at)))
    return events


def _single(payload: dict[str, Any], alert: Any) -> str:
    """A one-alert notification: what quarantine keeps so a replay can parse it again."""
    kept = {k: v for k, v in payload.items() if k != "alerts"}
    kept["alerts"] = [alert]
    return json.dumps(kept, sort_keys=True, default=str)


def parse_webhook(
    body: bytes | str,
    *,
    received_at: datetime,
    context: TraceContext,
    source: str = "webhook:alertmanager",
    routing: AlertRouting | None = None,
) -> list[Job]:
    """Jobs for one Alertmanager webhook notification.

    A notification that cannot be read at all is one :class:`Refuse` of the whole body;
    otherwise every alert is an :class:`Admit` of its event, or a :class:`Refuse` of a
    one-alert notification (which ``warden quarantine replay`` can parse again).

    Args:
        body: The request body.
        received_at: When it arrived (the time of a resolved alert without ``endsAt``).
        context: Trace context from the request headers.
        source: The name kept with quarantined input.
        routing: The rules from labels to services (default: the service labels only).

    Returns:
        The jobs, in the order of the alerts.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    payload, reason = load_json(body)
    if reason:
        return [Refuse(text, source, reason)]
    try:
        note, alerts = _notification(payload)
    except ValidationError as exc:
        return [Refuse(text, source, str(exc))]
    routes = routing or AlertRouting()
    jobs: list[Job] = []
    for index, alert in enumerate(alerts):
        try:
            events = _alert_events(alert, index, note, received_at, context, routes)
        except ValidationError as exc:
            jobs.append(Refuse(_single(payload, alert), source, str(exc)))
            continue
        jobs.extend(Admit(event, source) for event in events)
    return jobs


@dataclass(frozen=True, slots=True)
class AlertResolution:
    """What a resolved alert tells the runtime.

    Attributes:
        service: The service (the event's subject) whose incident it concerns.
        fingerprint: Alertmanager's fingerprint of the alert (its label set).
        alertname: The alert's name.
        firing_event_id: The id of the matching ``warden.alert.firing`` event (same
            group, fingerprint and start), e.g. to find the incident it opened.
        started_at: When the alert started firing.
        resolved_at: When it stopped.
        correlation_id: Shared by the firing and the resolved event.
    """

    service: str
    fingerprint: str
    alertname: str
    firing_event_id: str
    started_at: str
    resolved_at: str
    correlation_id: str


def resolution_for(event: Event) -> AlertResolution | None:
    """The resolution a ``warden.alert.resolved`` event announces; None for other events.

    Pure: reads only the event. The runtime, when it folds an event for which this
    returns a resolution, should (1) find the non-terminal incident of
    ``resolution.service`` (prefer one whose evidence holds ``firing_event_id``);
    (2) if no action was taken yet (open, planned, awaiting approval) close it as
    resolved with reason "alert resolved at the source"; (3) if it is executing or
    verifying, record the resolution as evidence and let verification decide; (4) do
    nothing when no incident matches.
    """
    if event.type != ALERT_RESOLVED:
        return None
    data = event.data
    fields = ("service", "fingerprint", "starts_at", "group_key")
    if not all(isinstance(data.get(k), str) and data.get(k) for k in fields):
        return None
    alertname = data.get("alertname")
    return AlertResolution(
        service=data["service"],
        fingerprint=data["fingerprint"],
        alertname=alertname if isinstance(alertname, str) else "",
        firing_event_id=str(data.get("firing_event_id") or "")
        or alert_event_id(data["group_key"], data["fingerprint"], data["starts_at"], "firing"),
        started_at=data["starts_at"],
        resolved_at=data.get("ends_at") or event.time,
        correlation_id=event.correlation_id,
    )
