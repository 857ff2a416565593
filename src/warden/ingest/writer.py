"""A bounded queue between request handlers and the one thread that writes. Data plane (shell).

Handlers hand a request's jobs to :meth:`IngestWriter.submit_nowait` and wait for the
outcome; a single writer thread runs them through the :class:`Pipeline`, taking whatever
queued up meanwhile in one call (group commit). When the queue
is full the handler is refused at once (:class:`TemporaryError` with a retry delay)
instead of memory growing, and an outcome only exists once the jobs are durably stored
or quarantined, so a sender told "accepted" never loses its event.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.errors import TemporaryError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.ingest.pipeline import Job, Outcome, Pipeline

__all__ = ["IngestWriter", "WriterStatistics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    """What the writer is doing: queue depth and what it refused or failed."""

    queued: int
    capacity: int
    processed: int
    refused_full: int
    failed: int
    running: bool


_Item = tuple["Sequence[Job]", "Future[list[Outcome]]"]


class IngestWriter:
    """Owns the store's write path for concurrent producers, with a bounded queue."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        capacity: int = 64,
        retry_after_s: float = 1.0,
        max_group: int = 32,
    ) -> None:
        """Create a writer; call :meth:`start` to begin writing.

        Args:
            pipeline: Where jobs go.
            capacity: How many submissions may wait; more are refused.
            retry_after_s: The delay suggested to refused senders.
            max_group: The most submissions written in one pipeline call (one
                transaction when the store batches).
        """
        if capacity < 1:
            raise ValueError("the queue capacity must be at least 1")
        self.pipeline = pipeline
        self.capacity = capacity
        self.retry_after_s = retry_after_s
        self.max_group = max(1, max_group)
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._processed = 0
        self._refused = 0
        self._failed = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="ingest-writer", daemon=True)
            self._thread.start()

    def submit_nowait(self, jobs: Sequence[Job]) -> Future[list[Outcome]]:
        """Queue ``jobs`` as one unit; never blocks.

        Returns:
            A future that resolves to one outcome per job once they are all durable.

        Raises:
            TemporaryError: The queue is full or the writer is closing; retry after
                ``delay`` seconds.
        """
        future: Future[list[Outcome]] = Future()
        with self._lock:
            if self._closing:
                raise TemporaryError("the ingest writer is shutting down", self.retry_after_s)
            try:
                self._queue.put_nowait((list(jobs), future))
            except queue.Full:
                self._refused += 1
                raise TemporaryError(
                    f"the ingest queue is full ({self.capacity} requests waiting)",
                    self.retry_after_s,
                ) from None
        return future

    def wait_processed(self, jobs: Sequence[Job], timeout_s: float) -> list[Outcome]:
        """Queue ``jobs`` and block until they are durable.

        Raises:
            TemporaryError: The queue is full, the writer is closing, or the jobs were not
                done within ``timeout_s`` (they stay queued and will still be written;
                retrying is safe because appends are idempotent on event id).
            Exception: Whatever the store raised while writing these jobs.
        """
        future = self.submit_nowait(jobs)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            raise TemporaryError(
                f"the event store did not confirm within {timeout_s:g} s", self.retry_after_s
            ) from None

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, write everything already queued, stop the thread."""
        with self._lock:
            self._closing = True
            thread = self._thread
        if thread is None:
            self._fail_pending()
            return
        self._queue.put(None)
        thread.join(timeout_s)

    def statistics(self) -> WriterStatistics:
        """Queue depth and counters, for health endpoints and tests."""
        with self._lock:
            return WriterStatistics(
                queued=self._queue.qsize(),
                capacity=self.capacity,
                processed=self._processed,
                refused_full=self._refused,
                failed=self._failed,
                running=self._thread is not None and self._thread.is_alive(),
            )

    def _fail_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(
                    TemporaryError("the ingest writer closed before writing", self.retry_after_s)
                )

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            closing = False
            # Group commit: whatever queued up while the last write ran goes in one.
            while len(group) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                group.append(more)
            self._write(group)
            if closing:
                return

    def _write(self, group: list[_Item]) -> None:
        live = [(jobs, future) for jobs, future in group if future.set_running_or_notify_cancel()]
        try:
            outcomes = self.pipeline.process([job for jobs, _ in live for job in jobs])
        except Exception as exc:  # the store failed: tell every waiting sender
            log.warning("ingest write failed: %s", exc)
            with self._lock:
                self._failed += len(live)
            for _, future in live:
                future.set_exception(exc)
            return
        start = 0
        for jobs, future in live:
            future.set_result(outcomes[start : start + len(jobs)])
            start += len(jobs)
        with self._lock:
            self._processed += len(live)
