"""The console in headless Chromium: log in, watch an incident appear, approve it, see it heal.

Debian's chromium, driven by Playwright (no downloaded browser). The approver loads their
own OpenSSH key into the page, which signs in the browser; the screenshots of the console
and the inbox are saved under .artifacts/screenshots/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization

from tests.integration.api_world import World, make_world
from warden.domain import events as ev
from warden.domain.incident import State

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
WAIT_MS = 20_000


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    found = make_world(tmp_path)
    h = found.harness
    # The page counts down in real time: let the approval window open now.
    h.clock.advance(max(0.0, (datetime.now(UTC) - h.clock.now()).total_seconds()))
    yield found
    found.close()


def _shot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    print(f"screenshot: {path}")
    return path


def test_an_approver_logs_in_sees_the_incident_approves_and_sees_it_heal(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    h = world.harness
    server = world.serve()
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(
        world.people["alice"].key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{server.url}/console")
    assert page.url.startswith(f"{server.url}/login?next=/console")
    page.fill("#token", "wdn_wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("text=unknown or revoked token", timeout=WAIT_MS)
    page.fill("#token", world.people["alice"].token)
    page.click("button[type=submit]")
    page.wait_for_selector("text=No incidents yet", timeout=WAIT_MS)
    page.wait_for_selector("#live-status.on", timeout=WAIT_MS)

    # payments fails; the list shows the incident without a reload (server-sent events).
    h.fail("payments")
    h.settle()
    (incident,) = h.incidents()
    assert incident.state is State.AWAITING_APPROVAL
    row = f'tr[data-incident="{incident.id}"]'
    page.wait_for_selector(f"{row} .state-awaiting_approval", timeout=WAIT_MS)
    page.wait_for_selector("text=1 step awaiting approval", timeout=WAIT_MS)
    _shot(page, "console-incidents")

    page.click(f"{row} a")
    page.wait_for_selector("text=Rationale:", timeout=WAIT_MS)
    assert "one-approver" in page.inner_text("#incident")
    _shot(page, "console-incident")

    page.click("text=Approval inbox")
    card = f'article.pending[data-incident="{incident.id}"]'
    page.wait_for_selector(card, timeout=WAIT_MS)
    assert "0 of 1 approval" in page.inner_text(card)
    page.wait_for_function(
        "document.querySelector('.countdown').textContent.startsWith('closes in')",
        timeout=WAIT_MS,
    )
    page.set_input_files("#key-file", str(key_file))
    page.wait_for_selector("text=key loaded: id_ed25519", timeout=WAIT_MS)
    page.fill(f"{card} input[name=reason]", "restart is safe; checked the dashboards")
    _shot(page, "console-inbox")
    page.click(f"{card} button.approve")
    page.wait_for_selector("#decide-status:has-text('approved step')", timeout=WAIT_MS)
    page.wait_for_selector(f"{card} .quorum:has-text('1 of 1 approval (alice)')", timeout=WAIT_MS)

    (granted,) = h.events(ev.APPROVAL_GRANTED)
    assert granted.data["approver"] == "alice"
    assert granted.data["reason"] == "restart is safe; checked the dashboards"

    # The runtime acts on the approval; the console shows the incident resolved.
    h.probes["payments"].healthy = True
    h.settle_until(lambda: h.incidents()[0].state is State.RESOLVED, "the approved restart")
    assert [c[0] for c in h.adapter.calls] == ["restart_service"]
    page.wait_for_selector("text=Nothing awaits approval", timeout=WAIT_MS)
    page.click("text=Incidents")
    page.wait_for_selector(f"{row} .state-resolved", timeout=WAIT_MS)
    page.goto(f"{server.url}/console/incidents/{incident.id}")
    page.wait_for_selector("text=approved by alice", timeout=WAIT_MS)
    _shot(page, "console-resolved")
    assert errors == []


def test_an_admin_flips_controls_and_reads_audit_kpis_and_quarantine(
    world: World, browser: Browser
) -> None:
    h = world.harness
    world.waiting()
    item = world.ctx.store.quarantine("webhook", "not JSON", "{oops", "2026-11-25T12:00:00Z")
    h.warden.checkpointer.checkpoint()
    server = world.serve()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}/login")
    page.fill("#token", world.people["root"].token)
    page.click("button[type=submit]")
    page.wait_for_selector("#live-status.on", timeout=WAIT_MS)

    page.click("text=Controls")
    page.fill("form[action='/console/killswitch/engage'] input[name=reason]", "game day drill")
    page.click("form[action='/console/killswitch/engage'] button")
    page.wait_for_selector("text=Engaged by root", timeout=WAIT_MS)
    page.select_option("select[name=level]", "supervised")
    page.fill("form[action='/console/autonomy'] input[name=domain]", "payments")
    page.click("form[action='/console/autonomy'] button")
    page.wait_for_selector("td:has-text('supervised')", timeout=WAIT_MS)
    _shot(page, "console-controls")
    engaged = h.events(ev.KILL_SWITCH_ENGAGED)
    assert [(e.data["by"], e.data["reason"]) for e in engaged] == [("root", "game day drill")]
    assert h.events(ev.AUTONOMY_CHANGED)[0].data["domain"] == "payments"
    page.click("text=Incidents")
    page.wait_for_selector("text=Kill switch engaged by root: game day drill", timeout=WAIT_MS)

    page.click("text=Quarantine")
    page.click(f"a[href='/console/quarantine?item={item}']")
    page.wait_for_selector("pre.payload:has-text('{oops')", timeout=WAIT_MS)
    page.click("text=Replay through the gates")
    page.wait_for_selector(f"text=item {item}: still refused", timeout=WAIT_MS)

    page.click("text=Audit")
    page.wait_for_selector("pre.key", timeout=WAIT_MS)
    with page.expect_download() as download:
        page.click("text=Download proof")
    saved = download.value
    assert saved.suggested_filename.endswith(".tlog-proof")
    _shot(page, "console-audit")

    page.click("text=KPIs")
    page.wait_for_selector("figure svg", timeout=WAIT_MS)
    assert page.locator("figure svg").count() == 6  # outcomes, MTTR, time; versions, coverage, cost
    _shot(page, "console-kpis")
    assert errors == []
