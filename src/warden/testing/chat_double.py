"""A local stand-in for an OpenAI-compatible chat-completions endpoint. Test support (edge).

:class:`ChatDouble` is a real HTTP server on a free loopback port: it records every request
it receives and answers with scripted :class:`ChatReply` values (tool calls, plain
content, HTTP errors, raw bytes, slow replies), one per request, in order. The real
endpoint is an outside service; this double is how Warden's model adapter is tested.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType

CHAT_PATH = "/v1/chat/completions"


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-double",
        "object": "chat.completion",
        "created": 0,
        "model": "double",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }


@dataclass(frozen=True, slots=True)
class ChatReply:
    """One scripted answer: status, body (JSON value or raw bytes) and a delay before it."""

    status: int = 200
    body: Any = None
    delay_s: float = 0.0
    content_type: str = "application/json"

    @classmethod
    def tool_calls(
        cls,
        calls: Iterable[tuple[str, Mapping[str, Any] | str]],
        content: Mapping[str, Any] | str | None = None,
    ) -> ChatReply:
        """An answer that calls tools ``(name, arguments)``; a mapping's JSON is the content."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content
            if content is None or isinstance(content, str)
            else json.dumps(dict(content)),
            "tool_calls": [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(dict(args)),
                    },
                }
                for i, (name, args) in enumerate(calls)
            ],
        }
        return cls(body=_completion(message, "tool_calls"))

    @classmethod
    def content(cls, content: Mapping[str, Any] | str) -> ChatReply:
        """A plain answer; a mapping is sent as its JSON text."""
        text = content if isinstance(content, str) else json.dumps(dict(content))
        return cls(body=_completion({"role": "assistant", "content": text}, "stop"))

    @classmethod
    def error(cls, status: int = 500, message: str = "scripted failure") -> ChatReply:
        """An HTTP error with an OpenAI-style error body."""
        return cls(status=status, body={"error": {"message": message, "type": "server_error"}})

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type: str = "text/plain") -> ChatReply:
        """Exactly these bytes, e.g. a body that is not JSON."""
        return cls(status=status, body=body, content_type=content_type)

    def slowed(self, delay_s: float) -> ChatReply:
        """The same answer, sent only after ``delay_s`` seconds."""
        return ChatReply(self.status, self.body, delay_s, self.content_type)

    def encoded(self) -> bytes:
        """The body as sent."""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body if self.body is not None else {}).encode("utf-8")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the double received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


_NO_REPLY = ChatReply.error(500, "the chat double has no scripted reply left")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    double: ChatDouble

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout under test) is expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        double = self.server.double
        request = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        if self.command == "POST" and self.path.split("?", 1)[0] == CHAT_PATH:
            reply = double._record(request, answer=True)
        else:
            double._record(request, answer=False)
            reply = ChatReply.error(404, f"no route for {self.command} {self.path}")
        if reply.delay_s and double._closing.wait(reply.delay_s):
            self.close_connection = True
            return  # the double is closing: drop the slow reply
        payload = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ChatDouble:
    """An OpenAI-compatible chat endpoint on ``127.0.0.1`` that answers from a script.

    Use as a context manager; each request takes the next scripted reply, and gets an
    HTTP 500 once the script runs out (or ``default`` when one is given).
    """

    def __init__(self, replies: Iterable[ChatReply] = (), default: ChatReply | None = None) -> None:
        self._replies: deque[ChatReply] = deque(replies)
        self._default = default
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ChatDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> ChatDouble:
        """Listen on a free loopback port and serve on a background thread."""
        if self._server is not None:
            return self
        self._closing.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.double = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; slow replies still waiting are dropped."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        """The port the double listens on."""
        if self._server is None:
            raise RuntimeError("the chat double is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The full chat-completions URL."""
        return self.url + CHAT_PATH

    def script(self, *replies: ChatReply) -> None:
        """Queue more replies, answered in order after those already queued."""
        with self._changed:
            self._replies.extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._changed:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> list[RecordedRequest]:
        """Block until ``count`` requests have arrived; raise TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._requests)} of {count} requests arrived")
                self._changed.wait(left)
            return list(self._requests)

    def _record(self, request: RecordedRequest, *, answer: bool) -> ChatReply:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            if answer and self._replies:
                return self._replies.popleft()
            return self._default or _NO_REPLY


__all__ = ["CHAT_PATH", "ChatDouble", "ChatReply", "RecordedRequest"]
