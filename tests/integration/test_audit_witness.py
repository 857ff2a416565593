"""Witness cosigning over real HTTP, and checkpoints published to PostgreSQL.

The witness is a `warden witness serve` process on loopback; both it and the second store
catch a log rewritten with the real key.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from warden.audit.checkpointer import Checkpointer
from warden.audit.cosign import CosignatureVerifier, cosigned_by
from warden.audit.log import AuditLog
from warden.audit.publish import CheckpointPublisher
from warden.audit.settings import AuditSettings, WitnessConfig
from warden.audit.state import KEY_ENV, AuditPaths, open_audit
from warden.config import parse_config
from warden.testing.tamper import TAMPERINGS, pristine

from .harness import make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from warden.testing.tamper import Pristine


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


@pytest.fixture
def state(tmp_path: Path) -> Pristine:
    return pristine(tmp_path / "log")


@contextmanager
def serve_witness(tmp_path: Path, log_key: str) -> Iterator[WitnessConfig]:
    """A `warden witness serve` process with its own key and state, for one log's key."""
    argv = [sys.executable, "-m", "warden.cli", "witness", "serve",
            "--key", str(tmp_path / "witness" / "key"), "--state", str(tmp_path / "witness" / "db"),
            "--port", "0", "--log", log_key]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=os.environ.copy()) as proc:
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            key = url = ""
            while not url and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    pytest.fail("the witness process exited before listening")
                if line.startswith("witness key "):
                    key = line.split()[-1]
                if line.startswith("listening on "):
                    url = line.split()[-1].removesuffix("/add-checkpoint")
            assert url.startswith("http://127.0.0.1:")
            yield WitnessConfig(url, CosignatureVerifier.parse(key))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def witness(tmp_path: Path, state: Pristine) -> Iterator[WitnessConfig]:
    _, signer = open_audit(state.state)
    with serve_witness(tmp_path, signer.verifier.encode()) as config:
        yield config


def test_the_runtime_submits_its_checkpoints_to_the_witness(tmp_path: Path) -> None:
    _, signer = open_audit(tmp_path / "state")  # the key the runtime will sign with
    with serve_witness(tmp_path, signer.verifier.encode()) as witness:
        harness = make_harness(tmp_path, audit=AuditSettings(witnesses=(witness,)))
        harness.close()  # catches the log up and checkpoints, as `warden run` does on exit
    latest = AuditLog(AuditPaths.for_state(tmp_path / "state").log).latest_checkpoint()
    assert latest is not None
    assert latest.checkpoint.size > 0
    assert witness.key in cosigned_by([latest.note], [witness.key])


def test_checkpoints_are_cosigned_by_a_witness_process(
    state: Pristine, witness: WitnessConfig
) -> None:
    log, signer = open_audit(state.state)
    checkpointer = Checkpointer(log, signer, [witness])
    first = checkpointer.checkpoint()
    assert checkpointer.problems == []
    assert witness.key in cosigned_by([first.note], [witness.key])
    # The stored copy carries the cosignature; the witness saw size 40.
    latest = log.latest_checkpoint()
    assert latest is not None
    assert witness.key in cosigned_by([latest.note], [witness.key])
    log.append([{"position": 100 + i, "type": "warden.step.intended"} for i in range(7)])
    second = checkpointer.checkpoint()  # old 40, a consistency proof to 47
    assert checkpointer.problems == []
    assert second.checkpoint.size == 47
    assert witness.key in cosigned_by([second.note], [witness.key])
    result = warden(
        "audit", "verify", "--state-dir", str(state.state), "--witness-key", witness.key.encode()
    )
    assert result.returncode == 0, result.stderr
    assert f"{witness.key.name} at " in result.stdout


def test_a_log_rewritten_with_the_real_key_gets_no_cosignature(
    state: Pristine, witness: WitnessConfig
) -> None:
    log, signer = open_audit(state.state)
    Checkpointer(log, signer, [witness]).checkpoint()
    TAMPERINGS["re-sign, real key"](state, random.Random(5))
    log, signer = open_audit(state.state)
    checkpointer = Checkpointer(log, signer, [witness])
    checkpointer.checkpoint()
    assert len(checkpointer.problems) == 1
    assert "not witnessed" in checkpointer.problems[0]
    assert "has seen size 40 of this log, which this checkpoint" in checkpointer.problems[0]
    result = warden(
        "audit",
        "verify",
        "--state-dir",
        str(state.state),
        "--witness-key",
        witness.key.encode(),
        "--trust-dir",
        str(state.state.parent / "fresh-trust"),
    )
    assert result.returncode == 1
    assert f"no valid cosignature from witness {witness.key.name}" in result.stderr


def test_run_configuration_names_witnesses_and_the_store(
    tmp_path: Path, witness: WitnessConfig
) -> None:
    raw = {
        "services": [{"name": "a", "health": "http://127.0.0.1:1/health"}],
        "audit": {
            "key_path": "keys/audit.key",
            "witnesses": [{"url": witness.url, "public_key": witness.key.encode()}],
            "publish": "postgresql://db/warden",
        },
    }
    config = parse_config(raw, tmp_path)
    assert config.audit.key_path == tmp_path / "keys" / "audit.key"
    assert config.audit.witnesses == (witness,)
    assert config.audit.publish_dsn == "postgresql://db/warden"


@pytest.mark.postgres
def test_published_checkpoints_catch_deleted_or_rewritten_local_files(
    state: Pristine, postgres_dsn: str, postgres_schema: str
) -> None:
    log, signer = open_audit(state.state)
    publisher = CheckpointPublisher(postgres_dsn, postgres_schema)
    checkpointer = Checkpointer(log, signer, publisher=publisher)
    checkpointer.checkpoint()
    assert checkpointer.problems == []
    assert [p.signed.checkpoint.size for p in publisher.read(signer.name)] == [40]
    verify = ("audit", "verify", "--state-dir", str(state.state), "--published", postgres_dsn,
              "--published-schema", postgres_schema)  # fmt: skip
    ok = warden(*verify)
    assert ok.returncode == 0, ok.stderr
    assert "1 match" in ok.stdout
    # Rewritten with the real key, and the trust store gone too: the second store remains.
    TAMPERINGS["re-sign, real key"](state, random.Random(9))
    fresh = ("--trust-dir", str(state.state.parent / "fresh"))
    result = warden(*verify, *fresh)
    assert result.returncode == 1
    assert "does not match the checkpoint of size 40 published at" in result.stderr
    paths = AuditPaths.for_state(state.state)
    paths.log.unlink()
    paths.checkpoints.unlink()
    result = warden(*verify, "--trust-dir", str(state.state.parent / "fresh2"))
    assert result.returncode == 1
    assert "a checkpoint of size 40 was published at" in result.stderr
    assert "local log has 0 entries" in result.stderr
