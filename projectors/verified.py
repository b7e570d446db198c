"""Verify each signed event once per process, not once per read model.

Every read model's runner checks every event's Ed25519 signature; with two read models (SQLite and HNSW) that
is two checks of the same bytes, and the producer that signed them already knows they verify. A
:class:`VerifiedEvents` set remembers digests of ``signature + body`` that verified (or that this process
signed), so the second check is a hash lookup. A body or signature changed in the log since misses the set and
is verified for real; the signer must still be in the runner's keyring.

The nodes of one host that share a read model (:attr:`projectors.base.ReadModel.shared`) share its checks too:
what that model holds unrefused was verified by whichever node applied it, so the other nodes' HNSW and
delivery runners take it without checking it again (:meth:`ReadModel.vouched`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from infra.log import LogRecord
from projectors.base import ProjectionRunner, ReadModel, Verdict
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
    """A projection runner that shares verified signatures with the other runners of its process, and, given
    the host's shared read model as ``host``, with the runners of the host's other nodes: a record that model
    has taken without refusing it had its signature checked by the node that applied it."""

    def __init__(self, *args: Any, verified: VerifiedEvents, host: ReadModel | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verified = verified
        self._host = host if host is not None and host.shared else None

    def judge_now(self, records: Sequence[LogRecord]) -> list[Verdict]:
        return self.judge_all(records) if self._host is None else self._judged_by(self._host, records)

    def _judged_elsewhere(self, records: Sequence[LogRecord]) -> list[Verdict]:
        # This runner's own model is the shared one: it vouches for what the host's other nodes applied.
        return self._judged_by(self._model, records)

    def _judged_by(self, host: ReadModel, records: Sequence[LogRecord]) -> list[Verdict]:
        # The host is asked only about what no runner of this process has verified or been vouched for yet, and
        # what it vouches for joins the set: a node's HNSW and webhook runners read the same records.
        unknown = [r for r in records if r.event not in self.verified]
        vouched = host.vouched(unknown) if unknown else set()
        verdicts: list[Verdict] = []
        for record in records:
            if (record.partition, record.offset) in vouched and self._trusted(record.event):
                self.verified.add(record.event)
                verdicts.append(Verdict(record))
            else:
                verdicts.append(self.judge(record))
        return verdicts

    def _trusted(self, event: SignedEvent) -> bool:
        """Whether this node trusts the event's signer (a signature checked elsewhere proves only the key)."""
        return self._keyring.get(event.envelope.key_id) is not None

    def judge(self, record: LogRecord) -> Verdict:
        event = record.event
        if event in self.verified and self._trusted(event):
            return Verdict(record)
        verdict = super().judge(record)
        if verdict.rejected is None:
            self.verified.add(event)
        return verdict
