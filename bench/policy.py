"""Policy decision benchmark: decisions/s and latency, context building included.

Builds a 20-policy bundle (Warden's default bundle plus per-domain rules), then times
``DecisionGate.decide`` — guardrails, context (blast radius, sliding-window counts,
freezes, autonomy) and the Cedar evaluation — on varied incidents. Prints a table with
the targets beside the figures.

    .venv/bin/python bench/policy.py [--decisions 20000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from report import emit_table  # bench/report.py, beside this script
from rich.console import Console
from rich.table import Table

from warden.domain.catalog import Catalog
from warden.domain.control import AutonomyRule, Controls
from warden.domain.incident import Incident, State
from warden.domain.plans import Plan, Step, step_hash
from warden.domain.topology import ServiceNode, Topology
from warden.governance.context import ActionRecord, Situation
from warden.governance.entities import cedar_entities
from warden.governance.gate import DecisionGate, Guardrails
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle

DOMAINS = ("payments", "shop", "edge", "search", "data", "identity")
TARGET_RATE = 20_000
TARGET_P99_US = 200.0


def bundle_of_twenty(directory: Path) -> PolicyBundle:
    shutil.copytree(BUILTIN_BUNDLE, directory, ignore=shutil.ignore_patterns("tests"))
    base = PolicyBundle(directory)
    extra = 20 - len(base.policies)
    rules = []
    for i in range(extra):
        domain = DOMAINS[i % len(DOMAINS)]
        if i % 2:
            rules.append(
                f'@id("{domain}-{i}-storm")\n@message("{domain}: too many actions")\n'
                f'forbid (principal, action, resource in Domain::"{domain}")\n'
                f"when {{ context.recent_actions_of_action >= {10 + i} }};\n"
            )
        else:
            rules.append(
                f'@id("{domain}-{i}-tier1")\n@outcome("needs_approval")\n@approvers("1")\n'
                f'@message("{domain}: tier-1 services need a human")\n'
                f'permit (principal in AgentGroup::"builtin", action, resource)\n'
                f'when {{ resource.tier == "tier1" && context.domain == "{domain}" }};\n'
            )
    (directory / "extra.cedar").write_text("\n".join(rules))
    bundle = PolicyBundle(directory, "bench")
    assert len(bundle.policies) == 20, len(bundle.policies)
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="make every request distinct, so the verdict cache never helps (worst case)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    services = [
        ServiceNode(f"svc{i}", DOMAINS[i % len(DOMAINS)], "tier1" if i % 5 == 0 else "standard")
        for i in range(60)
    ]
    topology = Topology.of(services)
    history = tuple(
        ActionRecord(
            now - timedelta(seconds=rng.uniform(0, 3600)),
            rng.choice(["restart_service", "start_service"]),
            rng.choice(services).name,
        )
        for _ in range(40)
    )
    controls = Controls(autonomy=(AutonomyRule("*", "payments", "supervised"),))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = bundle_of_twenty(Path(tmp) / "bundle")
    rails = Guardrails(confidence_floor=0.55)
    entities = cedar_entities(topology, {"service-down": ("builtin",)})
    gate = DecisionGate(bundle, Catalog(), rails, entities)
    incidents = []
    for i in range(500):
        target = rng.choice(services).name
        action = rng.choice(["restart_service", "restart_service", "stop_service"])
        plan = Plan("service-down", (Step(action, target),), "r", ("e",), rng.uniform(0.5, 0.99))
        incidents.append(
            Incident(
                id=f"i{i}",
                service=target,
                state=State.PLANNED,
                opened_at="",
                first_signal_at="",
                summary="",
                plan=plan,
                step_hashes=(step_hash(f"i{i}", 0, plan.steps[0]),),
            )
        )
    situation = Situation(now, "production", "autonomous", controls, topology, history)

    for incident in incidents[:200]:  # warm up
        gate.decide(incident, 0, situation)
    latencies = []
    outcomes: dict[str, int] = {}
    deciders: dict[str, int] = {}
    started = time.perf_counter()
    for n in range(args.decisions):
        incident = incidents[n % len(incidents)]
        if args.distinct:
            gate.forget_verdicts()
        t0 = time.perf_counter()
        ruling = gate.decide(incident, 0, situation)
        latencies.append(time.perf_counter() - t0)
        outcome = ruling.decision.outcome.value
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        first = ruling.decision.reasons[0].policy_id
        deciders[first] = deciders.get(first, 0) + 1
    elapsed = time.perf_counter() - started
    latencies.sort()
    rate = args.decisions / elapsed
    p50 = latencies[len(latencies) // 2] * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6

    mode = "every request distinct" if args.distinct else f"{len(incidents)} recurring incidents"
    table = Table(
        title=f"policy decisions ({len(bundle.policies)} policies, context included, {mode})"
    )
    for column in ("measure", "value", "target", "met"):
        table.add_column(column)
    table.add_row("decisions/s", f"{rate:,.0f}", f">= {TARGET_RATE:,}", str(rate >= TARGET_RATE))
    table.add_row("p50 latency", f"{p50:.0f} µs", "", "")
    table.add_row(
        "p99 latency", f"{p99:.0f} µs", f"< {TARGET_P99_US:.0f} µs", str(p99 < TARGET_P99_US)
    )
    table.add_row("mean latency", f"{statistics.fmean(latencies) * 1e6:.0f} µs", "", "")
    table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())), "", "")
    top = sorted(deciders.items(), key=lambda kv: -kv[1])[:4]
    table.add_row("decided by", ", ".join(f"{k} {v}" for k, v in top), "", "")
    Console().print(table)
    emit_table("policy", table)


if __name__ == "__main__":
    main()
