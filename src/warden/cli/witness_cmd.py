"""`warden witness ...`: run a checkpoint witness (C2SP tlog-witness) for audit logs. CLI edge.

Run it on another host, or at least as another user, than the Warden it witnesses: its
key and its record of each log's size must be out of reach of whoever can write the log.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from warden.audit.cosign import Cosigner
from warden.audit.state import make_private_dir, parse_verifier_arg
from warden.audit.witness import PATH, Witness, make_server
from warden.cli.options import fail
from warden.domain.errors import ConfigError, WardenError

if TYPE_CHECKING:
    from warden.audit.checkpoint import Verifier

witness_app = typer.Typer(
    help="A checkpoint witness: cosigns audit checkpoints that extend what it saw before.",
    no_args_is_help=True,
)
KeyPath = Annotated[
    Path,
    typer.Option("--key", help="The witness's private key file (created 0600 if missing)."),
]
DEFAULT_NAME = "warden.local/witness"


def _fail(message: str) -> typer.Exit:
    return fail(message, 1, label="witness failed")


def load_cosigner(path: Path, name: str) -> Cosigner:
    """The witness key in ``path``, generated (0600, in a 0700 directory) when missing.

    Raises:
        ConfigError: the file is open to others or is not a witness key.
    """
    if not path.exists():
        make_private_dir(path.parent)
        fresh = Cosigner.generate(name)
        with contextlib.suppress(FileExistsError):  # another process created it first
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (fresh.encode_private() + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: the key file is open to group or others; run `chmod 600 {path}`"
        )
    try:
        return Cosigner.parse(path.read_text("ascii"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a witness key file") from None


@witness_app.command()
def serve(
    key: KeyPath,
    state: Annotated[
        Path, typer.Option("--state", help="Where the witness records each log's latest size.")
    ],
    log: Annotated[
        list[str],
        typer.Option("--log", help="A log's verifier key (its name is the origin), or a file."),
    ],
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 7380,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    name: Annotated[str, typer.Option("--name", help="Name of a key created here.")] = DEFAULT_NAME,
) -> None:
    """Serve POST /add-checkpoint until interrupted; prints the witness's public key."""
    try:
        cosigner = load_cosigner(key, name)
        logs: dict[str, list[Verifier]] = {}
        for value in log:
            for verifier in parse_verifier_arg(value):
                logs.setdefault(verifier.name, []).append(verifier)
        witness = Witness(cosigner, state, logs)
        server = make_server(witness, host, port)
    except (WardenError, OSError) as exc:
        raise _fail(str(exc)) from None
    bound = server.server_address[1]
    typer.echo(f"witness key {cosigner.verifier.encode()}")
    typer.echo(f"witnessing {', '.join(sorted(logs))}")
    typer.echo(f"listening on http://{host}:{bound}{PATH}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@witness_app.command("key")
def show_key(
    key: KeyPath,
    name: Annotated[str, typer.Option("--name", help="Name of a key created here.")] = DEFAULT_NAME,
) -> None:
    """Print the witness's public cosignature key (creating the key on first use)."""
    try:
        cosigner = load_cosigner(key, name)
    except (WardenError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(cosigner.verifier.encode())
