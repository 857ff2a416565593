"""A full disk and a read-only state directory during ingest, on a real mount.

The state directory is a small filesystem mounted for the run: a tmpfs that fills, and an
ext4 image the kernel turns read-only (root is needed to mount; without it the part is
skipped with that reason, and under ``CI=true`` it fails). The webhook
server takes events until the disk fills, or until the mount turns read-only, and keeps
being asked. It must answer every request clearly (``202``, or a refusal with a JSON
error), stay up, and every event it answered ``202`` must be in the store once the disk
has room again.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from pathlib import Path

from .common import Connection, Result, Served, cloudevent, request_bytes, stored_ids


def _mount(point: Path, size: str) -> str:
    """Mount a tmpfs of ``size`` at ``point``; returns why it could not ("" when it did)."""
    if os.geteuid() != 0:
        return "mounting a small filesystem needs root"
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    return run.stderr.strip() if run.returncode else ""


def _remount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)


def _umount(point: Path) -> None:
    subprocess.run(["umount", "-l", str(point)], check=False)


async def _post(
    port: int, tag: str, count: int, pad: int
) -> tuple[dict[int, int], set[str], list[str]]:
    statuses: dict[int, int] = {}
    accepted: set[str] = set()
    unclear: list[str] = []
    conn = Connection(port)
    for i in range(count):
        event = cloudevent(tag, i, size=pad)
        answer = await conn.send(request_bytes("/v1/events", json.dumps(event).encode()), 15)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if answer.status == 202:
            accepted.add(event["id"])
        elif answer.status == 0 or not isinstance(answer.json(), dict):
            unclear.append(f"{answer.status} {answer.body[:120]!r}")
    await conn.close()
    return statuses, accepted, unclear


def _check(
    result: Result, served_ok: bool, err: str, statuses: dict[int, int], unclear: list[str]
) -> None:
    if not served_ok:
        result.fail(f"the server died: {err[-600:]}")
    if "Traceback" in err:
        result.fail(f"a traceback reached the server's output: {err[-600:]}")
    if unclear:
        result.fail(f"{len(unclear)} answers without a clear error, e.g. {unclear[0]}")
    if statuses.get(202, 0) == 0:
        result.fail("nothing was accepted before the fault: the part proves nothing")
    if sum(v for k, v in statuses.items() if k != 202) == 0:
        result.fail("no request was refused: the fault never showed")


def disk_full(events: int = 3000) -> Result:
    """Ingest into a 3 MiB filesystem until it is full, and on; then it gets room again."""
    result = Result("disk full during ingest")
    with tempfile.TemporaryDirectory(prefix="warden-disk-") as tmp:
        point = Path(tmp) / "mnt"
        point.mkdir()
        why = _mount(point, "3m")
        if why:
            result.counts["skipped"] = why
            return result
        try:
            served = Served(point / "state")
            try:
                statuses, accepted, unclear = asyncio.run(_post(served.port, "full", events, 2000))
                _remount(point, "size=64m")  # room again: the same server must take events
                _, later, odd = asyncio.run(_post(served.port, "room", 50, 2000))
                alive = served.alive()
            finally:
                _, err = served.stop()
            lost = (accepted | later) - stored_ids(point / "state")
        finally:
            _umount(point)
    result.counts.update(
        {
            "requests": events,
            **{str(k): v for k, v in sorted(statuses.items())},
            "accepted once there was room": len(later),
        }
    )
    _check(result, alive, err, statuses, unclear + odd)
    if lost:
        result.fail(f"{len(lost)} events answered 202 are not in the store")
    if len(later) != 50:
        result.fail(f"once there was room again only {len(later)} of 50 events were accepted")
    return result


def _ext4(image: Path, point: Path) -> str:
    """Make and mount a small ext4 image that turns read-only on error; "" when mounted."""
    if os.geteuid() != 0:
        return "mounting a filesystem image needs root"
    for argv in (
        ["truncate", "-s", "32M", str(image)],
        ["mkfs.ext4", "-q", "-F", str(image)],
        ["mount", "-o", "loop,errors=remount-ro", str(image), str(point)],
    ):
        try:
            run = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            return f"{argv[0]} is not installed (Debian: e2fsprogs, mount)"
        if run.returncode:
            return f"{' '.join(argv[:2])}: {run.stderr.strip()}"
    return ""


def _fs_error(point: Path) -> None:
    """Make the kernel find an error on the filesystem: it goes read-only under open files."""
    device = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(point)], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").write_text("reliability campaign")


def _repair(image: Path, point: Path) -> None:
    _umount(point)
    subprocess.run(["fsck.ext4", "-fy", str(image)], capture_output=True, check=False)
    subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)


def read_only(events: int = 600) -> Result:
    """Ingest while the filesystem under the state turns read-only, as on a disk error.

    The ext4 image is mounted with ``errors=remount-ro`` and the kernel is told it found
    an error: from then on every write fails, open files included. After the run the
    filesystem is repaired and mounted again; what was accepted must be there, and a new
    server on it must accept again.
    """
    result = Result("read-only state during ingest")
    with tempfile.TemporaryDirectory(prefix="warden-ro-") as tmp:
        image, point = Path(tmp) / "state.img", Path(tmp) / "mnt"
        point.mkdir()
        why = _ext4(image, point)
        if why:
            result.counts["skipped"] = why
            return result
        statuses: dict[int, int] = {}
        accepted: set[str] = set()
        unclear: list[str] = []
        try:
            served = Served(point / "state")
            try:
                for phase in ("before", "ro"):
                    if phase == "ro":
                        _fs_error(point)
                    found, ok, odd = asyncio.run(_post(served.port, phase, events // 3, 200))
                    for k, v in found.items():
                        statuses[k] = statuses.get(k, 0) + v
                    accepted |= ok
                    unclear += odd
                alive = served.alive()
            finally:
                _, err = served.stop()
            _repair(image, point)
            lost = accepted - stored_ids(point / "state")
            again = Served(point / "state")
            try:
                found, ok, _ = asyncio.run(_post(again.port, "after", events // 3, 200))
            finally:
                again.stop()
            recovered = bool(ok)
        finally:
            _umount(point)
    result.counts.update(
        {
            "requests": events,
            **{str(k): v for k, v in sorted(statuses.items())},
            "accepted after repair": len(ok),
        }
    )
    _check(result, alive, err, statuses, unclear)
    if lost:
        result.fail(f"{len(lost)} events answered 202 are not in the store")
    if not recovered:
        result.fail("nothing was accepted once the filesystem was repaired")
    return result
