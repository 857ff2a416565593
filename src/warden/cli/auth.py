"""How a person proves who they are on the command line: token or key options. Edge (CLI).

Every command that changes state takes ``--token-file PATH`` (or the ``WARDEN_TOKEN``
environment variable) or ``--key PATH``; ``--as NAME`` alone names nobody and is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from warden.config import load_config
from warden.domain.errors import ValidationError
from warden.governance import identity

if TYPE_CHECKING:
    from warden.domain.users import User
    from warden.governance.approvals import ApprovalSettings

TOKEN_ENV = "WARDEN_TOKEN"
PASSPHRASE_ENV = "WARDEN_KEY_PASSPHRASE"

TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help=f"A file holding your Warden token (or set {TOKEN_ENV}).",
        dir_okay=False,
    ),
]
KeyFile = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help=f"Your Ed25519 private key (OpenSSH or PEM); passphrase in {PASSPHRASE_ENV}.",
        dir_okay=False,
    ),
]
Claimed = Annotated[
    str | None,
    typer.Option("--as", help="Optional check: refuse unless your credential is this user's."),
]


def credential(token_file: Path | None, key_file: Path | None) -> identity.Credential:
    """The credential the options (or the environment) give; refuses when there is none."""
    if key_file is not None:
        try:
            data = key_file.read_bytes()
        except OSError as exc:
            raise ValidationError(
                f"cannot read {key_file}: {exc.strerror}", field="--key", fix="give your key file"
            ) from exc
        passphrase = os.environ.get(PASSPHRASE_ENV)
        key = identity.load_private_key(data, passphrase.encode() if passphrase else None)
        return identity.Credential(key=key)
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"cannot read {token_file}: {exc}", field="--token-file", fix="give your token file"
            ) from exc
        return identity.Credential(token=token)
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return identity.Credential(token=token)
    raise identity.AuthenticationError("no credential given (--as NAME alone proves nothing)")


def check_claim(user: User, claimed: str | None) -> None:
    """Refuse when ``--as`` names someone other than the authenticated user."""
    if claimed is not None and claimed != user.name:
        raise identity.AuthenticationError(
            f"your credential is {user.name}'s, not {claimed!r}",
            fix="drop --as, or use that person's own credential",
        )


def approval_settings(config: Path | None, state_dir: Path) -> ApprovalSettings | None:
    """The configured approvers: from ``config``, else the warden.yaml kept in the state dir."""
    chosen = config or next(
        (p for p in (state_dir / "warden.yaml", Path("warden.yaml")) if p.is_file()), None
    )
    return None if chosen is None else load_config(chosen).approvals
