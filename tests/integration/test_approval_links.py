"""One-time approval links: bound to a step and an approver, single use, stored hashed."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from warden.domain import events as ev
from warden.domain.errors import ValidationError
from warden.runtime.approval_links import ApprovalLinks
from warden.runtime.notifications import notice_for

from .api_world import World, make_world

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PEOPLE = {"alice": ("sre",), "bob": ("sre",), "carol": ("dev",)}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    found = make_world(tmp_path)
    yield found
    found.close()


def login(client: httpx.Client, world: World, name: str) -> None:
    answer = client.post("/login", data={"token": world.people[name].token, "next": "/console"})
    assert answer.status_code == 303


def test_a_link_brings_its_approver_once_to_the_step(world: World) -> None:
    world.waiting()
    (asked,) = world.harness.events(ev.APPROVAL_REQUESTED)
    links = ApprovalLinks(world.ctx.state_dir)
    server = world.serve()
    notice = notice_for(asked, server.url, PEOPLE, links)
    assert notice is not None
    personal = notice.data["links"]
    roles = set(asked.data["approver_roles"])
    assert set(personal) == {n for n, r in PEOPLE.items() if not roles or roles & set(r)}
    assert "alice (one-time link): " + personal["alice"] in notice.text
    token = personal["alice"].rsplit("/", 1)[1]
    stored = links.path.read_text()
    assert token not in stored  # only its hash is kept
    assert oct(links.path.stat().st_mode & 0o777) == "0o600"
    hash_ = asked.data["step_hash"]
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
        assert client.get(f"/console/link/{token}").status_code in (302, 303, 401)  # log in first
        login(client, world, "bob")
        wrong = client.get(f"/console/link/{token}")
        assert "this+approval+link+is+for+alice,+not+bob" in wrong.headers["location"]
        with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as alice:
            login(alice, world, "alice")
            first = alice.get(f"/console/link/{token}")
            assert first.status_code == 303
            assert first.headers["location"] == f"/console/inbox?step={hash_}"
            again = alice.get(f"/console/link/{token}")
            assert "unknown+or+was+used+already" in again.headers["location"]


def test_an_expired_link_is_refused(world: World) -> None:
    world.waiting()
    (asked,) = world.harness.events(ev.APPROVAL_REQUESTED)
    links = ApprovalLinks(world.ctx.state_dir)
    notice = notice_for(asked, "http://console", {"alice": ()}, links)
    assert notice is not None
    token = notice.data["links"]["alice"].rsplit("/", 1)[1]
    later = ev.parse_time(asked.data["expires_at"]) + timedelta(seconds=1)
    with pytest.raises(ValidationError, match="expired"):
        links.redeem(token, "alice", later)
