"""`warden demo` as a user runs it: real processes, the timeline, MTTR, a verifiable audit log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.builders import processes_marked

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

WARDEN = [sys.executable, "-m", "warden.cli"]


def warden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [*WARDEN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def test_demo_heals_the_crash_and_leaves_a_verifiable_audit_log(tmp_path: Path) -> None:
    result = warden("demo", "--duration", "12", "--crash-after", "3", cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for expected in (
        "FAULT", "SIGKILL sent to payments", "DETECT", "restart_service payments",
        "allow", "autonomous-low-risk", "intent: restart_service payments", "RESOLVED",
    ):  # fmt: skip
        assert expected in out, expected
    mttr = re.search(r"MTTR (\d+\.\d+) s", out)
    assert mttr is not None
    assert 0.5 < float(mttr.group(1)) < 10
    assert processes_marked(tmp_path / ".warden") == []

    listing = warden("incidents", cwd=tmp_path)
    assert listing.returncode == 0
    assert "resolved" in listing.stdout

    verified = warden("audit", "verify", "--store", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "first use: pinned" in verified.stderr
    # The signing key lies beside the state, never in it.
    assert (tmp_path / ".warden-keys" / "audit.key").stat().st_mode & 0o777 == 0o600
    assert not any(
        b"PRIVATE+KEY" in f.read_bytes() for f in (tmp_path / ".warden").rglob("*") if f.is_file()
    )

    # The recorded inputs of real processes, replayed, give the same decisions.
    replayed = warden("replay", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "1 incidents recorded, 1 in the replay" in replayed.stdout
    assert "same decisions as recorded" in replayed.stdout

    log = tmp_path / ".warden" / "audit" / "log.jsonl"
    data = bytearray(log.read_bytes())
    lines = data.split(b"\n")
    target = len(lines[0]) + 1 + len(lines[1]) + 1 + 20  # a byte inside entry 2
    data[target] ^= 0x01
    log.write_bytes(bytes(data))
    tampered = warden("audit", "verify", cwd=tmp_path)
    assert tampered.returncode != 0
    assert re.search(r"entry 2\b", tampered.stdout + tampered.stderr)
