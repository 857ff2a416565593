"""Hot reload of a policy bundle; a bad bundle never replaces a good one. Control plane."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.errors import ConfigError
from warden.governance.policy import SCHEMA_SUFFIX, PolicyBundle

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class Reload:
    """What a poll found: a new bundle, or the error that kept the old one serving."""

    bundle: PolicyBundle | None
    error: str = ""


def _stamp(directory: Path) -> tuple[tuple[str, int, int], ...]:
    files = [*directory.glob("*.cedar"), *directory.glob(f"*{SCHEMA_SUFFIX}")]
    stamps = []
    for path in sorted(files):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        stamps.append((path.name, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


class BundleWatcher:
    """Keeps the running bundle, reloading it when its files change."""

    def __init__(self, directory: Path, name: str = "") -> None:
        self.directory = directory
        self.name = name
        self.current = PolicyBundle(directory, name)
        self._stamp = _stamp(directory)

    def poll(self) -> Reload | None:
        """Reload if the files changed; None when nothing changed."""
        stamp = _stamp(self.directory)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            candidate = PolicyBundle(self.directory, self.name)
        except (ConfigError, OSError) as exc:
            return Reload(None, str(exc))
        if candidate.version == self.current.version:
            return None
        self.current = candidate
        return Reload(candidate)
