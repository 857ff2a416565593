"""JSON-lines source: replay captured CloudEvents from a file or stdin. Data plane (shell).

Each non-blank line is one structured-mode CloudEvents object and goes through the gates
on its own; a bad line is quarantined with its line number and does not stop the rest.
Files show a progress bar (by bytes read) when a console is given.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from warden.ingest.pipeline import Admit, Refuse, Tally

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from rich.console import Console

    from warden.ingest.pipeline import Job, Pipeline

__all__ = ["JsonlSource", "ingest_jsonl", "read_lines"]

MAX_LINE_BYTES = 1024 * 1024
_KEPT_PREFIX = 64 * 1024


def read_lines(stream: IO[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes, int]]:
    """Lines of a binary stream, each at most ``limit`` bytes kept.

    Yields:
        ``(line number, line without its newline, bytes consumed)``; a line longer than
        ``limit`` yields its first ``limit + 1`` bytes (so it reads as too long) and the
        rest is skipped without being held in memory.
    """
    number = 0
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return
        number += 1
        consumed = len(chunk)
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            while True:
                rest = stream.readline(limit)
                consumed += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
        yield number, chunk.rstrip(b"\r\n"), consumed


def _job(number: int, line: bytes, label: str, limit: int) -> Job:
    source = f"jsonl:{label}:{number}"
    if len(line) > limit:
        kept = line[:_KEPT_PREFIX].decode("utf-8", errors="replace")
        return Refuse(kept, source, f"line {number} is longer than {limit} bytes; not read")
    return Admit(line, source)


def ingest_jsonl(
    path: Path | str,
    pipeline: Pipeline,
    *,
    console: Console | None = None,
    stop: threading.Event | None = None,
    stdin: IO[bytes] | None = None,
    limit: int = MAX_LINE_BYTES,
    on_line: Callable[[int], None] | None = None,
) -> Tally:
    """Run every line of ``path`` (``-`` for stdin) through the pipeline.

    Args:
        path: A JSON-lines file, or ``-`` for standard input.
        pipeline: Where the events go.
        console: Draw a progress bar here (files only); None for no bar.
        stop: Stop early when set (between lines).
        stdin: The stream read for ``-`` (default: the process's standard input).
        limit: The longest line read; longer lines are quarantined unread.
        on_line: Called with each line number once that line is stored or quarantined.

    Returns:
        How many lines were accepted, duplicates, and quarantined.

    Raises:
        OSError: When the file cannot be opened.
    """
    before = pipeline.statistics()
    if str(path) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        _drain(stream, "stdin", pipeline, stop, limit, on_line, None)
        return pipeline.statistics().since(before)
    file = Path(path)
    with file.open("rb") as stream:
        if console is None:
            _drain(stream, file.name, pipeline, stop, limit, on_line, None)
        else:
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            with progress:
                task = progress.add_task(f"replaying {file.name}", total=file.stat().st_size)

                def advance(consumed: int) -> None:
                    progress.advance(task, consumed)

                _drain(stream, file.name, pipeline, stop, limit, on_line, advance)
    return pipeline.statistics().since(before)


def _drain(
    stream: IO[bytes],
    label: str,
    pipeline: Pipeline,
    stop: threading.Event | None,
    limit: int,
    on_line: Callable[[int], None] | None,
    advance: Callable[[int], None] | None,
) -> None:
    for number, line, consumed in read_lines(stream, limit):
        if stop is not None and stop.is_set():
            return
        if line.strip():
            pipeline.process([_job(number, line, label, limit)])
            if on_line is not None:
                on_line(number)
        if advance is not None:
            advance(consumed)


class JsonlSource:
    """The JSON-lines reader as a :class:`~warden.ingest.sources.Source`."""

    name = "jsonl"

    def __init__(self, path: str = "-", *, console: Console | None = None) -> None:
        self.path = path
        self.console = console

    def run(self, pipeline: Pipeline, stop: threading.Event) -> Tally:
        """Replay the whole file (or stdin) unless stopped first."""
        return ingest_jsonl(self.path, pipeline, console=self.console, stop=stop)
