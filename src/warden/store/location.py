"""Where a state directory keeps its event log: the embedded SQLite file, or PostgreSQL. Store.

``warden run`` with a ``store:`` section writes a pointer (``store.json``: the DSN without
its password, and the schema) into the state directory, so every command that takes
``--state-dir`` opens the same log. A password stays out of the file: libpq finds it in
``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from warden.domain.errors import ConfigError
from warden.store.leases import SQLiteLeases
from warden.store.private import private_dir, private_file
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from pathlib import Path

    from warden.ports import EventStore, Leases

POINTER = "store.json"
SQLITE_FILE = "events.db"


def sqlite_path(state_dir: Path) -> Path:
    """Where the embedded event store lives inside a state directory."""
    return state_dir / SQLITE_FILE


def remember(state_dir: Path, dsn: str, schema: str) -> None:
    """Point ``state_dir`` at a PostgreSQL log; without ``dsn``, at the embedded file."""
    pointer = state_dir / POINTER
    if not dsn:
        pointer.unlink(missing_ok=True)
        return
    # Here, not at the top: psycopg takes some 20 MiB that a SQLite log never needs.
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    kept = {k: v for k, v in conninfo_to_dict(dsn).items() if k != "password" and v is not None}
    private_dir(state_dir)
    shareable = make_conninfo("", **kept)
    private_file(pointer).write_text(json.dumps({"postgres": shareable, "schema": schema}))


def pointed(state_dir: Path) -> tuple[str, str] | None:
    """The PostgreSQL DSN and schema ``state_dir`` points at, or None for the embedded file.

    Raises:
        ConfigError: the pointer is unreadable.
    """
    pointer = state_dir / POINTER
    if not pointer.exists():
        return None
    try:
        raw = json.loads(pointer.read_text())
        return str(raw["postgres"]), str(raw.get("schema") or "warden")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"config error: {pointer} is unreadable ({exc}); delete it to use the embedded"
            " store, or run `warden run` again to rewrite it"
        ) from exc


def has_log(state_dir: Path) -> bool:
    """Whether ``state_dir`` holds (or points at) an event log."""
    return (state_dir / POINTER).exists() or sqlite_path(state_dir).exists()


def open_event_store(state_dir: Path, *, dsn: str = "", schema: str = "warden") -> EventStore:
    """The event store of ``state_dir``: PostgreSQL when given or pointed at, else SQLite.

    ``dsn`` (with its password, from the configuration) wins over the pointer.
    """
    where = (dsn, schema) if dsn else pointed(state_dir)
    if where is None:
        state_dir.mkdir(parents=True, exist_ok=True)
        return SQLiteEventStore(sqlite_path(state_dir))
    from warden.store.postgres import PostgresEventStore

    return PostgresEventStore(where[0], schema=where[1])


def open_leases(state_dir: Path, *, dsn: str = "", schema: str = "warden") -> Leases:
    """The leases beside the event store of ``state_dir`` (the same database)."""
    where = (dsn, schema) if dsn else pointed(state_dir)
    if where is None:
        return SQLiteLeases(sqlite_path(state_dir))
    from warden.store.postgres_leases import PostgresLeases

    return PostgresLeases(where[0], where[1])
