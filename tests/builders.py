"""Builders shared by tests: one valid event to vary, a candidate policy bundle, people."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warden import operations
from warden.governance import identity
from warden.governance.policy import BUILTIN_BUNDLE

if TYPE_CHECKING:
    from pathlib import Path

    from warden.ports import EventStore

FROZEN_RESTARTS = "no-restarts.cedar"


def probe_cloudevent(**overrides: Any) -> dict[str, Any]:
    """A valid structured-mode ``warden.probe.failed`` CloudEvent, with ``overrides`` applied."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e1",
        "source": "warden://probe/payments",
        "type": "warden.probe.failed",
        "time": "2026-11-25T12:00:00Z",
        "subject": "payments",
        "data": {"service": "payments", "probe": "http://x/health", "error": "refused"},
    }
    event.update(overrides)
    return event


def frozen_restarts_bundle(directory: Path) -> Path:
    """The built-in bundle plus a forbid on restart_service (policy ``no-restarts``)."""
    shutil.copytree(BUILTIN_BUNDLE, directory)
    (directory / FROZEN_RESTARTS).write_text(
        '@id("no-restarts") @message("restarts are frozen")\n'
        'forbid (principal, action == Action::"restart_service", resource);\n'
    )
    return directory


@dataclass(frozen=True)
class Person:
    """A registered user as tests hold them: name, private key and token."""

    name: str
    key: Ed25519PrivateKey
    token: str

    def key_file(self, directory: Path) -> Path:
        """Their private key as a PEM file (what `--key` reads)."""
        path = directory / f"{self.name}.key"
        path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def token_file(self, directory: Path) -> Path:
        """Their token in a file (what `--token-file` reads)."""
        path = directory / f"{self.name}.token"
        path.write_text(self.token + "\n")
        return path


def register(
    store: EventStore,
    name: str,
    role: str = "approver",
    when: datetime | None = None,
    *,
    seed: str = "",
) -> Person:
    """Register ``name`` with a fresh key (an admin ``root`` is bootstrapped when needed).

    With a ``seed`` the key, token and salt are derived from it and the name, so a
    recorded history that registers people is the same every time.
    """
    moment = when or datetime.now(UTC)
    registry = operations.users(store)
    by = None
    if registry.has_admin():
        by = next(u for u in registry.active() if u.role == "admin")
    elif role != "admin":
        register(store, "root", "admin", moment, seed=seed)
        by = operations.users(store).current("root")
    if seed:
        key = identity.seeded_key(f"{seed}:{name}")
        entropy = identity.seeded_entropy(f"{seed}:{name}")
    else:
        key, entropy = Ed25519PrivateKey.generate(), secrets.token_bytes
    _, token = operations.add_user(
        store, name, role, by, moment, public_key=identity.public_key_of(key), entropy=entropy
    )
    return Person(name, key, token)
