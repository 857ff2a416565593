"""Shared fixtures: a manual clock and a temporary SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    s = SQLiteEventStore(tmp_path / "events.db")
    yield s
    s.close()
