"""The audit projector over the SQLite event store: exactly once, across crashes and rivals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.audit.log import AuditLog
from warden.audit.projector import SKIPPED_TYPES, AuditProjector, audit_record
from warden.domain.events import (
    DECISION_RECORDED,
    INCIDENT_OPENED,
    PROBE_FAILED,
    PROBE_SUCCEEDED,
    Event,
)

if TYPE_CHECKING:
    from pathlib import Path

    from warden.store.sqlite import SQLiteEventStore

TYPES = [PROBE_SUCCEEDED, PROBE_FAILED, INCIDENT_OPENED, PROBE_SUCCEEDED, DECISION_RECORDED]


def event(n: int, kind: str) -> Event:
    return Event(
        id=f"evt-{n}",
        source="warden://test",
        type=kind,
        time=f"2025-01-01T00:00:{n % 60:02d}.000000Z",
        data={"n": n, "detail": {"ok": n % 2 == 0}},
        subject=f"service-{n % 3}",
        correlation_id=f"corr-{n // 5}",
    )


def fill(store: SQLiteEventStore, start: int, count: int) -> None:
    for n in range(start, start + count):
        store.append(f"stream-{n % 4}", [event(n, TYPES[n % len(TYPES)])])


def audited(store: SQLiteEventStore) -> list[dict[str, object]]:
    return [audit_record(e) for e in store.read_all() if e.type not in SKIPPED_TYPES]


def test_every_event_but_probe_successes_is_audited_once(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    fill(store, 0, 23)
    log = AuditLog(tmp_path / "audit.jsonl")
    projector = AuditProjector(store, log, batch_size=4)
    added = projector.catch_up()
    records = [e.record for e in log.entries()]
    assert added == len(records) == 23 - sum(1 for n in range(23) if TYPES[n % 5] in SKIPPED_TYPES)
    assert records == audited(store)
    assert all(r["type"] != PROBE_SUCCEEDED for r in records)
    first = records[0]
    assert set(first) == {
        "position",
        "event_id",
        "stream",
        "type",
        "time",
        "subject",
        "data",
        "correlation_id",
    }
    assert first["event_id"] == "evt-1"
    assert first["data"] == {"n": 1, "detail": {"ok": False}}
    assert projector.catch_up() == 0
    fill(store, 23, 6)
    assert projector.catch_up() == len(audited(store)) - len(records)
    assert [e.record for e in log.entries()] == audited(store)
    assert projector.audited_position() == audited(store)[-1]["position"]


def test_a_new_projector_resumes_from_the_log_itself(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    fill(store, 0, 15)
    log_path = tmp_path / "audit.jsonl"
    AuditProjector(store, AuditLog(log_path)).catch_up()
    fill(store, 15, 10)
    # A restart: fresh objects, nothing in memory.
    assert AuditProjector(store, AuditLog(log_path)).catch_up() > 0
    assert AuditProjector(store, AuditLog(log_path)).catch_up() == 0
    assert [e.record for e in AuditLog(log_path).entries()] == audited(store)


def test_a_crash_mid_batch_neither_duplicates_nor_loses(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    fill(store, 0, 30)
    reference = AuditLog(tmp_path / "reference.jsonl")
    AuditProjector(store, reference).catch_up()
    lines = reference.path.read_bytes().splitlines(keepends=True)
    # The process died after writing 7 whole lines and half of the 8th.
    crashed = tmp_path / "crashed.jsonl"
    crashed.write_bytes(b"".join(lines[:7]) + lines[7][:25])
    AuditProjector(store, AuditLog(crashed)).catch_up()
    assert crashed.read_bytes() == reference.path.read_bytes()


class CountingStore:
    """A real store, counting the events it hands out."""

    def __init__(self, inner: SQLiteEventStore) -> None:
        self.inner = inner
        self.served = 0

    def read_all(self, after_position: int = 0, limit: int | None = None) -> list[Event]:
        events = self.inner.read_all(after_position, limit)
        self.served += len(events)
        return events


def test_trailing_skipped_events_are_not_reread_every_time(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    store.append("s", [event(0, INCIDENT_OPENED)])
    for n in range(1, 200):
        store.append("s", [event(n, PROBE_SUCCEEDED)])
    counting = CountingStore(store)
    projector = AuditProjector(counting, AuditLog(tmp_path / "a.jsonl"))  # type: ignore[arg-type]
    assert projector.catch_up() == 1
    served = counting.served
    assert served == 200
    assert projector.catch_up() == 0
    assert counting.served == served


class RivalStore(CountingStore):
    """Lets a rival projector catch up between our read and our append, once."""

    def __init__(self, inner: SQLiteEventStore, rival: AuditProjector) -> None:
        super().__init__(inner)
        self.rival: AuditProjector | None = rival

    def read_all(self, after_position: int = 0, limit: int | None = None) -> list[Event]:
        events = super().read_all(after_position, limit)
        rival, self.rival = self.rival, None
        if rival is not None:
            rival.catch_up()
        return events


def test_two_projectors_on_one_log_never_duplicate(store: SQLiteEventStore, tmp_path: Path) -> None:
    fill(store, 0, 40)
    path = tmp_path / "audit.jsonl"
    rival = AuditProjector(store, AuditLog(path), batch_size=7)
    ours = AuditProjector(RivalStore(store, rival), AuditLog(path), batch_size=5)  # type: ignore[arg-type]
    ours.catch_up()
    fill(store, 40, 9)
    rival.catch_up()
    ours.catch_up()
    log = AuditLog(path)
    assert [e.record for e in log.entries()] == audited(store)
    assert log.verify(require_checkpoint=False).size == len(audited(store))


def test_projected_log_verifies_and_proves(store: SQLiteEventStore, tmp_path: Path) -> None:
    from warden.audit.checkpoint import Signer
    from warden.audit.proofs import build_proof, verify_proof

    fill(store, 0, 12)
    log = AuditLog(tmp_path / "audit.jsonl")
    AuditProjector(store, log).catch_up()
    signer = Signer.generate("example.org/audit")
    signed = log.sign_checkpoint([signer])
    assert log.verify([signer.verifier]).size == log.size
    checked = verify_proof(build_proof(log, 2, signed).encode(), [signer.verifier])
    assert checked.record == audited(store)[2]
