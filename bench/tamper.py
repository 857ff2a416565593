"""Tamper campaign: N random tamperings of the audit log, checkpoints and event store.

Run with ``python bench/tamper.py [--trials 10000] [--seed 0]``; prints how many were
detected, per kind, and every one that was not (there should be none).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from report import emit  # bench/report.py, beside this script

from warden.testing.tamper import campaign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warden-tamper-") as work:
        # Keys and trust entries of the campaign stay in its own directory, not $HOME.
        os.environ["XDG_CONFIG_HOME"] = str(Path(work) / "config")
        started = time.perf_counter()
        result = campaign(Path(work), args.trials, seed=args.seed)
        elapsed = time.perf_counter() - started
    for kind, count in sorted(result.by_kind.items()):
        print(f"  {kind:<22} {count:>6}")
    for missed in result.missed:
        print(f"MISSED {missed}")
    print(
        f"detected {result.detected} of {result.trials} tamperings "
        f"({elapsed:.1f} s, seed {args.seed})"
    )
    rows: list[dict[str, object]] = [
        {"tampering": k, "trials": c} for k, c in sorted(result.by_kind.items())
    ]
    rows.append({"tampering": "detected", "trials": f"{result.detected} of {result.trials}"})
    emit("tamper", "audit log tampering campaign", rows, f"{elapsed:.1f} s, seed {args.seed}")
    return 0 if result.detected == result.trials else 1


if __name__ == "__main__":
    sys.exit(main())
