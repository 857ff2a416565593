"""`warden report` against a real state directory filled with a scripted history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import typer
from typer.testing import CliRunner

from warden.cli.report_cmd import parse_bound, report
from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.plans import Plan, Step, step_hash
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = 86_400

app = typer.Typer()


@app.callback()
def warden() -> None:
    """Stands in for the real `warden` app, so the command is invoked as `report`."""


app.command()(report)


class Writer:
    def __init__(self, store: SQLiteEventStore, name: str, service: str) -> None:
        self.store = store
        self.id = name
        self.stream = f"incident-{name}"
        self.plan = Plan("service-down", (Step("restart_service", service),), "down", (), 0.9)
        self.hash = step_hash(name, 0, self.plan.steps[0])
        self.service = service
        self.n = 0

    def add(self, type_: str, seconds: float, data: dict[str, Any] | None = None) -> Writer:
        self.n += 1
        time = ev.format_time(T0 + timedelta(seconds=seconds))
        event = ev.Event(f"{self.id}-{self.n}", "test", type_, time, data or {})
        self.store.append(self.stream, [event])
        return self

    def opened(self, seconds: float, first_signal: float) -> Writer:
        first = ev.format_time(T0 + timedelta(seconds=first_signal))
        data = {"incident_id": self.id, "service": self.service, "first_signal_at": first}
        return self.add(ev.INCIDENT_OPENED, seconds, data).add(
            ev.PLAN_PROPOSED, seconds + 1, {"plan": self.plan.to_dict()}
        )

    def decided(self, seconds: float, outcome: Outcome, version: str) -> Writer:
        d = Decision(outcome, self.hash, (Reason("p", "m"),), 1, version)
        return self.add(ev.DECISION_RECORDED, seconds, {"decision": d.to_dict(), "index": 0})

    def restarted(self, seconds: float, took_s: float, verified: float) -> Writer:
        self.add(
            ev.STEP_INTENDED,
            seconds,
            {"index": 0, "step_hash": self.hash, "action": "restart_service"},
        )
        self.add(ev.STEP_SUCCEEDED, seconds + took_s, {"index": 0, "duration_ms": took_s * 1000})
        self.add(ev.VERIFICATION_STARTED, seconds + took_s + 1)
        self.add(ev.VERIFICATION_PASSED, verified)
        return self.add(ev.INCIDENT_RESOLVED, verified, {"reason": "verified"})


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    store = SQLiteEventStore(state_dir / "events.db")
    try:
        # a: automated, MTTR 20 s.
        Writer(store, "aaaa", "payments").opened(10, 0).decided(13, Outcome.ALLOW, "v1").restarted(
            14, 2, 20
        )
        # b, the next day: denied by the new policy version, escalated.
        b = Writer(store, "bbbb", "orders").opened(DAY + 104, DAY + 100)
        b.decided(DAY + 108, Outcome.DENY, "v2").add(
            ev.INCIDENT_ESCALATED, DAY + 109, {"reason": "denied"}
        )
        # c, the day after: approved by a human, MTTR 80 s.
        c = Writer(store, "cccc", "gateway").opened(2 * DAY + 5, 2 * DAY)
        c.decided(2 * DAY + 7, Outcome.NEEDS_APPROVAL, "v2")
        c.add(ev.APPROVAL_GRANTED, 2 * DAY + 67, {"step_hash": c.hash, "approver": "bob"})
        c.decided(2 * DAY + 68, Outcome.ALLOW, "v2").restarted(2 * DAY + 69, 2, 2 * DAY + 80)
    finally:
        store.close()
    return state_dir


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "220"})
    return result.exit_code, result.output


def row(output: str, kpi: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0] == kpi:
            return cells[1:]
    raise AssertionError(f"no row {kpi!r} in:\n{output}")


def test_the_table_shows_the_kpis_of_all_time(state: Path) -> None:
    code, output = run("--state-dir", str(state))
    assert code == 0, output
    assert row(output, "Incidents")[0] == "3"
    assert row(output, "MTTR (first signal to verified recovery)")[0] == "50.0 s"  # (20 + 80) / 2
    assert row(output, "Automation coverage") == [
        "33.3%",
        "1 of 3 closed incidents resolved without a human",
    ]
    # remediations: a and c ran a step and held; b was denied, nothing ran
    assert row(output, "Remediation success rate")[0] == "100.0%"
    assert row(output, "Live bundle changes")[0] == "1 change"
    assert row(output, "Policy drift")[0] == "n/a"  # no shadow bundle compared
    assert row(output, "Decisions")[0] == "4"


def test_a_range_and_the_html_report(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "kpis.html"
    code, output = run(
        "-s",
        str(state),
        "--since",
        "2026-11-26",
        "--until",
        "2026-11-27T00:00:00Z",
        "--html",
        str(out),
    )
    assert code == 0, output
    assert row(output, "Incidents") == [
        "1",
        "0 open · 0 resolved · 1 escalated · 0 rolled back · 0 relapsed",
    ]
    assert row(output, "Escalations per incident")[0] == "1.00"
    assert "wrote the HTML report" in output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg ") == 6
    for title in ("MTTR distribution", "Incidents over time (by outcome)", "Outcomes"):
        assert f"<title>{title}</title>" in page
    assert "no resolved incidents in this range" in page  # b was escalated
    assert "bbbb" in page and "aaaa" not in page
    # Self-contained: nothing is fetched, nothing runs.
    assert not re.search(r"<script|<link|src=|href=|url\(", page)


def test_the_html_plots_carry_the_history(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.html"
    code, output = run("-s", str(state), "--html", str(out))
    assert code == 0, output
    page = out.read_text(encoding="utf-8")
    # Outcomes: 2 resolved, 1 escalated; decisions: 2 allow, 1 needs approval, 1 deny.
    for label, value in (
        ("incidents resolved", 2), ("incidents escalated", 1), ("decisions: allow", 2),
        ("decisions: needs approval", 1), ("decisions: deny", 1),
    ):  # fmt: skip
        assert re.search(rf">{re.escape(label)}</text>.*?<text[^>]*>{value}</text>", page), label
    # Incidents over time: one column per day, each holding one incident.
    assert page.count(": 1 resolved</title>") == 2
    assert page.count(": 1 escalated</title>") == 1


def test_missing_state_is_a_clear_error(tmp_path: Path) -> None:
    code, output = run("--state-dir", str(tmp_path / "nowhere"))
    assert code == 2
    assert "no Warden state in" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "cannot read 'yesterday'"),
        (["--since", "2026-11-27", "--until", "2026-11-26"], "must be after --since"),
    ],
)
def test_bad_ranges_are_refused(state: Path, args: list[str], message: str) -> None:
    code, output = run("-s", str(state), *args)
    assert code == 2
    assert message in output


def test_range_bounds_read_dates_times_and_ages() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_bound("2026-11-20", now) == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_bound("2026-11-20T08:30:00+02:00", now) == datetime(
        2026, 11, 20, 6, 30, tzinfo=UTC
    )
    assert parse_bound("2026-11-20T08:30", now) == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert parse_bound("24h", now) == now - timedelta(days=1)
    assert parse_bound("30m", now) == now - timedelta(minutes=30)
    assert parse_bound("2w", now) == now - timedelta(days=14)
    with pytest.raises(ValueError, match="too far back"):
        parse_bound("99999999999d", now)
