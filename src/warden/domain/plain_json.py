"""Plain JSON: what a value must be to be stored, folded, hashed and audited. Pure core (domain).

RFC 8259 text may escape a lone surrogate (D800 to DFFF without its pair) and Python's
``json`` reads ``NaN``; neither can be written as UTF-8 canonical JSON (RFC 8785), so the
audit log could not hold an event that carries one. :func:`json_problem` finds such a
value, so the gate can refuse it with a reason before it is taken.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "envelope_problem",
    "json_problem",
    "printable",
    "scan_event",
    "valid_text",
]

MAX_DEPTH = 64
"""Nesting deeper than this is refused: every reader (fold, canonical JSON) recurses."""

MAX_INT_DIGITS = 4000
"""Integers longer than this are refused: Python will not spell one past 4300 digits."""

_MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))


def printable(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates and NUL spelled as escapes.

    For reasons and names quoted back to people and stored in text columns (PostgreSQL
    text holds no NUL).
    """
    cut = text if len(text) <= limit else text[:limit] + "..."
    return valid_text(cut).replace("\x00", "\\x00")


def valid_text(text: str) -> str:
    """``text`` itself when it is valid Unicode, else with each lone surrogate escaped."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _string_problem(text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        return (
            f"holds a lone surrogate \\u{ord(bad):04x} at character {exc.start}, which is not "
            "Unicode; send valid UTF-8 (a pair of surrogates, or the character itself)"
        )
    return None


def _key_path(path: str, key: str) -> str:
    return f"{path}.{printable(key, 40)}" if path else printable(key, 40)


def json_problem(value: Any, *, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """A part of ``value`` that is not plain JSON, as ``(path, problem)``; None if all is.

    Plain JSON is what survives every store, the fold and the canonical audit encoding
    unchanged in meaning: objects with string keys, arrays, strings that are valid
    Unicode, finite numbers, integers of at most :data:`MAX_INT_DIGITS` digits, booleans
    and null, nested at most ``max_depth`` deep. ``-0.0`` is plain (canonically ``0``).
    """
    if _surely_plain(value, 0, max_depth, [], []):
        return None
    # Paths are spelled only for the answer: a clean value (the usual case) never pays.
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), value, 0)]
    while stack:
        parts, item, depth = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if item.bit_length() > _MAX_INT_BITS:
                return _where(parts), (
                    f"an integer of over {MAX_INT_DIGITS} digits; send it as a string"
                )
        elif isinstance(item, float):
            if math.isnan(item) or math.isinf(item):
                return _where(parts), f"{item!r} is not a JSON number; send null or a string"
        elif isinstance(item, str):
            problem = _string_problem(item)
            if problem is not None:
                return _where(parts), problem
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return _where(parts), f"nested deeper than {max_depth} levels; flatten the data"
            if isinstance(item, dict):
                for key, inner in item.items():
                    if not isinstance(key, str):
                        return (
                            _where(parts),
                            f"has a key of type {type(key).__name__}; keys are strings",
                        )
                    problem = _string_problem(key)
                    if problem is not None:
                        return _where((*parts, key)), f"its key {problem}"
                    stack.append(((*parts, key), inner, depth + 1))
            else:
                stack.extend(((*parts, n), inner, depth + 1) for n, inner in enumerate(item))
        else:
            return _where(parts), f"a {type(item).__name__} is not JSON"
    return None


def _surely_plain(item: Any, depth: int, max_depth: int, texts: list[str], keys: list[str]) -> bool:
    """True for the common clean value (ASCII text, exact built-in types); False if unsure.

    A quick pass that answers as :func:`json_problem`'s full walk would for such values;
    anything else (non-ASCII text, subclasses, a problem) goes to the full walk. The
    strings and keys it passes go to ``texts`` and ``keys`` (all of them when True).
    """
    kind = type(item)
    if kind is str:
        texts.append(item)
        return bool(item.isascii())
    if kind is dict or kind is list:
        if depth >= max_depth:
            return False
        if kind is dict:
            keys.extend(item)
            for key, inner in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                if type(inner) is str:
                    texts.append(inner)
                    if not inner.isascii():
                        return False
                elif not _surely_plain(inner, depth + 1, max_depth, texts, keys):
                    return False
            return True
        return all(_surely_plain(inner, depth + 1, max_depth, texts, keys) for inner in item)
    if item is None or kind is bool:
        return True
    if kind is int:
        return bool(item.bit_length() <= _MAX_INT_BITS)
    if kind is float:
        return math.isfinite(item)
    return False


def _where(parts: tuple[str | int, ...]) -> str:
    """A place as json_problem names it: ``a.b[2].c``, or ``(root)``."""
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _key_path(path, part)
    return path or "(root)"


def envelope_problem(raw: dict[str, Any]) -> tuple[str, str] | None:
    """A top-level string attribute (id, type, subject, ...) holding NUL, or None.

    Those become store columns and stream names, and PostgreSQL text cannot hold NUL;
    inside ``data`` a NUL is fine (it is stored escaped).
    """
    for key, value in raw.items():
        if key != "data" and isinstance(value, str) and "\x00" in value:
            return _nul_problem(key)
    return None


def _nul_problem(key: str) -> tuple[str, str]:
    """The envelope's answer for an attribute ``key`` whose text holds a NUL."""
    return printable(key, 40), "holds a NUL character; remove it"


def scan_event(
    raw: dict[str, Any],
) -> tuple[tuple[str, str] | None, tuple[list[str], list[str]] | None]:
    """``json_problem(raw) or envelope_problem(raw)``, and the strings and keys of its data.

    What the gate first refuses, in one pass over a clean event's attributes (the usual
    case), which also gathers the strings and keys of ``raw["data"]`` for the secret
    scan; they are None where the pass was unsure.
    """
    if type(raw) is dict:
        nul: str | None = None
        texts: list[str] = []
        keys: list[str] = []
        others: list[str] = []
        for key, value in raw.items():
            if type(key) is not str or not key.isascii():
                break
            if type(value) is str:
                if not value.isascii():
                    break
                if key == "data":
                    texts.append(value)
                elif nul is None and "\x00" in value:
                    nul = key
            elif key == "data":
                if not _surely_plain(value, 1, MAX_DEPTH, texts, keys):
                    break
            elif not _surely_plain(value, 1, MAX_DEPTH, others, others):
                break
        else:
            problem = None if nul is None else _nul_problem(nul)
            return problem, ((texts, keys) if "data" in raw else None)
    return json_problem(raw) or envelope_problem(raw), None
