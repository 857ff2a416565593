"""The record text of the stores: JSON that reads back equal, and events that survive it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden.domain.events import Event
from warden.store.records import (
    decode_json,
    decode_record,
    decode_rows,
    encode_json,
    encode_record,
    placed_event,
    unreadable_event,
)

# Text without lone surrogates (not UTF-8, so not JSON text), with the characters the
# encoders spell differently made likely: DEL, NUL, other controls, line separators,
# non-ASCII in and beyond the BMP, and the words the encoder looks for.
_CHARACTERS = st.characters(exclude_categories=("Cs",)) | st.sampled_from(
    ["\x7f", "\x00", "\x1f", "\n", '"', "\\", "\u2028", "é", "\uffff", "😀"]
)
TEXT = st.text(_CHARACTERS) | st.sampled_from(["null", "NaN", "Infinity", "e-", "0.0000"])

INTEGERS = (
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers(min_value=2**64)  # beyond 64 bits, which orjson refuses
    | st.integers(max_value=-(2**63) - 1)
)

FLOATS = st.floats() | st.sampled_from(
    [1e-05, 2.5e-07, 0.0001, 5e-324, 1e16, 1e22, 1.7976931348623157e308, -0.0, math.nan, math.inf]
)

SCALARS = st.none() | st.booleans() | INTEGERS | FLOATS | TEXT

JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=25,
)

# Extension names as CloudEvents allows them, none of them an attribute Warden sets.
_ATTRIBUTES = {
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "data",
    "schemaversion",
    "subject",
    "traceparent",
    "correlationid",
    "extensions",
}
EXTENSION_NAMES = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
    lambda name: name not in _ATTRIBUTES
)

EVENTS = st.builds(
    Event,
    id=TEXT,
    source=TEXT,
    type=TEXT,
    time=TEXT,
    data=st.dictionaries(TEXT, JSON_VALUES, max_size=5),
    subject=TEXT,
    schema_version=INTEGERS,
    traceparent=TEXT,
    correlation_id=TEXT,
    stream=TEXT,
    position=INTEGERS,
    extensions=st.dictionaries(EXTENSION_NAMES, TEXT, max_size=3),
)

STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values: types match exactly, NaN equals NaN, -0.0 is not 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def objects(text: str) -> list[list[str]]:
    """The keys of every JSON object in ``text``, in the order the text spells them."""
    found: list[list[str]] = []

    def keep(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found.append([key for key, _ in pairs])
        return dict(pairs)

    json.loads(text, object_pairs_hook=keep)
    return found


@given(JSON_VALUES)
def test_json_reads_back_equal(value: Any) -> None:
    assert same(json.loads(encode_json(value)), value)


@given(JSON_VALUES)
def test_json_is_read_as_the_standard_library_reads_it(value: Any) -> None:
    for text in (encode_json(value), json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert same(decode_json(text), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # 2**64: orjson would read a float
        "[-9223372036854775809, 123456789012345678901234567890]",
        '{"a": NaN, "b": -Infinity}',
        '"\\ud800"',
        "1e400",
        '{"n": 9223372036854775807, "m": -9223372036854775808}',
        '["\u00e9\ud83d\ude00", "é😀", 18446744073709551617]',  # after non-ASCII text
        '["\\udc00", 100000000000000000001]',
    ],
)
def test_what_orjson_reads_otherwise_is_read_as_json_reads_it(text: str) -> None:
    assert same(decode_json(text), json.loads(text))


@pytest.mark.parametrize("text", ["", "{", "[1,]", "nul", '{"a": 1} x'])
def test_what_is_not_json_raises_as_json_does(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        decode_json(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")],
)
def test_non_finite_floats_are_kept_as_json_spells_them(value: float, text: str) -> None:
    assert encode_json(value) == text
    assert encode_json({"a": [None, value]}) == f'{{"a":[null,{text}]}}'


@given(JSON_VALUES)
def test_json_is_compact_with_sorted_keys(value: Any) -> None:
    text = encode_json(value)
    assert all(keys == sorted(keys) for keys in objects(text))
    # Outside string literals there is no whitespace: separators are "," and ":".
    assert not re.search(r"\s", STRING_LITERAL.sub('""', text))


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), {"a": [1, {"b": {3}}]}, [b"bytes"], {"when": 1j}],
    ids=["set", "object", "nested set", "bytes", "complex"],
)
def test_what_is_not_json_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        encode_json(value)


@given(EVENTS, TEXT, INTEGERS)
def test_event_round_trips_through_its_record(event: Event, stream: str, position: int) -> None:
    back = decode_record(position, stream, encode_record(event))
    expected = replace(event, stream=stream, position=position)
    for field in fields(Event):
        assert same(getattr(back, field.name), getattr(expected, field.name)), field.name


@given(EVENTS, TEXT, INTEGERS)
def test_placed_event_copies_every_field(event: Event, stream: str, position: int) -> None:
    placed = placed_event(event, stream, position)
    assert type(placed) is Event
    assert placed == replace(event, stream=stream, position=position)


def _read_as_json_reads(position: int, stream: str, record: str) -> Event:
    """What a row must read as: its fields as ``json.loads`` reads them, or unreadable."""
    try:
        raw = json.loads(record)
        return Event(
            raw["id"], raw["source"], raw["type"], raw["time"], raw["data"],
            raw.get("subject", ""), int(raw.get("schemaversion", 1)),
            raw.get("traceparent", ""), raw.get("correlationid", ""), stream, position,
            raw.get("extensions") or {},
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reason = f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace").decode()
        return unreadable_event(position, stream, record, reason)


def _damaged(record: str, damage: tuple[str, Any]) -> str:
    """``record`` with one field dropped or replaced, or cut short."""
    how, what = damage
    if how == "cut":
        return record[: len(record) // 2]
    raw = json.loads(record)
    if how == "drop":
        raw.pop(what, None)
    else:
        raw[what[0]] = what[1]
    return json.dumps(raw)


_DAMAGE = (
    st.tuples(st.just("keep"), st.just(("x", 1)))
    | st.tuples(st.just("cut"), st.none())
    | st.tuples(st.just("drop"), st.sampled_from(["id", "source", "type", "time", "data"]))
    | st.tuples(
        st.just("set"),
        st.tuples(
            st.sampled_from(["schemaversion", "extensions", "subject", "data"]),
            SCALARS | st.lists(SCALARS, max_size=2),
        ),
    )
)


@given(st.lists(st.tuples(EVENTS, _DAMAGE) | TEXT.map(lambda t: (t, None)), max_size=6), TEXT)
def test_rows_read_as_json_reads_them_or_as_unreadable(rows: list[Any], stream: str) -> None:
    texts = [
        _damaged(encode_record(item[0]), item[1]) if item[1] is not None else item[0]
        for item in rows
    ]
    stored = [(position, stream, text) for position, text in enumerate(texts, start=1)]
    read = decode_rows(stored)
    assert [type(e) for e in read] == [Event] * len(stored)
    for event, row in zip(read, stored, strict=True):
        for expected in (_read_as_json_reads(*row), decode_record(*row)):
            for field in fields(Event):
                assert same(getattr(event, field.name), getattr(expected, field.name)), field.name
