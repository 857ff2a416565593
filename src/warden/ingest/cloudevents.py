"""CloudEvents 1.0 over HTTP (structured, binary, batch) and generic JSON, as jobs. Data plane.

Pure: each parser turns a request's headers and body into :class:`Admit` / :class:`Refuse`
jobs; the gate decides the rest. Header names are expected in lower case. Trace context
rides along: the W3C ``traceparent`` header and ``X-Correlation-Id`` fill in what an event
does not carry itself (an invalid ``traceparent`` header is ignored, as W3C Trace Context
asks; an invalid attribute inside an event is the event's own error and is quarantined).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from warden.domain.events import SPEC_VERSION, format_time
from warden.ingest.pipeline import Admit, Job, Refuse

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

__all__ = [
    "BATCH_CONTENT_TYPE",
    "STRUCTURED_CONTENT_TYPE",
    "GenericRoute",
    "TraceContext",
    "load_json",
    "parse_cloudevents",
    "wrap_json",
]

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
_CORRELATION = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The trace parent and correlation id a request carried in its headers."""

    traceparent: str = ""
    correlation_id: str = ""

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> TraceContext:
        """Read ``traceparent`` and ``x-correlation-id``; unusable values are ignored."""
        parent = headers.get("traceparent", "").strip()
        correlation = headers.get("x-correlation-id", "").strip()
        return cls(
            traceparent=parent if TRACEPARENT.match(parent) else "",
            correlation_id=correlation if _CORRELATION.match(correlation) else "",
        )

    def apply(self, raw: dict[str, Any], default_correlation: str = "") -> dict[str, Any]:
        """``raw`` with missing ``traceparent`` / ``correlationid`` filled in (a copy)."""
        out = dict(raw)
        if self.traceparent and "traceparent" not in out:
            out["traceparent"] = self.traceparent
        if "correlationid" not in out:
            correlation = self.correlation_id or default_correlation
            if correlation:
                out["correlationid"] = correlation
        return out


@dataclass(frozen=True, slots=True)
class GenericRoute:
    """How a generic JSON webhook route wraps bodies into events.

    Attributes:
        type: The event type given to every body, e.g. ``acme.deploy.finished``; it
            needs a registered schema.
        version: The schema version of that type.
        subject_key: A top-level key of the body whose string value is the subject
            (the service); empty for none.
    """

    type: str = "warden.webhook.received"
    version: int = 1
    subject_key: str = ""


def load_json(body: bytes | str) -> tuple[Any, str]:
    """Parse JSON; returns ``(value, "")`` or ``(None, reason)``, never raises."""
    try:
        return json.loads(body), ""
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON: {exc!s:.200}"


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media in ("", "application/json", "text/json") or media.endswith("+json")


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def parse_cloudevents(
    headers: Mapping[str, str], body: bytes, *, source: str = "webhook:cloudevents"
) -> list[Job]:
    """Jobs for a CloudEvents HTTP request in any content mode.

    ``application/cloudevents+json`` is structured mode, ``application/cloudevents-batch+json``
    a batch; ``ce-specversion`` headers mean binary mode; otherwise a JSON object body is
    taken as a structured event (many senders label it ``application/json``).

    Args:
        headers: Request headers, names in lower case.
        body: The request body.
        source: The name kept with quarantined input.

    Returns:
        One job per event in the request (a refusal when the request cannot be read).
    """
    context = TraceContext.from_headers(headers)
    media = _media_type(headers)
    if media == BATCH_CONTENT_TYPE:
        return _batch(body, context, source)
    if media != STRUCTURED_CONTENT_TYPE and "ce-specversion" in headers:
        return [_binary(headers, body, context, source)]
    return [_structured(body, context, source)]


def _structured(body: bytes, context: TraceContext, source: str) -> Job:
    raw, _ = load_json(body)
    if isinstance(raw, dict):
        filled = context.apply(raw, _default_correlation(raw))
        if filled != raw:
            return Admit(filled, source)
    # Keep the exact bytes: the gate refuses them with its own reason if they are bad.
    return Admit(_text(body), source)


def _default_correlation(raw: dict[str, Any]) -> str:
    event_id = raw.get("id")
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 200 else ""


def _batch(body: bytes, context: TraceContext, source: str) -> list[Job]:
    items, reason = load_json(body)
    if reason or not isinstance(items, list):
        why = reason or "a CloudEvents batch must be a JSON array of event objects"
        return [Refuse(_text(body), source, why)]
    jobs: list[Job] = []
    for item in items:
        if isinstance(item, dict):
            jobs.append(Admit(context.apply(item, _default_correlation(item)), source))
        else:
            jobs.append(Admit(json.dumps(item), source))
    return jobs


def _binary(headers: Mapping[str, str], body: bytes, context: TraceContext, source: str) -> Job:
    raw: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce-") and len(name) > 3:
            raw[name[3:]] = unquote(value, errors="replace")
    version = raw.get("schemaversion")
    if isinstance(version, str) and version.isascii() and version.isdigit():
        raw["schemaversion"] = int(version)
    media = _media_type(headers)
    if not _is_json_media(media):
        raw["data"] = _text(body)
        return Refuse(
            json.dumps(raw, sort_keys=True),
            source,
            f"data: binary-mode data must be JSON (Content-Type application/json), not {media!r}",
            status=415,
        )
    data, reason = load_json(body)
    if reason:
        raw["data"] = _text(body)
        return Refuse(json.dumps(raw, sort_keys=True), source, f"data: {reason}")
    raw["data"] = data
    raw["datacontenttype"] = "application/json"
    return Admit(context.apply(raw, _default_correlation(raw)), source)


def wrap_json(
    body: bytes,
    route: GenericRoute,
    *,
    event_id: str,
    received_at: datetime,
    context: TraceContext,
    source: str,
    sender: str = "warden://webhook",
) -> Job:
    """Wrap a plain JSON object into a CloudEvents envelope of the route's type.

    Args:
        body: The request body; it must be a JSON object.
        route: The type, version and subject key to give the event.
        event_id: The new event's id (the caller makes it unique, or derives it from an
            idempotency key so re-sends de-duplicate).
        received_at: The event time.
        context: Trace context from the request headers.
        source: The name kept with quarantined input.
        sender: The CloudEvents ``source`` attribute.

    Returns:
        An :class:`Admit` of the wrapped event, or a :class:`Refuse` with the reason.
    """
    data, reason = load_json(body)
    if reason or not isinstance(data, dict):
        return Refuse(_text(body), source, reason or "the body must be a JSON object")
    raw: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": sender,
        "type": route.type,
        "time": format_time(received_at),
        "datacontenttype": "application/json",
        "schemaversion": route.version,
        "data": data,
    }
    subject = data.get(route.subject_key) if route.subject_key else None
    if isinstance(subject, str) and subject:
        raw["subject"] = subject
    return Admit(context.apply(raw, event_id), source)
