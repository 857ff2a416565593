"""uvicorn's HTTP/1.1 protocol with a deadline on each request head. Data plane (shell).

uvicorn times out idle keep-alive connections but not a client that sends its request
line and headers a byte at a time (slowloris): such a client would hold its socket
forever. Here the head must be complete within ``header_timeout_s`` or the client gets
408 and is disconnected; the body's own deadline is the app's (see webhook_server).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    import asyncio

__all__ = ["HeadTimeoutProtocol", "protocol_with_head_timeout"]


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, cutting a client whose request head is not in on time.

    The clock starts when the connection opens and when a request's first byte arrives;
    it stops when the head (request line and headers) is complete. A slowloris client
    holds a socket for ``header_timeout_s`` at most and never reaches the app.
    """

    header_timeout_s = 10.0
    _head_timer: asyncio.TimerHandle | None = None
    _second_look = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first head is due within the timeout."""
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed: nothing is due."""
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A request's first byte: its head is due within the timeout."""
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        """The head is in: the app takes over (and times the body)."""
        self._disarm_head_timer()
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._second_look = False
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._second_look:
            # The event loop runs due timers before it reads sockets: a server busy for
            # longer than the deadline would cut clients whose head has been waiting in
            # the socket all along. One more look, after the loop has read what waits.
            self._second_look = True
            self._head_timer = self.loop.call_later(_SECOND_LOOK_S, self._head_timed_out)
            return
        if self.cycle is None or self.cycle.response_complete:  # nothing owed: say why
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


_SECOND_LOOK_S = 0.05
_TIMEOUT_BODY = b'{"error":"the request head did not arrive in time"}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\nconnection: close\r\n\r\n"
) + _TIMEOUT_BODY


def protocol_with_head_timeout(header_timeout_s: float) -> type[HeadTimeoutProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this head timeout."""
    return type(
        "HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"header_timeout_s": header_timeout_s}
    )
