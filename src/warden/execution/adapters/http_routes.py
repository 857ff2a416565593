"""HTTP routes: how an action maps to a request and a check, validated when built. Action plane.

Used by `warden.execution.adapters.http`, which sends them.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from warden.domain.errors import ConfigError
from warden.execution.adapters.templates import json_template_names, template_names

__all__ = ["METHODS", "SECRET_REFERENCE", "HttpCheck", "HttpRoute"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SECRET_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${ENV_NAME}``: a secret read from the environment at call time (header values only)."""

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _request_problem(url: str, headers: Mapping[str, str], timeout_s: float) -> str:
    """What is wrong with a URL template, headers or timeout; empty when nothing is."""
    if not isinstance(url, str):
        return f"url: expected a URL template string, got {type(url).__name__}"
    if SECRET_REFERENCE.search(url):
        return (
            "url: ${...} secret references are allowed in header values only; URLs end up"
            " in logs and results (move the secret into a header)"
        )
    try:
        template_names(url)
    except ConfigError as exc:
        return f"url: {exc}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return (
            f"url: {url!r} is not an http(s) URL template; write e.g. https://host/api/{{target}}"
        )
    if not isinstance(headers, Mapping):
        return "headers: expected a mapping of header names to values"
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            return f"headers: {name!r} is not a valid header name"
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            return f"headers.{name}: expected a one-line string (use ${{ENV_NAME}} for secrets)"
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
        return f"timeout_s: {timeout_s!r} is not a positive number of seconds"
    return ""


def _statuses_problem(label: str, statuses: Any) -> str:
    if not isinstance(statuses, tuple) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
    ):
        return f"{label}: expected a list of HTTP status codes (100-599), got {statuses!r}"
    return ""


def _statuses(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return tuple(value) if isinstance(value, list | tuple) else value


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """A GET that tells whether an action's effect holds (used to reconcile after a crash).

    Attributes:
        url: URL template, like `HttpRoute.url`.
        headers: Header templates, like `HttpRoute.headers`.
        timeout_s: Socket timeout of the request.
        statuses: Statuses where the effect may hold; then ``expect`` decides.
        absent_statuses: Statuses that say the effect does not hold.
        expect: A JSON template the response body must contain (as a subset) for the
            effect to hold; None means the status alone decides.
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    timeout_s: float = 5.0
    statuses: tuple[int, ...] = (200,)
    absent_statuses: tuple[int, ...] = (404, 410)
    expect: Any = field(default=None, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "statuses", _statuses(self.statuses))
        object.__setattr__(self, "absent_statuses", _statuses(self.absent_statuses))
        problem = (
            _request_problem(self.url, self.headers, self.timeout_s)
            or _statuses_problem("statuses", self.statuses)
            or _statuses_problem("absent_statuses", self.absent_statuses)
            or _json_problem("expect", self.expect)
        )
        if problem:
            raise ConfigError(f"config error: {problem}")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "expect", _frozen_json(self.expect))


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """How one action is run over HTTP.

    Attributes:
        url: URL template; ``{target}`` and ``{param}`` values are URL-quoted.
        method: GET, POST, PUT, PATCH or DELETE.
        headers: Header values; ``${ENV_NAME}`` is replaced by that environment variable
            at call time (never logged, never returned).
        body: JSON template sent as the request body, or None for no body.
        timeout_s: Socket timeout of the request.
        expect_status: Statuses that mean success; empty means any 2xx.
        check: How to tell whether the effect holds, or None when it cannot be told.
    """

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    body: Any = field(default=None, hash=False)
    timeout_s: float = 10.0
    expect_status: tuple[int, ...] = ()
    check: HttpCheck | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "expect_status", _statuses(self.expect_status))
        method = self.method.upper() if isinstance(self.method, str) else self.method
        problem = _request_problem(self.url, self.headers, self.timeout_s) or _statuses_problem(
            "expect_status", self.expect_status
        )
        if not problem and method not in METHODS:
            problem = f"method: {self.method!r} is not supported; use one of {', '.join(METHODS)}"
        if not problem:
            problem = _json_problem("body", self.body)
        if not problem and self.check is not None and not isinstance(self.check, HttpCheck):
            problem = "check: expected an HttpCheck"
        if problem:
            raise ConfigError(f"config error: {problem}")
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "body", _frozen_json(self.body))


def _json_problem(label: str, template: Any) -> str:
    try:
        text = json.dumps(template)
        json_template_names(template)
    except (TypeError, ValueError) as exc:
        return f"{label}: not a JSON template ({exc})"
    except ConfigError as exc:
        return f"{label}: {exc}"
    if SECRET_REFERENCE.search(text):
        return f"{label}: ${{...}} secret references are allowed in header values only"
    return ""


def _frozen_json(template: Any) -> Any:
    """A private copy, so later changes to the caller's dict cannot alter the route."""
    return json.loads(json.dumps(template))
