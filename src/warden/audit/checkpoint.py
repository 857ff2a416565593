"""Checkpoints (C2SP tlog-checkpoint) in Ed25519 signed notes (C2SP signed-note). Audit plane.

Pure formats and cryptography, no file I/O: key files live in :mod:`warden.audit.state`.

```
example.org/log            <- origin
42                         <- tree size, decimal
base64(root hash)          <- RFC 9162 root
                           <- blank line
— example.org/log base64(key id (4 bytes) || Ed25519 signature (64 bytes))
```
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from warden.domain.errors import AuditVerificationError, ConfigError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

ALG_ED25519 = 0x01
"""The signed-note signature type byte of Ed25519."""
SIGNATURE_PREFIX = "\u2014 "
"""Every signature line starts with an em dash (U+2014) and a space."""
MAX_SIGNATURES = 100
PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"

_SIZE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID = re.compile(r"[0-9a-f]{8}")


def encode_base64(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4), with padding."""
    return base64.b64encode(data).decode("ascii")


def decode_base64(text: str) -> bytes:
    """Decode standard base64, accepting only its one canonical spelling of the bytes.

    A second spelling of the same bytes (other padding bits) would let a byte of a signed
    file change without changing what it says, so it is refused.

    Raises:
        ValueError: ``text`` is not canonical standard base64.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"not base64: {exc}") from None
    if encode_base64(raw) != text:
        raise ValueError("not canonical base64")
    return raw


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid note key name (non-empty, no spaces, no ``+``).

    Raises:
        ValidationError: it is not.
    """
    if (
        not name
        or "+" in name
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
    ):
        raise ValidationError(
            f"invalid key name {name!r}",
            field="name",
            fix="use a schema-less URL without spaces or '+', e.g. example.org/audit",
        )
    return name


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte note key ID: SHA-256(name || 0x0A || alg || public key)[:4]."""
    data = name.encode("utf-8") + b"\n" + bytes([alg]) + public_key
    return hashlib.sha256(data).digest()[:4]


def encode_key(name: str, key_id: bytes, alg: int, material: bytes) -> str:
    """A note key string: ``name+<hex key id>+base64(alg || 32-byte key or seed)``."""
    return f"{name}+{key_id.hex()}+{encode_base64(bytes([alg]) + material)}"


def parse_key(
    text: str, what: str, alg: int, shape: str, *, secret: bool = False
) -> tuple[str, str, bytes]:
    """Name, hex key ID and 32-byte material of ``name+<hex key id>+base64(alg || key)``.

    ``what`` starts each message and ``shape`` names the expected key ("an Ed25519 key
    (0x01 || 32 bytes)"); with ``secret``, no message quotes the material.

    Raises:
        ConfigError: the string is not of that shape.
    """
    parts = text.split("+", 2)
    if len(parts) != 3:
        prefix = "PRIVATE+KEY+" if secret else ""
        raise ConfigError(f"{what}: expected {prefix}name+keyid+base64key")
    name, hex_id, encoded = parts
    try:
        check_key_name(name)
        raw = decode_base64(encoded)
    except ValidationError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    except ValueError as exc:
        why = "the key material is not canonical base64" if secret else str(exc)
        raise ConfigError(f"{what}: {why}") from None
    if not _KEY_ID.fullmatch(hex_id):
        raise ConfigError(f"{what}: the key ID is not 8 lowercase hex digits")
    if len(raw) != 33 or raw[0] != alg:
        raise ConfigError(f"{what}: not {shape}")
    return name, hex_id, raw[1:]


# ---------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verifier:
    """A public Ed25519 note verifier key: name, key ID and 32-byte public key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Verifier:
        """The verifier of ``public_key`` under ``name``."""
        check_key_name(name)
        if len(public_key) != 32:
            raise ValidationError("an Ed25519 public key is 32 bytes", field="public_key")
        return cls(name, key_id(name, public_key), public_key)

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Parse a verifier key string ``name+<hex key id>+base64(0x01 || public key)``.

        Raises:
            ConfigError: the string is not a well-formed Ed25519 verifier key.
        """
        name, hex_id, public = parse_key(
            text.strip(), "verifier key", ALG_ED25519, "an Ed25519 key (0x01 || 32 bytes)"
        )
        verifier = cls(name, key_id(name, public), public)
        if verifier.key_id.hex() != hex_id:
            raise ConfigError("verifier key: the key ID does not match the name and key")
        return verifier

    def encode(self) -> str:
        """The verifier key string: ``name+<hex key id>+base64(0x01 || public key)``."""
        return encode_key(self.name, self.key_id, ALG_ED25519, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        return self.encode()


class Signer:
    """A private Ed25519 note signer key. Its ``repr`` never shows the key."""

    __slots__ = ("_private", "name", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._private = private_key
        public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.verifier = Verifier.from_public_key(name, public)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new random key named ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> Signer:
        """Parse a signer key ``PRIVATE+KEY+name+<hex key id>+base64(0x01 || seed)``.

        Raises:
            ConfigError: the string is not a well-formed Ed25519 signer key. The message
                never contains the key material.
        """
        text = text.strip()
        if not text.startswith(PRIVATE_KEY_PREFIX):
            raise ConfigError("signer key: expected PRIVATE+KEY+name+keyid+base64key")
        name, hex_id, seed = parse_key(
            text[len(PRIVATE_KEY_PREFIX) :],
            "signer key",
            ALG_ED25519,
            "an Ed25519 key (0x01 || 32-byte seed)",
            secret=True,
        )
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id.hex() != hex_id:
            raise ConfigError("signer key: the key ID does not match the name and key")
        return signer

    @property
    def key_id(self) -> bytes:
        """The 4-byte note key ID."""
        return self.verifier.key_id

    def encode_private(self) -> str:
        """The signer key string; write it only to a 0600 file or a secret store."""
        seed = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return PRIVATE_KEY_PREFIX + encode_key(self.name, self.key_id, ALG_ED25519, seed)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()!r})"


# ---------------------------------------------------------------------------------------
# Signed notes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note: key name, key ID and signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, with its final newline."""
        return f"{SIGNATURE_PREFIX}{self.name} {encode_base64(self.key_id + self.signature)}\n"


def _note_error(message: str) -> AuditVerificationError:
    return AuditVerificationError(f"malformed signed note: {message}")


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note text (ending in a newline) and its signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def sign(cls, text: str, signers: Sequence[Signer]) -> SignedNote:
        """Sign ``text`` with every signer, in order."""
        _check_text(text)
        if not signers:
            raise ValidationError("a note needs at least one signer", field="signers")
        message = text.encode("utf-8")
        sigs = tuple(NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers)
        return cls(text, sigs)

    @classmethod
    def parse(cls, data: str | bytes) -> SignedNote:
        """Parse a signed note without verifying it.

        Raises:
            AuditVerificationError: the note is not well-formed.
        """
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise _note_error("not valid UTF-8") from None
        if any(ord(ch) < 0x20 and ch != "\n" for ch in data):
            raise _note_error("it contains a control character")
        split = data.rfind("\n\n")
        if split < 0:
            raise _note_error("no blank line between the text and the signatures")
        text, block = data[: split + 1], data[split + 2 :]
        if not block.endswith("\n"):
            raise _note_error("the signature block does not end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise _note_error(f"more than {MAX_SIGNATURES} signatures")
        return cls(text, tuple(_parse_signature(line) for line in lines))

    def encode(self) -> str:
        """The note as text: its text, a blank line, its signature lines."""
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)

    def verify(self, verifiers: Sequence[Verifier]) -> tuple[Verifier, ...]:
        """The trusted keys that signed this note, following C2SP signed-note.

        Signatures from unknown keys (name and key ID not both known) are ignored; a
        failed signature from a known key rejects the whole note.

        Raises:
            AuditVerificationError: a known key's signature fails, or none is present.
        """
        message = self.text.encode("utf-8")
        verified: list[Verifier] = []
        for sig in self.signatures:
            for verifier in verifiers:
                if verifier.name != sig.name or verifier.key_id != sig.key_id:
                    continue
                if not verifier.verify(message, sig.signature):
                    raise AuditVerificationError(
                        f"the signature of {sig.name}+{sig.key_id.hex()} does not verify"
                    )
                if verifier not in verified:
                    verified.append(verifier)
        if not verified:
            names = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in self.signatures)
            raise AuditVerificationError(
                "signed by an unknown key: no signature from a trusted key "
                f"(signed by: {names or 'nobody'})"
            )
        return tuple(verified)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ValidationError("a note text must end with a newline", field="text")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise ValidationError("a note text cannot hold control characters", field="text")


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise _note_error(f"signature line {line!r} does not start with an em dash")
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise _note_error(f"signature line {line!r} is not '— <name> <signature>'")
    name, encoded = parts
    try:
        check_key_name(name)
        raw = decode_base64(encoded)
    except (ValidationError, ValueError) as exc:
        raise _note_error(f"signature line {line!r}: {exc}") from None
    if len(raw) < 5:
        raise _note_error(f"signature line {line!r} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, tree size and RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The C2SP tlog-checkpoint note text, each line ending in a newline."""
        lines = [self.origin, str(self.size), encode_base64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text (strictly: one spelling per checkpoint).

        Raises:
            AuditVerificationError: the text is not a well-formed checkpoint.
        """
        if not text.endswith("\n"):
            raise AuditVerificationError("malformed checkpoint: no final newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise AuditVerificationError("malformed checkpoint: needs 3 non-empty lines")
        origin, size, root = lines[:3]
        if not _SIZE.fullmatch(size):
            raise AuditVerificationError(f"malformed checkpoint: tree size {size!r}")
        try:
            raw = decode_base64(root)
        except ValueError as exc:
            raise AuditVerificationError(f"malformed checkpoint: root hash {exc}") from None
        if len(raw) != 32:
            raise AuditVerificationError("malformed checkpoint: the root hash is not 32 bytes")
        return cls(origin, int(size), raw, tuple(lines[3:]))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint and the signed note that carries it."""

    checkpoint: Checkpoint
    note: SignedNote

    @classmethod
    def sign(cls, checkpoint: Checkpoint, signers: Sequence[Signer]) -> SignedCheckpoint:
        """Sign ``checkpoint`` with every signer (the first one's name should be the origin)."""
        return cls(checkpoint, SignedNote.sign(checkpoint.body(), signers))

    @classmethod
    def parse(cls, data: str | bytes) -> SignedCheckpoint:
        """Parse a signed checkpoint without verifying its signatures.

        Raises:
            AuditVerificationError: it is not well-formed.
        """
        note = SignedNote.parse(data)
        return cls(Checkpoint.parse(note.text), note)

    def encode(self) -> str:
        """The signed note text."""
        return self.note.encode()

    def verify(
        self, verifiers: Sequence[Verifier], origin: str | None = None
    ) -> tuple[Verifier, ...]:
        """The trusted keys that signed it; checks the origin when one is given.

        Raises:
            AuditVerificationError: no trusted signature, a bad one, or another origin.
        """
        if origin is not None and self.checkpoint.origin != origin:
            raise AuditVerificationError(
                f"checkpoint origin {self.checkpoint.origin!r} is not the log's {origin!r}"
            )
        return self.note.verify(verifiers)
