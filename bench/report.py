"""The one way benchmark scripts record their figures: bench/results/NAME.json and a table.

Each script calls :func:`emit` with its rows; ``make bench`` then runs ``python
bench/report.py``, which gathers every JSON file into bench/results/README.md with the
machine's description. Rows are flat mappings of column name to value.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """CPU model and count, memory, OS and Python: what the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    memory_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def emit(name: str, title: str, rows: list[dict[str, Any]], notes: str = "") -> Path:
    """Write one benchmark's figures to bench/results/NAME.json (and refresh the summary)."""
    RESULTS.mkdir(exist_ok=True)
    record = {
        "name": name,
        "title": title,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "rows": rows,
        "notes": notes,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    summarize()
    return path


def _table(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return lines


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value).replace("|", "\\|")


def summarize() -> Path:
    """bench/results/README.md: every recorded benchmark as a Markdown table."""
    RESULTS.mkdir(exist_ok=True)
    lines = ["# Benchmark figures", "", "Written by `make bench`; see docs/benchmarks.md.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        m = record.get("machine", {})
        lines += [
            f"## {record['title']} (`{record['name']}`)",
            "",
            f"Measured {record['measured_at']} on {m.get('cpu')}, {m.get('cores')} cores,"
            f" {m.get('memory_gib')} GiB, Python {m.get('python')}, load {m.get('load_1m')}.",
            "",
            *_table(record.get("rows", [])),
            "",
        ]
        if record.get("notes"):
            lines += [record["notes"], ""]
    out = RESULTS / "README.md"
    out.write_text("\n".join(lines))
    return out


if __name__ == "__main__":
    print(summarize().read_text())


def emit_table(name: str, table: Any, notes: str = "") -> Path:
    """:func:`emit` for a script that already prints a rich ``Table``: its cells as rows."""
    headers = [str(c.header) for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    rows = [
        {h: _plain(cells[i][r]) for i, h in enumerate(headers)}
        for r in range(len(cells[0]) if cells else 0)
    ]
    return emit(name, str(table.title or name), rows, notes)


def _plain(cell: Any) -> str:
    text = getattr(cell, "plain", None)
    if text is None:
        text = str(cell)
    return re.sub(r"\[/?[a-z ]*\]", "", text)
