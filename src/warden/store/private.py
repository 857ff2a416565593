"""State files only their owner can read: 0600 files in a 0700 directory. Store (shell).

The event log holds what came in, the audit directory a signing key, the process logs
whatever the services print: none of it is for other users of the host.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DIR_MODE", "FILE_MODE", "config_dir", "fsync_dir", "private_dir", "private_file"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in the directory ``path`` durable (fsync the directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing, and make it the owner's alone."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # not ours to change: leave it as it is
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if missing; either way readable and writable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    with contextlib.suppress(PermissionError):
        os.chmod(path, FILE_MODE)
    return path


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Warden's per-user configuration directory: ``$XDG_CONFIG_HOME/warden``.

    ``~/.config/warden`` when the variable is unset, as the XDG base directory spec says.
    Keys live here by default (the audit signing key, the originals key): outside every
    state directory, so whoever can write the state cannot read or re-sign with them.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".config") / "warden"
