"""Every route of the API and console, for every role and for nobody: allowed or refused.

The cases come from the application's own route table, so a route added without a
permission fails here (and is refused to everyone by the guard meanwhile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from warden.api.auth import PUBLIC, needs
from warden.domain.users import PERMISSIONS, ROLES, may

from .api_world import PEOPLE, World, make_world, route_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROUTES = route_table()
CALLERS = [None, *(name for name, _ in PEOPLE)]
ROLE_OF = dict(PEOPLE)
# The only routes anyone may call: health, and the way to log in.
PUBLIC_ROUTES = {("GET", "/healthz"), ("GET", "/"), ("GET", "/login"), ("POST", "/login")}


def test_the_table_covers_every_route_and_names_a_known_permission() -> None:
    assert len(ROUTES) > 35
    unnamed = [f"{m} {p}" for m, p, permission in ROUTES if permission is None]
    assert unnamed == []
    assert {p for _, _, p in ROUTES} <= {*PERMISSIONS, PUBLIC}
    assert {(m, p) for m, p, permission in ROUTES if permission == PUBLIC} == PUBLIC_ROUTES
    assert all(role in ROLES for role in ROLE_OF.values())
    assert set(ROLE_OF.values()) == set(ROLES)  # every role is exercised


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    world = make_world(tmp_path_factory.mktemp("roles"))
    incident = world.waiting()
    item = world.ctx.store.quarantine("webhook", "not JSON", "{oops", "2026-11-25T12:00:00Z")
    world.harness.warden.checkpointer.checkpoint()
    world.ctx.stopping.set()  # the live stream answers, then ends: one request, one answer
    server = world.serve()
    world.ctx.stopping.set()
    values = {
        "incident_id": incident,
        "item_id": str(item),
        "entry": "0",
        "token": "unknown",
        "kind": "runbook",
        "name": "restart-on-oom",
    }
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield {"world": world, "url": server.url, "values": values, "client": client}
    world.close()


def _call(served: dict[str, Any], method: str, path: str, who: str | None) -> httpx.Response:
    world: World = served["world"]
    url = served["url"] + path.format(**served["values"])
    headers = world.token(who) if who is not None else {}
    body: dict[str, Any] = {}
    if path.startswith("/api/"):
        body["json"] = {}
    else:
        body["data"] = {}
    client: httpx.Client = served["client"]
    client.cookies.clear()  # a logout's answer must not follow the next caller
    request = client.build_request(method, url, headers=headers, **body)
    response = client.send(request, stream=True)
    response.close()
    return response


@pytest.mark.parametrize("who", CALLERS, ids=lambda w: w or "nobody")
@pytest.mark.parametrize(("method", "path", "permission"), ROUTES, ids=lambda v: str(v))
def test_each_route_allows_exactly_the_roles_that_may(
    served: dict[str, Any], method: str, path: str, permission: str, who: str | None
) -> None:
    response = _call(served, method, path, who)
    status = response.status_code
    assert status < 500, f"{method} {path} as {who}: {status}"
    if permission == PUBLIC:
        assert status not in (401, 403)
    elif who is None:
        page = method == "GET" and path.startswith("/console")
        if page:
            assert status == 303
            assert response.headers["location"].startswith("/login?next=")
        else:
            assert status == 401
            assert response.headers["www-authenticate"] == "Bearer"
    elif may(ROLE_OF[who], permission):
        assert status not in (401, 403), f"{who} ({ROLE_OF[who]}) refused {method} {path}"
    else:
        assert status == 403, f"{who} ({ROLE_OF[who]}) allowed {method} {path}: {status}"


def test_a_route_without_a_rule_is_refused_even_to_an_admin(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    try:

        @world.app.get("/api/forgotten")
        def forgotten() -> dict[str, str]:
            return {"leak": "everything"}

        @world.app.get("/api/remembered", openapi_extra=needs("read"))
        def remembered() -> dict[str, str]:
            return {"fine": "yes"}

        server = world.serve()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            refused = client.get("/api/forgotten", headers=world.token("root"))
            allowed = client.get("/api/remembered", headers=world.token("vera"))
        assert refused.status_code == 403
        assert "names no permission" in refused.json()["error"]
        assert allowed.json() == {"fine": "yes"}
    finally:
        world.close()


def test_a_bad_or_revoked_token_is_refused(tmp_path: Path) -> None:
    from warden import operations

    world = make_world(tmp_path)
    try:
        server = world.serve()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/api/whoami", headers=world.token("vera")).json() == {
                "name": "vera",
                "role": "viewer",
            }
            guessed = client.get("/api/whoami", headers={"Authorization": "Bearer wdn_guess"})
            basic = client.get("/api/whoami", headers={"Authorization": "Basic dmVyYTp4"})
            root = operations.users(world.ctx.store).current("root")
            operations.revoke_user(world.ctx.store, "vera", root, world.harness.clock.now())
            revoked = client.get("/api/whoami", headers=world.token("vera"))
        assert guessed.status_code == 401
        assert guessed.json()["error"] == "unknown or revoked token"
        assert basic.status_code == 401
        assert "Bearer TOKEN" in basic.json()["error"]
        assert revoked.status_code == 401
    finally:
        world.close()
