"""How a person proves who they are on the command line: token or key options. Edge (CLI).

Every command that changes state takes ``--token-file PATH`` (or the ``WARDEN_TOKEN``
environment variable) or ``--key PATH``; ``--as NAME`` alone names nobody and is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from warden import operations
from warden.cli.options import configured
from warden.domain.errors import ValidationError
from warden.governance import identity
from warden.store.location import has_log, open_event_store

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
    found = configured(config, state_dir)
    return None if found is None else found.approvals


def gate(
    state_dir: Path,
    action: str,
    who: tuple[Path | None, Path | None, str | None],
    *,
    until_an_admin: bool = False,
) -> User | None:
    """The person the options name, if their role allows ``action``; else refuse.

    ``who`` is (--token-file, --key, --as). With ``until_an_admin``, a state with no admin
    yet (a fresh install, being set up) needs no credential and gives None, as
    `warden user add` makes the first admin.
    """
    store = open_event_store(state_dir) if has_log(state_dir) else None
    try:
        if until_an_admin and (store is None or not operations.users(store).has_admin()):
            return None
        if store is None:
            raise identity.AuthenticationError(
                f"no Warden state in {state_dir}/, so no user to check {action} against",
                fix="give --state-dir (or -c) of the Warden you operate",
            )
        user = operations.authenticate(store, credential(who[0], who[1]), action)
    finally:
        if store is not None:
            store.close()
    check_claim(user, who[2])
    return user
