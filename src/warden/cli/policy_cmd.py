"""``warden policy``: check a bundle, run its test cases, explain one decision. Edge (CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from warden.cli.options import fail
from warden.domain.catalog import Catalog
from warden.domain.decisions import outcome_label
from warden.domain.errors import ConfigError, did_you_mean
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle, PolicyRequest
from warden.governance.policy_tests import (
    DEFAULT_CONTEXT,
    find_test_files,
    load_cases,
    run_case,
)

policy_app = typer.Typer(
    help=(
        "Policy as code: Cedar bundles (policies + schema) with test cases beside them.\n\n"
        'Outcomes come from annotations: @outcome("allow" | "needs_approval"),'
        ' @approvers("n"), @approver_roles("sre,lead"), @message("...");'
        " a matching forbid denies, nothing permitted denies."
    ),
    no_args_is_help=True,
)
console = Console()

BundleDir = Annotated[
    Path,
    typer.Argument(help="The bundle directory (*.cedar and one *.cedarschema)."),
]


def _load(directory: Path) -> PolicyBundle:
    try:
        return PolicyBundle(directory)
    except ConfigError as exc:
        raise fail(str(exc), label="bundle refused") from exc


@policy_app.command()
def check(directory: BundleDir = BUILTIN_BUNDLE) -> None:
    """Parse and validate a bundle against its schema; print its version."""
    bundle = _load(directory)
    console.print(
        f"[green]valid[/]: {len(bundle.policies)} policies, version {bundle.version}",
        highlight=False,
    )


@policy_app.command("test")
def run_tests(directory: BundleDir = BUILTIN_BUNDLE) -> None:
    """Run the *.tests.yaml cases beside the policies; exit 1 if any fails."""
    bundle = _load(directory)
    files = find_test_files(directory)
    if not files:
        console.print(f"[yellow]no *.tests.yaml files in {directory} or {directory}/tests")
        raise typer.Exit(1)
    table = Table(title=f"policy tests for {bundle.version}")
    for column in ("", "file", "case", "decision", "policies"):
        table.add_column(column)
    failed = 0
    total = 0
    for path in files:
        try:
            cases = load_cases(path)
        except ConfigError as exc:
            raise fail(str(exc)) from exc
        for case in cases:
            total += 1
            result = run_case(bundle, case)
            failed += not result.passed
            verdict = result.verdict
            decided = outcome_label(verdict.outcome.value, verdict.approvers)
            mark = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
            detail = decided if result.passed else f"{decided}\n[red]{result.why}[/]"
            policies = ", ".join(r.policy_id for r in verdict.reasons)
            table.add_row(mark, case.file, case.name, detail, policies)
    console.print(table)
    summary = f"{total - failed} passed, {failed} failed"
    console.print(f"[{'red' if failed else 'green'}]{summary}")
    if failed:
        raise typer.Exit(1)


def _parse_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text.lstrip("-").isdigit():
        return int(text)
    if text.startswith("[") and text.endswith("]"):
        return [t.strip() for t in text[1:-1].split(",") if t.strip()]
    return text


@policy_app.command()
def explain(
    action: Annotated[str, typer.Option(help="The catalog action, e.g. restart_service.")],
    resource: Annotated[str, typer.Option(help="The target service.")],
    principal: Annotated[str, typer.Option(help="The proposing agent.")] = "service-down",
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Context values as key=value (repeat), e.g. --set autonomy=supervised"
            " --set confidence_pct=65; lists as [a,b].",
        ),
    ] = None,
    directory: Annotated[Path, typer.Option("--bundle", help="The bundle directory.")] = (
        BUILTIN_BUNDLE
    ),
    source: Annotated[bool, typer.Option(help="Print the source of matched policies.")] = False,
) -> None:
    """Show, for one request, which policies matched, which did not, and the decision.

    The action's risk and idempotence come from the catalog unless --set gives them.
    """
    bundle = _load(directory)
    catalog = Catalog()
    spec = catalog.get(action)
    if spec is None:
        hint = did_you_mean(action, catalog.names())
        known = ", ".join(catalog.names())
        console.print(f"[red]--action {action!r}: not in the catalog{hint}; known: {known}")
        raise typer.Exit(2)
    context = {**DEFAULT_CONTEXT, "risk": spec.risk.value, "idempotent": spec.idempotent}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or key not in DEFAULT_CONTEXT:
            known = ", ".join(DEFAULT_CONTEXT)
            console.print(f"[red]--set {item!r}: use key=value with a key among: {known}")
            raise typer.Exit(2)
        context[key] = _parse_value(value)
    explanation = bundle.explain(PolicyRequest(principal, action, resource, context))
    table = Table(title=f"{principal} -> {action} on {resource} ({bundle.version})")
    for column in ("matched", "policy", "effect", "outcome", "message"):
        table.add_column(column)
    for info in explanation.matched:
        outcome = outcome_label(info.outcome, info.approvers)
        table.add_row("[green]yes[/]", info.id, info.effect, outcome, info.message)
    for info in explanation.not_matched:
        table.add_row("[dim]no[/]", info.id, info.effect, info.outcome, f"[dim]{info.message}")
    console.print(table)
    for error in explanation.errors:
        console.print(f"[red]error:[/] {error}", highlight=False)
    verdict = explanation.verdict
    decided = outcome_label(verdict.outcome.value, verdict.approvers)
    why = "; ".join(f"{r.policy_id}: {r.message}" for r in verdict.reasons)
    console.print(f"decision: [bold]{decided}[/] — {why}", highlight=False)
    if source:
        for info in explanation.matched:
            console.print(f"\n[bold]{info.id}[/]\n{info.source}", highlight=False)
