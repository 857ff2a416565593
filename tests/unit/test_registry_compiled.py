"""The registry's compiled validator answers as jsonschema does, only faster.

The gate trusts a yes of the compiled validator (jsonschema-rs) and asks jsonschema on
every no, so the compiled validator must never accept what jsonschema refuses: for the
schemas it takes (the keywords of ``_COMPILABLE``, the regular expressions of
``_PLAIN_PATTERN``), its answer must imply jsonschema's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from warden.ingest.registry import (
    BUILTIN_DIR,
    _Check,
    _compilable,
    _compiled,
    _plain_pattern,
)

# Characters where regular expression engines and Unicode tables disagree: non-ASCII
# digits, letters and spaces, the letters case-insensitive matching folds to ASCII, and
# line ends.
TRICKY = "aAbzK\u212a\u017f\u0131\u0130\u00e9\u0661\u00a0\u2028\n\r\t 0 9_-.@:/"

_PIECES = st.sampled_from(
    [
        "a", "b", "K", "\u017f", "\u00e9", "\u0661", ".", "^", "$", "\\d", "\\w", "\\s",
        "\\D", "\\W", "\\S", "\\b", "\\.", "\\-", "[a-z]", "[^a-z]", "[0-9_]", "[^\\d]",
        "[\\w]", "[[:alpha:]]", "[a-z&&[^b]]", "(?i)", "(?=a)", "(?:a|b)", "(a|b)",
        "*", "+", "?", "{2}", "{1,3}", "|", "(", ")", "\\Z", "\\A",
    ]
)  # fmt: skip
PATTERNS = st.lists(_PIECES, min_size=1, max_size=6).map("".join)
TEXTS = st.text(alphabet=TRICKY, max_size=8)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXTS, inner, max_size=4),
    max_leaves=12,
)

_FORMATS = st.sampled_from(["date-time", "date", "time", "email", "ipv4", "ipv6", "uuid", "regex"])
_TYPES = st.sampled_from(["null", "boolean", "integer", "number", "string", "array", "object"])


def _schemas() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.one_of(
        st.builds(lambda t: {"type": t}, _TYPES),
        st.builds(lambda t: {"type": [t, "null"]}, _TYPES),
        st.builds(lambda v: {"const": v}, JSON_VALUES),
        st.builds(lambda vs: {"enum": vs}, st.lists(JSON_VALUES, min_size=1, max_size=3)),
        st.builds(lambda p: {"type": "string", "pattern": p}, PATTERNS),
        st.builds(lambda f: {"format": f}, _FORMATS),
        st.builds(lambda n: {"minLength": n}, st.integers(0, 4)),
        st.builds(lambda n: {"maxLength": n}, st.integers(0, 4)),
        st.builds(lambda n: {"minimum": n}, st.integers(-5, 5) | st.floats(-5, 5)),
        st.builds(lambda n: {"exclusiveMaximum": n}, st.integers(-5, 5) | st.floats(-5, 5)),
        st.builds(lambda n: {"maxItems": n}, st.integers(0, 3)),
        st.builds(lambda n: {"minProperties": n}, st.integers(0, 3)),
        st.just({"uniqueItems": True}),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(
                lambda props, req, extra: {
                    "type": "object",
                    "properties": props,
                    "required": sorted(set(req) & set(props)),
                    "additionalProperties": extra,
                },
                st.dictionaries(st.sampled_from(["a", "b", "K", "\u00e9"]), inner, max_size=3),
                st.lists(st.sampled_from(["a", "b", "K", "\u00e9"]), max_size=3),
                st.booleans() | inner,
            ),
            st.builds(lambda p, s: {"patternProperties": {p: s}}, PATTERNS, inner),
            st.builds(lambda s: {"type": "array", "items": s}, inner),
            st.builds(lambda ss: {"anyOf": ss}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda ss: {"oneOf": ss}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda ss: {"allOf": ss}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda s: {"not": s}, inner),
        ),
        max_leaves=6,
    )


def _python_regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, FutureWarning):
        return None


@pytest.mark.filterwarnings("ignore::FutureWarning")  # Python warns on [[ and && in classes
@settings(max_examples=400, deadline=None)
@given(PATTERNS, TEXTS)
@example("^a$", "a\n")  # Python's $ matches before a final newline, the compiled one not
@example("^\\D$", "\u0661")  # an Arabic digit: \d in Python, not in the compiled engine
@example("^[[:alpha:]]$", "b")  # a POSIX class there, a class of ":alph[" here
@example("(?i)^k$", "\u212a")  # the Kelvin sign folds to k in both
def test_a_plain_pattern_never_matches_more_when_compiled(pattern: str, text: str) -> None:
    python = _python_regex(pattern)
    if python is None or not _plain_pattern(pattern):
        return  # jsonschema alone decides for this pattern
    is_valid = _compiled(json.dumps({"type": "string", "pattern": pattern}))
    if is_valid is None:
        return  # the compiled engine cannot read it: jsonschema alone decides
    if is_valid(text):
        assert python.search(text), (pattern, text)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@settings(max_examples=300, deadline=None)
@given(_schemas(), JSON_VALUES)
@example({"format": "regex"}, "(?<name>a)")  # ECMA syntax, not Python's: refused
@example({"type": "integer", "minimum": 0}, 10**30)
@example({"uniqueItems": True}, [1, True])
@example({"enum": [1]}, True)
def test_the_check_answers_as_jsonschema_does(schema: dict[str, Any], instance: Any) -> None:
    for sub in _subschemas(schema):
        for pattern in _patterns(sub):
            if _python_regex(pattern) is None:
                return  # read_schema refuses it before the registry compiles anything
    python = Draft202012Validator(schema, format_checker=FormatChecker())
    check = _Check(schema)
    if check._compiled is not None and check._compiled(instance):
        assert python.is_valid(instance), (schema, instance)
    assert (check.errors(instance) == []) == python.is_valid(instance)


def _subschemas(schema: Any) -> list[Any]:
    found = [schema]
    if isinstance(schema, dict):
        for value in schema.values():
            if isinstance(value, dict):
                found.extend(_subschemas(value))
                found.extend(x for v in value.values() for x in _subschemas(v))
            elif isinstance(value, list):
                found.extend(x for v in value for x in _subschemas(v))
    return found


def _patterns(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    out = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
    return out + list(schema.get("patternProperties", {}))


@pytest.mark.parametrize("path", sorted(BUILTIN_DIR.glob("*.json")), ids=lambda p: Path(p).name)
def test_every_built_in_schema_is_compiled(path: Path) -> None:
    # Ingest's speed rests on it: a schema left to jsonschema alone costs several times more.
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert _compilable(schema), path.name
    assert _Check(schema)._compiled is not None, path.name


@pytest.mark.parametrize(
    ("pattern", "plain"),
    [
        ("^[a-z0-9]+(\\.[a-z0-9_]+)+$", True),
        ("^\\d{3}-\\w+\\s?$", True),
        ("^[^\\d]$", False),  # a negated ASCII class would match more
        ("\\D", False),
        ("(?i)abc", False),
        ("a(?=b)", False),
        ("\\bword", False),
        ("[[:alpha:]]", False),
        ("a\\Z", False),
    ],
)
def test_which_patterns_the_compiled_validator_takes(pattern: str, plain: bool) -> None:
    assert _plain_pattern(pattern) is plain
