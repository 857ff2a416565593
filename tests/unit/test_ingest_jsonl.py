"""Replaying JSON-lines captures from a file or stdin through the gates."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from warden.ingest.gate import IngestGate
from warden.ingest.jsonl import JsonlSource, ingest_jsonl, read_lines
from warden.ingest.pipeline import Pipeline, Tally
from warden.ingest.registry import SchemaRegistry

if TYPE_CHECKING:
    from warden.store.sqlite import SQLiteEventStore
    from warden.testing import ManualClock

CAPTURE = Path(__file__).parents[1] / "fixtures" / "jsonl" / "capture.jsonl"


@pytest.fixture
def pipeline(store: SQLiteEventStore, clock: ManualClock) -> Pipeline:
    return Pipeline(IngestGate(store, SchemaRegistry(), clock))


def test_a_capture_file_is_replayed_with_a_summary(
    pipeline: Pipeline, store: SQLiteEventStore
) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    tally = ingest_jsonl(CAPTURE, pipeline, console=console)
    assert tally == Tally(accepted=3, duplicate=1, quarantined=2)
    assert [e.id for e in store.read_stream("service-payments")] == ["cap-1", "cap-2", "cap-4"]
    reasons = {q.source: q.reason for q in store.quarantined()}
    assert reasons[f"jsonl:{CAPTURE.name}:5"].startswith("not JSON")
    assert "no schema registered for warden.probe.unknown@1" in reasons[f"jsonl:{CAPTURE.name}:6"]
    assert "replaying capture.jsonl" in console.file.getvalue()  # type: ignore[attr-defined]
    assert ingest_jsonl(CAPTURE, pipeline) == Tally(duplicate=4, quarantined=2)


def test_stdin_is_read_with_dash(pipeline: Pipeline) -> None:
    stdin = io.BytesIO(CAPTURE.read_bytes())
    assert ingest_jsonl("-", pipeline, stdin=stdin) == Tally(3, 1, 2)
    assert {q.source.rsplit(":", 1)[0] for q in pipeline.gate.store.quarantined()} == {
        "jsonl:stdin"
    }


def test_overlong_lines_are_quarantined_unread(pipeline: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"x" * 5000 + b"\n" + CAPTURE.read_bytes().splitlines()[0] + b"\r\n")
    seen: list[int] = []
    tally = ingest_jsonl(path, pipeline, limit=1000, on_line=seen.append)
    assert tally == Tally(accepted=1, quarantined=1)
    assert seen == [1, 2]
    (item,) = pipeline.gate.store.quarantined()
    assert item.reason == "line 1 is longer than 1000 bytes; not read"


def test_read_lines_counts_bytes_and_skips_the_rest_of_long_lines() -> None:
    data = b"ab\n" + b"c" * 25 + b"\nlast"
    assert list(read_lines(io.BytesIO(data), limit=10)) == [
        (1, b"ab", 3),
        (2, b"c" * 11, 26),
        (3, b"last", 4),
    ]


def test_stop_ends_the_replay_between_lines(pipeline: Pipeline) -> None:
    stop = threading.Event()
    stop.set()
    assert JsonlSource(str(CAPTURE)).run(pipeline, stop) == Tally()


def test_a_missing_file_raises(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        ingest_jsonl(tmp_path / "missing.jsonl", pipeline)
