"""redact.keep_original: originals sealed outside the log, readable by an admin alone."""

from __future__ import annotations

import json
import sqlite3
import stat
from typing import TYPE_CHECKING, Any

import pytest

from tests.builders import register
from tests.cli import Cli
from warden.domain import events as ev
from warden.domain.errors import ConfigError, ValidationError
from warden.governance import identity
from warden.ingest.originals import OriginalsStore, default_key_path
from warden.operations import ORIGINALS_STREAM, read_original

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "hunter2-Kq19zz"
SSN = "078-05-1120-orig"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = make_harness(tmp_path, redact_fields=("ssn",), redact_keep_original=True)
    yield h
    h.close()


def _send(h: Harness, event_id: str, data: dict[str, Any]) -> ev.Event:
    raw = {
        "specversion": "1.0", "id": event_id, "source": "test://secrets",
        "type": "warden.webhook.received", "time": ev.format_time(h.clock.now()),
        "subject": "payments", "data": data,
    }  # fmt: skip
    admission = h.warden.runtime.ingest.admit(raw, "service-payments", "test")
    assert admission.event is not None, admission.reason
    return admission.event


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_original_is_sealed_and_only_an_admin_reads_it(
    harness: Harness, tmp_path: Path
) -> None:
    store = harness.warden.store
    admin = register(store, "ada", "admin")
    viewer = register(store, "vic", "operator")
    data = {"password": PASSWORD, "customer": {"ssn": SSN, "plan": "gold"}}
    stored = _send(harness, "o-1", data)
    assert stored.data == {
        "password": "[REDACTED:secret]",
        "customer": {"ssn": "[REDACTED:field]", "plan": "gold"},
    }
    plain = _send(harness, "o-2", {"plan": "gold"})  # nothing redacted: nothing kept
    originals = harness.warden.runtime.ingest.originals
    assert originals is not None
    got = read_original(
        store, originals, identity.Credential(token=admin.token), "o-1", harness.clock.now()
    )
    assert got == {"data": data, "extensions": {}}
    with pytest.raises(identity.AuthenticationError, match="admin"):
        read_original(
            store, originals, identity.Credential(token=viewer.token), "o-1", harness.clock.now()
        )
    with pytest.raises(ValidationError, match="no original is kept"):
        read_original(
            store, originals, identity.Credential(token=admin.token), plain.id, harness.clock.now()
        )
    # Who read which original is audited; the original itself is nowhere but sealed.
    (read,) = store.read_stream(ORIGINALS_STREAM)
    assert read.data == {"event_id": "o-1", "by": "ada"}
    harness.warden.runtime.tail()
    harness.warden.audit.catch_up()
    files = _files(tmp_path / "state")
    leaks = [
        f"{m} in {p}" for p, blob in files.items() for m in (PASSWORD, SSN) if m.encode() in blob
    ]
    assert leaks == []
    sealed = tmp_path / "state" / "originals" / "originals.db"
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    assert stat.S_IMODE(sealed.parent.stat().st_mode) == 0o700
    key = default_key_path()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert tmp_path / "state" not in key.parents


def test_the_command_prints_the_original_to_an_admin_and_refuses_others(
    harness: Harness, tmp_path: Path
) -> None:
    admin = register(harness.warden.store, "ada", "admin")
    viewer = register(harness.warden.store, "vic", "approver")
    _send(harness, "o-9", {"password": PASSWORD})
    cli = Cli(tmp_path / "state")
    code, out = cli("event", "original", "o-9", env={"WARDEN_TOKEN": admin.token})
    assert code == 0, out
    assert json.loads(out) == {"data": {"password": PASSWORD}, "extensions": {}}
    code, out = cli("event", "original", "o-9", env={"WARDEN_TOKEN": viewer.token})
    assert code == 2
    assert "admin" in out
    assert PASSWORD not in out
    code, out = cli("event", "original", "o-9", "--as", "vic", env={"WARDEN_TOKEN": admin.token})
    assert code == 2
    assert "not 'vic'" in out


def test_a_key_inside_the_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(ConfigError, match="inside the state directory"):
        OriginalsStore(state, state / "originals.key")


def test_a_record_does_not_open_under_another_id_or_key(tmp_path: Path) -> None:
    originals = OriginalsStore(tmp_path / "state")
    originals.keep("e-1", {"data": {"password": PASSWORD}})
    originals.close()
    other = OriginalsStore(tmp_path / "state", tmp_path / "keys" / "other.key")
    try:
        with pytest.raises(ValidationError, match="does not open with the key"):
            other.read("e-1")
    finally:
        other.close()
    # A record moved under another id does not open either (the id is sealed with it).
    with sqlite3.connect(tmp_path / "state" / "originals" / "originals.db") as db:
        db.execute("UPDATE originals SET event_id = 'e-2' WHERE event_id = 'e-1'")
    again = OriginalsStore(tmp_path / "state", default_key_path(), create=False)
    try:
        with pytest.raises(ValidationError, match="does not open with the key"):
            again.read("e-2")
    finally:
        again.close()
