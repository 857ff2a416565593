"""CEL conditions and ``{{ }}`` templates of runbooks, checked against the fields they read. Shell.

Expressions are Common Expression Language (CEL), compiled once at load by the
``common-expression-language`` package. Every ``event.…`` and ``world.…`` path an
expression reads is checked at load against the event type's JSON Schema and the world's
shape, so a field the event type does not have is refused before the runbook runs.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import cel

from warden.domain.errors import ConfigError

ROOTS = ("event", "world")
"""The variables an expression may read."""

_STRING = re.compile(
    r"""(?:[rR])?(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""", re.S
)
_PATH = re.compile(r"(?<![\w.])([A-Za-z_]\w*)((?:\s*\.\s*[A-Za-z_]\w*)*)(\s*\()?")
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)

# What ``event`` holds besides ``data``, whose shape is the event type's schema.
_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string"},
        "source": {"type": "string"},
        "subject": {"type": "string"},
        "time": {"type": "string"},
        "data": {"type": "object"},
    },
}
_TEXT_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
WORLD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "service": {"type": "string"},
        "healthy": {"type": "boolean"},
        "consecutive_failures": {"type": "integer"},
        "failing_since": {"type": "string"},
        "last_error": {"type": "string"},
        "version": {"type": "string"},
        "previous_version": {"type": "string"},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "alerts": {"type": "array", "items": {"type": "string"}},
        "isolated": {"type": "boolean"},
        "depends_on": {"type": "array", "items": {"type": "string"}},
        "limits": _TEXT_MAP,
    },
}
"""The world as a runbook sees it: the facts about the event's service."""


@dataclass(frozen=True, slots=True)
class Expression:
    """One compiled CEL expression and the paths it reads."""

    source: str
    program: Any
    paths: tuple[tuple[str, ...], ...]

    @property
    def reads_world(self) -> bool:
        """True when it reads ``world``: the world is built only for such expressions."""
        return any(p[0] == "world" for p in self.paths)

    def evaluate(self, variables: dict[str, Any]) -> Any:
        """The value; a field the event lacks (optional in its schema) raises KeyError."""
        return self.program.execute(variables)


def field_paths(source: str) -> tuple[tuple[str, ...], ...]:
    """The ``event.…`` and ``world.…`` dot paths ``source`` reads (method names dropped)."""
    text = _STRING.sub('""', source)
    found: list[tuple[str, ...]] = []
    for match in _PATH.finditer(text):
        root, rest, call = match.group(1), match.group(2), match.group(3)
        if root not in ROOTS:
            continue
        parts = [root, *(p.strip() for p in rest.split(".") if p.strip())]
        if call and len(parts) > 1:
            parts = parts[:-1]  # event.data.alertname.startsWith( : a method, not a field
        found.append(tuple(parts))
    return tuple(dict.fromkeys(found))


def compile_expression(source: str, schemas: dict[str, dict[str, Any]]) -> Expression:
    """Compile ``source`` and check every path it reads against ``schemas``.

    Args:
        source: The CEL text.
        schemas: The data schema of each event type the expression may see.

    Raises:
        ConfigError: A syntax error (with CEL's caret under the place), a variable other
            than ``event`` and ``world``, or a field some event type does not have.
    """
    if not isinstance(source, str) or not source.strip():
        raise ConfigError("expected a CEL expression (text), e.g. event.data.service == 'api'")
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        message = str(exc).replace("Failed to parse expression", "CEL syntax error in")
        raise ConfigError(message) from None
    unknown = sorted(set(program.variables()) - set(ROOTS))
    if unknown:
        raise ConfigError(
            f"unknown variable {unknown[0]!r} in {source!r}: an expression reads"
            " event (event.data.<field>, event.type, event.subject, …) and world"
            " (world.healthy, world.metrics.<name>, …)"
        )
    paths = field_paths(source)
    for path in paths:
        check_path(path, schemas)
    return Expression(source, program, paths)


def check_path(path: tuple[str, ...], schemas: dict[str, dict[str, Any]]) -> None:
    """Raise unless every event type in ``schemas`` (or the world) has the field ``path``."""
    if path[0] == "world":
        _walk(path, WORLD_SCHEMA, "the world")
        return
    if len(path) >= 2 and path[1] == "data":
        for type_, schema in sorted(schemas.items()):
            _walk(path[2:], schema, f"event type {type_}", prefix=("event", "data"))
        return
    _walk(path, _ENVELOPE, "an event")


def _walk(
    path: tuple[str, ...], schema: dict[str, Any], owner: str, prefix: tuple[str, ...] = ()
) -> None:
    here = schema
    start = 1 if not prefix else 0
    for index in range(start, len(path)):
        name = path[index]
        shown = ".".join((*prefix, *path[: index + 1]))
        kinds = here.get("type")
        kinds = set(kinds) if isinstance(kinds, list) else {kinds} if kinds else set()
        if kinds and "object" not in kinds:
            raise ConfigError(
                f"{shown}: {'.'.join((*prefix, *path[:index]))} is a {'/'.join(sorted(kinds))}"
                f" in {owner}, it has no field {name!r}"
            )
        properties = here.get("properties") or {}
        if name in properties:
            here = properties[name]
            continue
        extra = here.get("additionalProperties", True)
        if isinstance(extra, dict):
            here = extra
            continue
        if extra is False:
            known = sorted(properties)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{shown}: {owner} has no field {name!r}; {hint}its fields: {', '.join(known)}"
            )
        return  # an open object: anything may be there


@dataclass(frozen=True, slots=True)
class Template:
    """A text with ``{{ expression }}`` parts, or one whole expression keeping its type."""

    source: Any
    parts: tuple[str | Expression, ...]
    whole: bool

    @property
    def reads_world(self) -> bool:
        """True when one of its expressions reads ``world``."""
        return any(isinstance(p, Expression) and p.reads_world for p in self.parts)

    def render(self, variables: dict[str, Any]) -> Any:
        """The text with each expression's value; a whole expression's own value."""
        if not self.parts:
            return self.source
        if self.whole:
            part = self.parts[0]
            return part.evaluate(variables) if isinstance(part, Expression) else part
        return "".join(
            _text(p.evaluate(variables)) if isinstance(p, Expression) else p for p in self.parts
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compile_template(source: Any, schemas: dict[str, dict[str, Any]]) -> Template:
    """A template from a YAML value: text with ``{{ }}`` parts, or a literal (kept as is)."""
    if not isinstance(source, str) or "{{" not in source:
        return Template(source, (), False)
    parts: list[str | Expression] = []
    last = 0
    for match in _TEMPLATE.finditer(source):
        if match.start() > last:
            parts.append(source[last : match.start()])
        parts.append(compile_expression(match.group(1).strip(), schemas))
        last = match.end()
    if last < len(source):
        parts.append(source[last:])
    if "{{" in "".join(p for p in parts if isinstance(p, str)):
        raise ConfigError(f"unclosed {{{{ in {source!r}: write {{{{ expression }}}}")
    whole = len(parts) == 1 and isinstance(parts[0], Expression)
    return Template(source, tuple(parts), whole)


__all__ = [
    "ROOTS",
    "WORLD_SCHEMA",
    "Expression",
    "Template",
    "check_path",
    "compile_expression",
    "compile_template",
    "field_paths",
]
