"""Observed health of services, folded from probe events. Pure core (domain).

The one taxonomy of probe failures. A failed probe says what kind of failure it saw
(``kind`` in ``warden.probe.failed``: refused, timeout, HTTP status, ...), and the kind
with the HTTP status tells the cause the diagnosis reasons with (:class:`Cause`): nothing
listening or a command exiting non-zero points at the process; a connect timeout, a name
that does not resolve, an unreachable network or an HTTP 403 at the path to it. Older
records without a kind get one from their error text (:func:`failure_kind`), nothing else
reads that text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from warden.domain import events as ev

EVIDENCE_KEPT = 20
SUCCESSES_KEPT = 5

# The kinds of probe failure (``kind`` in ``warden.probe.failed``).
REFUSED = "refused"  # nothing listens on the port
RESET = "reset"  # the connection was reset or closed without an answer
TIMEOUT = "timeout"  # no answer in time
HUNG = "hung"  # the process is there and answers nothing (connected, or nothing accepted)
DNS = "dns"  # the host name does not resolve
UNREACHABLE = "unreachable"  # no route to the host or its network
TLS = "tls"  # the TLS handshake failed
PROTOCOL = "protocol"  # an answer that is not valid HTTP
HTTP_STATUS = "http_status"  # an HTTP answer with another status than expected
LATENCY = "latency"  # an answer, slower than the latency threshold
EXIT_CODE = "exit_code"  # a check command exited non-zero (or was killed)
NOT_RUN = "not_run"  # a check command could not be started
OTHER = "other"
FAILURE_KINDS = (
    REFUSED, RESET, TIMEOUT, HUNG, DNS, UNREACHABLE, TLS, PROTOCOL, HTTP_STATUS, LATENCY, EXIT_CODE,
    NOT_RUN, OTHER,
)  # fmt: skip


class Cause(StrEnum):
    """What a failed probe points at."""

    EXITED = "exited"  # nothing listens: the process is gone
    HUNG = "hung"  # it accepts a connection and never answers: alive, wedged
    PATH = "path"  # the way to it: connect timeout, DNS, TLS, 401/403/404, routing
    UPSTREAM = "upstream"  # it answers that something behind it fails: 502/503/504
    ERRORS = "errors"  # it answers with its own errors: 500
    SLOW = "slow"  # it answers, too slowly
    CAPACITY = "capacity"  # out of room: 429, 507
    UNKNOWN = "unknown"


PROCESS_CAUSES = frozenset({Cause.EXITED, Cause.HUNG})
_KIND_CAUSES = {
    REFUSED: Cause.EXITED,
    RESET: Cause.EXITED,
    EXIT_CODE: Cause.EXITED,
    HUNG: Cause.HUNG,
    TIMEOUT: Cause.PATH,
    DNS: Cause.PATH,
    UNREACHABLE: Cause.PATH,
    TLS: Cause.PATH,
    LATENCY: Cause.SLOW,
}
# HTTP statuses that something between the caller and the service answers: the path.
_PATH_STATUSES = frozenset({401, 403, 404, 407, 421, 495, 496, 525, 526})
_UPSTREAM_STATUSES = frozenset({502, 503, 504})
_CAPACITY_STATUSES = frozenset({429, 507, 509})


def cause(kind: str, status: int | None = None) -> Cause:
    """What a failure of ``kind`` (with its HTTP status, if an answer came) points at."""
    if kind == HTTP_STATUS:
        if status is None:
            return Cause.UNKNOWN
        if status in _PATH_STATUSES:
            return Cause.PATH
        if status in _UPSTREAM_STATUSES:
            return Cause.UPSTREAM
        if status in _CAPACITY_STATUSES:
            return Cause.CAPACITY
        return Cause.ERRORS if status >= 500 else Cause.PATH
    return _KIND_CAUSES.get(kind, Cause.UNKNOWN)


def status_in(error: str) -> int | None:
    """The HTTP status an error text starts with ("HTTP 503" gives 503), if any."""
    head, _, rest = error.strip().partition("HTTP ")
    digits = rest[:3]
    return int(digits) if not head.strip() and len(digits) == 3 and digits.isdigit() else None


def failure_kind(error: str, status: int | None = None) -> str:
    """The kind of a failure from its description, for results that did not say it.

    Used for older logs and probes that give only an error text ("connection refused",
    "timed out after 0.5 s", "HTTP 503", ...).
    """
    text = error.lower()
    if status is not None and text.startswith("http "):
        return HTTP_STATUS
    for kind, markers in _MARKERS:
        if any(m in text for m in markers):
            return kind
    return OTHER if error else ""


_MARKERS = (
    (REFUSED, ("connection refused",)),
    (HUNG, ("no answer", "read timed out", "response timed out")),
    (TIMEOUT, ("timed out", "timeout")),
    (DNS, ("cannot resolve", "name or service not known", "nodename nor servname")),
    (UNREACHABLE, ("unreachable", "no route to host")),
    (RESET, ("connection reset", "closed without a response", "broken pipe")),
    (TLS, ("tls error", "ssl")),
    (LATENCY, ("latency ", "slow: ")),
    (HTTP_STATUS, ("http ",)),
    (PROTOCOL, ("bad http response",)),
    (EXIT_CODE, ("exit code", "killed by signal", "exited", "out of memory")),
    (NOT_RUN, ("cannot run",)),
)


@dataclass(frozen=True, slots=True)
class Health:
    """What the probes say about one service."""

    service: str
    consecutive_failures: int = 0
    failing_since: str = ""
    evidence: tuple[str, ...] = ()
    last_error: str = ""
    last_kind: str = ""  # the kind of the latest failure (see FAILURE_KINDS)
    last_status: int | None = None  # its HTTP status, when an answer came
    last_success_at: str = ""
    last_seen_at: str = ""
    healthy_since: str = ""  # the first success of the current run of successes
    successes: tuple[str, ...] = ()  # ids of the latest successes of that run

    @property
    def healthy(self) -> bool:
        """True while the latest probe passed (or none failed yet)."""
        return self.consecutive_failures == 0

    @property
    def cause(self) -> Cause:
        """What the latest failure points at (UNKNOWN while healthy)."""
        if self.healthy:
            return Cause.UNKNOWN
        kind = self.last_kind or failure_kind(self.last_error, self.last_status)
        return cause(
            kind, self.last_status if self.last_status is not None else status_in(self.last_error)
        )

    @property
    def process_fault(self) -> bool:
        """The latest failure points at the process itself: it exited, or hangs alive."""
        return self.cause in PROCESS_CAUSES

    @property
    def path_fault(self) -> bool:
        """The latest failure points at the path to the process.

        A connect timeout, a name that does not resolve, an unreachable network, TLS, or
        an HTTP 401, 403, 404 or 407 from something in between.
        """
        return self.cause is Cause.PATH


def observe(health: Health, event: ev.Event) -> Health:
    """Fold one probe event into a service's health."""
    if event.type == ev.PROBE_FAILED:
        error = str(event.data.get("error", ""))
        status = event.data.get("status")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        kind = str(event.data.get("kind") or failure_kind(error, status))
        return replace(
            health,
            consecutive_failures=health.consecutive_failures + 1,
            failing_since=health.failing_since or event.time,
            evidence=(*health.evidence, event.id)[-EVIDENCE_KEPT:],
            last_error=error,
            last_kind=kind,
            last_status=status,
            last_seen_at=event.time,
            healthy_since="",
            successes=(),
        )
    if event.type == ev.PROBE_SUCCEEDED:
        return replace(
            health,
            consecutive_failures=0,
            failing_since="",
            evidence=(),
            last_error="",
            last_kind="",
            last_status=None,
            last_success_at=event.time,
            last_seen_at=event.time,
            healthy_since=(
                health.healthy_since
                if health.healthy_since and health.consecutive_failures == 0
                else event.time
            ),
            successes=(*health.successes, event.id)[-SUCCESSES_KEPT:],
        )
    return health
