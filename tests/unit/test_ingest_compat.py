"""Schema versions: backward compatibility checks and the registry that enforces them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from warden.domain.errors import ConfigError, ValidationError
from warden.ingest.compat import compare_schemas
from warden.ingest.registry import SchemaRegistry

if TYPE_CHECKING:
    from pathlib import Path

BASE: dict[str, Any] = {
    "type": "object",
    "required": ["service"],
    "additionalProperties": False,
    "properties": {
        "service": {"type": "string", "minLength": 1},
        "severity": {"enum": ["low", "high"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 100},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def changed(**props: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(BASE))
    for key, value in props.items():
        if value is None:
            out["properties"].pop(key)
        else:
            out["properties"][key] = value
    return out


def breaking(old: Any, new: Any) -> list[str]:
    return [c.describe() for c in compare_schemas(old, new).breaking]


def test_identical_schemas_are_compatible() -> None:
    report = compare_schemas(BASE, BASE, old_name="t@1", new_name="t@2")
    assert report.compatible
    assert report.changes == ()
    assert report.describe() == "t@2 accepts the same events as t@1"


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ({**BASE, "required": ["service", "severity"]}, "/severity: newly required"),
        (changed(severity=None), "/severity: property removed and additionalProperties is false"),
        (changed(count={"type": "string"}), "/count: type 'integer' is no longer accepted"),
        (changed(severity={"enum": ["high"]}), '/severity: allowed value "low" was removed'),
        (changed(service={"type": "string", "minLength": 3}), "`minLength` narrowed from 1 to 3"),
        (changed(count={"type": "integer", "maximum": 10}), "`maximum` narrowed from 100 to 10"),
        (changed(count={"type": "integer", "minimum": 0}), "ok"),
        (changed(service={"type": "string", "pattern": "^a"}), "`pattern` is now '^a'"),
        (changed(tags={"type": "array", "items": {"type": "integer"}}), "/tags/[]: type 'string'"),
        (changed(severity={"type": "string"}), "ok"),
        ({**BASE, "anyOf": [{"required": ["count"]}]}, "`anyOf` changed"),
        (changed(count={"type": "number", "minimum": 0, "maximum": 100}), "ok"),
        (changed(extra={"type": "string"}), "ok"),
        ({**BASE, "required": []}, "ok"),
    ],
)
def test_changes_are_judged(new: dict[str, Any], expected: str) -> None:
    found = breaking(BASE, new)
    if expected == "ok":
        assert found == []
    else:
        assert any(expected in line for line in found), found


def test_closing_an_open_object_is_breaking() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = {**old, "additionalProperties": False}
    assert breaking(old, new) == [
        "[breaking] /*: additionalProperties is now false: unknown properties are refused"
    ]
    assert breaking(new, old) == []


def test_restricting_an_unconstrained_value_is_breaking() -> None:
    assert breaking({}, {"type": "object"}) == [
        "[breaking] /: type restricted to ['object'] (was any type)"
    ]
    assert breaking(True, False) == ["[breaking] /: the new version refuses every value"]
    assert breaking({"type": "string"}, {"type": "string", "enum": ["a"]})


def test_a_refusal_lists_only_the_breaking_changes() -> None:
    new = {**changed(severity={"enum": ["low", "high", "mid"]}), "required": ["service", "count"]}
    text = compare_schemas(BASE, new, old_name="x@1", new_name="x@2").describe()
    lines = text.splitlines()
    assert lines[0] == "x@2 is NOT backward compatible with x@1:"
    assert lines[1].startswith("  [breaking] /count: newly required")
    assert "[ok]" not in text
    assert lines[-1] == "  (and 2 backward compatible changes)"
    widened = changed(severity={"enum": ["low", "high", "mid"]})
    text = compare_schemas(BASE, widened, old_name="x@1", new_name="x@2").describe()
    assert '[ok] /severity: allowed value "mid" was added' in text


# Property: when the checker says compatible, every instance the old schema accepted is
# accepted by the new one (checked on random instances and random single-step changes).
INSTANCES = st.fixed_dictionaries(
    {"service": st.sampled_from(["", "a", "abc"])},
    optional={
        "severity": st.sampled_from(["low", "high", "mid", 3]),
        "count": st.one_of(st.integers(-5, 200), st.floats(0, 5), st.text(max_size=2)),
        "tags": st.lists(st.one_of(st.text(max_size=2), st.integers()), max_size=2),
        "extra": st.integers(),
    },
)
MUTATIONS = st.sampled_from(
    [
        changed(severity={"enum": ["low", "high", "mid"]}),
        changed(severity={"enum": ["high"]}),
        changed(count={"type": "number"}),
        changed(count={"type": "integer", "minimum": 1}),
        changed(count={"type": "integer", "minimum": -1, "maximum": 1000}),
        changed(tags={"type": "array"}),
        changed(tags={"type": "array", "items": {"type": "integer"}}),
        changed(service={"type": "string"}),
        changed(service={"type": "string", "minLength": 2}),
        changed(severity=None),
        changed(extra={"type": "integer"}),
        {**BASE, "additionalProperties": True},
        {**BASE, "required": []},
        {**BASE, "required": ["service", "count"]},
    ]
)


@settings(max_examples=300, deadline=None)
@given(MUTATIONS, INSTANCES)
def test_compatible_verdicts_never_refuse_what_the_old_version_accepted(
    new: dict[str, Any], instance: dict[str, Any]
) -> None:
    if not compare_schemas(BASE, new).compatible:
        return
    if Draft202012Validator(BASE).is_valid(instance):
        assert Draft202012Validator(new).is_valid(instance)


# -- the registry ----------------------------------------------------------------------------


def write(directory: Path, name: str, schema: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def test_builtin_schemas_include_alerts_and_generic_json() -> None:
    registry = SchemaRegistry()
    assert {"warden.alert.firing", "warden.alert.resolved", "warden.webhook.received"} <= set(
        registry.types()
    )
    assert registry.versions("warden.alert.firing") == [1]
    assert registry.schema("warden.alert.resolved")["properties"]["status"] == {"const": "resolved"}
    assert registry.origin("warden.alert.firing", 1).endswith("warden.alert.firing@1.json")


def test_registering_a_compatible_version(tmp_path: Path) -> None:
    write(tmp_path, "acme.deploy@1.json", BASE)
    write(tmp_path, "acme.deploy@2.json", changed(severity={"enum": ["low", "high", "mid"]}))
    registry = SchemaRegistry([tmp_path])
    assert registry.versions("acme.deploy") == [1, 2]
    registry.check_data("acme.deploy", 2, {"service": "a", "severity": "mid"})
    with pytest.raises(ValidationError, match="is not one of"):
        registry.check_data("acme.deploy", 1, {"service": "a", "severity": "mid"})
    v3 = changed(severity={"enum": ["low", "high", "mid"]}, count={"type": "number"})
    report = registry.register("acme.deploy", 3, v3)
    assert report is not None
    assert report.compatible
    assert report.old == "acme.deploy@2"


def test_a_breaking_version_is_refused_with_a_diff(tmp_path: Path) -> None:
    registry = SchemaRegistry()
    registry.register("acme.deploy", 1, BASE)
    with pytest.raises(ValidationError) as caught:
        registry.register("acme.deploy", 2, {**BASE, "required": ["service", "count"]})
    message = str(caught.value)
    assert "breaking change refused" in message
    assert "acme.deploy@2 is NOT backward compatible with acme.deploy@1" in message
    assert "[breaking] /count: newly required" in message
    assert "new event type" in message
    assert registry.versions("acme.deploy") == [1]


def test_a_version_inserted_between_must_fit_both_neighbours() -> None:
    registry = SchemaRegistry()
    registry.register("acme.x", 1, changed(severity={"enum": ["low", "high", "mid"]}))
    registry.register("acme.x", 3, changed(severity={"enum": ["low", "high", "mid", "top"]}))
    with pytest.raises(
        ValidationError, match=r"acme\.x@3 is NOT backward compatible with acme\.x@2"
    ):
        registry.register("acme.x", 2, changed(severity={"enum": ["low", "high", "mid", "x", "y"]}))


def test_a_published_version_never_changes() -> None:
    registry = SchemaRegistry()
    registry.register("acme.x", 1, BASE)
    assert registry.register("acme.x", 1, json.loads(json.dumps(BASE))) is None
    with pytest.raises(ValidationError, match=r"register acme\.x@2"):
        registry.register("acme.x", 1, changed(extra={"type": "string"}))


def test_loading_a_directory_with_a_breaking_change_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "acme.deploy@1.json", BASE)
    write(tmp_path, "acme.deploy@10.json", changed(severity={"enum": ["low", "high", "mid"]}))
    write(tmp_path, "acme.deploy@2.json", changed(severity={"enum": ["low", "high"]}))
    assert SchemaRegistry([tmp_path]).versions("acme.deploy") == [1, 2, 10]
    write(tmp_path, "acme.deploy@11.json", changed(severity={"enum": ["low"]}))
    with pytest.raises(
        ConfigError, match=r"(?s)acme.deploy@11.json: .*allowed value \"mid\" was removed"
    ):
        SchemaRegistry([tmp_path])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("acme.x@one.json", "{}", "name it <event type>@<version>.json"),
        ("acme.x@0.json", "{}", "name it"),
        ("acme.x@1.json", "{not json", "schema file"),
        ("acme.x@1.json", "[1]", "must be a JSON object"),
        ("acme.x@1.json", '{"type": 5}', "not a valid JSON Schema"),
    ],
)
def test_bad_schema_files_are_config_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        SchemaRegistry([tmp_path])


def test_schema_lookup_errors_list_what_is_known() -> None:
    registry = SchemaRegistry()
    with pytest.raises(ValidationError, match=r"known: warden.alert.firing@1"):
        registry.schema("warden.alert.firing", 7)
    with pytest.raises(ValidationError, match=r"no schema registered for acme\.nothing"):
        registry.schema("acme.nothing")
