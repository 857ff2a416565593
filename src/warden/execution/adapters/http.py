"""HTTP adapter: runs actions as HTTP calls to a target's API (standard library). Action plane.

Secrets are ``${ENV}`` references in header values, resolved at call time; their values
are redacted from every detail and body this module returns. Results follow the
convention in `warden.execution.adapters.registry`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConfigError
from warden.execution.adapters.registry import (
    RunStatistics,
    RunTally,
    failed,
    json_template_names,
    render_json,
    render_text,
    template_names,
)
from warden.ports import ActionResult, Clock, SystemClock

if TYPE_CHECKING:
    from datetime import datetime
    from email.message import Message

__all__ = ["RETRYABLE_STATUSES", "HttpActionAdapter", "HttpCheck", "HttpRoute", "retry_after_s"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""Statuses worth retrying besides every 5xx."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
REDACTED = "[REDACTED]"

_SECRET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_USER_AGENT = "warden-action-adapter"
_UNSENDABLE = re.compile(r"[\r\n\x00]|[^\x00-\xff]")


def _request_problem(url: str, headers: Mapping[str, str], timeout_s: float) -> str:
    """What is wrong with a URL template, headers or timeout; empty when nothing is."""
    if not isinstance(url, str):
        return f"url: expected a URL template string, got {type(url).__name__}"
    if _SECRET.search(url):
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
    if _SECRET.search(text):
        return f"{label}: ${{...}} secret references are allowed in header values only"
    return ""


def _frozen_json(template: Any) -> Any:
    """A private copy, so later changes to the caller's dict cannot alter the route."""
    return json.loads(json.dumps(template))


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date).

    Returns:
        The delay, never negative; None when the header is absent or unreadable.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: a redirected POST would silently become a GET."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> None:
        return None


class _Redactor:
    """Replaces the secret values resolved for one call wherever text leaves the adapter."""

    def __init__(self, secrets: list[str]) -> None:
        forms = set(secrets)
        for secret in secrets:  # as repr() shows them inside error messages
            forms.add(repr(secret)[1:-1])
            forms.add(repr(secret.encode("utf-8", "backslashreplace"))[2:-1])
        self._secrets = sorted((f for f in forms if f), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    reason: str
    headers: Message | None
    body: bytes
    truncated: bool


class HttpActionAdapter:
    """Runs configured actions as HTTP requests; safe to call again with the same arguments.

    The step's ``idempotency_key`` param, when present, is sent as ``Idempotency-Key`` so
    that the target can drop a repeated request. 2xx (or the route's ``expect_status``)
    is success; 408, 425, 429, 5xx, timeouts and connection errors are retryable (with
    the ``Retry-After`` delay when given); other statuses, including redirects, which
    are never followed, are permanent.
    """

    def __init__(
        self,
        routes: Mapping[str, HttpRoute],
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        max_body_bytes: int = 4096,
    ) -> None:
        """Create an adapter; nothing is sent yet.

        Args:
            routes: Action name -> how to run it.
            env: Where ``${ENV}`` secrets are read at each call; ``os.environ`` by default.
            clock: Reference time for ``Retry-After`` dates; the system clock by default.
            max_body_bytes: How much of a response body is kept in the result.
        """
        for name, route in routes.items():
            if not isinstance(route, HttpRoute):
                raise ConfigError(f"config error: {name}: expected an HttpRoute")
        self._routes = dict(routes)
        self._env = env if env is not None else os.environ
        self._clock: Clock = clock or SystemClock()
        self._max_body_bytes = max_body_bytes
        self._opener = urllib.request.build_opener(_NoRedirect())
        self._tally = RunTally()

    def __repr__(self) -> str:
        return f"HttpActionAdapter(actions={self.actions()!r})"

    def actions(self) -> list[str]:
        """The action names this adapter runs."""
        return list(self._routes)

    def statistics(self) -> RunStatistics:
        """Counts of runs by outcome, and of checks."""
        return self._tally.snapshot()

    # -- the ActionAdapter port ------------------------------------------------------

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Send the action's request and classify the answer.

        Returns:
            ``ok=True`` with ``status``, ``body`` (and ``json`` when the body parses) in
            the output; otherwise a failed result with ``retryable`` and ``retry_after_s``.
        """
        return self._tally.ran(self._run(action, target, params))

    def check(
        self, action: str, target: str, params: Mapping[str, Any] | None = None
    ) -> bool | None:
        """Whether the action's effect holds, by the route's check request.

        Returns:
            True or False when the check answered clearly; None for an action without a
            check, params the check needs but were not given, or a check that failed.
        """
        self._tally.checked()
        route = self._routes.get(action)
        if route is None or route.check is None:
            return None
        check = route.check
        values = _values(action, target, params or {})
        try:
            url = render_text(check.url, values, _quote)
            expect = render_json(check.expect, values)
        except KeyError:
            return None
        headers, unusable, redact = self._headers(check.headers, values)
        if unusable:
            return None
        try:
            response = self._send("GET", url, headers, None, check.timeout_s)
        except (OSError, ValueError, http.client.HTTPException):
            return None
        if response.status in check.absent_statuses:
            return False
        if response.status not in check.statuses:
            return None
        if check.expect is None:
            return True
        if response.truncated:
            return None
        try:
            found = json.loads(redact(response.body.decode("utf-8", errors="replace")))
        except ValueError:
            return None
        return _contains(found, expect)

    # -- internals -------------------------------------------------------------------

    def _run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        route = self._routes.get(action)
        if route is None:
            return failed(
                f"unknown action {action!r} (known: {', '.join(self._routes) or 'none'})",
                retryable=False,
            )
        values = _values(action, target, params)
        try:
            url = render_text(route.url, values, _quote)
            body = render_json(route.body, values)
        except KeyError as exc:
            return failed(
                f"{action}: the request template needs param {exc.args[0]!r}, which the step"
                " does not give",
                retryable=False,
            )
        headers, unusable, redact = self._headers(route.headers, values)
        if unusable:
            return failed(f"{action}: {unusable}", retryable=False)
        key = params.get("idempotency_key")
        if isinstance(key, str) and key and IDEMPOTENCY_HEADER.lower() not in _lower(headers):
            headers[IDEMPOTENCY_HEADER] = key
        data: bytes | None = None
        if route.body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            if "content-type" not in _lower(headers):
                headers["Content-Type"] = "application/json"
        shown = f"{route.method} {_display_url(url)}"
        try:
            response = self._send(route.method, url, headers, data, route.timeout_s)
        except TimeoutError:
            return failed(
                f"{shown}: no answer within {route.timeout_s:g} s; the request may have been"
                " applied, a retry sends the same Idempotency-Key",
                retryable=True,
            )
        except ssl.SSLCertVerificationError as exc:
            return failed(redact(f"{shown}: TLS certificate refused ({exc})"), retryable=False)
        except (OSError, http.client.HTTPException) as exc:
            return failed(
                redact(f"{shown}: cannot reach the target ({_reason(exc)})"), retryable=True
            )
        except ValueError as exc:
            return failed(redact(f"{shown}: cannot send the request ({exc})"), retryable=False)
        return self._classify(route, shown, response, redact)

    def _headers(
        self, templates: Mapping[str, str], values: Mapping[str, Any]
    ) -> tuple[dict[str, str], str, _Redactor]:
        """Headers with secrets resolved, why they cannot be sent ("" if they can), a redactor.

        The reason names the variable, never its value.
        """
        resolved: list[str] = []
        problems: list[str] = []

        def secret(match: re.Match[str]) -> str:
            name = match.group(1)
            value = self._env.get(name)
            if value is None:
                problems.append(
                    f"secret ${{{name}}} is not set; export {name} for the Warden process"
                )
                return ""
            resolved.append(value)
            if _UNSENDABLE.search(value):
                problems.append(
                    f"secret ${{{name}}} holds a line break or a non-Latin-1 character;"
                    f" fix the value of {name}"
                )
            return value

        headers = {"User-Agent": _USER_AGENT}
        for name, template in templates.items():
            headers[name] = _SECRET.sub(secret, template)
        return headers, (problems[0] if problems else ""), _Redactor(resolved)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | None,
        timeout_s: float,
    ) -> _Response:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        limit = self._max_body_bytes
        try:
            with self._opener.open(request, timeout=timeout_s) as resp:
                body = resp.read(limit + 1)
                return _Response(
                    resp.status, resp.reason, resp.headers, body[:limit], len(body) > limit
                )
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read(limit + 1) if exc.fp is not None else b""
                return _Response(
                    exc.code, str(exc.reason), exc.headers, body[:limit], len(body) > limit
                )
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, OSError):
                raise exc.reason from exc
            raise

    def _classify(
        self, route: HttpRoute, shown: str, response: _Response, redact: _Redactor
    ) -> ActionResult:
        status = response.status
        text = redact(response.body.decode("utf-8", errors="replace"))
        output: dict[str, Any] = {"status": status, "body": text}
        if response.truncated:
            output["body_truncated"] = True
        else:
            with contextlib.suppress(ValueError):
                output["json"] = json.loads(text)
        said = f"{shown} -> {status} {response.reason}".rstrip()
        ok = status in route.expect_status if route.expect_status else 200 <= status < 300
        if ok:
            return ActionResult(ok=True, detail=said, output=output)
        if status in RETRYABLE_STATUSES or 500 <= status < 600:
            header = response.headers.get("Retry-After") if response.headers else None
            delay = retry_after_s(header, self._clock.now())
            wait = f"; retry after {delay:g} s" if delay is not None else ""
            return failed(f"{said}{wait}", retryable=True, retry_after_s=delay, output=output)
        if 300 <= status < 400:
            location = response.headers.get("Location") if response.headers else None
            if location:
                output["location"] = redact(location)
            return failed(
                f"{said}: redirects are not followed; fix the URL", retryable=False, output=output
            )
        if 200 <= status < 300:
            expected = ", ".join(map(str, route.expect_status))
            return failed(f"{said}: expected {expected}", retryable=False, output=output)
        return failed(f"{said}: not retried", retryable=False, output=output)


def _values(action: str, target: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return {**params, "target": target, "action": action}


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _lower(headers: Mapping[str, str]) -> set[str]:
    return {name.lower() for name in headers}


def _display_url(url: str) -> str:
    """The URL without user info, which may hold a password."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _contains(found: Any, expected: Any) -> bool:
    """Whether ``found`` holds ``expected``: dict keys as a subset, anything else equal."""
    if isinstance(expected, dict):
        return isinstance(found, dict) and all(
            k in found and _contains(found[k], v) for k, v in expected.items()
        )
    return bool(found == expected)
