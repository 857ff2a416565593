"""People authenticate: the attacks of anyone-is-anyone, refused by the real CLI (subprocess).

A Warden on a manual clock waits for two SRE approvals; users, approvals, kill switch and
autonomy changes go through `python -m warden.cli` as a person types them, and the
runtime then shows what counted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry, generate_latest

from tests.builders import register
from tests.cli import Cli
from warden.domain import events as ev
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.governance.approvals import ApprovalSettings
from warden.governance.identity import ApprovalCheck
from warden.telemetry.metrics import MetricsListener

from .harness import Harness, make_harness, two_sre_bundle

if TYPE_CHECKING:
    from collections.abc import Iterator

PEOPLE = {"alice": ("sre",), "bob": ("sre",), "carol": ("dev",), "dave": ("sre",)}


def keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """An OpenSSH key pair as `ssh-keygen -t ed25519` writes it."""
    key = Ed25519PrivateKey.generate()
    private = directory / name
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    public = directory / f"{name}.pub"
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public.write_text(f"{line.decode()} {name}@laptop\n")
    return private, public


@pytest.fixture
def waiting(tmp_path: Path) -> Iterator[tuple[Harness, Cli, dict[str, Any]]]:
    """A harness awaiting two SRE approvals, its CLI, and the people registered."""
    two_sre_bundle(tmp_path)
    h = make_harness(tmp_path, approvals=ApprovalSettings(approvers=PEOPLE))
    state = h.warden.config.state_dir
    people = "\n".join(f"    {n}: [{', '.join(r)}]" for n, r in PEOPLE.items())
    (state / "warden.yaml").write_text(
        'services:\n  - {name: payments, health: "http://127.0.0.1:9/health"}\n'
        f"approvals:\n  approvers:\n{people}\n"
    )
    cli = Cli(state)
    found: dict[str, Any] = {}
    for name, role in [("root", "admin"), ("alice", "approver"), ("bob", "approver"),
                       ("carol", "approver"), ("dave", "approver"), ("oscar", "operator")]:  # fmt: skip
        person = register(h.warden.store, name, role)
        found[name] = str(person.key_file(tmp_path))
        found[f"{name}.token"] = str(person.token_file(tmp_path))
    found["eve"] = str(keypair(tmp_path, "eve")[0])  # a key nobody registered
    # The CLI signs at the wall-clock time; the approval window must be open then too.
    h.clock.advance(max(0.0, (datetime.now(UTC) - h.clock.now()).total_seconds()))
    h.fail("payments")
    h.settle()
    (incident,) = h.incidents()
    assert incident.state is State.AWAITING_APPROVAL
    found["incident"] = incident.id[:12]
    yield h, cli, found
    h.close()


def test_claimed_names_authenticate_nobody(waiting: tuple[Harness, Cli, dict[str, Any]]) -> None:
    h, cli, p = waiting
    code, out = cli("approve", p["incident"], "--as", "mallory", real=True)
    assert code != 0
    assert "to approve, sign with your key: --key PATH" in out
    code, out = cli("killswitch", "release", "--as", "", real=True)
    assert code != 0
    assert "no credential given (--as NAME alone proves nothing)" in out
    assert "--token-file PATH or WARDEN_TOKEN" in out
    code, out = cli("autonomy", "autonomous", "--as", "nobody", real=True)
    assert code != 0
    assert "no credential given" in out
    code, out = cli("autonomy", "autonomous", env={"WARDEN_TOKEN": "wdn_guessed"})
    assert code != 0
    assert "unknown or revoked token" in out
    code, out = cli("approve", p["incident"], "--token-file", p["alice.token"])
    assert code != 0
    assert "to approve, a token is not enough: sign with your key" in out
    code, out = cli("approve", p["incident"], "--key", p["alice"], "--as", "bob")
    assert code != 0
    assert "your credential is alice's, not 'bob'" in out
    code, out = cli("approve", p["incident"], "--key", p["eve"])
    assert code != 0
    assert "no active user holds the key SHA256:" in out
    # Nothing of the above reached the log.
    assert h.events(ev.APPROVAL_GRANTED) == []
    assert h.events(ev.AUTONOMY_CHANGED) == []
    assert h.events(ev.KILL_SWITCH_RELEASED) == []


def test_roles_decide_who_may_flip_what(waiting: tuple[Harness, Cli, dict[str, Any]]) -> None:
    h, cli, p = waiting
    code, out = cli("killswitch", "engage", "--token-file", p["oscar.token"], "--reason", "drill")
    assert code == 0, out
    code, out = cli("killswitch", "release", "--token-file", p["oscar.token"])
    assert code != 0
    assert "oscar has the role operator; killswitch.release needs the role admin" in out
    code, out = cli("autonomy", "autonomous", "--key", p["alice"])
    assert code != 0
    assert "alice has the role approver; autonomy needs the role admin" in out
    code, out = cli("approve", p["incident"], "--key", p["oscar"])
    assert code != 0
    assert "oscar has the role operator; approve needs the role approver" in out
    code, out = cli(
        "killswitch", "release", env={"WARDEN_TOKEN": Path(p["root.token"]).read_text()}
    )
    assert code == 0, out
    engaged, released = h.events(ev.KILL_SWITCH_ENGAGED), h.events(ev.KILL_SWITCH_RELEASED)
    assert [(e.data["by"], e.data["auth"]) for e in engaged + released] == [
        ("oscar", "token"),
        ("root", "token"),
    ]


def test_quorum_counts_distinct_live_people(waiting: tuple[Harness, Cli, dict[str, Any]]) -> None:
    h, cli, p = waiting
    code, out = cli("approve", p["incident"], "--key", p["carol"])
    assert code != 0
    assert "approve by carol refused: holds none of the roles sre" in out
    code, out = cli("approve", p["incident"], "--key", p["alice"])
    assert code == 0, out
    assert "approved proposal" in out
    assert "as alice (signed with SHA256:" in out
    code, out = cli("approve", p["incident"], "--key", p["alice"])
    assert code != 0
    assert "alice already approved" in out
    code, out = cli("approve", p["incident"], "--key", p["dave"])
    assert code == 0, out
    code, out = cli("user", "revoke", "dave", "--token-file", p["root.token"])
    assert code == 0, out
    code, out = cli("approve", p["incident"], "--key", p["dave"])
    assert code != 0
    assert "no active user holds the key" in out
    # An approval written into the store by hand: recorded, never counted.
    (incident,) = h.incidents()
    forged = ev.derived_event(
        ev.APPROVAL_GRANTED,
        incident_stream(incident.id),
        {"step_hash": incident.step_hashes[0], "approver": "erin", "signature": "AAAA"},
        ev.format_time(h.clock.now()),
        key="forged",
    )
    h.warden.store.append(incident_stream(incident.id), [forged])
    h.settle()
    assert h.incidents()[0].state is State.AWAITING_APPROVAL  # dave's approval stopped counting
    assert h.adapter.calls == []

    code, out = cli("approve", p["incident"], "--key", p["bob"])
    assert code == 0, out
    h.settle()
    final = h.incidents()[0]
    assert final.state is State.RESOLVED
    reasons = [(r.policy_id, r.message) for r in final.decisions[-1].reasons]
    assert reasons[0] == ("approval", "approved by alice, bob")
    assert ("approval:ignored", "dave: dave is revoked") in reasons
    assert ("approval:ignored", "erin: erin is not a registered user") in reasons

    registry = CollectorRegistry()
    listener = MetricsListener(registry, approval_counts=ApprovalCheck())
    for event in h.warden.store.read_all():
        listener(event)
    # alice, dave (valid when given) and bob; never the forged one.
    assert len(h.events(ev.APPROVAL_GRANTED)) == 4
    assert "warden_approvals_total 3.0" in generate_latest(registry).decode()


def test_a_signed_rejection_stops_the_step(waiting: tuple[Harness, Cli, dict[str, Any]]) -> None:
    h, cli, p = waiting
    code, out = cli("reject", p["incident"], "--key", p["bob"])
    assert code == 0, out
    assert "rejected proposal" in out
    h.settle()
    final = h.incidents()[0]
    assert final.state is State.ESCALATED
    assert "rejected by bob" in final.close_reason
    assert h.adapter.calls == []


def test_incidents_says_what_to_do_next_and_the_line_works(
    waiting: tuple[Harness, Cli, dict[str, Any]],
) -> None:
    h, cli, p = waiting
    (incident,) = h.incidents()
    code, out = cli("incidents")
    assert code == 0, out
    hash_ = incident.step_hashes[0]
    line = next(x.strip() for x in out.splitlines() if x.strip().startswith("warden approve"))
    assert line.startswith(f"warden approve {incident.id} --step-hash {hash_} --key PATH -s ")
    assert f"warden reject {incident.id} --step-hash {hash_}" in out
    code, timeline = cli("incidents", p["incident"])
    assert f"--step-hash {hash_}" in timeline
    # The line as printed, with the person's key for PATH and without the -s Cli adds.
    argv = line.split()[1 : line.split().index("-s")]
    code, out = cli(*[p["alice"] if a == "PATH" else a for a in argv])
    assert code == 0, out
    assert f"approved proposal {hash_[:12]}" in out


def test_the_first_admin_bootstraps_then_only_admins_add(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "state")
    root = str(tmp_path / "root.token")
    code, out = cli("user", "add", "alice", "--role", "approver")
    assert code != 0
    assert "the first user must be an admin" in out
    code, out = cli("user", "add", "root", "--role", "admin", "--save-token", root)
    assert code == 0, out
    assert "no admin existed yet: root is the first admin" in out
    assert (tmp_path / "root.token").stat().st_mode & 0o077 == 0
    code, out = cli("user", "add", "mallory", "--role", "admin")
    assert code != 0
    assert "no credential given" in out
    _, public = keypair(tmp_path, "alice")
    code, out = cli(
        "user", "add", "alice", "--role", "approver", "--public-key", str(public),
        "--token-file", root,
    )  # fmt: skip
    assert code == 0, out
    assert "added alice as approver with key SHA256:" in out
    assert "token (shown once, keep it secret): wdn_" in out
    code, out = cli("user", "add", "alice2", "--public-key", str(public), "--token-file", root)
    assert code != 0
    assert "that key already belongs to alice" in out
    code, out = cli("user", "revoke", "root", "--token-file", root)
    assert code != 0
    assert "root is the last admin" in out
    code, out = cli("user", "list")
    assert code == 0
    assert "root" in out
    assert "approver" in out
    assert "SHA256:" in out
