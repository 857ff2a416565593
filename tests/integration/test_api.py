"""The HTTP API on a real socket: approvals signed elsewhere, sessions, live events, proofs.

A Warden on a manual clock awaits one approval; people call the API with their own
tokens, sign with their own keys, and the runtime acts on what counted.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from warden import operations
from warden.api.sessions import COOKIE
from warden.audit.checkpoint import Verifier
from warden.audit.proofs import verify_proof
from warden.domain import events as ev
from warden.domain.incident import State

from .api_world import World, make_world

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    found = make_world(tmp_path)
    yield found
    found.close()


def _signed(world: World, who: str, prepared: dict[str, Any], key_of: str = "") -> dict[str, str]:
    """The body of approve/reject: ``prepared``'s payload signed with ``key_of``'s key."""
    key = world.people[key_of or who].key
    signature = key.sign(prepared["payload"].encode("utf-8"))
    return {
        "step_hash": prepared["step_hash"],
        "signed_at": prepared["signed_at"],
        "nonce": prepared["nonce"],
        "signature": base64.b64encode(signature).decode("ascii"),
        "reason": prepared["reason"],
    }


def test_an_approval_signed_by_its_approver_runs_the_step(world: World) -> None:
    incident = world.waiting()
    server = world.serve()
    alice = world.token("alice")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        (pending,) = client.get("/api/approvals", headers=world.token("vera")).json()
        assert pending["incident_id"] == incident
        assert pending["needed"] == 1
        assert pending["counted"] == []
        assert pending["reasons"] == [
            {"policy_id": "one-approver", "message": "a person confirms every restart"}
        ]
        assert pending["expires_at"]
        prepared = client.post(
            f"/api/approvals/{incident}/prepare",
            headers=alice,
            json={"decision": "approve", "reason": "restart is safe at night"},
        ).json()
        assert prepared["step_hash"] == pending["step_hash"]
        assert orjson.loads(prepared["payload"])["reason"] == "restart is safe at night"
        done = client.post(
            f"/api/approvals/{incident}/approve",
            headers=alice,
            json=_signed(world, "alice", prepared),
        )
        assert done.status_code == 200, done.text
        assert done.json()["decision"] == "approve"
    h = world.harness
    h.probes["payments"].healthy = True
    h.settle_until(
        lambda: h.incidents()[0].state is State.RESOLVED, "the approved restart to heal payments"
    )
    (granted,) = h.events(ev.APPROVAL_GRANTED)
    assert granted.data["approver"] == "alice"
    assert granted.data["reason"] == "restart is safe at night"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        detail = client.get(f"/api/incidents/{incident}", headers=world.token("vera")).json()
        resolved = client.get(
            "/api/incidents", params={"state": "resolved"}, headers=world.token("vera")
        ).json()
        opened = client.get("/api/incidents", params={"active": True}, headers=alice).json()
    assert detail["state"] == "resolved"
    assert detail["steps"][0]["approvals"][0]["reason"] == "restart is safe at night"
    assert detail["steps"][0]["decision"]["outcome"] == "allow"  # decided again, approved
    assert detail["steps"][0]["succeeded"]
    assert detail["plan"]["rationale"]
    assert detail["evidence"]
    assert [i["id"] for i in resolved] == [incident]
    assert opened == []


def test_a_token_alone_approves_nothing(world: World) -> None:
    incident = world.waiting()
    server = world.serve()
    alice = world.token("alice")
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def prepare() -> dict[str, Any]:
            answer = client.post(f"/api/approvals/{incident}/prepare", headers=alice, json={})
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        def send(body: dict[str, str], who: str = "alice") -> httpx.Response:
            url = f"/api/approvals/{incident}/approve"
            return client.post(url, headers=world.token(who), json=body)

        unsigned = {**_signed(world, "alice", prepare()), "signature": "AAAA"}
        by_bob = _signed(world, "alice", prepare(), key_of="bob")
        other_step = {**_signed(world, "alice", prepare()), "step_hash": "0" * 64}
        answers = [send(body) for body in (unsigned, by_bob, other_step)]
        as_bob = send(_signed(world, "alice", prepare()), who="bob")
        late = prepare()
        world.harness.clock.advance(600)
        answers.append(send(_signed(world, "alice", late)))
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert "does not verify" in answers[0].json()["error"]
    assert "does not verify" in answers[1].json()["error"]
    assert "awaits approval of" in answers[2].json()["error"]
    assert "signed 600 s away from now" in answers[3].json()["error"]
    assert as_bob.status_code == 400  # alice's signature, bob's token: bob did not sign it
    assert world.harness.events(ev.APPROVAL_GRANTED) == []


def test_a_rejection_is_recorded_and_nothing_runs(world: World) -> None:
    incident = world.waiting()
    server = world.serve()
    bob = world.token("bob")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        prepared = client.post(
            f"/api/approvals/{incident}/prepare",
            headers=bob,
            json={"decision": "reject", "reason": "not during the sale"},
        ).json()
        done = client.post(
            f"/api/approvals/{incident}/reject", headers=bob, json=_signed(world, "bob", prepared)
        )
        mixed = client.post(
            f"/api/approvals/{incident}/approve", headers=bob, json=_signed(world, "bob", prepared)
        )
    assert done.status_code == 200, done.text
    assert done.json()["pending"]["rejected"] == ["bob"]
    assert mixed.status_code == 400  # a signed rejection does not count as an approval
    world.harness.settle()
    assert world.harness.incidents()[0].state is not State.EXECUTING
    assert world.harness.adapter.calls == []


def _operator_controls(world: World) -> list[ev.Event]:
    kinds = (ev.KILL_SWITCH_ENGAGED, ev.KILL_SWITCH_RELEASED, ev.AUTONOMY_CHANGED)
    return [e for e in world.ctx.store.read_stream(ev.CONTROL_STREAM) if e.type in kinds]


def test_controls_are_recorded_under_the_callers_name(world: World) -> None:
    server = world.serve()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        engaged = client.post(
            "/api/killswitch/engage", headers=world.token("oscar"), json={"reason": "drill"}
        )
        release = client.post("/api/killswitch/release", headers=world.token("oscar"), json={})
        released = client.post("/api/killswitch/release", headers=world.token("root"), json={})
        level = client.post(
            "/api/autonomy",
            headers=world.token("root"),
            json={"level": "supervised", "domain": "payments", "reason": "new agent"},
        )
        bad = client.post("/api/autonomy", headers=world.token("root"), json={"level": "yolo"})
    assert engaged.json()["kill_switch"]["engaged"] is True
    assert engaged.json()["kill_switch"]["by"] == "oscar"
    assert release.status_code == 403
    assert released.json()["kill_switch"]["engaged"] is False
    assert level.json()["autonomy"]["rules"] == [
        {"environment": "*", "domain": "payments", "level": "supervised"}
    ]
    assert bad.status_code == 422
    by = [e.data["by"] for e in _operator_controls(world)]
    assert by == ["oscar", "root", "root"]


def test_a_console_session_needs_its_csrf_token_and_ends_on_revocation(world: World) -> None:
    server = world.serve()
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
        wrong = client.post("/login", data={"token": "wdn_nope", "next": "/console"})
        assert "unknown or revoked token" in wrong.text
        assert COOKIE not in client.cookies
        login = client.post("/login", data={"token": world.people["root"].token, "next": "//evil"})
        assert login.status_code == 303
        assert login.headers["location"] == "/console"  # no open redirect
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        page = client.get("/console")
        assert page.status_code == 200
        assert "content-security-policy" in page.headers
        csrf = page.text.split('name="csrf" content="')[1].split('"')[0]
        assert len(csrf) > 20
        forged = client.post("/api/killswitch/engage", json={"reason": "forged"})
        assert forged.status_code == 403
        assert "CSRF" in forged.json()["error"]
        form_forged = client.post("/console/killswitch/engage", data={"reason": "x"})
        assert form_forged.status_code == 403
        real = client.post(
            "/api/killswitch/engage", json={"reason": "real"}, headers={"x-csrf-token": csrf}
        )
        assert real.status_code == 200, real.text
        form = client.post("/console/killswitch/release", data={"reason": "ok", "csrf": csrf})
        assert form.status_code == 303
        assert "recorded" in form.headers["location"]
        root = operations.users(world.ctx.store).current("root")
        operations.add_user(world.ctx.store, "ruth", "admin", root, world.harness.clock.now())
        ruth = operations.users(world.ctx.store).current("ruth")
        operations.revoke_user(world.ctx.store, "root", ruth, world.harness.clock.now())
        after = client.get("/api/whoami")
        assert after.status_code == 401
        assert "session has ended" in after.json()["error"]
    reasons = [e.data["reason"] for e in _operator_controls(world)]
    assert reasons == ["real", "ok"]


def test_the_live_stream_sends_each_new_event_with_its_position(world: World) -> None:
    server = world.serve()
    seen: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream("GET", "/api/stream", headers=world.token("vera")) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        head = world.ctx.store.head()
        world.harness.control(ev.KILL_SWITCH_ENGAGED, reason="drill", by="root")
        last_id = ""
        for line in stream.iter_lines():
            if line.startswith("id: "):
                last_id = line[4:]
            if line.startswith("data: "):
                seen.append(orjson.loads(line[6:]))
                if seen[-1]["type"] == ev.KILL_SWITCH_ENGAGED:
                    break
    assert [s["type"] for s in seen] == [ev.KILL_SWITCH_ENGAGED]
    assert seen[0]["position"] == head + 1 == int(last_id)
    assert seen[0]["label"]  # described as the timeline describes it


def test_a_downloaded_proof_verifies_offline_with_the_published_key(world: World) -> None:
    world.waiting()
    world.harness.warden.checkpointer.checkpoint()
    server = world.serve()
    vera = world.token("vera")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        summary = client.get("/api/audit", headers=vera).json()
        key = client.get("/api/audit/key", headers=vera).text
        proof = client.get("/api/audit/proof/3", headers=vera)
        beyond = client.get(f"/api/audit/proof/{summary['size'] + 5}", headers=vera)
        consistent = client.get("/api/audit/consistency", params={"old": 2}, headers=vera).json()
    assert summary["size"] > 3
    assert summary["checkpoints"][-1]["size"] == summary["size"]
    assert proof.headers["content-disposition"] == 'attachment; filename="3.tlog-proof"'
    verifiers = [Verifier.parse(line) for line in key.split()]
    checked = verify_proof(proof.content, verifiers)
    assert checked.index == 3
    assert beyond.status_code == 404
    assert consistent["new"]["size"] == summary["size"]
    assert consistent["proof"]


def test_quarantine_lists_shows_and_replays(world: World) -> None:
    item = world.ctx.store.quarantine("webhook", "not JSON", "{oops", "2026-11-25T12:00:00Z")
    server = world.serve()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        listed = client.get("/api/quarantine", headers=world.token("vera")).json()
        shown = client.get(f"/api/quarantine/{item}", headers=world.token("vera")).json()
        replayed = client.post(f"/api/quarantine/{item}/replay", headers=world.token("oscar"))
        missing = client.get("/api/quarantine/999", headers=world.token("vera"))
    assert listed == [
        {
            "id": item,
            "source": "webhook",
            "reason": "not JSON",
            "received_at": "2026-11-25T12:00:00Z",
        }
    ]
    assert shown["payload"] == "{oops"
    assert replayed.json()["verdict"] == "still refused"
    assert missing.status_code == 404


def test_kpis_report_and_shadow(world: World) -> None:
    world.waiting()
    server = world.serve()
    vera = world.token("vera")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        kpis = client.get("/api/kpis", headers=vera).json()
        naive = client.get("/api/kpis", params={"since": "2026-01-01T00:00:00"}, headers=vera)
        report = client.get("/api/report", headers=vera)
        shadow = client.get("/api/shadow", headers=vera).json()
    assert kpis["incidents"] == 1
    assert kpis["open"] == 1
    assert any(k["name"].startswith("MTTR") for k in kpis["kpis"])
    assert naive.status_code == 400
    assert "<svg" in report.text
    assert shadow == {"compared": 0, "agree": 0, "differences": [], "candidates": []}


def test_a_reconnecting_stream_resumes_after_its_last_event_id(world: World) -> None:
    server = world.serve()
    world.harness.control(ev.KILL_SWITCH_ENGAGED, reason="one", by="root")
    world.harness.control(ev.KILL_SWITCH_RELEASED, reason="two", by="root")
    head = world.ctx.store.head()
    headers = {**world.token("vera"), "Last-Event-ID": str(head - 1)}
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream("GET", "/api/stream", headers=headers) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("data: "):
                first = orjson.loads(line[6:])
                break
    assert first["position"] == head
    assert first["type"] == ev.KILL_SWITCH_RELEASED
