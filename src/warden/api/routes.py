"""The JSON routes of the API, each with the permission it needs. Edge (API).

Reads (``read``: viewer and above): incidents, timelines, pending approvals, controls,
quarantine, audit, KPIs, shadow comparison, the live stream. Writes name the permission of
:data:`warden.domain.users.PERMISSIONS` they exercise and go through
:mod:`warden.operations`, as the CLI's do.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from warden import operations
from warden.api import views
from warden.api.auth import PUBLIC, caller, context, needs
from warden.api.errors import ApiError
from warden.api.live import event_stream
from warden.assembly import ingest_gate
from warden.audit.log import AuditLog
from warden.audit.merkle import verify_consistency
from warden.audit.proofs import build_proof
from warden.audit.state import AuditPaths
from warden.domain import events as ev
from warden.domain.catalog import Catalog
from warden.domain.control import AUTONOMY_LEVELS
from warden.domain.errors import AuditVerificationError
from warden.domain.incident import State
from warden.domain.kpis import resilience_report
from warden.domain.promotion import PromotionPolicy
from warden.ingest.quarantine import replay_quarantined
from warden.ingest.registry import SchemaRegistry
from warden.ports import SystemClock
from warden.runtime import load_incidents
from warden.runtime.candidates import candidate_comparisons, lifecycle_of, versions_table
from warden.telemetry.report import kpi_rows, render_html, report_json

if TYPE_CHECKING:
    from warden.api.context import ApiContext
    from warden.ports import QuarantinedInput

router = APIRouter()
IncidentId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[0-9a-zA-Z_.:-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KillSwitchBody(_Body):
    """Why, and optionally only one domain (default: everything)."""

    reason: Annotated[str, Field(max_length=2000)] = ""
    domain: Annotated[str, Field(max_length=200)] = ""


class AutonomyBody(_Body):
    """The level for an environment and domain (``*``: all)."""

    level: Literal["observe", "recommend", "supervised", "autonomous"]
    environment: Annotated[str, Field(min_length=1, max_length=200)] = "*"
    domain: Annotated[str, Field(min_length=1, max_length=200)] = "*"
    reason: Annotated[str, Field(max_length=2000)] = ""


class PrepareBody(_Body):
    """What you are about to sign: your decision and why."""

    decision: Literal["approve", "reject"] = "approve"
    reason: Annotated[str, Field(max_length=2000)] = ""


class PromoteBody(_Body):
    """Where the candidate goes, and which one when several run in shadow."""

    to: Literal["canary", "supervised", "autonomous"]
    version: Annotated[str | None, Field(min_length=1, max_length=200)] = None


class RollbackBody(_Body):
    """Why; kept in the audit log."""

    reason: Annotated[str, Field(max_length=2000)] = ""


class SignedBody(_Body):
    """A decision signed with your Ed25519 key over the payload ``prepare`` returned."""

    step_hash: Annotated[str, Field(min_length=1, max_length=200)]
    signed_at: Annotated[str, Field(min_length=1, max_length=64)]
    nonce: Annotated[str, Field(min_length=1, max_length=200)]
    signature: Annotated[str, Field(min_length=1, max_length=400)]
    reason: Annotated[str, Field(max_length=2000)] = ""


# -- health and identity --------------------------------------------------------------------


@router.get("/healthz", openapi_extra=needs(PUBLIC), tags=["health"])
def healthz() -> dict[str, str]:
    """Liveness: answers while the server serves (no credential needed)."""
    return {"status": "ok"}


@router.get("/api/whoami", openapi_extra=needs("read"), tags=["identity"])
def whoami(request: Request) -> dict[str, str]:
    """Who your credential is, and your role."""
    user = caller(request).user
    return {"name": user.name, "role": user.role}


# -- incidents ------------------------------------------------------------------------------


@router.get("/api/incidents", openapi_extra=needs("read"), tags=["incidents"])
def list_incidents(
    request: Request,
    state: Annotated[list[State] | None, Query(description="Only these states.")] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    active: Annotated[bool | None, Query(description="Only open (or only closed) ones.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Incidents, newest first; filter by state, service, open or closed."""
    found = load_incidents(context(request).store).values()
    chosen = [
        i
        for i in found
        if (not state or i.state in state)
        and (service is None or i.service == service)
        and (active is None or active != i.state.terminal)
    ]
    chosen.sort(key=lambda i: i.opened_at, reverse=True)
    return [views.incident_summary(i) for i in chosen[:limit]]


def _incident(ctx: ApiContext, incident_id: str) -> Any:
    found = views.find_incident(ctx.store, incident_id)
    if found is None:
        raise ApiError(404, f"no incident {incident_id!r}", "list them: GET /api/incidents")
    return found


@router.get("/api/incidents/{incident_id}", openapi_extra=needs("read"), tags=["incidents"])
def get_incident(request: Request, incident_id: IncidentId) -> dict[str, Any]:
    """One incident: plan, rationale, evidence, every step's decision with its reasons."""
    ctx = context(request)
    return views.incident_detail(ctx, _incident(ctx, incident_id))


@router.get(
    "/api/incidents/{incident_id}/timeline", openapi_extra=needs("read"), tags=["incidents"]
)
def get_timeline(request: Request, incident_id: IncidentId) -> list[dict[str, Any]]:
    """Every event of one incident, oldest first, with a line of text each."""
    ctx = context(request)
    return views.timeline(ctx.store, _incident(ctx, incident_id))


# -- approvals ------------------------------------------------------------------------------


@router.get("/api/approvals", openapi_extra=needs("read"), tags=["approvals"])
def list_approvals(request: Request) -> list[dict[str, Any]]:
    """Steps awaiting approval: hash, reasons, quorum so far, when the window closes."""
    return views.pending_approvals(context(request))


@router.post(
    "/api/approvals/{incident_id}/prepare", openapi_extra=needs("approve"), tags=["approvals"]
)
def prepare(request: Request, incident_id: IncidentId, body: PrepareBody) -> dict[str, str]:
    """The exact bytes to sign (``payload``) to approve or reject the step awaited now.

    Sign ``payload`` (UTF-8) with your Ed25519 key, then POST the signature to
    ``approve`` or ``reject`` within five minutes.
    """
    ctx = context(request)
    who = caller(request).user
    current = operations.awaiting_approval(ctx.store, _incident(ctx, incident_id).id)
    stamp = ev.format_time(ctx.now())
    nonce = secrets.token_hex(16)
    return views.signing_payload(who.name, current, body.decision, stamp, nonce, body.reason)


def _decide(request: Request, incident_id: str, body: SignedBody, decision: str) -> Any:
    ctx = context(request)
    who = caller(request).user
    current = _incident(ctx, incident_id)
    data = {
        "step_hash": body.step_hash,
        "approver": who.name,
        "decision": decision,
        "signed_at": body.signed_at,
        "nonce": body.nonce,
        "signature": body.signature,
        "reason": body.reason,
    }
    event = operations.record_signed(ctx.store, who, current.id, data, ctx.approvals, ctx.now())
    after = views.find_incident(ctx.store, current.id)
    return {
        "recorded": event.id,
        "decision": decision,
        "step_hash": body.step_hash,
        "pending": views.incident_detail(ctx, after)["pending"] if after is not None else None,
    }


@router.post(
    "/api/approvals/{incident_id}/approve", openapi_extra=needs("approve"), tags=["approvals"]
)
def approve(request: Request, incident_id: IncidentId, body: SignedBody) -> dict[str, Any]:
    """Approve the awaited step: bound to its hash, signed with your registered key."""
    result: dict[str, Any] = _decide(request, incident_id, body, "approve")
    return result


@router.post(
    "/api/approvals/{incident_id}/reject", openapi_extra=needs("reject"), tags=["approvals"]
)
def reject(request: Request, incident_id: IncidentId, body: SignedBody) -> dict[str, Any]:
    """Reject the awaited step (nothing runs): bound to its hash, signed with your key."""
    result: dict[str, Any] = _decide(request, incident_id, body, "reject")
    return result


# -- controls -------------------------------------------------------------------------------


@router.get("/api/controls", openapi_extra=needs("read"), tags=["controls"])
def get_controls(request: Request) -> dict[str, Any]:
    """The kill switch and the autonomy rules in force."""
    return views.controls(context(request))


def _operate(request: Request, type_: str, data: dict[str, str]) -> dict[str, Any]:
    ctx = context(request)
    who = caller(request).user
    event = operations.control(
        ctx.store, type_, {**data, "by": who.name, "auth": "token"}, ctx.now()
    )
    return {"recorded": event.id, "type": event.type, **views.controls(ctx)}


@router.post("/api/killswitch/engage", openapi_extra=needs("killswitch.engage"), tags=["controls"])
def engage(request: Request, body: KillSwitchBody) -> dict[str, Any]:
    """Stop every action (or one domain's) at once; operators may."""
    return _operate(request, ev.KILL_SWITCH_ENGAGED, body.model_dump())


@router.post(
    "/api/killswitch/release", openapi_extra=needs("killswitch.release"), tags=["controls"]
)
def release(request: Request, body: KillSwitchBody) -> dict[str, Any]:
    """Allow actions again; admins only."""
    return _operate(request, ev.KILL_SWITCH_RELEASED, body.model_dump())


@router.post("/api/autonomy", openapi_extra=needs("autonomy"), tags=["controls"])
def set_autonomy(request: Request, body: AutonomyBody) -> dict[str, Any]:
    """Set the autonomy level of an environment and domain; admins only."""
    assert body.level in AUTONOMY_LEVELS
    return _operate(request, ev.AUTONOMY_CHANGED, body.model_dump())


# -- quarantine -----------------------------------------------------------------------------


def _quarantined(item: QuarantinedInput, *, payload: bool) -> dict[str, Any]:
    shown = {
        "id": item.id,
        "source": item.source,
        "reason": item.reason,
        "received_at": item.received_at,
    }
    return {**shown, "payload": item.payload} if payload else shown


@router.get("/api/quarantine", openapi_extra=needs("read"), tags=["quarantine"])
def list_quarantine(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, Any]]:
    """Quarantined input: id, when, from where and why (newest last)."""
    items = context(request).store.quarantined()
    return [_quarantined(i, payload=False) for i in items[-limit:]]


def _item(ctx: ApiContext, item_id: int) -> QuarantinedInput:
    found = next((i for i in ctx.store.quarantined() if i.id == item_id), None)
    if found is None:
        raise ApiError(404, f"no quarantined item {item_id}", "list them: GET /api/quarantine")
    return found


@router.get("/api/quarantine/{item_id}", openapi_extra=needs("read"), tags=["quarantine"])
def show_quarantined(request: Request, item_id: int) -> dict[str, Any]:
    """One quarantined item: its reason and the input exactly as received."""
    return _quarantined(_item(context(request), item_id), payload=True)


@router.post(
    "/api/quarantine/{item_id}/replay",
    openapi_extra=needs("quarantine.replay"),
    tags=["quarantine"],
)
def replay_item(request: Request, item_id: int) -> dict[str, Any]:
    """Run one item through the gates again; it is released when now accepted."""
    ctx = context(request)
    item = _item(ctx, item_id)
    gate = ingest_gate(ctx.store, SchemaRegistry(), SystemClock(), ctx.config, ctx.state_dir)
    (result,) = replay_quarantined(ctx.store, gate, [item])
    return {
        "id": result.quarantine_id,
        "verdict": result.verdict.value,
        "reason": result.reason,
        "event_ids": list(result.event_ids),
    }


# -- audit ----------------------------------------------------------------------------------


def _audit(ctx: ApiContext) -> tuple[AuditPaths, AuditLog]:
    paths = AuditPaths.for_state(ctx.state_dir)
    if not paths.log.exists():
        raise ApiError(404, f"no audit log in {ctx.state_dir}/", "run `warden run` to start one")
    return paths, AuditLog(paths.log)


@router.get("/api/audit", openapi_extra=needs("read"), tags=["audit"])
def audit_summary(request: Request) -> dict[str, Any]:
    """The log's size and its signed checkpoints (size, root, the note's text)."""
    _, log = _audit(context(request))
    checkpoints = log.checkpoints()
    return {
        "size": log.size,
        "checkpoints": [
            {
                "size": c.checkpoint.size,
                "origin": c.checkpoint.origin,
                "root": c.checkpoint.root.hex(),
                "note": c.note.encode(),
            }
            for c in checkpoints[-50:]
        ],
    }


@router.get(
    "/api/audit/checkpoint",
    openapi_extra=needs("read"),
    tags=["audit"],
    response_class=PlainTextResponse,
)
def latest_checkpoint(request: Request) -> str:
    """The latest signed checkpoint, as a C2SP signed note."""
    _, log = _audit(context(request))
    latest = log.latest_checkpoint()
    if latest is None:
        raise ApiError(404, "no checkpoint signed yet", "the runtime signs one after each batch")
    return latest.encode()


@router.get(
    "/api/audit/key", openapi_extra=needs("read"), tags=["audit"], response_class=PlainTextResponse
)
def verifier_key(request: Request) -> str:
    """The log's public verifier keys (current first, then retired), one a line."""
    paths, _ = _audit(context(request))
    text = ""
    for path in (paths.verifier_key, paths.retired_keys):
        if path.exists():
            text += path.read_text("utf-8")
    if not text:
        raise ApiError(404, "no verifier key published", "run `warden audit key`")
    return text


@router.get(
    "/api/audit/proof/{entry}",
    openapi_extra=needs("read"),
    tags=["audit"],
    response_class=PlainTextResponse,
)
def inclusion_proof(request: Request, entry: Annotated[int, Field(ge=0)]) -> PlainTextResponse:
    """A C2SP tlog-proof that ENTRY is in the log under the latest signed checkpoint.

    Check it offline: ``warden audit check-bundle ENTRY.tlog-proof --key KEY``.
    """
    _, log = _audit(context(request))
    latest = log.latest_checkpoint()
    if entry >= log.size:
        raise ApiError(404, f"the log has {log.size} entries, no entry {entry}")
    if latest is None or latest.checkpoint.size <= entry:
        raise ApiError(409, f"no signed checkpoint covers entry {entry} yet", "try again shortly")
    try:
        proof = build_proof(log, entry, latest)
    except AuditVerificationError as exc:
        raise ApiError(409, str(exc), "run `warden audit verify`") from None
    name = f"{entry}.tlog-proof"
    return PlainTextResponse(
        proof.encode(), headers={"content-disposition": f'attachment; filename="{name}"'}
    )


@router.get("/api/audit/consistency", openapi_extra=needs("read"), tags=["audit"])
def consistency(
    request: Request,
    old: Annotated[int, Query(ge=0, description="The older tree size.")],
    new: Annotated[int | None, Query(ge=0, description="The newer one (default: now).")] = None,
) -> dict[str, Any]:
    """An RFC 9162 consistency proof between two tree sizes, checked before it is sent."""
    _, log = _audit(context(request))
    size = log.size if new is None else new
    if not 0 < old <= size <= log.size:
        raise ApiError(400, f"need 0 < old <= new <= {log.size}, got old={old}, new={size}")
    proof = log.consistency_proof(old, size)
    verify_consistency(old, size, log.root(old), log.root(size), proof)
    return {
        "old": {"size": old, "root": log.root(old).hex()},
        "new": {"size": size, "root": log.root(size).hex()},
        "proof": [h.hex() for h in proof],
    }


# -- KPIs, report, shadow -------------------------------------------------------------------


Since = Annotated[datetime | None, Query(description="Incidents opened at or after (RFC 3339).")]
Until = Annotated[datetime | None, Query(description="Incidents opened before (RFC 3339).")]


def _report(ctx: ApiContext, since: datetime | None, until: datetime | None) -> Any:
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise ApiError(400, "give times with a timezone offset, e.g. 2025-01-01T00:00:00Z")
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "until must be after since")
    return resilience_report(views.history(ctx.store), since, until, ctx.kpis)


@router.get("/api/kpis", openapi_extra=needs("read"), tags=["kpis"])
def kpis(request: Request, since: Since = None, until: Until = None) -> dict[str, Any]:
    """Every resilience KPI computed from the history, overall and per version.

    The same JSON as `warden report --json` (null: n/a, nothing to divide by), and the
    rows people read under ``kpis``. Definitions: docs/kpis.md.
    """
    report = _report(context(request), since, until)
    return {**report_json(report), "kpis": views.kpi_summary(kpi_rows(report))}


@router.get("/api/report", openapi_extra=needs("read"), tags=["kpis"], response_class=HTMLResponse)
def report_page(request: Request, since: Since = None, until: Until = None) -> str:
    """The self-contained HTML resilience report (as `warden report --html`)."""
    ctx = context(request)
    return render_html(_report(ctx, since, until), generated_at=ctx.now(), source="API")


@router.get("/api/shadow", openapi_extra=needs("read"), tags=["shadow"])
def shadow(request: Request) -> dict[str, Any]:
    """How the shadow bundle's decisions compare with the live ones, step by step."""
    store = context(request).store
    shadowed = store.read_stream(ev.SHADOW_STREAM)
    compared = [e.data for e in shadowed if e.type == ev.SHADOW_DECIDED]
    differ = [c for c in compared if not c.get("agree")]
    return {
        "compared": len(compared),
        "agree": len(compared) - len(differ),
        "differences": differ,
        "candidates": candidate_comparisons(store),
    }


@router.get("/api/versions", openapi_extra=needs("read"), tags=["shadow"])
def versions(request: Request) -> dict[str, Any]:
    """Every version of what decides, and its stage (as `warden versions --json`).

    Agents, runbooks, policy bundles and model settings: live, canary, shadow, retired
    (kept loaded for a rollback) or rolled back.
    """
    return {"versions": versions_table(lifecycle_of(context(request).store))}


VersionKind = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z]+$")]
VersionName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[0-9a-zA-Z_.:@-]+$")]


@router.post("/api/versions/{kind}/{name}/promote", openapi_extra=needs("promote"), tags=["shadow"])
def promote(
    request: Request, kind: VersionKind, name: VersionName, body: PromoteBody
) -> dict[str, Any]:
    """Promote a candidate on evidence (admins), as `warden promote` does.

    Refused with 409 and every unmet threshold in ``reasons`` when the evidence falls
    short; the ``warden.version.promoted`` event carries who, the thresholds and the
    evidence.
    """
    event = promote_version(request, kind, name, body.to, body.version)
    return {"recorded": event.id, "type": event.type, **event.data}


def promote_version(
    request: Request, kind: str, name: str, to: str, version: str | None
) -> ev.Event:
    """Promote as the caller, with the configured promotion policy (API and console)."""
    ctx = context(request)
    policy = ctx.config.promotion if ctx.config is not None else PromotionPolicy()
    return operations.promote_as(
        ctx.store,
        caller(request).user,
        "token",
        kind,
        name,
        to,
        ctx.now(),
        policy,
        Catalog(),
        version=version,
    )


def roll_back_version(request: Request, kind: str, name: str, reason: str) -> ev.Event:
    """Roll back as the caller (API and console)."""
    ctx = context(request)
    return operations.roll_back_as(
        ctx.store, caller(request).user, "token", kind, name, ctx.now(), reason=reason
    )


@router.post(
    "/api/versions/{kind}/{name}/rollback", openapi_extra=needs("rollback"), tags=["shadow"]
)
def rollback(
    request: Request, kind: VersionKind, name: VersionName, body: RollbackBody
) -> dict[str, Any]:
    """Restore the previous version at once (operators and admins), as `warden rollback`."""
    event = roll_back_version(request, kind, name, body.reason)
    return {"recorded": event.id, "type": event.type, **event.data}


# -- live -----------------------------------------------------------------------------------


@router.get(
    "/api/stream",
    openapi_extra=needs("read"),
    tags=["live"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def stream(
    request: Request,
    after: Annotated[int | None, Query(ge=0, description="Start after this position.")] = None,
) -> StreamingResponse:
    """Server-sent events: one ``event`` per new event in the log, as it is stored.

    Resumes after ``Last-Event-ID`` (or ``after``); without either it starts at the head.
    """
    ctx = context(request)
    resume = request.headers.get("last-event-id", "")
    start = int(resume) if resume.isdigit() else after
    if start is None:
        start = ctx.store.head()
    return StreamingResponse(
        event_stream(ctx, request, start),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


__all__ = ["router"]
