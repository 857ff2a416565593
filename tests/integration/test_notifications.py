"""Notifications reach a local HTTP receiver in each chat tool's format, signed and retried."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain import events as ev
from warden.ingest.auth import sign
from warden.runtime.notifications import Notifier, Target

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
HASH = "ab" * 32


class Receiver:
    """A local HTTP server that keeps what it is sent; the first ``fail_first`` get 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(503)
                else:
                    outer.got.append(
                        (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.server.shutdown()
    r.server.server_close()


def events() -> list[ev.Event]:
    stream = "incident-" + "1" * 32
    opened = ev.derived_event(
        ev.INCIDENT_OPENED, stream, {"incident_id": "1" * 32, "service": "web", "summary": "web is down [3 probes]",
                                     "severity": "major"}, "2026-12-02T10:00:00Z")  # fmt: skip
    asked = ev.derived_event(
        ev.APPROVAL_REQUESTED,
        stream,
        {
            "step_hash": HASH,
            "proposal": {
                "step": {"action": "restart_service", "target": "web"},
                "rationale": "the process is not serving",
            },
            "expires_at": "2026-12-02T10:15:00Z",
        },
        "2026-12-02T10:00:01Z",
    )
    probe = ev.derived_event(
        ev.PROBE_FAILED, "service-web", {"service": "web"}, "2026-12-02T10:00:00Z"
    )
    return [opened, asked, probe]


def test_each_format_is_delivered_signed_and_retried(receiver: Receiver) -> None:
    targets = [
        Target("slack", "slack", f"{receiver.url}/slack"),
        Target("teams", "teams", f"{receiver.url}/teams", kinds=("approval",)),
        Target("mm", "mattermost", f"{receiver.url}/mm"),
        Target("hook", "webhook", f"{receiver.url}/hook", secret=SECRET),
    ]
    notifier = Notifier(targets, "https://warden.example", sleep=lambda s: None)
    for event in events():
        notifier(event)
    notifier.close()
    assert notifier.failed == 0
    assert notifier.delivered == 7  # 2 each, teams only the approval; the probe: nothing
    by_path: dict[str, list[dict[str, Any]]] = {}
    for path, _, body in receiver.got:
        by_path.setdefault(path, []).append(json.loads(body))
    slack = by_path["/slack"][1]
    assert slack["blocks"][0]["text"]["text"].startswith("Approval needed: restart_service on web")
    assert (
        slack["blocks"][-1]["elements"][0]["url"]
        == f"https://warden.example/console/inbox?step={HASH}"
    )
    assert f"--step-hash {HASH}" in slack["blocks"][1]["text"]["text"]
    (teams,) = by_path["/teams"]
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert card["content"]["actions"][0]["url"].endswith(HASH)
    assert by_path["/mm"][0]["text"].startswith("#### Incident 111111111111 on web")
    assert "[3 probes]" in by_path["/mm"][0]["text"]
    hooks = [(h, b) for p, h, b in receiver.got if p == "/hook"]
    assert [json.loads(b)["type"] for _, b in hooks] == [
        "warden.notification.incident", "warden.notification.approval",
    ]  # fmt: skip
    for headers, body in hooks:
        expected = sign(SECRET, headers["webhook-id"], headers["webhook-timestamp"], body)
        assert headers["webhook-signature"] == expected
    assert "webhook-signature" not in receiver.got[0][1] or receiver.got[0][0] == "/hook"


def test_a_receiver_that_never_answers_costs_a_count_not_the_loop() -> None:
    dead = Target("dead", "slack", "http://127.0.0.1:9/nothing")
    notifier = Notifier([dead], attempts=2, sleep=lambda s: None, timeout_s=1.0)
    for event in events():
        notifier(event)  # returns at once: delivery is on the notifier's thread
    notifier.close()
    assert (notifier.delivered, notifier.failed) == (0, 2)
