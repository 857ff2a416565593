"""A Warden on a manual clock awaiting one approval, with the API and console over it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from warden.api.app import all_routes
from warden.api.auth import permission_of
from warden.api.context import ApiContext
from warden.api.server import ApiServer
from warden.domain.incident import State
from warden.web.app import create_app

from .harness import Harness, make_harness, policy_bundle

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tests.builders import Person

# One person for each role, plus a second approver.
PEOPLE = (
    ("root", "admin"),
    ("alice", "approver"),
    ("bob", "approver"),
    ("oscar", "operator"),
    ("vera", "viewer"),
)


def one_approver_bundle(tmp_path: Path) -> None:
    """A bundle asking one person's approval for every step."""
    policy_bundle(
        tmp_path,
        "one.cedar",
        '@id("one-approver") @outcome("needs_approval") @approvers("1")\n'
        '@message("a person confirms every restart")\n'
        "permit (principal, action, resource);\n",
    )


@dataclass
class World:
    """The harness, the application over its store, and who is registered."""

    harness: Harness
    ctx: ApiContext
    app: FastAPI
    people: dict[str, Person] = field(default_factory=dict)
    servers: list[ApiServer] = field(default_factory=list)

    def waiting(self) -> str:
        """Make payments fail until an incident awaits approval; its id."""
        h = self.harness
        h.fail("payments")
        h.settle()
        (incident,) = [i for i in h.incidents() if i.state is State.AWAITING_APPROVAL]
        return incident.id

    def serve(self) -> ApiServer:
        """The application on a real socket (stopped by :meth:`close`)."""
        server = ApiServer(self.app, self.ctx, "127.0.0.1", 0)
        server.start()
        self.servers.append(server)
        return server

    def token(self, name: str) -> dict[str, str]:
        """The Authorization header of ``name``'s personal token."""
        return {"Authorization": f"Bearer {self.people[name].token}"}

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.ctx.stopping.set()
        self.harness.close()


def make_world(tmp_path: Path) -> World:
    """The world with everyone of :data:`PEOPLE` registered, nothing failing yet."""
    one_approver_bundle(tmp_path)
    h = make_harness(tmp_path)
    ctx = ApiContext(
        h.warden.store,
        h.warden.config.state_dir,
        approvals=h.warden.config.approvals,
        now=h.clock.now,
        poll_s=0.05,
    )
    world = World(h, ctx, create_app(ctx))
    for name, role in PEOPLE:
        world.people[name] = h.person(name, role)
    return world


def route_table() -> list[tuple[str, str, str | None]]:
    """``(method, path, permission)`` of every route of the application (HEAD aside)."""
    app = create_app(ApiContext(cast("Any", None), Path(".")))
    return sorted(
        (method, route.path, permission_of(route))
        for route in all_routes(app.routes)
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    )


def openapi_document() -> dict[str, Any]:
    """The application's OpenAPI document, built without a store."""
    return create_app(ApiContext(cast("Any", None), Path("."))).openapi()
