"""The attacks on the audit trail, through the real CLI in a subprocess: all detected.

The signing key lives outside the state directory, and `warden audit verify` checks
against a trust store outside it (pinned keys, the last verified checkpoint).
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from warden.audit.checkpoint import Signer
from warden.audit.log import AuditLog
from warden.audit.state import KEY_ENV, AuditPaths, default_key_path, open_audit
from warden.audit.trust import TrustStore, verify_trusted
from warden.domain.errors import ConfigError
from warden.domain.events import INCIDENT_OPENED, Event
from warden.store.sqlite import SQLiteEventStore
from warden.testing.tamper import STORE_FILE, TAMPERINGS, Pristine, pristine

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def warden(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warden.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def trial(tmp_path: Path) -> Pristine:
    """A state of 40 audited events with signed checkpoints, verified once (pinned)."""
    clean = pristine(tmp_path)
    paths = AuditPaths.for_state(clean.state)
    verify_trusted(AuditLog(paths.log), paths, TrustStore.at(), now="2026-12-01T00:00:00+00:00")
    return clean


def test_first_verify_pins_and_says_so(tmp_path: Path) -> None:
    clean = pristine(tmp_path)
    first = warden("audit", "verify", "--state-dir", str(clean.state))
    assert first.returncode == 0, first.stderr
    assert "first use: pinned key(s) warden.local/audit+" in first.stderr
    assert "the checkpoint of size 40" in first.stderr
    again = warden("audit", "verify", "--state-dir", str(clean.state))
    assert again.returncode == 0, again.stderr
    assert "first use" not in again.stderr


def test_the_key_lives_outside_the_state_directory_0600_in_0700(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    result = warden("audit", "key", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    key = default_key_path()
    assert key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert state.resolve() not in key.resolve().parents
    for path in state.rglob("*"):
        if path.is_file():
            assert b"PRIVATE+KEY" not in path.read_bytes(), path


def test_a_key_left_in_the_state_directory_is_moved_out(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    paths = AuditPaths.for_state(state)
    paths.root.mkdir(parents=True)
    old = Signer.generate("warden.local/audit")
    paths.legacy_signer_key.write_text(old.encode_private() + "\n")
    paths.legacy_signer_key.chmod(0o600)
    result = warden("audit", "key", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == old.verifier.encode()  # same key: checkpoints still verify
    assert "moved the audit signing key out of the state directory" in result.stderr
    assert "warden audit rotate" in result.stderr
    assert not paths.legacy_signer_key.exists()
    assert default_key_path().read_text().strip() == old.encode_private()


def test_a_different_key_in_both_places_is_refused(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    assert warden("audit", "key", "--state-dir", str(state)).returncode == 0
    legacy = AuditPaths.for_state(state).legacy_signer_key
    legacy.write_text(Signer.generate("warden.local/audit").encode_private() + "\n")
    line = one_line_failure(warden("audit", "key", "--state-dir", str(state)))
    assert "a signing key inside the state directory" in line


def test_a_group_readable_key_is_refused_with_the_chmod_fix(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    assert warden("audit", "key", "--state-dir", str(state)).returncode == 0
    default_key_path().chmod(0o640)
    line = one_line_failure(warden("audit", "checkpoint", "--state-dir", str(state)))
    assert f"chmod 600 {default_key_path()}" in line


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("re-sign, real key", "not consistent with the checkpoint trusted at"),
        ("re-sign, other key", "signed by an unknown key"),
        ("empty log", "the log has 0 entries but 40 were verified before at"),
        ("truncate log", "truncated"),
    ],
)
def test_a_tampered_log_fails_verify_with_one_line(trial: Pristine, kind: str, reason: str) -> None:
    TAMPERINGS[kind](trial, random.Random(7))
    line = one_line_failure(warden("audit", "verify", "--state-dir", str(trial.state)))
    assert "audit verify FAILED" in line
    assert reason in line


def test_the_head_attack_is_detected_even_with_the_key_pinned(trial: Pristine) -> None:
    """Rewrite a record, recompute the roots, drop the checkpoints, `audit checkpoint`."""
    vkey = warden("audit", "key", "--state-dir", str(trial.state)).stdout.strip()
    TAMPERINGS["edit record"](trial, random.Random(3))
    AuditPaths.for_state(trial.state).checkpoints.unlink()
    signed = warden("audit", "checkpoint", "--state-dir", str(trial.state))
    assert signed.returncode == 0, signed.stderr
    line = one_line_failure(
        warden("audit", "verify", "--state-dir", str(trial.state), "--key", vkey)
    )
    assert "not consistent with the checkpoint trusted at" in line
    # A failed verify leaves the trusted checkpoint where it was.
    entry = TrustStore.at().load(trial.state)
    assert entry is not None
    assert entry.size == 40


def test_the_trusted_checkpoint_advances_with_the_log(trial: Pristine) -> None:
    log, signer = open_audit(trial.state)
    log.append([{"position": 1000 + i, "type": "warden.step.intended"} for i in range(5)])
    log.sign_checkpoint([signer])
    result = warden("audit", "verify", "--state-dir", str(trial.state))
    assert result.returncode == 0, result.stderr
    assert "size 45" in result.stdout
    entry = TrustStore.at().load(trial.state)
    assert entry is not None
    assert (entry.size, entry.root) == (45, log.root())


def test_trust_pins_a_key_explicitly_and_forget_resets(tmp_path: Path) -> None:
    clean = pristine(tmp_path)
    other = Signer.generate("warden.local/audit").verifier.encode()
    trust_dir = str(tmp_path / "auditor-trust")
    pinned = warden("audit", "trust", "--key", other, "--state-dir", str(clean.state),
                    "--trust-dir", trust_dir)  # fmt: skip
    assert pinned.returncode == 0, pinned.stderr
    line = one_line_failure(
        warden("audit", "verify", "--state-dir", str(clean.state), "--trust-dir", trust_dir)
    )
    assert "signed by an unknown key" in line
    forget = ("audit", "trust", "--forget", "--state-dir", str(clean.state))
    assert warden(*forget, "--trust-dir", trust_dir).returncode == 0
    result = warden("audit", "verify", "--state-dir", str(clean.state), "--trust-dir", trust_dir)
    assert result.returncode == 0, result.stderr
    assert "first use" in result.stderr


def test_verify_store_names_a_decision_changed_in_the_event_store(trial: Pristine) -> None:
    ok = warden("audit", "verify", "--store", "--state-dir", str(trial.state))
    assert ok.returncode == 0, ok.stderr
    assert "40 audited events match the log" in ok.stdout
    with sqlite3.connect(trial.state / STORE_FILE) as db:
        db.execute(
            "UPDATE events SET record = json_set(record, '$.data.decision', 'deny') "
            "WHERE position = 3"
        )
    db.close()
    line = one_line_failure(warden("audit", "verify", "--store", "--state-dir", str(trial.state)))
    assert "store position 3 (stream incident-2, warden.step.decided)" in line
    assert "differs from audit entry 2 in 'data'" in line


def test_incidents_on_a_tampered_store_names_the_bad_record(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    state.mkdir()
    store = SQLiteEventStore(state / STORE_FILE)
    data = {"incident_id": "abc", "service": "orders"}
    for n in range(2):
        opened = Event(f"o{n}", "warden/test", INCIDENT_OPENED, "2026-01-01T00:00:00Z", data)
        store.append("incident-abc", [opened])
    store.close()
    result = warden("incidents", "--state-dir", str(state))
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert "incident-abc position 2 (warden.incident.opened)" in said
    assert "warden audit verify --store" in said


def test_a_key_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    open_audit(state)
    key = default_key_path()
    key.parent.chmod(0o777)
    with pytest.raises(ConfigError, match=f"run `chmod 700 {key.parent}`"):
        open_audit(state)
    key.parent.chmod(0o700)
    assert open_audit(state)[1].verifier.encode().startswith("warden.local/audit+")


def test_a_key_path_inside_the_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    with pytest.raises(ConfigError, match="is inside the state directory"):
        open_audit(state, key_path=state / "keys" / "audit.key")
