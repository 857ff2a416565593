"""Observed health of services, folded from probe events. Pure core (domain).

A failed probe says what kind of failure it saw, because the kind tells where the fault
is: nothing listening or a command exiting non-zero points at the process; a timeout, a
name that does not resolve, an unreachable network or an HTTP 403 at the path to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
# Where each kind points: the process itself, or the path to it (network, DNS, a proxy
# or a policy in between, or a slow dependency).
PROCESS_KINDS = frozenset({REFUSED, RESET, HUNG, EXIT_CODE})
PATH_KINDS = frozenset({TIMEOUT, DNS, UNREACHABLE, TLS})
# HTTP statuses that a proxy or a policy in front of the service answers: the path.
PATH_STATUSES = frozenset({401, 403, 407, 502, 504})


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
    (HUNG, ("no answer",)),
    (TIMEOUT, ("timed out", "timeout")),
    (DNS, ("cannot resolve", "name or service not known", "nodename nor servname")),
    (UNREACHABLE, ("unreachable", "no route to host")),
    (RESET, ("connection reset", "closed without a response", "broken pipe")),
    (TLS, ("tls error", "ssl")),
    (LATENCY, ("latency ",)),
    (HTTP_STATUS, ("http ",)),
    (PROTOCOL, ("bad http response",)),
    (EXIT_CODE, ("exit code", "killed by signal")),
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
    def process_fault(self) -> bool:
        """The latest failure points at the process itself.

        Refused, reset, a failed check command, or a 5xx the service answered itself (not
        502 or 504, which a proxy answers).
        """
        if self.healthy:
            return False
        if self.last_kind == HTTP_STATUS and self.last_status is not None:
            return self.last_status >= 500 and self.last_status not in PATH_STATUSES
        return self.last_kind in PROCESS_KINDS

    @property
    def path_fault(self) -> bool:
        """The latest failure points at the path to the process.

        A timeout, a name that does not resolve, an unreachable network, TLS, or an HTTP
        401, 403, 407, 502 or 504 from something in between.
        """
        if self.healthy:
            return False
        if self.last_kind == HTTP_STATUS:
            return self.last_status in PATH_STATUSES
        return self.last_kind in PATH_KINDS


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
