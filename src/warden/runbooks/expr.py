"""CEL conditions and ``{{ }}`` templates of runbooks, checked against the fields they read. Shell.

Expressions are Common Expression Language (CEL), compiled once at load by the
``common-expression-language`` package. Every ``event.…`` and ``world.…`` path an
expression reads is checked at load against the event type's JSON Schema and the world's
shape, so a field the event type does not have is refused before the runbook runs.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from dataclasses import dataclass
from typing import Any

from warden.domain.errors import ConfigError, did_you_mean


class _OnFirstUse(types.ModuleType):
    """A module that is loaded from its file when one of its names is first read."""

    def __getattr__(self, name: str) -> Any:
        spec = importlib.util.spec_from_file_location(self.__name__, self.__file__)
        if spec is None or spec.loader is None:
            raise AttributeError(name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[self.__name__] = module
        spec.loader.exec_module(module)
        vars(self).update(vars(module))  # whoever holds this stub now sees the module
        return getattr(module, name)


def _without_command_line() -> None:
    """Let ``import cel`` skip its command line until something uses it.

    The package imports ``cel.cli`` (typer, prompt_toolkit: about 25 MiB) with the
    library; Warden compiles and runs expressions only, so that module is loaded on first
    use instead.
    """
    found = importlib.util.find_spec("cel")  # a top-level find runs no package code
    if "cel" in sys.modules or found is None or not found.submodule_search_locations:
        return
    cli = _OnFirstUse("cel.cli")
    cli.__file__ = f"{found.submodule_search_locations[0]}/cli.py"
    sys.modules["cel.cli"] = cli


_without_command_line()

import cel  # noqa: E402  (after the command line is deferred)

ROOTS = ("event", "world")
"""The variables an expression may read."""

_STRING = re.compile(
    r"""(?:[rR])?(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""", re.S
)
_PATH = re.compile(r"(?<![\w.])([A-Za-z_]\w*)((?:\s*\.\s*[A-Za-z_]\w*)*)(\s*\()?")
_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_ONLY_PATH = re.compile(r"^\s*(?:event|world)(?:\s*\.\s*[A-Za-z_]\w*)+\s*$")
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
        "deployed_at": {"type": "string"},
        "changes_since_deploy": {"type": "array", "items": {"type": "string"}},
        "failing_dependencies": {"type": "array", "items": {"type": "string"}},
        "limits": _TEXT_MAP,
    },
}
"""The world as a runbook sees it: the facts about the event's service."""


@dataclass(frozen=True, slots=True)
class Expression:
    """One compiled CEL expression and the paths it reads.

    Two shortcuts keep evaluation cheap, with CEL's results: an expression that is only a
    path (``event.data.service``) is looked up directly, and CEL is given only the parts
    of the variables the expression reads (a nested mapping is converted whole on every
    call, so a large event would cost in proportion to its size, not to the rule).
    """

    source: str
    program: Any
    paths: tuple[tuple[str, ...], ...]
    lookup: tuple[str, ...] = ()  # set when the whole expression is one path
    flat: bool = False  # compiled with each path as one variable (event__data__service)
    flat_names: tuple[str, ...] = ()  # those variables' names, one per path

    @property
    def reads_world(self) -> bool:
        """True when it reads ``world``: the world is built only for such expressions."""
        return any(p[0] == "world" for p in self.paths)

    def evaluate(self, variables: dict[str, Any]) -> Any:
        """The value; a field the event lacks (optional in its schema) raises KeyError."""
        if self.lookup:
            value: Any = variables
            for name in self.lookup:
                value = value[name]
            return value
        if self.flat:
            return self.program.execute(_flattened(variables, self.paths, self.flat_names))
        return self.program.execute(_pruned(variables, self.paths))


def _flattened(
    variables: dict[str, Any], paths: tuple[tuple[str, ...], ...], names: tuple[str, ...]
) -> dict[str, Any]:
    """Each path's value as one variable; a path the event lacks is left undeclared."""
    out: dict[str, Any] = {}
    for path, flat_name in zip(paths, names, strict=True):
        value: Any = variables
        for name in path:
            if not isinstance(value, dict) or name not in value:
                break
            value = value[name]
        else:
            out[flat_name] = value
    return out


def _flat_source(source: str) -> str:
    """``source`` with each ``event.…``/``world.…`` path written as one identifier."""
    out: list[str] = []
    last = 0
    for literal in [*_STRING.finditer(source), None]:
        end = literal.start() if literal is not None else len(source)
        out.append(_PATH.sub(_one_identifier, source[last:end]))
        if literal is not None:
            out.append(literal.group(0))
            last = literal.end()
    return "".join(out)


def _one_identifier(match: re.Match[str]) -> str:
    root, rest, call = match.group(1), match.group(2), match.group(3)
    if root not in ROOTS or not rest:
        return match.group(0)
    parts = [root, *(p.strip() for p in rest.split(".") if p.strip())]
    if call:
        return "__".join(parts[:-1]) + "." + parts[-1] + call if len(parts) > 2 else match.group(0)
    return "__".join(parts)


def _pruned(variables: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """Only the parts of ``variables`` that ``paths`` reach (missing parts left out)."""
    out: dict[str, Any] = {}
    for path in paths:
        source: Any = variables
        target = out
        for depth, name in enumerate(path):
            if not isinstance(source, dict) or name not in source:
                break
            source = source[name]
            if depth == len(path) - 1 or not isinstance(source, dict):
                target[name] = source
                break
            existing = target.get(name)
            if existing is source:
                break  # already whole
            if not isinstance(existing, dict):
                existing = target[name] = {}
            target = existing
    return out


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
    bound = set(_MACRO_VARIABLE.findall(_STRING.sub('""', source)))
    unknown = sorted(set(program.variables()) - set(ROOTS) - bound)
    if unknown:
        raise ConfigError(
            f"unknown variable {unknown[0]!r} in {source!r}: an expression reads"
            " event (event.data.<field>, event.type, event.subject, …) and world"
            " (world.healthy, world.metrics.<name>, …)"
        )
    paths = field_paths(source)
    for path in paths:
        check_path(path, schemas)
    lookup = paths[0] if len(paths) == 1 and _ONLY_PATH.match(source) else ()
    # Nested maps cost CEL a conversion per call; single values do not. has() needs the
    # field selection itself, so such an expression keeps the nested form.
    text = _STRING.sub('""', source)
    if not lookup and "has(" not in text.replace(" ", "") and all(len(p) > 1 for p in paths):
        try:
            flat = cel.compile(_flat_source(source))
        except (ValueError, RuntimeError):
            flat = None
        if flat is not None:
            names = tuple("__".join(path) for path in paths)
            return Expression(source, flat, paths, flat=True, flat_names=names)
    return Expression(source, program, paths, lookup)


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
            hint = did_you_mean(name, known)
            raise ConfigError(
                f"{shown}: {owner} has no field {name!r}{hint}; its fields: {', '.join(known)}"
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
