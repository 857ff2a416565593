"""Who is acting: tokens, keys, roles, the user registry and signed approvals (hypothesis)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.errors import InvalidTransition, ValidationError
from warden.domain.incident import Incident, apply, fold
from warden.domain.plans import Plan, Step, step_hash
from warden.domain.users import PERMISSIONS, ROLES, Registry, may, observe
from warden.governance import identity
from warden.governance.approvals import ApprovalSettings, tally

INCIDENT = "inc1"
AGENT = "service-down"
PLAN = Plan(AGENT, (Step("restart_service", "payments"),), "probe failed", ("e1",), 0.9)
HASH = step_hash(INCIDENT, 0, PLAN.steps[0])
STAMP = "2026-11-25T12:00:05.000000Z"
PEOPLE = ("alice", "bob", "carol", "eve", AGENT)
KEYS = {name: Ed25519PrivateKey.generate() for name in PEOPLE}


def user_event(type_: str, position: int, **data: Any) -> ev.Event:
    return ev.Event(
        id=f"u{position}", source="test", type=type_, time=STAMP, data=data,
        stream=ev.USERS_STREAM, position=position,
    )  # fmt: skip


def added(name: str, role: str, position: int, key: Ed25519PrivateKey | None = None) -> ev.Event:
    _, salt, hashed = identity.issue_token()
    public = identity.public_key_of(key or KEYS[name])
    return user_event(
        ev.USER_ADDED, position, name=name, role=role, token_salt=salt, token_hash=hashed,
        public_key=public, by="root",
    )  # fmt: skip


def awaiting(approvers: int = 2) -> Incident:
    decision = Decision(Outcome.NEEDS_APPROVAL, HASH, (Reason("p", "m"),), approvers)
    history = [
        ev.Event("o", "test", ev.INCIDENT_OPENED, STAMP, {
            "incident_id": INCIDENT, "service": "payments", "first_signal_at": STAMP}),
        ev.Event("p", "test", ev.PLAN_PROPOSED, STAMP, {"plan": PLAN.to_dict()}),
        ev.Event("d", "test", ev.DECISION_RECORDED, STAMP, {"decision": decision.to_dict()}),
    ]  # fmt: skip
    incident = fold(history)
    assert incident is not None
    return incident


def approval(data: dict[str, str], n: int, type_: str = ev.APPROVAL_GRANTED) -> ev.Event:
    return ev.Event(f"a{n}", "test", type_, STAMP, data, stream=f"incident-{INCIDENT}")


# -- tokens and keys ---------------------------------------------------------------------


def test_a_token_is_kept_only_as_a_salted_hash_and_names_its_user() -> None:
    token, salt, hashed = identity.issue_token()
    assert token.startswith(identity.TOKEN_PREFIX)
    assert hashed == identity.hash_token(token, salt) != identity.hash_token(token, "00" * 16)
    event = user_event(ev.USER_ADDED, 1, name="bob", role="operator", token_salt=salt,
                       token_hash=hashed, by="root")  # fmt: skip
    registry = observe(Registry(), event)
    assert token not in str(event.data)
    assert identity.token_user(registry, token).name == "bob"
    with pytest.raises(identity.AuthenticationError, match="unknown or revoked token"):
        identity.token_user(registry, token[:-2] + "xx")
    revoked = observe(registry, user_event(ev.USER_REVOKED, 2, name="bob", by="root"))
    with pytest.raises(identity.AuthenticationError, match="unknown or revoked token"):
        identity.token_user(revoked, token)
    with pytest.raises(identity.AuthenticationError, match="not a Warden token"):
        identity.token_user(registry, "hunter2")


def test_public_keys_from_openssh_pem_and_raw_and_nothing_else() -> None:
    public = KEYS["alice"].public_key()
    raw = base64.b64encode(
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    openssh = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    for text in (f"{openssh} alice@laptop\n", pem, raw):
        assert identity.public_key_text(text) == raw
    ecdsa = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    with pytest.raises(ValidationError, match="only Ed25519 keys"):
        identity.public_key_text(ecdsa)
    with pytest.raises(ValidationError, match="not a readable public key"):
        identity.public_key_text("ssh-ed25519 garbage")


def test_private_keys_from_openssh_and_pem() -> None:
    key = KEYS["bob"]
    for fmt in (serialization.PrivateFormat.OpenSSH, serialization.PrivateFormat.PKCS8):
        data = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        assert identity.public_key_of(identity.load_private_key(data)) == identity.public_key_of(
            key
        )
    with pytest.raises(identity.AuthenticationError, match="not a readable private key"):
        identity.load_private_key(b"-----BEGIN PRIVATE KEY-----\nnope\n")
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert identity.public_key_of(identity.load_private_key(locked, b"secret")) == (
        identity.public_key_of(key)
    )
    with pytest.raises(identity.AuthenticationError, match="its passphrase if it has one"):
        identity.load_private_key(locked)


@pytest.mark.parametrize(("role", "action"), [(r, a) for r in ROLES for a in PERMISSIONS])
def test_the_role_table(role: str, action: str) -> None:
    allowed = {
        "viewer": {"read"},
        "operator": {"read", "killswitch.engage", "quarantine.replay", "evaluate", "rollback"},
        "approver": {
            "read",
            "killswitch.engage",
            "quarantine.replay",
            "evaluate",
            "rollback",
            "approve",
            "reject",
        },
        "admin": set(PERMISSIONS),
    }
    assert may(role, action) == (action in allowed[role])
    assert not may(role, "launch")
    assert not may("root", action)


def test_the_registry_keeps_history_and_refuses_a_second_name_for_one_key() -> None:
    registry = observe(Registry(), added("alice", "approver", 1))
    registry = observe(registry, added("mallory", "approver", 2, key=KEYS["alice"]))
    assert registry.current("mallory") is None
    assert registry.ignored[-1][1] == "the key of mallory already belongs to another user"
    registry = observe(registry, user_event(ev.USER_REVOKED, 3, name="alice", by="root"))
    registry = observe(registry, added("alice", "viewer", 4, key=KEYS["bob"]))
    assert registry.at("alice", 2) is not None and registry.at("alice", 2).role == "approver"
    assert registry.current("alice") is not None and registry.current("alice").role == "viewer"
    assert observe(registry, user_event(ev.USER_REVOKED, 5, name="zed")).ignored[-1][1] == (
        "no active user 'zed' to revoke"
    )


# -- signed approvals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("approver", "bob"), ("step_hash", "0" * 64), ("signed_at", "2026-11-25T12:00:06.000000Z"),
     ("nonce", "00"), ("signature", base64.b64encode(b"x" * 64).decode()),
     ("signature", "not base64!"), ("decision", "reject")],
)  # fmt: skip
def test_a_signature_binds_every_field(field: str, value: str) -> None:
    registry = observe(
        observe(Registry(), added("alice", "approver", 1)), added("bob", "approver", 2)
    )
    data = identity.sign_approval(KEYS["alice"], "alice", INCIDENT, HASH, "approve", STAMP)
    assert identity.approval_problem(registry, INCIDENT, data) is None
    assert identity.approval_problem(registry, "inc2", data) is not None  # another incident
    assert identity.approval_problem(registry, INCIDENT, {**data, field: value}) is not None


def test_forged_unknown_revoked_and_underprivileged_approvals_are_ignored_with_why() -> None:
    registry = Registry()
    for n, (name, role) in enumerate([("alice", "approver"), ("bob", "operator"),
                                      ("carol", "approver")], 1):  # fmt: skip
        registry = observe(registry, added(name, role, n))
    registry = observe(registry, user_event(ev.USER_REVOKED, 9, name="carol", by="root"))
    incident = awaiting()
    signed = [
        identity.sign_approval(KEYS["eve"], "eve", INCIDENT, HASH, "approve", STAMP),
        identity.sign_approval(KEYS["bob"], "bob", INCIDENT, HASH, "approve", STAMP),
        identity.sign_approval(KEYS["carol"], "carol", INCIDENT, HASH, "approve", STAMP),
        identity.sign_approval(KEYS["eve"], "alice", INCIDENT, HASH, "approve", STAMP),
        {"step_hash": HASH, "approver": "mallory"},  # written by hand
    ]
    for n, data in enumerate(signed):
        incident = apply(incident, approval(data, n))
    result = tally(incident, incident.decisions[-1], ApprovalSettings(), users=registry)
    assert result.counted == ()
    assert dict(result.ignored) == {
        "eve": "eve is not a registered user",
        "bob": "bob has the role operator, which may not approve",
        "carol": "carol is revoked",
        "alice": "the signature of alice's approval does not verify",
        "mallory": "mallory is not a registered user",
    }


def test_a_valid_rejection_rejects_and_an_agent_cannot_approve() -> None:
    registry = observe(observe(Registry(), added("alice", "approver", 1)), added(AGENT, "admin", 2))
    incident = awaiting(approvers=1)
    own = identity.sign_approval(KEYS[AGENT], AGENT, INCIDENT, HASH, "approve", STAMP)
    with pytest.raises(InvalidTransition, match="proposer cannot approve"):
        apply(incident, approval(own, 0))
    no = identity.sign_approval(KEYS["alice"], "alice", INCIDENT, HASH, "reject", STAMP)
    incident = apply(incident, approval(no, 1, ev.APPROVAL_REJECTED))
    result = tally(incident, incident.decisions[-1], ApprovalSettings(), users=registry)
    assert result.rejected == ("alice",)
    assert not result.met


# -- the property ------------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(PEOPLE), st.sampled_from(ROLES)),
        st.tuples(st.just("add_as"), st.sampled_from(PEOPLE), st.sampled_from(PEOPLE)),
        st.tuples(st.just("revoke"), st.sampled_from(PEOPLE)),
        # (signer's key, the name claimed, tampered after signing)
        st.tuples(
            st.just("approve"), st.sampled_from(PEOPLE), st.sampled_from(PEOPLE), st.booleans()
        ),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
@example([("add", "alice", "approver"), ("add_as", "bob", "alice"),
          ("approve", "alice", "alice", False), ("approve", "alice", "bob", False)])  # fmt: skip
@example([("add", "alice", "approver"), ("approve", "alice", "alice", False),
          ("revoke", "alice")])  # fmt: skip
def test_quorum_counts_only_distinct_authorised_identities(ops: list[tuple[Any, ...]]) -> None:
    registry = Registry()
    incident = awaiting()
    signers: dict[str, tuple[str, bool]] = {}  # claimed name -> (whose key signed, tampered)
    for n, op in enumerate(ops, 1):
        if op[0] == "add":
            registry = observe(registry, added(op[1], op[2], n))
        elif op[0] == "add_as":  # one person's key under another name
            registry = observe(registry, added(op[2], "approver", n, key=KEYS[op[1]]))
        elif op[0] == "revoke":
            registry = observe(registry, user_event(ev.USER_REVOKED, n, name=op[1], by="root"))
        else:
            _, signer, claimed, tampered = op
            data = identity.sign_approval(KEYS[signer], claimed, INCIDENT, HASH, "approve", STAMP)
            if tampered:
                data["nonce"] = "f" * 32
            try:
                incident = apply(incident, approval(data, n))
            except InvalidTransition:
                continue
            signers[claimed] = (signer, tampered)
    result = tally(incident, incident.decisions[-1], ApprovalSettings(), frozenset({AGENT}),
                   users=registry)  # fmt: skip
    assert len(set(result.counted)) == len(result.counted)
    keys = set()
    for name in result.counted:
        user = registry.current(name)
        assert user is not None, f"{name} is not an active user"
        assert may(user.role, "approve")
        assert name != AGENT
        signer, tampered = signers[name]
        assert not tampered
        assert identity.public_key_of(KEYS[signer]) == user.public_key, "someone else's key"
        keys.add(user.public_key)
    assert len(keys) == len(result.counted), "one key counted twice"
    assert result.met == (len(result.counted) >= 2)
