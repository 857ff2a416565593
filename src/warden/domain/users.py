"""The user registry folded from the ``users`` stream, and what each role may do. Pure core.

People authenticate with a personal token (kept only as a salted hash) or an Ed25519 key
(kept as its public half); the registry says who is active, with which role, at any
position of the log, so a revocation takes effect at once and old approvals stay checkable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from warden.domain import events as ev

ROLES = ("viewer", "operator", "approver", "admin")

# The one table of permissions: each action and the least role that may take it. Roles are
# ordered; a role may do all that the roles before it may (an admin may also approve).
PERMISSIONS: dict[str, str] = {
    "read": "viewer",  # incidents, audit, reports
    "killswitch.engage": "operator",  # stopping is always safe to allow early
    "quarantine.replay": "operator",  # input still passes every gate again
    "evaluate": "operator",  # record a candidate's scores; promoting it is an admin's
    "rollback": "operator",  # back to the version that ran before: always safe to allow early
    "approve": "approver",
    "reject": "approver",
    "killswitch.release": "admin",  # starting again is not
    "autonomy": "admin",
    "policy": "admin",
    "promote": "admin",  # new logic acts: on evidence, by an admin
    "users": "admin",
    "originals": "admin",  # unredacted event data kept with redact.keep_original
    "audit.keys": "admin",  # make or rotate the key that signs the audit log's checkpoints
}

NAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{0,63}")


def may(role: str, action: str) -> bool:
    """Whether ``role`` may take ``action`` (an unknown role or action may do nothing)."""
    least = PERMISSIONS.get(action)
    if least is None or role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(least)


def least_role(action: str) -> str:
    """The least role that may take ``action``."""
    return PERMISSIONS[action]


@dataclass(frozen=True, slots=True)
class User:
    """One person's registration: role, credentials, and when it held (log positions)."""

    name: str
    role: str
    token_salt: str = ""  # hex; the token itself is never stored
    token_hash: str = ""  # hex HMAC-SHA256(salt, token)
    public_key: str = ""  # base64 of the raw 32-byte Ed25519 key, "" when none
    added_at: str = ""
    added_by: str = ""
    added_position: int = 0
    revoked_at: str = ""
    revoked_by: str = ""
    revoked_position: int = 0  # 0 while active

    @property
    def active(self) -> bool:
        """True until revoked."""
        return not self.revoked_at

    def active_at(self, position: int) -> bool:
        """Whether this registration held at log ``position``."""
        if position < self.added_position:
            return False
        return not self.revoked_at or position < self.revoked_position


@dataclass(frozen=True, slots=True)
class Registry:
    """Every registration ever made, oldest first; a name re-added is a new registration."""

    users: tuple[User, ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()  # (event id, why) of events that did not apply

    def current(self, name: str) -> User | None:
        """The active registration of ``name``, if any."""
        return next((u for u in self.users if u.name == name and u.active), None)

    def at(self, name: str, position: int) -> User | None:
        """The registration of ``name`` that held at log ``position``, if any."""
        return next((u for u in self.users if u.name == name and u.active_at(position)), None)

    def active(self) -> tuple[User, ...]:
        """The registrations in force now."""
        return tuple(u for u in self.users if u.active)

    def has_admin(self) -> bool:
        """Whether some active user is an admin (else the first admin may bootstrap)."""
        return any(u.role == "admin" for u in self.active())

    def with_key(self, public_key: str) -> User | None:
        """The active user holding ``public_key``, if any."""
        if not public_key:
            return None
        return next((u for u in self.active() if u.public_key == public_key), None)


def observe(registry: Registry, event: ev.Event) -> Registry:
    """Fold one event of the users stream; one that does not apply is ignored with why."""
    data = event.data
    name = str(data.get("name", ""))
    if event.type == ev.USER_ADDED:
        role = str(data.get("role", ""))
        problem = ""
        if not NAME_PATTERN.fullmatch(name):
            problem = f"bad user name {name!r}"
        elif role not in ROLES:
            problem = f"unknown role {role!r}"
        elif registry.current(name) is not None:
            problem = f"{name} is already registered"
        elif registry.with_key(str(data.get("public_key", ""))) is not None:
            problem = f"the key of {name} already belongs to another user"
        if problem:
            return replace(registry, ignored=(*registry.ignored, (event.id, problem)))
        user = User(
            name=name,
            role=role,
            token_salt=str(data.get("token_salt", "")),
            token_hash=str(data.get("token_hash", "")),
            public_key=str(data.get("public_key", "")),
            added_at=event.time,
            added_by=str(data.get("by", "")),
            added_position=event.position,
        )
        return replace(registry, users=(*registry.users, user))
    if event.type == ev.USER_REVOKED:
        found = registry.current(name)
        if found is None:
            why = f"no active user {name!r} to revoke"
            return replace(registry, ignored=(*registry.ignored, (event.id, why)))
        revoked = replace(
            found,
            revoked_at=event.time,
            revoked_by=str(data.get("by", "")),
            revoked_position=event.position,
        )
        users = tuple(revoked if u is found else u for u in registry.users)
        return replace(registry, users=users)
    return registry


def fold(events: list[ev.Event]) -> Registry:
    """The registry after ``events`` (the users stream, in order)."""
    registry = Registry()
    for event in events:
        registry = observe(registry, event)
    return registry
