"""The audit log file: appends, reads, checkpoints, and detection of every kind of tampering."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.audit.checkpoint import Signer
from warden.audit.log import AuditLog, encode_entry
from warden.audit.merkle import leaf_hash, root, verify_consistency, verify_inclusion
from warden.domain.canonical import canonical_json
from warden.domain.errors import (
    AuditVerificationError,
    ConcurrencyConflict,
    ConfigError,
    ValidationError,
)

SIGNER = Signer.generate("example.org/audit")
KEYS = [SIGNER.verifier]


def records(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"position": i, "type": "warden.step.intended", "data": {"n": i, "note": "é\u2028"}}
        for i in range(start, start + n)
    ]


def make_log(directory: Path, sizes: tuple[int, ...] = (4, 8, 12)) -> AuditLog:
    """A log of ``sizes[-1]`` entries with a signed checkpoint at each size."""
    log = AuditLog(directory / "log.jsonl")
    done = 0
    for size in sizes:
        log.append(records(size - done, done))
        log.sign_checkpoint([SIGNER])
        done = size
    return log


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The bytes of a good log and its checkpoints file."""
    log = make_log(tmp_path_factory.mktemp("pristine"))
    return log.path.read_bytes(), log.checkpoints_path.read_bytes()


def verify_bytes(log_bytes: bytes, checkpoint_bytes: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "log.jsonl"
        path.write_bytes(log_bytes)
        (Path(d) / "log.jsonl.checkpoints").write_bytes(checkpoint_bytes)
        AuditLog(path).verify(KEYS)


def first_bad(log_bytes: bytes, checkpoint_bytes: bytes) -> AuditVerificationError:
    with pytest.raises(AuditVerificationError) as info:
        verify_bytes(log_bytes, checkpoint_bytes)
    return info.value


# -- the happy path --


def test_append_read_and_verify(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit" / "log.jsonl")
    assert log.size == 0
    assert log.append(records(3)) == 3
    assert log.append(records(4, 3)) == 7
    assert log.append([]) == 7
    assert [e.record for e in log.entries()] == records(7)
    assert [e.index for e in log.entries(5)] == [5, 6]
    leaves = [canonical_json(r) for r in records(7)]
    assert [log.leaf(i) for i in range(7)] == leaves
    hashes = [leaf_hash(x) for x in leaves]
    for entry in log.entries():
        assert entry.root == root(hashes[: entry.index + 1])
    assert log.entry(6).root == log.root() == root(hashes)
    assert log.last_record() == records(7)[-1]
    report = log.verify(KEYS, require_checkpoint=False)
    assert (report.size, report.checkpoints, report.latest) == (7, 0, None)


def test_each_line_is_exactly_the_canonical_json_of_its_entry(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    for index, line in enumerate(log.path.read_bytes().splitlines()):
        value = json.loads(line)
        assert set(value) == {"index", "record", "root"}
        assert value["index"] == index
        assert canonical_json(value) == line
        assert bytes.fromhex(value["root"]) == log.root(index + 1)
    assert (
        encode_entry(3, b'{"a":1}', bytes(32))
        == canonical_json({"index": 3, "record": {"a": 1}, "root": "00" * 32}) + b"\n"
    )


def test_verify_report_and_proofs_from_the_log(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    report = log.verify(KEYS)
    assert report.size == 12
    assert report.checkpoints == 3
    assert report.latest is not None and report.latest.size == 12
    assert report.unsigned == 0
    assert report.signers == (SIGNER.verifier.encode(),)
    for index in range(12):
        leaf = leaf_hash(log.leaf(index))
        verify_inclusion(index, 12, leaf, log.inclusion_proof(index, 12), log.root())
    cps = [c.checkpoint for c in log.checkpoints()]
    for old, new in itertools.pairwise(cps):
        proof = log.consistency_proof(old.size, new.size)
        verify_consistency(old.size, new.size, old.root, new.root, proof)


def test_records_must_be_json_objects(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "log.jsonl")
    for bad in ([1], [{"x": {1, 2}}], [{"x": float("nan")}], [{1: "x"}]):
        with pytest.raises(ValidationError):
            log.append(bad)  # type: ignore[arg-type]
    assert log.size == 0


def test_expected_size_guards_against_a_concurrent_writer(tmp_path: Path) -> None:
    a, b = AuditLog(tmp_path / "log.jsonl"), AuditLog(tmp_path / "log.jsonl")
    a.append(records(2))
    with pytest.raises(ConcurrencyConflict):
        b.append(records(1, 2), expected_size=1)
    assert b.append(records(1, 2), expected_size=2) == 3
    assert a.size == 3  # the other instance sees the new entry
    assert a.last_record() == records(3)[-1]


def test_two_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    script = (
        "import sys\n"
        "from warden.audit.log import AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "for i in range(60):\n"
        "    log.append([{'writer': sys.argv[2], 'i': i, 'j': j} for j in range(4)])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), name]) for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    log = AuditLog(path)
    assert log.verify(require_checkpoint=False).size == 480
    seen: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    for entry in log.entries():
        seen[entry.record["writer"]].append((entry.record["i"], entry.record["j"]))
    expected = [(i, j) for i in range(60) for j in range(4)]
    assert seen == {"a": expected, "b": expected}
    # Each batch of four is contiguous: the lock kept the writers apart.
    rows = [(e.record["writer"], e.record["i"]) for e in log.entries()]
    assert all(len(set(rows[k : k + 4])) == 1 for k in range(0, 480, 4))


# -- checkpoints --


def test_a_non_empty_log_needs_a_checkpoint(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "log.jsonl")
    log.append(records(2))
    with pytest.raises(AuditVerificationError, match="no signed checkpoint") as info:
        log.verify(KEYS)
    assert info.value.index == 1
    assert AuditLog(tmp_path / "empty.jsonl").verify(KEYS).size == 0


def test_signing_twice_without_change_reuses_the_checkpoint(tmp_path: Path) -> None:
    log = make_log(tmp_path, (3,))
    first = log.latest_checkpoint()
    assert log.sign_checkpoint([SIGNER]) == first
    assert len(log.checkpoints()) == 1


def test_the_log_never_signs_an_inconsistent_checkpoint(tmp_path: Path) -> None:
    log = make_log(tmp_path, (5,))
    lines = log.path.read_bytes().splitlines(keepends=True)
    # Rewrite entry 2 and every root after it: a well-formed but different history.
    forged = AuditLog(tmp_path / "forged.jsonl")
    forged.append([*records(2), {"position": 99}, *records(2, 3)])
    log.path.write_bytes(forged.path.read_bytes())
    fresh = AuditLog(log.path)
    with pytest.raises(AuditVerificationError, match="consistency proof"):
        fresh.sign_checkpoint([SIGNER])
    assert len(fresh.checkpoints()) == 1
    # A shorter log is refused too.
    log.path.write_bytes(b"".join(lines[:3]))
    with pytest.raises(AuditVerificationError, match="removed") as info:
        AuditLog(log.path).sign_checkpoint([SIGNER])
    assert info.value.index == 3


def test_another_origin_is_refused(tmp_path: Path) -> None:
    log = make_log(tmp_path, (2,))
    with pytest.raises(ConfigError, match="origin"):
        log.sign_checkpoint([Signer.generate("other.example/log")])


def test_checkpoints_signed_by_an_untrusted_key_fail(tmp_path: Path) -> None:
    log = make_log(tmp_path, (2,))
    with pytest.raises(AuditVerificationError, match="checkpoint #1") as info:
        log.verify([Signer.generate(SIGNER.name).verifier])
    assert info.value.index == -1


def test_torn_tail_is_reported_then_repaired_by_the_next_append(tmp_path: Path) -> None:
    log = make_log(tmp_path, (3,))
    good = log.path.read_bytes()
    torn = encode_entry(3, b'{"position":3}', bytes(32))[:20]
    log.path.write_bytes(good + torn)
    with pytest.raises(AuditVerificationError, match="incomplete") as info:
        AuditLog(log.path).verify(KEYS)
    assert info.value.index == 3
    again = AuditLog(log.path)
    assert again.size == 3  # readers ignore the torn tail
    assert again.append(records(1, 3)) == 4
    again.sign_checkpoint([SIGNER])
    assert again.verify(KEYS).size == 4


def test_a_torn_checkpoint_line_is_repaired_when_signing(tmp_path: Path) -> None:
    log = make_log(tmp_path, (3,))
    with log.checkpoints_path.open("ab") as f:
        f.write(b'{"checkpoint":"exam')
    with pytest.raises(AuditVerificationError, match="final newline"):
        log.verify(KEYS)
    log.append(records(1, 3))
    log.sign_checkpoint([SIGNER])
    assert log.verify(KEYS).checkpoints == 2


# -- tampering: every change, deletion, reordering and truncation is caught --

TAMPER = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_pristine_copy_verifies(pristine: tuple[bytes, bytes]) -> None:
    verify_bytes(*pristine)


@TAMPER
@given(st.data())
def test_any_single_byte_change_names_its_line(
    pristine: tuple[bytes, bytes], data: st.DataObject
) -> None:
    log_bytes, cps = pristine
    at = data.draw(st.integers(0, len(log_bytes) - 1), label="at")
    xor = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(log_bytes)
    changed[at] ^= xor
    assert first_bad(bytes(changed), cps).index == log_bytes[:at].count(b"\n")


@TAMPER
@given(st.data())
def test_any_inserted_or_deleted_byte_names_its_line(
    pristine: tuple[bytes, bytes], data: st.DataObject
) -> None:
    log_bytes, cps = pristine
    at = data.draw(st.integers(0, len(log_bytes) - 1), label="at")
    line = log_bytes[:at].count(b"\n")
    assert first_bad(log_bytes[:at] + log_bytes[at + 1 :], cps).index == line
    extra = bytes([data.draw(st.integers(0, 255), label="byte")])
    assert first_bad(log_bytes[:at] + extra + log_bytes[at:], cps).index == line


def test_any_truncation_names_the_first_missing_entry(pristine: tuple[bytes, bytes]) -> None:
    log_bytes, cps = pristine
    for cut in range(len(log_bytes)):
        error = first_bad(log_bytes[:cut], cps)
        assert error.index == log_bytes[:cut].count(b"\n"), cut


def test_any_deleted_line_is_caught(pristine: tuple[bytes, bytes]) -> None:
    log_bytes, cps = pristine
    lines = log_bytes.splitlines(keepends=True)
    for i in range(len(lines)):
        error = first_bad(b"".join(lines[:i] + lines[i + 1 :]), cps)
        assert error.index == i


def test_any_reordering_names_the_first_moved_line(pristine: tuple[bytes, bytes]) -> None:
    log_bytes, cps = pristine
    lines = log_bytes.splitlines(keepends=True)
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            swapped = [*lines]
            swapped[i], swapped[j] = swapped[j], swapped[i]
            assert first_bad(b"".join(swapped), cps).index == i
    duplicated = [*lines[:5], lines[4], *lines[5:]]
    assert first_bad(b"".join(duplicated), cps).index == 5


def test_a_rewritten_history_with_recomputed_roots_is_caught(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a")
    log_bytes, cps = log.path.read_bytes(), log.checkpoints_path.read_bytes()
    forged = AuditLog(tmp_path / "forged.jsonl")
    changed = records(12)
    changed[6] = {**changed[6], "type": "warden.step.succeeded"}
    forged.append(changed)
    assert forged.path.read_bytes() != log_bytes
    error = first_bad(forged.path.read_bytes(), cps)
    # Checkpoints at 4 and 8: entry 6 lies in 4..7, the first range no checkpoint proves.
    assert error.index == 4
    assert "4..7" in str(error)


@TAMPER
@given(st.data())
def test_any_change_to_the_checkpoints_file_is_caught(
    pristine: tuple[bytes, bytes], data: st.DataObject
) -> None:
    log_bytes, cps = pristine
    at = data.draw(st.integers(0, len(cps) - 1), label="at")
    changed = bytearray(cps)
    changed[at] ^= data.draw(st.integers(1, 255), label="xor")
    error = first_bad(log_bytes, bytes(changed))
    assert error.index in (-1, 4, 8, 12)


def test_a_deleted_checkpoints_file_is_caught(pristine: tuple[bytes, bytes]) -> None:
    log_bytes, _ = pristine
    assert "no signed checkpoint" in str(first_bad(log_bytes, b""))


def test_a_log_file_that_shrinks_under_a_reader_is_reported(tmp_path: Path) -> None:
    log = make_log(tmp_path, (4,))
    assert log.size == 4
    data = log.path.read_bytes()
    os.truncate(log.path, len(data) - 10)
    with pytest.raises(AuditVerificationError, match="shrank") as info:
        _ = log.size
    assert info.value.index == 3
