"""CEL conditions and ``{{ }}`` templates of runbooks, checked against the fields they read. Shell.

Expressions are Common Expression Language (CEL), compiled once at load by the
``common-expression-language`` package. Every ``event.…`` and ``world.…`` path an
expression reads is checked at load against the event type's JSON Schema and the world's
shape, so a field the event type does not have is refused before the runbook runs.
"""

from __future__ import annotations

import importlib.util
import operator
import re
import sys
import types
from collections.abc import Callable
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


_Decider = Callable[[dict[str, Any]], bool | None]
"""Decides an expression on its variables, or gives None: CEL decides."""


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
    # Comparisons of paths with literals joined by && and || (see ``_comparisons``),
    # compiled to a function of the variables (see ``_decider``) that decides in Python
    # when every value has its literal's type, and gives None when CEL must decide.
    comparisons: _Decider | None = None

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
            if self.comparisons is not None:
                # CEL's answer without its call (6 to 9 us, mostly building its
                # environment): same-typed strings, numbers and booleans compare alike.
                answer = self.comparisons(variables)
                if answer is not None:
                    return answer
            return self.program.execute(_flattened(variables, self.paths, self.flat_names))
        return self.program.execute(_pruned(variables, self.paths))


_TOKEN = re.compile(
    r"""\s*(?:(==|!=|<=|>=|<|>|&&|\|\||\(|\))|("[^"\\\n]*"|'[^'\\\n]*')"""
    r"|(\d+\.\d+|0|[1-9]\d*)(?![\w.])|([A-Za-z_]\w*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_INT64 = range(-(2**63), 2**63)
_MISSING = object()
_Node = tuple[Any, ...]


def _comparisons(flat_source: str, names: tuple[str, ...]) -> _Node | None:
    """``flat_source`` as a tree, when it is only ``name OP literal`` joined by && and ||.

    Literals: double-quoted or single-quoted text without escapes, integers, decimals
    with a point, true and false. Anything else (a function, a macro, ``in``, ``!``, a
    negative number, an escape) gives None: the expression is left to CEL.
    """
    tokens: list[tuple[str, Any]] = []
    at = 0
    text = flat_source.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            return None
        at = match.end()
        op, quoted, number, name = match.groups()
        if op is not None:
            tokens.append(("op", op))
        elif quoted is not None:
            tokens.append(("lit", quoted[1:-1]))
        elif number is not None:
            tokens.append(("lit", float(number) if "." in number else int(number)))
        elif name in ("true", "false"):
            tokens.append(("lit", name == "true"))
        elif name in names:
            tokens.append(("name", name))
        else:
            return None
    parsed = _parse_or(tokens, 0)
    return parsed[0] if parsed is not None and parsed[1] == len(tokens) else None


def _parse_or(tokens: list[tuple[str, Any]], at: int) -> tuple[_Node, int] | None:
    return _parse_joined(tokens, at, "||", _parse_and)


def _parse_and(tokens: list[tuple[str, Any]], at: int) -> tuple[_Node, int] | None:
    return _parse_joined(tokens, at, "&&", _parse_atom)


def _parse_joined(
    tokens: list[tuple[str, Any]],
    at: int,
    joiner: str,
    inner: Callable[[list[tuple[str, Any]], int], tuple[_Node, int] | None],
) -> tuple[_Node, int] | None:
    first = inner(tokens, at)
    if first is None:
        return None
    parts, at = [first[0]], first[1]
    while at < len(tokens) and tokens[at] == ("op", joiner):
        nxt = inner(tokens, at + 1)
        if nxt is None:
            return None
        parts.append(nxt[0])
        at = nxt[1]
    return (parts[0], at) if len(parts) == 1 else ((joiner, tuple(parts)), at)


def _parse_atom(tokens: list[tuple[str, Any]], at: int) -> tuple[_Node, int] | None:
    if at < len(tokens) and tokens[at] == ("op", "("):
        inner = _parse_or(tokens, at + 1)
        if inner is None or inner[1] >= len(tokens) or tokens[inner[1]] != ("op", ")"):
            return None
        return inner[0], inner[1] + 1
    if at + 3 > len(tokens):
        return None
    (kind, name), (op_kind, op), (lit_kind, literal) = tokens[at : at + 3]
    if kind != "name" or op_kind != "op" or op not in _COMPARE or lit_kind != "lit":
        return None
    return ("cmp", name, _COMPARE[op], literal, type(literal)), at + 3


def _decider(node: _Node, paths: dict[str, tuple[str, ...]]) -> _Decider:
    """The tree as a function of the variables: its answer, or None where CEL decides.

    None unless each value has its literal's type: one comparison CEL must decide leaves
    the whole expression to CEL, whatever the others say. Built once at compile: the
    paths are read from the variables directly, with no mapping of flat names between.
    """
    if node[0] == "cmp":
        _, name, compare, literal, kind = node
        return _comparison(_getter(paths[name]), compare, literal, kind)
    parts = tuple(_decider(part, paths) for part in node[1])
    unit: bool = node[0] == "&&"  # what each part says when it does not decide the join

    def decide(variables: dict[str, Any]) -> bool | None:
        answer = unit
        for part in parts:
            said = part(variables)
            if said is None:
                return None
            if said is not unit:
                answer = said
        return answer

    return decide


def _comparison(
    get: Callable[[Any], Any], compare: Callable[[Any, Any], bool], literal: Any, kind: type
) -> _Decider:
    """One ``path OP literal``; None for a missing path, another type, beyond CEL's int, NaN."""

    def decide(variables: dict[str, Any]) -> bool | None:
        value = get(variables)  # a missing path (_MISSING) is CEL's to report
        if type(value) is not kind or (kind is int and value not in _INT64) or value != value:
            return None  # another type, beyond CEL's int, or NaN (CEL refuses to order it)
        return bool(compare(value, literal))

    return decide


def _getter(path: tuple[str, ...]) -> Callable[[Any], Any]:
    """What ``path`` reaches through nested dicts, or _MISSING (see ``_reach``).

    A path of three names (``event.data.service``, what most conditions read) is walked
    without a loop, a third of the cost.
    """
    if len(path) == 3:
        first, second, third = path

        def get3(value: Any) -> Any:
            if isinstance(value, dict) and first in value:
                value = value[first]
                if isinstance(value, dict) and second in value:
                    value = value[second]
                    if isinstance(value, dict) and third in value:
                        return value[third]
            return _MISSING

        return get3
    return lambda value: _reach(value, path)


def _reach(value: Any, path: tuple[str, ...]) -> Any:
    """What ``path`` reaches through nested dicts from ``value``, or _MISSING."""
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _flattened(
    variables: dict[str, Any], paths: tuple[tuple[str, ...], ...], names: tuple[str, ...]
) -> dict[str, Any]:
    """Each path's value as one variable; a path the event lacks is left undeclared."""
    out: dict[str, Any] = {}
    for path, flat_name in zip(paths, names, strict=True):
        value = _reach(variables, path)
        if value is not _MISSING:
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
            tree = _comparisons(_flat_source(source), names)
            by_name = dict(zip(names, paths, strict=True))
            comparisons = None if tree is None else _decider(tree, by_name)
            return Expression(source, flat, paths, flat=True, flat_names=names,
                              comparisons=comparisons)  # fmt: skip
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
