"""The gate's quick scans answer as the checks they stand for, on any JSON-like value."""

from __future__ import annotations

import dataclasses
import enum
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from warden.domain.plain_json import MAX_DEPTH, envelope_problem, json_problem, scan_event
from warden.domain.redact import (
    STORED_SETTINGS,
    RedactionSettings,
    _maybe_secret,
    _maybe_secret_key,
    might_hold_secrets,
    strings_might_hold_secrets,
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


# Events the quick pass is sure of (ASCII text, exact types), now and then with one that is
# not (a non-ASCII letter, NaN, a subclass) somewhere.
ascii_texts = st.text(st.characters(max_codepoint=127), max_size=10) | st.sampled_from(
    [w for w in WORDS if w.isascii()]
)
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ascii_texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_texts, inner, max_size=4),
    max_leaves=16,
)
plain_events = st.fixed_dictionaries(
    {"id": ascii_texts, "data": st.dictionaries(ascii_texts, plain_values) | plain_values | values},
    optional={"subject": ascii_texts, "extra": plain_values | values, "schemaversion": leaves},
)


@given(plain_events | events)
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
def test_the_scan_finds_the_json_problem_else_the_envelope_one(raw: dict[Any, Any]) -> None:
    assert scan_event(raw)[0] == (json_problem(raw) or envelope_problem(raw))


def outcome(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except AttributeError as exc:  # what has no items() is no event
        return type(exc)


@given(values)
def test_the_scan_of_any_other_value_finds_the_old_answer(value: Any) -> None:
    for raw in (value, OrderedDict(value) if isinstance(value, dict) else [value]):
        old = outcome(lambda v: json_problem(v) or envelope_problem(v), raw)
        assert outcome(lambda v: scan_event(v)[0], raw) == old


def strings_and_keys(value: Any) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    names: list[str] = []
    each_text_and_key(value, STORED_SETTINGS, texts, names)
    return sorted(texts), sorted(names)


def each_text_and_key(
    value: Any,
    settings: RedactionSettings,
    texts: list[str] | None = None,
    names: list[str] | None = None,
) -> bool:
    """The scan's answer spelled out: each string and key tested on its own, no cache."""
    texts = [] if texts is None else texts
    names = [] if names is None else names
    found = False

    def visit(item: Any) -> None:
        nonlocal found
        if isinstance(item, str):
            texts.append(item)
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


@given(plain_events | events, st.sampled_from(SETTINGS))
@example({"data": {"note": "token=abc", "n": [1, "a@b.io"]}}, STORED_SETTINGS)
@example({"data": "password=x"}, STORED_SETTINGS)
@example({"data": {"\u017fecret": "x"}}, STORED_SETTINGS)  # unsure: not gathered
@example({"data": {"ok": 4111111111111111}}, SETTINGS[1])
@example({"id": "x", "extra": {"password": "x"}, "data": {}}, STORED_SETTINGS)
def test_the_data_strings_the_scan_gathers_answer_as_the_secret_scan_of_the_data(
    raw: dict[Any, Any], settings: RedactionSettings
) -> None:
    gathered = scan_event(raw)[1]
    if gathered is None:
        return
    texts, keys = gathered
    assert (sorted(texts), sorted(keys)) == strings_and_keys(raw["data"])
    found = strings_might_hold_secrets(texts, keys, settings)
    assert found == (settings.card_integers or might_hold_secrets(raw["data"], settings))
