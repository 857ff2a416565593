"""Trust store: pinned keys and the last verified checkpoint, outside the state. Audit plane.

```
~/.config/warden/trusted/<state-dir slug>.json     (0600, in a 0700 directory)
{"state_dir": ..., "origin": ..., "keys": [vkey, ...],
 "size": N, "root": hex, "verified_at": ISO time}
```

One entry per state directory, so the entry that applies is found without reading anything
an intruder in the state directory could choose (such as a new origin). Each successful
``warden audit verify`` checks a consistency proof from the trusted checkpoint to the
current one, then advances it: a truncated, emptied, rewritten or re-signed log fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from warden.audit.checkpoint import Verifier
from warden.audit.merkle import verify_consistency
from warden.audit.state import load_signer, make_private_dir, read_verifiers
from warden.domain.errors import AuditVerificationError, ConfigError
from warden.store.private import config_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from warden.audit.checkpoint import SignedCheckpoint
    from warden.audit.log import AuditLog
    from warden.audit.state import AuditPaths
    from warden.audit.verify import VerifyReport


def default_trust_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``~/.config/warden/trusted`` (under ``$XDG_CONFIG_HOME`` when set)."""
    return config_dir(environ) / "trusted"


@dataclass(frozen=True, slots=True)
class TrustEntry:
    """What was trusted for one state directory: its keys and last verified checkpoint."""

    state_dir: str
    origin: str
    keys: tuple[Verifier, ...]
    size: int = 0
    root: bytes = b""
    verified_at: str = ""

    def encode(self) -> bytes:
        """The entry file's bytes (JSON, keys sorted)."""
        value = {
            "state_dir": self.state_dir,
            "origin": self.origin,
            "keys": [k.encode() for k in self.keys],
            "size": self.size,
            "root": self.root.hex(),
            "verified_at": self.verified_at,
        }
        return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes, where: Path) -> TrustEntry:
        """Parse an entry file.

        Raises:
            ConfigError: the file is not a trust entry.
        """
        try:
            value = json.loads(data)
            return cls(
                state_dir=str(value["state_dir"]),
                origin=str(value["origin"]),
                keys=tuple(Verifier.parse(str(k)) for k in value["keys"]),
                size=int(value["size"]),
                root=bytes.fromhex(str(value["root"])),
                verified_at=str(value["verified_at"]),
            )
        except (ValueError, KeyError, TypeError, ConfigError) as exc:
            raise ConfigError(
                f"{where}: not a trust entry ({exc}); remove it and pin again with "
                "`warden audit trust --key PUB`"
            ) from None


@dataclass(frozen=True, slots=True)
class TrustStore:
    """A directory of trust entries, one per state directory."""

    root: Path

    @classmethod
    def at(cls, trust_dir: Path | None = None) -> TrustStore:
        """The store in ``trust_dir`` (default :func:`default_trust_dir`)."""
        return cls(trust_dir if trust_dir is not None else default_trust_dir())

    def entry_path(self, state_dir: Path | str) -> Path:
        """The entry file for ``state_dir`` (named after its absolute path)."""
        full = str(Path(state_dir).resolve())
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", full).strip("_")[-60:]
        digest = hashlib.sha256(full.encode("utf-8")).hexdigest()[:12]
        return self.root / f"{readable}-{digest}.json"

    def load(self, state_dir: Path | str) -> TrustEntry | None:
        """The entry for ``state_dir``, or ``None`` before the first verify."""
        path = self.entry_path(state_dir)
        try:
            return TrustEntry.decode(path.read_bytes(), path)
        except FileNotFoundError:
            return None

    def save(self, entry: TrustEntry) -> Path:
        """Write ``entry`` atomically (0600 in a 0700 directory); return its path."""
        path = self.entry_path(entry.state_dir)
        make_private_dir(self.root)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, entry.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return path


@dataclass(frozen=True, slots=True)
class TrustedReport:
    """What :func:`verify_trusted` checked, and what it now trusts."""

    report: VerifyReport
    entry: TrustEntry
    previous: TrustEntry | None
    entry_path: Path
    first_use: bool
    notes: tuple[str, ...] = field(default=())
    extra: list[tuple[str, str]] = field(default_factory=list)


def _rotations(
    stored: Sequence[SignedCheckpoint], trusted: list[Verifier], candidates: Sequence[Verifier]
) -> list[Verifier]:
    """Trust a candidate key only where a trusted key co-signed its checkpoint (rotation)."""
    keys = list(trusted)
    grew = True
    while grew:
        grew = False
        for signed in stored:
            message = signed.note.text.encode("utf-8")
            trusted_sig = any(
                k.name == s.name and k.key_id == s.key_id and k.verify(message, s.signature)
                for s in signed.note.signatures
                for k in keys
            )
            if not trusted_sig:
                continue
            for s in signed.note.signatures:
                for k in candidates:
                    if (
                        k not in keys
                        and k.name == s.name
                        and k.key_id == s.key_id
                        and k.verify(message, s.signature)
                    ):
                        keys.append(k)
                        grew = True
    return keys


def _state_keys(paths: AuditPaths) -> list[Verifier]:
    out: list[Verifier] = []
    for path in (paths.verifier_key, paths.retired_keys):
        if path.exists():
            out.extend(v for v in read_verifiers(path) if v not in out)
    return out


def _first_use_keys(paths: AuditPaths) -> list[Verifier]:
    """On first use: the local signing key's public half if it is here, else the state's."""
    try:
        return [load_signer(paths, create=False).verifier]
    except ConfigError:
        return _state_keys(paths)


def verify_trusted(
    log: AuditLog,
    paths: AuditPaths,
    store: TrustStore,
    *,
    pinned: Sequence[Verifier] = (),
    now: str,
    check: Callable[[VerifyReport, Sequence[Verifier]], list[tuple[str, str]]] | None = None,
) -> TrustedReport:
    """Verify the log against the trust store's keys and last checkpoint, then advance it.

    Args:
        log: the audit log of the state directory ``paths.root.parent``.
        paths: its audit paths.
        store: the trust store.
        pinned: keys given on the command line; they replace the stored ones for this run
            and are kept on success.
        now: the time recorded with the advanced checkpoint.
        check: more checks to pass before the trusted checkpoint advances; they get the
            report and the trusted keys, and return rows for the summary.

    Raises:
        AuditVerificationError: the log does not verify, or does not extend the checkpoint
            trusted before; the trust entry is left as it was.
    """
    state_dir = str(paths.root.parent.resolve())
    previous = store.load(state_dir)
    first_use = previous is None and not pinned
    if pinned:
        keys = list(pinned)
    elif previous is not None and previous.keys:
        keys = list(previous.keys)
    else:
        keys = _first_use_keys(paths)
    stored = log.checkpoints()
    keys = _rotations(stored, keys, _state_keys(paths))
    origin = previous.origin if previous is not None and previous.origin else None
    if origin is None and pinned:
        origin = pinned[0].name
    report = log.verify(keys, origin=origin)
    notes: list[str] = []
    latest = report.latest
    if previous is not None and previous.size > 0:
        when = previous.verified_at or "an earlier verify"
        if report.size < previous.size:
            raise AuditVerificationError(
                f"the log has {report.size:,} entries but {previous.size:,} were verified "
                f"before at {when} (entries were removed, or the log was replaced; if on "
                "purpose: `warden audit trust --forget`)",
                report.size,
            )
        if latest is None or latest.size < previous.size:
            covered = latest.size if latest else 0
            raise AuditVerificationError(
                f"the latest signed checkpoint covers {covered:,} entries but a checkpoint of "
                f"{previous.size:,} was verified before at {when} (checkpoints were removed)",
                -1,
            )
        proof = log.consistency_proof(previous.size, latest.size)
        try:
            verify_consistency(previous.size, latest.size, previous.root, latest.root, proof)
        except AuditVerificationError:
            raise AuditVerificationError(
                f"the log is not consistent with the checkpoint trusted at {when} (size "
                f"{previous.size:,}): an entry it covered was changed",
                -1,
            ) from None
    extra = check(report, keys) if check is not None else []
    kept = [*keys, *(k for k in (previous.keys if previous else ()) if k not in keys)]
    entry = TrustEntry(
        state_dir=state_dir,
        origin=origin or (latest.origin if latest else (keys[0].name if keys else "")),
        keys=tuple(kept),
        size=latest.size if latest else 0,
        root=latest.root if latest else b"",
        verified_at=now,
    )
    if previous is not None and entry.size < previous.size:
        entry = previous  # never move the trusted checkpoint backwards
    path = store.save(entry)
    if first_use:
        pinned_keys = ", ".join(k.encode() for k in keys) or "none yet"
        notes.append(
            f"first use: pinned key(s) {pinned_keys} and the checkpoint of size "
            f"{entry.size:,} in {path}; later verifies must extend it"
        )
    return TrustedReport(report, entry, previous, path, first_use, tuple(notes), extra)


def pin(store: TrustStore, paths: AuditPaths, keys: Sequence[Verifier], *, now: str) -> TrustEntry:
    """Pin ``keys`` for a state directory (keeping a trusted checkpoint of the same origin)."""
    if not keys:
        raise ConfigError("give at least one key to trust: --key name+id+base64")
    state_dir = str(paths.root.parent.resolve())
    previous = store.load(state_dir)
    origin = keys[0].name
    if previous is not None and previous.origin == origin:
        entry = TrustEntry(state_dir, origin, tuple(keys), previous.size, previous.root, now)
    else:
        entry = TrustEntry(state_dir, origin, tuple(keys), verified_at=now)
    store.save(entry)
    return entry
