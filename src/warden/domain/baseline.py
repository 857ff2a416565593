"""Robust baselines of metric series, and the upward shifts that stand out. Pure core (domain).

A series is judged against what it did before: the median of its recent normal samples
and their spread (the median absolute deviation, scaled to a standard deviation). A sample
is high when it exceeds the median by ``k`` spreads and by at least a floor (an absolute
shift and a share of the median, so a flat series needs a real change, not a rounding
step); a shift is declared only after ``sustain`` high samples in a row (one spike is not
an incident) and once ``min_samples`` normal samples taught the baseline. It holds until
``sustain`` samples in a row fall back below halfway to the threshold (hysteresis), and
samples that are high never teach the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

MAD_TO_SIGMA = 1.4826  # the MAD of normal data times this is its standard deviation


@dataclass(frozen=True, slots=True)
class BaselineRule:
    """How a series is judged (see the module docstring)."""

    min_samples: int = 20
    window: int = 40  # normal samples the baseline keeps, latest first
    k: float = 6.0
    sustain: int = 3
    min_shift: float = 0.0  # the least absolute rise that counts
    min_ratio: float = 0.0  # the least rise as a share of the baseline median

    def __post_init__(self) -> None:
        if self.min_samples < 3:
            raise ValueError("min_samples must be at least 3")
        if self.window < self.min_samples:
            raise ValueError("window must hold at least min_samples samples")
        if not self.k > 0:
            raise ValueError("k must be positive")
        if self.sustain < 1:
            raise ValueError("sustain must be at least 1")
        if self.min_shift < 0 or self.min_ratio < 0:
            raise ValueError("min_shift and min_ratio must not be negative")


@dataclass(frozen=True, slots=True)
class Shift:
    """A sustained rise of a series above its baseline."""

    baseline: float  # the median of the normal samples before it
    spread: float  # their scaled MAD
    threshold: float  # what a sample had to exceed
    observed: float  # the latest sample
    onset: int  # index of the first sample of the rise
    samples: int  # how many baseline samples judged it


def threshold(normal: Sequence[float], rule: BaselineRule) -> tuple[float, float, float]:
    """The (median, scaled MAD, threshold) of a baseline of normal samples."""
    centre = median(normal)
    spread = MAD_TO_SIGMA * median(abs(v - centre) for v in normal)
    rise = max(rule.k * spread, rule.min_shift, rule.min_ratio * abs(centre))
    return centre, spread, centre + rise


def assess(values: Sequence[float], rule: BaselineRule, floor: float | None = None) -> Shift | None:
    """The shift the series is in at its latest sample, or None when it is normal.

    Args:
        values: The series, oldest first.
        rule: How to judge it.
        floor: A level a sample must also exceed to be high (a declared SLO), if any.
    """
    normal: list[float] = []
    firing: Shift | None = None
    high_run: list[int] = []
    low_run = 0
    for index, value in enumerate(values):
        if len(normal) < rule.min_samples:
            normal.append(value)
            continue
        centre, spread, limit = threshold(normal[-rule.window :], rule)
        if floor is not None:
            limit = max(limit, floor)
        high = value > limit
        if firing is None:
            high_run = [*high_run, index] if high else []
            if len(high_run) >= rule.sustain:
                firing = Shift(centre, spread, limit, value, high_run[0], len(normal))
            elif not high:
                normal.append(value)
            continue
        # Firing: judged against the baseline the shift was found on, which stays frozen.
        low_run = low_run + 1 if value <= (firing.baseline + firing.threshold) / 2 else 0
        if low_run >= rule.sustain:
            firing, high_run, low_run = None, [], 0
            normal.append(value)
        else:
            firing = Shift(
                firing.baseline,
                firing.spread,
                firing.threshold,
                value,
                firing.onset,
                firing.samples,
            )
    return firing


__all__ = ["MAD_TO_SIGMA", "BaselineRule", "Shift", "assess", "threshold"]
