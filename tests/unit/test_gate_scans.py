"""The gate's quick scans answer as the checks they stand for, on any JSON-like value."""

from __future__ import annotations

import dataclasses
import enum
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from warden.domain.plain_json import MAX_DEPTH, envelope_problem, event_problem, json_problem
from warden.domain.redact import (
    STORED_SETTINGS,
    RedactionSettings,
    _maybe_secret,
    _maybe_secret_key,
    might_hold_secrets,
)


class Text(str):
    """A str subclass: plain to the full checks, unsure to the quick ones."""


class Level(enum.IntEnum):
    """An int subclass, as an enum in a sender's own dict would be."""

    HIGH = 4111111111111111


def nested(depth: int, leaf: Any = "leaf") -> Any:
    value: Any = leaf
    for _ in range(depth):
        value = {"n": value} if depth % 2 else [value]
    return value


# Secret-looking words, the letters the rules' (?i) reads as ASCII (long s, Kelvin sign,
# dotted and dotless i), lone surrogates, NUL and non-ASCII text.
WORDS = [
    "ok", "payments", "password", "api_key", "token: abc123", "secret=x", "\u017fecret=x",
    "\u212aey", "AUTH\u0130", "\u0131d", "a@b.io", "Bearer abcdefgh12345678", "sig", "x=1",
    "AKIAABCDEFGHIJKLMNOP", "4111 1111 1111 1111", "-----BEGIN PRIVATE KEY-----", "dsn",
    "caf\u00e9", "\ud800", "a\udfffb", "nul\x00", "\x00", "", "Cookie", "sim:auth",
]  # fmt: skip
texts = (
    st.text(max_size=10)
    | st.sampled_from(WORDS)
    | st.builds("".join, st.lists(st.sampled_from(WORDS), max_size=3))
    | st.sampled_from(WORDS).map(Text)
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(3990, 4400).map(lambda n: -(10**n) if n % 2 else 10**n)
    | st.sampled_from([4111111111111111, Level.HIGH])
    | st.floats()  # NaN and the infinities too
    | texts
)
keys = texts | st.integers(-3, 3) | st.sampled_from([None, 1.5, ("t",)])


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    maps = st.dictionaries(keys, inner, max_size=4)
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | maps
        | maps.map(OrderedDict)
        | maps.map(MappingProxyType)
        | st.sampled_from([{1, 2}, b"bytes", object()])
    )


values = st.recursive(leaves, containers, max_leaves=16) | st.sampled_from(
    [nested(MAX_DEPTH), nested(MAX_DEPTH + 1), nested(MAX_DEPTH - 1, float("nan"))]
)
ENVELOPE = ["specversion", "id", "source", "type", "time", "subject", "data", "extra", "\u00e9"]
events = st.dictionaries(
    st.sampled_from(ENVELOPE) | keys, values | st.sampled_from(WORDS), max_size=8
)


@given(events)
@example({"id": "a\x00", "data": {"x": "\x00"}})
@example({"data": "\x00", "type": "t"})
@example({"": "\x00"})
@example({"id": "a\x00", "data": {"s": "\ud800"}})  # the JSON problem is the answer
@example({"id": Text("a\x00")})
@example({"data": nested(MAX_DEPTH)})
@example({"data": nested(MAX_DEPTH - 1)})
@example({"id": "\u00e9\x00", "type": "b\x00"})
@example({"id": "a\x00", "type": "b\x00"})  # the first is named
@example({"type": "\ud800"})
@example({"\ud800": "t"})
@example({"data": {"k": "\udfff"}, "id": "\x00"})
def test_event_problem_is_the_json_problem_else_the_envelope_one(raw: dict[Any, Any]) -> None:
    assert event_problem(raw) == (json_problem(raw) or envelope_problem(raw))


def outcome(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except AttributeError as exc:  # what has no items() is no event
        return type(exc)


@given(values)
def test_event_problem_of_any_other_value_is_the_old_answer(value: Any) -> None:
    for raw in (value, OrderedDict(value) if isinstance(value, dict) else [value]):
        old = outcome(lambda v: json_problem(v) or envelope_problem(v), raw)
        assert outcome(event_problem, raw) == old


def each_text_and_key(value: Any, settings: RedactionSettings) -> bool:
    """The scan's answer spelled out: each string and key tested on its own, no cache."""
    names: list[str] = []
    found = False

    def visit(item: Any) -> None:
        nonlocal found
        if isinstance(item, str):
            found = found or _maybe_secret(item)
        elif isinstance(item, dict | MappingProxyType):
            for key, inner in item.items():
                names.append(str(key))
                visit(inner)
        elif isinstance(item, list | tuple):
            for inner in item:
                visit(inner)
        elif isinstance(item, int) and not isinstance(item, bool):
            found = found or settings.card_integers

    visit(value)
    named = any(name.lower() in settings.fields for name in names)
    return found or named or any(_maybe_secret_key(name) for name in names)


SETTINGS = [
    STORED_SETTINGS,
    dataclasses.replace(STORED_SETTINGS, card_integers=True),
    dataclasses.replace(STORED_SETTINGS, fields=frozenset({"ok", "caf\u00e9", "1"})),
]


@given(values, st.sampled_from(SETTINGS))
@example({"ok": 1}, SETTINGS[1])
@example((Level.HIGH,), SETTINGS[1])
@example([True], SETTINGS[1])
@example(MappingProxyType({"\u017fecret": "x"}), STORED_SETTINGS)
@example({Text("ok"): {1: "fine"}}, SETTINGS[2])
@example(({"service": "a"}, {"note": "token=abc"}), STORED_SETTINGS)
def test_the_secret_scan_answers_as_each_text_and_key_on_its_own(
    value: Any, settings: RedactionSettings
) -> None:
    expected = each_text_and_key(value, settings)
    assert might_hold_secrets(value, settings) == expected
    assert might_hold_secrets(value, settings) == expected  # now with texts remembered
    assert might_hold_secrets((value, {}), settings) == expected  # as the gate's empty extensions
