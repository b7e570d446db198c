"""Verify each signed event once per process, not once per read model.

Every read model's runner checks every event's Ed25519 signature; with two read models (SQLite and HNSW) that
is two checks of the same bytes, and the producer that signed them already knows they verify. A
:class:`VerifiedEvents` set remembers digests of ``signature + body`` that verified (or that this process
signed), so the second check is a hash lookup. A body or signature changed in the log since misses the set and
is verified for real; the signer must still be in the runner's keyring.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from infra.log import LogRecord
from projectors.base import ProjectionRunner, Verdict
from schemas import SignedEvent

__all__ = ["SharedVerifyRunner", "VerifiedEvents"]


class VerifiedEvents:
    """A bounded set of digests of events known to carry a valid signature (oldest forgotten first)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()  # runners verify in worker threads while the producer adds

    @staticmethod
    def digest(event: SignedEvent) -> bytes:
        return hashlib.blake2b(event.signature + event.body, digest_size=16).digest()

    def add(self, event: SignedEvent) -> None:
        digest = self.digest(event)
        with self._lock:
            self._digests[digest] = None
            if len(self._digests) > self._capacity:
                self._digests.popitem(last=False)

    def __contains__(self, event: object) -> bool:
        return isinstance(event, SignedEvent) and self.digest(event) in self._digests


class SharedVerifyRunner(ProjectionRunner):
    """A projection runner that shares verified signatures with the other runners of its process."""

    def __init__(self, *args: Any, verified: VerifiedEvents, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verified = verified

    def judge(self, record: LogRecord) -> Verdict:
        event = record.event
        if event in self.verified and self._keyring.get(event.envelope.key_id) is not None:
            return Verdict(record)
        verdict = super().judge(record)
        if verdict.rejected is None:
            self.verified.add(event)
        return verdict
