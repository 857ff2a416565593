"""Witness cosignatures (C2SP tlog-cosignature, cosignature/v1, Ed25519). Audit plane.

A note signature over the lines ``cosignature/v1``, ``time <t>`` and the checkpoint body;
bytes: key ID (4) || timestamp (8, big-endian) || Ed25519 signature (64). Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from warden.audit.checkpoint import (
    PRIVATE_KEY_PREFIX,
    NoteSignature,
    check_key_name,
    encode_key,
    key_id,
    parse_key,
)
from warden.domain.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.audit.checkpoint import SignedNote

ALG_COSIGNATURE_V1 = 0x04
"""The signed-note signature type byte of Ed25519 cosignature/v1."""
HEADER = "cosignature/v1\n"


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    return key_id(name, public_key, ALG_COSIGNATURE_V1)


def signed_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosignature signs: header, time line, then the checkpoint body."""
    return f"{HEADER}time {timestamp}\n{body}".encode()


def _parse_key(text: str, what: str, *, secret: bool = False) -> tuple[str, str, bytes]:
    shape = "a cosignature/v1 key (0x04 || 32 bytes)"
    return parse_key(text, what, ALG_COSIGNATURE_V1, shape, secret=secret)


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's public key: name, key ID and 32-byte Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> CosignatureVerifier:
        """Parse ``name+<hex key id>+base64(0x04 || public key)``.

        Raises:
            ConfigError: not a well-formed cosignature/v1 verifier key.
        """
        name, hex_id, public = _parse_key(text.strip(), "witness key")
        verifier = cls(name, cosignature_key_id(name, public), public)
        if verifier.key_id.hex() != hex_id:
            raise ConfigError("witness key: the key ID does not match the name and key")
        return verifier

    def encode(self) -> str:
        """The verifier key string."""
        return encode_key(self.name, self.key_id, ALG_COSIGNATURE_V1, self.public_key)

    def timestamp(self, signature: NoteSignature, body: str) -> int | None:
        """The cosignature's time if ``signature`` is this key's valid one over ``body``."""
        if signature.name != self.name or signature.key_id != self.key_id:
            return None
        if len(signature.signature) != 8 + 64:
            return None
        timestamp = int.from_bytes(signature.signature[:8], "big")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature.signature[8:], signed_message(body, timestamp)
            )
        except InvalidSignature:
            return None
        return timestamp

    def __str__(self) -> str:
        return self.encode()


class Cosigner:
    """A witness's private key. Its ``repr`` never shows the key."""

    __slots__ = ("_private", "name", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._private = private_key
        public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.verifier = CosignatureVerifier(name, cosignature_key_id(name, public), public)

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        """A new random witness key named ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> Cosigner:
        """Parse ``PRIVATE+KEY+name+<hex key id>+base64(0x04 || seed)``.

        Raises:
            ConfigError: not a witness private key (the message holds no key material).
        """
        text = text.strip()
        if not text.startswith(PRIVATE_KEY_PREFIX):
            raise ConfigError("witness private key: expected PRIVATE+KEY+name+keyid+base64key")
        try:
            name, hex_id, seed = _parse_key(
                text[len(PRIVATE_KEY_PREFIX) :], "witness private key", secret=True
            )
        except ConfigError:
            raise ConfigError("witness private key: malformed") from None
        cosigner = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if cosigner.verifier.key_id.hex() != hex_id:
            raise ConfigError("witness private key: the key ID does not match the name and key")
        return cosigner

    def encode_private(self) -> str:
        """The private key string; write it only to a 0600 file."""
        seed = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return PRIVATE_KEY_PREFIX + encode_key(
            self.name, self.verifier.key_id, ALG_COSIGNATURE_V1, seed
        )

    def cosign(self, body: str, timestamp: int) -> NoteSignature:
        """The cosignature line of a checkpoint body at ``timestamp`` (POSIX seconds)."""
        if not 0 <= timestamp < 2**63:
            raise ValidationError("a cosignature time is 0..2^63-1", field="timestamp")
        signature = self._private.sign(signed_message(body, timestamp))
        raw = timestamp.to_bytes(8, "big") + signature
        return NoteSignature(self.name, self.verifier.key_id, raw)

    def __repr__(self) -> str:
        return f"Cosigner(name={self.name!r}, key_id={self.verifier.key_id.hex()!r})"


def cosigned_by(
    notes: Sequence[SignedNote], witnesses: Sequence[CosignatureVerifier]
) -> dict[CosignatureVerifier, int]:
    """The witnesses with a valid cosignature on any of ``notes``, and its latest time."""
    found: dict[CosignatureVerifier, int] = {}
    for note in notes:
        for signature in note.signatures:
            for witness in witnesses:
                when = witness.timestamp(signature, note.text)
                if when is not None and when >= found.get(witness, -1):
                    found[witness] = when
    return found
