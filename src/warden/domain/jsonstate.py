"""Folded state as JSON values and back, exactly: dataclasses, enums, tuples, deques. Pure core.

A snapshot keeps what a fold built, so that a restart resumes from it; the state must come
back equal, not merely similar, down to the order of a dict's keys (what a fold
iterates over decides). Strings, numbers, bools and null stand for themselves, and a
JSON list for a tuple (frozen state is mostly tuples); anything else is an object tagged
with a ``"~"`` key: ``{"~": "list", "v": [...]}``, ``{"~": "dict", "v": [[key, value],
...]}``, ``{"~": "dc", "c": "module:Class", "v": {...}}`` for a dataclass, and so on.
A dataclass or enum is rebuilt only from a module already imported under an allowed
prefix, field for field, without running its ``__init__``: the values are those it held,
not new ones derived from them.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any

TAG = "~"
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class Memo:
    """Encodings of frozen dataclasses from the last call, reused while they are unchanged.

    A fold replaces what changes and keeps the rest, so most of a large state is the very
    same objects as at the previous snapshot; their encoding is looked up, not redone.
    """

    def __init__(self) -> None:
        self._previous: dict[int, tuple[Any, Any]] = {}
        self._current: dict[int, tuple[Any, Any]] = {}

    def get(self, value: Any) -> Any:
        """The encoding of ``value`` if it was encoded last time (None otherwise)."""
        found = self._previous.get(id(value))
        if found is None or found[0] is not value:
            return None
        self._current[id(value)] = found
        return found[1]

    def put(self, value: Any, encoded: Any) -> None:
        """Remember ``encoded`` for ``value`` (kept alive, so its id is not reused)."""
        self._current[id(value)] = (value, encoded)

    def rotate(self) -> None:
        """End one encoding: only what it used is kept for the next."""
        self._previous, self._current = self._current, {}


def to_json(value: Any, memo: Memo | None = None) -> Any:
    """``value`` as JSON values that :func:`from_json` turns back into an equal value.

    Raises:
        TypeError: ``value`` holds something this encoding does not know (a function, a
            lock, an instance of a plain class).
    """
    encoded = _encode(value, memo)
    if memo is not None:
        memo.rotate()
    return encoded


def _encode(value: Any, memo: Memo | None) -> Any:
    if isinstance(value, Enum):  # before str and int: a StrEnum is a str too
        return {TAG: "enum", "c": _path(type(value)), "v": _encode(value.value, memo)}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
    if isinstance(value, tuple):
        return [_encode(v, memo) for v in value]
    if isinstance(value, list):
        return {TAG: "list", "v": [_encode(v, memo) for v in value]}
    if isinstance(value, dict):  # pairs: a store writes objects with sorted keys
        return {TAG: "dict", "v": [[_encode(k, memo), _encode(v, memo)] for k, v in value.items()]}
    if is_dataclass(value) and not isinstance(value, type):
        return _encode_dataclass(value, memo)
    if isinstance(value, deque):
        return {TAG: "deque", "v": [_encode(v, memo) for v in value], "max": value.maxlen}
    if isinstance(value, frozenset | set):
        kind = "frozenset" if isinstance(value, frozenset) else "set"
        return {TAG: kind, "v": [_encode(v, memo) for v in value]}
    if isinstance(value, datetime):
        return {TAG: "datetime", "v": value.isoformat(), "fold": value.fold}
    if isinstance(value, timedelta):
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    raise TypeError(f"a {type(value).__qualname__} cannot be kept in a snapshot")


def _encode_dataclass(value: Any, memo: Memo | None) -> Any:
    frozen = type(value).__dataclass_params__.frozen
    if memo is not None and frozen:
        known = memo.get(value)
        if known is not None:
            return known
    encoded = {
        TAG: "dc",
        "c": _path(type(value)),
        "v": {f.name: _encode(getattr(value, f.name), memo) for f in fields(value)},
    }
    if memo is not None and frozen:
        memo.put(value, encoded)
    return encoded


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def from_json(value: Any, modules: tuple[str, ...] = ("warden.",), memo: Memo | None = None) -> Any:
    """The value :func:`to_json` encoded.

    Args:
        value: JSON values, as :func:`to_json` wrote them.
        modules: prefixes of the modules a dataclass or an enum may come from.
        memo: remembers the frozen dataclasses made with the values they came from, so
            the next :func:`to_json` with it does not encode them again.

    Raises:
        ValueError: ``value`` names a class that is not there (not imported, not allowed,
            not a dataclass or enum) or whose fields are not the ones it holds now: the
            state was kept by another version of the code.
    """
    decoded = _decode(value, modules, memo)
    if memo is not None:
        memo.rotate()
    return decoded


def _decode(value: Any, modules: tuple[str, ...], memo: Memo | None) -> Any:
    if isinstance(value, list):
        return tuple([_decode(v, modules, memo) for v in value])
    if not isinstance(value, dict):
        return value
    kind = value.get(TAG)
    items: Any = value.get("v")
    if kind == "dc":
        return _decode_dataclass(value, modules, memo)
    if kind == "dict":
        return {_decode(k, modules, memo): _decode(v, modules, memo) for k, v in items}
    if kind == "list":
        return [_decode(v, modules, memo) for v in items]
    if kind == "enum":
        return _class(value["c"], modules, Enum)(_decode(items, modules, memo))
    if kind == "deque":
        return deque((_decode(v, modules, memo) for v in items), value.get("max"))
    if kind in ("set", "frozenset"):
        made = (_decode(v, modules, memo) for v in items)
        return frozenset(made) if kind == "frozenset" else set(made)
    if kind == "datetime":
        return datetime.fromisoformat(items).replace(fold=value.get("fold", 0))
    if kind == "timedelta":
        days, seconds, microseconds = items
        return timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if kind == "float":
        return _FLOATS[items]
    raise ValueError(f"unknown tag {kind!r} in a kept state")


def _decode_dataclass(value: dict[str, Any], modules: tuple[str, ...], memo: Memo | None) -> Any:
    path, values = value["c"], value["v"]
    cls = _class(path, modules, None)
    names = _field_names(cls)
    if len(names) != len(values) or any(name not in values for name in names):
        raise ValueError(
            f"{path} has the fields {', '.join(names)} now; the kept state has {', '.join(values)}"
        )
    made = object.__new__(cls)
    for name in names:
        # object.__setattr__ fills frozen and slotted dataclasses as their __init__ does.
        object.__setattr__(made, name, _decode(values[name], modules, memo))
    if memo is not None and cls.__dataclass_params__.frozen:
        memo.put(made, value)
    return made


@lru_cache(maxsize=512)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@lru_cache(maxsize=512)
def _class(path: str, modules: tuple[str, ...], base: type | None) -> Any:
    module_name, _, qualname = path.partition(":")
    if not module_name.startswith(modules):
        raise ValueError(f"{path}: classes are rebuilt only from {', '.join(modules)}")
    module = sys.modules.get(module_name)
    if module is None:
        raise ValueError(f"{path}: module {module_name} is not imported")
    found: Any = module
    for part in qualname.split("."):
        found = vars(found).get(part)
        if found is None:
            raise ValueError(f"{path}: no such class")
    wanted = is_dataclass(found) if base is None else issubclass(found, base)
    if not isinstance(found, type) or not wanted:
        raise ValueError(f"{path} is not a {'dataclass' if base is None else base.__name__}")
    return found


__all__ = ["TAG", "Memo", "from_json", "to_json"]
