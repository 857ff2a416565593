"""Group commit for high-volume ingest: many threads' appends, one transaction. Store adapter.

Each durable commit costs a disk flush; under load, a :class:`GroupCommitter` gathers the
appends that arrive while one commit is in flight and writes them all with the next
``append_batch``. Callers block (or hold a future) until their events are durable.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.errors import PermanentError, ValidationError
from warden.ports import BatchAppender

# Errors that belong to one request's events (not JSON, not storable): a group that
# raises one is retried request by request, so only the bad request fails.
_REQUEST_ERRORS = (ValidationError, TypeError, ValueError)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from warden.domain.events import Event


@dataclass(frozen=True, slots=True)
class GroupCommitStatistics:
    """What a group committer has done so far.

    Attributes:
        commits: transactions that committed.
        appends: requests those transactions held.
        events: events in those requests (stored or already there).
        largest_commit: most events in one transaction.
        failed_commits: transactions that raised (and rolled back).
    """

    commits: int
    appends: int
    events: int
    largest_commit: int
    failed_commits: int


class Pending:
    """One append's answer: the stored events once durable, or the error that stopped it.

    A lock held until the answer is set, the one thing waiters block on: a request costs
    a fraction of a ``concurrent.futures.Future`` (a condition, a lock and lists each).
    """

    __slots__ = ("_done", "_error", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._done = False
        self._value: list[Event] = []
        self._error: BaseException | None = None

    def done(self) -> bool:
        """True once the events are durable or the append failed."""
        return self._done

    def result(self, timeout: float | None = None) -> list[Event]:
        """Wait for the stored events.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the append may still commit).
            Exception: what made the append fail.
        """
        self._wait(timeout)
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait; the error that made the append fail, or None once it is durable.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        self._wait(timeout)
        return self._error

    def set_result(self, events: list[Event]) -> None:
        """Answer with the stored events (the committer does, once)."""
        self._value = events
        self._settle()

    def set_exception(self, error: BaseException) -> None:
        """Answer with the error that made the append fail (the committer does, once)."""
        self._error = error
        self._settle()

    def _settle(self) -> None:
        if self._done:
            raise RuntimeError("this append is already answered")
        self._done = True
        self._lock.release()

    def _wait(self, timeout: float | None) -> None:
        if self._done:
            return
        if not self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise TimeoutError(f"the append was not durable within {timeout} s")
        self._lock.release()  # every other waiter passes too


# A request: the stream, its events and the answer to give. A plain tuple: building a
# NamedTuple calls its ``__new__`` in Python, about 1 us more a submitted request.
_Request = tuple[str, tuple["Event", ...], Pending]


class GroupCommitter:
    """Gathers appends from many threads and commits them together.

    One background thread takes every request queued while the previous commit ran (up
    to ``max_events`` events) and appends them with one ``append_batch``. A group that
    fails on bad input is retried request by request, so a bad request fails only its
    own caller; any other failure (the store is down) fails every caller of the group.
    Appends through a committer are idempotent on event id, without ``expected_version``;
    use the store's ``append`` for optimistic writes.
    """

    def __init__(
        self, store: BatchAppender, *, max_events: int = 5000, name: str = "warden-group-commit"
    ) -> None:
        if max_events < 1:
            raise ValidationError(
                f"is {max_events}", field="max_events", fix="commit at least 1 event at a time"
            )
        self._store = store
        self._max_events = max_events
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()  # None: stop
        self._lock = threading.Lock()
        self._closed = False
        self._commits = self._appends = self._events = self._largest = self._failed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, stream: str, events: Sequence[Event]) -> Pending:
        """Queue an append; the future holds the stored events once they are durable.

        Raises:
            PermanentError: the committer is closed.
        """
        future = Pending()
        with self._lock:
            if self._closed:
                raise PermanentError("the group committer is closed; open a new one")
            if not events:
                future.set_result([])
                return future
            self._queue.put((stream, tuple(events), future))
        return future

    def append(
        self, stream: str, events: Sequence[Event], timeout: float | None = None
    ) -> list[Event]:
        """Append and wait until the events are durable; returns them as stored.

        Raises:
            PermanentError: the committer is closed.
            TimeoutError: ``timeout`` seconds passed first (the append may still commit).
        """
        return self.submit(stream, events).result(timeout)

    def statistics(self) -> GroupCommitStatistics:
        """Counts of commits, appends and events so far."""
        with self._lock:
            return GroupCommitStatistics(
                self._commits, self._appends, self._events, self._largest, self._failed
            )

    def close(self) -> None:
        """Commit everything submitted so far, then stop the background thread."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        self._thread.join()

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            group: list[_Request] = []
            size = 0
            item = self._queue.get()
            while True:
                if item is None:
                    stopping = True
                    break
                group.append(item)
                size += len(item[1])
                if size >= self._max_events:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._commit(group, size)

    def _commit(self, group: list[_Request], size: int) -> None:
        """Append ``group`` (``size`` events) in one transaction and answer each request."""
        try:
            stored = self._store.append_batch([(stream, events) for stream, events, _ in group])
        except Exception as exc:
            self._count(len(group), size, ok=False)
            if len(group) > 1 and isinstance(exc, _REQUEST_ERRORS):
                for request in group:
                    self._commit([request], len(request[1]))
                return
            for _, _, future in group:
                future.set_exception(exc)
            return
        self._count(len(group), size, ok=True)
        for (_, _, future), events in zip(group, stored, strict=True):
            future.set_result(events)

    def _count(self, appends: int, size: int, *, ok: bool) -> None:
        with self._lock:
            if not ok:
                self._failed += 1
                return
            self._commits += 1
            self._appends += appends
            self._events += size
            self._largest = max(self._largest, size)


__all__ = ["BatchAppender", "GroupCommitStatistics", "GroupCommitter", "Pending"]
