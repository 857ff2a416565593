"""What the gate takes as plain JSON: every value it lets through encodes canonically."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from warden.domain.canonical import canonical_json
from warden.domain.plain_json import MAX_DEPTH, json_problem, printable, valid_text


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"s": "\ud800"}, "s", "lone surrogate \\ud800"),
        ({"a": [1, {"b": "ok\udfff"}]}, "a[1].b", "lone surrogate \\udfff"),
        ({"\udc80key": 1}, "\\udc80key", "its key holds a lone surrogate"),
        ({"n": float("nan")}, "n", "nan is not a JSON number"),
        ({"n": [float("-inf")]}, "n[0]", "-inf is not a JSON number"),
        ({"n": 10**4500}, "n", "an integer of over 4000 digits"),
        ({"deep": nested(MAX_DEPTH + 1)}, "deep", f"deeper than {MAX_DEPTH}"),
        ({1: "x"}, "(root)", "key of type int"),
        ({"s": {1, 2}}, "s", "a set is not JSON"),
    ],
)
def test_what_is_not_plain_json_is_named_with_its_path(value: Any, path: str, words: str) -> None:
    problem = json_problem(value)
    assert problem is not None
    found_path, reason = problem
    assert found_path.startswith(path)
    assert words in reason
    assert valid_text(reason) == reason  # a reason is always storable text


@pytest.mark.parametrize(
    "value",
    [
        {"neg_zero": -0.0, "big": 10**300, "f": 1e308, "pair": "\U0001f600", "nul": "a\x00b"},
        {"deep": nested(MAX_DEPTH - 1)},
        [],
        None,
    ],
)
def test_odd_but_plain_values_pass_and_encode(value: Any) -> None:
    assert json_problem(value) is None
    canonical_json(value)


def test_negative_zero_is_canonically_zero() -> None:
    assert canonical_json({"z": -0.0}) == b'{"z":0}'


def test_printable_and_valid_text_escape_only_what_is_not_unicode() -> None:
    assert valid_text("héllo") == "héllo"
    assert valid_text("a\ud800b") == "a\\ud800b"
    assert printable("x" * 100, 10) == "x" * 10 + "..."


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=()), max_size=6), inner, max_size=4
        )
    ),
    max_leaves=25,
)


@given(json_values)
@example({"s": "\ud800"})
@example({"n": float("nan")})
def test_what_passes_encodes_canonically_and_what_fails_does_not(value: Any) -> None:
    problem = json_problem(value)
    if problem is None:
        canonical_json(value).decode("utf-8")
    else:
        with pytest.raises((ValueError, TypeError)):
            canonical_json(value)
