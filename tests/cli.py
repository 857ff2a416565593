"""The command line as tests drive it: in process or as a real subprocess, and its errors.

Shared by the CLI tests; a test module imports these from here, never from another test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from typer.testing import CliRunner

from warden.cli.main import app

if TYPE_CHECKING:
    from pathlib import Path

WARDEN = [sys.executable, "-m", "warden.cli"]
ENV = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}


def warden(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `warden ARGS` as a real process in ``cwd``."""
    return subprocess.run(
        [*WARDEN, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one ``error: ...`` line a failed command printed (exit 2, no traceback)."""
    shown = result.stdout + result.stderr
    assert result.returncode == 2, shown
    assert "Traceback" not in shown, shown
    errors = [line for line in shown.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, shown
    assert result.stderr.strip() in ("", errors[0]), shown  # nothing else went wrong
    assert errors[0].startswith("error: "), shown
    for word in words:
        assert word in errors[0], shown
    return errors[0]


def commands(group: Any, prefix: str = "", *, groups: bool = False) -> list[tuple[str, Any]]:
    """Every command under ``group`` by its full name (``audit verify``).

    With ``groups``, the groups too (``audit``), each before its commands.
    """
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            if groups:
                found.append((path, command))
            found.extend(commands(command, f"{path} ", groups=groups))
        else:
            found.append((path, command))
    return found


class Cli:
    """`warden …` against one state directory: in process, or as a real subprocess."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, real: bool = False
    ) -> tuple[int, str]:
        argv = [*args, "-s", str(self.state)]
        env = {"COLUMNS": "300", **(env or {})}
        if real:
            done = subprocess.run(
                [sys.executable, "-m", "warden.cli", *argv],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, **env},
                check=False,
            )
            assert "Traceback" not in done.stderr, done.stderr
            return done.returncode, done.stdout + done.stderr
        result = CliRunner().invoke(app, argv, env=env)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result.exit_code, result.output
