"""`warden report`: resilience KPIs from the event history: a table, JSON, an HTML page. CLI edge.

Register with ``app.command()(report)``. Exits 0 on success, 2 with a one-line reason when
the state directory, the config or a time bound is wrong.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.cli.options import DEFAULT_STATE, Config, StateDir, fail
from warden.config import load_config
from warden.domain.errors import WardenError
from warden.domain.kpis import KpiSettings, by_version, resilience_report
from warden.store.location import has_log, open_event_store
from warden.telemetry.report import (
    VERSION_COLUMNS,
    describe_range,
    kpi_rows,
    render_html,
    report_json,
    version_rows,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from warden.domain.events import Event
    from warden.domain.kpis import ResilienceReport
    from warden.ports import EventStore

PAGE = 5000
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TIME_FORMS = "a date (2026-11-25), an RFC 3339 time (2026-11-25T12:00:00Z) or an age (30m, 24h, 7d)"


def parse_bound(text: str, now: datetime) -> datetime:
    """A range bound: a date, an RFC 3339 time (UTC when no offset), or an age before ``now``."""
    value = text.strip()
    age = _AGE.match(value)
    if age:
        try:
            return now - timedelta(**{_UNITS[age.group(2)]: float(age.group(1))})
        except OverflowError:
            raise ValueError(f"{text!r} reaches too far back") from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read {text!r}; use {TIME_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _events(store: EventStore) -> Iterator[Event]:
    position = 0
    while True:
        page = store.read_all(position, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        position = page[-1].position


def _fail(console: Console, message: str) -> typer.Exit:
    return fail(message)


def _settings(config: Path | None, state_dir: Path | None) -> tuple[Path, KpiSettings]:
    """The state directory and the KPI settings (relapse window, prices, services)."""
    if config is None:
        return state_dir or DEFAULT_STATE, KpiSettings()
    try:
        loaded = load_config(config)
    except WardenError as exc:
        raise fail(str(exc)) from None
    return state_dir or loaded.state_dir, loaded.kpi_settings


def report(
    config: Config = None,
    state_dir: StateDir = None,
    since: Annotated[
        str | None,
        typer.Option(help=f"Count incidents opened at or after this: {TIME_FORMS}."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Count incidents opened before this (same forms).")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a self-contained HTML report to this file."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print every KPI, overall and per version, as JSON."),
    ] = False,
) -> None:
    """Resilience KPIs computed from the event history, overall and per version.

    MTTR, time to detect, decide and act, automation coverage, remediation success (a
    relapse within relapse_window_s is a failure), escalations, policy and config drift,
    observability density and the cost of resilience. Give -c warden.yaml to use its
    relapse window, its kpis.prices and its services. n/a: nothing to divide by. Signals,
    drift and shadow decisions are counted by the hour: a range takes the whole hours it
    touches (incidents are taken by their exact opening time).

    Example: warden report -c warden.yaml --since 7d --html report.html
    """
    state_dir, settings = _settings(config, state_dir)
    console = Console()
    now = datetime.now(UTC)
    try:
        start = parse_bound(since, now) if since else None
        end = parse_bound(until, now) if until else None
    except ValueError as exc:
        raise _fail(console, f"time range: {exc}") from None
    if start is not None and end is not None and end <= start:
        raise _fail(
            console, f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})"
        )
    if not has_log(state_dir):
        raise _fail(
            console, f"no Warden state in {state_dir}/ (run `warden demo` or `warden run` first)"
        )
    store = open_event_store(state_dir)
    try:
        kpis = resilience_report(_events(store), start, end, settings)
    finally:
        store.close()

    if as_json:
        typer.echo(json.dumps(report_json(kpis), indent=2))
    else:
        _print_tables(console, kpis)
    if html is not None:
        page = render_html(kpis, generated_at=now, source=str(state_dir))
        try:
            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise _fail(console, f"cannot write {html}: {exc.strerror or exc}") from None
        if not as_json:
            console.print(f"wrote the HTML report to {escape(str(html))}", highlight=False)


def _print_tables(console: Console, kpis: ResilienceReport) -> None:
    table = Table(title=f"Resilience KPIs: {describe_range(kpis)}", title_justify="left")
    table.add_column("KPI", style="bold")
    table.add_column("value", justify="right")
    table.add_column("detail")
    for name, value, detail in kpi_rows(kpis):
        table.add_row(escape(name), escape(value), escape(detail))
    console.print(table)
    rows = version_rows(by_version(kpis))
    if rows:
        per = Table(
            title="By version of each agent, runbook and policy bundle", title_justify="left"
        )
        for column in VERSION_COLUMNS:
            per.add_column(column, justify="left" if column in ("kind", "version") else "right")
        for row in rows:
            per.add_row(*(escape(c) for c in row))
        console.print(per)
