"""`warden audit ...`: verify the audit log, prove entries, manage signing keys. CLI edge.

Every command exits 0 on success and 1 with a one-line reason on failure.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.audit import state
from warden.audit.checkpoint import SignedCheckpoint, Verifier, encode_base64
from warden.audit.cosign import CosignatureVerifier, cosigned_by
from warden.audit.log import AuditLog
from warden.audit.merkle import verify_consistency
from warden.audit.proofs import SUFFIX, build_proof, verify_proof
from warden.audit.publish import CheckpointPublisher, check_published
from warden.audit.state import AuditPaths, open_audit, parse_verifier_arg, trusted_verifiers
from warden.audit.storecheck import crosscheck_store
from warden.audit.trust import TrustStore, pin, verify_trusted
from warden.cli.auth import Claimed, KeyFile, TokenFile, gate
from warden.cli.options import Config, StateDir, error_text, state_dir_of
from warden.domain.errors import AuditVerificationError, WardenError
from warden.store.location import has_log, open_event_store

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from warden.audit.verify import VerifyReport

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify it, prove entries, manage signing keys.",
    no_args_is_help=True,
)

Keys = Annotated[
    list[str] | None,
    typer.Option(
        "--key",
        help="A trusted verifier key, or a file of them (repeatable). "
        "Default: the state directory's current and retired keys.",
    ),
]


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
        _err().print(error_text(f"{where}{exc}", f"{what} FAILED"))
        raise typer.Exit(1) from None
    except (WardenError, OSError) as exc:
        _err().print(error_text(str(exc), f"{what} failed"))
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


TrustDir = Annotated[
    Path | None,
    typer.Option(
        "--trust-dir",
        help="The trust store: pinned keys and the last verified checkpoint of each state "
        "directory (default ~/.config/warden/trusted).",
    ),
]


@audit_app.command()
def verify(
    config: Config = None,
    state_dir: StateDir = None,
    key: Keys = None,
    trust_dir: TrustDir = None,
    witness_key: Annotated[
        list[str] | None,
        typer.Option(
            "--witness-key",
            help="A witness's cosignature key (repeatable): the latest checkpoint must "
            "carry its valid cosignature.",
        ),
    ] = None,
    published: Annotated[
        str | None,
        typer.Option(
            "--published",
            help="PostgreSQL DSN of the store the checkpoints are published to: every "
            "published checkpoint must match the local log.",
        ),
    ] = None,
    published_schema: Annotated[
        str, typer.Option("--published-schema", help="Schema of the published checkpoints.")
    ] = "warden",
    store: Annotated[
        bool,
        typer.Option(
            "--store",
            help="Also cross-check the event store: every audited event must be its audit "
            "entry, byte for byte.",
        ),
    ] = False,
) -> None:
    """Verify the log byte for byte, against its checkpoints and the trusted checkpoint.

    Reads only the log file, its checkpoints and public keys: every byte is checked, each
    checkpoint's signature and tree against the entries, and the log must extend the
    checkpoint last trusted for this state directory. Exit 1 with the first problem.

    Example: warden audit verify -s .warden --store
    """
    state_dir = state_dir_of(state_dir, config)
    paths = AuditPaths.for_state(state_dir)
    log = AuditLog(paths.log)
    extra: list[tuple[str, str]] = []
    with _failing("audit verify"):
        pinned = [v for value in key for v in parse_verifier_arg(value)] if key else []
        witnesses = [CosignatureVerifier.parse(w) for w in witness_key or ()]
        checked = verify_trusted(
            log,
            paths,
            TrustStore.at(trust_dir),
            pinned=pinned,
            now=_now(),
            check=lambda report, keys: _extra_checks(
                log, state_dir, report, keys, witnesses, published, published_schema, store
            ),
        )
        extra = checked.extra
    report, entry = checked.report, checked.entry
    latest = report.latest
    rows = [
        ("log", str(paths.log)),
        ("entries", str(report.size)),
        ("root", report.root.hex()),
        ("checkpoints verified", str(report.checkpoints)),
        ("latest checkpoint", f"size {latest.size}" if latest else "none"),
        ("unsigned entries", str(report.unsigned)),
        ("signed by", ", ".join(report.signers) or "-"),
        ("trusted checkpoint", f"size {entry.size} ({checked.entry_path})"),
        *extra,
    ]
    for note in checked.notes:
        _err().print(f"[yellow]{escape(note)}[/]")
    _out().print(_summary("[green]audit log verifies[/]", rows))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _extra_checks(
    log: AuditLog,
    state_dir: Path,
    report: VerifyReport,
    keys: Sequence[Verifier],
    witnesses: Sequence[CosignatureVerifier],
    published: str | None,
    published_schema: str,
    store: bool,
) -> list[tuple[str, str]]:
    """The optional checks of ``verify``; each raises on the first problem."""
    rows: list[tuple[str, str]] = []
    latest = report.latest
    if witnesses:
        if latest is None:
            raise AuditVerificationError("no checkpoint to find witness cosignatures on", -1)
        notes = [s.note for s in log.checkpoints() if s.checkpoint == latest]
        found = cosigned_by(notes, witnesses)
        for witness in witnesses:
            if witness not in found:
                raise AuditVerificationError(
                    f"the latest checkpoint (size {latest.size}) has no valid cosignature "
                    f"from witness {witness.name} (was the witness down, or the "
                    "checkpoint rewritten?)",
                    -1,
                )
            when = datetime.fromtimestamp(found[witness], UTC).isoformat(timespec="seconds")
            rows.append(("witnessed by", f"{witness.name} at {when}"))
    if published:
        if not keys:
            raise AuditVerificationError(
                "no trusted key to check the published checkpoints with: give --key PUB", -1
            )
        origin = latest.origin if latest else keys[0].name
        items = CheckpointPublisher(published, published_schema).read(origin)
        count = check_published(log, items, keys, origin)
        rows.append(("published checkpoints", f"{count} match"))
    if store:
        if not has_log(state_dir):
            raise AuditVerificationError(f"no event store in {state_dir}/", -1)
        events = open_event_store(state_dir)
        try:
            count = crosscheck_store(events, log)
        finally:
            events.close()
        rows.append(("event store", f"{count} audited events match the log"))
    return rows


@audit_app.command()
def trust(
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="The log's verifier key to pin, or a file of keys."),
    ] = None,
    forget: Annotated[
        bool,
        typer.Option(
            "--forget",
            help="Drop what is trusted for this state directory (after removing it on "
            "purpose); the next verify pins again.",
        ),
    ] = False,
    config: Config = None,
    state_dir: StateDir = None,
    trust_dir: TrustDir = None,
) -> None:
    """Pin the log's public key in the trust store (instead of trusting it on first use)."""
    state_dir = state_dir_of(state_dir, config)
    paths = AuditPaths.for_state(state_dir)
    store = TrustStore.at(trust_dir)
    with _failing("audit trust"):
        if forget:
            store.entry_path(state_dir).unlink(missing_ok=True)
            _out().print(f"forgot what was trusted for {escape(str(state_dir))}")
            return
        keys = [v for value in key or () for v in parse_verifier_arg(value)]
        entry = pin(store, paths, keys, now=_now())
    _out().print(
        _summary(
            "[green]pinned[/]",
            [
                ("state dir", entry.state_dir),
                ("keys", ", ".join(k.encode() for k in entry.keys)),
                ("trusted checkpoint", f"size {entry.size}"),
                ("entry", str(store.entry_path(state_dir))),
            ],
        )
    )


@audit_app.command()
def prove(
    entry: Annotated[int, typer.Argument(help="The entry index.", min=0)],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help=f"Proof file (default ENTRY{SUFFIX}).")
    ] = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Write a C2SP tlog-proof that ENTRY is in the log, under a signed checkpoint."""
    state_dir = state_dir_of(state_dir, config)
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
def key(config: Config = None, state_dir: StateDir = None) -> None:
    """Print the public verifier key (creating the signing key on first use)."""
    state_dir = state_dir_of(state_dir, config)
    with _failing("audit key"):
        _, signer = open_audit(state_dir)
    typer.echo(signer.verifier.encode())


@audit_app.command()
def keygen(
    name: Annotated[str, typer.Argument(help="Key name and log origin, e.g. example.org/audit.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Private key file (default: the key path, outside the state)."),
    ] = None,
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Generate a signing key into a new 0600 file and print its verifier key.

    Into the state (no --out) it takes an admin's credential once an admin exists
    (--token-file, WARDEN_TOKEN or --key); --out only writes a file and takes none.
    """
    state_dir = state_dir_of(state_dir, config)
    paths = AuditPaths.for_state(state_dir)
    with _failing("audit keygen"):
        if out is None:
            gate(state_dir, "audit.keys", (token_file, key, claimed), until_an_admin=True)
            paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            signer = state.keygen(name, paths.signer_key)
            state.publish_verifier(paths, state.read_signer_key(paths.signer_key))
        else:
            signer = state.keygen(name, out)
    typer.echo(signer.verifier.encode())


@audit_app.command()
def rotate(
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Replace the signing key; the current tree is signed by both old and new keys.

    Takes an admin's credential once an admin exists (--token-file, WARDEN_TOKEN or --key).
    """
    state_dir = state_dir_of(state_dir, config)
    with _failing("audit rotate"):
        gate(state_dir, "audit.keys", (token_file, key, claimed), until_an_admin=True)
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
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Sign a checkpoint of the log now (after checking it extends the previous one)."""
    state_dir = state_dir_of(state_dir, config)
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
    config: Config = None,
    state_dir: StateDir = None,
    key: Keys = None,
) -> None:
    """Prove from the local log that checkpoint NEW extends checkpoint OLD."""
    state_dir = state_dir_of(state_dir, config)
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
