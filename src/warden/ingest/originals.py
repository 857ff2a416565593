"""Originals of redacted event data, encrypted at rest, for admins only. Data plane.

With ``redact: {keep_original: true}`` the ingest gate still stores only the redacted
event; what redaction replaced is kept here, beside nothing else::

    <state>/originals/originals.db   event id -> AES-256-GCM sealed original (0600, 0700 dir)
    <state>/originals/key-path       where the key is, when not the default
    ~/.config/warden/originals.key   the 256-bit key, 0600 (default; redact.key_path)

The key never lies in the state directory (whoever can read the state could read the
originals otherwise), as the audit signing key does not. Each record is sealed with the
event id as associated data, so a record moved under another id does not open. Nothing
in Warden reads this store but ``warden event original`` (an admin's credential):
originals never reach the event log, the audit log, logs, the UI or a model's context.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warden.domain.errors import ConfigError, ValidationError
from warden.store.private import FILE_MODE, config_dir, private_dir, private_file

__all__ = ["OriginalsStore", "default_key_path"]

KEY_POINTER = "key-path"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS originals (
    event_id TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL
);
"""


def default_key_path() -> Path:
    """Where the originals key lives unless ``redact.key_path`` says otherwise."""
    return config_dir() / "originals.key"


class OriginalsStore:
    """Sealed originals of redacted events, by event id."""

    def __init__(self, state_dir: Path, key_path: Path | None = None, *, create: bool = True):
        """Open (with ``create``, make) the store of ``state_dir`` and its key.

        ``key_path`` is the configured key; without it, the one the state directory
        points to, else :func:`default_key_path`.

        Raises:
            ConfigError: the key lies inside the state directory, is readable by others,
                is malformed, or is missing (without ``create``); or there is no store.
        """
        self.root = state_dir / "originals"
        pointer = self.root / KEY_POINTER
        if key_path is None and pointer.exists():
            key_path = Path(pointer.read_text(encoding="utf-8").strip())
        self.key_path = (key_path or default_key_path()).expanduser()
        _outside(self.key_path, state_dir)
        if not create and not (self.root / "originals.db").exists():
            raise ConfigError(
                f"no originals are kept in {state_dir}/ (set redact.keep_original: true"
                " in warden.yaml to keep them from now on)"
            )
        private_dir(self.root)
        if create and key_path is not None and self.key_path != default_key_path():
            private_file(pointer).write_text(f"{self.key_path.resolve()}\n", encoding="utf-8")
        self._aead = AESGCM(_key(self.key_path, create=create))
        path = private_file(self.root / "originals.db")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        for name in ("originals.db-wal", "originals.db-shm"):
            if (self.root / name).exists():
                private_file(self.root / name)

    def keep(self, event_id: str, original: dict[str, Any]) -> None:
        """Seal and keep ``original`` under ``event_id`` (the first one kept wins)."""
        nonce = os.urandom(12)
        plain = json.dumps(original, sort_keys=True, ensure_ascii=False).encode("utf-8")
        sealed = self._aead.encrypt(nonce, plain, event_id.encode("utf-8", "surrogatepass"))
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO originals (event_id, nonce, sealed) VALUES (?, ?, ?)",
                (event_id, nonce, sealed),
            )

    def read(self, event_id: str) -> dict[str, Any]:
        """The original kept for ``event_id``.

        Raises:
            ValidationError: none is kept for it, or its record does not open with this
                key (another key, or a record altered or moved).
        """
        with self._lock:
            row = self._db.execute(
                "SELECT nonce, sealed FROM originals WHERE event_id = ?", (event_id,)
            ).fetchone()
        if row is None:
            raise ValidationError(
                f"no original is kept for event {event_id!r}",
                field="ID",
                fix="give the id of an event whose data was redacted while keep_original was on",
            )
        try:
            plain = self._aead.decrypt(row[0], row[1], event_id.encode("utf-8", "surrogatepass"))
        except InvalidTag:
            raise ValidationError(
                f"the original of {event_id!r} does not open with the key {self.key_path}",
                field="--originals-key",
                fix="give the key it was sealed with; a record altered or moved never opens",
            ) from None
        value: dict[str, Any] = json.loads(plain)
        return value

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


def _outside(key_path: Path, state_dir: Path) -> None:
    state = state_dir.resolve()
    key = key_path.resolve()
    if key == state or state in key.parents:
        raise ConfigError(
            f"config error: redact.key_path: {key_path} is inside the state directory"
            f" {state_dir}; whoever can read the state could open the originals. Put it"
            f" outside (default {default_key_path()})"
        )


def _key(path: Path, *, create: bool) -> bytes:
    """The 32-byte key in ``path`` (base64); made, 0600 in a 0700 directory, when missing."""
    if not path.exists():
        if not create:
            raise ConfigError(f"the originals key {path} is missing; give --originals-key")
        private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:  # another process made it first
            return _key(path, create=False)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"the originals key {path} is readable by others (mode {mode:o}); chmod 600 {path}"
        )
    try:
        key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (ValueError, UnicodeDecodeError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"the originals key {path} is not a base64 256-bit key")
    return key
