"""The audit state directory and the signing key kept outside it, and opening them. Audit plane.

```
<state>/audit/log.jsonl               the log
<state>/audit/log.jsonl.checkpoints   signed checkpoints, append-only
<state>/audit/verifier.pub            the current public verifier key
<state>/audit/verifier.retired        public keys rotated out, one per line
<state>/audit/key-path                where the signing key is, when not the default
~/.config/warden/audit.key            private key, 0600 in a 0700 directory (default;
                                      audit.key_path or WARDEN_AUDIT_KEY instead)
```

The private key never lies beside the log: whoever can write the state directory could
otherwise re-sign a rewritten log. Private keys are read only from the key file or the
``WARDEN_AUDIT_KEY`` variable and are never printed or logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from warden.audit.checkpoint import Signer, Verifier
from warden.audit.log import AuditLog
from warden.domain.errors import ConfigError
from warden.store.private import config_dir, fsync_dir

if TYPE_CHECKING:
    from collections.abc import Mapping

KEY_ENV = "WARDEN_AUDIT_KEY"
"""The environment variable that may hold the signer key string instead of the file."""
DEFAULT_KEY_NAME = "warden.local/audit"
KEY_POINTER = "key-path"
"""The file in ``<state>/audit`` naming a signing key kept elsewhere than the default."""

_log = logging.getLogger("warden.audit")


def default_key_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the signing key lives unless configured otherwise."""
    return config_dir(environ) / "audit.key"


@dataclass(frozen=True, slots=True)
class AuditPaths:
    """Where the audit files of one state directory live, and its signing key."""

    root: Path
    key: Path

    @classmethod
    def for_state(
        cls,
        state_dir: Path | str,
        key_path: Path | str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> AuditPaths:
        """The audit paths under ``state_dir`` (``<state>/audit``) and the key file.

        The key is ``key_path`` when given, else the one the state directory points to
        (a configured key), else :func:`default_key_path`.
        """
        root = Path(state_dir) / "audit"
        if key_path is None:
            try:
                pointed = (root / KEY_POINTER).read_text("utf-8").strip()
            except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
                pointed = ""
            key_path = Path(pointed) if pointed else default_key_path(environ)
        return cls(root, Path(key_path))

    @property
    def log(self) -> Path:
        """The log file."""
        return self.root / "log.jsonl"

    @property
    def checkpoints(self) -> Path:
        """The checkpoints file."""
        return self.root / "log.jsonl.checkpoints"

    @property
    def signer_key(self) -> Path:
        """The private key file (outside the state directory)."""
        return self.key

    @property
    def legacy_signer_key(self) -> Path:
        """Where earlier versions kept the private key: beside the log."""
        return self.root / "signer.key"

    @property
    def key_pointer(self) -> Path:
        """The file naming a key kept elsewhere than the default."""
        return self.root / KEY_POINTER

    @property
    def verifier_key(self) -> Path:
        """The current public key file."""
        return self.root / "verifier.pub"

    @property
    def retired_keys(self) -> Path:
        """The public keys rotated out."""
        return self.root / "verifier.retired"


def write_signer_key(signer: Signer, path: Path, *, replace: bool = False) -> None:
    """Write a private key file with mode 0600, durably.

    Raises:
        ConfigError: the file exists and ``replace`` is false.
    """
    make_private_dir(path.parent)
    target = path.with_name(path.name + ".tmp") if replace else path
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    if replace:
        target.unlink(missing_ok=True)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists; refusing to overwrite a key (use `warden audit rotate`)"
        ) from None
    try:
        os.write(fd, (signer.encode_private() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)
    fsync_dir(path.parent)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) for secrets: the last level mode 0700."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)


def read_signer_key(path: Path) -> Signer:
    """Read a private key file; it must not be readable by group or others.

    Raises:
        ConfigError: the file is missing, too open, or not a signer key.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such key file (create one with `warden audit keygen`)"
        ) from None
    mode = info.st_mode
    if info.st_uid != os.getuid():
        raise ConfigError(f"{path}: the key file belongs to another user; use a key of your own")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: the key file is open to group or others; run `chmod 600 {path}`"
        )
    if path.parent.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{path.parent}: the key's directory is writable by others, who could swap the "
            f"key; run `chmod 700 {path.parent}`"
        )
    try:
        return Signer.parse(path.read_text("ascii"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a signer key file") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_verifiers(path: Path) -> list[Verifier]:
    """The verifier keys in a file, one per line (blank lines and ``#`` comments skipped)."""
    out = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            try:
                out.append(Verifier.parse(text))
            except ConfigError as exc:
                raise ConfigError(f"{path} line {number}: {exc}") from None
    return out


def parse_verifier_arg(value: str) -> list[Verifier]:
    """Verifier keys from a command-line value: a key string or a file of keys."""
    path = Path(value)
    if "+" not in value or path.is_file():
        try:
            return read_verifiers(path)
        except FileNotFoundError:
            raise ConfigError(f"{value}: neither a verifier key nor a file of keys") from None
    return [Verifier.parse(value)]


def trusted_verifiers(paths: AuditPaths) -> list[Verifier]:
    """The current verifier key and every retired one found in the state directory."""
    out: list[Verifier] = []
    for path in (paths.verifier_key, paths.retired_keys):
        if path.exists():
            out.extend(v for v in read_verifiers(path) if v not in out)
    return out


def load_signer(
    paths: AuditPaths,
    *,
    name: str = DEFAULT_KEY_NAME,
    environ: Mapping[str, str] | None = None,
    create: bool = True,
) -> Signer:
    """The signer key: from ``WARDEN_AUDIT_KEY`` if set, else the key file.

    With ``create``, a missing key file is generated (named ``name``, mode 0600).

    Raises:
        ConfigError: the key is malformed, or missing and ``create`` is false.
    """
    env = os.environ if environ is None else environ
    value = env.get(KEY_ENV, "").strip()
    if value:
        try:
            return Signer.parse(value)
        except ConfigError as exc:
            raise ConfigError(f"{KEY_ENV}: {exc}") from None
    migrate_legacy_key(paths)
    if not paths.signer_key.exists() and create:
        with contextlib.suppress(ConfigError):  # another process created it first
            write_signer_key(Signer.generate(name), paths.signer_key)
    return read_signer_key(paths.signer_key)


def check_key_outside(paths: AuditPaths) -> None:
    """Refuse a signing key inside the state directory.

    Raises:
        ConfigError: the key path lies under the state directory.
    """
    state = paths.root.parent.resolve()
    key = paths.key.resolve()
    if key == state or state in key.parents:
        raise ConfigError(
            f"audit key {paths.key} is inside the state directory {paths.root.parent}: "
            "whoever can write the log could re-sign it; set audit.key_path to a file "
            f"outside it (default {default_key_path()})"
        )


def migrate_legacy_key(paths: AuditPaths) -> None:
    """Move a key left beside the log by an earlier version to the key path.

    Moving keeps every checkpoint verifying; the key may have been copied while it lay in
    the state directory, so the message advises a rotation.

    Raises:
        ConfigError: both places hold a key and they differ (the user must choose).
    """
    legacy = paths.legacy_signer_key
    if not legacy.exists():
        return
    if paths.key.exists():
        if legacy.read_bytes() == paths.key.read_bytes():
            legacy.unlink()
            return
        raise ConfigError(
            f"{legacy}: a signing key inside the state directory, and another at "
            f"{paths.key}; remove the one that is not this log's key (compare them with "
            "`warden audit key`)"
        )
    make_private_dir(paths.key.parent)
    tmp = paths.key.with_name(paths.key.name + ".tmp")
    shutil.copyfile(legacy, tmp)
    os.chmod(tmp, 0o600)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, paths.key)
    fsync_dir(paths.key.parent)
    legacy.unlink()
    _log.warning(
        "moved the audit signing key out of the state directory: %s -> %s (it lay where "
        "whoever writes the log could read it: consider `warden audit rotate`)",
        legacy,
        paths.key,
    )


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def publish_verifier(paths: AuditPaths, signer: Signer) -> None:
    """Make ``verifier.pub`` the signer's public key, retiring any other key found there."""
    current = signer.verifier
    if paths.verifier_key.exists():
        previous = read_verifiers(paths.verifier_key)
        if previous == [current]:
            return
        retired = read_verifiers(paths.retired_keys) if paths.retired_keys.exists() else []
        for old in previous:
            if old != current and old not in retired:
                _append_line(paths.retired_keys, old.encode())
    _write_text_atomically(paths.verifier_key, current.encode() + "\n")


def open_audit(
    state_dir: Path | str,
    *,
    name: str = DEFAULT_KEY_NAME,
    environ: Mapping[str, str] | None = None,
    key_path: Path | str | None = None,
) -> tuple[AuditLog, Signer]:
    """Open the audit log of a state directory and its signer, creating what is missing.

    The runtime calls this once at start; then ``AuditProjector(store, log).catch_up()``
    and ``log.sign_checkpoint([signer])`` after each batch.

    Args:
        state_dir: the Warden state directory (``.warden`` by default in the CLI).
        name: the key name, and so the log origin, for a key created here.
        environ: where to look for ``WARDEN_AUDIT_KEY`` (``os.environ`` by default).
        key_path: the private key file (by default the one the state directory names,
            else :func:`default_key_path`); remembered in the state directory.
    """
    paths = AuditPaths.for_state(state_dir, key_path, environ=environ)
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_key_outside(paths)
    if key_path is not None:
        remember_key_path(paths, environ)
    signer = load_signer(paths, name=name, environ=environ)
    publish_verifier(paths, signer)
    return AuditLog(paths.log), signer


def remember_key_path(paths: AuditPaths, environ: Mapping[str, str] | None = None) -> None:
    """Name the key in the state directory when it is not the default one.

    The pointer only says where to find the key for signing; verification trusts the
    pinned keys of the trust store, never a file of the state directory.
    """
    key = paths.key.resolve()
    if key == default_key_path(environ).resolve():
        paths.key_pointer.unlink(missing_ok=True)
        return
    current = paths.key_pointer.read_text("utf-8") if paths.key_pointer.exists() else ""
    if current.strip() != str(key):
        _write_text_atomically(paths.key_pointer, f"{key}\n")


def keygen(name: str, out: Path) -> Signer:
    """Generate a key named ``name`` into a new 0600 file ``out``; return the signer.

    Raises:
        ConfigError: ``out`` exists.
    """
    signer = Signer.generate(name)
    write_signer_key(signer, out)
    return signer


def rotate(
    state_dir: Path | str, *, environ: Mapping[str, str] | None = None
) -> tuple[Verifier, Verifier]:
    """Replace the signer key with a new one of the same name; return (old, new) verifiers.

    The current tree is signed by both keys (a transition checkpoint), so a verifier that
    trusts only the old key still checks it; the old public key is kept in
    ``verifier.retired`` so older checkpoints keep verifying, and the old private key is
    overwritten.

    Raises:
        ConfigError: the key comes from ``WARDEN_AUDIT_KEY`` (rotate it where it is kept).
    """
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV, "").strip():
        raise ConfigError(
            f"the signer key comes from {KEY_ENV}; generate a new one with "
            "`warden audit keygen NAME --out FILE`, put it where the variable is kept and "
            "restart (the old public key goes in verifier.retired)"
        )
    paths = AuditPaths.for_state(state_dir, environ=env)
    log, old = open_audit(state_dir, environ=env)
    new = Signer.generate(old.name)
    log.sign_checkpoint([new, old])
    retired = read_verifiers(paths.retired_keys) if paths.retired_keys.exists() else []
    if old.verifier not in retired:
        _append_line(paths.retired_keys, old.verifier.encode())
    write_signer_key(new, paths.signer_key, replace=True)
    _write_text_atomically(paths.verifier_key, new.verifier.encode() + "\n")
    return old.verifier, new.verifier
