"""Who may send to the webhook: bearer, basic and Standard Webhooks senders. Data plane (shell).

A webhook source names its senders; each authenticates with one scheme:

- ``bearer`` — ``Authorization: Bearer <token>`` (Alertmanager's ``http_config.authorization``).
- ``basic`` — ``Authorization: Basic ...`` (Alertmanager's ``http_config.basic_auth``).
- ``hmac`` — the Standard Webhooks signature: ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "<webhook-id>.<webhook-timestamp>.<body>">`` with a ``whsec_<base64>`` secret; the timestamp
  must be within the tolerance (5 minutes) and a ``webhook-id`` is accepted once in it.

Bearer and basic are settled from the headers alone. HMAC needs the body: the headers
are checked first (timestamp in the window, a well-formed signature, an id not seen), and
the request is only *pending* until :meth:`SenderAuth.verify` has the body. Secrets are
compared in constant time and never appear in an answer, a log line or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.errors import ConfigError
from warden.ingest.senders import SCHEMES, Sender, hmac_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "ANONYMOUS",
    "DEFAULT_TOLERANCE_S",
    "Denied",
    "Pending",
    "SenderAuth",
    "sign",
]

DEFAULT_TOLERANCE_S = 300.0
ANONYMOUS = "anonymous"
_MAX_SIGNATURES = 8
_MAX_ID_CHARS = 256
_MAX_SEEN_IDS = 200_000


@dataclass(frozen=True, slots=True)
class Pending:
    """A request whose HMAC headers look right; the body decides."""

    candidates: tuple[Sender, ...]
    msg_id: str
    timestamp: str
    signatures: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Denied:
    """A refusal: 401 with a reason that names the expected scheme, never a secret."""

    reason: str
    challenge: str


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value for a message (for senders, tests)."""
    key = hmac_key(secret, "secret")
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class SenderAuth:
    """Decides who sent a request, from its headers and (for HMAC) its body."""

    def __init__(
        self,
        senders: Iterable[Sender] = (),
        *,
        insecure: bool = False,
        anonymous_allow_types: Iterable[str] = (),
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Check requests against ``senders``.

        Args:
            senders: Who may send; names must be unique.
            insecure: Take requests without credentials, as the sender ``anonymous``.
            anonymous_allow_types: Warden's own types an anonymous request may send.
            tolerance_s: How far a ``webhook-timestamp`` may be from now, either way.
            wall_clock: Seconds since the epoch (a seam for tests).
        """
        self.senders = tuple(senders)
        names = [s.name for s in self.senders]
        if len(set(names)) != len(names):
            raise ConfigError("senders: each sender needs its own name")
        if not self.senders and not insecure:
            raise ConfigError(
                "no senders: name who may send (senders: {name: {scheme: bearer|basic|hmac,"
                " secret_env: VAR}}) or accept anyone with insecure: true"
            )
        self.anonymous = (
            Sender(ANONYMOUS, "none", b"", allow_types=frozenset(anonymous_allow_types))
            if insecure
            else None
        )
        self.tolerance_s = tolerance_s
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.schemes = tuple(s for s in SCHEMES if any(x.scheme == s for x in self.senders))

    @classmethod
    def open(cls) -> SenderAuth:
        """Anyone may send (``insecure: true``)."""
        return cls(insecure=True)

    @classmethod
    def bearer(cls, token: str, name: str = "token") -> SenderAuth:
        """One bearer token."""
        return cls([Sender(name, "bearer", token.encode("utf-8"))])

    @property
    def insecure(self) -> bool:
        """Requests without credentials are taken."""
        return self.anonymous is not None

    def describe(self) -> str:
        """The schemes in force, for a start-up line (never a secret)."""
        parts = [f"{s.name} ({s.scheme})" for s in self.senders]
        if self.anonymous is not None:
            parts.append("anyone without credentials (insecure)")
        return ", ".join(parts)

    def _denied(self, reason: str) -> Denied:
        expected = []
        if "bearer" in self.schemes:
            expected.append("Authorization: Bearer <token>")
        if "basic" in self.schemes:
            expected.append("Authorization: Basic <user:password>")
        if "hmac" in self.schemes:
            expected.append(
                "a Standard Webhooks signature (webhook-id, webhook-timestamp, webhook-signature)"
            )
        challenge = ", ".join(
            f'{s.capitalize()} realm="warden"' for s in self.schemes if s != "hmac"
        )
        return Denied(f"{reason}; this webhook expects {' or '.join(expected)}", challenge)

    def check_headers(self, headers: Mapping[str, str]) -> Sender | Pending | Denied:
        """Who sent a request, as far as its headers tell (lower-case names)."""
        if self.anonymous is not None and not self.senders:
            return self.anonymous  # nobody to check credentials against
        given = headers.get("authorization", "")
        if given:
            return self._check_authorization(given)
        if "webhook-signature" in headers or "webhook-id" in headers:
            return self._check_hmac_headers(headers)
        if self.anonymous is not None:
            return self.anonymous
        return self._denied("no credentials")

    def _check_authorization(self, given: str) -> Sender | Denied:
        scheme, _, credentials = given.strip().partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        found: Sender | None = None
        if scheme == "bearer":
            presented = credentials.encode("utf-8", "replace")
            for sender in self.senders:
                # Every bearer sender is compared, so timing tells nothing of which matched.
                if sender.scheme == "bearer" and hmac.compare_digest(presented, sender.secret):
                    found = sender
        elif scheme == "basic":
            try:
                user, _, password = base64.b64decode(credentials, validate=True).partition(b":")
            except (binascii.Error, ValueError):
                return self._denied("malformed basic credentials")
            for sender in self.senders:
                if sender.scheme != "basic":
                    continue
                same_user = hmac.compare_digest(user, sender.username.encode("utf-8"))
                if hmac.compare_digest(password, sender.secret) and same_user:
                    found = sender
        else:
            return self._denied(f"unsupported authorization scheme {scheme[:20]!r}")
        return found if found is not None else self._denied(f"wrong {scheme} credentials")

    def _check_hmac_headers(self, headers: Mapping[str, str]) -> Pending | Denied:
        candidates = tuple(s for s in self.senders if s.scheme == "hmac")
        if not candidates:
            return self._denied("no sender signs with Standard Webhooks here")
        msg_id = headers.get("webhook-id", "").strip()
        stamp = headers.get("webhook-timestamp", "").strip()
        if not msg_id or len(msg_id) > _MAX_ID_CHARS or not msg_id.isprintable():
            return self._denied(f"webhook-id: missing or longer than {_MAX_ID_CHARS} characters")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return self._denied("webhook-timestamp: integer seconds since the epoch are needed")
        skew = int(stamp) - self.wall_clock()
        if abs(skew) > self.tolerance_s:
            return self._denied(
                f"webhook-timestamp is {abs(skew):.0f} s {'ahead' if skew > 0 else 'old'},"
                f" outside the {self.tolerance_s:g} s tolerance (check the sender's clock)"
            )
        signatures = []
        for item in headers.get("webhook-signature", "").split()[:_MAX_SIGNATURES]:
            version, _, encoded = item.partition(",")
            if version != "v1":
                continue
            try:
                signatures.append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                continue
        if not any(len(s) == hashlib.sha256().digest_size for s in signatures):
            return self._denied("webhook-signature: no well-formed v1 signature")
        if self._seen_recently(msg_id):
            return self._denied(f"webhook-id was already used within {self.tolerance_s:g} s")
        return Pending(candidates, msg_id, stamp, tuple(signatures))

    def verify(self, pending: Pending, body: bytes) -> Sender | Denied:
        """The sender whose key signed ``body``; its ``webhook-id`` is then spent."""
        signed = f"{pending.msg_id}.{pending.timestamp}.".encode() + body
        found: Sender | None = None
        for sender in pending.candidates:
            expected = hmac.new(sender.secret, signed, hashlib.sha256).digest()
            for signature in pending.signatures:
                if hmac.compare_digest(expected, signature):
                    found = sender
        if found is None:
            return self._denied("webhook-signature does not match the body")
        if not self._spend(pending.msg_id):
            return self._denied(f"webhook-id was already used within {self.tolerance_s:g} s")
        return found

    def _prune(self, now: float) -> None:
        seen = self._seen
        while seen and (next(iter(seen.values())) < now or len(seen) > _MAX_SEEN_IDS):
            seen.popitem(last=False)

    def _seen_recently(self, msg_id: str) -> bool:
        with self._lock:
            self._prune(self.wall_clock())
            return msg_id in self._seen

    def _spend(self, msg_id: str) -> bool:
        """Record ``msg_id``; false when it was recorded already (a replay)."""
        with self._lock:
            now = self.wall_clock()
            self._prune(now)
            if msg_id in self._seen:
                return False
            # A timestamp is good for tolerance_s either side of now, so an id must be
            # remembered for twice that.
            self._seen[msg_id] = now + 2 * self.tolerance_s
            return True
