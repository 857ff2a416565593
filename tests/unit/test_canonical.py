"""RFC 8785 canonical JSON: the spec's own examples and round-trip properties."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from warden.domain.canonical import canonical_json


def test_rfc8785_number_examples() -> None:
    # RFC 8785 section 3.2.2.3 and appendix B sample values.
    cases = {
        0.0: "0",
        1e21: "1e+21",
        1e-7: "1e-7",
        333333333.3333333: "333333333.3333333",
        1e23: "1e+23",
        5e-324: "5e-324",
        1.7976931348623157e308: "1.7976931348623157e+308",
        9007199254740992.0: "9007199254740992",
        0.000001: "0.000001",
        123e-20: "1.23e-18",
        4.5: "4.5",
        2e-3: "0.002",
        295147905179352830000.0: "295147905179352830000",
    }
    for value, expected in cases.items():
        assert canonical_json(value).decode() == expected, value


def test_negative_zero_is_zero() -> None:
    assert canonical_json(-0.0) == b"0"


def test_rfc8785_sorting_example() -> None:
    # RFC 8785 section 3.2.3: keys sorted by UTF-16 code units.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonical_json(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_no_whitespace_and_escapes() -> None:
    encoded = canonical_json({"b": [1, True, None], "a": "\u000f\n"})
    assert encoded == b'{"a":"\\u000f\\n","b":[1,true,null]}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(json_values)
def test_canonical_form_parses_back_to_the_same_value(value: object) -> None:
    encoded = canonical_json(value)
    decoded = json.loads(encoded)
    assert canonical_json(decoded) == encoded
    # Integral floats print without a fraction, so they read back as ints.
    assert numbers_as_floats(decoded) == numbers_as_floats(value)


def numbers_as_floats(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [numbers_as_floats(v) for v in value]
    assert isinstance(value, dict)
    return {k: numbers_as_floats(v) for k, v in value.items()}
