"""The hand-drawn SVG plots and the HTML page: valid XML, right bins, everything escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from warden.domain.incident import State
from warden.domain.kpis import IncidentFacts, summarise
from warden.telemetry import svg
from warden.telemetry.report import (
    format_seconds,
    incidents_over_time,
    kpi_rows,
    mttr_histogram,
    outcomes_chart,
    render_html,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def facts(name: str, opened_s: float, state: State, mttr_s: float | None = None) -> IncidentFacts:
    opened = T0 + timedelta(seconds=opened_s)
    closed = opened + timedelta(seconds=mttr_s) if mttr_s is not None else None
    return IncidentFacts(
        incident_id=name, service=name, first_signal_at=opened, opened_at=opened,
        state=state, last_event_at=closed or opened, closed_at=closed,
    )  # fmt: skip


def parse(chart: str) -> ET.Element:
    root = ET.fromstring(chart)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_nice_steps() -> None:
    assert [svg.nice_step(x) for x in (0.3, 1, 1.2, 3, 7, 40, 0)] == [0.5, 1, 2, 5, 10, 50, 1]


def test_histogram_bins_cover_every_value() -> None:
    start, width, counts = svg.histogram_bins([12.0, 18.0, 20.0, 45.0, 95.0])
    # sqrt(5) -> 3 bins wanted; (95 - 12) / 3 = 27.7 -> width 50, from 0
    assert (start, width, counts) == (0.0, 50.0, [4, 1])
    assert svg.histogram_bins([7.0, 7.0]) == (6.0, 2.0, [2])
    with pytest.raises(ValueError, match="needs values"):
        svg.histogram_bins([])


def test_the_mttr_histogram_labels_its_bins() -> None:
    report = summarise(
        [facts("a", 0, State.RESOLVED, 12), facts("b", 60, State.RESOLVED, 18),
         facts("c", 120, State.RESOLVED, 95), facts("d", 180, State.ESCALATED, 30)]
    )  # fmt: skip
    root = parse(mttr_histogram(report))
    labels = texts(root)
    assert "0-50 s" in labels and "50-100 s" in labels
    tips = [t.text for t in root.iter(f"{SVG}title")]
    assert tips == ["MTTR distribution", "0-50 s: 2 incidents", "50-100 s: 1 incidents"]


def test_incidents_over_time_stack_by_outcome() -> None:
    report = summarise(
        [facts("a", 0, State.RESOLVED, 5), facts("b", 30, State.ESCALATED, 5),
         facts("c", 3 * 3600, State.OPEN)]
    )  # fmt: skip
    root = parse(incidents_over_time(report))
    tips = [t.text for t in root.iter(f"{SVG}title")][1:]
    # three hours of history -> 15-minute buckets; two incidents in the first, one in the last
    assert tips == ["12:00: 1 resolved", "12:00: 1 escalated", "15:00: 1 open"]
    assert "opened (UTC), per 15 minutes" in texts(root)


def test_outcomes_and_empty_charts_are_valid_svg() -> None:
    empty = summarise([])
    for chart in (mttr_histogram(empty), incidents_over_time(empty), outcomes_chart(empty)):
        parse(chart)
    assert "no resolved incidents in this range" in texts(parse(mttr_histogram(empty)))


def test_the_page_escapes_what_it_shows() -> None:
    hostile = facts("<script>alert(1)</script>", 0, State.RESOLVED, 10)
    page = render_html(summarise([hostile]), generated_at=T0, source="<b>")
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    for chart in re.findall(r"<svg .*?</svg>", page, re.S):
        parse(chart)


def test_kpi_rows_read_well() -> None:
    rows = {name: (value, detail) for name, value, detail in kpi_rows(summarise([]))}
    # nothing to divide by: n/a, never 0
    assert rows["Automation coverage"] == (
        "n/a",
        "0 of 0 closed incidents resolved without a human",
    )
    assert rows["Policy drift"] == (
        "n/a", "0 of 0 shadow decisions changed between bundle versions · n/a per day"
    )  # fmt: skip
    assert rows["Live bundle changes"][0] == "0 changes"
    assert rows["Cost of resilience"][0] == "n/a"
    assert rows["Observability density (signals per service per hour)"][0] == "n/a"
    assert [format_seconds(s) for s in (None, 0.25, 12, 600, 7200, 3 * 86400)] == [
        "n/a", "250 ms", "12.0 s", "10.0 min", "2.0 h", "3.0 d",
    ]  # fmt: skip
