"""Builders shared by tests: one valid event to vary, a candidate policy bundle, people.

Also what several test modules share (secret markers, a recorded outage, the scenario
library, processes a demo started): a test module imports helpers from here, never from
another test module.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warden import operations
from warden.assembly import build
from warden.config import load_config
from warden.domain import events as ev
from warden.domain import lifecycle as lc
from warden.domain.catalog import Catalog
from warden.domain.control import Controls
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.plans import Plan, Step, step_hash
from warden.domain.topology import ServiceNode, Topology
from warden.domain.world import World
from warden.governance import identity
from warden.governance.policy import BUILTIN_BUNDLE
from warden.testing import ManualClock, RecordingAdapter, ScriptedProbe

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.ports import EventStore
    from warden.telemetry.tracing import TracingListener

FROZEN_RESTARTS = "no-restarts.cedar"


def probe_cloudevent(**overrides: Any) -> dict[str, Any]:
    """A valid structured-mode ``warden.probe.failed`` CloudEvent, with ``overrides`` applied."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e1",
        "source": "warden://probe/payments",
        "type": "warden.probe.failed",
        "time": "2026-11-25T12:00:00Z",
        "subject": "payments",
        "data": {"service": "payments", "probe": "http://x/health", "error": "refused"},
    }
    event.update(overrides)
    return event


def frozen_restarts_bundle(directory: Path) -> Path:
    """The built-in bundle plus a forbid on restart_service (policy ``no-restarts``)."""
    shutil.copytree(BUILTIN_BUNDLE, directory)
    (directory / FROZEN_RESTARTS).write_text(
        '@id("no-restarts") @message("restarts are frozen")\n'
        'forbid (principal, action == Action::"restart_service", resource);\n'
    )
    return directory


@dataclass(frozen=True)
class Person:
    """A registered user as tests hold them: name, private key and token."""

    name: str
    key: Ed25519PrivateKey
    token: str

    def key_file(self, directory: Path) -> Path:
        """Their private key as a PEM file (what `--key` reads)."""
        path = directory / f"{self.name}.key"
        path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def token_file(self, directory: Path) -> Path:
        """Their token in a file (what `--token-file` reads)."""
        path = directory / f"{self.name}.token"
        path.write_text(self.token + "\n")
        return path


def register(
    store: EventStore,
    name: str,
    role: str = "approver",
    when: datetime | None = None,
    *,
    seed: str = "",
) -> Person:
    """Register ``name`` with a fresh key (an admin ``root`` is bootstrapped when needed).

    With a ``seed`` the key, token and salt are derived from it and the name, so a
    recorded history that registers people is the same every time.
    """
    moment = when or datetime.now(UTC)
    registry = operations.users(store)
    by = None
    if registry.has_admin():
        by = next(u for u in registry.active() if u.role == "admin")
    elif role != "admin":
        register(store, "root", "admin", moment, seed=seed)
        by = operations.users(store).current("root")
    if seed:
        key = identity.seeded_key(f"{seed}:{name}")
        entropy = identity.seeded_entropy(f"{seed}:{name}")
    else:
        key, entropy = Ed25519PrivateKey.generate(), secrets.token_bytes
    _, token = operations.add_user(
        store, name, role, by, moment, public_key=identity.public_key_of(key), entropy=entropy
    )
    return Person(name, key, token)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout_s`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


# -- secret markers: values no file, log, answer or page may ever hold ------------------

PASSWORD = "hunter2-Zq81x"
BEARER = "eyMarkerBearer0c8d7e6f5a4b3c2d1"
AWS_KEY = "AKIAMARKER0123456789"
PEM_BODY = "MIIEmarkerPEMbodyQWERTY"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----"
SSN = "078-05-1120-marker"
EMAIL = "jane.marker@example.org"
MARKERS = (PASSWORD, BEARER, AWS_KEY, PEM_BODY, SSN, EMAIL)


def found_in(blobs: dict[Path, bytes] | dict[str, bytes]) -> list[str]:
    """Every marker found, as "MARKER in WHERE"."""
    return [
        f"{marker} in {where}"
        for where, blob in blobs.items()
        for marker in MARKERS
        if marker.encode() in blob
    ]


# -- the repository's scenario library ---------------------------------------------------

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"


# -- processes a demo or drill started ---------------------------------------------------


def processes_marked(state_dir: Path) -> list[int]:
    """Pids of live processes started for ``state_dir`` (their WARDEN_DEMO_STATE says so)."""
    marker = f"WARDEN_DEMO_STATE={state_dir.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


# -- a recorded outage: payments down, restarted, resolved -------------------------------

OUTAGE_CONFIG = """
environment: staging
state_dir: {state}
verification_timeout_s: 5
services:
  - {{name: payments, domain: payments, health: "http://127.0.0.1:9/health", managed: false}}
  - {{name: orders, domain: shop, health: "http://127.0.0.1:9/health", managed: false,
     depends_on: [payments]}}
"""


def recorded_outage(tmp_path: Path, extra: str = "") -> Path:
    """A config file, and a history in its state directory: payments down, restarted."""
    config = tmp_path / "warden.yaml"
    config.write_text(OUTAGE_CONFIG.format(state=tmp_path / "state") + extra)
    clock = ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
    probes = {"payments": ScriptedProbe(), "orders": ScriptedProbe()}
    warden = build(load_config(config), clock, adapter=RecordingAdapter(probes), probes=probes)
    try:
        runtime = warden.runtime
        for name, probe in probes.items():
            runtime.record_probe(name, "scripted", probe.check(), "watch")
        probes["payments"].healthy = False
        for _ in range(3):
            clock.advance(1)
            runtime.record_probe("payments", "scripted", probes["payments"].check(), "watch")
            runtime.tick()
        for _ in range(20):
            clock.advance(0.1)
            runtime.tick()
        (incident,) = runtime.incidents.values()
        assert incident.state.value == "resolved", incident.close_reason
    finally:
        warden.close()
    return config


# -- a traced incident: events fed to a listener in log order, as the runtime does -------

FEED_START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class Feed:
    """Builds events (in log order) and hands each to the listener, as the runtime would."""

    def __init__(self, listener: TracingListener) -> None:
        self.listener = listener
        self.n = 0

    def emit(
        self, stream: str, type_: str, seconds: float, data: dict[str, Any], traceparent: str = ""
    ) -> ev.Event:
        """Append one event ``seconds`` after FEED_START and hand it to the listener."""
        self.n += 1
        event = ev.Event(
            id=f"e{self.n}", source="test", type=type_,
            time=ev.format_time(FEED_START + timedelta(seconds=seconds)), data=data,
            traceparent=traceparent, stream=stream, position=self.n,
        )  # fmt: skip
        self.listener(event)
        return event


def decision(
    hash_: str, outcome: Outcome, version: str = "v1", approvers: int = 0
) -> dict[str, Any]:
    """The data of a ``warden.decision.recorded`` event of step 0."""
    reasons = (Reason("autonomy", "ok"), Reason("blast", "small"))
    return {"decision": Decision(outcome, hash_, reasons, approvers, version).to_dict(), "index": 0}


def approved_incident(feed: Feed) -> None:
    """Three failed probes, an incident that needs an approval, a restart, a verification."""
    signals = [
        feed.emit("service-payments", ev.PROBE_FAILED, s, {"service": "payments", "latency_ms": 250.0, "error": "connection refused"})
        for s in (0, 1, 2)
    ]  # fmt: skip
    feed.emit("service-payments", ev.PROBE_FAILED, 2.5, {"service": "payments"})  # not evidence
    stream = "incident-inc1"
    plan = Plan("service-down", (Step("restart_service", "payments"),), "down", ("x",), 0.95)
    hash_ = step_hash("inc1", 0, plan.steps[0])
    opened = {
        "incident_id": "inc1", "service": "payments", "summary": "payments down",
        "first_signal_at": signals[0].time, "evidence": [s.id for s in signals],
    }  # fmt: skip
    feed.emit(stream, ev.INCIDENT_OPENED, 3, opened, TRACEPARENT)
    feed.emit(stream, ev.PLAN_PROPOSED, 4, {"plan": plan.to_dict()}, TRACEPARENT)
    feed.emit(
        stream,
        ev.DECISION_RECORDED,
        4.5,
        decision(hash_, Outcome.NEEDS_APPROVAL, approvers=1),
        TRACEPARENT,
    )
    feed.emit(
        stream, ev.APPROVAL_GRANTED, 60, {"step_hash": hash_, "approver": "alice"}, TRACEPARENT
    )
    feed.emit(stream, ev.DECISION_RECORDED, 61, decision(hash_, Outcome.ALLOW), TRACEPARENT)
    feed.emit(
        stream,
        ev.STEP_INTENDED,
        62,
        {
            "index": 0,
            "step_hash": hash_,
            "action": "restart_service",
            "target": "payments",
            "idempotency_key": "k1",
            "timeout_s": 10.0,
        },
        TRACEPARENT,
    )
    feed.emit(
        stream,
        ev.STEP_SUCCEEDED,
        64,
        {"index": 0, "step_hash": hash_, "duration_ms": 1980.5, "detail": "restarted"},
        TRACEPARENT,
    )
    feed.emit(stream, ev.VERIFICATION_STARTED, 65, {"probe": "health"}, TRACEPARENT)
    feed.emit(stream, ev.VERIFICATION_PASSED, 70, {}, TRACEPARENT)
    feed.emit(stream, ev.INCIDENT_RESOLVED, 70, {"reason": "verified", "mttr_s": 70.0}, TRACEPARENT)


# -- the pure lifecycle's view of the world ----------------------------------------------

LIFECYCLE_START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SETTINGS = lc.LifecycleSettings(
    verification_timeout_s=15, approval_timeout_s=60, compensation_hold_s=120
)
EVERY_ACTION = frozenset(Catalog().names())
TOPOLOGY = Topology.of([ServiceNode("payments", "payments"), ServiceNode("orders", "shop")])


def at(seconds: float) -> datetime:
    """``seconds`` after LIFECYCLE_START."""
    return LIFECYCLE_START + timedelta(seconds=seconds)


def view(**overrides: Any) -> lc.View:
    """What the lifecycle sees: an empty world, every action runnable, ``overrides`` on top."""
    fields: dict[str, Any] = {
        "world": World(now=LIFECYCLE_START),
        "controls": Controls(),
        "topology": TOPOLOGY,
        "catalog": Catalog(),
        "runnable": EVERY_ACTION,
    }
    return lc.View(**(fields | overrides))


# -- a judged history: people approved one restart and rejected another ---------------


def judged_outages(tmp_path: Path) -> Path:
    """A supervised history: alice approves restarting payments, bob rejects orders'.

    Returns the config file; the store is in ``tmp_path / "state"``.
    """
    config = tmp_path / "warden.yaml"
    config.write_text(OUTAGE_CONFIG.format(state=tmp_path / "state") + "autonomy: supervised\n")
    clock = ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
    probes = {"payments": ScriptedProbe(), "orders": ScriptedProbe()}
    warden = build(load_config(config), clock, adapter=RecordingAdapter(probes), probes=probes)
    try:
        runtime = warden.runtime
        alice = register(warden.store, "alice", when=clock.now(), seed="judged")
        bob = register(warden.store, "bob", when=clock.now(), seed="judged")
        for name, probe in probes.items():
            runtime.record_probe(name, "scripted", probe.check(), "watch")
        for service, person, decision in (
            ("payments", alice, "approve"),
            ("orders", bob, "reject"),
        ):
            probes[service].healthy = False
            for _ in range(3):
                clock.advance(1)
                runtime.record_probe(service, "scripted", probes[service].check(), "watch")
                runtime.tick()
            for _ in range(5):
                clock.advance(0.1)
                runtime.tick()
            (waiting,) = (i for i in runtime.incidents.values() if i.service == service)
            assert waiting.state.value == "awaiting_approval", waiting.state
            clock.advance(30)
            operations.approve(
                warden.store, waiting.id, person.key, when=clock.now(), decision=decision
            )
            for _ in range(20):
                clock.advance(0.1)
                runtime.tick()
            probes[service].healthy = True
            clock.advance(1)
            runtime.record_probe(service, "scripted", probes[service].check(), "watch")
            runtime.tick()
            clock.advance(900)
            runtime.tick()
    finally:
        warden.close()
    return config
