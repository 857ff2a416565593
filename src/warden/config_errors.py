"""Schema errors in Warden's words: the file's line, the document path, the fault, the fix. Shell.

pydantic reports every error at once with its location; :func:`schema_problems` turns each
into a :class:`~warden.config_yaml.Problem`, and :func:`config_error` lists them, one line each.
"""

from __future__ import annotations

import re
import types
import typing
from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel, Tag

from warden.agents.model import DEFAULT_API_KEY_ENV
from warden.config_schema import RELATIVE
from warden.config_yaml import DocPath, Document, Problem, format_path
from warden.domain.errors import ConfigError, closest

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["MAX_SHOWN", "config_error", "schema_problems"]

MAX_SHOWN = 20
"""Errors listed; past it, a count of the rest."""

_SECRET_KEY = re.compile(r"key|token|secret|password", re.IGNORECASE)
_PLACED = re.compile(r"(?:config error: )?([\w\-]+(?:[.\[][\w\-\]]*)*): (.+)", re.DOTALL)


def schema_problems(error: ValidationError, data: Any, root: type[BaseModel]) -> list[Problem]:
    """Each of pydantic's errors as a problem at its place in ``data``."""
    found: list[Problem] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        path = _doc_path(data, loc)
        problem = _problem(item, path, loc, root)
        if problem not in found:
            found.append(problem)
    return found


def config_error(problems: list[Problem], document: Document | None, label: str) -> ConfigError:
    """One ConfigError listing every problem (the first :data:`MAX_SHOWN`), one per line."""
    lines = []
    for problem in problems[:MAX_SHOWN]:
        where = label
        line = document.line_of(problem.path) if document is not None else None
        if line is not None:
            where = f"{label} line {line}" if label else f"line {line}"
        place = format_path(problem.path) or "the file"
        head = f"config error: {where}: " if where else "config error: "
        lines.append(f"{head}{place}: {problem.message}")
    if len(problems) > MAX_SHOWN:
        lines.append(f"config error: ... and {len(problems) - MAX_SHOWN} more")
    return ConfigError("\n".join(lines))


def _doc_path(data: Any, loc: tuple[str | int, ...]) -> DocPath:
    """The location without union tags and branch names: only what the file holds."""
    out: list[str | int] = []
    here: Any = data
    for index, part in enumerate(loc):
        if isinstance(here, dict) and part in here:  # noqa: SIM114 (mypy narrows apart)
            out.append(part)
            here = here[part]
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            out.append(part)
            here = here[part]
        elif index == len(loc) - 1 and isinstance(here, dict) and not _is_tag(part):
            out.append(part)  # a missing key
    return tuple(out)


def _is_tag(part: str | int) -> bool:
    return isinstance(part, str) and part.startswith("(") and part.endswith(")")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(
    item: Any, path: DocPath, loc: tuple[str | int, ...], root: type[BaseModel]
) -> Problem:
    kind: str = item["type"]
    given = item.get("input")
    ctx = item.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        if path[:1] == ("model",) and _SECRET_KEY.search(key):
            return Problem(
                path,
                "never put the API key in the configuration file; export it in the"
                f" environment variable named by model.api_key_env (default {DEFAULT_API_KEY_ENV})",
            )
        known = _known_keys(root, loc[:-1])
        hint = _key_hint(root, loc[:-1], key)
        return Problem(path, f"unknown key {key!r}{hint}; known: {', '.join(known)}")
    if kind in ("invalid", "value_error") or kind not in _MESSAGES:
        return _placed(path, str(item["msg"]).removeprefix("Value error, "))
    return Problem(path, _MESSAGES[kind](given, ctx, path))


def _placed(path: DocPath, reason: str) -> Problem:
    """A sub-parser's ``a.b: fix`` said at ``a.b``: absolute from a section, else under ``path``."""
    reason = reason.removeprefix("config error: ")
    match = _PLACED.fullmatch(reason)
    if match is None:
        return Problem(path, reason)
    inner, rest = match.groups()
    if inner == RELATIVE or inner.startswith(RELATIVE + "."):
        return Problem((*path, *_parse_path(inner.removeprefix(RELATIVE))), rest)
    if path and _parse_path(inner)[:1] == path[:1]:
        return Problem(_parse_path(inner), rest)
    return Problem((*path, *_parse_path(inner)), rest)


def _parse_path(text: str) -> DocPath:
    parts: list[str | int] = []
    for piece in re.findall(r"[^.\[\]]+|\[\d+\]", text):
        parts.append(int(piece[1:-1]) if piece.startswith("[") else piece)
    return tuple(parts)


_MISSING: dict[DocPath, str] = {
    ("services",): "list at least one service to watch",
    ("health",): "required; give http(s)://host/path of the health endpoint, tcp://host:port,"
    " or {command: [program, arg, ...]} (exit code 0 is healthy)",
    ("endpoint",): "the URL of an OpenAI-compatible endpoint is required"
    " (e.g. http://127.0.0.1:8000/v1)",
}


def _choices(ctx: Any) -> str:
    return ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))


def _literal(given: Any, ctx: Any, path: DocPath) -> str:
    if str(ctx.get("expected")) == "False":
        return f"expected false (off) or a mapping, got {_shown(given)}"
    return f"{_shown(given)} is not one of {_choices(ctx)}"


def _bound(word: str, key: str) -> Any:
    def say(given: Any, ctx: Any, path: DocPath) -> str:
        bound = ctx.get(key)
        if isinstance(given, int) and not isinstance(given, bool) and isinstance(bound, int):
            sign = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}[key]
            return f"expected a whole number {sign} {bound}, got {given!r}"
        return f"{given!r} is out of range; use a value {word} {bound}"

    return say


def _short(given: Any, ctx: Any, path: DocPath) -> str:
    if path == ("services",):
        return "list at least one service to watch"
    if isinstance(given, str):
        return "must not be empty"
    return f"give at least {ctx.get('min_length', 1)}"


def _expected(what: str) -> Any:
    return lambda given, ctx, path: f"expected {what}, got {_shown(given)}"


_MESSAGES: dict[str, Any] = {
    "missing": lambda given, ctx, path: _MISSING.get(path[-1:], "required; add it"),
    "literal_error": _literal,
    "int_type": _expected("a whole number"),
    "int_from_float": _expected("a whole number"),
    "float_type": _expected("a number"),
    "bool_type": _expected("true or false"),
    "string_type": _expected("text (quote it)"),
    "list_type": _expected("a list, e.g. [a, b]"),
    "dict_type": _expected("a mapping of keys to values"),
    "model_type": _expected("a mapping of keys to values"),
    "model_attributes_type": _expected("a mapping of keys to values"),
    "greater_than_equal": _bound("at least", "ge"),
    "greater_than": _bound("above", "gt"),
    "less_than_equal": _bound("at most", "le"),
    "less_than": _bound("below", "lt"),
    "too_short": _short,
    "string_too_short": _short,
    "string_pattern_mismatch": lambda given, ctx, path: "must not be blank",
    "finite_number": lambda given, ctx, path: (
        "NaN and infinite numbers are not allowed; give a finite number"
    ),
}


def _key_hint(root: type[BaseModel], loc: tuple[str | int, ...], key: str) -> str:
    """The did-you-mean of an unknown key: a key of this section, or of a section inside it.

    ``command`` typed beside ``health`` instead of in it is ``health.command``, not the
    sibling ``domain`` that merely looks alike: the sections inside are searched too, and
    the closer name wins (a sibling on a tie).
    """
    siblings = _known_keys(root, loc)
    inside: dict[str, str] = {}
    for section in siblings:
        for inner in _known_keys(root, (*loc, section)):
            inside.setdefault(inner, f"{section}.{inner}")
    near = closest(key, siblings)
    nested = closest(key, inside)
    best = closest(key, [n for n in (near, nested) if n is not None])
    if best is None:
        return ""
    if best == nested and best != near:
        return f" (did you mean {inside[best]!r}?)"
    return f" (did you mean {best!r}?)"


def _known_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model at ``loc`` takes (for "did you mean")."""
    here: Any = root
    for part in loc:
        here = _step(here, part)
        if here is None:
            return []
    models = [m for m in _members(here) if isinstance(m, type) and issubclass(m, BaseModel)]
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


def _members(kind: Any) -> list[Any]:
    """``kind`` without Annotated and Optional: the types it may be."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _members(typing.get_args(kind)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(kind) for m in _members(arg) if m is not type(None)]
    return [kind]


def _step(kind: Any, part: str | int) -> Any:
    if _is_tag(part):
        for arg in typing.get_args(_unannotated(kind)):
            meta = typing.get_args(arg)[1:] if typing.get_origin(arg) is typing.Annotated else ()
            if any(isinstance(m, Tag) and m.tag == part for m in meta):
                return typing.get_args(arg)[0]
        return kind
    for member in _members(kind):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for name, field in member.model_fields.items():
                if part in (name, field.alias):
                    return field.annotation
            continue
        origin = typing.get_origin(member)
        if origin is list and isinstance(part, int):
            return typing.get_args(member)[0]
        if origin is dict:
            return typing.get_args(member)[1]
    return None


def _unannotated(kind: Any) -> Any:
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    # Optional[tagged union]: the union is the first non-None member.
    if typing.get_origin(kind) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(inner) == 1:
            return _unannotated(inner[0])
    return kind
