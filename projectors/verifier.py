"""Signature checks for long replays, in a child process.

A replay is bound by the thread that applies events. Checking signatures in a worker thread of the same
process still takes the GIL for the Python around each check, and every time the applying thread comes back
from SQLite it waits for that GIL. A child process checks on the other core without touching this process's
GIL. Only bytes travel, as the log stored them (body and signature), and the child runs the very same
:func:`schemas.verify` on them.

The child is ``python -m schemas.verify_pipe`` on pipes (not :mod:`multiprocessing`, which would import the
parent's main module again): only ``schemas`` loads there, and the framing lives beside its loop.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

from infra.child import end_child
from infra.log import Clock, LogRecord
from projectors.base import ProjectionRunner, Verdict, unreadable_reason
from projectors.errors import ReadModelError
from schemas import Keyring
from schemas.verify_pipe import encode_batch

__all__ = ["PROCESS_FROM", "ProcessVerifier", "catch_up"]

#: Replays of at least this many events check signatures in a child process (starting one costs ~0.1 s).
PROCESS_FROM = 20_000


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
            self._child = subprocess.Popen([sys.executable, "-m", "schemas.verify_pipe"], stdin=subprocess.PIPE,
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
        reasons = await asyncio.to_thread(self._reasons, encode_batch([(r.event.body, r.event.signature)
                                                                        for r in records]))
        return [Verdict(r, rejected=unreadable_reason(r) if r.unreadable is not None else reason)
                for r, reason in zip(records, reasons, strict=True)]

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            end_child(child)


async def catch_up(runner: ProjectionRunner, *, progress: Callable[[int], None] | None = None,
                   in_child: bool | None = None) -> Clock:
    """``runner.catch_up()``, checking signatures in a child process when the runner is at least
    :data:`PROCESS_FROM` events behind the log (a rebuild, a new node, a node back after a long stop), or as
    ``in_child`` says."""
    if in_child is None:
        in_child = await runner.lag() >= PROCESS_FROM
    if not in_child:
        return await runner.catch_up(progress=progress)
    verifier = ProcessVerifier(runner.keyring)
    try:
        return await runner.catch_up(progress=progress, judge=verifier.judge)
    finally:
        verifier.close()
