"""What the action adapters share: the result convention, run counts, base classes. Action plane.

Adapters build on `TalliedAdapter` or `RoutedAdapter`; ones that hold a connection or
processes are also a `ClosingContext`.
"""

from __future__ import annotations

import threading
import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from warden.domain.errors import ConfigError, PermanentError, TemporaryError
from warden.ports import ActionResult

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

__all__ = [
    "ClosingContext",
    "RoutedAdapter",
    "RunStatistics",
    "RunTally",
    "TalliedAdapter",
    "failed",
    "retry_hint",
    "without_userinfo",
]

RouteT = TypeVar("RouteT")

# -- the result convention -----------------------------------------------------------------


def failed(
    detail: str,
    *,
    retryable: bool,
    retry_after_s: float | None = None,
    output: Mapping[str, Any] | None = None,
) -> ActionResult:
    """A failed result that follows the package convention.

    The convention (every adapter in this package): ``run()`` never raises for a failure
    of the target, the network or the plugin; it returns ``ActionResult(ok=False, ...)``
    whose ``output`` always holds ``retryable`` (bool) and ``retry_after_s`` (seconds, or
    None when the target gave no hint). Results, unlike exceptions, survive the executor
    (it turns a raised error into a bare "adapter error"), so the retry hint is recorded
    in the step's ``StepFailed`` event and drives the durable backoff. ``retryable`` maps
    to `TemporaryError(delay=retry_after_s)` and its absence to `PermanentError`; use
    `retry_hint` to read it. Configuration mistakes raise `ConfigError` when adapters are
    built.

    Args:
        detail: What happened, for a human; must hold no secret.
        retryable: Whether running the action again later may succeed.
        retry_after_s: How long the target asked to wait, or None.
        output: More facts for the step's output (status, body, ...).
    """
    return ActionResult(
        ok=False,
        detail=detail,
        output={**(output or {}), "retryable": retryable, "retry_after_s": retry_after_s},
    )


def retry_hint(result: ActionResult) -> TemporaryError | PermanentError | None:
    """The error a failed result stands for, or None for a success.

    Returns:
        `TemporaryError` with the target's delay (1 s when it gave none) for a retryable
        failure; `PermanentError` for any other failure, including results from adapters
        that do not follow the convention.
    """
    if result.ok:
        return None
    if result.output.get("retryable") is True:
        delay = result.output.get("retry_after_s")
        if isinstance(delay, int | float) and not isinstance(delay, bool):
            return TemporaryError(result.detail, delay=float(delay))
        return TemporaryError(result.detail)
    return PermanentError(result.detail)


@dataclass(frozen=True, slots=True)
class RunStatistics:
    """What one adapter has done since it was built.

    Attributes:
        runs: Calls to ``run()``.
        succeeded: Runs that returned ``ok=True``.
        retryable_failures: Failed runs marked retryable.
        permanent_failures: Failed runs not worth retrying.
        checks: Calls to ``check()``.
    """

    runs: int = 0
    succeeded: int = 0
    retryable_failures: int = 0
    permanent_failures: int = 0
    checks: int = 0


class RunTally:
    """Thread-safe counters behind an adapter's ``statistics()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {name: 0 for name in RunStatistics.__dataclass_fields__}

    def ran(self, result: ActionResult) -> ActionResult:
        """Count one run by its result; returns the result unchanged."""
        if result.ok:
            kind = "succeeded"
        elif result.output.get("retryable") is True:
            kind = "retryable_failures"
        else:
            kind = "permanent_failures"
        with self._lock:
            self._counts["runs"] += 1
            self._counts[kind] += 1
        return result

    def checked(self) -> None:
        """Count one call to ``check()``."""
        with self._lock:
            self._counts["checks"] += 1

    def snapshot(self) -> RunStatistics:
        """The counts now."""
        with self._lock:
            return RunStatistics(**self._counts)


# -- base classes --------------------------------------------------------------------------


class TalliedAdapter(ABC):
    """An adapter that follows the result convention and counts its runs and checks.

    Subclasses implement `actions` and ``_run``; their ``check`` calls
    ``self._tally.checked()``.
    """

    def __init__(self) -> None:
        self._tally = RunTally()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(actions={self.actions()!r})"

    @abstractmethod
    def actions(self) -> list[str]:
        """The action names this adapter runs."""

    def statistics(self) -> RunStatistics:
        """Counts of runs by outcome, and of checks."""
        return self._tally.snapshot()

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Run one action; safe to call again with the same arguments.

        Returns:
            The result; a failure is a failed result with ``retryable`` and
            ``retry_after_s`` in its output (see `failed`), never an exception.
        """
        return self._tally.ran(self._run(action, target, params))

    @abstractmethod
    def _run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Run one action, uncounted."""

    def _unknown_action(self, action: str) -> ActionResult:
        """The permanent failure of a run whose action this adapter does not know."""
        return failed(
            f"unknown action {action!r} (known: {', '.join(self.actions()) or 'none'})",
            retryable=False,
        )


class RoutedAdapter(TalliedAdapter, Generic[RouteT]):
    """A `TalliedAdapter` that runs each action by its route, fixed when it is built."""

    def __init__(self, routes: Mapping[str, RouteT], route_type: type[RouteT], named: str) -> None:
        """Keep a copy of the routes.

        Args:
            routes: Action name -> how to run it.
            route_type: What every route must be.
            named: ``route_type`` as an error message names it, e.g. "an HttpRoute".

        Raises:
            ConfigError: When a route is not a ``route_type``.
        """
        for action, route in routes.items():
            if not isinstance(route, route_type):
                raise ConfigError(f"config error: {action}: expected {named}")
        super().__init__()
        self._routes: dict[str, RouteT] = dict(routes)

    def actions(self) -> list[str]:
        """The action names this adapter runs."""
        return list(self._routes)


class ClosingContext(ABC):
    """Something to ``close()`` when done, usable as a context manager that does it."""

    @abstractmethod
    def close(self) -> None:
        """Release what it holds; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def without_userinfo(url: str) -> str:
    """The URL without user info, which may hold a password or token."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
