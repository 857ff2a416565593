"""The campaign's parts by name, and how big each is run."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from . import disk, fuzz, kills, overload
from .common import Result

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from rich.console import Console


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much of each part to run."""

    kills: int
    fuzz_inputs: int
    fuzz_requests: int
    overload_s: float
    slow_connections: int
    slow_s: float
    disk_events: int
    tamperings: int


PARTS = ("kills", "fuzz", "overload", "slow", "disk", "tamper")


def _fuzz_share(count: int, seed: int) -> Result:
    return fuzz.parsers(count, seed)


def _merge(results: list[Result], part: str) -> Result:
    merged = Result(part)
    for result in results:
        for key, value in result.counts.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                merged.counts[key] = merged.counts.get(key, 0) + value  # type: ignore[operator]
        for failure in result.failures:
            merged.fail(failure)
    return merged


def _progress(console: Console, total: int, what: str) -> tuple[Progress, Callable[[int], None]]:
    progress = Progress(
        "  " + what, BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console,
        transient=True,
    )  # fmt: skip
    task = progress.add_task(what, total=total)
    return progress, lambda n: progress.advance(task, n)


def run_part(
    name: str, sizes: Sizes, seed: int, workdir: Path, jobs: int, console: Console
) -> list[Result]:
    """Run one part; its results (a part may have several)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "kills":
        progress, advance = _progress(console, sizes.kills, "kills")
        with progress:
            return [kills.campaign(sizes.kills, seed, workdir, advance)]
    if name == "fuzz":
        shares = max(1, jobs)
        per = sizes.fuzz_inputs // shares
        if shares == 1:
            progress, advance = _progress(console, per, "fuzzed inputs")
            with progress:
                parsed = fuzz.parsers(per, seed, advance)
        else:
            with ProcessPoolExecutor(shares) as pool:
                parsed = _merge(
                    list(pool.map(_fuzz_share, [per] * shares, [seed + k for k in range(shares)])),
                    "fuzz: parsers, gates, store, audit",
                )
        return [parsed, fuzz.server(sizes.fuzz_requests, seed)]
    if name == "overload":
        return [overload.overload(sizes.overload_s)]
    if name == "slow":
        return [overload.slow_clients(sizes.slow_connections, sizes.slow_s)]
    if name == "disk":
        return [disk.disk_full(sizes.disk_events), disk.read_only(sizes.disk_events)]
    if name == "tamper":
        from . import tamper

        return [tamper.campaign(sizes.tamperings, seed, workdir)]
    raise ValueError(f"unknown part {name!r} (known: {', '.join(PARTS)})")
