"""Operator commands against the store: approve a step, flip controls, manage users. Runtime.

The CLI, the API and the tests issue commands through these functions, so a command is
validated the same way wherever it comes from: the caller authenticates with a personal
credential whose role allows the command (:mod:`warden.governance.identity`), the identity
recorded is the authenticated one, and an approval is signed and must fit the incident's
state machine and count in the tally (the exact hash awaiting, not the proposer, once per
person, an allowed approver) before it is stored.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain import users as users_fold
from warden.domain.errors import InvalidTransition, ValidationError
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.governance import identity
from warden.governance.approvals import ApprovalSettings, tally

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from warden.domain.users import Registry, User
    from warden.ports import EventStore


def users(store: EventStore) -> Registry:
    """The user registry as the log holds it now."""
    return users_fold.fold(store.read_stream(ev.USERS_STREAM))


def authenticate(store: EventStore, credential: identity.Credential, action: str) -> User:
    """The user behind ``credential`` if its role allows ``action``; else why not."""
    return identity.authenticate(users(store), credential, action)


def approve(
    store: EventStore,
    incident_prefix: str,
    key: Ed25519PrivateKey,
    step_hash: str | None = None,
    when: datetime | None = None,
    *,
    decision: str = "approve",
    settings: ApprovalSettings | None = None,
    nonce: str = "",
) -> ev.Event:
    """Record a signed approval (or rejection) of the step an incident awaits; returns it.

    ``key`` is the approver's Ed25519 private key: it names the approver (the registered
    user holding its public half) and signs the decision. ``when`` is the time of the
    approval (now by default); ``settings`` the configured approvers, when known.

    Raises :class:`ValidationError` (with the reason) when the approval would not count.
    """
    registry = users(store)
    user = identity.authenticate(registry, identity.Credential(key=key), decision)
    # Only the streams the prefix names are folded, not every incident in the log.
    found = incident_fold.fold_all(
        e
        for name in store.streams(incident_stream(incident_prefix))
        for e in store.read_stream(name)
    )
    matches = [i for i in found.values() if i.id.startswith(incident_prefix)]
    if len(matches) != 1:
        raise ValidationError(
            f"{len(matches)} incidents match {incident_prefix!r}",
            field="incident",
            fix="give more characters of the incident id (see `warden incidents`)",
        )
    current = matches[0]
    if current.state is not State.AWAITING_APPROVAL:
        raise ValidationError(
            f"incident {current.id[:12]} is {current.state.value}, not awaiting approval",
            field="incident",
        )
    awaiting = current.step_hashes[current.next_step]
    if step_hash is not None and step_hash != awaiting:
        raise ValidationError(
            f"the incident awaits approval of {awaiting}, not {step_hash}", field="step_hash"
        )
    stamp = ev.format_time(when or datetime.now(UTC))
    data = identity.sign_approval(key, user.name, current.id, awaiting, decision, stamp, nonce)
    event = ev.derived_event(
        ev.APPROVAL_GRANTED if decision == "approve" else ev.APPROVAL_REJECTED,
        incident_stream(current.id),
        data,
        stamp,
        key=f"{awaiting}:{user.name}:{data['nonce']}",
        subject=current.service,
        correlation_id=current.correlation_id,
        traceparent=current.traceparent,
    )
    try:
        after = incident_fold.apply(current, event)
    except InvalidTransition as exc:
        raise ValidationError(str(exc), field="approval") from exc
    _require_counted(after, registry, settings or ApprovalSettings(), user.name, decision)
    (stored,) = store.append(incident_stream(current.id), [event], expected_version=current.version)
    return stored


def _require_counted(
    after: incident_fold.Incident,
    registry: Registry,
    settings: ApprovalSettings,
    name: str,
    decision: str,
) -> None:
    """Refuse, with the tally's reason, an approval the runtime would not count."""
    pending = after.decision_for(after.step_hashes[after.next_step])
    assert pending is not None  # awaiting approval means a decision asked for it
    agents = frozenset({after.plan.agent}) if after.plan is not None else frozenset()
    counted = tally(after, pending, settings, agents, users=registry)
    if name in (counted.rejected if decision == "reject" else counted.counted):
        return
    why = next((w for who, w in reversed(counted.ignored) if who == name), "it does not count")
    raise ValidationError(f"{decision} by {name} refused: {why}", field="approval")


def add_user(
    store: EventStore,
    name: str,
    role: str,
    by: User | None,
    when: datetime,
    *,
    public_key: str = "",
    entropy: Callable[[int], bytes] = secrets.token_bytes,
) -> tuple[ev.Event, str]:
    """Register a person; returns the event and their new token (shown once, never kept).

    ``by`` is the authenticated admin adding them; None only to bootstrap the first admin,
    which is allowed while no active admin exists.
    """
    registry = users(store)
    if by is None and registry.has_admin():
        raise identity.AuthenticationError("adding a user needs an admin's credential")
    if by is None and role != "admin":
        raise ValidationError(
            "the first user must be an admin", field="role", fix="add yourself with --role admin"
        )
    if by is not None:
        identity.authorize(by, "users")
    if not users_fold.NAME_PATTERN.fullmatch(name):
        raise ValidationError(
            f"bad user name {name!r}",
            field="name",
            fix="use lower-case letters, digits, '.', '_' or '-', starting with a letter",
        )
    if role not in users_fold.ROLES:
        raise ValidationError(
            f"unknown role {role!r}", field="role", fix=f"one of {', '.join(users_fold.ROLES)}"
        )
    if registry.current(name) is not None:
        raise ValidationError(
            f"{name} is already registered", field="name", fix="revoke them first to re-issue"
        )
    holder = registry.with_key(public_key)
    if holder is not None:
        raise ValidationError(
            f"that key already belongs to {holder.name}",
            field="public key",
            fix="each person registers their own key",
        )
    token, salt, hashed = identity.issue_token(entropy)
    stamp = ev.format_time(when)
    data = {
        "name": name,
        "role": role,
        "token_salt": salt,
        "token_hash": hashed,
        "public_key": public_key,
        "by": by.name if by is not None else "(bootstrap)",
    }
    event = ev.derived_event(ev.USER_ADDED, ev.USERS_STREAM, data, stamp, key=f"{name}:{salt}")
    (stored,) = store.append(ev.USERS_STREAM, [event])
    return stored, token


def revoke_user(store: EventStore, name: str, by: User, when: datetime) -> ev.Event:
    """Revoke a person's credentials at once; their pending approvals stop counting."""
    identity.authorize(by, "users")
    registry = users(store)
    found = registry.current(name)
    if found is None:
        raise ValidationError(
            f"no active user {name!r}", field="name", fix="see `warden user list`"
        )
    others = [u for u in registry.active() if u.role == "admin" and u.name != name]
    if found.role == "admin" and not others:
        raise ValidationError(
            f"{name} is the last admin", field="name", fix="add another admin first"
        )
    stamp = ev.format_time(when)
    data = {"name": name, "by": by.name}
    event = ev.derived_event(ev.USER_REVOKED, ev.USERS_STREAM, data, stamp, key=f"{name}:{stamp}")
    (stored,) = store.append(ev.USERS_STREAM, [event])
    return stored


def control(store: EventStore, type_: str, data: dict[str, str], when: datetime) -> ev.Event:
    """Append one operator control event (kill switch, autonomy level) to the control stream.

    The caller has authenticated whoever ``data["by"]`` names (see :func:`authenticate`).
    """
    allowed = (ev.KILL_SWITCH_ENGAGED, ev.KILL_SWITCH_RELEASED, ev.AUTONOMY_CHANGED)
    if type_ not in allowed:
        raise ValidationError(f"{type_} is not an operator control", field="type")
    stamp = ev.format_time(when)
    event = ev.derived_event(type_, ev.CONTROL_STREAM, data, stamp, key=f"{stamp}:{data}")
    (stored,) = store.append(ev.CONTROL_STREAM, [event])
    return stored


# The permission (warden.domain.users.PERMISSIONS) each operator control needs.
CONTROL_ACTIONS = {
    ev.KILL_SWITCH_ENGAGED: "killswitch.engage",
    ev.KILL_SWITCH_RELEASED: "killswitch.release",
    ev.AUTONOMY_CHANGED: "autonomy",
}


def operate(
    store: EventStore,
    credential: identity.Credential,
    type_: str,
    data: dict[str, str],
    when: datetime,
    *,
    claimed: str | None = None,
) -> ev.Event:
    """Authenticate, check the role allows this control, and record it under that identity.

    ``claimed`` (a name the caller says it is) only ever narrows: it must match.
    """
    if type_ not in CONTROL_ACTIONS:
        raise ValidationError(f"{type_} is not an operator control", field="type")
    user = authenticate(store, credential, CONTROL_ACTIONS[type_])
    if claimed is not None and claimed != user.name:
        raise identity.AuthenticationError(
            f"your credential is {user.name}'s, not {claimed!r}",
            fix="drop --as, or use that person's own credential",
        )
    return control(store, type_, {**data, "by": user.name, "auth": credential.method}, when)
