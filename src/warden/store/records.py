"""How every store backend spells an event as a row: one JSON record text. Store adapter.

SQLite and PostgreSQL keep the same record text, so a log moves between backends unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from warden.domain.events import Event

# One encoder, built once: json.dumps with keyword arguments builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)

# orjson hands subclasses, datetimes and dataclasses to ``_refuse``, so anything beyond
# plain JSON types takes the json path and is spelled (or refused) exactly as before.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


# Where orjson's text may differ from json's: floats below 1e-4 ("0.00001" for "1e-05",
# "2.5e-7" for "2.5e-07"), NaN and infinities (orjson writes null), and DEL, which json
# escapes; non-ASCII text is caught by ``isascii`` (json escapes it as \uXXXX). The markers
# are coarse, so a string that merely contains one takes the slower way, with the same result.
def _may_differ(out: bytes) -> bool:
    if not out.isascii() or b"e-" in out or b"null" in out or b"\x7f" in out:
        return True
    return b"0.0000" in out and (
        out.startswith(b"0.0000")
        or b":0.0000" in out
        or b",0.0000" in out
        or b"[0.0000" in out
        or b"-0.0000" in out
    )


def _refuse(value: Any) -> Any:
    raise TypeError(f"not plain JSON: {type(value).__name__}")


def encode_json(value: Any) -> str:
    """``value`` as compact JSON with sorted keys, the same text as ``json`` writes.

    orjson writes it when the text is sure to match; anything else goes through the
    standard library encoder, which also raises for what is not JSON.
    """
    try:
        out = orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError too: big ints, non-str keys, subclasses
        return _ENCODER.encode(value)
    if _may_differ(out):
        return _ENCODER.encode(value)
    return out.decode("ascii")


def encode_record(event: Event) -> str:
    """The JSON text a store keeps for ``event`` (its stream and position live in columns)."""
    raw = event.to_cloudevent()
    if event.extensions:
        for key in event.extensions:
            raw.pop(key, None)
        raw["extensions"] = event.extensions
    return encode_json(raw)


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
    # Positional, in field order: measurably cheaper per event than keywords on ingest.
    return Event(
        event.id,
        event.source,
        event.type,
        event.time,
        event.data,
        event.subject,
        event.schema_version,
        event.traceparent,
        event.correlation_id,
        stream,
        position,
        event.extensions,
    )
