"""A Warden on a manual clock awaiting one approval, with the API and console over it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from warden.api.context import ApiContext
from warden.domain.incident import State
from warden.governance.policy import BUILTIN_BUNDLE
from warden.web.app import create_app

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from pathlib import Path

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
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(BUILTIN_BUNDLE / "warden.cedarschema", policies / "warden.cedarschema")
    (policies / "one.cedar").write_text(
        '@id("one-approver") @outcome("needs_approval") @approvers("1")\n'
        '@message("a person confirms every restart")\n'
        "permit (principal, action, resource);\n"
    )


@dataclass
class World:
    """The harness, the application over its store, and who is registered."""

    harness: Harness
    ctx: ApiContext
    app: FastAPI
    people: dict[str, Person] = field(default_factory=dict)

    def waiting(self) -> str:
        """Make payments fail until an incident awaits approval; its id."""
        h = self.harness
        h.fail("payments")
        h.settle()
        (incident,) = [i for i in h.incidents() if i.state is State.AWAITING_APPROVAL]
        return incident.id

    def close(self) -> None:
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
