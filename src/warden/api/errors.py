"""HTTP errors of the API: one JSON shape, ``{"error", "fix"}``, for every refusal. Edge (API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, RedirectResponse, Response

from warden.domain.errors import PolicyDenied, ValidationError, WardenError
from warden.governance.identity import AuthenticationError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request


class ApiError(Exception):
    """An HTTP refusal: a status, what happened and what to do."""

    def __init__(self, status: int, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fix = fix


def _body(message: str, fix: str = "", field: str = "") -> dict[str, str]:
    body = {"error": message}
    if field:
        body["field"] = field
    if fix:
        body["fix"] = fix
    return body


def install(app: FastAPI) -> None:
    """Answer ApiError and Warden's errors as JSON (the console's pages: a login redirect)."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.status == 401 and _page(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(_body(exc.message, exc.fix), exc.status, headers=headers)

    async def warden_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WardenError)
        if isinstance(exc, AuthenticationError):
            return JSONResponse(_body(str(exc)), 403)
        if isinstance(exc, ValidationError):
            return JSONResponse(_body(str(exc), field=exc.field), 400)
        body: dict[str, Any] = _body(str(exc))
        if isinstance(exc, PolicyDenied):
            body["reasons"] = list(exc.reasons)  # e.g. every unmet threshold of a promotion
        return JSONResponse(body, 409)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(WardenError, warden_error)


def _page(request: Request) -> bool:
    """A console page asked for by a browser (not the JSON API, not htmx)."""
    return (
        request.method == "GET"
        and request.url.path.startswith("/console")
        and "hx-request" not in request.headers
    )
