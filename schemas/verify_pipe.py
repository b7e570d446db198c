"""Signature checks over a pipe: the batch framing, and the loop of the child process that checks them.

:mod:`projectors.verifier` starts ``python -m schemas.verify_pipe`` for long replays. On the child's stdin: the
trusted keys as one JSON line (key id → public key, hex), then batches, each a 4-byte count and per event a
4-byte body length, the body, a 1-byte signature length and the signature, exactly as the log stored them. On
its stdout: one JSON line per batch, the reason each event is refused, or null. The check is
:func:`schemas.verify` on :meth:`SignedEvent.from_parts`, as in the parent.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Sequence
from typing import BinaryIO

from schemas import Keyring, SchemaError, SignedEvent, verify

__all__ = ["encode_batch", "serve"]

_U32 = struct.Struct(">I")


def encode_batch(events: Sequence[tuple[bytes, bytes]]) -> bytes:
    """One batch of (body, signature) pairs as the child reads it."""
    parts = [_U32.pack(len(events))]
    for body, signature in events:
        signature = signature[:255]  # a log could hold anything; no signature is that long
        parts += [_U32.pack(len(body)), body, bytes([len(signature)]), signature]
    return b"".join(parts)


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
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
    serve(sys.stdin.buffer, sys.stdout.buffer)
