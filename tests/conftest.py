"""Shared fixtures: a manual clock, a temporary SQLite store, a PostgreSQL DSN and schema."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _private_config_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own ~/.config/warden: audit keys and trust stores stay out of $HOME."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    s = SQLiteEventStore(tmp_path / "events.db")
    yield s
    s.close()


POSTGRES_DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the test PostgreSQL server (``WARDEN_TEST_POSTGRES`` overrides the default).

    Skips the test when the server cannot be reached, except under ``CI=true``: there a
    missing server fails the run instead of passing it silently.
    """
    dsn = os.environ.get("WARDEN_TEST_POSTGRES", POSTGRES_DEFAULT_DSN)
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        reason = (
            f"PostgreSQL is unreachable ({type(exc).__name__}: {exc!s:.200}); start it or"
            " point WARDEN_TEST_POSTGRES at a server"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}. CI=true, so this fails instead of skipping", pytrace=False)
        pytest.skip(reason)
    return dsn


CHROMIUM_DEFAULT = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (``WARDEN_CHROMIUM`` overrides the path), for Playwright to drive.

    Skips when it is missing, except under ``CI=true`` (where .ci/run installs it): there
    a missing browser fails the run. Playwright never downloads a browser of its own here.
    """
    path = os.environ.get("WARDEN_CHROMIUM", CHROMIUM_DEFAULT)
    if not os.access(path, os.X_OK):
        reason = f"no chromium at {path}; `apt-get install chromium` or set WARDEN_CHROMIUM"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}. CI=true, so this fails instead of skipping", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema name for one test; the schema is dropped after it."""
    import psycopg
    from psycopg import sql

    name = f"warden_test_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])
