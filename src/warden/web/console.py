"""The console's pages: incidents, approvals, controls, versions, quarantine, audit, KPIs.

Each page is a template over the same views the JSON API returns; the parts that change
are htmx partials reloaded when the live stream reports an event. Forms post with the
session's CSRF token; approvals are signed in the browser with the approver's own key
and sent to the API. Edge (web).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from warden import operations
from warden.api import views
from warden.api.auth import PUBLIC, caller, context, needs
from warden.api.errors import ApiError
from warden.api.routes import promote_version, replay_item, roll_back_version
from warden.api.sessions import COOKIE, CSRF_FIELD, TTL
from warden.audit.log import AuditLog
from warden.audit.state import AuditPaths
from warden.domain import events as ev
from warden.domain import users as users_fold
from warden.domain.control import AUTONOMY_LEVELS
from warden.domain.errors import PolicyDenied, WardenError
from warden.domain.kpis import by_version, resilience_report
from warden.governance import identity
from warden.runtime import load_incidents
from warden.runtime.approval_links import ApprovalLinks
from warden.runtime.candidates import lifecycle_of, versions_table
from warden.telemetry.report import (
    cost_chart,
    coverage_chart,
    incidents_over_time,
    kpi_rows,
    mttr_histogram,
    outcomes_chart,
    versions_chart,
)

if TYPE_CHECKING:
    from warden.api.auth import Caller

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
Html = HTMLResponse


def _page(request: Request, name: str, **values: Any) -> Response:
    who: Caller | None = getattr(request.state, "caller", None)
    user = who.user if who is not None else None
    session = who.session if who is not None else None
    values.update(
        user=user,
        csrf=session.csrf if session is not None else "",
        may=lambda action: user is not None and users_fold.may(user.role, action),
        path=request.url.path,
    )
    return templates.TemplateResponse(request, name, values)


def _back(request: Request, where: str, message: str = "", error: str = "") -> Response:
    # A message may hold '&' or '#': encoded, it reaches the page whole.
    pairs = {"error": error} if error else ({"done": message} if message else {})
    query = f"?{urlencode(pairs, safe=',:')}" if pairs else ""
    return RedirectResponse(where + query, status_code=303)


# -- login ----------------------------------------------------------------------------------


@router.get("/", openapi_extra=needs(PUBLIC))
def home() -> Response:
    """The console's start page."""
    return RedirectResponse("/console", status_code=303)


def _local(target: str) -> str:
    """``target`` when it is a path on this site, else the console (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/console"
    return target


@router.get("/login", openapi_extra=needs(PUBLIC), response_class=Html)
def login_page(request: Request, next: str = "/console", error: str = "") -> Response:
    """Log in with your personal token."""
    return _page(request, "login.html", next=_local(next), error=error)


@router.post("/login", openapi_extra=needs(PUBLIC))
async def login(request: Request) -> Response:
    """Check the token, open a session, set its cookie; back to the form on failure."""
    form = await request.form()
    token = str(form.get("token", "")).strip()
    target = _local(str(form.get("next", "/console")))
    ctx = context(request)
    try:
        user = identity.token_user(operations.users(ctx.store), token)
    except identity.AuthenticationError:
        return _page(
            request,
            "login.html",
            next=target,
            error="unknown or revoked token: use the one `warden user add` printed for you",
        )
    session = ctx.sessions.open(user.name, user.token_hash, ctx.now())
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(TTL.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", openapi_extra=needs("read"))
def logout(request: Request) -> Response:
    """End this session."""
    session = caller(request).session
    if session is not None:
        context(request).sessions.close(session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- incidents ------------------------------------------------------------------------------


def _incidents(request: Request) -> dict[str, Any]:
    ctx = context(request)
    found = load_incidents(ctx.store).values()
    ordered = sorted(found, key=lambda i: i.opened_at, reverse=True)[:200]
    return {
        "incidents": [views.incident_summary(i) for i in ordered],
        "pending": len(views.pending_approvals(ctx)),
        "controls": views.controls(ctx),
    }


@router.get("/console", openapi_extra=needs("read"), response_class=Html)
def incidents_page(request: Request) -> Response:
    """Incidents, newest first, updated live."""
    return _page(request, "incidents.html", **_incidents(request))


@router.get("/console/partials/incidents", openapi_extra=needs("read"), response_class=Html)
def incidents_partial(request: Request) -> Response:
    """The incident table and its banners alone (reloaded by htmx)."""
    return _page(request, "_incidents.html", **_incidents(request))


def _detail(request: Request, incident_id: str) -> dict[str, Any]:
    ctx = context(request)
    found = views.find_incident(ctx.store, incident_id)
    if found is None:
        raise ApiError(404, f"no incident {incident_id!r}")
    return {
        "incident": views.incident_detail(ctx, found),
        "timeline": views.timeline(ctx.store, found),
    }


@router.get("/console/incidents/{incident_id}", openapi_extra=needs("read"), response_class=Html)
def incident_page(request: Request, incident_id: str) -> Response:
    """One incident: plan, rationale, evidence, decisions with reasons, its timeline."""
    return _page(request, "incident.html", **_detail(request, incident_id))


@router.get(
    "/console/partials/incidents/{incident_id}", openapi_extra=needs("read"), response_class=Html
)
def incident_partial(request: Request, incident_id: str) -> Response:
    """One incident's body alone (reloaded by htmx)."""
    return _page(request, "_incident.html", **_detail(request, incident_id))


# -- the approval inbox ---------------------------------------------------------------------


@router.get("/console/link/{token}", openapi_extra=needs("read"), response_class=Html)
def approval_link(request: Request, token: str) -> Response:
    """A one-time link from a notification: its approver, once, to the step in the inbox."""
    ctx = context(request)
    try:
        link = ApprovalLinks(ctx.state_dir).redeem(token, caller(request).user.name, ctx.now())
    except WardenError as exc:
        return _back(request, "/console/inbox", error=str(exc))
    return RedirectResponse(f"/console/inbox?step={link.step_hash}", status_code=303)


@router.get("/console/inbox", openapi_extra=needs("read"), response_class=Html)
def inbox_page(request: Request) -> Response:
    """Steps awaiting approval: approve or reject each, signed with your key."""
    return _page(request, "inbox.html", pending=views.pending_approvals(context(request)))


@router.get("/console/partials/inbox", openapi_extra=needs("read"), response_class=Html)
def inbox_partial(request: Request) -> Response:
    """The inbox's list alone (reloaded by htmx)."""
    return _page(request, "_inbox.html", pending=views.pending_approvals(context(request)))


# -- controls -------------------------------------------------------------------------------


@router.get("/console/controls", openapi_extra=needs("read"), response_class=Html)
def controls_page(request: Request, done: str = "", error: str = "") -> Response:
    """The kill switch and autonomy levels; admins may change them."""
    return _page(
        request,
        "controls.html",
        controls=views.controls(context(request)),
        levels=AUTONOMY_LEVELS,
        done=done,
        error=error,
    )


async def _control(request: Request, type_: str, fields: tuple[str, ...]) -> Response:
    form = await request.form()
    data = {f: str(form.get(f, "")).strip() for f in fields}
    ctx = context(request)
    who = caller(request).user
    if type_ == ev.AUTONOMY_CHANGED:
        data = {k: v or "*" if k in ("environment", "domain") else v for k, v in data.items()}
        if data.get("level") not in AUTONOMY_LEVELS:
            return _back(request, "/console/controls", error="choose an autonomy level")
    try:
        event = operations.control(
            ctx.store, type_, {**data, "by": who.name, "auth": "token"}, ctx.now()
        )
    except WardenError as exc:
        return _back(request, "/console/controls", error=str(exc))
    return _back(request, "/console/controls", message=f"recorded {event.type}")


@router.post("/console/killswitch/engage", openapi_extra=needs("killswitch.engage"))
async def engage(request: Request) -> Response:
    """Engage the kill switch (form)."""
    return await _control(request, ev.KILL_SWITCH_ENGAGED, ("reason", "domain"))


@router.post("/console/killswitch/release", openapi_extra=needs("killswitch.release"))
async def release(request: Request) -> Response:
    """Release the kill switch (form)."""
    return await _control(request, ev.KILL_SWITCH_RELEASED, ("reason", "domain"))


@router.post("/console/autonomy", openapi_extra=needs("autonomy"))
async def autonomy(request: Request) -> Response:
    """Set an autonomy level (form)."""
    return await _control(
        request, ev.AUTONOMY_CHANGED, ("level", "environment", "domain", "reason")
    )


# -- versions -------------------------------------------------------------------------------

VERSIONS = "/console/versions"


@router.get(VERSIONS, openapi_extra=needs("read"), response_class=Html)
def versions_page(request: Request, done: str = "", error: str = "") -> Response:
    """Every version and its stage; admins may promote, operators and admins roll back."""
    rows = versions_table(lifecycle_of(context(request).store))
    return _page(request, "versions.html", rows=rows, done=done, error=error)


@router.post(VERSIONS + "/{kind}/{name}/promote", openapi_extra=needs("promote"))
async def promote_form(request: Request, kind: str, name: str) -> Response:
    """Promote a candidate on evidence (form); refused with every unmet threshold."""
    form = await request.form()
    to = str(form.get("to", ""))
    version = str(form.get("version", "")) or None
    try:
        event = promote_version(request, kind, name, to, version)
    except PolicyDenied as exc:
        unmet = "; ".join(exc.reasons)
        return _back(request, VERSIONS, error=f"{kind} {name}: promotion to {to} refused: {unmet}")
    except WardenError as exc:
        return _back(request, VERSIONS, error=str(exc))
    return _back(
        request, VERSIONS, message=f"{kind} {name} {event.data['version']} promoted to {to}"
    )


@router.post(VERSIONS + "/{kind}/{name}/rollback", openapi_extra=needs("rollback"))
async def rollback_form(request: Request, kind: str, name: str) -> Response:
    """Restore the previous version at once (form)."""
    form = await request.form()
    try:
        event = roll_back_version(request, kind, name, str(form.get("reason", "")).strip())
    except WardenError as exc:
        return _back(request, VERSIONS, error=str(exc))
    data = event.data
    restored = data["restored"] or "the live one"
    return _back(
        request,
        VERSIONS,
        message=f"{kind} {name}: {data['version']} rolled back, {restored} restored",
    )


# -- quarantine, audit, KPIs ----------------------------------------------------------------


@router.get("/console/quarantine", openapi_extra=needs("read"), response_class=Html)
def quarantine_page(
    request: Request, item: int | None = None, done: str = "", error: str = ""
) -> Response:
    """Quarantined input and why; operators may replay an item."""
    items = context(request).store.quarantined()
    chosen = next((i for i in items if i.id == item), None) if item is not None else None
    return _page(
        request, "quarantine.html", items=items[-200:], chosen=chosen, done=done, error=error
    )


@router.post("/console/quarantine/{item_id}/replay", openapi_extra=needs("quarantine.replay"))
def quarantine_replay(request: Request, item_id: int) -> Response:
    """Replay one item through the gates (form); back to the list with the verdict."""
    result = replay_item(request, item_id)
    verdict = f"item {item_id}: {result['verdict']} {result['reason']}".strip()
    return _back(request, "/console/quarantine", message=verdict)


@router.get("/console/audit/proof", openapi_extra=needs("read"))
def audit_proof(request: Request, entry: int = 0) -> Response:
    """Download the inclusion proof of an entry (the form's target)."""
    return RedirectResponse(f"/api/audit/proof/{max(entry, 0)}", status_code=303)


@router.get("/console/audit", openapi_extra=needs("read"), response_class=Html)
def audit_page(request: Request) -> Response:
    """The audit log's checkpoints, its key, and proofs to download."""
    paths = AuditPaths.for_state(context(request).state_dir)
    log = AuditLog(paths.log) if paths.log.exists() else None
    key = paths.verifier_key.read_text("utf-8") if paths.verifier_key.exists() else ""
    checkpoints = log.checkpoints()[-10:] if log is not None else []
    return _page(
        request,
        "audit.html",
        size=log.size if log is not None else 0,
        checkpoints=list(reversed(checkpoints)),
        key=key,
    )


@router.get("/console/kpis", openapi_extra=needs("read"), response_class=Html)
def kpis_page(request: Request) -> Response:
    """Resilience KPIs with charts drawn on the server (SVG)."""
    ctx = context(request)
    report = resilience_report(views.history(ctx.store), settings=ctx.kpis)
    charts = [
        incidents_over_time(report),
        mttr_histogram(report),
        outcomes_chart(report),
        versions_chart(by_version(report)),
        coverage_chart(report),
        cost_chart(report),
    ]
    return _page(request, "kpis.html", rows=kpi_rows(report), charts=charts)


__all__ = ["CSRF_FIELD", "router"]
