"""NATS routes: the subject and JSON message an action publishes, and its message id. Action plane.

Used by `warden.execution.adapters.nats_publish`, which publishes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConfigError
from warden.execution.adapters.base import failed
from warden.execution.adapters.templates import (
    json_template_names,
    render_json,
    render_text,
    template_names,
)

if TYPE_CHECKING:
    from warden.ports import ActionResult

__all__ = ["MSG_ID_HEADER", "NatsRoute", "derived_key", "render_message"]

MSG_ID_HEADER = "Nats-Msg-Id"
_SUBJECT_TEMPLATE = re.compile(r"[^\s*>]+")
_TOKEN_VALUE = re.compile(r"[A-Za-z0-9_-]+")
_STREAM_NAME = re.compile(r"[^\s.*>/\\]+")


@dataclass(frozen=True, slots=True)
class NatsRoute:
    """How one action is run as a JetStream publish.

    Attributes:
        subject: Subject template; ``{target}`` and ``{param}`` values must be single
            subject tokens (letters, digits, ``_`` and ``-``).
        body: JSON template of the message; None sends ``{"action", "target", "params",
            "idempotency_key"}``.
        headers: Extra static headers.
        stream: The stream expected to store the message (``Nats-Expected-Stream``); also
            what `NatsPublishAdapter.check` reads. None accepts whichever stream answers.
        timeout_s: How long to wait for the JetStream ack.
    """

    subject: str
    body: Any = field(default=None, hash=False)
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    stream: str | None = None
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        problem = _route_problem(self)
        if problem:
            raise ConfigError(f"config error: {problem}")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "body", json.loads(json.dumps(self.body)))


def _route_problem(route: NatsRoute) -> str:
    subject: object = route.subject
    if not isinstance(subject, str) or not _SUBJECT_TEMPLATE.fullmatch(subject):
        return (
            f"subject: {subject!r} is not a subject to publish to; write dot-separated"
            " tokens without spaces or wildcards, e.g. warden.notify.{target}"
        )
    if "" in subject.split("."):
        return f"subject: {subject!r} has an empty token"
    try:
        template_names(subject)
    except ConfigError as exc:
        return f"subject: {exc}"
    try:
        json.dumps(route.body)
        json_template_names(route.body)
    except ConfigError as exc:
        return f"body: {exc}"
    except (TypeError, ValueError) as exc:
        return f"body: not a JSON template ({exc})"
    headers: object = route.headers
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in v and "\r" not in v
        for k, v in headers.items()
    ):
        return "headers: expected a mapping of header names to one-line strings"
    if any(k.lower() == MSG_ID_HEADER.lower() for k in headers):
        return f"headers: {MSG_ID_HEADER} is set from the step's idempotency key; remove it"
    stream: object = route.stream
    if stream is not None and (not isinstance(stream, str) or not _STREAM_NAME.fullmatch(stream)):
        return f"stream: {stream!r} is not a stream name (no spaces, '.', '*', '>' or slashes)"
    timeout: object = route.timeout_s
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return f"timeout_s: {timeout!r} is not a positive number of seconds"
    return ""


def derived_key(action: str, target: str, params: Mapping[str, Any]) -> str:
    """The idempotency key used when the step gives none: a digest of the arguments.

    Equal arguments give equal keys, so a repeated call inside the stream's duplicate
    window is stored once, as the port requires.
    """
    canonical = json.dumps(
        [action, target, {k: v for k, v in params.items() if k != "idempotency_key"}],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "warden-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def render_message(
    route: NatsRoute, action: str, target: str, params: dict[str, Any]
) -> tuple[str, bytes, str] | ActionResult:
    """The subject, payload and message id of a run, or the failed result saying why not."""
    given = params.get("idempotency_key")
    msg_id = given if isinstance(given, str) and given else derived_key(action, target, params)
    values = {**params, "target": target, "action": action, "idempotency_key": msg_id}

    def token(text: str) -> str:
        if not _TOKEN_VALUE.fullmatch(text):
            raise _BadToken(text)
        return text

    try:
        subject = render_text(route.subject, values, token)
        if route.body is None:
            rest = {k: v for k, v in params.items() if k != "idempotency_key"}
            message: Any = {
                "action": action,
                "target": target,
                "params": rest,
                "idempotency_key": msg_id,
            }
        else:
            message = render_json(route.body, values)
        payload = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
    except KeyError as exc:
        return failed(
            f"{action}: the subject or body template needs param {exc.args[0]!r}, which the"
            " step does not give",
            retryable=False,
        )
    except _BadToken as exc:
        return failed(
            f"{action}: {exc.args[0]!r} cannot be a subject token; use letters, digits,"
            " '_' and '-' only",
            retryable=False,
        )
    except (TypeError, ValueError) as exc:
        return failed(f"{action}: params are not JSON ({exc})", retryable=False)
    return subject, payload, msg_id


class _BadToken(ValueError):
    """A template value that would change the subject's shape."""
