"""Audit plane benchmark: appends, proofs, checkpoints and full verification per second.

Run with ``python bench/audit.py [--entries N] [--batch B]``; prints one table.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from report import emit_table  # bench/report.py, beside this script
from rich.console import Console
from rich.table import Table

from warden.audit.checkpoint import SignedCheckpoint, Signer
from warden.audit.log import AuditLog
from warden.audit.merkle import CompactRange, leaf_hash, verify_consistency, verify_inclusion
from warden.audit.proofs import build_proof, verify_proof

if TYPE_CHECKING:
    from collections.abc import Callable


def record(i: int) -> dict[str, object]:
    return {
        "position": i,
        "event_id": f"{i:032x}",
        "stream": f"incident-{i // 20}",
        "type": "warden.step.intended",
        "time": "2025-01-01T00:00:00.000000Z",
        "subject": f"service-{i % 7}",
        "data": {"action": "restart_service", "target": f"svc-{i % 7}", "attempt": i % 3},
        "correlation_id": f"corr-{i // 20}",
    }


def timed(count: int, action: Callable[[int], object]) -> tuple[int, float]:
    start = time.perf_counter()
    for i in range(count):
        action(i)
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=5000, help="log size (default 5000)")
    parser.add_argument("--batch", type=int, default=100, help="records per append")
    parser.add_argument("--samples", type=int, default=2000, help="proofs per measurement")
    args = parser.parse_args()
    n, batch, samples = args.entries, args.batch, args.samples
    rng = random.Random(7)
    rows: list[tuple[str, int, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        single = AuditLog(Path(tmp) / "single.jsonl")
        count = min(n, 300)
        rows.append(
            ("append, 1 record per fsync", *timed(count, lambda i: single.append([record(i)])))
        )

        log = AuditLog(Path(tmp) / "log.jsonl")
        batches = [[record(i) for i in range(s, min(s + batch, n))] for s in range(0, n, batch)]
        _, seconds = timed(len(batches), lambda i: log.append(batches[i]))
        rows.append((f"append, {batch} records per fsync", n, seconds))

        leaves = [leaf_hash(str(i).encode()) for i in range(n)]
        holder = [CompactRange()]

        def grow(i: int) -> None:
            holder[0] = holder[0].append(leaves[i])
            holder[0].root()

        rows.append(("compact range append + root", *timed(n, grow)))

        signer = Signer.generate("bench.example/audit")
        signed = log.sign_checkpoint([signer])
        size, root = signed.checkpoint.size, signed.checkpoint.root
        picks = [rng.randrange(size) for _ in range(samples)]
        proofs = [log.inclusion_proof(i, size) for i in picks]
        rows.append(
            ("inclusion proof, generate", *timed(samples, lambda k: log.inclusion_proof(picks[k])))
        )
        hashes = [leaf_hash(log.leaf(i)) for i in picks]
        rows.append(
            (
                "inclusion proof, verify",
                *timed(
                    samples, lambda k: verify_inclusion(picks[k], size, hashes[k], proofs[k], root)
                ),
            )
        )
        olds = [rng.randrange(1, size + 1) for _ in range(samples)]
        cons = [log.consistency_proof(m, size) for m in olds]
        old_roots = [log.root(m) for m in olds]
        rows.append(
            (
                "consistency proof, generate",
                *timed(samples, lambda k: log.consistency_proof(olds[k])),
            )
        )
        rows.append(
            (
                "consistency proof, verify",
                *timed(
                    samples,
                    lambda k: verify_consistency(olds[k], size, old_roots[k], root, cons[k]),
                ),
            )
        )
        text = signed.encode()
        rows.append(
            (
                "checkpoint, sign",
                *timed(samples, lambda _: SignedCheckpoint.sign(signed.checkpoint, [signer])),
            )
        )
        rows.append(
            (
                "checkpoint, parse + verify",
                *timed(samples, lambda _: SignedCheckpoint.parse(text).verify([signer.verifier])),
            )
        )
        bundles = [build_proof(log, i, signed).encode() for i in picks[:500]]
        rows.append(
            (
                "tlog-proof, build",
                *timed(len(bundles), lambda k: build_proof(log, picks[k], signed).encode()),
            )
        )
        rows.append(
            (
                "tlog-proof, parse + verify",
                *timed(len(bundles), lambda k: verify_proof(bundles[k], [signer.verifier])),
            )
        )
        _, seconds = timed(1, lambda _: log.verify([signer.verifier]))
        rows.append(("full log verify (entries)", n, seconds))

    table = Table(title=f"audit plane, log of {n} entries")
    table.add_column("operation")
    table.add_column("count", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("per second", justify="right")
    for name, count, seconds in rows:
        table.add_row(name, str(count), f"{seconds:.3f}", f"{count / seconds:,.0f}")
    Console().print(table)
    emit_table("audit", table)


if __name__ == "__main__":
    main()
