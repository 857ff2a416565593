"""Reading ``warden.yaml``: UTF-8, duplicate keys, line marks, ``${VAR}`` and finite numbers. Shell.

:func:`read_document` turns bytes into plain data plus the line of every document path, so
that a schema error at ``services[0].argv`` can name line 12. The checks here are the ones
a schema cannot make: they see the text, the YAML nodes or the environment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["DocPath", "Document", "Problem", "format_path", "read_document"]

DocPath = tuple[str | int, ...]
"""A place in the document: mapping keys and list indices from the root."""

# libyaml's loader when PyYAML was built with it: the same documents and marks, ~10x faster.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_VALUES = 100_000
"""Values a file may hold, aliases expanded: far above any real configuration."""
MAX_DEPTH = 64
"""How deep a file may nest."""

_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Under `actions:` the HTTP adapter resolves ${VAR} in header values at each call (secrets
# never enter the configuration) and refuses it elsewhere, so load leaves that section alone.
_LEFT_ALONE = "actions"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake at a place in the document, with what to write instead."""

    path: DocPath
    message: str


@dataclass(frozen=True, slots=True)
class Document:
    """The parsed data and the 1-based line of each path (a key's line for a mapping value)."""

    data: Any
    lines: Mapping[DocPath, int] = field(default_factory=dict)

    def line_of(self, path: DocPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing place the file has."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def format_path(path: DocPath) -> str:
    """``('services', 0, 'argv')`` as ``services[0].argv``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_document(raw: bytes, label: str, env: Mapping[str, str]) -> tuple[Document, list[Problem]]:
    """Decode, parse and check ``raw``; ``${VAR}`` references are replaced from ``env``.

    Returns:
        The document, and the problems a schema cannot see: duplicate keys, unset
        variables, NaN or infinite numbers.

    Raises:
        ConfigError: The bytes are not UTF-8 or not YAML (nothing further can be checked).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config error: {label}: not UTF-8 text (byte {exc.start}:"
            f" {raw[exc.start : exc.start + 1]!r}); save the file as UTF-8"
        ) from None
    lines: dict[DocPath, int] = {}
    problems: list[Problem] = []
    try:
        # The reader refuses control characters as soon as it is made, so inside the try.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                try:
                    _walk(node, (), lines, problems, [MAX_VALUES])
                except ConfigError as exc:
                    raise ConfigError(f"config error: {label}: {exc}") from None
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label} line {mark.line + 1}" if mark is not None else label
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"config error: {where}: not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        one_line = " ".join(str(exc).split())
        raise ConfigError(f"config error: {label}: not valid YAML: {one_line}") from None
    except RecursionError:
        raise ConfigError(f"config error: {label}: nested too deeply to read; flatten it") from None
    data, unset = _interpolate(data, (), env)
    problems.extend(unset)
    problems.extend(
        Problem(path, "NaN and infinite numbers are not allowed; give a finite number")
        for path in _non_finite(data, ())
    )
    return Document(data, lines), problems


def check_data(data: Any, env: Mapping[str, str]) -> tuple[Any, list[Problem]]:
    """Interpolate and check already parsed data (no line marks, no duplicate keys to see)."""
    data, problems = _interpolate(data, (), env)
    problems.extend(
        Problem(path, "NaN and infinite numbers are not allowed; give a finite number")
        for path in _non_finite(data, ())
    )
    return data, problems


def _walk(
    node: yaml.Node,
    path: DocPath,
    lines: dict[DocPath, int],
    out: list[Problem],
    budget: list[int],
) -> None:
    # Aliases repeat a node without copying it; counting visits bounds what they expand to.
    budget[0] -= 1
    if budget[0] < 0 or len(path) > MAX_DEPTH:
        raise ConfigError(
            f"{format_path(path)}: the file holds more than {MAX_VALUES} values"
            f" or nests deeper than {MAX_DEPTH} (counting what &anchors and *aliases repeat);"
            " simplify it"
        )
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            here = (*path, _key(key))
            line = key.start_mark.line + 1
            if key.value in seen:
                out.append(
                    Problem(
                        here,
                        f"the key {key.value!r} is given twice (lines {seen[key.value]} and"
                        f" {line}); keep one",
                    )
                )
            else:
                seen[key.value] = line
                lines[here] = line
            _walk(value, here, lines, out, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, out, budget)


def _key(node: yaml.ScalarNode) -> str | int:
    # Plain integer keys are constructed as int; the path must match what the data holds.
    if node.tag == "tag:yaml.org,2002:int":
        try:
            return int(node.value)
        except ValueError:
            return str(node.value)
    return str(node.value)


def _interpolate(value: Any, path: DocPath, env: Mapping[str, str]) -> tuple[Any, list[Problem]]:
    if isinstance(value, str):
        return _substitute(value, path, env)
    problems: list[Problem] = []
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if not path and key == _LEFT_ALONE:
                out[key] = item
                continue
            out[key], found = _interpolate(item, (*path, key), env)
            problems.extend(found)
        return out, problems
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            made, found = _interpolate(item, (*path, index), env)
            items.append(made)
            problems.extend(found)
        return items, problems
    return value, problems


def _substitute(text: str, path: DocPath, env: Mapping[str, str]) -> tuple[str, list[Problem]]:
    if "$" not in text:
        return text, []
    problems: list[Problem] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is not None and (value or default is None):
            return value
        if default is not None:
            return default
        problems.append(
            Problem(
                path,
                f"${{{name}}} is not set; export it, or give a default: ${{{name}:-value}}"
                " ($$ writes a literal $)",
            )
        )
        return match.group(0)

    return _REFERENCE.sub(replace, text), problems


def _non_finite(value: Any, path: DocPath) -> Iterator[DocPath]:
    if isinstance(value, float) and not math.isfinite(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, (*path, index))
