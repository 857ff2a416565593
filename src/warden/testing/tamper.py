"""A tamper campaign: random changes to an audit log, its checkpoints and event store. Testing.

:func:`pristine` builds a state directory (events, audit log, checkpoints, a key outside
it, a trust entry); :func:`campaign` copies it, applies one random tampering per trial
and counts how many the checks of ``warden audit verify --store`` detect. Used by the
tests and by ``bench/tamper.py`` for long runs.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from warden.audit.checkpoint import Signer
from warden.audit.log import AuditLog, encode_entry
from warden.audit.merkle import CompactRange, leaf_hash
from warden.audit.projector import AuditProjector
from warden.audit.state import AuditPaths, open_audit
from warden.audit.storecheck import crosscheck_store
from warden.audit.trust import TrustStore, verify_trusted
from warden.domain.canonical import canonical_json
from warden.domain.errors import WardenError
from warden.domain.events import Event
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

STORE_FILE = "events.db"
PINNED_AT = "2026-01-01T00:00:00+00:00"
TYPES = (
    "warden.incident.opened",
    "warden.plan.proposed",
    "warden.step.decided",
    "warden.step.approved",
    "warden.step.intended",
    "warden.step.succeeded",
)


@dataclass(frozen=True, slots=True)
class Pristine:
    """A clean state directory, its key file and trust store, to copy per trial."""

    state: Path
    key: Path
    trust: Path


def pristine(root: Path, events: int = 40, checkpoints: int = 3) -> Pristine:
    """Build a clean state: ``events`` audited events, ``checkpoints`` signed checkpoints."""
    state, key, trust = root / "state", root / "keys" / "audit.key", root / "trusted"
    store = SQLiteEventStore(state / STORE_FILE)
    log, signer = open_audit(state, key_path=key)
    projector = AuditProjector(store, log)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    per_checkpoint = max(1, events // checkpoints)
    for n in range(events):
        kind = TYPES[n % len(TYPES)]
        when = (start + timedelta(seconds=n)).isoformat()
        data = {"n": n, "decision": "allow" if n % 3 else "needs_approval", "step": n % 4}
        event = Event(f"e{n}", "warden/test", kind, when, data, subject=f"svc-{n % 3}")
        store.append(f"incident-{n % 5}", [event])
        if (n + 1) % per_checkpoint == 0:
            projector.catch_up()
            log.sign_checkpoint([signer])
    projector.catch_up()
    log.sign_checkpoint([signer])
    store.close()
    return Pristine(state, key, trust)


def _copy(source: Pristine, target: Path) -> Pristine:
    shutil.copytree(source.state, target / "state")
    trial = Pristine(target / "state", source.key, target / "trusted")
    # Trust what the first verify of the pristine state pinned; the entry names its path.
    trusted = TrustStore.at(source.trust).load(source.state)
    if trusted is None:
        paths = AuditPaths.for_state(source.state, source.key)
        store = TrustStore.at(source.trust)
        trusted = verify_trusted(AuditLog(paths.log), paths, store, now=PINNED_AT).entry
    state_dir = str(trial.state.resolve())
    TrustStore.at(trial.trust).save(replace(trusted, state_dir=state_dir))
    return trial


def detect(trial: Pristine) -> str | None:
    """The one-line reason the checks give, or ``None`` when the state passes."""
    paths = AuditPaths.for_state(trial.state, trial.key)
    log = AuditLog(paths.log)
    try:
        verify_trusted(log, paths, TrustStore.at(trial.trust), now="2026-01-02T00:00:00+00:00")
        store = SQLiteEventStore(trial.state / STORE_FILE)
        try:
            crosscheck_store(store, AuditLog(paths.log))
        finally:
            store.close()
    except WardenError as exc:
        return str(exc)
    return None


# -- the tamperings --------------------------------------------------------------------


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def _rewrite_log(path: Path, records: list[dict[str, Any]]) -> None:
    """Write ``records`` as a well-formed log, every index and root recomputed."""
    crange = CompactRange()
    out = []
    for index, record in enumerate(records):
        leaf = canonical_json(record)
        crange = crange.append(leaf_hash(leaf))
        out.append(encode_entry(index, leaf, crange.root()))
    path.write_bytes(b"".join(out))


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["record"] for line in _lines(path)]


def _flip(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    at = rng.randrange(len(data))
    data[at] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    return f"flip byte {at} of {path.name}"


def _edit_record(trial: Pristine, rng: random.Random) -> str:
    log = AuditPaths.for_state(trial.state, trial.key).log
    records = _records(log)
    i = rng.randrange(len(records))
    field_name = rng.choice(["decision", "step", "n"])
    records[i]["data"][field_name] = rng.choice(["deny", "allow", 99, -1, None])
    if records[i] == _records(log)[i]:
        records[i]["data"]["forged"] = True
    _rewrite_log(log, records)
    return f"edit entry {i} ({field_name}), roots recomputed"


def _delete_entry(trial: Pristine, rng: random.Random) -> str:
    log = AuditPaths.for_state(trial.state, trial.key).log
    records = _records(log)
    i = rng.randrange(len(records))
    del records[i]
    _rewrite_log(log, records)
    return f"delete entry {i}, roots recomputed"


def _reorder(trial: Pristine, rng: random.Random) -> str:
    log = AuditPaths.for_state(trial.state, trial.key).log
    records = _records(log)
    i, j = rng.sample(range(len(records)), 2)
    records[i], records[j] = records[j], records[i]
    _rewrite_log(log, records)
    return f"swap entries {i} and {j}, roots recomputed"


def _truncate(trial: Pristine, rng: random.Random) -> str:
    log = AuditPaths.for_state(trial.state, trial.key).log
    lines = _lines(log)
    keep = rng.randrange(len(lines))
    log.write_bytes(b"".join(lines[:keep]))
    return f"truncate the log to {keep} entries"


def _resign(trial: Pristine, rng: random.Random, *, real_key: bool) -> str:
    """Rewrite a record, drop the checkpoints, sign the new tree (another key or the real)."""
    what = _edit_record(trial, rng)
    paths = AuditPaths.for_state(trial.state, trial.key)
    paths.checkpoints.unlink()
    if real_key:
        log, signer = open_audit(trial.state, key_path=trial.key)
    else:
        signer = Signer.generate("warden.local/audit")
        log = AuditLog(paths.log)
        paths.verifier_key.write_text(signer.verifier.encode() + "\n")
    log.sign_checkpoint([signer])
    return f"{what}; re-signed with {'the real' if real_key else 'another'} key"


def _empty(trial: Pristine, rng: random.Random) -> str:
    paths = AuditPaths.for_state(trial.state, trial.key)
    paths.log.unlink()
    paths.checkpoints.unlink()
    return "delete the log and its checkpoints"


def _drop_checkpoints(trial: Pristine, rng: random.Random) -> str:
    path = AuditPaths.for_state(trial.state, trial.key).checkpoints
    lines = _lines(path)
    keep = rng.randrange(len(lines))
    path.write_bytes(b"".join(lines[:keep]))
    return f"keep {keep} of {len(lines)} checkpoints"


def _flip_checkpoints(trial: Pristine, rng: random.Random) -> str:
    return _flip(AuditPaths.for_state(trial.state, trial.key).checkpoints, rng)


def _flip_log(trial: Pristine, rng: random.Random) -> str:
    return _flip(AuditPaths.for_state(trial.state, trial.key).log, rng)


@contextlib.contextmanager
def _store(trial: Pristine) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(trial.state / STORE_FILE)
    try:
        with db:  # one transaction, committed
            yield db
    finally:
        db.close()


def _edit_event(trial: Pristine, rng: random.Random) -> str:
    with _store(trial) as db:
        (count,) = db.execute("SELECT count(*) FROM events").fetchone()
        position = rng.randrange(1, count + 1)
        path = rng.choice(["$.data.decision", "$.data.step", "$.time", "$.subject", "$.type"])
        (current,) = db.execute(
            "SELECT json_extract(record, ?) FROM events WHERE position = ?", (path, position)
        ).fetchone()
        choices = ["deny", "allow", "2030-01-01T00:00:00+00:00", "x", "0"]
        value = rng.choice([c for c in choices if c != current])
        db.execute(
            "UPDATE events SET record = json_set(record, ?, ?) WHERE position = ?",
            (path, value, position),
        )
    return f"set {path} of store position {position} to {value!r}"


def _delete_event(trial: Pristine, rng: random.Random) -> str:
    with _store(trial) as db:
        (count,) = db.execute("SELECT count(*) FROM events").fetchone()
        position = rng.randrange(1, count + 1)
        db.execute("DELETE FROM events WHERE position = ?", (position,))
    return f"delete store position {position}"


def _insert_event(trial: Pristine, rng: random.Random) -> str:
    store = SQLiteEventStore(trial.state / STORE_FILE)
    try:
        forged = Event(
            f"forged-{rng.randrange(10**9)}",
            "warden/test",
            "warden.step.decided",
            "2026-01-01T00:00:00+00:00",
            {"decision": "allow", "forged": True},
        )
        store.append("incident-0", [forged])
    finally:
        store.close()
    return "append a forged decision to the store"


def _swap_events(trial: Pristine, rng: random.Random) -> str:
    with _store(trial) as db:
        (count,) = db.execute("SELECT count(*) FROM events").fetchone()
        a, b = rng.sample(range(1, count + 1), 2)
        ra = db.execute("SELECT record FROM events WHERE position = ?", (a,)).fetchone()[0]
        rb = db.execute("SELECT record FROM events WHERE position = ?", (b,)).fetchone()[0]
        db.execute("UPDATE events SET record = ? WHERE position = ?", (rb, a))
        db.execute("UPDATE events SET record = ? WHERE position = ?", (ra, b))
    return f"swap the records of store positions {a} and {b}"


def _edit_both(trial: Pristine, rng: random.Random) -> str:
    """The same decision changed in the store and the log (roots recomputed)."""
    log = AuditPaths.for_state(trial.state, trial.key).log
    records = _records(log)
    i = rng.randrange(len(records))
    records[i]["data"]["decision"] = "forged"
    _rewrite_log(log, records)
    with _store(trial) as db:
        db.execute(
            "UPDATE events SET record = json_set(record, '$.data.decision', 'forged') "
            "WHERE position = ?",
            (records[i]["position"],),
        )
    return f"set decision of entry {i} and its store event to 'forged', roots recomputed"


TAMPERINGS: dict[str, Callable[[Pristine, random.Random], str]] = {
    "flip log byte": _flip_log,
    "edit record": _edit_record,
    "delete entry": _delete_entry,
    "reorder entries": _reorder,
    "truncate log": _truncate,
    "re-sign, other key": lambda t, r: _resign(t, r, real_key=False),
    "re-sign, real key": lambda t, r: _resign(t, r, real_key=True),
    "empty log": _empty,
    "drop checkpoints": _drop_checkpoints,
    "flip checkpoint byte": _flip_checkpoints,
    "edit store event": _edit_event,
    "delete store event": _delete_event,
    "insert store event": _insert_event,
    "swap store events": _swap_events,
    "edit store and log": _edit_both,
}


@dataclass
class CampaignResult:
    """How many tamperings were tried, detected, and the ones that were not."""

    trials: int = 0
    detected: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    missed: list[str] = field(default_factory=list)


def campaign(work: Path, trials: int, seed: int = 0) -> CampaignResult:
    """Apply ``trials`` random tamperings to copies of one pristine state; count detections.

    Also checks that the untouched copy passes, so a detection is not a false alarm.
    """
    rng = random.Random(seed)
    clean = pristine(work / "pristine")
    result = CampaignResult()
    control = _copy(clean, work / "control")
    if (reason := detect(control)) is not None:
        raise AssertionError(f"the untouched state does not verify: {reason}")
    kinds = sorted(TAMPERINGS)
    for n in range(trials):
        kind = kinds[n % len(kinds)] if n < len(kinds) else rng.choice(kinds)
        trial = _copy(clean, work / f"t{n}")
        what = TAMPERINGS[kind](trial, rng)
        result.trials += 1
        result.by_kind[kind] += 1
        if detect(trial) is not None:
            result.detected += 1
        else:
            result.missed.append(f"{kind}: {what}")
        shutil.rmtree(work / f"t{n}")
    return result


__all__ = ["TAMPERINGS", "CampaignResult", "Pristine", "campaign", "detect", "pristine"]
