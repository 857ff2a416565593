"""How every store backend spells an event as a row: one JSON record text. Store adapter.

SQLite and PostgreSQL keep the same record text, so a log moves between backends unchanged.
"""

from __future__ import annotations

import json

from warden.domain.events import Event

# One encoder, built once: json.dumps with keyword arguments builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def encode_record(event: Event) -> str:
    """The JSON text a store keeps for ``event`` (its stream and position live in columns)."""
    raw = event.to_cloudevent()
    for key in event.extensions:
        raw.pop(key, None)
    if event.extensions:
        raw["extensions"] = event.extensions
    return _ENCODER.encode(raw)


def decode_record(position: int, stream: str, record: str) -> Event:
    """The event a stored row holds, with its stream and global position."""
    raw = json.loads(record)
    extensions = raw.get("extensions") or {}
    return Event(
        id=raw["id"],
        source=raw["source"],
        type=raw["type"],
        time=raw["time"],
        data=raw["data"],
        subject=raw.get("subject", ""),
        schema_version=int(raw.get("schemaversion", 1)),
        traceparent=raw.get("traceparent", ""),
        correlation_id=raw.get("correlationid", ""),
        stream=stream,
        position=position,
        extensions=extensions,
    )


def placed_event(event: Event, stream: str, position: int) -> Event:
    """``event`` as the store placed it: in ``stream`` at global ``position``."""
    return Event(
        id=event.id,
        source=event.source,
        type=event.type,
        time=event.time,
        data=event.data,
        subject=event.subject,
        schema_version=event.schema_version,
        traceparent=event.traceparent,
        correlation_id=event.correlation_id,
        stream=stream,
        position=position,
        extensions=event.extensions,
    )
