"""Renders the event log as a live, human-readable timeline. Edge (demo and CLI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from warden.domain import events as ev
from warden.domain.decisions import outcome_label

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console

    from warden.domain.incident import Incident

_STYLE = {
    "FAULT": "bold red",
    "SIGNAL": "red",
    "DETECT": "bold yellow",
    "PLAN": "cyan",
    "DECIDE": "bold magenta",
    "ACT": "bold blue",
    "VERIFY": "green",
    "RESOLVED": "bold green",
    "ESCALATE": "bold red",
    "ROLLBACK": "bold red",
    "CONTROL": "bold white",
    "HEALTHY": "green",
}


def describe(event: ev.Event) -> tuple[str, str] | None:
    """The label and one-line text for an event, or None when it is not worth a line."""
    data = event.data
    kind = event.type
    if kind == ev.PROBE_FAILED:
        return "SIGNAL", f"{data['service']} probe failed: {data.get('error', '')}"
    if kind == ev.PROBE_SUCCEEDED and data.get("purpose") == "watch":
        return "HEALTHY", f"{data['service']} answers its health probe"
    if kind == ev.INCIDENT_OPENED:
        return "DETECT", f"incident {data['incident_id'][:8]} opened: {data['summary']}"
    if kind == ev.PLAN_PROPOSED:
        plan = data["plan"]
        steps = ", ".join(f"{s['action']} {s['target']}" for s in plan["steps"])
        return (
            "PLAN",
            f"{plan['agent']} proposes [{steps}] with confidence {plan['confidence']:.2f}\n"
            f"         why: {plan['rationale']}\n"
            f"         evidence: {len(plan['evidence'])} events"
            f" ({', '.join(e[:8] for e in plan['evidence'][:5])})",
        )
    if kind == ev.DECISION_RECORDED:
        decision = data["decision"]
        reasons = "\n".join(
            f"         - {r['policy_id']}: {r['message']}" for r in decision["reasons"]
        )
        head = outcome_label(decision["outcome"], decision["approvers"])
        return "DECIDE", f"{head} (policy {decision['bundle_version']})\n{reasons}"
    if kind in (ev.APPROVAL_GRANTED, ev.APPROVAL_REJECTED):
        verb = "approved" if kind == ev.APPROVAL_GRANTED else "rejected"
        signed = f" (signed, key {data['key']})" if data.get("key") else " (unsigned)"
        return "DECIDE", f"{verb} by {data['approver']}{signed}"
    if kind == ev.USER_ADDED:
        return "CONTROL", f"user {data['name']} added as {data['role']} by {data.get('by', '?')}"
    if kind == ev.USER_REVOKED:
        return "CONTROL", f"user {data['name']} revoked by {data.get('by', '?')}"
    if kind == ev.STEP_INTENDED:
        return (
            "ACT",
            f"intent: {data['action']} {data['target']} (key {data['idempotency_key'][:12]})",
        )
    if kind in (ev.STEP_SUCCEEDED, ev.STEP_FAILED):
        verdict = "done" if kind == ev.STEP_SUCCEEDED else "FAILED"
        return "ACT", f"{verdict} in {data['duration_ms']:.0f} ms: {data['detail']}"
    if kind == ev.COMPENSATION_STARTED:
        return "UNDO", f"undoing completed steps: {data.get('reason', '')}"
    if kind == ev.COMPENSATION_HELD:
        return "UNDO", f"compensation of step {data['index']} held: {data.get('reason', '')}"
    if kind == ev.COMPENSATION_INTENDED:
        return "UNDO", f"intent: {data['action']} {data['target']} (undoes step {data['index']})"
    if kind in (ev.COMPENSATION_SUCCEEDED, ev.COMPENSATION_FAILED):
        verdict = "undone" if kind == ev.COMPENSATION_SUCCEEDED else "undo FAILED"
        return "UNDO", f"{verdict}: {data.get('detail', '')}"
    if kind == ev.VERIFICATION_STARTED:
        return "VERIFY", "waiting for the health probe to pass"
    if kind == ev.VERIFICATION_PASSED:
        return "VERIFY", "health probe passes again"
    if kind == ev.VERIFICATION_FAILED:
        return "VERIFY", f"failed: {data.get('reason', '')}"
    if kind == ev.INCIDENT_RESOLVED:
        mttr = data.get("mttr_s")
        tail = f" — MTTR {mttr:.2f} s" if isinstance(mttr, int | float) else ""
        return "RESOLVED", f"{data.get('reason', '')}{tail}"
    if kind == ev.INCIDENT_ESCALATED:
        return "ESCALATE", str(data.get("reason", ""))
    if kind == ev.INCIDENT_ROLLED_BACK:
        return "ROLLBACK", str(data.get("reason", ""))
    if kind in (ev.KILL_SWITCH_ENGAGED, ev.KILL_SWITCH_RELEASED):
        state = "engaged" if kind == ev.KILL_SWITCH_ENGAGED else "released"
        scope = f" for domain {data['domain']}" if data.get("domain") else ""
        return "CONTROL", f"kill switch {state}{scope} by {data.get('by', '?')}"
    if kind == ev.AUTONOMY_CHANGED:
        where = f"{data.get('environment', '*')}/{data.get('domain', '*')}"
        return "CONTROL", f"autonomy of {where} set to {data['level']} by {data.get('by', '?')}"
    if kind == ev.POLICY_LOADED:
        return "CONTROL", f"policy bundle {data['version']} in force"
    if kind == ev.POLICY_REJECTED:
        return "CONTROL", f"policy bundle refused, {data['serving']} keeps serving: {data['error']}"
    if kind == ev.VERSION_PROMOTED:
        what = f"{data['kind']} {data['name']} {data['version']}"
        return "CONTROL", f"{what} promoted to {data['to']} by {data.get('by', '?')}"
    if kind == ev.VERSION_ROLLED_BACK:
        what = f"{data['kind']} {data['name']} {data['version']}"
        how = "automatically" if data.get("automatic") else f"by {data.get('by', '?')}"
        restored = data.get("restored") or "none"
        return "ROLLBACK", f"{what} rolled back {how} ({restored} restored): {data['reason']}"
    if kind == ev.APPROVAL_REQUESTED:
        roles = data.get("approver_roles") or []
        who = f" from {'/'.join(roles)}" if roles else ""
        return (
            "DECIDE",
            f"approval requested: {data['approvers']} approver(s){who} for proposal"
            f" {data['step_hash'][:12]}, expires {data['expires_at']}",
        )
    if kind == ev.APPROVAL_EXPIRED:
        return "ESCALATE", f"approval expired; fallback {data.get('fallback')}"
    return None


class Timeline:
    """Prints one line per notable event, with the time since ``start``."""

    def __init__(self, console: Console, start: datetime) -> None:
        self.console = console
        self.start = start

    def line(self, label: str, text: str, at: datetime) -> None:
        """Print one timeline line."""
        offset = (at - self.start).total_seconds()
        out = Text(f"{offset:7.2f}s ")
        out.append(f"{label:<9}", style=_STYLE.get(label, ""))
        out.append(text)
        self.console.print(out, highlight=False, soft_wrap=True)

    def __call__(self, event: ev.Event) -> None:
        """Render one event if it is notable."""
        shown = describe(event)
        if shown is not None:
            self.line(shown[0], shown[1], event.moment)


def incident_table(incidents: list[Incident], title: str) -> Table:
    """One row per incident: what failed, where it ended, who decided, how fast."""
    table = Table(title=title)
    for column in ("incident", "service", "opened (UTC)", "state", "decision", "MTTR"):
        table.add_column(column, overflow="fold")
    for item in incidents:
        last = item.decisions[-1] if item.decisions else None
        decision = "-"
        if last is not None:
            decision = f"{last.outcome.value}: " + ", ".join(r.policy_id for r in last.reasons)
        mttr = item.recovery_s
        table.add_row(
            item.id[:12],
            item.service,
            item.opened_at[:19].replace("T", " "),
            item.state.value
            if not item.close_reason or item.state.value == "resolved"
            else f"{item.state.value}: {item.close_reason}",
            decision,
            f"{mttr:.2f} s" if mttr is not None else "-",
        )
    return table
