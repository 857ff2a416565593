"""A checkpoint witness (C2SP tlog-witness): checks consistency, cosigns, remembers. Audit plane.

``POST /add-checkpoint`` with ``old <size>``, consistency proof lines, a blank line and a
signed checkpoint. The witness verifies the log's signature (404 unknown origin, 403 no
trusted signature), that ``old`` is the size it last cosigned (409 with that size, as
``text/x.tlog.size``), the proof (422), then records the new size and answers with its
cosignature line. The record per origin lives in a JSON file of its state directory;
check and update happen under one lock, so two requests cannot roll it back.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from warden.audit.checkpoint import SignedCheckpoint, decode_base64, encode_base64
from warden.audit.merkle import EMPTY_ROOT, verify_consistency
from warden.audit.state import make_private_dir
from warden.domain.errors import AuditVerificationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from warden.audit.checkpoint import Verifier
    from warden.audit.cosign import Cosigner

PATH = "/add-checkpoint"
SIZE_TYPE = "text/x.tlog.size"
MAX_BODY = 64 * 1024
MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, content type and body."""

    status: int
    content_type: str
    body: bytes

    @classmethod
    def text(cls, status: int, message: str) -> Answer:
        """A plain-text answer (one line)."""
        return cls(status, "text/plain; charset=utf-8", (message + "\n").encode("utf-8"))


class Witness:
    """Cosigns checkpoints of known logs that extend the last one it cosigned."""

    def __init__(
        self,
        cosigner: Cosigner,
        state_dir: Path,
        logs: Mapping[str, Sequence[Verifier]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cosigner = cosigner
        self.state_dir = state_dir
        self.logs = dict(logs)
        self._clock = clock
        self._mutex = threading.Lock()
        make_private_dir(state_dir)

    def _record_path(self, origin: str) -> Path:
        digest = hashlib.sha256(origin.encode("utf-8")).hexdigest()[:16]
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", origin)[:60]
        return self.state_dir / f"{readable}-{digest}.json"

    def known(self, origin: str) -> tuple[int, bytes]:
        """The size and root last cosigned for ``origin`` ((0, b"") if none)."""
        try:
            value = json.loads(self._record_path(origin).read_bytes())
        except FileNotFoundError:
            return 0, b""
        return int(value["size"]), bytes.fromhex(value["root"])

    def _remember(self, origin: str, size: int, root: bytes) -> None:
        path = self._record_path(origin)
        tmp = path.with_name(path.name + ".tmp")
        data = json.dumps({"origin": origin, "size": size, "root": root.hex()}, sort_keys=True)
        with tmp.open("w", encoding="utf-8") as f:
            f.write(data + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def add_checkpoint(self, body: bytes) -> Answer:
        """Handle one ``add-checkpoint`` request body."""
        try:
            old, proof, signed = parse_request(body)
        except ValueError as exc:
            return Answer.text(400, f"bad request: {exc}")
        cp = signed.checkpoint
        keys = self.logs.get(cp.origin)
        if keys is None:
            return Answer.text(404, f"unknown log origin {cp.origin!r}")
        try:
            signed.verify(keys, cp.origin)
        except AuditVerificationError as exc:
            return Answer.text(403, f"checkpoint not signed by the log's key: {exc}")
        if old > cp.size:
            return Answer.text(400, f"old size {old} is larger than the checkpoint's {cp.size}")
        if old == 0 and proof:
            return Answer.text(400, "a proof from size 0 must be empty")
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            return Answer.text(400, "a checkpoint of size 0 has the empty tree's root")
        with self._mutex, self._locked():
            size, root = self.known(cp.origin)
            if old != size:
                return Answer(409, SIZE_TYPE, f"{size}\n".encode("ascii"))
            if old == cp.size and size and root != cp.root:
                return Answer(409, SIZE_TYPE, f"{size}\n".encode("ascii"))
            if 0 < old < cp.size:
                try:
                    verify_consistency(old, cp.size, root, cp.root, proof)
                except AuditVerificationError as exc:
                    return Answer.text(422, f"consistency proof does not verify: {exc}")
            self._remember(cp.origin, cp.size, cp.root)
            line = self.cosigner.cosign(cp.body(), int(self._clock())).line()
        return Answer(200, "text/plain; charset=utf-8", line.encode("utf-8"))

    def _locked(self) -> _FileLock:
        return _FileLock(self.state_dir / ".lock")


class _FileLock:
    """An exclusive ``flock`` between witness processes sharing a state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def parse_request(body: bytes) -> tuple[int, list[bytes], SignedCheckpoint]:
    """The old size, proof hashes and signed checkpoint of a request body.

    Raises:
        ValueError: the body is not ``old N``, proof lines, a blank line, a checkpoint.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ValueError("no blank line before the checkpoint")
    lines = head.split("\n")
    match = _OLD.fullmatch(lines[0])
    if match is None:
        raise ValueError(f"first line {lines[0][:40]!r} is not 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ValueError(f"more than {MAX_PROOF_LINES} proof lines")
    proof = []
    for line in lines[1:]:
        raw = decode_base64(line)
        if len(raw) != 32:
            raise ValueError("a proof line is not a 32-byte hash")
        proof.append(raw)
    try:
        signed = SignedCheckpoint.parse(note)
    except AuditVerificationError as exc:
        raise ValueError(str(exc)) from None
    return int(match.group(1)), proof, signed


def encode_request(old: int, proof: Sequence[bytes], signed: SignedCheckpoint) -> bytes:
    """The body of an ``add-checkpoint`` request."""
    lines = [f"old {old}", *(encode_base64(h) for h in proof)]
    return ("\n".join(lines) + "\n\n" + signed.encode()).encode("utf-8")


def make_server(witness: Witness, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server answering ``POST /add-checkpoint`` for ``witness`` (not started)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path != PATH:
                self._send(Answer.text(404, f"no such endpoint; POST {PATH}"))
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._send(Answer.text(411, "a Content-Length is required"))
                return
            if not 0 <= length <= MAX_BODY:
                self._send(Answer.text(413, f"the body is over {MAX_BODY} bytes"))
                return
            self._send(witness.add_checkpoint(self.rfile.read(length)))

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the CLI reports; request lines are not worth a line each

    return ThreadingHTTPServer((host, port), Handler)
