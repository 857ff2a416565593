"""Random tamperings of the audit log, its checkpoints and the event store, all detected.

The kinds and their detection live in :mod:`warden.testing.tamper`, shipped so users can
run them against their own deployments; this part runs them at the campaign's size.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from warden.testing.tamper import campaign as tamper_campaign

from .common import Result

if TYPE_CHECKING:
    from pathlib import Path


def campaign(trials: int, seed: int, workdir: Path) -> Result:
    """``trials`` tamperings; every one must be detected."""
    result = Result("tampering: log, checkpoints, event store")
    # Keys and trust entries of the campaign stay in its own directory, not $HOME.
    saved = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(workdir / "config")
    try:
        found = tamper_campaign(workdir, trials, seed=seed)
    finally:
        if saved is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = saved
    result.counts.update(
        {
            "tamperings": found.trials,
            "detected": found.detected,
            **dict(sorted(found.by_kind.items())),
        }
    )
    for missed in found.missed:
        result.fail(f"not detected: {missed}")
    if found.detected != found.trials:
        result.fail(f"{found.trials - found.detected} of {found.trials} tamperings went unnoticed")
    return result
