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
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain import promotion, versions
from warden.domain import users as users_fold
from warden.domain.errors import InvalidTransition, PolicyDenied, ValidationError
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.governance import identity
from warden.governance.approvals import ApprovalSettings, tally
from warden.runtime import candidates

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from warden.domain.catalog import Catalog
    from warden.domain.promotion import PromotionPolicy
    from warden.domain.users import Registry, User
    from warden.ingest.originals import OriginalsStore
    from warden.ports import EventStore

ORIGINALS_STREAM = "originals"
"""Who read which event's unredacted original (never the original itself)."""


# How far from now a decision signed elsewhere may be dated.
SIGNED_SKEW_S = 300.0


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
    reason: str = "",
) -> ev.Event:
    """Record a signed approval (or rejection) of the step an incident awaits; returns it.

    ``key`` is the approver's Ed25519 private key: it names the approver (the registered
    user holding its public half) and signs the decision. ``when`` is the time of the
    approval (now by default); ``settings`` the configured approvers, when known;
    ``reason`` why, signed with the rest.

    Raises :class:`ValidationError` (with the reason) when the approval would not count.
    """
    registry = users(store)
    user = identity.authenticate(registry, identity.Credential(key=key), decision)
    current = awaiting_approval(store, incident_prefix, step_hash)
    awaiting = current.step_hashes[current.next_step]
    stamp = ev.format_time(when or datetime.now(UTC))
    data = identity.sign_approval(
        key, user.name, current.id, awaiting, decision, stamp, nonce, reason
    )
    return _record_decision(store, registry, current, data, settings)


def awaiting_approval(
    store: EventStore, incident_prefix: str, step_hash: str | None = None
) -> incident_fold.Incident:
    """The one incident ``incident_prefix`` names, awaiting approval of ``step_hash``.

    Raises :class:`ValidationError` when no single incident matches, when it awaits no
    approval, or when it awaits another step than ``step_hash`` (when given).
    """
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
    return current


def record_signed(
    store: EventStore,
    user: User,
    incident_id: str,
    data: Mapping[str, str],
    settings: ApprovalSettings | None = None,
    now: datetime | None = None,
) -> ev.Event:
    """Record an approval (or rejection) signed elsewhere: a browser, an API client.

    ``user`` is who authenticated the request (by token or session); ``data`` holds the
    signed fields (:func:`~warden.governance.identity.sign_approval`'s). The signature must
    verify under ``user``'s registered key over this incident and the step hash it awaits,
    so a token alone never approves anything: the log proves who decided. It must have
    been signed within :data:`SIGNED_SKEW_S` of ``now`` (a signature kept for later, or
    dated ahead, is refused).
    """
    decision = str(data.get("decision", ""))
    if decision not in identity.DECISIONS:
        raise ValidationError(
            f"unknown decision {decision!r}", field="decision", fix="approve or reject"
        )
    identity.authorize(user, decision)
    if data.get("approver") != user.name:
        raise identity.AuthenticationError(
            f"the approval is signed as {data.get('approver')!r}, but you are {user.name}",
            fix="sign as yourself, with the key registered for you",
        )
    try:
        signed_at = ev.parse_time(str(data.get("signed_at", "")))
    except ValueError as exc:
        raise ValidationError(f"bad signed_at: {exc}", field="signed_at") from exc
    skew = abs((signed_at - (now or datetime.now(UTC))).total_seconds())
    if skew > SIGNED_SKEW_S:
        raise ValidationError(
            f"the decision was signed {skew:.0f} s away from now",
            field="signed_at",
            fix="sign again with the current time (ask for a fresh payload)",
        )
    registry = users(store)
    current = awaiting_approval(store, incident_id, str(data.get("step_hash", "")))
    if current.id != incident_id:
        raise ValidationError("give the full incident id to record a signed decision")
    problem = identity.approval_problem(registry, current.id, data, decision=decision)
    if problem is not None:
        raise ValidationError(f"{decision} by {user.name} refused: {problem}", field="signature")
    fields = ("step_hash", "approver", "decision", "signed_at", "nonce", "signature", "reason")
    kept = {k: str(data[k]) for k in fields if data.get(k)}
    kept["key"] = identity.fingerprint(user.public_key)
    return _record_decision(store, registry, current, kept, settings)


def _record_decision(
    store: EventStore,
    registry: Registry,
    current: incident_fold.Incident,
    data: dict[str, str],
    settings: ApprovalSettings | None,
) -> ev.Event:
    """Append a signed decision once it fits the state machine and counts in the tally."""
    decision, name, awaiting = data["decision"], data["approver"], data["step_hash"]
    event = ev.derived_event(
        ev.APPROVAL_GRANTED if decision == "approve" else ev.APPROVAL_REJECTED,
        incident_stream(current.id),
        data,
        data["signed_at"],
        key=f"{awaiting}:{name}:{data['nonce']}",
        subject=current.service,
        correlation_id=current.correlation_id,
        traceparent=current.traceparent,
    )
    try:
        after = incident_fold.apply(current, event)
    except InvalidTransition as exc:
        raise ValidationError(str(exc), field="approval") from exc
    _require_counted(after, registry, settings or ApprovalSettings(), name, decision)
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
    user = _authenticated(store, credential, CONTROL_ACTIONS[type_], claimed)
    return control(store, type_, {**data, "by": user.name, "auth": credential.method}, when)


def read_original(
    store: EventStore,
    originals: OriginalsStore,
    credential: identity.Credential,
    event_id: str,
    when: datetime,
    claimed: str | None = None,
) -> dict[str, Any]:
    """The unredacted original of ``event_id``, for an admin only; the read is audited.

    The log records who read which event's original, never the original itself.

    Raises:
        AuthenticationError: the credential is not an admin's (or not ``claimed``'s).
        ValidationError: no original is kept for the event, or it does not open.
    """
    user = _authenticated(store, credential, "originals", claimed)
    original = originals.read(event_id)
    stamp = ev.format_time(when)
    read = ev.derived_event(
        ev.ORIGINAL_READ,
        ORIGINALS_STREAM,
        {"event_id": event_id, "by": user.name},
        stamp,
        key=f"{event_id}:{user.name}:{stamp}",
    )
    store.append(ORIGINALS_STREAM, [read])
    return original


def promote(
    store: EventStore,
    credential: identity.Credential,
    kind: str,
    name: str,
    to: str,
    when: datetime,
    policy: PromotionPolicy,
    catalog: Catalog,
    *,
    version: str | None = None,
    claimed: str | None = None,
) -> ev.Event:
    """Promote a candidate on evidence, as an admin; the evidence goes with the event.

    Authenticates ``credential`` (the CLI's way), then :func:`promote_as`.

    Raises:
        ValidationError: An unknown kind or level, or no such candidate.
        PolicyDenied: The evidence falls short; ``reasons`` lists each unmet threshold.
    """
    _check_promotion(kind, to)
    user = _authenticated(store, credential, "promote", claimed)
    return promote_as(
        store, user, credential.method, kind, name, to, when, policy, catalog, version=version
    )


def promote_as(
    store: EventStore,
    user: User,
    auth: str,
    kind: str,
    name: str,
    to: str,
    when: datetime,
    policy: PromotionPolicy,
    catalog: Catalog,
    *,
    version: str | None = None,
) -> ev.Event:
    """Promote a candidate on evidence as ``user``, who authenticated by ``auth``.

    The one path of a promotion, from the CLI (:func:`promote`) or the API: the role must
    allow ``promote``, the evidence must meet every threshold, and the event records who,
    how, the thresholds and the evidence.

    Raises:
        AuthenticationError: The user's role does not allow a promotion.
        ValidationError: An unknown kind or level, or no such candidate.
        PolicyDenied: The evidence falls short; ``reasons`` lists each unmet threshold.
    """
    _check_promotion(kind, to)
    identity.authorize(user, "promote")
    track = candidates.lifecycle_of(store).track(kind, name)
    try:
        chosen = candidates.choose_candidate(track, to, version)
    except ValueError as exc:
        raise ValidationError(
            str(exc), field="NAME", fix="see `warden versions` for what is loaded"
        ) from None
    if chosen not in track.loaded:
        raise ValidationError(
            f"{kind} {name} version {chosen} is not loaded",
            field="--version",
            fix="see `warden versions` for what is loaded",
        )
    evidence, actions = candidates.evidence_for(store, kind, name, chosen)
    risks = [(a, spec.risk.value if (spec := catalog.get(a)) else "") for a in actions]
    thresholds = policy.for_actions(risks)
    unmet = promotion.unmet(thresholds, evidence)
    if unmet:
        raise PolicyDenied(
            f"{kind} {name} {chosen} cannot be promoted to {to}: " + "; ".join(unmet), tuple(unmet)
        )
    data: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "version": chosen,
        "to": to,
        "previous": track.live,
        "by": user.name,
        "auth": auth,
        "evidence": evidence.to_dict(),
        "thresholds": {
            "min_shadow_proposals": thresholds.min_shadow_proposals,
            "min_agreement_pct": thresholds.min_agreement_pct,
            "max_wrong": thresholds.max_wrong,
            "actions": actions,
        },
    }
    if to == "canary":
        data["fraction"] = policy.canary.fraction
        data["services"] = list(policy.canary.services)
    return _lifecycle_event(store, ev.VERSION_PROMOTED, data, when, f"{kind}:{name}:{chosen}:{to}")


def _check_promotion(kind: str, to: str) -> None:
    """Refuse a kind that cannot be promoted, or a stage it cannot be promoted to."""
    if kind not in versions.KINDS or kind == "model":
        raise ValidationError(
            f"cannot promote a {kind!r}", field="KIND", fix="give agent, runbook or bundle"
        )
    if to not in versions.STAGES:
        raise ValidationError(
            f"cannot promote to {to!r}", field="--to", fix="give " + ", ".join(versions.STAGES)
        )


def roll_back(
    store: EventStore,
    credential: identity.Credential,
    kind: str,
    name: str,
    when: datetime,
    *,
    reason: str = "",
    claimed: str | None = None,
) -> ev.Event:
    """Restore the previous version of ``kind`` ``name`` at once, as an operator or admin.

    Authenticates ``credential`` (the CLI's way), then :func:`roll_back_as`.

    Raises:
        ValidationError: Nothing to roll back to.
    """
    user = _authenticated(store, credential, "rollback", claimed)
    return roll_back_as(store, user, credential.method, kind, name, when, reason=reason)


def roll_back_as(
    store: EventStore,
    user: User,
    auth: str,
    kind: str,
    name: str,
    when: datetime,
    *,
    reason: str = "",
) -> ev.Event:
    """Restore the previous version as ``user``, who authenticated by ``auth``.

    Raises:
        AuthenticationError: The user's role does not allow a rollback.
        ValidationError: Nothing to roll back to.
    """
    identity.authorize(user, "rollback")
    track = candidates.lifecycle_of(store).track(kind, name)
    restored = track.previous()
    current = track.canary.version if track.canary is not None else track.live
    # A candidate that was the first of its name to act goes back to shadow.
    if not current or (not restored and not track.pinned):
        raise ValidationError(
            f"{kind} {name} has no previous version to restore",
            field="NAME",
            fix="see `warden versions`: a rollback needs a retired version still loaded",
        )
    data = {
        "kind": kind,
        "name": name,
        "version": current,
        "restored": restored,
        "reason": reason or "rolled back by hand",
        "by": user.name,
        "auth": auth,
        "automatic": False,
    }
    return _lifecycle_event(store, ev.VERSION_ROLLED_BACK, data, when, f"{kind}:{name}:{current}")


def _lifecycle_event(
    store: EventStore, type_: str, data: dict[str, Any], when: datetime, key: str
) -> ev.Event:
    stamp = ev.format_time(when)
    event = ev.derived_event(type_, ev.LIFECYCLE_STREAM, data, stamp, key=f"{key}:{stamp}")
    (stored,) = store.append(ev.LIFECYCLE_STREAM, [event])
    return stored


def _authenticated(
    store: EventStore, credential: identity.Credential, action: str, claimed: str | None
) -> User:
    """The user behind ``credential`` if allowed ``action``; ``claimed`` only narrows."""
    user = authenticate(store, credential, action)
    if claimed is not None and claimed != user.name:
        raise identity.AuthenticationError(
            f"your credential is {user.name}'s, not {claimed!r}",
            fix="drop --as, or use that person's own credential",
        )
    return user
