"""Who is acting: personal credentials to identities, and signed approvals. Control plane.

Pure verification, no storage: a token or an Ed25519 key is checked against the user
registry (:mod:`warden.domain.users`) to give the authenticated :class:`~warden.domain.users.User`,
whose role then says what it may do. Approvals are signed with the approver's key over a
canonical payload binding who, which incident, the exact step hash, the decision, when and
a nonce (and the approver's reason, when given), so anyone holding the log can check them.
The CLI, the HTTP API and the web console call the same functions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warden.domain import events as ev
from warden.domain import users as users_fold
from warden.domain.canonical import canonical_json
from warden.domain.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from warden.domain.users import Registry, User

TOKEN_PREFIX = "wdn_"
DECISIONS = ("approve", "reject")
APPROVAL_PAYLOAD = "warden.approval.v1"
HOW_TO_AUTHENTICATE = (
    "authenticate with --token-file PATH or WARDEN_TOKEN (a token from `warden user add`), or"
    " --key PATH (your Ed25519 private key, registered with `warden user add --public-key`)"
)


class AuthenticationError(ValidationError):
    """A credential did not authenticate, or its holder may not do what was asked."""

    def __init__(self, message: str, fix: str = HOW_TO_AUTHENTICATE) -> None:
        super().__init__(message, field="identity", fix=fix)


# -- tokens ------------------------------------------------------------------------------


def seeded_entropy(seed: str) -> Callable[[int], bytes]:
    """Bytes that look random but follow from ``seed`` (SHA-256 in counter mode).

    For recorded histories and simulations, which must come out the same every time;
    never for a real person's credentials.
    """
    counter = itertools.count()

    def take(size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.sha256(f"{seed}:{next(counter)}".encode()).digest()
        return out[:size]

    return take


def seeded_key(seed: str) -> Ed25519PrivateKey:
    """An Ed25519 key that follows from ``seed`` (as :func:`seeded_entropy`, same caveat)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


def issue_token(entropy: Callable[[int], bytes] = secrets.token_bytes) -> tuple[str, str, str]:
    """A new personal token: ``(token, salt, hash)``; only the salt and hash are stored.

    ``entropy`` gives the random bytes; a recorded history passes a seeded one so that it
    is recorded the same every time.
    """
    token = TOKEN_PREFIX + base64.urlsafe_b64encode(entropy(32)).rstrip(b"=").decode("ascii")
    salt = entropy(16).hex()
    return token, salt, hash_token(token, salt)


def hash_token(token: str, salt: str) -> str:
    """HMAC-SHA256 of a token under its per-user salt.

    A slow password hash (scrypt, argon2) defends guessable secrets; a token carries 256
    random bits, so guessing it is out of reach however fast one hash is, and the salt
    keeps equal tokens from having equal hashes and rules out precomputed tables.
    """
    return hmac.new(bytes.fromhex(salt), token.encode("utf-8"), hashlib.sha256).hexdigest()


def token_user(registry: Registry, token: str) -> User:
    """The active user a token belongs to; :class:`AuthenticationError` when none."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationError(f"that is not a Warden token (they start with {TOKEN_PREFIX})")
    for user in registry.active():
        if user.token_hash and hmac.compare_digest(
            hash_token(token, user.token_salt), user.token_hash
        ):
            return user
    raise AuthenticationError("unknown or revoked token")


# -- keys ---------------------------------------------------------------------------------


def public_key_text(text: str) -> str:
    """The base64 raw Ed25519 public key in an OpenSSH ``ssh-ed25519`` line, PEM or raw base64."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded: Any = serialization.load_pem_public_key(text.encode("ascii"))
        elif len(text.split()) > 1:  # an OpenSSH line: type, base64, comment
            loaded = serialization.load_ssh_public_key(" ".join(text.split()[:2]).encode("ascii"))
        else:
            loaded = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise ValidationError(
            f"not a readable public key ({exc})",
            field="public key",
            fix="give an `ssh-ed25519 AAAA…` line (e.g. ~/.ssh/id_ed25519.pub) or a PEM key",
        ) from exc
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValidationError(
            "only Ed25519 keys are accepted",
            field="public key",
            fix="make one with `ssh-keygen -t ed25519`",
        )
    raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_private_key(data: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from OpenSSH or PEM (PKCS#8) bytes."""
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            loaded: Any = serialization.load_ssh_private_key(data, password)
        else:
            loaded = serialization.load_pem_private_key(data, password)
    except UnsupportedAlgorithm as exc:
        # Passphrase-protected OpenSSH keys need bcrypt, which Warden does not depend on.
        raise AuthenticationError(
            f"the key file cannot be read here ({exc})",
            fix="install bcrypt, or use a PEM key (`openssl genpkey -algorithm ed25519 -aes256`)",
        ) from exc
    except (ValueError, TypeError) as exc:
        raise AuthenticationError(
            f"the key file is not a readable private key ({exc})",
            fix="give the private half of the key registered for you, and its passphrase if"
            " it has one (on the command line: WARDEN_KEY_PASSPHRASE)",
        ) from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise AuthenticationError(
            "only Ed25519 keys are accepted", fix="make one with `ssh-keygen -t ed25519`"
        )
    return loaded


def public_key_of(key: Ed25519PrivateKey) -> str:
    """The base64 raw public half of ``key``, as the registry keeps it."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def fingerprint(public_key: str) -> str:
    """The OpenSSH-style fingerprint (``SHA256:…``) of a base64 raw public key."""
    digest = hashlib.sha256(base64.b64decode(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def key_user(registry: Registry, key: Ed25519PrivateKey) -> User:
    """The active user whose registered public key is the public half of ``key``."""
    user = registry.with_key(public_key_of(key))
    if user is None:
        raise AuthenticationError(
            f"no active user holds the key {fingerprint(public_key_of(key))}",
            fix="register it with `warden user add NAME --public-key KEY.pub` (an admin does)",
        )
    return user


# -- who may do what ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    """What a person presents: a token, or a private key (which also signs)."""

    token: str = ""
    key: Ed25519PrivateKey | None = None

    @property
    def method(self) -> str:
        """How the holder authenticates: ``ed25519`` or ``token``."""
        return "ed25519" if self.key is not None else "token"


def authenticate(registry: Registry, credential: Credential, action: str) -> User:
    """The user behind ``credential``, if active and allowed ``action``; else why not."""
    if credential.key is not None:
        user = key_user(registry, credential.key)
    elif credential.token:
        user = token_user(registry, credential.token)
    else:
        raise AuthenticationError("no credential given")
    authorize(user, action)
    return user


def authorize(user: User, action: str) -> None:
    """Raise :class:`AuthenticationError` unless ``user``'s role allows ``action``."""
    if not users_fold.may(user.role, action):
        raise AuthenticationError(
            f"{user.name} has the role {user.role}; {action} needs the role"
            f" {users_fold.least_role(action)} or above",
            fix="ask an admin (`warden user add` with a higher --role)",
        )


# -- signed approvals ---------------------------------------------------------------------


def approval_payload(
    approver: str,
    incident: str,
    step_hash: str,
    decision: str,
    signed_at: str,
    nonce: str,
    reason: str = "",
) -> bytes:
    """The exact bytes an approver signs (canonical JSON, RFC 8785).

    A reason, when given, is signed too (and absent from the payload when empty, so
    approvals signed without one verify as before).
    """
    payload = {
        "type": APPROVAL_PAYLOAD,
        "approver": approver,
        "incident": incident,
        "step_hash": step_hash,
        "decision": decision,
        "signed_at": signed_at,
        "nonce": nonce,
    }
    if reason:
        payload["reason"] = reason
    return canonical_json(payload)


def sign_approval(
    key: Ed25519PrivateKey,
    approver: str,
    incident: str,
    step_hash: str,
    decision: str,
    signed_at: str,
    nonce: str = "",
    reason: str = "",
) -> dict[str, str]:
    """The data of an approval (or rejection) event, signed with ``key``.

    The nonce is random unless given (a recorded history gives one, to be reproducible).
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    nonce = nonce or secrets.token_hex(16)
    payload = approval_payload(approver, incident, step_hash, decision, signed_at, nonce, reason)
    data = {
        "step_hash": step_hash,
        "approver": approver,
        "decision": decision,
        "signed_at": signed_at,
        "nonce": nonce,
        "key": fingerprint(public_key_of(key)),
        "signature": base64.b64encode(key.sign(payload)).decode("ascii"),
    }
    if reason:
        data["reason"] = reason
    return data


def approval_problem(
    registry: Registry,
    incident: str,
    data: Mapping[str, Any],
    *,
    position: int | None = None,
    decision: str = "approve",
) -> str | None:
    """Why a recorded approval must not count, or None when it is a valid one.

    The approver must be a registered user (active now, or at ``position`` of the log when
    given), allowed to decide, and the signature must verify under the key registered for
    them over this incident, this step hash and this decision.
    """
    name = str(data.get("approver", ""))
    user = registry.current(name) if position is None else registry.at(name, position)
    if user is None:
        known = any(u.name == name for u in registry.users)
        return f"{name or '(nobody)'} is {'revoked' if known else 'not a registered user'}"
    if not users_fold.may(user.role, decision):
        return f"{name} has the role {user.role}, which may not {decision}"
    if not user.public_key:
        return f"{name} has no registered key to check the signature with"
    if str(data.get("decision", "")) != decision:
        return f"the signed decision is {data.get('decision')!r}, not {decision!r}"
    try:
        signature = base64.b64decode(str(data.get("signature", "")), validate=True)
        payload = approval_payload(
            name,
            incident,
            str(data["step_hash"]),
            decision,
            str(data["signed_at"]),
            str(data["nonce"]),
            str(data.get("reason", "")),
        )
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(user.public_key))
        public.verify(signature, payload)
    except (KeyError, ValueError, binascii.Error, InvalidSignature):
        return f"the signature of {name}'s approval does not verify"
    return None


class ApprovalCheck:
    """Folds the users stream as events go by and says whether an approval event counts.

    For listeners that see the log in order (metrics): an approval counts when it verifies
    against the registry as it stood at the approval's position.
    """

    def __init__(self) -> None:
        self.registry = users_fold.Registry()

    def __call__(self, event: ev.Event) -> bool:
        """Fold a users event (False); True for an approval that verifies."""
        if event.stream == ev.USERS_STREAM:
            self.registry = users_fold.observe(self.registry, event)
            return False
        if event.type != ev.APPROVAL_GRANTED:
            return False
        incident = event.stream.removeprefix("incident-")
        return approval_problem(self.registry, incident, event.data) is None
