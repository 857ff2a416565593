"""Signed checkpoints published to a second store (a PostgreSQL table), and checked. Audit plane.

Each checkpoint the log signs (with its witness cosignatures) is also written to
``<schema>.audit_checkpoints``, on another host than the state directory; ``warden audit
verify --published DSN`` compares the local log with every published checkpoint, so
deleting or rewriting the local files is detected.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from warden.audit.checkpoint import SignedCheckpoint
from warden.domain.errors import AuditVerificationError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from warden.audit.checkpoint import Verifier
    from warden.audit.log import AuditLog

TABLE = "audit_checkpoints"


@dataclass(frozen=True, slots=True)
class Published:
    """One published checkpoint and when it was published."""

    signed: SignedCheckpoint
    published_at: str


@contextmanager
def _store_errors(dsn: str) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise ConfigError(f"checkpoint store {dsn!r}: {exc}") from None


class CheckpointPublisher:
    """Writes signed checkpoints to, and reads them from, a PostgreSQL table."""

    def __init__(self, dsn: str, schema: str = "warden") -> None:
        self.dsn = dsn
        self.schema = schema
        self._ready = False

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot reach the checkpoint store {self.dsn!r}: {exc}") from None

    def _table(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(TABLE))

    def _ensure(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        if self._ready:
            return
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (origin text NOT NULL, size bigint NOT NULL, "
                "root bytea NOT NULL, note text NOT NULL, "
                "published_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (origin, size))"
            ).format(self._table())
        )
        self._ready = True

    def publish(self, signed: SignedCheckpoint) -> None:
        """Store ``signed``; a later copy of the same tree head with more signatures wins.

        A different root for a size already published is never overwritten: that row is
        the evidence a verify needs.
        """
        cp = signed.checkpoint
        with self._connect() as conn, _store_errors(self.dsn):
            self._ensure(conn)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {t} (origin, size, root, note) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (origin, size) DO UPDATE SET note = EXCLUDED.note "
                    "WHERE {t}.root = EXCLUDED.root "
                    "AND length({t}.note) < length(EXCLUDED.note)"
                ).format(t=self._table()),
                (cp.origin, cp.size, cp.root, signed.encode()),
            )

    def read(self, origin: str) -> list[Published]:
        """Every checkpoint published for ``origin``, smallest first."""
        with self._connect() as conn, _store_errors(self.dsn):
            self._ensure(conn)
            rows = conn.execute(
                sql.SQL("SELECT note, published_at FROM {} WHERE origin = %s ORDER BY size").format(
                    self._table()
                ),
                (origin,),
            ).fetchall()
        out = []
        for note, when in rows:
            try:
                signed = SignedCheckpoint.parse(str(note))
            except AuditVerificationError as exc:
                raise AuditVerificationError(
                    f"a published checkpoint is malformed: {exc}"
                ) from None
            out.append(Published(signed, str(when)))
        return out


def check_published(
    log: AuditLog, published: Sequence[Published], verifiers: Sequence[Verifier], origin: str
) -> int:
    """Check the local log against every published checkpoint; return how many.

    Raises:
        AuditVerificationError: a published checkpoint (validly signed) is beyond the local
            log or has another root at its size than the local log.
    """
    size = log.size
    checked = 0
    for item in published:
        cp = item.signed.checkpoint
        try:
            item.signed.verify(verifiers, origin)
        except AuditVerificationError:
            continue  # not the log's signature: proves nothing either way
        if cp.size > size:
            raise AuditVerificationError(
                f"a checkpoint of size {cp.size:,} was published at {item.published_at} but "
                f"the local log has {size:,} entries (entries were removed)",
                size,
            )
        if log.root(cp.size) != cp.root:
            raise AuditVerificationError(
                f"the local log does not match the checkpoint of size {cp.size:,} published "
                f"at {item.published_at} (the log was rewritten)",
                -1,
            )
        checked += 1
    return checked
