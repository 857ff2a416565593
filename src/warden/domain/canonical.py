"""Canonical JSON (RFC 8785, JCS) for hashing and signing. Pure core (domain)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def _number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError("canonical JSON cannot hold NaN or Infinity")
    if value == 0:
        return "0"
    # repr gives the shortest round-trip digits; re-spell them the ECMAScript way.
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    n = len(whole) + int(exponent or 0)  # value == 0.digits * 10**n
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def _encode(value: Any, out: list[str]) -> None:
    if value is None or value is True or value is False:
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, dict):
        out.append("{")
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        for i, key in enumerate(keys):
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON keys must be strings, not {type(key).__name__}")
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"canonical JSON cannot encode {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible value."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def content_hash(value: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``value``: the identity of a proposal or record."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
