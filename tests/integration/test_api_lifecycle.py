"""Promotion and rollback over the API: the CLI's roles, evidence checks and audited events.

A real store, gate, Cedar, audit log and reconcile loop on a manual clock, and the API on
a real socket; the candidate is the runbook of ``lifecycle_world``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tests.integration.lifecycle_world import (
    audited,
    evaluated,
    lifecycle_harness,
    shadow_then_evidence,
)
from warden.api.context import ApiContext
from warden.api.server import ApiServer
from warden.domain import events as ev
from warden.runtime.candidates import lifecycle_of, versions_table
from warden.web.app import create_app

if TYPE_CHECKING:
    from pathlib import Path

PATH = "/api/versions/runbook/restart-on-oom"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_promote_and_rollback_over_the_api_take_the_clis_roles_evidence_and_events(
    tmp_path: Path,
) -> None:
    h = lifecycle_harness(tmp_path)
    ctx = ApiContext(
        h.warden.store,
        h.warden.config.state_dir,
        now=h.clock.now,
        poll_s=0.05,
        config=h.warden.config,
    )
    server = ApiServer(create_app(ctx), ctx, "127.0.0.1", 0)
    server.start()
    try:
        version = shadow_then_evidence(h)
        admin = _bearer(h.person("ada", "admin").token)
        operator = _bearer(h.person("otto", "operator").token)
        viewer = _bearer(h.person("vic", "viewer").token)
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def post(action: str, who: dict[str, str], body: dict[str, Any]) -> httpx.Response:
                return client.post(f"{PATH}/{action}", headers=who, json=body)

            # No credential, or a role below admin: refused before any evidence is read.
            assert post("promote", {}, {"to": "canary"}).status_code == 401
            low = post("promote", operator, {"to": "canary"})
            assert low.status_code == 403, low.text
            assert "needs admin or above (promote)" in low.json()["error"]
            assert post("rollback", viewer, {}).status_code == 403

            # Not yet scored on the library: 409 with every unmet threshold, nothing stored.
            refused = post("promote", admin, {"to": "canary"})
            assert refused.status_code == 409, refused.text
            assert refused.json()["reasons"] == [
                f"scenario library: no evaluation of version {version['next']}"
                " (run `warden evaluate` on it with --record)"
            ]
            assert not h.events(ev.VERSION_PROMOTED)
            # A level it cannot go to, or a kind with no candidate loaded: 4xx with the fix.
            assert post("promote", admin, {"to": "sideways"}).status_code == 422
            bundle = client.post(
                "/api/versions/bundle/policy/promote", headers=admin, json={"to": "canary"}
            )
            assert bundle.status_code == 400, bundle.text
            assert "no candidate of bundle policy" in bundle.json()["error"]

            evaluated(h, version["next"])
            promoted = post("promote", admin, {"to": "canary"})
            assert promoted.status_code == 200, promoted.text
            h.tick()
            (event,) = h.events(ev.VERSION_PROMOTED)
            assert promoted.json()["recorded"] == event.id
            assert event.stream == ev.LIFECYCLE_STREAM
            assert event.data["by"] == "ada" and event.data["auth"] == "token"
            assert event.data["previous"] == version["live"]
            assert event.data["evidence"]["shadow_proposals"] == 2
            assert event.data["thresholds"]["min_shadow_proposals"] == 2  # the configured policy
            assert event.data["services"] == ["orders"]
            rows = versions_table(lifecycle_of(h.warden.store))
            stages = {r["version"]: r["stage"] for r in rows if r["kind"] == "runbook"}
            assert stages[version["next"]] == "canary"

            rolled = post("rollback", operator, {"reason": "pages too often"})
            assert rolled.status_code == 200, rolled.text
            (back,) = h.events(ev.VERSION_ROLLED_BACK)
            assert back.data == {
                "kind": "runbook",
                "name": "restart-on-oom",
                "version": version["next"],
                "restored": version["live"],
                "reason": "pages too often",
                "by": "otto",
                "auth": "token",
                "automatic": False,
            }
            # Nothing left to roll back to: a clear 400, not a second event.
            again = post("rollback", operator, {})
            assert again.status_code == 400, again.text
            assert "no previous version" in again.json()["error"]
            assert len(h.events(ev.VERSION_ROLLED_BACK)) == 1
        # Both are in the audit log, as the CLI's are.
        kinds = (ev.VERSION_PROMOTED, ev.VERSION_ROLLED_BACK)
        assert [r["type"] for r in audited(h) if r["type"] in kinds] == list(kinds)
    finally:
        server.stop()
        ctx.stopping.set()
        h.close()


def _console(client: httpx.Client, token: str) -> str:
    """Log in to the console with ``token``; the session's CSRF token."""
    login = client.post("/login", data={"token": token, "next": "/console/versions"})
    assert login.status_code == 303, login.text
    page = client.get("/console/versions")
    assert page.status_code == 200, page.text
    return page.text.split('name="csrf" content="')[1].split('"')[0]


def test_the_console_lists_versions_with_the_buttons_each_role_may_press(
    tmp_path: Path,
) -> None:
    h = lifecycle_harness(tmp_path)
    ctx = ApiContext(
        h.warden.store, h.warden.config.state_dir, now=h.clock.now, config=h.warden.config
    )
    server = ApiServer(create_app(ctx), ctx, "127.0.0.1", 0)
    server.start()
    try:
        version = shadow_then_evidence(h)
        tokens = {
            who: h.person(who, role).token
            for who, role in (("ada", "admin"), ("otto", "operator"), ("vic", "viewer"))
        }
        pages = {}
        for who, token in tokens.items():
            with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
                _console(client, token)
                pages[who] = client.get("/console/versions").text
        assert all(version["next"] in page and version["live"] in page for page in pages.values())
        promote_form = f"{PATH.replace('/api', '/console')}/promote"
        rollback_form = f"{PATH.replace('/api', '/console')}/rollback"
        assert promote_form in pages["ada"] and rollback_form in pages["ada"]
        assert promote_form not in pages["otto"] and rollback_form in pages["otto"]
        assert promote_form not in pages["vic"] and rollback_form not in pages["vic"]

        with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
            csrf = _console(client, tokens["ada"])
            form = {"to": "canary", "version": version["next"], "csrf": csrf}
            refused = client.post(promote_form, data=form)
            assert refused.status_code == 303
            shown = client.get(refused.headers["location"]).text
            assert "promotion to canary refused" in shown and "scenario library" in shown
            evaluated(h, version["next"])
            done = client.post(promote_form, data=form)
            assert "promoted+to+canary" in done.headers["location"]
            (event,) = h.events(ev.VERSION_PROMOTED)
            assert (event.data["by"], event.data["auth"]) == ("ada", "token")
            forged = client.post(rollback_form, data={"reason": "no csrf"})
            assert forged.status_code == 403
            assert not h.events(ev.VERSION_ROLLED_BACK)
    finally:
        server.stop()
        ctx.stopping.set()
        h.close()
