"""HTTP adapter: runs actions as HTTP calls to a target's API (standard library). Action plane.

Secrets are ``${ENV}`` references in header values, resolved at call time and redacted from
every result; the routes are in `warden.execution.adapters.http_routes`.
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
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from warden.execution.adapters.base import RoutedAdapter, failed, without_userinfo
from warden.execution.adapters.http_routes import SECRET_REFERENCE, HttpCheck, HttpRoute
from warden.execution.adapters.templates import render_json, render_text
from warden.ports import ActionResult, Clock, SystemClock

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime
    from email.message import Message

__all__ = ["RETRYABLE_STATUSES", "HttpActionAdapter", "HttpCheck", "HttpRoute", "retry_after_s"]

RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""Statuses worth retrying besides every 5xx."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
REDACTED = "[REDACTED]"

_USER_AGENT = "warden-action-adapter"
_UNSENDABLE = re.compile(r"[\r\n\x00]|[^\x00-\xff]")


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


class HttpActionAdapter(RoutedAdapter[HttpRoute]):
    """Runs configured actions as HTTP requests; safe to call again with the same arguments.

    The step's ``idempotency_key`` param, when present, is sent as ``Idempotency-Key`` so
    that the target can drop a repeated request. 2xx (or the route's ``expect_status``)
    is success; 408, 425, 429, 5xx, timeouts and connection errors are retryable (with
    the ``Retry-After`` delay when given); other statuses, including redirects, which
    are never followed, are permanent. A success's output holds ``status``, ``body``
    (and ``json`` when the body parses). An endpoint that answers a JSON object with an
    ``undo_params`` object (``{"undo_params": {"version": "v2"}}`` for a rollback) tells
    compensation how to undo the step: rollback_deploy and scale_consumers are undone only
    with what they replaced.
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
        super().__init__(routes, HttpRoute, "an HttpRoute")
        self._env = env if env is not None else os.environ
        self._clock: Clock = clock or SystemClock()
        self._max_body_bytes = max_body_bytes
        self._opener = urllib.request.build_opener(_NoRedirect())

    # -- the ActionAdapter port (`run` is TalliedAdapter's: it counts `_run`) ----------

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
        """Send the action's request and classify the answer."""
        route = self._routes.get(action)
        if route is None:
            return self._unknown_action(action)
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
        shown = f"{route.method} {without_userinfo(url)}"
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
            headers[name] = SECRET_REFERENCE.sub(secret, template)
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
            undo = output.get("json")
            undo = undo.get("undo_params") if isinstance(undo, dict) else None
            if isinstance(undo, dict):
                output["undo_params"] = undo  # what compensation needs: the value it replaced
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
