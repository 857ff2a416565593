"""Re-record the golden histories: ``python -m tests.golden.record [name ...]`` (``make golden``).

Run it when a change of behaviour is intended; review the diff of tests/golden/*.jsonl
before committing it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.golden.history import dump
from tests.golden.scenarios import SCENARIOS


def main(names: list[str]) -> int:
    """Record the named scenarios (all by default); returns the exit code."""
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown scenario {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    for scenario in [known[n] for n in names] or SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="warden-golden-") as directory:
            golden = scenario.record(Path(directory))
        text = dump(golden)
        changed = not golden.path.exists() or golden.path.read_text(encoding="utf-8") != text
        golden.path.write_text(text, encoding="utf-8")
        print(
            f"{golden.path.name}: {len(golden.events)} events, {len(golden.incidents)} incidents"
            f"{' (changed)' if changed else ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
