"""Signature checks for long replays, in a child process.

A replay is bound by the thread that applies events. Checking signatures in a worker thread of the same
process still takes the GIL for the Python around each check, and every time the applying thread comes back
from SQLite it waits for that GIL. A child process checks on the other core without touching this process's
GIL. Only bytes travel, as the log stored them (body and signature), and the child runs the very same
:func:`schemas.verify` on them.

The child is ``python -m projectors.verifier`` on pipes (not :mod:`multiprocessing`, which would import the
parent's main module again). On stdin: the trusted keys as one JSON line, then batches, each a 4-byte count and
per event a 4-byte body length, the body, a 1-byte signature length and the signature. On stdout: one JSON
line per batch, the reason each event is refused or null.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import BinaryIO

from infra.child import end_child
from infra.log import Clock, LogRecord
from projectors.base import ProjectionRunner, Verdict
from projectors.errors import ReadModelError
from schemas import Keyring, SchemaError, SignedEvent, verify

__all__ = ["PROCESS_FROM", "ProcessVerifier", "catch_up"]

#: Replays of at least this many events check signatures in a child process (starting one costs ~0.1 s).
PROCESS_FROM = 20_000

_U32 = struct.Struct(">I")


def _frame(records: Sequence[LogRecord]) -> bytes:
    parts = [_U32.pack(len(records))]
    for record in records:
        event = record.event
        signature = event.signature[:255]  # a log could hold anything; no signature is that long
        parts += [_U32.pack(len(event.body)), event.body, bytes([len(signature)]), signature]
    return b"".join(parts)


class ProcessVerifier:
    """Judges batches of records in one child process; the keys trusted are those of ``keyring`` now.

    Each batch goes through the pipes in a worker thread, blocked in system calls (the GIL free): written by
    the event loop instead, a batch would wait for the loop, which is busy applying the previous batch."""

    def __init__(self, keyring: Keyring) -> None:
        self._keys = {key_id: key.hex() for key_id, key in keyring.public_keys().items()}
        self._child: subprocess.Popen[bytes] | None = None
        self._turn = threading.Lock()  # one batch on the pipes at a time: answers come back in order

    def _started(self) -> subprocess.Popen[bytes]:
        if self._child is None:
            self._child = subprocess.Popen([sys.executable, "-m", "projectors.verifier"], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE)
            assert self._child.stdin is not None
            self._child.stdin.write(json.dumps(self._keys).encode() + b"\n")
        return self._child

    def _reasons(self, frame: bytes) -> list[str | None]:
        with self._turn:
            child = self._started()
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(frame)
                child.stdin.flush()
                line = child.stdout.readline()
            except OSError as exc:
                raise ReadModelError(f"the signature-checking process failed: {exc}") from exc
            if not line:
                raise ReadModelError(f"the signature-checking process exited ({child.wait()})")
        reasons: list[str | None] = json.loads(line)
        return reasons

    async def judge(self, records: Sequence[LogRecord]) -> list[Verdict]:
        if not records:
            return []
        reasons = await asyncio.to_thread(self._reasons, _frame(records))
        return [Verdict(r, rejected=reason) for r, reason in zip(records, reasons, strict=True)]

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            end_child(child)


async def catch_up(runner: ProjectionRunner, keyring: Keyring, *, progress: Callable[[int], None] | None = None,
                   in_child: bool | None = None) -> Clock:
    """``runner.catch_up()``, checking signatures in a child process when the runner is at least
    :data:`PROCESS_FROM` events behind the log (a rebuild, a new node, a node back after a long stop), or as
    ``in_child`` says."""
    if in_child is None:
        in_child = await runner.lag() >= PROCESS_FROM
    if not in_child:
        return await runner.catch_up(progress=progress)
    verifier = ProcessVerifier(keyring)
    try:
        return await runner.catch_up(progress=progress, judge=verifier.judge)
    finally:
        verifier.close()


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """The child: answer every batch on ``stdin`` until it closes."""
    keyring = Keyring({key_id: bytes.fromhex(key) for key_id, key in json.loads(stdin.readline()).items()})
    while (head := _read_exactly(stdin, 4)) is not None:
        reasons: list[str | None] = []
        for _ in range(_U32.unpack(head)[0]):
            size = _read_exactly(stdin, 4)
            body = _read_exactly(stdin, _U32.unpack(size)[0]) if size is not None else None
            length = _read_exactly(stdin, 1)
            signature = _read_exactly(stdin, length[0]) if length is not None else None
            if body is None or signature is None:
                return  # the parent went away mid-batch
            try:
                verify(SignedEvent.from_parts(body, signature), keyring)
            except SchemaError as exc:
                reasons.append(str(exc))
            else:
                reasons.append(None)
        stdout.write(json.dumps(reasons).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
