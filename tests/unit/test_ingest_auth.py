"""Webhook sender checks without sockets: signatures, replay window, credentials, options."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden.domain.errors import ConfigError
from warden.ingest.auth import Denied, Pending, SenderAuth, sign
from warden.ingest.pipeline import is_reserved
from warden.ingest.senders import Sender, sender_from_options

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = 1_800_000_000.0


class Wall:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def hmac_auth(wall: Wall | None = None) -> SenderAuth:
    sender = sender_from_options("deployer", {"scheme": "hmac", "secret": SECRET})
    return SenderAuth([sender], wall_clock=wall or Wall())


def headers(msg_id: str, stamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(SECRET, msg_id, stamp, body),
    }


@given(
    msg_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64),
    offset=st.integers(-300, 300),
    body=st.binary(max_size=256),
    flip=st.integers(0, 10_000),
)
def test_a_signature_verifies_its_body_and_no_other(
    msg_id: str, offset: int, body: bytes, flip: int
) -> None:
    auth = hmac_auth()
    sent = headers(msg_id, int(NOW) + offset, body)
    pending = auth.check_headers(sent)
    assert isinstance(pending, Pending), pending
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        assert isinstance(auth.verify(pending, tampered), Denied)
    else:
        assert isinstance(auth.verify(pending, b"x"), Denied)
    verified = auth.verify(pending, body)
    assert isinstance(verified, Sender)
    assert verified.name == "deployer"
    assert isinstance(auth.check_headers(sent), Denied), "a spent id is refused"


def test_a_spent_id_is_forgotten_only_after_the_window() -> None:
    wall = Wall()
    auth = hmac_auth(wall)
    sent = headers("m1", int(NOW), b"{}")
    pending = auth.check_headers(sent)
    assert isinstance(pending, Pending)
    assert isinstance(auth.verify(pending, b"{}"), Sender)
    wall.now += 599
    assert isinstance(auth.check_headers(headers("m1", int(wall.now), b"{}")), Denied)
    wall.now += 2
    assert isinstance(auth.check_headers(headers("m1", int(wall.now), b"{}")), Pending)


def test_one_of_several_signatures_may_match_during_a_key_rotation() -> None:
    auth = hmac_auth()
    sent = headers("m2", int(NOW), b"{}")
    old = "v1," + base64.b64encode(b"o" * 32).decode()
    sent["webhook-signature"] = f"{old} {sent['webhook-signature']}"
    pending = auth.check_headers(sent)
    assert isinstance(pending, Pending)
    assert isinstance(auth.verify(pending, b"{}"), Sender)


def test_bearer_and_basic_are_settled_from_headers() -> None:
    auth = SenderAuth(
        [
            Sender("am", "bearer", b"token-token-token"),
            Sender("ci", "basic", b"pw", username="ci"),
        ]
    )
    assert auth.check_headers({"authorization": "Bearer token-token-token"}) == auth.senders[0]
    basic = base64.b64encode(b"ci:pw").decode()
    assert auth.check_headers({"authorization": f"basic {basic}"}) == auth.senders[1]
    denied = auth.check_headers({})
    assert isinstance(denied, Denied)
    assert "expects Authorization: Bearer <token> or Authorization: Basic" in denied.reason
    assert denied.challenge == 'Bearer realm="warden", Basic realm="warden"'
    assert isinstance(auth.check_headers({"authorization": "Bearer token-token-toke"}), Denied)
    assert isinstance(auth.check_headers({"authorization": "Basic !!"}), Denied)
    assert "pw" not in repr(auth.senders[1])


def test_insecure_takes_anyone_as_anonymous() -> None:
    auth = SenderAuth(insecure=True, anonymous_allow_types=["warden.metric.sampled"])
    anonymous = auth.check_headers({"authorization": "Bearer whatever"})
    assert isinstance(anonymous, Sender)
    assert (anonymous.name, anonymous.allow_types) == (
        "anonymous",
        frozenset({"warden.metric.sampled"}),
    )
    with pytest.raises(ConfigError, match="insecure: true"):
        SenderAuth()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheme": "bearer", "secret": "x" * 20, "colour": 1}, "unknown option 'colour'"),
        ({"scheme": "digest", "secret": "x" * 20}, "one of bearer, basic, hmac"),
        ({"scheme": "bearer", "secret": "short"}, "shorter than 16"),
        ({"scheme": "bearer"}, "no secret"),
        ({"scheme": "bearer", "secret": "x" * 20, "secret_env": "A"}, "give secret once"),
        ({"scheme": "bearer", "secret_env": "WARDEN_TEST_UNSET_VAR"}, "is not set"),
        ({"scheme": "bearer", "secret_file": "/nonexistent/x"}, "cannot read"),
        ({"scheme": "basic", "secret": "x" * 20}, "needs a user name"),
        ({"scheme": "bearer", "username": "u", "secret": "x" * 20}, "only scheme basic"),
        ({"scheme": "hmac", "secret": "whsec_c2hvcnQ="}, "at least 16 random bytes"),
        ({"scheme": "hmac", "secret": "not base64!"}, "whsec_ followed by base64"),
        ({"scheme": "bearer", "secret": "x" * 20, "allow_types": "warden.x"}, "a list"),
    ],
)
def test_sender_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        sender_from_options("s", options)
    assert "x" * 20 not in str(raised.value)


def test_secrets_come_from_files_and_inline_ones_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    sender = sender_from_options("d", {"scheme": "hmac", "secret_file": str(path)})
    assert sender.secret == b"0123456789abcdef0123456789abcdef"
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        sender_from_options("d", {"scheme": "hmac", "secret": SECRET})
    assert "written in the configuration file" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("type_", "reserved"),
    [
        ("warden.probe.failed", True),
        ("warden.deploy.completed", True),
        ("warden.metric.sampled", True),
        ("warden.state.observed", True),
        ("warden.killswitch.engaged", True),
        ("warden.approval.granted", True),
        ("warden.alert.firing", False),
        ("warden.webhook.received", False),
        ("acme.deploy.finished", False),
    ],
)
def test_reserved_types(type_: str, reserved: bool) -> None:
    assert is_reserved(type_) is reserved
