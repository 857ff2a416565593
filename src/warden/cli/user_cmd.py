"""``warden user add|list|revoke``: personal credentials and roles. Edge (CLI).

Users live in the ``users`` stream of the event store, so every command and every worker
sees the same registry and every change is audited. The first admin bootstraps itself
while no admin exists; after that only an admin adds or revokes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from warden import operations
from warden.cli.auth import Claimed, KeyFile, TokenFile, check_claim, credential, gate
from warden.cli.options import Config, StateDir, fail, state_dir_of
from warden.domain.errors import ValidationError
from warden.domain.users import PERMISSIONS, ROLES, may
from warden.governance import identity
from warden.store.location import has_log, open_event_store

user_app = typer.Typer(
    help=(
        "Who may do what: add, list and revoke people.\n\n"
        "Roles, each of which may also do what the roles before it may:\n"
        + "\n".join(
            f"- {role}: {', '.join(a for a in PERMISSIONS if PERMISSIONS[a] == role)}"
            for role in ROLES
        )
    ),
    no_args_is_help=True,
)
console = Console()


_fail = fail


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The person's user name, e.g. alice.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "viewer",
    public_key: Annotated[
        Path | None,
        typer.Option(help="Their Ed25519 public key (e.g. id_ed25519.pub): needed to approve."),
    ] = None,
    save_token: Annotated[
        Path | None,
        typer.Option(help="Write their new token to this file (mode 0600) instead of showing it."),
    ] = None,
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Register a person with a role; issues their personal token (shown once).

    While no admin exists, `warden user add NAME --role admin` needs no credential: that is
    how the first admin is made. After that an admin's credential is needed.
    """
    state_dir = state_dir_of(state_dir, config)
    try:
        by = gate(state_dir, "users", (token_file, key, claimed), until_an_admin=True)
    except ValidationError as exc:
        raise _fail(str(exc)) from exc
    state_dir.mkdir(parents=True, exist_ok=True)
    store = open_event_store(state_dir)
    try:
        text = ""
        if public_key is not None:
            try:
                text = public_key.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValidationError(
                    f"cannot read {public_key}: {exc}", field="--public-key", fix="give a .pub file"
                ) from exc
        key_text = identity.public_key_text(text) if text else ""
        now = datetime.now(UTC)
        _, token = operations.add_user(store, name, role, by, now, public_key=key_text)
    except ValidationError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    if by is None:
        console.print(f"no admin existed yet: {name} is the first admin", highlight=False)
    added = f"added {name} as {role}" + (
        f" with key {identity.fingerprint(key_text)}" if key_text else ""
    )
    console.print(added, highlight=False)
    if not key_text and may(role, "approve"):
        console.print(
            f"note: {name} has no key, so cannot approve (approvals are signed);"
            " revoke and add again with --public-key to give one",
            highlight=False,
        )
    if save_token is not None:
        fd = os.open(save_token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
        console.print(f"token written to {save_token} (keep it secret)", highlight=False)
    else:
        console.print(
            f"token (shown once, keep it secret): {token}", highlight=False, soft_wrap=True
        )


@user_app.command("list")
def list_(config: Config = None, state_dir: StateDir = None) -> None:
    """List every registration: name, role, key, who added it, and revocations."""
    state_dir = state_dir_of(state_dir, config)
    if not has_log(state_dir):
        raise _fail(f"no Warden state in {state_dir}/")
    store = open_event_store(state_dir)
    try:
        registry = operations.users(store)
    finally:
        store.close()
    if not registry.users:
        console.print("no users yet (the first: `warden user add NAME --role admin`)")
        return
    table = Table("user", "role", "key", "added", "by", "revoked")
    for user in registry.users:
        shown_key = identity.fingerprint(user.public_key) if user.public_key else "-"
        revoked = f"{user.revoked_at} by {user.revoked_by}" if user.revoked_at else "-"
        table.add_row(user.name, user.role, shown_key, user.added_at, user.added_by, revoked)
    console.print(table)


@user_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Whose credentials to revoke.")],
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Revoke a person's token and key at once; their pending approvals stop counting."""
    state_dir = state_dir_of(state_dir, config)
    if not has_log(state_dir):
        raise _fail(f"no Warden state in {state_dir}/")
    store = open_event_store(state_dir)
    try:
        by = operations.authenticate(store, credential(token_file, key), "users")
        check_claim(by, claimed)
        operations.revoke_user(store, name, by, datetime.now(UTC))
    except ValidationError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(f"revoked {name}", highlight=False)
