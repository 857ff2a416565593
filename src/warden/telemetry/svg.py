"""Small SVG charts drawn by hand for the self-contained HTML report. Telemetry (rendering).

Each function returns one ``<svg>`` element as text: no scripts, no external resources,
every label escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

WIDTH = 680
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 36, 52
MAX_X_LABELS = 8
AXIS = "#555"
GRID = "#e3e3e3"
FAMILY = 'font-family="system-ui, sans-serif"'
FONT = f'{FAMILY} font-size="11"'


@dataclass(frozen=True, slots=True)
class Series:
    """One stack of a column chart: a name, a colour and one value per column."""

    name: str
    color: str
    values: tuple[float, ...]


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``raw``."""
    if raw <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * base >= raw * (1 - 1e-9):
            return factor * base
    return 10.0 * base  # pragma: no cover - the loop always returns


def _num(value: float) -> str:
    return f"{value:.1f}"


def _svg(title: str, body: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    label = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{label}">'
        f"<title>{label}</title>"
        f'<text x="{LEFT}" y="20" {FAMILY} font-size="14" font-weight="600">{label}</text>'
        f"{body}</svg>"
    )


def empty_chart(title: str, message: str) -> str:
    """A chart frame that says why there is nothing to draw."""
    body = (
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" {FONT} fill="{AXIS}">'
        f"{escape(message)}</text>"
    )
    return _svg(title, body)


def _legend(series: Sequence[Series]) -> str:
    parts = []
    x = WIDTH - RIGHT
    for item in reversed(series):
        text_width = 7 * len(item.name) + 18
        x -= text_width
        parts.append(
            f'<rect x="{x}" y="10" width="10" height="10" fill="{item.color}"/>'
            f'<text x="{x + 14}" y="19" {FONT}>{escape(item.name)}</text>'
        )
    return "".join(parts)


def columns(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    x_label: str = "",
) -> str:
    """Stacked columns, one per category, with a value axis and a legend."""
    if not categories:
        return empty_chart(title, "nothing to show in this range")
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    step = max(1.0, nice_step(max(totals, default=0.0) / 5))
    top = step * max(1, math.ceil(max(totals, default=0.0) / step))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_h
    parts: list[str] = []
    tick = 0.0
    while tick <= top + 1e-9:
        y = bottom - plot_h * tick / top
        parts.append(
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{WIDTH - RIGHT}" y2="{_num(y)}"'
            f' stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{_num(y + 4)}" text-anchor="end" {FONT}>{tick:g}</text>'
        )
        tick += step
    slot = plot_w / len(categories)
    bar_w = max(1.0, slot * 0.8)
    every = max(1, math.ceil(len(categories) / MAX_X_LABELS))
    for i, category in enumerate(categories):
        x = LEFT + slot * i + (slot - bar_w) / 2
        y = float(bottom)
        for item in series:
            value = item.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}"'
                f' fill="{item.color}"><title>{escape(category)}: {value:g} {escape(item.name)}'
                "</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{_num(LEFT + slot * (i + 0.5))}" y="{bottom + 16}"'
                f' text-anchor="middle" {FONT}>{escape(category)}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="{AXIS}"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="{AXIS}"/>'
    )
    if x_label:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle" {FONT}'
            f' fill="{AXIS}">{escape(x_label)}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" {FONT} fill="{AXIS}"'
            f' transform="rotate(-90 14 {TOP + plot_h / 2})">{escape(y_label)}</text>'
        )
    if len(series) > 1:
        parts.append(_legend(series))
    return _svg(title, "".join(parts))


def histogram_bins(values: Sequence[float], max_bins: int = 20) -> tuple[float, float, list[int]]:
    """Equal bins of a 1-2-5 width covering ``values``: first edge, width, count per bin.

    About the square root of the number of values bins, at most ``max_bins``.
    """
    if not values:
        raise ValueError("a histogram needs values")
    lo, hi = min(values), max(values)
    wanted = max(1, min(max_bins, math.ceil(math.sqrt(len(values)))))
    width = nice_step((hi - lo) / wanted) if hi > lo else nice_step(max(abs(hi), 1.0) / 5)
    start = math.floor(lo / width) * width
    count = max(1, math.floor((hi - start) / width) + 1)
    counts = [0] * count
    for value in values:
        counts[min(count - 1, int((value - start) // width))] += 1
    return start, width, counts


def bars(title: str, items: Sequence[tuple[str, float, str]]) -> str:
    """Horizontal bars: (label, value, colour) per row, the value printed at the bar's end."""
    if not items:
        return empty_chart(title, "nothing to show in this range")
    row = 28
    height = TOP + row * len(items) + 12
    label_w = 150
    plot_w = WIDTH - LEFT - label_w - RIGHT - 40
    top = max((v for _, v, _ in items), default=0.0) or 1.0
    parts = []
    for i, (label, value, color) in enumerate(items):
        y = TOP + row * i
        w = plot_w * value / top
        x = LEFT + label_w
        parts.append(
            f'<text x="{x - 8}" y="{y + 17}" text-anchor="end" {FONT}>{escape(label)}</text>'
            f'<rect x="{x}" y="{y + 5}" width="{_num(w)}" height="{row - 10}" fill="{color}"/>'
            f'<text x="{_num(x + w + 6)}" y="{y + 17}" {FONT}>{value:g}</text>'
        )
    return _svg(title, "".join(parts), height=height)
