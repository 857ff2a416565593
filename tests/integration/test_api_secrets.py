"""Secret markers sent in through ingest and probes are in no API answer and no console page."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.builders import BEARER, EMAIL, MARKERS, PASSWORD, PEM
from warden.domain import events as ev
from warden.ingest.pipeline import Admit, Pipeline

from .api_world import World, make_world

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    found = make_world(tmp_path)
    yield found
    found.close()


def test_no_answer_of_the_api_or_the_console_holds_a_secret(world: World) -> None:
    h = world.harness
    quarantined = json.dumps({
        "specversion": "1.0", "id": "s-q", "source": "test://secrets",
        "type": "warden.probe.failed", "time": ev.format_time(h.clock.now()),
        "subject": "payments", "data": {"password": PASSWORD, "note": f"key {PEM}"},
    })  # fmt: skip
    Pipeline(h.warden.runtime.ingest).process([Admit(quarantined, "test")])
    for _ in range(3):  # probe errors carry the secrets into health, incidents, pages
        h.clock.advance(1)
        h.ingest(
            ev.PROBE_FAILED, "payments", probe="scripted",
            error=f"refused; password={PASSWORD}, Authorization: Bearer {BEARER}, {EMAIL}",
        )  # fmt: skip
    h.settle()
    (incident,) = h.incidents("payments")
    (item,) = h.warden.store.quarantined()
    server = world.serve()
    paths = [
        "/api/incidents",
        f"/api/incidents/{incident.id}",
        f"/api/incidents/{incident.id}/timeline",
        "/api/approvals",
        "/api/quarantine",
        f"/api/quarantine/{item.id}",
        "/api/audit",
        "/api/kpis",
        "/api/report",
        "/console",
        "/console/partials/incidents",
        f"/console/incidents/{incident.id}",
        "/console/inbox",
        "/console/quarantine",
    ]
    leaks = []
    shown = []
    with httpx.Client(base_url=server.url, timeout=30, headers=world.token("root")) as client:
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
            leaks += [f"{marker} in {path}" for marker in MARKERS if marker in answer.text]
            shown += [path] if "[REDACTED:" in answer.text else []
    assert leaks == [], "\n".join(leaks)
    # The probe errors are shown, less their secrets.
    assert f"/api/incidents/{incident.id}/timeline" in shown, shown
