"""HTTP transport of the model adapter: one JSON POST to an OpenAI-compatible endpoint. Shell.

The decisioning plane's only I/O, standard library only: a total deadline per request, a
cap on the answer's size, no redirects and no proxies; the one module of ``warden.agents``
allowed sockets, clocks and threads (an import contract holds the others to it). Failures raise
:class:`~warden.domain.errors.TemporaryError` (worth retrying: timeouts, refused
connections, 429 and 5xx) or :class:`~warden.domain.errors.PermanentError` (bad answers,
other statuses); their messages never hold the API key or the answer's text.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from warden.domain.errors import ConfigError, PermanentError, TemporaryError

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
MAX_RESPONSE_BYTES = 1 << 20
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def chat_completions_url(endpoint_url: str) -> str:
    """The full chat-completions URL for an endpoint given as a base URL or in full.

    ``http://host:8000`` and ``http://host:8000/v1`` both become
    ``http://host:8000/v1/chat/completions``; a URL that already ends in
    ``/chat/completions`` is kept.

    Raises:
        ConfigError: The URL is not http(s), has no host, or carries credentials.
    """
    parts = urlsplit(endpoint_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"model endpoint {_shown(endpoint_url)!r} is not an http(s) URL with a host"
            " (e.g. http://127.0.0.1:8000 or https://api.example.com/v1)"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "model endpoint: do not put credentials in the URL; set the API key in the"
            " environment variable named by api_key_env"
        )
    if parts.fragment:
        raise ConfigError("model endpoint: a URL fragment (#...) has no meaning here")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"model endpoint: {exc}") from exc
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path = f"{path}/chat/completions" if path.endswith("/v1") else path + CHAT_COMPLETIONS_PATH
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:
        netloc = f"[{parts.hostname}]" if port is None else f"[{parts.hostname}]:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{path}{query}"


def _shown(url: str) -> str:
    """A URL safe to show: anything before an ``@`` in the authority is dropped."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return url.replace(parts.netloc, parts.netloc.rsplit("@", 1)[1], 1)
    return url


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ChatEndpoint:
    """Where chat completions are posted, and how long an answer may take in all."""

    url: str
    timeout_s: float = 10.0
    max_response_bytes: int = MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError("model endpoint: timeout_s must be positive")

    def post_json(self, body: bytes, api_key: str | None = None) -> Any:
        """POST ``body`` as JSON and return the parsed JSON answer of a 200 response.

        Args:
            body: The request, already encoded as JSON.
            api_key: Sent as ``Authorization: Bearer``; only over https or to a loopback host.

        Raises:
            TemporaryError: Timeout, refused or broken connection, HTTP 408, 429 or 5xx.
            PermanentError: Any other status, a redirect, an oversized or non-JSON answer,
                or a key that cannot be sent safely.
        """
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "warden-model-agent",
        }
        if api_key:
            if parts.scheme != "https" and not is_loopback(host):
                raise PermanentError(
                    "refusing to send the API key over plain http to a non-loopback host;"
                    " use an https endpoint"
                )
            if _HEADER_SAFE.fullmatch(api_key) is None:
                raise PermanentError(
                    "the API key holds characters an HTTP header cannot carry"
                    " (spaces, newlines or non-ASCII); check the environment variable"
                )
            headers["Authorization"] = f"Bearer {api_key}"
        deadline = time.monotonic() + self.timeout_s
        connection_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_type(host, parts.port, timeout=self.timeout_s)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=body, headers=headers)
            status, raw = self._receive(connection, deadline)
        except TimeoutError as exc:
            raise TemporaryError(
                f"the model endpoint did not answer within {self.timeout_s:g} s"
            ) from exc
        except ConnectionRefusedError as exc:
            raise TemporaryError(f"connection refused by {host}:{parts.port or ''}") from exc
        except socket.gaierror as exc:
            raise TemporaryError(f"cannot resolve the model endpoint's host {host!r}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise TemporaryError(
                f"network error talking to the model endpoint ({type(exc).__name__})"
            ) from exc
        finally:
            connection.close()
        return _answer(status, raw)

    def _receive(
        self, connection: http.client.HTTPConnection, deadline: float
    ) -> tuple[int, bytes]:
        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return left

        if connection.sock is not None:
            connection.sock.settimeout(remaining())
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            if connection.sock is not None:
                connection.sock.settimeout(remaining())
            chunk = response.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_response_bytes:
                raise PermanentError(
                    f"the model endpoint's answer is larger than {self.max_response_bytes} bytes"
                )
            chunks.append(chunk)
        return response.status, b"".join(chunks)


class Shared(Generic[T]):
    """A value that threads replace one change at a time.

    The runtime asks the model agent from worker threads (an answer takes seconds) while
    it reads the agent's statistics; the lock that keeps their counts lives here, with the
    rest of the agent's shell.
    """

    def __init__(self, value: T) -> None:
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value now."""
        return self._value

    def update(self, change: Callable[[T], T]) -> T:
        """Replace the value with ``change(value)``, no other change in between; returns it."""
        with self._lock:
            self._value = change(self._value)
            return self._value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _error_code(raw: bytes) -> str:
    """A short identifier from an OpenAI-style error body, never its free text."""
    try:
        error = json.loads(raw).get("error")
        code = error.get("code") or error.get("type")
    except (ValueError, AttributeError):
        return ""
    return f" ({code})" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""


def _answer(status: int, raw: bytes) -> Any:
    if 300 <= status < 400:
        raise PermanentError(
            f"the model endpoint answered HTTP {status} (redirects are not followed)"
        )
    if status in (408, 429) or status >= 500:
        raise TemporaryError(f"the model endpoint answered HTTP {status}{_error_code(raw)}")
    if status != 200:
        raise PermanentError(f"the model endpoint answered HTTP {status}{_error_code(raw)}")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PermanentError("the model endpoint's answer is not valid JSON") from exc


__all__ = ["CHAT_COMPLETIONS_PATH", "ChatEndpoint", "Shared", "chat_completions_url", "is_loopback"]
