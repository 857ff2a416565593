"""How every store backend spells an event as a row: one JSON record text. Store adapter.

SQLite and PostgreSQL keep the same record text, so a log moves between backends unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from itertools import starmap
from typing import TYPE_CHECKING, Any

import orjson

from warden.domain.events import Event

if TYPE_CHECKING:
    from collections.abc import Iterable

# One encoder, built once: json.dumps with keyword arguments builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)

# orjson hands subclasses, datetimes and dataclasses to ``_refuse``, so anything beyond
# plain JSON types takes the json path and is spelled (or refused) by the standard library.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _refuse(value: Any) -> Any:
    raise TypeError(f"not plain JSON: {type(value).__name__}")


def encode_json(value: Any) -> str:
    """``value`` as compact JSON text with sorted keys that ``json.loads`` reads back equal.

    The text is not a canonical spelling (the audit log has its own). orjson writes it,
    with raw UTF-8 where ``json`` writes escapes, and ``0.00001`` where ``json`` writes
    ``1e-05``: both read back as the same value. orjson writes NaN and the infinities as
    ``null``, so any text with a ``null`` in it is written again by the standard library,
    which keeps them (``NaN``, ``Infinity``). That encoder also takes what orjson refuses
    (ints beyond 64 bits, keys that are not strings, subclasses) and raises for what
    neither writes.

    Raises:
        TypeError: ``value`` holds something that is not JSON (a set, an object).
    """
    try:
        out = orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError too: big ints, non-str keys, subclasses
        return _ENCODER.encode(value)
    # One scan for a rare word: a None or a "null" inside a string also takes the json
    # path, which reads back the same. find, not ``in`` (see decode_json).
    if out.find(b"null") >= 0:
        return _ENCODER.encode(value)
    return out.decode()


# A run of 19 digits may be part of an integer beyond 64 bits, which orjson reads as a
# float without a word: text with one is read by ``json``, which keeps every integer.
# The run is found in C: every digit byte becomes "0", every other byte a space, and the
# run of 19 zeros is a substring search (several times faster than a regex).
_DIGIT_BYTES = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def decode_json(text: str) -> Any:
    """The value JSON ``text`` holds, exactly as ``json.loads`` reads it.

    orjson reads it (several times faster) unless the text has what orjson reads
    otherwise or refuses: integers of 19 digits or more (orjson turns those beyond 64 bits
    into floats), ``NaN`` and the infinities, escaped lone surrogates, numbers out of
    range. Those, and what is not JSON at all, take ``json``, whose errors are raised.

    Raises:
        ValueError: ``text`` is not JSON (``json.JSONDecodeError``).
    """
    # find, not ``in``: ``bytes.__contains__`` first tries its argument as one byte's
    # value and raises (and formats) a TypeError inside before it searches for bytes.
    if text.encode("utf-8", "surrogatepass").translate(_DIGIT_BYTES).find(_LONG_RUN) < 0:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def encode_record(event: Event) -> str:
    """The JSON text a store keeps for ``event`` (its stream and position live in columns)."""
    raw = event.to_cloudevent()
    if event.extensions:
        for key in event.extensions:
            raw.pop(key, None)
        raw["extensions"] = event.extensions
    return encode_json(raw)


RECORD_UNREADABLE = "warden.record.unreadable"
"""The type of the event that stands for a stored row that is not a readable event."""


def unreadable_event(position: int, stream: str, record: str, reason: str) -> Event:
    """What a damaged row reads as: its position, the reason and a hash of its text.

    Readers (the loop, the audit projector, replay) see it like any event and go on; the
    audit log records that this position held something unreadable.
    """
    digest = hashlib.sha256(record.encode("utf-8", "surrogatepass")).hexdigest()
    return Event(
        id=f"unreadable-{position}",
        source="warden://store",
        type=RECORD_UNREADABLE,
        time="1970-01-01T00:00:00.000000Z",
        data={"reason": reason[:300], "record_sha256": digest},
        stream=stream,
        position=position,
    )


def decode_record(position: int, stream: str, record: str) -> Event:
    """The event a stored row holds, with its stream and global position.

    A row that is not an event record (damaged, or written by something else) reads as
    :func:`unreadable_event` instead of stopping every reader at that position.
    """
    try:
        return _decode(position, stream, record)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reason = f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace").decode()
        return unreadable_event(position, stream, record, reason)


def decode_rows(rows: Iterable[tuple[int, str, str]]) -> list[Event]:
    """The events stored rows of (position, stream, record) hold, in order.

    Each is read as :func:`decode_record` reads it; a store's reads decode many rows, and
    the loop over them runs in C.
    """
    return list(starmap(decode_record, rows))


def _decode(position: int, stream: str, record: str) -> Event:
    raw = decode_json(record)
    # filled_event's work without its call: each field is read, in field order, before it
    # is set (setting a slot never fails), so a bad record raises what it raised there.
    out: Event = _new(Event)
    _set_id(out, raw["id"])
    _set_source(out, raw["source"])
    _set_type(out, raw["type"])
    _set_time(out, raw["time"])
    _set_data(out, raw["data"])
    _set_subject(out, raw.get("subject", ""))
    _set_schema_version(out, int(raw.get("schemaversion", 1)))
    _set_traceparent(out, raw.get("traceparent", ""))
    _set_correlation_id(out, raw.get("correlationid", ""))
    _set_stream(out, stream)
    _set_position(out, position)
    _set_extensions(out, raw.get("extensions") or {})
    return out


# The slot setters of Event, in field order, bound once: placing, reading or admitting an
# event fills
# a bare instance through them, half the cost of the frozen dataclass __init__ (one
# object.__setattr__ per field; Event has no __post_init__ to skip). A field added to Event
# breaks this unpacking at import; test_store_records fails if a field is missed or moved.
_new = object.__new__
(
    _set_id,
    _set_source,
    _set_type,
    _set_time,
    _set_data,
    _set_subject,
    _set_schema_version,
    _set_traceparent,
    _set_correlation_id,
    _set_stream,
    _set_position,
    _set_extensions,
) = (vars(Event)[f.name].__set__ for f in fields(Event))


def filled_event(
    id_: str,
    source: str,
    type_: str,
    time: str,
    data: dict[str, Any],
    subject: str,
    schema_version: int,
    traceparent: str,
    correlation_id: str,
    stream: str,
    position: int,
    extensions: dict[str, str],
) -> Event:
    """An Event of these fields, in field order, filled through the slot setters."""
    out: Event = _new(Event)
    _set_id(out, id_)
    _set_source(out, source)
    _set_type(out, type_)
    _set_time(out, time)
    _set_data(out, data)
    _set_subject(out, subject)
    _set_schema_version(out, schema_version)
    _set_traceparent(out, traceparent)
    _set_correlation_id(out, correlation_id)
    _set_stream(out, stream)
    _set_position(out, position)
    _set_extensions(out, extensions)
    return out


def placed_event(event: Event, stream: str, position: int) -> Event:
    """``event`` as the store placed it: in ``stream`` at global ``position``."""
    return filled_event(
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
