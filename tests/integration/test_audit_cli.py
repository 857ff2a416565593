"""`warden audit ...` as a user types it (through Typer's CliRunner on the sub-app)."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner, Result

from tests.builders import register
from warden.audit.checkpoint import Signer
from warden.audit.state import KEY_ENV, AuditPaths, open_audit
from warden.cli.audit_cmd import audit_app
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".warden"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(audit_app, list(args), env=env)


def fill(state: Path, n: int, start: int = 0) -> None:
    log, _ = open_audit(state)
    log.append([{"position": i, "type": "warden.step.intended"} for i in range(start, start + n)])


def secret(state: Path) -> str:
    return AuditPaths.for_state(state).signer_key.read_text().strip()


def test_key_creates_a_private_key_file_0600_and_prints_the_public_key(state: Path) -> None:
    result = run("key", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    paths = AuditPaths.for_state(state)
    assert stat.S_IMODE(paths.signer_key.stat().st_mode) == 0o600
    vkey = result.stdout.strip()
    assert vkey.startswith("warden.local/audit+")
    assert paths.verifier_key.read_text().strip() == vkey
    assert secret(state) not in result.output
    assert run("key", "--state-dir", str(state)).stdout.strip() == vkey


def test_verify_prove_check_bundle_round_trip(state: Path, tmp_path: Path) -> None:
    fill(state, 10)
    assert run("checkpoint", "--state-dir", str(state)).exit_code == 0
    result = run("verify", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert "audit log verifies" in result.output
    assert "10" in result.output
    proof = tmp_path / "entry.tlog-proof"
    result = run("prove", "7", "-o", str(proof), "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert proof.read_text().startswith("c2sp.org/tlog-proof@v1\nextra ")
    vkey = run("key", "--state-dir", str(state)).stdout.strip()
    result = run("check-bundle", str(proof), "--key", vkey)
    assert result.exit_code == 0, result.output
    assert "proof verifies" in result.output
    assert "warden.step.intended" in result.output
    key_file = AuditPaths.for_state(state).verifier_key
    assert run("check-bundle", str(proof), "--key", str(key_file)).exit_code == 0
    other = Signer.generate("warden.local/audit").verifier.encode()
    result = run("check-bundle", str(proof), "--key", other)
    assert result.exit_code == 1
    assert "no signature from a trusted key" in result.output


def test_prove_signs_a_covering_checkpoint_when_needed(state: Path, tmp_path: Path) -> None:
    fill(state, 3)
    proof = tmp_path / "p"
    assert run("prove", "2", "-o", str(proof), "--state-dir", str(state)).exit_code == 0
    assert "\n3\n" in proof.read_text()
    result = run("prove", "3", "-o", str(proof), "--state-dir", str(state))
    assert result.exit_code == 1
    assert "no entry 3" in result.output


def test_verify_names_the_first_bad_entry(state: Path) -> None:
    fill(state, 6)
    run("checkpoint", "--state-dir", str(state))
    log = AuditPaths.for_state(state).log
    data = log.read_bytes()
    lines = data.splitlines(keepends=True)
    at = len(b"".join(lines[:4])) + lines[4].index(b'"type"') + 3
    log.write_bytes(data[:at] + b"X" + data[at + 1 :])
    result = run("verify", "--state-dir", str(state))
    assert result.exit_code == 1
    assert "first bad entry: 4" in result.output
    log.write_bytes(b"".join(lines[:5]))
    result = run("verify", "--state-dir", str(state))
    assert result.exit_code == 1
    assert "first bad entry: 5" in result.output
    assert "missing" in result.output


def test_verify_with_a_pinned_key(state: Path) -> None:
    fill(state, 2)
    run("checkpoint", "--state-dir", str(state))
    vkey = run("key", "--state-dir", str(state)).stdout.strip()
    assert run("verify", "--state-dir", str(state), "--key", vkey).exit_code == 0
    other = Signer.generate("warden.local/audit").verifier.encode()
    result = run("verify", "--state-dir", str(state), "--key", other)
    assert result.exit_code == 1
    assert "checkpoint #1" in result.output


def test_checkpoint_prints_a_signed_note_and_consistency_checks_two(
    state: Path, tmp_path: Path
) -> None:
    fill(state, 5)
    old = tmp_path / "old.checkpoint"
    result = run("checkpoint", "-o", str(old), "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    fill(state, 4, 5)
    result = run("checkpoint", "--state-dir", str(state))
    assert result.exit_code == 0
    assert result.stdout.startswith("warden.local/audit\n9\n")
    assert "\n\n\u2014 warden.local/audit " in result.stdout
    new = tmp_path / "new.checkpoint"
    new.write_text(result.stdout)
    result = run("consistency", str(old), str(new), "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert "consistent" in result.output
    assert run("consistency", str(old), str(old), "--state-dir", str(state)).exit_code == 0
    result = run("consistency", str(new), str(old), "--state-dir", str(state))
    assert result.exit_code == 1
    forged = new.read_text().replace("\n9\n", "\n8\n")
    new.write_text(forged)
    result = run("consistency", str(old), str(new), "--state-dir", str(state))
    assert result.exit_code == 1
    assert "does not verify" in result.output


def test_keygen(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "keys" / "log.key"
    result = run("keygen", "example.org/log", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert result.stdout.startswith("example.org/log+")
    assert out.read_text().strip() not in result.output
    assert run("keygen", "example.org/log", "--out", str(out)).exit_code == 1  # no overwrite
    assert run("keygen", "bad name", "--out", str(tmp_path / "x")).exit_code == 1
    result = run("keygen", "example.org/log", "--state-dir", str(state))
    assert result.exit_code == 0
    assert run("key", "--state-dir", str(state)).stdout == result.stdout
    assert run("keygen", "example.org/log", "--state-dir", str(state)).exit_code == 1


def test_rotate_keeps_old_proofs_and_checkpoints_verifiable(state: Path, tmp_path: Path) -> None:
    fill(state, 4)
    old_key = run("key", "--state-dir", str(state)).stdout.strip()
    old_secret = secret(state)
    old_proof = tmp_path / "old.tlog-proof"
    assert run("prove", "1", "-o", str(old_proof), "--state-dir", str(state)).exit_code == 0
    result = run("rotate", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert old_secret not in result.output
    new_key = run("key", "--state-dir", str(state)).stdout.strip()
    assert new_key != old_key
    assert new_key.split("+")[0] == old_key.split("+")[0]
    assert secret(state) != old_secret
    paths = AuditPaths.for_state(state)
    assert paths.retired_keys.read_text().strip() == old_key
    assert run("verify", "--state-dir", str(state)).exit_code == 0
    # The transition checkpoint, signed by both keys, carries trust from either to the
    # other: checkpoint #1 (old key only) verifies under the new key alone, and back.
    assert run("verify", "--state-dir", str(state), "--key", old_key).exit_code == 0
    assert run("verify", "--state-dir", str(state), "--key", new_key).exit_code == 0
    stranger = Signer.generate(new_key.split("+")[0]).verifier.encode()
    assert run("verify", "--state-dir", str(state), "--key", stranger).exit_code == 1
    assert run("check-bundle", str(old_proof), "--key", old_key).exit_code == 0
    fill(state, 2, 4)
    new_proof = tmp_path / "new.tlog-proof"
    assert run("prove", "5", "-o", str(new_proof), "--state-dir", str(state)).exit_code == 0
    assert run("check-bundle", str(new_proof), "--key", new_key).exit_code == 0
    assert run("check-bundle", str(new_proof), "--key", old_key).exit_code == 1
    assert run("verify", "--state-dir", str(state), "--key", old_key).exit_code == 0
    transition = [c for c in open_audit(state)[0].checkpoints() if len(c.note.signatures) == 2]
    assert len(transition) == 1


def test_key_from_the_environment(state: Path) -> None:
    signer = Signer.generate("env.example/audit")
    env = {KEY_ENV: signer.encode_private()}
    result = run("key", "--state-dir", str(state), env=env)
    assert result.exit_code == 0
    assert result.stdout.strip() == signer.verifier.encode()
    assert not AuditPaths.for_state(state).signer_key.exists()
    fill_env = run("checkpoint", "--state-dir", str(state), env=env)
    assert fill_env.exit_code == 0
    assert signer.encode_private() not in fill_env.output
    result = run("rotate", "--state-dir", str(state), env=env)
    assert result.exit_code == 1
    assert KEY_ENV in result.output
    assert signer.encode_private() not in result.output
    bad = run("key", "--state-dir", str(state), env={KEY_ENV: "PRIVATE+KEY+x+00000000+AAAA"})
    assert bad.exit_code == 1
    assert KEY_ENV in bad.output


def test_a_key_file_readable_by_others_is_refused(state: Path) -> None:
    assert run("key", "--state-dir", str(state)).exit_code == 0
    AuditPaths.for_state(state).signer_key.chmod(0o644)
    result = run("key", "--state-dir", str(state))
    assert result.exit_code == 1
    assert "chmod 600" in result.output


def test_verify_of_an_empty_state(state: Path) -> None:
    result = run("verify", "--state-dir", str(state))
    assert result.exit_code == 0, result.output


def test_keygen_and_rotate_take_an_admin_once_there_is_one(state: Path, tmp_path: Path) -> None:
    # A fresh state has no admin yet: setting up its key needs no credential (as the first
    # `warden user add --role admin` needs none); after that, only an admin changes keys.
    assert run("key", "--state-dir", str(state)).exit_code == 0
    store = SQLiteEventStore(state / "events.db")
    try:
        admin = register(store, "ada", "admin").token
        operator = register(store, "otto", "operator").token
    finally:
        store.close()
    refused = run("rotate", "--state-dir", str(state), env={"WARDEN_TOKEN": ""})
    assert refused.exit_code == 1
    assert "no credential given" in refused.output
    refused = run("rotate", "--state-dir", str(state), env={"WARDEN_TOKEN": operator})
    assert refused.exit_code == 1
    assert "otto has the role operator; audit.keys needs the role admin" in (
        " ".join(refused.output.split())
    )
    before = secret(state)
    rotated = run("rotate", "--state-dir", str(state), env={"WARDEN_TOKEN": admin})
    assert rotated.exit_code == 0, rotated.output
    assert secret(state) != before
    refused = run("keygen", "example.org/log", "-s", str(state), env={"WARDEN_TOKEN": operator})
    assert refused.exit_code == 1
    assert "audit.keys needs the role admin" in " ".join(refused.output.split())
    # --out writes a key file and touches no state: no credential.
    out = run("keygen", "example.org/log", "--out", str(tmp_path / "k"), env={"WARDEN_TOKEN": ""})
    assert out.exit_code == 0, out.output
