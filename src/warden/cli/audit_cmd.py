"""`warden audit ...`: verify the audit log, prove entries, manage signing keys. CLI edge.

Every command exits 0 on success and 1 with a one-line reason on failure.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.audit import state
from warden.audit.checkpoint import SignedCheckpoint, Verifier, encode_base64
from warden.audit.log import AuditLog
from warden.audit.merkle import verify_consistency
from warden.audit.proofs import SUFFIX, build_proof, verify_proof
from warden.audit.state import AuditPaths, open_audit, parse_verifier_arg, trusted_verifiers
from warden.domain.errors import AuditVerificationError, WardenError

if TYPE_CHECKING:
    from collections.abc import Iterator

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify it, prove entries, manage signing keys.",
    no_args_is_help=True,
)

StateDir = Annotated[
    Path, typer.Option("--state-dir", help="The Warden state directory.", show_default=True)
]
Keys = Annotated[
    list[str] | None,
    typer.Option(
        "--key",
        help="A trusted verifier key, or a file of them (repeatable). "
        "Default: the state directory's current and retired keys.",
    ),
]
DEFAULT_STATE = Path(".warden")


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _failing(what: str) -> Iterator[None]:
    """Turn a Warden error into a one-line reason on stderr and exit status 1."""
    try:
        yield
    except AuditVerificationError as exc:
        where = f"first bad entry: {exc.index}; " if exc.index >= 0 else ""
        _err().print(f"[bold red]{escape(what)} FAILED[/]: {where}{escape(str(exc))}")
        raise typer.Exit(1) from None
    except (WardenError, OSError) as exc:
        _err().print(f"[bold red]{escape(what)} failed[/]: {escape(str(exc))}")
        raise typer.Exit(1) from None


def _verifiers(keys: list[str] | None, paths: AuditPaths) -> list[Verifier]:
    if keys:
        out: list[Verifier] = []
        for value in keys:
            out.extend(parse_verifier_arg(value))
        return out
    return trusted_verifiers(paths)


def _summary(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, escape(value))
    return table


@audit_app.command()
def verify(state_dir: StateDir = DEFAULT_STATE, key: Keys = None) -> None:
    """Verify the whole log, byte for byte, against its signed checkpoints."""
    paths = AuditPaths.for_state(state_dir)
    with _failing("audit verify"):
        verifiers = _verifiers(key, paths)
        report = AuditLog(paths.log).verify(verifiers)
    latest = report.latest
    rows = [
        ("log", str(paths.log)),
        ("entries", str(report.size)),
        ("root", report.root.hex()),
        ("checkpoints verified", str(report.checkpoints)),
        ("latest checkpoint", f"size {latest.size}" if latest else "none"),
        ("unsigned entries", str(report.unsigned)),
        ("signed by", ", ".join(report.signers) or "-"),
    ]
    _out().print(_summary("[green]audit log verifies[/]", rows))


@audit_app.command()
def prove(
    entry: Annotated[int, typer.Argument(help="The entry index.", min=0)],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help=f"Proof file (default ENTRY{SUFFIX}).")
    ] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Write a C2SP tlog-proof that ENTRY is in the log, under a signed checkpoint."""
    target = out or Path(f"{entry}{SUFFIX}")
    with _failing("audit prove"):
        log, signer = open_audit(state_dir)
        if entry >= log.size:
            raise AuditVerificationError(f"the log has {log.size} entries, no entry {entry}")
        latest = log.latest_checkpoint()
        signed_by = {(s.name, s.key_id) for s in latest.note.signatures} if latest else set()
        if (
            latest is None
            or latest.checkpoint.size <= entry
            or (signer.name, signer.key_id) not in signed_by
        ):
            latest = log.sign_checkpoint([signer])
        proof = build_proof(log, entry, latest)
        target.write_text(proof.encode(), encoding="utf-8")
    _out().print(
        f"wrote {escape(str(target))}: entry {entry} in the tree of size "
        f"{latest.checkpoint.size}, {len(proof.hashes)} proof hashes"
    )


@audit_app.command()
def key(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Print the public verifier key (creating the signing key on first use)."""
    with _failing("audit key"):
        _, signer = open_audit(state_dir)
    typer.echo(signer.verifier.encode())


@audit_app.command()
def keygen(
    name: Annotated[str, typer.Argument(help="Key name and log origin, e.g. example.org/audit.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Private key file (default: the state's signer.key)."),
    ] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Generate a signing key into a new 0600 file and print its verifier key."""
    paths = AuditPaths.for_state(state_dir)
    with _failing("audit keygen"):
        if out is None:
            paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            signer = state.keygen(name, paths.signer_key)
            state.publish_verifier(paths, state.read_signer_key(paths.signer_key))
        else:
            signer = state.keygen(name, out)
    typer.echo(signer.verifier.encode())


@audit_app.command()
def rotate(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Replace the signing key; the current tree is signed by both old and new keys."""
    with _failing("audit rotate"):
        old, new = state.rotate(state_dir)
    _out().print(
        _summary(
            "[green]signing key rotated[/]",
            [("retired", old.encode()), ("current", new.encode())],
        )
    )


@audit_app.command()
def checkpoint(
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Also write the checkpoint to a file.")
    ] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Sign a checkpoint of the log now (after checking it extends the previous one)."""
    with _failing("audit checkpoint"):
        log, signer = open_audit(state_dir)
        signed = log.sign_checkpoint([signer])
        if out is not None:
            out.write_text(signed.encode(), encoding="utf-8")
    if out is None:
        typer.echo(signed.encode(), nl=False)
    else:
        _out().print(
            f"wrote {escape(str(out))}: checkpoint of size {signed.checkpoint.size}, "
            f"root {signed.checkpoint.root.hex()}"
        )


@audit_app.command("check-bundle")
def check_bundle(
    file: Annotated[Path, typer.Argument(help="A .tlog-proof file.")],
    key: Annotated[
        list[str], typer.Option("--key", help="The log's verifier key, or a file of keys.")
    ],
) -> None:
    """Check a proof file offline, with only the log's public key."""
    with _failing("audit check-bundle"):
        verifiers = [v for value in key for v in parse_verifier_arg(value)]
        checked = verify_proof(file.read_bytes(), verifiers)
        record = checked.record
    cp = checked.checkpoint.checkpoint
    rows = [
        ("entry", str(checked.index)),
        ("log", cp.origin),
        ("tree size", str(cp.size)),
        ("root", cp.root.hex()),
        ("signed by", ", ".join(v.encode() for v in checked.signers)),
        ("event", f"{record.get('type', '?')} {record.get('event_id', '')}".strip()),
    ]
    _out().print(_summary("[green]proof verifies[/]", rows))


@audit_app.command()
def consistency(
    old: Annotated[Path, typer.Argument(help="The older signed checkpoint file.")],
    new: Annotated[Path, typer.Argument(help="The newer signed checkpoint file.")],
    state_dir: StateDir = DEFAULT_STATE,
    key: Keys = None,
) -> None:
    """Prove from the local log that checkpoint NEW extends checkpoint OLD."""
    paths = AuditPaths.for_state(state_dir)
    with _failing("audit consistency"):
        verifiers = _verifiers(key, paths)
        first = SignedCheckpoint.parse(old.read_bytes())
        second = SignedCheckpoint.parse(new.read_bytes())
        first.verify(verifiers)
        second.verify(verifiers, first.checkpoint.origin)
        a, b = first.checkpoint, second.checkpoint
        if a.size > b.size:
            raise AuditVerificationError(f"OLD has size {a.size}, larger than NEW's {b.size}")
        log = AuditLog(paths.log)
        if log.size < b.size:
            raise AuditVerificationError(
                f"the local log has {log.size} entries, fewer than NEW's {b.size}"
            )
        proof = log.consistency_proof(a.size, b.size)
        verify_consistency(a.size, b.size, a.root, b.root, proof)
    rows = [
        ("old", f"size {a.size}, root {a.root.hex()}"),
        ("new", f"size {b.size}, root {b.root.hex()}"),
        ("proof", " ".join(encode_base64(h) for h in proof) or "(empty)"),
    ]
    _out().print(_summary("[green]checkpoints are consistent[/]", rows))
