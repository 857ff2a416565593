"""One-time approval links: a token per approver and step, kept only as its hash. Runtime (shell).

A link brings one named approver to the console's inbox for one step hash, once, before it
expires; the approval itself still needs that approver's signature in the console.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.errors import ValidationError

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

FILE = "approval-links.json"


@dataclass(frozen=True, slots=True)
class ApprovalLink:
    """Who a link is for, which step it leads to, and until when."""

    incident_id: str
    step_hash: str
    approver: str
    expires_at: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApprovalLinks:
    """The links issued for a state directory (a 0600 JSON file of token hashes)."""

    _lock = threading.Lock()

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        found: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
        return found

    def _write(self, links: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(links, out)
        os.replace(partial, self.path)

    def issue(self, link: ApprovalLink, now: datetime) -> str:
        """A new token for ``link``; only its SHA-256 is kept. Expired links are dropped."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            links = {h: v for h, v in self._read().items() if ev.parse_time(v["expires_at"]) > now}
            links[_digest(token)] = asdict(link)
            self._write(links)
        return token

    def redeem(self, token: str, who: str, now: datetime) -> ApprovalLink:
        """The link ``token`` names, used up; only by its approver, once, before it expires.

        Raises:
            ValidationError: When the token is unknown, used, expired or someone else's.
        """
        with self._lock:
            links = self._read()
            found = links.get(_digest(token))
            if found is None:
                raise ValidationError(
                    "this approval link is unknown or was used already",
                    field="token",
                    fix="open the inbox in the console",
                )
            link = ApprovalLink(**found)
            if link.approver != who:
                raise ValidationError(
                    f"this approval link is for {link.approver}, not {who}",
                    field="token",
                    fix=f"log in as {link.approver}, or open the inbox in the console",
                )
            del links[_digest(token)]
            self._write(links)
        if ev.parse_time(link.expires_at) <= now:
            raise ValidationError(
                f"this approval link expired at {link.expires_at}",
                field="token",
                fix="open the inbox in the console",
            )
        return link
