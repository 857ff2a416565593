"""The API application: routes, the guard before each, errors as JSON, OpenAPI. Edge (API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI

from warden.api.auth import guard, needs, permission_of
from warden.api.errors import install
from warden.api.routes import router

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from warden.api.context import ApiContext

TITLE = "Warden API"
DESCRIPTION = (
    "Incidents, approvals, controls, quarantine, audit and KPIs of one Warden state."
    " Every route but /healthz needs `Authorization: Bearer TOKEN` (a personal token from"
    " `warden user add`) whose role allows the route's `x-warden-permission`."
)


def create_api(ctx: ApiContext) -> FastAPI:
    """The API over ``ctx``'s store; add the console with :func:`warden.web.app.create_app`."""
    from warden import __version__

    app = FastAPI(
        title=TITLE,
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(guard)],
    )
    app.state.warden = ctx
    install(app)
    app.include_router(router)

    @app.get("/api/openapi.json", openapi_extra=needs("read"), include_in_schema=False)
    def openapi() -> dict[str, Any]:
        """This API's OpenAPI document."""
        return app.openapi()

    return app


def all_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route of ``routes``, routers included by FastAPI flattened into their routes."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from all_routes(included.routes)
        else:
            yield route


def unguarded(app: FastAPI) -> list[str]:
    """The routes of ``app`` that name no permission (the guard refuses them to all)."""
    out = []
    for route in all_routes(app.routes):
        methods = getattr(route, "methods", None)
        if methods is not None and permission_of(route) is None:
            out.append(f"{','.join(sorted(methods))} {getattr(route, 'path', '?')}")
    return out
