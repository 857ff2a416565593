"""Who is calling and may they: bearer tokens, console sessions, CSRF, one rule per route.

Every route names the permission it needs in its OpenAPI ``x-warden-permission``
(:func:`needs`), from :data:`warden.domain.users.PERMISSIONS`, or ``public``; the guard run
before every route reads it, so a route that names none is refused to everyone rather than
open to all. Edge (API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request

from warden.api.errors import ApiError
from warden.api.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, Session
from warden.domain import users as users_fold
from warden.governance import identity
from warden.operations import users

if TYPE_CHECKING:
    from warden.api.context import ApiContext
    from warden.domain.users import User

PERMISSION = "x-warden-permission"
PUBLIC = "public"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOW = (
    "send `Authorization: Bearer wdn_…` (your token from `warden user add`), or log in to"
    " the console at /login"
)


def needs(permission: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that needs ``permission`` (or :data:`PUBLIC`)."""
    if permission != PUBLIC and permission not in users_fold.PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return {PERMISSION: permission}


def permission_of(route: Any) -> str | None:
    """The permission a route names, or None when it names none."""
    extra = getattr(route, "openapi_extra", None) or {}
    found = extra.get(PERMISSION)
    return str(found) if found is not None else None


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated person, and the console session they came with (None: a token)."""

    user: User
    session: Session | None = None


def context(request: Request) -> ApiContext:
    """The API context of the application serving ``request``."""
    found: ApiContext = request.app.state.warden
    return found


def authenticate(request: Request) -> Caller:
    """The person behind the request's bearer token or session cookie; 401 when none."""
    ctx = context(request)
    registry = users(ctx.store)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "the Authorization header is not `Bearer TOKEN`", HOW)
        try:
            return Caller(identity.token_user(registry, token))
        except identity.AuthenticationError:
            raise ApiError(401, "unknown or revoked token", HOW) from None
    session_id = request.cookies.get(COOKIE, "")
    if session_id:
        session = ctx.sessions.get(session_id, ctx.now())
        user = registry.current(session.user) if session is not None else None
        if session is not None and user is not None and user.token_hash == session.token_hash:
            return Caller(user, session)
        raise ApiError(401, "your session has ended (logged out, expired or revoked)", HOW)
    raise ApiError(401, "no credential given", HOW)


async def guard(request: Request) -> None:
    """Run before every route: authenticate, check the route's permission, check CSRF."""
    permission = permission_of(request.scope.get("route"))
    if permission == PUBLIC:
        return
    if permission is None:
        raise ApiError(403, "this route names no permission, so it is refused to everyone")
    caller = authenticate(request)
    if not users_fold.may(caller.user.role, permission):
        raise ApiError(
            403,
            f"{caller.user.name} has the role {caller.user.role}; this needs"
            f" {users_fold.least_role(permission)} or above ({permission})",
            "ask an admin for a higher role (`warden user add` with --role)",
        )
    if caller.session is not None and request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        if not given and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            given = str((await request.form()).get(CSRF_FIELD, ""))
        if not caller.session.csrf_ok(given):
            raise ApiError(
                403,
                "the CSRF token is missing or wrong",
                f"send the session's token in {CSRF_HEADER} (the console does this)",
            )
    request.state.caller = caller


def caller(request: Request) -> Caller:
    """The authenticated caller of a guarded route."""
    found: Caller = request.state.caller
    return found
