"""C2SP signed notes and checkpoints with Ed25519: known answers, strict parsing, tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.audit.checkpoint import (
    Checkpoint,
    NoteSignature,
    SignedCheckpoint,
    SignedNote,
    Signer,
    Verifier,
    check_key_name,
    decode_base64,
    key_id,
)
from warden.domain.errors import AuditVerificationError, ConfigError, ValidationError

# The example key and note of the Go reference implementation (golang.org/x/mod/sumdb/note).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_NOTE = GO_TEXT + "\n" + GO_SIG


def test_go_reference_key_id_by_hand() -> None:
    public = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    by_hand = hashlib.sha256(b"PeterNeumann\n\x01" + public).digest()[:4]
    assert by_hand.hex() == "c74f20a3"
    assert key_id("PeterNeumann", public) == by_hand


def test_go_reference_keys_parse_and_reencode() -> None:
    verifier = Verifier.parse(GO_VKEY)
    signer = Signer.parse(GO_SKEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id.hex() == "c74f20a3"
    assert verifier.encode() == GO_VKEY
    assert signer.verifier == verifier
    assert signer.encode_private() == GO_SKEY


def test_go_reference_note_is_reproduced_byte_for_byte() -> None:
    note = SignedNote.sign(GO_TEXT, [Signer.parse(GO_SKEY)])
    assert note.encode() == GO_NOTE
    parsed = SignedNote.parse(GO_NOTE.encode())
    assert parsed == note
    assert parsed.verify([Verifier.parse(GO_VKEY)]) == (Verifier.parse(GO_VKEY),)


@pytest.mark.parametrize(
    "vkey",
    [
        # From the Go test suite: wrong key length and unknown algorithm, hashes adjusted.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(ConfigError):
        Verifier.parse(vkey)


def mangled(text: str) -> list[str]:
    raw = text.encode()
    out = []
    for i in range(len(raw)):
        for delta in (1, 0x20):
            b = bytearray(raw)
            b[i] = (b[i] + delta) % 128 or 1
            out.append(b.decode("ascii", "replace"))
        out.append((raw[:i] + raw[i + 1 :]).decode())
    return [m for m in out if m.strip() != text]


def test_every_single_byte_mangling_of_a_key_is_refused() -> None:
    for bad in mangled(GO_VKEY):
        with pytest.raises(ConfigError):
            Verifier.parse(bad)
    for bad in mangled(GO_SKEY):
        with pytest.raises(ConfigError):
            Signer.parse(bad)


def test_signer_never_shows_its_key() -> None:
    signer = Signer.parse(GO_SKEY)
    secret = GO_SKEY.rsplit("+", 1)[1]
    assert secret not in repr(signer)
    assert secret not in str(signer)
    with pytest.raises(ConfigError) as info:
        Signer.parse(GO_SKEY[:-2] + "!!")
    assert secret[:-2] not in str(info.value)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\tname", "nbsp\u00a0name", "x\n"])
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(ValidationError):
        check_key_name(name)


def test_strict_base64() -> None:
    assert decode_base64("AAE=") == b"\x00\x01"
    for bad in ("AAF=", "AAE", "AA E=", "AAE=\n", "****"):
        with pytest.raises(ValueError, match="base64"):
            decode_base64(bad)


# -- checkpoints --

ROOT = hashlib.sha256(b"root").digest()


def test_checkpoint_body_is_exactly_three_lines() -> None:
    body = Checkpoint("example.org/log", 20852163, ROOT).body()
    assert body == f"example.org/log\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    assert Checkpoint.parse(body) == Checkpoint("example.org/log", 20852163, ROOT)
    assert Checkpoint("o", 0, ROOT).body().split("\n")[1] == "0"


@pytest.mark.parametrize(
    "body",
    [
        "o\n012\n{root}\n",
        "o\n-1\n{root}\n",
        "o\n1 \n{root}\n",
        "o\n1\n{root}",
        "\n1\n{root}\n",
        "o\n1\n",
        "o\n1\n{root}\n\n",
        "o\n1\nAAAA\n",
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(AuditVerificationError, match="malformed"):
        Checkpoint.parse(body.replace("{root}", base64.b64encode(ROOT).decode()))


def test_signed_checkpoint_layout() -> None:
    signer = Signer.generate("example.org/log")
    signed = SignedCheckpoint.sign(Checkpoint("example.org/log", 5, ROOT), [signer])
    text = signed.encode()
    body, sigs = text.split("\n\n")
    assert body + "\n" == signed.checkpoint.body()
    assert sigs.startswith("\u2014 example.org/log ")
    raw = base64.b64decode(sigs.split(" ")[2])
    assert len(raw) == 4 + 64
    assert raw[:4] == signer.key_id
    assert SignedCheckpoint.parse(text) == signed
    assert signed.verify([signer.verifier], "example.org/log") == (signer.verifier,)
    with pytest.raises(AuditVerificationError, match="origin"):
        signed.verify([signer.verifier], "example.org/other")


def test_unknown_keys_are_ignored_and_a_bad_known_signature_rejects() -> None:
    log = Signer.generate("example.org/log")
    twin = Signer.generate("example.org/log")  # same name, other key id
    witness = Signer.generate("witness.example")
    note = SignedNote.sign("hello\n", [twin, log, witness])
    assert note.verify([log.verifier]) == (log.verifier,)
    assert set(note.verify([log.verifier, witness.verifier])) == {log.verifier, witness.verifier}
    with pytest.raises(AuditVerificationError, match="no signature from a trusted key"):
        note.verify([Signer.generate("other").verifier])
    forged = NoteSignature(log.name, log.key_id, twin.sign(b"hello\n"))
    bad = SignedNote("hello\n", (forged, *note.signatures))
    with pytest.raises(AuditVerificationError, match="does not verify"):
        bad.verify([log.verifier])


def test_same_name_and_id_but_other_key_is_a_failure_not_an_ignore() -> None:
    log = Signer.generate("example.org/log")
    impostor = Verifier(log.name, log.key_id, Signer.generate("x").verifier.public_key)
    note = SignedNote.sign("hello\n", [log])
    with pytest.raises(AuditVerificationError, match="does not verify"):
        note.verify([impostor])


@pytest.mark.parametrize(
    "text",
    [
        "hello\n\u2014 k AAAAAAA=\n",  # no blank line
        "hello\n\n-- k AAAAAAAA\n",  # ASCII dashes
        "hello\n\n\u2014 k  AAAAAAAA\n",  # two spaces
        "hello\n\n\u2014 k AAAA\n",  # too short
        "hello\n\n\u2014 k AAAAAAAA",  # no final newline
        "hel\tlo\n\n\u2014 k AAAAAAAA\n",  # control character
        "hello\n\n",  # no signature
    ],
)
def test_malformed_notes(text: str) -> None:
    with pytest.raises(AuditVerificationError, match="malformed"):
        SignedNote.parse(text)


def test_note_text_may_hold_blank_lines_split_at_the_last_one() -> None:
    signer = Signer.generate("k")
    note = SignedNote.sign("a\n\nb\n", [signer])
    parsed = SignedNote.parse(note.encode())
    assert parsed.text == "a\n\nb\n"
    parsed.verify([signer.verifier])


SIGNER = Signer.parse(GO_SKEY)
SIGNED = SignedCheckpoint.sign(Checkpoint("PeterNeumann", 1234, ROOT), [SIGNER]).encode()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(SIGNED.encode()) - 1), st.integers(1, 255))
def test_any_single_byte_change_of_a_signed_checkpoint_is_rejected(at: int, xor: int) -> None:
    raw = bytearray(SIGNED.encode())
    raw[at] ^= xor
    with pytest.raises(AuditVerificationError):
        SignedCheckpoint.parse(bytes(raw)).verify([SIGNER.verifier])


def test_any_deleted_byte_of_a_signed_checkpoint_is_rejected() -> None:
    raw = SIGNED.encode()
    for at in range(len(raw)):
        with pytest.raises(AuditVerificationError):
            SignedCheckpoint.parse(raw[:at] + raw[at + 1 :]).verify([SIGNER.verifier])
