"""Operator controls that hold whatever policy says, folded from the control stream. Pure core.

The kill switch (global or per domain), staged autonomy levels per environment and domain,
and the policy bundle version in force. Every change is an event, so every change is
audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from warden.domain import events as ev

AUTONOMY_LEVELS = ("observe", "recommend", "supervised", "autonomous")


@dataclass(frozen=True, slots=True)
class AutonomyRule:
    """The autonomy level for an environment and domain ("*" matches any)."""

    environment: str
    domain: str
    level: str

    def __post_init__(self) -> None:
        if self.level not in AUTONOMY_LEVELS:
            raise ValueError(f"autonomy level {self.level!r} is not one of {AUTONOMY_LEVELS}")

    @property
    def specificity(self) -> int:
        """Higher wins: an exact domain beats an exact environment beats a wildcard."""
        return (2 if self.domain != "*" else 0) + (1 if self.environment != "*" else 0)


@dataclass(frozen=True, slots=True)
class Controls:
    """The kill switches, autonomy levels and the policy version in force."""

    kill_switch: bool = False
    set_by: str = ""
    reason: str = ""
    since: str = ""
    killed_domains: tuple[tuple[str, str], ...] = ()  # (domain, reason)
    autonomy: tuple[AutonomyRule, ...] = field(default=())
    policy_version: str = ""
    changed_at: str = ""  # when a kill switch or an autonomy level last changed

    def halted(self, domain: str) -> str | None:
        """Why actions in ``domain`` are stopped, or None when they may run."""
        if self.kill_switch:
            who = f" by {self.set_by}" if self.set_by else ""
            return f"kill switch engaged{who}: {self.reason}"
        for killed, reason in self.killed_domains:
            if killed == domain:
                return f"kill switch engaged for domain {domain}: {reason}"
        return None

    def autonomy_for(self, environment: str, domain: str, default: str) -> str:
        """The most specific autonomy level that applies; later rules win ties."""
        best: AutonomyRule | None = None
        for rule in self.autonomy:
            if rule.environment not in ("*", environment) or rule.domain not in ("*", domain):
                continue
            if best is None or rule.specificity >= best.specificity:
                best = rule
        return best.level if best else default


def observe(controls: Controls, event: ev.Event) -> Controls:
    """Fold one control event."""
    data = event.data
    domain = str(data.get("domain", "") or "")
    if event.type in (ev.KILL_SWITCH_ENGAGED, ev.KILL_SWITCH_RELEASED, ev.AUTONOMY_CHANGED):
        controls = replace(controls, changed_at=event.time)
    if event.type == ev.KILL_SWITCH_ENGAGED:
        if domain:
            kept = tuple(d for d in controls.killed_domains if d[0] != domain)
            return replace(controls, killed_domains=(*kept, (domain, str(data.get("reason", "")))))
        return replace(
            controls,
            kill_switch=True,
            set_by=str(data.get("by", "")),
            reason=str(data.get("reason", "")),
            since=event.time,
        )
    if event.type == ev.KILL_SWITCH_RELEASED:
        if domain:
            kept = tuple(d for d in controls.killed_domains if d[0] != domain)
            return replace(controls, killed_domains=kept)
        return replace(controls, kill_switch=False, set_by=str(data.get("by", "")), reason="")
    if event.type == ev.AUTONOMY_CHANGED:
        rule = AutonomyRule(str(data.get("environment", "*")), domain or "*", str(data["level"]))
        kept_rules = tuple(
            r
            for r in controls.autonomy
            if (r.environment, r.domain) != (rule.environment, rule.domain)
        )
        return replace(controls, autonomy=(*kept_rules, rule))
    if event.type == ev.POLICY_LOADED:
        return replace(controls, policy_version=str(data.get("version", "")))
    return controls
