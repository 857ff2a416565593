"""Secrets and personal data never land anywhere: markers sent in are found nowhere after.

Known markers go in through every door there is (ingest of accepted and refused events,
probe errors, a managed process's environment); then every state file, the audit log,
the logs, the metrics output, the model's context and the child's environment are
searched for them.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest

from tests.builders import AWS_KEY, BEARER, EMAIL, PASSWORD, PEM, SSN, found_in
from tests.integration.harness import make_harness
from warden.agents.model_prompt import incident_context
from warden.audit.checkpoint import Signer
from warden.domain import events as ev
from warden.execution.adapters.process import LocalProcessAdapter, ProcessSpec
from warden.execution.adapters.process_supervision import INHERITED
from warden.ingest.pipeline import Admit, Pipeline, Verdict
from warden.telemetry.metrics import MetricsListener

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def everything_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_secret_markers_reach_no_file_log_metric_or_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness = make_harness(tmp_path, redact_fields=("ssn",))
    registry = CollectorRegistry()
    harness.warden.runtime.subscribe(MetricsListener(registry, quarantine=harness.warden.store))
    pipeline = Pipeline(harness.warden.runtime.ingest)
    secret_data = {
        "password": PASSWORD,
        "headers": {"Authorization": f"Bearer {BEARER}"},
        "note": f"rotated {AWS_KEY} and key {PEM}; contact {EMAIL}",
        "customer": {"ssn": SSN, "plan": "gold"},
    }
    try:

        def event(id_: str, type_: str, data: object) -> str:
            return json.dumps({
                "specversion": "1.0", "id": id_, "source": "test://secrets", "type": type_,
                "time": ev.format_time(harness.clock.now()), "subject": "payments",
                "data": data, "authorization": f"Bearer {BEARER}",
            })  # fmt: skip

        accepted, refused = pipeline.process(
            [
                Admit(event("s-1", "warden.webhook.received", secret_data), "test"),
                # Fails its schema: the raw input goes to quarantine, less the secrets.
                Admit(event("s-2", "warden.probe.failed", secret_data), "test"),
            ]
        )
        assert accepted.verdict is Verdict.ACCEPTED
        assert refused.verdict is Verdict.QUARANTINED
        for _ in range(3):  # probe errors carry the secret into health, incidents, a model
            harness.clock.advance(1)
            harness.ingest(
                ev.PROBE_FAILED, "payments", probe="scripted",
                error=f"refused; password={PASSWORD}, Authorization: Bearer {BEARER}, {EMAIL}",
            )  # fmt: skip
        harness.settle()
        (stored,) = [e for e in harness.warden.store.read_all() if e.id == "s-1"]
        assert stored.data["customer"] == {"ssn": "[REDACTED:field]", "plan": "gold"}
        assert stored.data["password"] == "[REDACTED:secret]"
        (incident,) = harness.incidents("payments")
        context = incident_context(incident, harness.warden.runtime.world())
        harness.warden.audit.catch_up()
        leaks = found_in(everything_under(tmp_path / "state"))
        leaks += found_in({"logs": caplog.text.encode(), "metrics": generate_latest(registry)})
        leaks += found_in({"model context": json.dumps(context).encode()})
        leaks += found_in({"quarantine": repr(harness.warden.store.quarantined()).encode()})
        assert leaks == [], "\n".join(leaks)
        assert "[REDACTED:" in json.dumps(context)
    finally:
        harness.close()
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("events.db", "events.db-wal", "events.db-shm", "audit/log.jsonl"):
        if (state / name).exists():
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name


DUMP_ENV = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w')); input()"


def test_a_managed_process_gets_only_what_its_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_AUDIT_KEY", Signer.generate("warden.test").encode_private())
    monkeypatch.setenv("DEPLOY_TOKEN", BEARER)
    monkeypatch.setenv("SERVICE_DB_PASSWORD", PASSWORD)
    dump = tmp_path / "env.json"
    spec = ProcessSpec(
        name="dumper",
        argv=(sys.executable, "-c", DUMP_ENV, str(dump)),
        env={"DB_PASSWORD": "${SERVICE_DB_PASSWORD}", "MODE": "plain"},
    )
    with LocalProcessAdapter([spec], tmp_path / "logs") as fleet:
        assert fleet.start("dumper").ok
        deadline = time.monotonic() + 20
        while not (dump.exists() and dump.read_text().endswith("}")):
            assert time.monotonic() < deadline, "the child did not write its environment"
            time.sleep(0.02)
        seen = json.loads(dump.read_text())
    assert set(seen) - {"PWD", "SHLVL", "_", "LC_CTYPE"} == (
        {name for name in INHERITED if name in os.environ} | {"DB_PASSWORD", "MODE"}
    )
    assert seen["DB_PASSWORD"] == PASSWORD  # named in its config: given
    assert "WARDEN_AUDIT_KEY" not in seen
    assert BEARER not in json.dumps(seen)
    log = tmp_path / "logs" / "dumper.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
