"""Reading /proc: whether a process that is not our child still runs, and what it is.

Linux only. Used to take over processes an earlier Warden started. Action plane.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["cmdline", "group_of", "runs", "start_ticks"]


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (None when there is none)."""
    fields = _stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def group_of(pid: int) -> int | None:
    """The process group of ``pid`` (None when there is no such process)."""
    fields = _stat(pid)
    return int(fields[2]) if fields is not None and len(fields) > 2 else None


def cmdline(pid: int) -> tuple[str, ...]:
    """The argv the process runs with (empty when there is no such process)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1])


def runs(pid: int, ticks: str) -> bool:
    """The process with this pid and start time runs (an unreaped zombie does not)."""
    fields = _stat(pid)
    return (
        fields is not None
        and len(fields) > 19
        and fields[19] == ticks
        and fields[0] not in ("Z", "X")
    )
