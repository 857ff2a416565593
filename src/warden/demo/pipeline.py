"""A tiny data pipeline for drills: producer -> processor -> sink over files. Edge (demo).

Run each stage as ``python -m warden.demo.pipeline --role producer|processor|sink
--dir DIR --port PORT``. The producer writes a batch (records and their checksum) to
``DIR/inbox`` every ``--every`` seconds; the processor takes batches in order, checks
them, moves them to ``DIR/outbox`` and keeps a copy in ``DIR/processed``; the sink reads
the outbox. A batch that fails its check stops the processor (batches are taken in
order), which reports ``warden.pipeline.batch_failed`` with its last good checkpoint.

Admin routes (POST, JSON bodies): the producer's ``/admin/corrupt`` makes its next batch
unreadable; the processor's ``/admin/quarantine`` (``{"pipeline", "batch"}``) moves a
batch to ``DIR/quarantine`` and reports it recovered, ``/admin/replay`` (``{"pipeline",
"checkpoint"}``) sends every batch after the checkpoint to the sink again (the sink keeps
each batch once), ``/admin/release`` returns a quarantined batch to the inbox. Every
stage answers ``GET /health``; the sink's ``GET /status`` says when the last batch arrived.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from warden.demo import JsonHandler
from warden.demo.report import Reporter

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import FrameType

__all__ = ["PIPELINE", "Stage", "main"]

PIPELINE = "orders-etl"
"""The name the processor reports its batches under."""
_REPORT_AGAIN_S = 3.0


def _checksum(records: list[Any]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def _write(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


class Stage:
    """One stage's state and work; ``step`` runs once per tick on the work thread."""

    def __init__(self, role: str, root: Path, name: str, reporter: Reporter) -> None:
        """Prepare the stage's directories under ``root``."""
        self.role, self.root, self.name, self.reporter = role, root, name, reporter
        self.dirs = {d: root / d for d in ("inbox", "outbox", "processed", "quarantine")}
        for path in self.dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.corrupt_next = False
        self.stuck_on = ""
        self.last_stop: dict[str, Any] = {}  # outlives the stop: a quick cure leaves a witness
        self.reported_at = 0.0
        self.last_batch_at = 0.0
        self.batches = 0
        self.sequence = max((int(p.stem.split("-")[1]) for p in self._all_batches()), default=0)

    def _all_batches(self) -> list[Path]:
        return [p for d in self.dirs.values() for p in d.glob("batch-*.json")]

    def step(self) -> None:
        """Produce, process or sink what is due."""
        with self.lock:
            if self.role == "producer":
                self._produce()
            elif self.role == "processor":
                self._process()
            else:
                self._sink()

    def _produce(self) -> None:
        self.sequence += 1
        records = [{"order": self.sequence * 10 + i, "amount": i + 1} for i in range(3)]
        text = json.dumps({"records": records, "checksum": _checksum(records)})
        if self.corrupt_next:
            self.corrupt_next = False
            text = text[: len(text) // 2] + "\x00garbage"
        _write(self.dirs["inbox"] / f"batch-{self.sequence:06d}.json", text)
        self.batches += 1

    def _checkpoint(self) -> str:
        done = sorted(self.dirs["processed"].glob("batch-*.json"))
        return done[-1].stem if done else ""

    def _process(self) -> None:
        for path in sorted(self.dirs["inbox"].glob("batch-*.json")):
            problem = _problem(path)
            if problem:
                self._stuck(path.stem, problem)
                return
            self.stuck_on = ""
            text = path.read_text(encoding="utf-8")
            _write(self.dirs["processed"] / path.name, text)
            _write(self.dirs["outbox"] / path.name, text)
            path.unlink()
            self.batches += 1

    def _stuck(self, batch: str, problem: str) -> None:
        now = time.monotonic()
        if batch == self.stuck_on and now - self.reported_at < _REPORT_AGAIN_S:
            return
        if batch != self.stuck_on:
            self.last_stop = {"batch": batch, "at": time.time()}
        self.stuck_on, self.reported_at = batch, now
        data = {"service": self.name, "pipeline": PIPELINE, "batch": batch, "reason": problem}
        checkpoint = self._checkpoint()
        if checkpoint:
            data["last_good_checkpoint"] = checkpoint
        self.reporter.send("warden.pipeline.batch_failed", data)

    def _sink(self) -> None:
        for path in sorted(self.dirs["outbox"].glob("batch-*.json")):
            kept = self.root / "sink" / path.name
            kept.parent.mkdir(exist_ok=True)
            if not kept.exists():  # a replayed batch is kept once
                _write(kept, path.read_text(encoding="utf-8"))
                self.batches += 1
            path.unlink()
            self.last_batch_at = time.time()

    def quarantine(self, batch: str) -> tuple[int, dict[str, Any]]:
        """Move a batch aside so the processor goes on; reports it recovered."""
        with self.lock:
            source = self.dirs["inbox"] / f"{batch}.json"
            target = self.dirs["quarantine"] / f"{batch}.json"
            if source.exists():
                os.replace(source, target)
            elif not target.exists():
                return 404, {"error": f"no batch {batch} in the inbox or the quarantine"}
            if self.stuck_on == batch:
                self.stuck_on = ""
        data = {"service": self.name, "pipeline": PIPELINE, "batch": batch}
        self.reporter.send("warden.pipeline.batch_recovered", data)
        return 200, {"quarantined": batch}

    def release(self, batch: str) -> tuple[int, dict[str, Any]]:
        """Return a quarantined batch to the inbox (undoes a quarantine)."""
        with self.lock:
            source = self.dirs["quarantine"] / f"{batch}.json"
            if not source.exists():
                return 404, {"error": f"no batch {batch} in the quarantine"}
            os.replace(source, self.dirs["inbox"] / f"{batch}.json")
        return 200, {"released": batch}

    def replay(self, checkpoint: str) -> tuple[int, dict[str, Any]]:
        """Send every processed batch after ``checkpoint`` to the sink again."""
        with self.lock:
            again = [
                p for p in sorted(self.dirs["processed"].glob("*.json")) if p.stem > checkpoint
            ]
            for path in again:
                _write(self.dirs["outbox"] / path.name, path.read_text(encoding="utf-8"))
        return 200, {"replayed": len(again), "from": checkpoint}

    def status(self) -> dict[str, Any]:
        """What the stage did; for the sink, how long ago the last batch arrived."""
        age = time.time() - self.last_batch_at if self.last_batch_at else None
        return {
            "service": self.name,
            "role": self.role,
            "batches": self.batches,
            "stuck_on": self.stuck_on,
            "last_stop": self.last_stop,
            "last_batch_age_s": age,
        }


def _problem(path: Path) -> str:
    """Why a batch file cannot be processed; empty when it is good."""
    try:
        batch = json.loads(path.read_text(encoding="utf-8"))
        records, checksum = batch["records"], batch["checksum"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return f"unreadable batch: {type(exc).__name__}"
    if _checksum(records) != checksum:
        return "checksum mismatch"
    return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], stage: Stage) -> None:
        self.stage = stage
        super().__init__(address, _Handler)


class _Handler(JsonHandler):
    server: _Server

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        stage = self.server.stage
        if path == "/health":
            self.reply(200, {"service": stage.name, "status": "ok", "pid": os.getpid()})
        elif path == "/status":
            self.reply(200, stage.status())
        else:
            self.reply(404, {"error": f"no route {path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        stage = self.server.stage
        body = self.read_object()
        if body is None:
            return
        routes: dict[tuple[str, str], Callable[[], tuple[int, dict[str, Any]]]] = {
            ("producer", "/admin/corrupt"): lambda: _corrupt(stage),
            ("processor", "/admin/quarantine"): lambda: stage.quarantine(str(body["batch"])),
            ("processor", "/admin/replay"): lambda: stage.replay(str(body["checkpoint"])),
            ("processor", "/admin/release"): lambda: stage.release(str(body["batch"])),
        }
        route = routes.get((stage.role, path))
        if route is None:
            self.reply(404, {"error": f"no admin route {path} on the {stage.role}"})
            return
        try:
            self.reply(*route())
        except KeyError as exc:
            self.reply(400, {"error": f"missing field {exc}"})

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stage logs what it does, not every request."""


def _corrupt(stage: Stage) -> tuple[int, dict[str, Any]]:
    stage.corrupt_next = True
    return 200, {"corrupt_next": True, "batch": f"batch-{stage.sequence + 1:06d}"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one pipeline stage until SIGTERM or SIGINT; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m warden.demo.pipeline", description="One stage of the demo pipeline."
    )
    parser.add_argument("--role", choices=("producer", "processor", "sink"), required=True)
    parser.add_argument("--name", help="service name (default: the role)")
    parser.add_argument("--dir", type=Path, required=True, help="the pipeline's directory")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between ticks")
    parser.add_argument("--report", help="Warden's /v1/events URL for failed batches")
    args = parser.parse_args(argv)
    name = args.name or args.role
    stage = Stage(args.role, args.dir, name, Reporter(args.report, name))
    try:
        server = _Server(("127.0.0.1", args.port), stage)
    except OSError as exc:
        sys.stderr.write(f"{name}: cannot listen on port {args.port}: {exc.strerror or exc}\n")
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def work() -> None:
        while not stop.wait(args.every):
            stage.step()

    threading.Thread(target=work, name="work", daemon=True).start()
    sys.stderr.write(f"{name}: {args.role} on port {args.port} (pid {os.getpid()})\n")
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
