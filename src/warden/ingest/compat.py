"""Backward compatibility of two JSON Schema versions, as a readable diff. Data plane (pure).

A new version is backward compatible when it accepts every event the old one accepted.
The check is structural and conservative: it follows ``properties``, ``items`` and
``additionalProperties`` and compares ``type``, ``enum``/``const``, ``required``, bounds,
``pattern`` and ``format``; any other keyword that changed (``anyOf``, ``$ref``, ...) is
reported as breaking because it cannot be proven safe. A property added to an *open*
object (``additionalProperties`` absent or true) is not flagged, although old events that
carried it with another shape would now fail: keep such additions loose or closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["CompatibilityReport", "SchemaChange", "compare_schemas"]

_ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "$comment", "title", "description", "examples", "default",
        "deprecated", "readOnly", "writeOnly", "$anchor",
    }
)  # fmt: skip
_ANALYZED = frozenset(
    {
        "type", "enum", "const", "required", "properties", "additionalProperties", "items",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
        "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "pattern",
        "format", "multipleOf", "uniqueItems",
    }
)  # fmt: skip
# Bounds that narrow when they grow, and those that narrow when they shrink.
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One difference between two versions.

    Attributes:
        path: Where in the event data, e.g. ``/labels/severity`` or ``/`` for the root.
        message: What changed, in words.
        breaking: Whether events the old version accepted may now be refused.
    """

    path: str
    message: str
    breaking: bool

    def describe(self) -> str:
        """One line: ``[breaking] /path: message``."""
        mark = "breaking" if self.breaking else "ok"
        return f"[{mark}] {self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class CompatibilityReport:
    """Every difference found between an old and a new version of a schema."""

    old: str
    new: str
    changes: tuple[SchemaChange, ...]

    @property
    def breaking(self) -> tuple[SchemaChange, ...]:
        """The changes that may refuse events the old version accepted."""
        return tuple(c for c in self.changes if c.breaking)

    @property
    def compatible(self) -> bool:
        """True when the new version accepts everything the old one accepted."""
        return not self.breaking

    def describe(self) -> str:
        """A multi-line diff of what the verdict rests on: the breaking changes, if any."""
        if not self.changes:
            return f"{self.new} accepts the same events as {self.old}"
        verdict = (
            f"{self.new} is backward compatible with {self.old}"
            if self.compatible
            else f"{self.new} is NOT backward compatible with {self.old}"
        )
        if self.compatible:
            shown = sorted(self.changes, key=lambda c: c.path)
            return "\n".join([verdict + ":", *(f"  {c.describe()}" for c in shown)])
        # Only what the verdict rests on: compatible changes would bury the breaking ones.
        shown = sorted(self.breaking, key=lambda c: c.path)
        rest = len(self.changes) - len(shown)
        lines = [verdict + ":", *(f"  {c.describe()}" for c in shown)]
        if rest:
            lines.append(f"  (and {rest} backward compatible change{'s' if rest > 1 else ''})")
        return "\n".join(lines)


def compare_schemas(
    old: Any, new: Any, *, old_name: str = "old", new_name: str = "new"
) -> CompatibilityReport:
    """Compare two JSON Schemas (dicts or booleans) for backward compatibility.

    Args:
        old: The registered version.
        new: The candidate version.
        old_name: How to call the old version in the report, e.g. ``type@1``.
        new_name: How to call the new version, e.g. ``type@2``.

    Returns:
        The report; ``report.compatible`` says whether to accept the new version.
    """
    changes: list[SchemaChange] = []
    _compare(old, new, "/", changes)
    return CompatibilityReport(old_name, new_name, tuple(changes))


def _child(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _types(schema: dict[str, Any]) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    return {value} if isinstance(value, str) else {str(v) for v in value}


def _allowed(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema and isinstance(schema["enum"], list):
        return list(schema["enum"])
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _compare(old: Any, new: Any, path: str, out: list[SchemaChange]) -> None:
    if old is False or new is True or _key(old) == _key(new):
        return
    if new is False:
        out.append(SchemaChange(path, "the new version refuses every value", True))
        return
    if old is True:
        old = {}
    if not isinstance(old, dict) or not isinstance(new, dict):
        out.append(SchemaChange(path, "the schema is not an object or boolean", True))
        return
    _compare_types(old, new, path, out)
    _compare_values(old, new, path, out)
    _compare_bounds(old, new, path, out)
    _compare_required(old, new, path, out)
    _compare_properties(old, new, path, out)
    if "items" in old or "items" in new:
        _compare(old.get("items", True), new.get("items", True), _child(path, "[]"), out)
    if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
        out.append(SchemaChange(path, "items must now be unique", True))
    for keyword in sorted((set(old) | set(new)) - _ANNOTATIONS - _ANALYZED):
        if _key(old.get(keyword)) != _key(new.get(keyword)):
            out.append(
                SchemaChange(path, f"`{keyword}` changed; it cannot be checked automatically", True)
            )


def _compare_types(
    old: dict[str, Any], new: dict[str, Any], path: str, out: list[SchemaChange]
) -> None:
    old_types, new_types = _types(old), _types(new)
    values = _allowed(old)
    if old_types is None and values is not None:
        old_types = {_json_type(v) for v in values}
    if new_types is None:
        if old_types is not None:
            out.append(SchemaChange(path, f"type widened from {sorted(old_types)} to any", False))
        return
    if old_types is None:
        out.append(
            SchemaChange(path, f"type restricted to {sorted(new_types)} (was any type)", True)
        )
        return
    for type_ in sorted(old_types):
        if type_ in new_types or (type_ == "integer" and "number" in new_types):
            continue
        out.append(SchemaChange(path, f"type {type_!r} is no longer accepted", True))
    added = new_types - old_types
    if added:
        out.append(SchemaChange(path, f"type widened to also accept {sorted(added)}", False))


def _compare_values(
    old: dict[str, Any], new: dict[str, Any], path: str, out: list[SchemaChange]
) -> None:
    old_values, new_values = _allowed(old), _allowed(new)
    if new_values is None:
        if old_values is not None:
            out.append(SchemaChange(path, "the list of allowed values was lifted", False))
        return
    if old_values is None:
        shown = ", ".join(_key(v) for v in new_values)
        out.append(SchemaChange(path, f"values restricted to [{shown}] (was any value)", True))
        return
    new_keys = {_key(v) for v in new_values}
    old_keys = {_key(v) for v in old_values}
    for value in old_values:
        if _key(value) not in new_keys:
            out.append(SchemaChange(path, f"allowed value {_key(value)} was removed", True))
    for value in new_values:
        if _key(value) not in old_keys:
            out.append(SchemaChange(path, f"allowed value {_key(value)} was added", False))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _compare_bounds(
    old: dict[str, Any], new: dict[str, Any], path: str, out: list[SchemaChange]
) -> None:
    for keyword, narrower in [*((k, 1) for k in _LOWER_BOUNDS), *((k, -1) for k in _UPPER_BOUNDS)]:
        if keyword not in new:
            if keyword in old:
                out.append(SchemaChange(path, f"`{keyword}` removed", False))
            continue
        new_value, old_value = _number(new[keyword]), _number(old.get(keyword))
        if old_value is None or new_value is None:
            out.append(SchemaChange(path, f"`{keyword}` {new[keyword]!r} added", True))
        elif (new_value - old_value) * narrower > 0:
            out.append(
                SchemaChange(
                    path, f"`{keyword}` narrowed from {old[keyword]} to {new[keyword]}", True
                )
            )
        elif new_value != old_value:
            out.append(
                SchemaChange(
                    path, f"`{keyword}` relaxed from {old[keyword]} to {new[keyword]}", False
                )
            )
    if "multipleOf" in new:
        old_step, new_step = _number(old.get("multipleOf")), _number(new["multipleOf"])
        if old_step is None or new_step is None or new_step == 0 or old_step % new_step:
            out.append(SchemaChange(path, f"`multipleOf` {new['multipleOf']!r} narrows", True))
    for keyword in ("pattern", "format"):
        if keyword in new and old.get(keyword) != new[keyword]:
            was = f" (was {old[keyword]!r})" if keyword in old else ""
            out.append(
                SchemaChange(path, f"`{keyword}` is now {new[keyword]!r}{was}; it may narrow", True)
            )
        elif keyword in old and keyword not in new:
            out.append(SchemaChange(path, f"`{keyword}` removed", False))


def _compare_required(
    old: dict[str, Any], new: dict[str, Any], path: str, out: list[SchemaChange]
) -> None:
    old_required = set(old.get("required", []))
    new_required = set(new.get("required", []))
    for name in sorted(new_required - old_required):
        out.append(
            SchemaChange(
                _child(path, name),
                "newly required: events without it, which the old version accepted, are refused",
                True,
            )
        )
    for name in sorted(old_required - new_required):
        out.append(SchemaChange(_child(path, name), "no longer required", False))


def _compare_properties(
    old: dict[str, Any], new: dict[str, Any], path: str, out: list[SchemaChange]
) -> None:
    old_props: dict[str, Any] = old.get("properties", {}) or {}
    new_props: dict[str, Any] = new.get("properties", {}) or {}
    old_extra = old.get("additionalProperties", True)
    new_extra = new.get("additionalProperties", True)
    for name in sorted(set(old_props) | set(new_props)):
        where = _child(path, name)
        if name in old_props and name in new_props:
            _compare(old_props[name], new_props[name], where, out)
        elif name in old_props:
            if new_extra is False:
                out.append(
                    SchemaChange(
                        where,
                        "property removed and additionalProperties is false: refused now",
                        True,
                    )
                )
            elif new_extra is True:
                out.append(SchemaChange(where, "property removed (still allowed as extra)", False))
            else:
                _compare(old_props[name], new_extra, where, out)
        elif old_extra is False:
            out.append(SchemaChange(where, "property added", False))
        elif old_extra is True:
            out.append(SchemaChange(where, "property added to an open object", False))
        else:
            _compare(old_extra, new_props[name], where, out)
    if _key(old_extra) != _key(new_extra):
        where = _child(path, "*")
        if new_extra is False:
            out.append(
                SchemaChange(
                    where, "additionalProperties is now false: unknown properties are refused", True
                )
            )
        else:
            _compare(old_extra, new_extra, where, out)
